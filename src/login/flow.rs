//! The login flow state machine.
//!
//! ```text
//!  /authorize ──► Authenticate(step) ──passed──► [policy: another step?] ──► Authenticate(next)
//!   │  │  /account    │ failed: same step again       │ no            │ unmet
//!   │  │              │ (or switch to an alternative) ▼               ▼
//!   │  │              │        session (acr, amr) ─► [recovery code? Notice]   error to the client
//!   │  └─(one factor, step-up)─► Authenticate(passkey|totp)
//!   └──(signed in)──► Consent ──allow──► Complete: code to the client (or back to /account)
//!                        └──deny──► access_denied to the client
//! ```
//!
//! A flow lives in the ephemeral store, is bound to the browser that started it (a cookie),
//! and every form it shows carries its CSRF token.

use super::policy::{self, Factors, Next, Requirement};
use super::session;
pub use super::steps::federation::PendingLink;
use super::steps::{Outcome, StepContext, StepKind};
use crate::crypto::{constant_time_eq, hash_secret, random_token};
use crate::domain::{Client, Session};
use crate::http::{PageError, Params, cookies};
use crate::oidc::authorize::{AuthRequest, code, request::err, response};
use crate::pages;
use crate::state::AppState;
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
    pub purpose: Purpose,
    pub stage: Stage,
    /// Steps passed so far in this flow.
    pub passed: Vec<StepKind>,
    /// The user the first factor identified (or the session's user, for a step-up).
    pub user_id: Option<String>,
    /// `amr` values proven so far (RFC 8176).
    pub amr: Vec<String>,
    /// An upstream identity whose email matches an account: linked to that account only once
    /// this flow has signed in to it (`steps::federation`).
    #[serde(default)]
    pub pending_link: Option<PendingLink>,
}

/// What the sign-in is for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Purpose {
    /// An authorization request from a client.
    Authorize(Box<AuthRequest>),
    /// The account pages: sign in (again) and return to `return_to`, a local path.
    Account { return_to: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Stage {
    Authenticate {
        step: StepKind,
    },
    /// Signed in with a recovery code: say how many are left before going on.
    RecoveryNotice {
        session_id: String,
    },
    Consent {
        session_id: String,
    },
}

/// Where a flow starts.
pub enum Entry {
    /// No usable session: the first step.
    SignIn,
    /// A one-factor session that must add a second factor: this step.
    StepUp(Session, StepKind),
    /// Signed in; only consent is missing.
    Consent(Session),
}

impl Flow {
    pub fn login_hint(&self) -> Option<&str> {
        match &self.purpose {
            Purpose::Authorize(req) => req.login_hint.as_deref(),
            Purpose::Account { .. } => None,
        }
    }

    fn requirement(&self, client: Option<&Client>) -> Requirement {
        match (&self.purpose, client) {
            (Purpose::Authorize(req), Some(c)) => policy::requirement(req, c),
            _ => Requirement::ACCOUNT,
        }
    }
}

fn key(id: &str) -> String {
    format!("flow:{id}")
}

/// Starts a flow for `purpose` at `entry`.
pub async fn start(
    state: &AppState,
    headers: &HeaderMap,
    purpose: Purpose,
    entry: Entry,
) -> Result<Response, PageError> {
    let (browser, new_cookie) = match cookies::get(headers, BROWSER_COOKIE) {
        Some(v) if !v.is_empty() => (v.to_owned(), None),
        _ => {
            let v = random_token();
            let c = cookies::set(BROWSER_COOKIE, &v, 365 * 24 * 3600, state.secure_cookies);
            (v, Some(c))
        }
    };
    let (stage, user_id, amr) = match entry {
        Entry::SignIn => (Stage::Authenticate { step: policy::first_step() }, None, Vec::new()),
        Entry::StepUp(s, step) => (Stage::Authenticate { step }, Some(s.user_id), s.amr),
        Entry::Consent(s) => (Stage::Consent { session_id: s.id }, None, Vec::new()),
    };
    let flow = Flow {
        id: random_token(),
        csrf: random_token(),
        browser: hash_secret(&browser),
        purpose,
        stage,
        passed: Vec::new(),
        user_id,
        amr,
        pending_link: None,
    };
    save(state, &flow).await?;
    let mut resp = see_other(&location(&flow));
    if let Some(c) = new_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

pub(crate) fn location(flow: &Flow) -> String {
    match flow.stage {
        Stage::Authenticate { .. } | Stage::RecoveryNotice { .. } => format!("/login/{}", flow.id),
        Stage::Consent { .. } => format!("/consent/{}", flow.id),
    }
}

pub(crate) async fn save(state: &AppState, flow: &Flow) -> Result<(), PageError> {
    let ttl = Duration::from_secs(state.settings.tokens.login_flow_ttl as u64);
    state.ephemeral.put(&key(&flow.id), &serde_json::to_string(flow).map_err(anyhow::Error::from)?, ttl).await?;
    Ok(())
}

/// The flow named in the path, if it exists and belongs to this browser, and its client.
pub(crate) async fn load(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Flow, Option<Arc<Client>>), PageError> {
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
    let client = match &flow.purpose {
        Purpose::Authorize(req) => Some(state.store.client(&req.client_id).await?.ok_or_else(PageError::expired)?),
        Purpose::Account { .. } => None,
    };
    Ok((flow, client))
}

/// Parses a flow form and checks its CSRF token.
pub(crate) fn form(flow: &Flow, headers: &HeaderMap, body: &[u8]) -> Result<Params, PageError> {
    crate::http::form::page_form(headers, body, &flow.csrf)
}

pub fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn ip(addr: &SocketAddr) -> Option<String> {
    Some(addr.ip().to_string())
}

/// The second factors `user_id` has enrolled (passkeys only while WebAuthn is on).
pub async fn factors(state: &AppState, user_id: &str) -> crate::store::Result<Factors> {
    let (totp, email, passkey) = state.store.second_factors(user_id).await?;
    Ok(Factors { totp, email, passkey: passkey && state.webauthn.is_some() })
}

/// The factors of the flow's user, once one is identified.
async fn flow_factors(state: &AppState, flow: &Flow) -> crate::store::Result<Factors> {
    match &flow.user_id {
        Some(u) => factors(state, u).await,
        None => Ok(Factors::default()),
    }
}

/// What a step is given, with the factors of the user identified so far.
async fn context<'a>(
    state: &'a AppState,
    flow: &'a Flow,
    client: Option<&'a Client>,
    ip: Option<String>,
) -> Result<StepContext<'a>, PageError> {
    let factors = flow_factors(state, flow).await?;
    Ok(StepContext { state, flow, client, ip, now: state.now(), factors })
}

