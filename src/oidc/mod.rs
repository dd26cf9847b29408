//! Protocol endpoints, one module each. Paths are constants here so that discovery metadata is
//! derived from the same values that build the router.

pub mod authorize;
pub mod backchannel;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod end_session;
pub mod id_token;
pub mod introspect;
pub mod mtls;
pub mod register;
pub mod revoke;
pub mod subject;
pub mod token;
pub mod userinfo;

use crate::http::cors::{self, WebOrigins};
use crate::state::AppState;
use axum::Router;
use axum::http::Method;
use axum::routing::{get, post};

pub const AUTHORIZE: &str = "/authorize";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const JWKS: &str = "/jwks";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const END_SESSION: &str = "/logout";

/// Endpoints whose callers are programs (an RP's back end, a resource server) that parse OAuth
/// JSON errors, even from the layers in front of them.
pub const BACK_CHANNEL: &[&str] =
    &[TOKEN, USERINFO, REVOKE, INTROSPECT, device::AUTHORIZATION, authorize::par::PATH, register::PATH];

/// The endpoints; those a browser client calls answer CORS for the `origins` clients allow.
pub fn router(origins: &WebOrigins) -> Router<AppState> {
    let browser = |methods: &[Method]| cors::for_clients(origins, methods);
    Router::new()
        .route(AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(TOKEN, post(token::handle).layer(browser(&[Method::POST])))
        .route(USERINFO, get(userinfo::get).post(userinfo::post).layer(browser(&[Method::GET, Method::POST])))
        .route(REVOKE, post(revoke::handle).layer(browser(&[Method::POST])))
        .route(INTROSPECT, post(introspect::handle))
        .route(device::AUTHORIZATION, post(device::authorize))
        .route(authorize::par::PATH, post(authorize::par::push))
        .route(END_SESSION, get(end_session::get).post(end_session::post))
        // Dynamic client registration (RFC 7591) and its management (RFC 7592).
        .route(register::PATH, post(register::create))
        .route(
            &format!("{}/{{client_id}}", register::PATH),
            get(register::read).put(register::update).delete(register::delete),
        )
        .route(
            &format!("{}/{{flow}}", authorize::resume::PATH),
            get(authorize::resume::show).post(authorize::resume::decide),
        )
}
