//! The federation step: sign in at an upstream provider (issue #6). Google and any OpenID
//! issuer go through the `openidconnect` crate ([`upstream_oidc`]: discovery, code flow with
//! PKCE, `state`, `nonce`, full ID token validation); Facebook through OAuth 2 and its Graph API
//! ([`facebook`]).
//!
//! ```text
//!  login page ──POST /login/{flow}/upstream/{id}──► upstream ──► GET /login/upstream/{id}/callback
//!                                                                  │ state taken once, flow and browser checked
//!              ┌── linked (provider, subject) ──────────────────── ┤
//!              │   verified email of an account ── pending link ── ┤──► that account's own steps, then link
//!              │   neither, registration allowed ── new user+link ─┘
//!              ▼
//!        policy: second factor? ──► session
//! ```
//!
//! What is in flight between the redirect and the callback (`state`, `nonce`, PKCE verifier,
//! which flow) lives in the ephemeral store, single use, with `tokens.upstream_state_ttl`. Any
//! failure ends on a readable page with a way back, and no account is created or changed.

mod facebook;
mod link;
mod upstream_oidc;

pub use link::{PendingLink, link_proven};

use super::{Outcome, StepKind};
use crate::config::Upstream;
use crate::config::upstream::Kind;
use crate::ephemeral::Taken;
use crate::http::{PageError, Params};
use crate::login::flow::{self, Flow, Stage, see_other};
use crate::login::policy;
use crate::pages;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// The federation step has no form; a POST naming it is refused like any unknown input.
pub const NOT_A_FORM: Outcome = Outcome::Failed {
    message: "Use one of the buttons to sign in with another provider.",
    reason: "federation has no form",
    user_id: None,
};

/// What an upstream said about the person, after every check.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// True only when the upstream vouches for the email (OIDC `email_verified`).
    pub email_verified: bool,
    /// Standard profile claims, by their OIDC names.
    pub claims: Map<String, Value>,
    /// The upstream's `amr`, when it gave one.
    pub amr: Vec<String>,
}

/// Where to send the browser, and the secrets to keep until the callback.
pub struct Started {
    pub url: String,
    pub state: String,
    /// Empty for Facebook: OAuth 2 has no nonce.
    pub nonce: String,
    pub pkce_verifier: String,
}

/// In flight between the redirect to the upstream and its callback, under the `state`.
#[derive(Serialize, Deserialize)]
struct InFlight {
    flow: String,
    provider: String,
    nonce: String,
    pkce_verifier: String,
}

fn state_key(state: &str) -> String {
    format!("upstream-state:{state}")
}

/// Why a federated sign-in stopped: `message` for the person, `reason` for the audit log.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub reason: &'static str,
}

impl Failure {
    pub fn new(message: impl Into<String>, reason: &'static str) -> Self {
        Self { message: message.into(), reason }
    }

    fn unreachable(upstream: &Upstream) -> Self {
        Self::new(
            format!("{} could not be reached. Try again in a moment, or sign in another way.", upstream.display_name()),
            "upstream unreachable",
        )
    }

    fn invalid(upstream: &Upstream, reason: &'static str) -> Self {
        Self::new(
            format!("{} sent an answer that could not be trusted, so you were not signed in.", upstream.display_name()),
            reason,
        )
    }
}

/// The redirect URI to register at the upstream.
pub fn redirect_uri(state: &AppState, upstream: &Upstream) -> String {
    state.url(&format!("/login/upstream/{}/callback", upstream.id))
}

fn upstream<'a>(state: &'a AppState, id: &str) -> Option<&'a Upstream> {
    state.settings.upstream.iter().find(|u| u.id == id)
}

/// The buttons of the first step's page.
pub fn buttons(state: &AppState, flow: &Flow) -> Vec<pages::UpstreamButton> {
    if !offers_federation(flow) {
        return Vec::new();
    }
    state
        .settings
        .upstream
        .iter()
        .map(|u| pages::UpstreamButton {
            action: format!("/login/{}/upstream/{}", flow.id, u.id),
            label: u.display_name().to_owned(),
        })
        .collect()
}

/// Federation identifies the user, so it stands in for the first step only.
fn offers_federation(flow: &Flow) -> bool {
    matches!(flow.stage, Stage::Authenticate { step } if step == policy::first_step()) && flow.user_id.is_none()
}

/// The page a failed federated sign-in ends on: what happened, and a way back.
fn failure_page(status: StatusCode, message: &str, back: &str) -> Response {
    let page = pages::UpstreamErrorPage { message, back };
    pages::render(status, &page)
}

async fn audit_failure(state: &AppState, upstream: &str, failure: &Failure, ip: Option<String>, flow: Option<&Flow>) {
    let mut event = AuditEvent::new("login.failed")
        .ip(ip)
        .detail("step", StepKind::Federation.name())
        .detail("upstream", upstream)
        .detail("reason", failure.reason);
    if let Some(flow::Purpose::Authorize(req)) = flow.map(|f| &f.purpose) {
        event = event.client(&req.client_id);
    }
    state.store.audit(event, state.now()).await;
}