/// GET /login/{flow}: the current step's page.
pub async fn show_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (flow, client) = load(&state, &headers, &id).await?;
    match &flow.stage {
        Stage::Authenticate { step } => {
            let ctx = context(&state, &flow, client.as_deref(), None).await?;
            step.render(&ctx, None, None).await
        }
        Stage::RecoveryNotice { session_id } => {
            let session = state.store.session(session_id, state.now()).await?.ok_or_else(PageError::expired)?;
            let left = state.store.recovery_codes_left(&session.user_id).await?;
            let action = format!("/login/{}", flow.id);
            Ok(pages::render(StatusCode::OK, &pages::RecoveryNoticePage { action: &action, csrf: &flow.csrf, left }))
        }
        Stage::Consent { .. } => Ok(see_other(&location(&flow))),
    }
}

/// POST /login/{flow}: judge the step (or switch to an alternative), then follow the policy.
pub async fn submit_step(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (mut flow, client) = load(&state, &headers, &id).await?;
    let step = match &flow.stage {
        Stage::Authenticate { step } => *step,
        Stage::RecoveryNotice { session_id } => {
            form(&flow, &headers, &body)?;
            let session = state.store.session(session_id, state.now()).await?.ok_or_else(PageError::expired)?;
            return proceed(&state, flow, client.as_deref(), &session).await;
        }
        Stage::Consent { .. } => return Ok(see_other(&location(&flow))),
    };
    let p = form(&flow, &headers, &body)?;
    let factors = flow_factors(&state, &flow).await?;
    // "Use a recovery code instead": only to a step the policy offers in place of this one.
    let email_first = state.settings.login.email_first_factor;
    if let Some(name) = p.get("switch") {
        let offered = policy::alternatives(step, flow.user_id.is_some(), factors, email_first);
        let to = StepKind::parse(name).filter(|k| offered.contains(k));
        let Some(to) = to else {
            return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown step."));
        };
        flow.stage = Stage::Authenticate { step: to };
        save(&state, &flow).await?;
        return Ok(see_other(&location(&flow)));
    }
    // A form may answer an alternative of the current step directly: the passkey offered on
    // the password page.
    let identified = flow.user_id.is_some();
    let step = match p.get("step").map(StepKind::parse) {
        None => step,
        Some(Some(k)) if policy::answerable(step, k, identified, factors, email_first) => k,
        Some(_) => {
            return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown step."));
        }
    };
    let now = state.now();
    let ip = ip(&addr);
    let client_id = client.as_ref().map(|c| c.id.clone());
    let audit = |kind| {
        let e = AuditEvent::new(kind).ip(ip.clone()).detail("step", step.name());
        match &client_id {
            Some(c) => e.client(c),
            None => e,
        }
    };
    let ctx = context(&state, &flow, client.as_deref(), ip.clone()).await?;
    let (user_id, amr) = match step.submit(&ctx, &p).await? {
        Outcome::Continue(page) => return Ok(page),
        Outcome::Failed { message, reason, user_id } => {
            let mut event = audit("login.failed").detail("reason", reason);
            if let Some(u) = &user_id {
                event = event.user(u);
            }
            state.store.audit(event, now).await;
            return step.render(&ctx, Some(message), Some(&p)).await;
        }
        Outcome::Passed { user_id, amr } => (user_id, amr),
    };
    advance(&state, &headers, ip, flow, client.as_deref(), step, user_id, amr).await
}

