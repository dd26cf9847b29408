//! The forward-auth check. The proxy sends each request's headers here before passing it on;
//! the answer decides:
//!
//! - **200**: pass, with the identity headers (`Remote-User`, `Remote-Email`, `Remote-Name`,
//!   `Remote-Groups`; names from `gateway.headers`) for the proxy to copy to the app;
//! - **302** to `/gateway/sign-in?rd=<the original URL>` for a browser without a session good
//!   enough for the matching rule (nginx's variant answers 401 with that `Location` instead);
//! - **401** with a Bearer challenge (RFC 6750 §3) for an API request: one whose `Accept` does
//!   not ask for HTML, or that sent a token;
//! - **403** for a `deny` rule, or a user outside the rule's groups;
//! - **503** when the stores cannot be reached (fail closed; see `gateway.outage_grace_secs`).
//!
//! The order: the original request (from a trusted proxy only), the rule it matches, then a
//! Bearer access token if one is sent (checked as userinfo checks it: signature, expiry, live
//! grant, active user), else the gateway session of the cookie and its device.

use super::rules::Need;
use super::session::{self, Identity};
use super::{Gateway, request};
use crate::config::gateway::{DeviceBinding, Policy};
use crate::http::BearerError;
use crate::http::client_ip::ClientAddr;
use crate::login::policy::acr_level;
use crate::oidc::id_token::{active_grant_and_user, read_bearer_token};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// How a browser that must sign in is told so.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A 302 the proxy passes on (Caddy, Traefik, HAProxy, Envoy).
    Redirect,
    /// 401 with `Location`, which nginx's `error_page` turns into the redirect.
    Nginx,
}

pub async fn browser(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    ClientAddr(client): ClientAddr,
    req: Request,
) -> Response {
    check(&state, &gw, client, req, Mode::Redirect).await
}

pub async fn nginx(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    ClientAddr(client): ClientAddr,
    req: Request,
) -> Response {
    check(&state, &gw, client, req, Mode::Nginx).await
}

async fn check(state: &AppState, gw: &Gateway, client: std::net::IpAddr, req: Request, mode: Mode) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let headers = req.headers();
    // 1. The original request: from a trusted proxy's headers, or the request itself.
    let original = match request::original(headers, req.method(), req.uri(), peer, &gw.trusted) {
        Ok(o) => o,
        Err(request::Unreadable(why)) => return plain(StatusCode::BAD_REQUEST, why),
    };
    // 2. The rule: first match wins.
    let target = super::rules::Target { host: &original.host, path: original.path(), method: &original.method, client };
    let need = gw.rules.need(&target);
    let level = match need.policy {
        Policy::Bypass => return StatusCode::OK.into_response(),
        Policy::Deny => return plain(StatusCode::FORBIDDEN, "access to this address is denied"),
        Policy::OneFactor | Policy::TwoFactor => need.level().unwrap_or(2),
    };
    // 3. An access token, when one is sent: an API client.
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        return match bearer(state, headers, auth).await {
            Ok(who) if acr_level(&who.acr).unwrap_or(0) < level => insufficient(),
            Ok(who) => admit(state, &need, &who),
            Err(e) => e.into_response(),
        };
    }
    // 4. The gateway session of the cookie, on the device it was made on.
    let who = match cookie(state, headers) {
        None => None,
        Some(token) => match session::verify(state, &gw.cache, token).await {
            Err(session::Down) => return plain(StatusCode::SERVICE_UNAVAILABLE, "the session store is unreachable"),
            Ok(None) => None,
            Ok(Some(v)) => match same_device(state, gw, &v, headers, client).await {
                Ok(true) => Some(v),
                Ok(false) => None,
                Err(session::Down) => {
                    return plain(StatusCode::SERVICE_UNAVAILABLE, "the session store is unreachable");
                }
            },
        },
    };
    match who {
        Some(v) if acr_level(&v.who.acr).unwrap_or(0) >= level => admit(state, &need, &v.who),
        // Signed in, but the rule asks more: sign in again, which steps up.
        Some(_) => sign_in(state, gw, &original, headers, mode),
        None => sign_in(state, gw, &original, headers, mode),
    }
}

/// The gateway cookie's token.
pub fn cookie<'a>(state: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    crate::http::cookies::get(headers, &cookie_name(state), false).filter(|t| !t.is_empty())
}

/// The gateway cookie's name: `__Secure-` before it over https (it has a `Domain`, so it
/// cannot be `__Host-`).
pub fn cookie_name(state: &AppState) -> String {
    let base = &state.settings.gateway.cookie_name;
    if state.secure_cookies { format!("__Secure-{base}") } else { base.clone() }
}

