//! The login flow state machine.
//!
//! ```text
//!  start(SignIn) ──► Authenticate(first step) ──passed──► [policy: another step?] ──► Authenticate(next)
//!  start(StepUp) ──► Authenticate(that step)     │ failed: same step again        │ no          │ unmet
//!                                                │ (or switch to an alternative)  ▼             ▼
//!                                                │                  session (acr, amr)        Unmet
//!                                                │                    │ a step's page to show first? Notice
//!  start(SignedIn) ───────────────────────────────────────────────►  SignedIn ──► hand back
//!  Authenticate(any step) ──cancel (a flow with a resume route)──► Cancelled ──► hand back
//! ```
//!
//! A flow lives in the ephemeral store and is bound to the browser that started it (a cookie);
//! every form it shows carries its CSRF token. It serves whoever started it — the authorization
//! endpoint or the account pages — and **hands back** when the user is signed in (or the
//! requirement cannot be met): to the starter's resume route with the flow kept
//! ([`HandBack::Resume`]), or to a local path with the flow ended ([`HandBack::Return`]). What
//! happens next (consent, a code, an account page) is the starter's business: nothing here
//! knows the protocol.

use super::policy::{self, Factors, Next, Requirement};
use super::session;
use super::step::{Ctx, Passed};
use super::steps::{self, StepKind};
use crate::crypto::{constant_time_eq, hash_secret, random_token};
use crate::domain::{AuthRequest, Client, Credentials, Session};
use crate::http::client_ip::limit_key;
use crate::http::{PageError, Params, cookies};
use crate::pages::{self, Switch};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;
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
    /// The authorization request it serves; none when it serves the account pages.
    pub request: Option<Box<AuthRequest>>,
    pub hand_back: HandBack,
    pub stage: Stage,
    /// Steps passed so far in this flow.
    pub passed: Vec<StepKind>,
    /// The user the first step identified (or the session's user, for a step-up).
    pub user_id: Option<String>,
    /// `amr` values proven so far (RFC 8176).
    pub amr: Vec<String>,
    /// What steps asked to keep until the user is signed in ([`super::step::Outcome::Hold`]).
    held: Vec<(StepKind, Value)>,
    /// Why this sign-in is asked, and the name to prefill, when a step said so.
    notice: Option<String>,
    hint: Option<String>,
    /// "Remember me": whether the session cookie should outlive the browser.
    #[serde(default)]
    pub remember: bool,
}

