//! The login flow state machine.
//!
//! ```text
//!  /authorize ──► Authenticate(step) ──passed──► [policy: another step?] ──► Authenticate(next)
//!       │                 │ failed: same step again                │ no
//!       │                 ▼                                        ▼
//!       └──(signed in)──► Consent ──allow──► Complete: code to the client
//!                            └──deny──► access_denied to the client
//! ```
//!
//! A flow lives in the ephemeral store, is bound to the browser that started it (a cookie),
//! and every form it shows carries its CSRF token.

use super::steps::{Outcome, StepContext, StepKind};
use super::{policy, session};
use crate::app::AppState;
use crate::crypto::{constant_time_eq, hash_secret, random_token};
use crate::domain::{Client, Session};
use crate::http::{PageError, Params, cookies};
use crate::oidc::authorize::{AuthRequest, code, request::err, response};
use crate::pages;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Binds flows to the browser that started them.
const BROWSER_COOKIE: &str = "latchkey_browser";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flow {
    pub id: String,
    pub csrf: String,
    /// Hash of the browser cookie the flow belongs to.
    browser: String,
    pub request: AuthRequest,
    pub stage: Stage,
    /// Steps passed so far in this flow.
    pub passed: Vec<StepKind>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Stage {
    Authenticate { step: StepKind },
    Consent { session_id: String },
}

fn key(id: &str) -> String {
    format!("flow:{id}")
}

/// Starts a flow for `req`: at consent when `signed_in` is given, otherwise at the first step.
pub async fn start(
    state: &AppState,
    headers: &HeaderMap,
    req: AuthRequest,
    signed_in: Option<Session>,
) -> Result<Response, PageError> {
    let (browser, new_cookie) = match cookies::get(headers, BROWSER_COOKIE) {
        Some(v) if !v.is_empty() => (v.to_owned(), None),
        _ => {
            let v = random_token();
            let c = cookies::set(BROWSER_COOKIE, &v, 365 * 24 * 3600, state.secure_cookies);
            (v, Some(c))
        }
    };
    let stage = match signed_in {
        Some(s) => Stage::Consent { session_id: s.id },
        None => Stage::Authenticate { step: policy::first_step(&req) },
    };
    let flow = Flow {
        id: random_token(),
        csrf: random_token(),
        browser: hash_secret(&browser),
        request: req,
        stage,
        passed: Vec::new(),
    };
    save(state, &flow).await?;
    let mut resp = see_other(&location(&flow));
    if let Some(c) = new_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

fn location(flow: &Flow) -> String {
    match flow.stage {
        Stage::Authenticate { .. } => format!("/login/{}", flow.id),
        Stage::Consent { .. } => format!("/consent/{}", flow.id),
    }
}

async fn save(state: &AppState, flow: &Flow) -> Result<(), PageError> {
    let ttl = Duration::from_secs(state.settings.tokens.login_flow_ttl as u64);
    state.ephemeral.put(&key(&flow.id), &serde_json::to_string(flow).map_err(anyhow::Error::from)?, ttl).await?;
    Ok(())
}

/// The flow named in the path, if it exists and belongs to this browser.
async fn load(state: &AppState, headers: &HeaderMap, id: &str) -> Result<(Flow, Arc<Client>), PageError> {
    let flow: Flow = state
        .ephemeral
        .get(&key(id))
        .await?
        .and_then(|json| serde_json::from_str(&json).ok())
        .ok_or_else(PageError::expired)?;
    let browser = cookies::get(headers, BROWSER_COOKIE).map(hash_secret).unwrap_or_default();
    if !constant_time_eq(browser.as_bytes(), flow.browser.as_bytes()) {
        return Err(PageError::forbidden(
            "This sign-in was started in another browser. Go back to the application and start again.",
        ));
    }
    let client = state.store.client(&flow.request.client_id).await?.ok_or_else(PageError::expired)?;
    Ok((flow, client))
}

/// Parses a flow form and checks its CSRF token.
fn form(flow: &Flow, headers: &HeaderMap, body: &[u8]) -> Result<Params, PageError> {
    let p = Params::from_form(headers, body)
        .map_err(|m| PageError::bad_request("invalid_request", "The form could not be read", m))?;
    match p.get("csrf") {
        Some(t) if constant_time_eq(t.as_bytes(), flow.csrf.as_bytes()) => Ok(p),
        _ => Err(PageError::forbidden(
            "The form was not sent by this sign-in page (CSRF check failed). Reload the page and try again.",
        )),
    }
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn ip(addr: &SocketAddr) -> Option<String> {
    Some(addr.ip().to_string())
}

/// GET /login/{flow}: the current step's page.
pub async fn show_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (flow, client) = load(&state, &headers, &id).await?;
    let Stage::Authenticate { step } = flow.stage else { return Ok(see_other(&location(&flow))) };
    let ctx = StepContext { state: &state, flow: &flow, client: &client, ip: None, now: state.now() };
    Ok(step.render(&ctx, None, None))
}

/// POST /login/{flow}: judge the step, then follow the policy.
pub async fn submit_step(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (mut flow, client) = load(&state, &headers, &id).await?;
    let Stage::Authenticate { step } = flow.stage else { return Ok(see_other(&location(&flow))) };
    let p = form(&flow, &headers, &body)?;
    let now = state.now();
    let ip = ip(&addr);
    let ctx = StepContext { state: &state, flow: &flow, client: &client, ip: ip.clone(), now };
    match step.submit(&ctx, &p).await? {
        Outcome::Failed { message, reason, user_id } => {
            let mut event = AuditEvent::new("login.failed")
                .client(&client.id)
                .ip(ip)
                .detail("step", step.name())
                .detail("reason", reason);
            if let Some(u) = &user_id {
                event = event.user(u);
            }
            state.store.audit(event, now).await;
            Ok(step.render(&ctx, Some(message), Some(&p)))
        }
        Outcome::Passed { user_id, amr } => {
            let event = AuditEvent::new("login.step_passed")
                .user(&user_id)
                .client(&client.id)
                .ip(ip.clone())
                .detail("step", step.name());
            state.store.audit(event, now).await;
            flow.passed.push(step);
            if let Some(next) = policy::next_step(&flow.request, &flow.passed) {
                flow.stage = Stage::Authenticate { step: next };
                save(&state, &flow).await?;
                return Ok(see_other(&location(&flow)));
            }
            let acr = policy::acr_for(&amr);
            let (session, cookie) = session::establish(&state, &headers, &user_id, amr, acr, now).await?;
            state
                .store
                .audit(
                    AuditEvent::new("login.succeeded")
                        .user(&user_id)
                        .client(&client.id)
                        .ip(ip)
                        .detail("sid", session.id.clone()),
                    now,
                )
                .await;
            let consented = state.store.consented_scopes(&user_id, &client.id).await?;
            let mut resp = if policy::needs_consent(&flow.request, &client, &consented) {
                flow.stage = Stage::Consent { session_id: session.id.clone() };
                save(&state, &flow).await?;
                see_other(&location(&flow))
            } else {
                complete(&state, &flow, &session).await?
            };
            if let Some(c) = cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(resp)
        }
    }
}

/// GET /consent/{flow}: what the client asks for.
pub async fn show_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (flow, client) = load(&state, &headers, &id).await?;
    let Stage::Consent { session_id } = &flow.stage else { return Ok(see_other(&location(&flow))) };
    let session = state.store.session(session_id, state.now()).await?.ok_or_else(PageError::expired)?;
    let user = state.store.user(&session.user_id).await?.ok_or_else(PageError::expired)?;
    let action = format!("/consent/{}", flow.id);
    let scopes = flow
        .request
        .scopes
        .iter()
        .map(|s| pages::ScopeLine { name: s.clone(), description: scope_description(s) })
        .collect();
    let page = pages::ConsentPage {
        action: &action,
        csrf: &flow.csrf,
        client_name: &client.name,
        username: &user.username,
        scopes,
    };
    Ok(pages::render(StatusCode::OK, &page))
}

/// POST /consent/{flow}: allow (remembered) or deny (`access_denied`, RFC 6749 §4.1.2.1).
pub async fn submit_consent(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (flow, client) = load(&state, &headers, &id).await?;
    let Stage::Consent { session_id } = &flow.stage else { return Ok(see_other(&location(&flow))) };
    let p = form(&flow, &headers, &body)?;
    let now = state.now();
    let session = state.store.session(session_id, now).await?.ok_or_else(PageError::expired)?;
    let event = |kind| {
        AuditEvent::new(kind)
            .user(&session.user_id)
            .client(&client.id)
            .ip(ip(&addr))
            .detail("scope", flow.request.scopes.join(" "))
    };
    match p.get("decision") {
        Some("allow") => {
            state.store.grant_consent(&session.user_id, &client.id, &flow.request.scopes, now).await?;
            state.store.audit(event("consent.granted"), now).await;
            complete(&state, &flow, &session).await
        }
        Some("deny") => {
            state.ephemeral.delete(&key(&flow.id)).await?;
            state.store.audit(event("consent.denied"), now).await;
            Ok(response::error(&state, &flow.request.target, &err("access_denied", "the user denied the request")))
        }
        _ => Err(PageError::bad_request("invalid_request", "The form could not be read", "Choose Allow or Deny.")),
    }
}

/// The flow is done: forget it and answer the client with a code.
async fn complete(state: &AppState, flow: &Flow, session: &Session) -> Result<Response, PageError> {
    state.ephemeral.delete(&key(&flow.id)).await?;
    let code = code::issue(state, &flow.request, session).await?;
    Ok(response::code(state, &flow.request.target, &code))
}

fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "know who you are",
        "profile" => "see your name and profile details",
        "email" => "see your email address",
        "address" => "see your postal address",
        "phone" => "see your phone number",
        "offline_access" => "keep access while you are away",
        _ => "access this",
    }
}