/// POST /login/{flow}/upstream/{id}: off to the upstream's authorization endpoint, with a
/// fresh `state` (and, for OIDC, `nonce` and PKCE) bound to this flow.
pub async fn begin(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((flow_id, provider)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (flow, _client) = flow::load(&state, &headers, &flow_id).await?;
    flow::form(&flow, &headers, &body)?;
    let back = flow::location(&flow);
    let Some(upstream) = upstream(&state, &provider) else {
        return Err(PageError::not_found("There is no such sign-in provider."));
    };
    if !offers_federation(&flow) {
        return Ok(see_other(&back));
    }
    let started = match upstream.kind {
        Kind::Google | Kind::Oidc => upstream_oidc::authorization(&state, upstream).await,
        Kind::Facebook => Ok(facebook::authorization(&state, upstream)),
    };
    let started = match started {
        Ok(s) => s,
        Err(failure) => {
            audit_failure(&state, &upstream.id, &failure, Some(addr.ip().to_string()), Some(&flow)).await;
            return Ok(failure_page(StatusCode::BAD_REQUEST, &failure.message, &back));
        }
    };
    let ttl = Duration::from_secs(state.settings.tokens.upstream_state_ttl as u64);
    let in_flight = InFlight {
        flow: flow.id.clone(),
        provider: upstream.id.clone(),
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
    };
    let json = serde_json::to_string(&in_flight).map_err(anyhow::Error::from)?;
    state.ephemeral.put(&state_key(&started.state), &json, ttl).await?;
    Ok(see_other(&started.url))
}

/// GET /login/upstream/{id}/callback (RFC 6749 §4.1.2, OIDC Core §3.1.2.5): the `state` is
/// taken once and must name a flow of this browser; then the upstream's error, or its code,
/// exchanged and checked; then the account it belongs to.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let ip = Some(addr.ip().to_string());
    let Some(upstream) = upstream(&state, &provider) else {
        return Err(PageError::not_found("There is no such sign-in provider."));
    };
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    // The state must be one we issued, unused, for this provider.
    let in_flight = match params.get("state") {
        None => {
            Err(Failure::new("The answer from the provider did not say which sign-in it belongs to.", "missing state"))
        }
        Some(s) => match state.ephemeral.take(&state_key(s)).await? {
            Taken::Fresh(json) => serde_json::from_str::<InFlight>(&json)
                .ok()
                .filter(|f| f.provider == upstream.id)
                .ok_or_else(|| Failure::new("This answer belongs to another sign-in.", "state for another provider")),
            Taken::Consumed(_) => Err(Failure::new("This sign-in link was already used.", "state replayed")),
            Taken::Missing => Err(Failure::new("This sign-in link is unknown or has expired.", "unknown state")),
        },
    };
    let in_flight = match in_flight {
        Ok(f) => f,
        Err(failure) => {
            audit_failure(&state, &upstream.id, &failure, ip, None).await;
            return Ok(failure_page(StatusCode::BAD_REQUEST, &failure.message, "/"));
        }
    };
    // The flow must belong to this browser: a callback carried into another browser (login
    // CSRF) stops here.
    let (flow, client) = match flow::load(&state, &headers, &in_flight.flow).await {
        Ok(loaded) => loaded,
        Err(e) => return Ok(e.into_response()),
    };
    let back = flow::location(&flow);
    if !offers_federation(&flow) {
        return Ok(see_other(&back));
    }
    let identity = match params.get("error") {
        Some(error) => Err(denied(upstream, error)),
        None => match params.get("code") {
            None => Err(Failure::invalid(upstream, "no code")),
            Some(code) => match upstream.kind {
                Kind::Google | Kind::Oidc => {
                    upstream_oidc::identify(&state, upstream, code, &in_flight.nonce, &in_flight.pkce_verifier).await
                }
                Kind::Facebook => facebook::identify(&state, upstream, code, &in_flight.pkce_verifier).await,
            },
        },
    };
    let identity = match identity {
        Ok(i) => i,
        Err(failure) => {
            audit_failure(&state, &upstream.id, &failure, ip, Some(&flow)).await;
            return Ok(failure_page(StatusCode::BAD_REQUEST, &failure.message, &back));
        }
    };
    match link::resolve(&state, upstream, &identity, state.now()).await? {
        link::Resolved::User(user_id) => {
            let amr = policy::upstream_amr(&identity.amr);
            flow::advance(&state, &headers, ip, flow, client.as_deref(), StepKind::Federation, user_id, amr).await
        }
        link::Resolved::ProveAccount(pending) => {
            let mut flow = flow;
            state
                .store
                .audit(
                    AuditEvent::new("upstream.link_pending")
                        .user(&pending.user_id)
                        .ip(ip)
                        .detail("upstream", upstream.id.clone()),
                    state.now(),
                )
                .await;
            flow.pending_link = Some(pending);
            flow::save(&state, &flow).await?;
            Ok(see_other(&back))
        }
        link::Resolved::Refused(failure) => {
            audit_failure(&state, &upstream.id, &failure, ip, Some(&flow)).await;
            Ok(failure_page(StatusCode::FORBIDDEN, &failure.message, &back))
        }
    }
}

/// The upstream's own error (RFC 6749 §4.1.2.1), in words for the person.
fn denied(upstream: &Upstream, error: &str) -> Failure {
    if error == "access_denied" {
        Failure::new(format!("The sign-in with {} was cancelled.", upstream.display_name()), "access_denied")
    } else {
        Failure::new(format!("{} could not sign you in.", upstream.display_name()), "upstream error")
    }
}

/// The configured profile claims out of `all` (OIDC names), strings only.
pub fn profile_claims(upstream: &Upstream, all: &Map<String, Value>) -> Map<String, Value> {
    upstream
        .claims()
        .into_iter()
        .filter_map(|name| match all.get(&name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some((name, Value::String(s.clone()))),
            _ => None,
        })
        .collect()
}