/// Where a flow goes once the user is signed in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HandBack {
    /// To `{path}/{flow id}`, a route of the starter, which reads the flow there and ends it.
    Resume(String),
    /// To this local path; the flow ends.
    Return(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Stage {
    Authenticate {
        step: StepKind,
    },
    /// Signed in; a page the last step asked to show before going on.
    Notice {
        session_id: String,
        html: String,
    },
    /// Signed in: handed back.
    SignedIn {
        session_id: String,
    },
    /// The required assurance cannot be reached: handed back to say so.
    Unmet,
    /// The person cancelled the sign-in: handed back to say so (the starter answers its client
    /// that the user refused).
    Cancelled,
}

/// The `switch` value of the "Cancel" button every step's page of a flow with a resume route
/// shows, among the switches.
pub const CANCEL: &str = "cancel";

/// Where a flow starts.
pub enum Entry {
    /// No usable session: the first step.
    SignIn,
    /// A session that must add a factor: this step.
    StepUp(Session, StepKind),
    /// Signed in already: handed back at once (the starter has more to ask, e.g. consent).
    SignedIn(Session),
}

fn key(id: &str) -> String {
    format!("flow:{id}")
}

/// The steps that may start a sign-in here, in registry order.
pub fn firsts(state: &AppState) -> Vec<StepKind> {
    StepKind::ALL.iter().copied().filter(|s| s.first_factor(state)).collect()
}

/// The second-factor steps of `user_id`, read in one query.
pub async fn factors_of(state: &AppState, user_id: &str) -> crate::store::Result<Factors> {
    Ok(steps::enrolled(state, &state.store.credentials(user_id).await?))
}

impl Flow {
    pub fn client_id(&self) -> Option<&str> {
        self.request.as_ref().map(|r| r.client_id.as_str())
    }

    /// Where the browser goes to see this flow now.
    pub fn location(&self) -> String {
        match (&self.stage, &self.hand_back) {
            (Stage::Authenticate { .. } | Stage::Notice { .. }, _) => format!("/login/{}", self.id),
            (_, HandBack::Resume(path)) => format!("{path}/{}", self.id),
            (_, HandBack::Return(path)) => path.clone(),
        }
    }

    /// The session it signed in, once handed back.
    pub fn session_id(&self) -> Option<&str> {
        match &self.stage {
            Stage::SignedIn { session_id } => Some(session_id),
            _ => None,
        }
    }

    pub fn unmet(&self) -> bool {
        matches!(self.stage, Stage::Unmet)
    }

    pub fn cancelled(&self) -> bool {
        matches!(self.stage, Stage::Cancelled)
    }

    /// Whether the person may cancel: only where the starter has a resume route to answer its
    /// client with the refusal (an account page has nothing to go back to).
    pub fn cancellable(&self) -> bool {
        matches!(self.hand_back, HandBack::Resume(_))
    }

    fn requirement(&self, client: Option<&Client>) -> Requirement {
        match (&self.request, client) {
            (Some(req), Some(c)) => policy::requirement(req, c),
            _ => Requirement::ACCOUNT,
        }
    }

    /// What a step of this flow may see.
    pub(super) async fn ctx<'a>(
        &'a self,
        state: &'a AppState,
        step: StepKind,
        client: Option<&'a Client>,
        ip: Option<String>,
    ) -> Result<Ctx<'a>, PageError> {
        let credentials = match &self.user_id {
            Some(u) => state.store.credentials(u).await?,
            None => Credentials::default(),
        };
        let mut switches: Vec<Switch> =
            policy::alternatives(step, self.user_id.is_some(), &steps::enrolled(state, &credentials), &firsts(state))
                .into_iter()
                .map(|s| Switch { step: s.name(), label: s.switch_label() })
                .collect();
        if self.cancellable() {
            switches.push(Switch { step: CANCEL, label: "Cancel" });
        }
        Ok(Ctx {
            state,
            flow_id: &self.id,
            csrf: &self.csrf,
            current: step.name(),
            user_id: self.user_id.as_deref(),
            audience: client.map_or("your account", |c| c.name.as_str()),
            client_id: client.map(|c| c.id.as_str()),
            login_hint: self.hint.as_deref().or(self.request.as_ref().and_then(|r| r.login_hint.as_deref())),
            notice: self.notice.as_deref(),
            switches,
            credentials,
            ip,
            now: state.now(),
            remember: self.remember,
        })
    }

    /// The steps the person may switch to from `current`.
    pub(super) fn alternatives(&self, state: &AppState, current: StepKind, factors: &Factors) -> Vec<StepKind> {
        policy::alternatives(current, self.user_id.is_some(), factors, &firsts(state))
    }

    /// Whether a form or action of `k` may answer this flow's current page.
    pub(super) fn answerable(&self, state: &AppState, current: StepKind, k: StepKind, factors: &Factors) -> bool {
        policy::answerable(current, k, self.user_id.is_some(), factors, &firsts(state))
    }
}