/// A step has passed for `user_id` with `amr`: record it and follow the policy — another
/// step, the session, or unmet requirements.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn advance(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    mut flow: Flow,
    client: Option<&Client>,
    step: StepKind,
    user_id: String,
    amr: Vec<String>,
) -> Result<Response, PageError> {
    let now = state.now();
    let client_id = client.map(|c| c.id.clone());
    let audit = |kind| {
        let e = AuditEvent::new(kind).ip(ip.clone()).detail("step", step.name());
        match &client_id {
            Some(c) => e.client(c),
            None => e,
        }
    };
    // A later step proves the user the first one identified, never someone else.
    if flow.user_id.as_ref().is_some_and(|u| *u != user_id) {
        return Err(PageError::forbidden("This sign-in changed hands. Go back to the application and start again."));
    }
    state.store.audit(audit("login.step_passed").user(&user_id), now).await;
    flow.user_id = Some(user_id.clone());
    flow.passed.push(step);
    flow.amr = policy::after_federation(&flow.passed, policy::combine_amr(&flow.amr, &amr));
    let need = flow.requirement(client);
    match policy::next_step(need, &flow.passed, &flow.amr, factors(state, &user_id).await?) {
        Next::Step(next) => {
            flow.stage = Stage::Authenticate { step: next };
            save(state, &flow).await?;
            Ok(see_other(&location(&flow)))
        }
        Next::Unmet => {
            state.ephemeral.delete(&key(&flow.id)).await?;
            state.store.audit(audit("login.unmet_requirements").user(&user_id), now).await;
            Ok(unmet(state, &flow.purpose))
        }
        Next::Done => {
            let acr = policy::acr_for(&flow.amr);
            let (session, cookie) = session::establish(state, headers, &user_id, flow.amr.clone(), acr, now).await?;
            if let Some(link) = flow.pending_link.take() {
                super::steps::federation::link_proven(state, link, &user_id, ip.clone(), now).await?;
            }
            let event = audit("login.succeeded").user(&user_id).detail("sid", session.id.clone()).detail("acr", acr);
            state.store.audit(event, now).await;
            let mut resp = if step == StepKind::RecoveryCode {
                flow.stage = Stage::RecoveryNotice { session_id: session.id.clone() };
                save(state, &flow).await?;
                see_other(&location(&flow))
            } else {
                proceed(state, flow, client, &session).await?
            };
            if let Some(c) = cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(resp)
        }
    }
}

