//! Login steps. Each is one module with the same two parts: render its page, and judge what
//! the browser sent back. A step never decides what comes next; the policy does.

pub mod passkey;
pub mod password;
pub mod recovery_code;
pub mod totp;

use super::flow::Flow;
use super::policy::Factors;
use crate::app::AppState;
use crate::domain::Client;
use crate::http::{PageError, Params};
use crate::pages;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Password,
    Totp,
    RecoveryCode,
    Passkey,
}

impl StepKind {
    pub const ALL: [StepKind; 4] = [Self::Password, Self::Totp, Self::RecoveryCode, Self::Passkey];

    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }

    /// The button that switches to this step from another.
    pub fn switch_label(self) -> &'static str {
        match self {
            Self::Password => "Use my password instead",
            Self::Totp => "Use my authenticator app instead",
            Self::RecoveryCode => "Use a recovery code instead",
            Self::Passkey => "Use a passkey instead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// What a step is given for one request.
pub struct StepContext<'a> {
    pub state: &'a AppState,
    pub flow: &'a Flow,
    /// The client the sign-in is for; none when it is for the account pages.
    pub client: Option<&'a Client>,
    pub ip: Option<String>,
    pub now: i64,
    /// The second factors of the user identified so far (none before the first step).
    pub factors: Factors,
}

impl StepContext<'_> {
    /// Whom the person is signing in to, for the page heading.
    pub fn audience(&self) -> &str {
        self.client.map_or("your account", |c| c.name.as_str())
    }

    /// The form action of the current step.
    pub fn action(&self) -> String {
        format!("/login/{}", self.flow.id)
    }
}

/// What judging a submission found.
pub enum Outcome {
    /// The step proved who the user is, with these `amr` values (RFC 8176).
    Passed { user_id: String, amr: Vec<String> },
    /// Not proven: `message` is for the person, `reason` for the audit log.
    Failed { message: &'static str, reason: &'static str, user_id: Option<String> },
}

pub(crate) const THROTTLED: &str = "Too many failed attempts. Wait a few minutes and try again.";

/// The per-account failure counter every step shares, keyed by the login name as typed
/// (lower-cased); second-factor steps use the username.
pub(crate) fn failures_key(login: &str) -> String {
    format!("login-failures:{}", login.trim().to_lowercase())
}

/// Whether the account behind `key` is throttled.
pub(crate) async fn throttled(ctx: &StepContext<'_>, key: &str) -> Result<bool, PageError> {
    Ok(ctx.state.ephemeral.count(key).await? >= ctx.state.settings.login.max_failures)
}

/// Counts one failure toward the throttle.
pub(crate) async fn count_failure(ctx: &StepContext<'_>, key: &str) -> Result<(), PageError> {
    let lockout = Duration::from_secs(ctx.state.settings.login.lockout_secs as u64);
    ctx.state.ephemeral.incr(key, lockout).await?;
    Ok(())
}

/// The user a second-factor step is for: the one the first factor identified, still enabled,
/// with the key their failures count under.
pub(crate) async fn second_factor_user(ctx: &StepContext<'_>) -> Result<Option<(String, String)>, PageError> {
    let Some(id) = &ctx.flow.user_id else { return Ok(None) };
    Ok(ctx.state.store.user(id).await?.filter(|u| !u.disabled).map(|u| (u.id, failures_key(&u.username))))
}

/// The page of a second-factor step.
fn code_page(ctx: &StepContext<'_>, error: Option<&str>, text: &'static pages::CodeText) -> Response {
    let action = ctx.action();
    let page = pages::CodePage {
        action: &action,
        csrf: &ctx.flow.csrf,
        client_name: ctx.audience(),
        error,
        text,
        passkey: ctx.factors.passkey,
    };
    pages::render(StatusCode::OK, &page)
}

impl StepKind {
    pub fn render(self, ctx: &StepContext<'_>, error: Option<&str>, form: Option<&Params>) -> Response {
        match self {
            Self::Password => password::render(ctx, error, form),
            Self::Totp => code_page(ctx, error, &totp::PAGE),
            Self::RecoveryCode => code_page(ctx, error, &recovery_code::PAGE),
            Self::Passkey => passkey::render(ctx, error, form),
        }
    }

    pub async fn submit(self, ctx: &StepContext<'_>, form: &Params) -> Result<Outcome, PageError> {
        match self {
            Self::Password => password::submit(ctx, form).await,
            Self::Totp => totp::submit(ctx, form).await,
            Self::RecoveryCode => recovery_code::submit(ctx, form).await,
            Self::Passkey => passkey::submit(ctx, form).await,
        }
    }
}
