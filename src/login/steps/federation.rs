//! The federation step: sign in at an upstream provider (issue #6). Google and any OpenID
//! issuer go through the `openidconnect` crate ([`upstream_oidc`]: discovery, code flow with
//! PKCE, `state`, `nonce`, full ID token validation); Facebook through OAuth 2 and its Graph API
//! ([`facebook`]).
//!
//! ```text
//!  login page ──POST /login/{flow}/upstream/{id}──► upstream ──► GET /login/upstream/{id}/callback
//!   (action)                                                       │ state taken once (callback),
//!                                                                  │ flow and browser checked (engine), then resume
//!              ┌── linked (provider, subject) ──────────────────── ┤
//!              │   verified email of an account ── held link ───── ┤──► that account's own steps, then link
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

use super::StepKind;
use crate::config::Upstream;
use crate::config::upstream::Kind;
use crate::ephemeral::Taken;
use crate::http::{PageError, Params};
use crate::login::policy;
use crate::login::step::{Callback, Ctx, Outcome, Role, Step};
use crate::pages::{self, View};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

pub struct Federation;

impl Step for Federation {
    const NAME: &'static str = "federation";
    const ROUTE: &'static str = "upstream";
    const ROLE: Role = Role::First;
    // What the upstream reported, filtered by `policy::upstream_amr`.
    const PROVES: &'static [&'static str] = &[];
    const SWITCH_LABEL: &'static str = "Sign in with another provider";
    const BESIDE_FIRST: bool = true;
    const UPSTREAM: bool = true;

    fn first_factor(state: &AppState) -> bool {
        !state.settings.upstream.is_empty()
    }

    /// Begun from the sign-in page's buttons, it has no page of its own.
    async fn render(ctx: &Ctx<'_>, error: Option<&str>, form: Option<&Params>) -> Result<View, PageError> {
        Ok(super::password::page(ctx, error, form))
    }

    /// It has no form; a POST naming it is refused like any unknown input.
    async fn submit(_ctx: &Ctx<'_>, _form: &Params) -> Result<Outcome, PageError> {
        Ok(Outcome::failed("Use one of the buttons to sign in with another provider.", "federation has no form", None))
    }

    /// POST /login/{flow}/upstream/{id}: off to the upstream's authorization endpoint, with a
    /// fresh `state` (and, for OIDC, `nonce` and PKCE) bound to this flow.
    async fn action(ctx: &Ctx<'_>, arg: Option<&str>, _form: &Params) -> Result<Outcome, PageError> {
        let Some(upstream) = arg.and_then(|id| upstream(ctx.state, id)) else {
            return Err(PageError::not_found("There is no such sign-in provider."));
        };
        let started = match upstream.kind {
            Kind::Google | Kind::Oidc => upstream_oidc::authorization(ctx.state, upstream).await,
            Kind::Facebook => Ok(facebook::authorization(ctx.state, upstream)),
        };
        let started = match started {
            Ok(s) => s,
            Err(failure) => {
                return Ok(Outcome::Show(failed(ctx.state, upstream, &failure, ctx, StatusCode::BAD_REQUEST).await));
            }
        };
        let ttl = Duration::from_secs(ctx.state.settings.tokens.upstream_state_ttl as u64);
        let in_flight = InFlight {
            flow: ctx.flow_id.to_owned(),
            provider: upstream.id.clone(),
            nonce: started.nonce,
            pkce_verifier: started.pkce_verifier,
        };
        let json = serde_json::to_string(&in_flight).map_err(anyhow::Error::from)?;
        ctx.state.ephemeral.put(&state_key(&started.state), &json, ttl).await?;
        Ok(Outcome::Redirect(started.url))
    }

    /// GET /login/upstream/{id}/callback (RFC 6749 §4.1.2, OIDC Core §3.1.2.5): the `state` is
    /// taken once and must be one we issued for this provider; it names the flow.
    async fn callback(
        state: &AppState,
        arg: &str,
        query: &Params,
        _confirmed: bool,
        ip: Option<String>,
    ) -> Result<Callback, PageError> {
        let Some(upstream) = upstream(state, arg) else {
            return Err(PageError::not_found("There is no such sign-in provider."));
        };
        let in_flight = match query.get("state") {
            None => Err(Failure::new(
                "The answer from the provider did not say which sign-in it belongs to.",
                "missing state",
            )),
            Some(s) => match state.ephemeral.take(&state_key(s)).await? {
                Taken::Fresh(json) => {
                    serde_json::from_str::<InFlight>(&json).ok().filter(|f| f.provider == upstream.id).ok_or_else(
                        || Failure::new("This answer belongs to another sign-in.", "state for another provider"),
                    )
                }
                Taken::Consumed(_) => Err(Failure::new("This sign-in link was already used.", "state replayed")),
                Taken::Missing => Err(Failure::new("This sign-in link is unknown or has expired.", "unknown state")),
            },
        };
        match in_flight {
            Ok(f) => {
                let data = serde_json::json!({
                    "nonce": f.nonce,
                    "pkce_verifier": f.pkce_verifier,
                    "error": query.get("error"),
                    "code": query.get("code"),
                });
                Ok(Callback::Flow { flow_id: f.flow, data, elsewhere: None })
            }
            Err(failure) => {
                audit_failure(state, &upstream.id, &failure, ip, None).await;
                Ok(Callback::Show(failure_page(StatusCode::BAD_REQUEST, &failure.message, "/")))
            }
        }
    }

    /// The flow is this browser's: the upstream's error, or its code exchanged and checked;
    /// then the account it belongs to.
    async fn resume(ctx: &Ctx<'_>, arg: &str, data: Value) -> Result<Outcome, PageError> {
        let state = ctx.state;
        let Some(upstream) = upstream(state, arg) else {
            return Err(PageError::not_found("There is no such sign-in provider."));
        };
        let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
        let identity = match (field("error"), field("code")) {
            (Some(error), _) => Err(denied(upstream, &error)),
            (None, None) => Err(Failure::invalid(upstream, "no code")),
            (None, Some(code)) => {
                let nonce = field("nonce").unwrap_or_default();
                let verifier = field("pkce_verifier").unwrap_or_default();
                match upstream.kind {
                    Kind::Google | Kind::Oidc => {
                        upstream_oidc::identify(state, upstream, &code, &nonce, &verifier).await
                    }
                    Kind::Facebook => facebook::identify(state, upstream, &code, &verifier).await,
                }
            }
        };
        let identity = match identity {
            Ok(i) => i,
            Err(failure) => {
                return Ok(Outcome::Show(failed(state, upstream, &failure, ctx, StatusCode::BAD_REQUEST).await));
            }
        };
        match link::resolve(state, upstream, &identity, state.now()).await? {
            link::Resolved::User(user_id) => Ok(Outcome::passed(user_id, policy::upstream_amr(&identity.amr))),
            link::Resolved::ProveAccount(pending) => {
                let event = AuditEvent::new("upstream.link_pending")
                    .user(&pending.user_id)
                    .ip(ctx.ip.clone())
                    .detail("upstream", upstream.id.clone());
                state.store.audit(event, state.now()).await;
                let notice = format!(
                    "An account with the email {} already exists here. Sign in to it to link your {} account.",
                    pending.email, pending.display_name
                );
                let hint = Some(pending.email.clone());
                Ok(Outcome::Hold {
                    data: serde_json::to_value(&pending).map_err(anyhow::Error::from)?,
                    notice,
                    login_hint: hint,
                })
            }
            link::Resolved::Refused(failure) => {
                Ok(Outcome::Show(failed(state, upstream, &failure, ctx, StatusCode::FORBIDDEN).await))
            }
        }
    }

    /// The flow that held an identity waiting for its account has signed in: link it.
    async fn signed_in(
        state: &AppState,
        data: Value,
        user_id: &str,
        ip: Option<String>,
        now: i64,
    ) -> Result<(), PageError> {
        match serde_json::from_value::<link::PendingLink>(data) {
            Ok(pending) => link::link_proven(state, pending, user_id, ip, now).await,
            Err(_) => Ok(()),
        }
    }
}

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