/// Starts a flow for `request` (none: the account pages) at `entry`, from a browser at
/// `client`; answers where the browser goes now and the browser cookie to set, if it had none.
///
/// Each flow is kept for `tokens.login_flow_ttl`, so what one browser or one address may hold
/// is bounded: a browser keeps its newest `login.max_flows_per_browser` flows (starting another
/// ends its oldest), and browsers without our cookie (each request a new browser) may start
/// `login.max_new_browsers_per_ip` flows per address in that time, then are refused.
pub async fn start(
    state: &AppState,
    headers: &HeaderMap,
    client: IpAddr,
    request: Option<AuthRequest>,
    hand_back: HandBack,
    entry: Entry,
) -> Result<(String, Option<HeaderValue>), PageError> {
    let ttl = Duration::from_secs(state.settings.tokens.login_flow_ttl as u64);
    let (browser, new_cookie) = match cookies::get(headers, BROWSER_COOKIE, state.secure_cookies) {
        Some(v) if !v.is_empty() => (v.to_owned(), None),
        _ => {
            let per_ip = format!("flows-new:{}", limit_key(client));
            if state.ephemeral.incr(&per_ip, ttl).await? > state.settings.login.max_new_browsers_per_ip {
                tracing::warn!(%client, "new browsers from this address over login.max_new_browsers_per_ip");
                return Err(PageError::too_many(
                    "Too many sign-ins have been started from your network. Wait a few minutes, then go back to \
                     the application and try again.",
                ));
            }
            let v = random_token();
            let c = cookies::set(BROWSER_COOKIE, &v, Some(365 * 24 * 3600), state.secure_cookies);
            (v, Some(c))
        }
    };
    let first = policy::first_step(&firsts(state)).ok_or_else(|| PageError::from(anyhow::anyhow!("no first step")))?;
    let default = state.settings.login.remember_me_default;
    let (stage, user_id, amr, remember) = match entry {
        Entry::SignIn => (Stage::Authenticate { step: first }, None, Vec::new(), default),
        // A step-up keeps the session's own choice.
        Entry::StepUp(s, step) => (Stage::Authenticate { step }, Some(s.user_id), s.amr, s.persistent),
        Entry::SignedIn(s) => (Stage::SignedIn { session_id: s.id }, None, Vec::new(), default),
    };
    let browser = hash_secret(&browser);
    let flow = Flow {
        id: random_token(),
        csrf: random_token(),
        browser: browser.clone(),
        request: request.map(Box::new),
        hand_back,
        stage,
        passed: Vec::new(),
        user_id,
        amr,
        held: Vec::new(),
        notice: None,
        hint: None,
        remember,
    };
    save(state, &flow).await?;
    let cap = state.settings.login.max_flows_per_browser;
    for oldest in state.ephemeral.enlist(&format!("flows-of:{browser}"), &flow.id, cap, ttl).await? {
        state.ephemeral.delete(&key(&oldest)).await?;
    }
    Ok((flow.location(), new_cookie))
}

pub async fn save(state: &AppState, flow: &Flow) -> Result<(), PageError> {
    let ttl = Duration::from_secs(state.settings.tokens.login_flow_ttl as u64);
    state.ephemeral.put(&key(&flow.id), &serde_json::to_string(flow).map_err(anyhow::Error::from)?, ttl).await?;
    Ok(())
}

/// Ends a flow.
pub async fn end(state: &AppState, flow: &Flow) -> Result<(), PageError> {
    state.ephemeral.delete(&key(&flow.id)).await?;
    Ok(())
}

/// The flow named in the path, if it exists and belongs to this browser, and its client.
pub async fn load(state: &AppState, headers: &HeaderMap, id: &str) -> Result<(Flow, Option<Arc<Client>>), PageError> {
    let flow: Flow = state
        .ephemeral
        .get(&key(id))
        .await?
        .and_then(|json| serde_json::from_str(&json).ok())
        .ok_or_else(PageError::expired)?;
    // Every page of the flow speaks the language the authorization request asked for.
    crate::pages::use_ui_locales(flow.request.as_ref().and_then(|r| r.ui_locales.as_deref()));
    let browser = cookies::get(headers, BROWSER_COOKIE, state.secure_cookies).map(hash_secret).unwrap_or_default();
    if !constant_time_eq(browser.as_bytes(), flow.browser.as_bytes()) {
        return Err(PageError::forbidden(
            "This sign-in was started in another browser. Go back to the application and start again.",
        ));
    }
    let client = match flow.client_id() {
        Some(id) => Some(state.store.client(id).await?.ok_or_else(PageError::expired)?),
        None => None,
    };
    Ok((flow, client))
}

/// Parses a flow form and checks its CSRF token.
pub fn form(flow: &Flow, headers: &HeaderMap, body: &[u8]) -> Result<Params, PageError> {
    crate::http::form::page_form(headers, body, &flow.csrf)
}

/// Where a flow goes after a step, as the HTTP adapter carries it out.
pub(super) struct Advanced {
    pub location: String,
    /// A new session cookie.
    pub cookie: Option<HeaderValue>,
}

