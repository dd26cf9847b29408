//! The forward-auth gateway: apps with no sign-in of their own sit behind a reverse proxy
//! (nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`, HAProxy, Envoy
//! `ext_authz`) that asks Latchkey about each request before passing it on.
//!
//! ```text
//!  browser ──► proxy ──GET /gateway/auth (X-Forwarded-* / X-Original-*)──► check.rs
//!                │        200 + Remote-User… │ 401 (API) │ 302 /gateway/sign-in?rd=… │ 403 │ 503
//!                ▼                           ▼
//!              the app             sign_in.rs: the normal login flow (every factor, step-up),
//!                                  then a gateway session and its cookie for
//!                                  `gateway.cookie_domain`, and back to `rd`
//! ```
//!
//! Modules: `rules` (which request needs what; pure), `request` (the original request, read
//! from a trusted proxy's headers only), `session` (gateway sessions in the ephemeral store,
//! bound to the provider session, with the node's short cache), `device` (the fingerprint and
//! new-device notice), `check` (the endpoint), `sign_in` (sign-in and sign-out).
//!
//! The gateway's compiled rules and its per-node cache are not in `AppState`: the router hands
//! them to these handlers as an extension, so nothing else sees them.

pub mod check;
pub mod device;
pub mod request;
pub mod rules;
pub mod session;
pub mod sign_in;

use crate::state::AppState;
use axum::Router;
use axum::routing::{any, get};
use ipnet::IpNet;
use std::sync::Arc;

/// The forward-auth endpoint (Caddy, Traefik, HAProxy, Envoy): a browser is redirected to sign
/// in.
pub const AUTH: &str = "/gateway/auth";
/// The same for nginx, whose `auth_request` cannot pass a redirect on: 401 with the sign-in
/// address in `Location`, which the documented `error_page` turns into the redirect.
pub const AUTH_NGINX: &str = "/gateway/auth/nginx";
pub const SIGN_IN: &str = "/gateway/sign-in";
pub const SIGN_OUT: &str = "/gateway/sign-out";

/// What the gateway's handlers share: the rules, the proxies trusted for the original request,
/// and this node's cache of verified sessions.
pub struct Gateway {
    pub rules: rules::Rules,
    pub trusted: Vec<IpNet>,
    pub cache: session::Cache,
}

impl Gateway {
    pub fn new(state: &AppState) -> Self {
        let s = &state.settings;
        // The settings were checked at start, so the rules compile; if not, nothing passes.
        let rules = rules::Rules::compile(&s.gateway).unwrap_or_else(|e| {
            tracing::error!(problems = ?e, "gateway rules do not compile: every request is denied");
            rules::Rules::compile(&Default::default()).expect("no rules compile")
        });
        let trusted =
            s.rate_limit.trusted_proxies.iter().filter_map(|p| crate::http::client_ip::parse_net(p)).collect();
        Self { rules, trusted, cache: session::Cache::default() }
    }
}

/// The gateway's routes when it is enabled, in two parts sharing one [`Gateway`]: the
/// forward-auth checks, which stay outside the per-IP rate limit (every request to every
/// protected app passes through them, from the proxy's few addresses), and the sign-in and
/// sign-out pages, rate-limited like the other pages.
pub fn routers(state: &AppState) -> Option<(Router<AppState>, Router<AppState>)> {
    if !state.settings.gateway.enabled {
        return None;
    }
    let gateway = Arc::new(Gateway::new(state));
    let checks = Router::new()
        .route(AUTH, any(check::browser))
        .route(AUTH_NGINX, any(check::nginx))
        .layer(axum::Extension(gateway.clone()));
    let pages = Router::new()
        .route(SIGN_IN, get(sign_in::sign_in))
        .route(SIGN_OUT, get(sign_in::sign_out_page).post(sign_in::sign_out))
        .layer(axum::Extension(gateway));
    Some((checks, pages))
}