/// The buttons of the sign-in page, one per provider.
pub fn buttons(ctx: &Ctx<'_>) -> Vec<pages::UpstreamButton> {
    if !ctx.at_start() {
        return Vec::new();
    }
    ctx.state
        .settings
        .upstream
        .iter()
        .map(|u| pages::UpstreamButton {
            action: ctx.action_url(<Federation as Step>::ROUTE, Some(&u.id)),
            label: u.display_name().to_owned(),
        })
        .collect()
}

/// The page a failed federated sign-in ends on: what happened, and a way back.
fn failure_page(status: StatusCode, message: &str, back: &str) -> View {
    View::new(status, &pages::UpstreamErrorPage { message, back })
}

/// Audits `failure` and answers its page, with a way back to the sign-in.
async fn failed(state: &AppState, upstream: &Upstream, failure: &Failure, ctx: &Ctx<'_>, status: StatusCode) -> View {
    audit_failure(state, &upstream.id, failure, ctx.ip.clone(), ctx.client_id).await;
    failure_page(status, &failure.message, &ctx.action())
}

async fn audit_failure(state: &AppState, upstream: &str, failure: &Failure, ip: Option<String>, client: Option<&str>) {
    let mut event = AuditEvent::new("login.failed")
        .ip(ip)
        .detail("step", StepKind::Federation.name())
        .detail("upstream", upstream)
        .detail("reason", failure.reason);
    if let Some(c) = client {
        event = event.client(c);
    }
    state.store.audit(event, state.now()).await;
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
