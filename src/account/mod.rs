//! Self-service pages for the signed-in user. Each page needs a live session (else a login
//! flow that returns here); every form carries a CSRF token derived from the session cookie;
//! changes need a recent sign-in (else a re-authentication that returns here) and are audited.
//! A change to the user's sign-in methods ends their other sessions and mails them
//! (`changed`). Forgot password (`forgot`) is the one page here for someone not signed in.

pub mod activity;
pub mod api;
pub mod changed;
pub mod delete;
pub mod device;
pub mod export;
pub mod forgot;
pub mod linked;
pub mod mail;
pub mod new_password;
pub mod password;
pub mod password_api;
pub mod profile;
pub mod security;
pub mod sessions;

use crate::crypto::hash_secret;
use crate::domain::{Credentials, Session};
use crate::http::{PageError, cookies};
use crate::login::flow::{self, Entry, HandBack};
use crate::login::routes::see_other;
use crate::login::{policy, session};
use crate::state::AppState;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use std::net::IpAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(security::PAGE, get(security::show).post(security::change))
        .route(linked::PAGE, get(linked::show).post(linked::unlink))
        .route(device::PAGE, get(device::show).post(device::answer))
        .route(password::PAGE, get(password::show).post(password::submit))
        .route(forgot::PAGE, get(forgot::show).post(forgot::submit))
        .route(forgot::RESET, get(forgot::show_reset).post(forgot::submit_reset))
        .route(delete::PAGE, get(delete::show).post(delete::submit))
        .route(export::PAGE, get(export::download))
        .route(password_api::FORGOT, post(password_api::forgot))
        .route(password_api::RESET, post(password_api::reset))
        .route(password_api::CHANGE, post(password_api::change))
        .route(sessions::PAGE, get(sessions::show).post(sessions::end))
        .route(activity::PAGE, get(activity::show))
        .route(profile::PAGE, get(profile::show).post(profile::change))
}

/// The signed-in user's session, with the CSRF token its forms carry.
pub struct Signed {
    pub session: Session,
    pub csrf: String,
}

/// The session of this browser, or the response that signs the person in and comes back to
/// `return_to`.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    client: IpAddr,
    return_to: &str,
) -> Result<Result<Signed, Response>, PageError> {
    let now = state.now();
    match (session::current(state, headers, now).await?, cookies::get(headers, cookies::SESSION, state.secure_cookies))
    {
        (Some(session), Some(token)) => Ok(Ok(Signed { session, csrf: csrf_for(token) })),
        _ => Ok(Err(sign_in(state, headers, client, return_to).await?)),
    }
}

/// A login flow for the account pages that returns to `return_to`.
async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    client: IpAddr,
    return_to: &str,
) -> Result<Response, PageError> {
    let hand_back = HandBack::Return(return_to.to_owned());
    let (location, cookie) = flow::start(state, headers, client, None, hand_back, Entry::SignIn).await?;
    let mut resp = see_other(&location);
    if let Some(c) = cookie {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// Bound to the session cookie, which another site can neither read nor guess.
fn csrf_for(session_token: &str) -> String {
    hash_secret(&format!("account-csrf:{session_token}"))
}

/// Recent enough for a security change: signed in within `login.reauth_secs`, and with the
/// second factor when the user has one.
async fn fresh(state: &AppState, s: &Session, now: i64) -> Result<bool, PageError> {
    let factors = flow::factors_of(state, &s.user_id).await?;
    let strong = !factors.any() || policy::acr_level(&s.acr) >= Some(2);
    Ok(now - s.auth_time <= state.settings.login.reauth_secs && strong)
}

/// A time on the account pages: UTC, to the minute.
fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// Why a removal was refused.
const LAST_WAY_IN: &str = "This is the only way to sign in to your account, so it stays.";

/// Whether the account keeps a way in once `change` is made to its credentials: the one check
/// before an unlink, a passkey removal or a factor removal (`policy::ways_in`).
async fn keeps_a_way_in(
    state: &AppState,
    user_id: &str,
    change: impl FnOnce(&mut Credentials),
) -> Result<bool, PageError> {
    let Some(user) = state.store.user(user_id).await? else { return Ok(false) };
    let mut credentials = state.store.credentials(user_id).await?;
    change(&mut credentials);
    // A code or link by email signs in where the operator allows it and the address is confirmed.
    let verified = user.claims.get("email_verified") == Some(&serde_json::Value::Bool(true));
    let email_first = state.settings.login.email_first_factor && (verified || credentials.email_otp);
    // A code by phone signs in on its own where the operator allows it on a channel that is on.
    let phone_first =
        state.settings.phone.first_factor && crate::phone::Channel::ALL.into_iter().any(|c| state.phone.offers(c));
    Ok(policy::ways_in(&credentials, email_first, phone_first) > 0)
}