/// POST /login/{flow}/passkey: a WebAuthn challenge for the page's script, when the current
/// step is the passkey or offers it.
pub async fn passkey_challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (flow, client) = load(&state, &headers, &id).await?;
    let Stage::Authenticate { step } = flow.stage else { return Err(PageError::expired()) };
    form(&flow, &headers, &body)?;
    let ctx = context(&state, &flow, client.as_deref(), None).await?;
    let email_first = state.settings.login.email_first_factor;
    if !policy::answerable(step, StepKind::Passkey, flow.user_id.is_some(), ctx.factors, email_first) {
        return Err(PageError::not_found("This step has no passkey."));
    }
    super::steps::passkey::challenge(&ctx).await
}

/// The answer when the required acr cannot be reached: to a client,
/// `unmet_authentication_requirements` (OpenID Connect Core Unmet Authentication Requirements
/// 1.0 §1: SHALL for an essential `acr`, MAY otherwise) rather than a weaker login.
pub fn unmet(state: &AppState, purpose: &Purpose) -> Response {
    match purpose {
        Purpose::Authorize(req) => response::error(
            state,
            &req.target,
            &err(
                "unmet_authentication_requirements",
                "the requested authentication context needs a second factor the user has not set up",
            ),
        ),
        Purpose::Account { .. } => {
            PageError::forbidden("This sign-in cannot reach the required assurance.").into_response()
        }
    }
}

/// Signed in: on to consent, the client, or back to the account page.
async fn proceed(
    state: &AppState,
    mut flow: Flow,
    client: Option<&Client>,
    session: &Session,
) -> Result<Response, PageError> {
    let (Purpose::Authorize(req), Some(client)) = (&flow.purpose, client) else {
        state.ephemeral.delete(&key(&flow.id)).await?;
        let Purpose::Account { return_to } = &flow.purpose else { return Err(PageError::expired()) };
        return Ok(see_other(return_to));
    };
    let consented = state.store.consented_scopes(&session.user_id, &client.id).await?;
    if policy::needs_consent(req, client, &consented) {
        flow.stage = Stage::Consent { session_id: session.id.clone() };
        save(state, &flow).await?;
        Ok(see_other(&location(&flow)))
    } else {
        complete(state, &flow, session).await
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
    let (request, client) = authorize_parts(&flow, client.as_deref())?;
    let session = state.store.session(session_id, state.now()).await?.ok_or_else(PageError::expired)?;
    let user = state.store.user(&session.user_id).await?.ok_or_else(PageError::expired)?;
    let action = format!("/consent/{}", flow.id);
    let scopes = request
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
    let (request, client) = authorize_parts(&flow, client.as_deref())?;
    let p = form(&flow, &headers, &body)?;
    let now = state.now();
    let session = state.store.session(session_id, now).await?.ok_or_else(PageError::expired)?;
    let event = |kind| {
        AuditEvent::new(kind)
            .user(&session.user_id)
            .client(&client.id)
            .ip(ip(&addr))
            .detail("scope", request.scopes.join(" "))
    };
    match p.get("decision") {
        Some("allow") => {
            state.store.grant_consent(&session.user_id, &client.id, &request.scopes, now).await?;
            state.store.audit(event("consent.granted"), now).await;
            complete(&state, &flow, &session).await
        }
        Some("deny") => {
            state.ephemeral.delete(&key(&flow.id)).await?;
            state.store.audit(event("consent.denied"), now).await;
            Ok(response::error(&state, &request.target, &err("access_denied", "the user denied the request")))
        }
        _ => Err(PageError::bad_request("invalid_request", "The form could not be read", "Choose Allow or Deny.")),
    }
}

/// The flow is done: forget it and answer the client with a code.
async fn complete(state: &AppState, flow: &Flow, session: &Session) -> Result<Response, PageError> {
    let Purpose::Authorize(request) = &flow.purpose else { return Err(PageError::expired()) };
    state.ephemeral.delete(&key(&flow.id)).await?;
    let code = code::issue(state, request, session).await?;
    Ok(response::code(state, &request.target, &code))
}

/// The request and client of a flow that serves a client; consent exists only there.
fn authorize_parts<'a>(flow: &'a Flow, client: Option<&'a Client>) -> Result<(&'a AuthRequest, &'a Client), PageError> {
    match (&flow.purpose, client) {
        (Purpose::Authorize(request), Some(client)) => Ok((&**request, client)),
        _ => Err(PageError::expired()),
    }
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