/// Whether the request comes from the device the session was made on, as
/// `gateway.device_binding` judges it: `off` never looks, `audit` notes a mismatch (once per
/// session and node) and lets it pass, `enforce` ends the session.
async fn same_device(
    state: &AppState,
    gw: &Gateway,
    v: &session::Verified,
    headers: &HeaderMap,
    client: std::net::IpAddr,
) -> Result<bool, session::Down> {
    let binding = state.settings.gateway.device_binding;
    if binding == DeviceBinding::Off {
        return Ok(true);
    }
    if super::device::same(&super::device::fingerprint(state, headers, client), &v.session.device) {
        return Ok(true);
    }
    let now = state.now();
    let browser = crate::domain::user_agent::summary(crate::login::session::user_agent(headers).as_deref());
    let event = AuditEvent::new("gateway.device_mismatch")
        .user(&v.session.user_id)
        .ip(Some(client.to_string()))
        .detail("browser", browser);
    match binding {
        DeviceBinding::Enforce => {
            session::end_hash(state, &gw.cache, &v.hash).await?;
            state.store.audit(event.detail("action", "ended"), now).await;
            Ok(false)
        }
        _ => {
            if gw.cache.first_mismatch(&v.hash) {
                state.store.audit(event.detail("action", "audited"), now).await;
            }
            Ok(true)
        }
    }
}

/// The user of a Bearer access token, checked as userinfo checks it: a certificate-bound one
/// only with its certificate, passed by the proxy (RFC 8705 §3).
async fn bearer(state: &AppState, headers: &HeaderMap, auth: &HeaderValue) -> Result<Identity, BearerError> {
    let value = auth.to_str().map_err(|_| BearerError::InvalidRequest("the Authorization header is malformed"))?;
    let token = match value.trim().split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
        _ => return Err(BearerError::InvalidRequest("the Authorization header must be Bearer")),
    };
    let now = state.now();
    let at = read_bearer_token(state, headers, token, now).await?;
    let (grant, user) = active_grant_and_user(state, &at, now)
        .await?
        .ok_or(BearerError::InvalidToken("the access token is revoked or not issued for a user"))?;
    if user.disabled {
        return Err(BearerError::InvalidToken("the user is no longer active"));
    }
    let groups = state.store.user_groups(&user.id).await?;
    let name = user.claims.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    Ok(Identity { user_id: user.id, username: user.username, email: user.email, name, groups, acr: grant.acr })
}

/// 200 with the identity headers, or 403 for a user outside the rule's groups.
fn admit(state: &AppState, need: &Need, who: &Identity) -> Response {
    if !need.admits(&who.username, &who.groups) {
        return plain(StatusCode::FORBIDDEN, "this account may not use this application");
    }
    let names = &state.settings.gateway.headers;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    for (name, value) in [
        (&names.user, who.username.clone()),
        (&names.email, who.email.clone()),
        (&names.name, who.name.clone()),
        (&names.groups, who.groups.join(",")),
    ] {
        // Checked at start; a value with control characters is left out rather than sent broken.
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes())) {
            h.insert(n, v);
        }
    }
    resp
}

/// A browser is sent to sign in (nginx: told where); an API client gets a Bearer challenge.
fn sign_in(state: &AppState, gw: &Gateway, original: &request::Original, headers: &HeaderMap, mode: Mode) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
        && headers.get("x-requested-with").is_none();
    let domain = state.settings.gateway.cookie_domain.as_deref().unwrap_or_default();
    // Only addresses the rules name are returned to after sign-in (no open redirect).
    let returnable = gw.rules.covers(&original.host) && super::rules::within(&original.host, domain);
    if !wants_html || !returnable {
        return BearerError::Missing.into_response();
    }
    let location = format!(
        "{}{}?rd={}",
        state.issuer,
        super::SIGN_IN,
        form_urlencoded::byte_serialize(original.url().as_bytes()).collect::<String>()
    );
    let status = match mode {
        Mode::Redirect => StatusCode::FOUND,
        Mode::Nginx => StatusCode::UNAUTHORIZED,
    };
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// 401 for a token whose sign-in was weaker than the rule asks (RFC 9470).
fn insufficient() -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "insufficient_user_authentication",
            "error_description": "this address needs a sign-in with two factors",
        })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"latchkey\", error=\"insufficient_user_authentication\", acr_values=\"2\"",
        ),
    );
    resp
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    let mut resp = (status, message).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
