//! The gateway's sign-in and sign-out, on the provider's own host.
//!
//! `GET /gateway/sign-in?rd=URL` — where a check sends a browser. `rd` must be an http(s)
//! address on a host the rules name, under `gateway.cookie_domain` (no open redirect). With no
//! provider session, the normal login flow runs (every factor) and returns here; with one
//! weaker than the rule asks, a step-up flow does; then a gateway session bound to the provider
//! session is made, its cookie set for the parent domain, and the browser goes back to `rd`.
//!
//! `GET /gateway/sign-out[?rd=URL]` shows a form (CSRF-bound to this browser's cookies);
//! posting it ends the gateway session and the provider session (with every gateway session
//! made from it), and clears both cookies.

use super::session::{self, GatewaySession};
use super::{Gateway, check, device};
use crate::crypto::{constant_time_eq, hash_secret};
use crate::http::client_ip::ClientAddr;
use crate::http::{PageError, Params, cookies};
use crate::login::flow::{self, Entry, HandBack};
use crate::login::policy::{self, acr_level};
use crate::login::routes::see_other;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

fn reply(r: Result<Response, PageError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

fn invalid(message: &str) -> PageError {
    PageError::bad_request("invalid_request", "This sign-in address is not valid", message)
}

/// `rd` as a URL the gateway may send the browser back to, with its host.
fn returnable(state: &AppState, gw: &Gateway, rd: &str) -> Option<(url::Url, String)> {
    let u = url::Url::parse(rd).ok()?;
    let host = u.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let domain = state.settings.gateway.cookie_domain.as_deref()?;
    (matches!(u.scheme(), "http" | "https")
        && u.username().is_empty()
        && gw.rules.covers(&host)
        && super::rules::within(&host, domain))
    .then_some((u, host))
}

fn encoded(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn sign_in(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    reply(run_sign_in(&state, &gw, client, &headers, q.as_deref().unwrap_or_default()).await)
}

async fn run_sign_in(
    state: &AppState,
    gw: &Gateway,
    client: IpAddr,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, PageError> {
    let p = Params::parse(query.as_bytes()).map_err(invalid)?;
    let rd = p.get("rd").ok_or_else(|| invalid("It names no address to return to."))?;
    // 1. Only back to a host the rules protect (no open redirect).
    let (url, host) = returnable(state, gw, rd)
        .ok_or_else(|| invalid("The address to return to is not one this gateway protects."))?;
    // 2. What the rule of that address asks.
    let target = super::rules::Target { host: &host, path: url.path(), method: "GET", client };
    let need = gw.rules.need(&target);
    let Some(level) = need.level() else {
        return match need.policy {
            crate::config::gateway::Policy::Bypass => Ok(see_other(url.as_str())),
            _ => Err(PageError::forbidden("Access to this address is denied.")),
        };
    };
    // 3. A provider session good enough for it, else the login flow, which comes back here.
    let here = format!("{}?rd={}", super::SIGN_IN, encoded(url.as_str()));
    let now = state.now();
    let Some(provider) = crate::login::session::current(state, headers, now).await? else {
        return start(state, headers, client, &here, Entry::SignIn).await;
    };
    if acr_level(&provider.acr).unwrap_or(0) < level {
        let factors = flow::factors_of(state, &provider.user_id).await?;
        return match policy::step_up_step(&provider.amr, &factors) {
            Some(step) => start(state, headers, client, &here, Entry::StepUp(provider, step)).await,
            None => Err(PageError::forbidden(
                "This application asks for a second factor. Set one up on your account security page \
                 (/account/security), then open the application again.",
            )),
        };
    }
    // 4. The user must be one the rule admits.
    let user = state.store.user(&provider.user_id).await?.filter(|u| !u.disabled).ok_or_else(PageError::expired)?;
    let groups = state.store.user_groups(&user.id).await?;
    if !need.admits(&user.username, &groups) {
        return Err(PageError::forbidden("Your account may not use this application."));
    }
    // 5. A new gateway session (a planted or old cookie is worth nothing after a sign-in).
    if let Some(old) = check::cookie(state, headers) {
        session::end(state, &gw.cache, old).await?;
    }
    let g = &state.settings.gateway;
    let fingerprint = device::fingerprint(state, headers, client);
    let s = GatewaySession {
        sid: provider.id.clone(),
        user_id: user.id.clone(),
        acr: provider.acr.clone(),
        created_at: now,
        last_seen_at: now,
        device: fingerprint.current.clone(),
        host: host.clone(),
    };
    let token = session::create(state, &s).await?;
    let browser = crate::domain::user_agent::summary(crate::login::session::user_agent(headers).as_deref());
    device::note_sign_in(state, &user.id, &fingerprint, &browser, client, &host).await?;
    let event = AuditEvent::new("gateway.sign_in").user(&user.id).ip(Some(client.to_string()));
    state.store.audit(event.detail("host", host).detail("acr", s.acr.clone()).detail("sid", s.sid.clone()), now).await;
    let mut resp = see_other(url.as_str());
    let max_age = provider.persistent.then_some(g.session_ttl);
    resp.headers_mut().append(header::SET_COOKIE, gateway_cookie(state, &token, max_age));
    Ok(resp)
}

/// A login flow that comes back to `here`.
async fn start(
    state: &AppState,
    headers: &HeaderMap,
    client: IpAddr,
    here: &str,
    entry: Entry,
) -> Result<Response, PageError> {
    let (location, cookie) =
        flow::start(state, headers, client, None, HandBack::Return(here.to_owned()), entry).await?;
    let mut resp = see_other(&location);
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// The gateway cookie: for the whole of `gateway.cookie_domain`, `HttpOnly`, `SameSite=Lax`,
/// `Secure` unless the issuer is plain-http development.
fn gateway_cookie(state: &AppState, value: &str, max_age: Option<i64>) -> HeaderValue {
    let name = check::cookie_name(state);
    let domain = state.settings.gateway.cookie_domain.as_deref().unwrap_or_default();
    let lifetime = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Domain={domain}; Path=/; HttpOnly; SameSite=Lax{lifetime}{secure}"))
        .expect("cookie values are base64url and the domain was checked")
}

#[derive(serde::Serialize)]
struct SignOutPage<'a> {
    csrf: &'a str,
    rd: Option<&'a str>,
}

crate::pages::template!(SignOutPage<'a>, "gateway_sign_out.html");

/// The CSRF token of the sign-out form: bound to this browser's gateway cookie, or its provider
/// cookie; none when it has neither (nothing to sign out of).
fn csrf(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let token = check::cookie(state, headers)
        .or_else(|| cookies::get(headers, cookies::SESSION, state.secure_cookies).filter(|t| !t.is_empty()))?;
    Some(hash_secret(&format!("gateway-sign-out:{token}")))
}

pub async fn sign_out_page(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref().unwrap_or_default().as_bytes()).unwrap_or_default();
    let rd = p.get("rd").filter(|rd| returnable(&state, &gw, rd).is_some());
    match csrf(&state, &headers) {
        Some(csrf) => crate::pages::render(StatusCode::OK, &SignOutPage { csrf: &csrf, rd }),
        None => crate::pages::render(StatusCode::OK, &crate::pages::LoggedOutPage { frames: &[], next: None }),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(run_sign_out(&state, &gw, client, &headers, &body).await)
}

async fn run_sign_out(
    state: &AppState,
    gw: &Gateway,
    client: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PageError> {
    let expected = csrf(state, headers).unwrap_or_default();
    let p = crate::http::form::page_form(headers, body, &expected)?;
    if expected.is_empty() || !constant_time_eq(p.get("csrf").unwrap_or_default().as_bytes(), expected.as_bytes()) {
        return Err(PageError::forbidden("There is no sign-in to end in this browser."));
    }
    let now = state.now();
    if let Some(token) = check::cookie(state, headers) {
        session::end(state, &gw.cache, token).await?;
    }
    if let Some(s) = crate::login::session::current(state, headers, now).await? {
        state.store.end_session(&s.id, now).await?;
        for hash in session::end_for(state, &s.user_id, Some(&s.id)).await? {
            gw.cache.forget(&hash);
        }
        let event = AuditEvent::new("logout").user(&s.user_id).ip(Some(client.to_string()));
        state.store.audit(event.detail("sid", s.id.clone()).detail("via", "gateway"), now).await;
    }
    let mut resp = match p.get("rd").and_then(|rd| returnable(state, gw, rd)) {
        Some((url, _)) => see_other(url.as_str()),
        None => crate::pages::render(StatusCode::OK, &crate::pages::LoggedOutPage { frames: &[], next: None }),
    };
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, gateway_cookie(state, "", Some(0)));
    h.append(header::SET_COOKIE, cookies::clear(cookies::SESSION, state.secure_cookies));
    Ok(resp)
}