/// The audit event of a step of this flow.
pub(super) fn audit(kind: &'static str, step: StepKind, client: Option<&Client>, ip: Option<String>) -> AuditEvent {
    let e = AuditEvent::new(kind).ip(ip).detail("step", step.name());
    match client {
        Some(c) => e.client(&c.id),
        None => e,
    }
}

/// A step asked to keep `data` to the end of the flow: back to the first step, with its notice.
pub(super) async fn hold(
    state: &AppState,
    mut flow: Flow,
    step: StepKind,
    data: Value,
    notice: String,
    hint: Option<String>,
) -> Result<String, PageError> {
    flow.held.retain(|(s, _)| *s != step);
    flow.held.push((step, data));
    flow.notice = Some(notice);
    flow.hint = hint;
    save(state, &flow).await?;
    Ok(flow.location())
}

/// A step has passed: record it and follow the policy — another step, the session, or unmet
/// requirements.
pub(super) async fn advance(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    mut flow: Flow,
    client: Option<&Client>,
    step: StepKind,
    passed: Passed,
) -> Result<Advanced, PageError> {
    let now = state.now();
    let Passed { user_id, amr, then } = passed;
    // A later step proves the user the first one identified, never someone else.
    if flow.user_id.as_ref().is_some_and(|u| *u != user_id) {
        return Err(PageError::forbidden("This sign-in changed hands. Go back to the application and start again."));
    }
    // A pending account signs in nowhere until its email is confirmed, whichever step it passed.
    if state.store.user(&user_id).await?.is_some_and(|u| u.status == crate::domain::user::Status::Pending) {
        return Err(PageError::forbidden("Confirm your email address first: open the link we sent you."));
    }
    state.store.audit(audit("login.step_passed", step, client, ip.clone()).user(&user_id), now).await;
    flow.user_id = Some(user_id.clone());
    flow.passed.push(step);
    flow.amr = policy::after_federation(&flow.passed, policy::combine_amr(&flow.amr, &amr));
    let need = flow.requirement(client);
    let next = policy::next_step(need, &flow.passed, &flow.amr, &factors_of(state, &user_id).await?);
    let mut cookie = None;
    flow.stage = match next {
        Next::Step(next) => Stage::Authenticate { step: next },
        Next::Unmet => {
            state.store.audit(audit("login.unmet_requirements", step, client, ip).user(&user_id), now).await;
            if let HandBack::Return(_) = flow.hand_back {
                end(state, &flow).await?;
                return Err(PageError::forbidden("This sign-in cannot reach the required assurance."));
            }
            Stage::Unmet
        }
        Next::Done => {
            let acr = policy::acr_for(&flow.amr);
            let sign_in = session::SignIn {
                user_id: &user_id,
                amr: flow.amr.clone(),
                acr,
                ip: ip.clone(),
                remember: flow.remember,
            };
            let (session, c) = session::establish(state, headers, sign_in, now).await?;
            cookie = Some(c);
            for (holder, data) in std::mem::take(&mut flow.held) {
                holder.signed_in(state, data, &user_id, ip.clone(), now).await?;
            }
            let browser = crate::domain::user_agent::summary(session.user_agent.as_deref());
            let event = audit("login.succeeded", step, client, ip).user(&user_id).detail("browser", browser);
            state.store.audit(event.detail("sid", session.id.clone()).detail("acr", acr), now).await;
            match then {
                Some(view) => Stage::Notice { session_id: session.id, html: view.html },
                None => Stage::SignedIn { session_id: session.id },
            }
        }
    };
    hand_back(state, &flow).await?;
    Ok(Advanced { location: flow.location(), cookie })
}

/// Saves the flow where it now stands; a flow that returns to a local path ends there.
pub(super) async fn hand_back(state: &AppState, flow: &Flow) -> Result<(), PageError> {
    match (&flow.stage, &flow.hand_back) {
        (Stage::SignedIn { .. } | Stage::Unmet, HandBack::Return(_)) => end(state, flow).await,
        _ => save(state, flow).await,
    }
}

/// The page of a flow that stopped, or that a step asked to show once signed in.
pub(super) fn notice_page(flow: &Flow) -> Option<pages::View> {
    match &flow.stage {
        Stage::Notice { html, .. } => {
            Some(pages::View { status: axum::http::StatusCode::OK, html: html.clone(), scripted: false })
        }
        _ => None,
    }
}
