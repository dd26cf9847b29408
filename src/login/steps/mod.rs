//! Login steps. Each is one module with the same two parts: render its page, and judge what
//! the browser sent back. A step never decides what comes next; the policy does.

pub mod email_otp;
pub mod federation;
pub mod passkey;
pub mod password;
pub mod recovery_code;
pub mod totp;

use super::flow::Flow;
use super::policy::{self, Factors};
use crate::domain::Client;
use crate::http::{PageError, Params};
use crate::pages;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Password,
    Totp,
    EmailOtp,
    RecoveryCode,
    /// Sign-in at an upstream provider; begun from the first step's page, ended by the
    /// upstream's callback (`federation`), so it never has a page of its own.
    Federation,
    Passkey,
}

impl StepKind {
    pub const ALL: [StepKind; 6] =
        [Self::Password, Self::Totp, Self::EmailOtp, Self::RecoveryCode, Self::Passkey, Self::Federation];

    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::EmailOtp => "email_otp",
            Self::RecoveryCode => "recovery_code",
            Self::Federation => "federation",
            Self::Passkey => "passkey",
        }
    }

    /// The `amr` values (RFC 8176) passing this step proves.
    pub fn proves(self) -> Vec<String> {
        match self {
            Self::Password => vec!["pwd".into()],
            Self::Totp | Self::EmailOtp | Self::RecoveryCode => vec!["otp".into()],
            // What the upstream reported, filtered by `policy::upstream_amr`.
            Self::Federation => vec![],
            // A passkey's own values (`hwk` or `swk`, and `user`) come with its outcome; this
            // is the kind of factor it always adds.
            Self::Passkey => vec!["hwk".into()],
        }
    }

    /// The button that switches to this step from another.
    pub fn switch_label(self) -> &'static str {
        match self {
            Self::Password => "Use my password instead",
            Self::Totp => "Use my authenticator app instead",
            Self::EmailOtp => "Email me a code instead",
            Self::RecoveryCode => "Use a recovery code instead",
            Self::Federation => "Sign in with another provider",
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

    /// The steps the person may switch to from `step`, as the page's buttons.
    pub fn switches(&self, step: StepKind) -> Vec<pages::Switch> {
        let email_first = self.state.settings.login.email_first_factor;
        policy::alternatives(step, self.flow.user_id.is_some(), self.factors, email_first)
            .into_iter()
            .map(|s| pages::Switch { step: s.name(), label: s.switch_label() })
            .collect()
    }
}

/// What judging a submission found.
pub enum Outcome {
    /// Not judged yet: the step shows this page (the next part of the step, e.g. "we sent a
    /// code" after an address was typed).
    Continue(Response),
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

/// The page of a one-code step; `notice` says where the code came from.
fn code_page(
    ctx: &StepContext<'_>,
    step: StepKind,
    error: Option<&str>,
    notice: Option<&str>,
    text: &'static pages::CodeText,
) -> Response {
    let action = ctx.action();
    let page = pages::CodePage {
        action: &action,
        csrf: &ctx.flow.csrf,
        client_name: ctx.audience(),
        error,
        notice,
        text,
        switches: ctx.switches(step),
    };
    pages::render(StatusCode::OK, &page)
}

impl StepKind {
    pub async fn render(
        self,
        ctx: &StepContext<'_>,
        error: Option<&str>,
        form: Option<&Params>,
    ) -> Result<Response, PageError> {
        Ok(match self {
            Self::Password | Self::Federation => password::render(ctx, error, form),
            Self::Totp => code_page(ctx, self, error, None, &totp::PAGE),
            Self::EmailOtp => return email_otp::render(ctx, error).await,
            Self::RecoveryCode => code_page(ctx, self, error, None, &recovery_code::PAGE),
            Self::Passkey => passkey::render(ctx, error, form),
        })
    }

    pub async fn submit(self, ctx: &StepContext<'_>, form: &Params) -> Result<Outcome, PageError> {
        match self {
            Self::Password => password::submit(ctx, form).await,
            Self::Totp => totp::submit(ctx, form).await,
            Self::EmailOtp => email_otp::submit(ctx, form).await,
            Self::RecoveryCode => recovery_code::submit(ctx, form).await,
            Self::Federation => Ok(federation::NOT_A_FORM),
            Self::Passkey => passkey::submit(ctx, form).await,
        }
    }
}
