//! Login steps, each one module implementing [`Step`](super::step::Step), and the one list of
//! them. Adding a step is a module here (declared below) and a line in [`registry!`]; the
//! engine, the policy, the session and the token code do not change. The order of the list is
//! the order a sign-in tries first steps in.
//!
//! Below the list: what several steps share — the per-account throttle, the page of a
//! one-code step and the judging of a one-time code.

pub mod email_otp;
pub mod federation;
pub mod magic_link;
pub mod passkey;
pub mod password;
pub mod phone_code;
pub mod recovery_code;
pub mod signup;
pub mod totp;

use super::policy::Factors;
use super::step::{Ctx, Role, Step, registry};
use crate::domain::Credentials;
use crate::http::{PageError, Params};
use crate::pages::{self, View};
use crate::state::AppState;
use serde_json::Value;
use std::time::Duration;

use super::step::{Callback, Outcome};

registry! {
    Password => password::Password,
    Passkey => passkey::Passkey,
    Federation => federation::Federation,
    Totp => totp::Totp,
    EmailOtp => email_otp::EmailOtp,
    Sms => phone_code::PhoneCode<phone_code::Sms>,
    Whatsapp => phone_code::PhoneCode<phone_code::Whatsapp>,
    MagicLink => magic_link::MagicLink,
    Signup => signup::Signup,
    RecoveryCode => recovery_code::RecoveryCode,
}

/// The steps these credentials let their user take as second factors.
pub fn enrolled(state: &AppState, credentials: &Credentials) -> Factors {
    Factors::new(StepKind::ALL.iter().copied().filter(|s| s.enrolled(state, credentials)))
}

pub(crate) const THROTTLED: &str = "Too many failed attempts. Wait a few minutes and try again.";

/// The per-account throttle every step shares: attempts on one account, whichever step or
/// login name they came through, counted under its id (a login name that matches no account
/// counts under that name).
pub fn account_key(user_id: &str) -> String {
    format!("login-attempts:user:{user_id}")
}

/// The throttle key of a login name that matches no account.
pub fn login_key(login: &str) -> String {
    format!("login-attempts:name:{}", login.trim().to_lowercase())
}

/// Counts an attempt on the account behind `key` before anything is checked: one atomic
/// increment, so of many racing attempts no more than the limit are ever judged. False when the
/// account is over it.
pub(crate) async fn attempt(ctx: &Ctx<'_>, key: &str) -> Result<bool, PageError> {
    let lockout = Duration::from_secs(ctx.state.settings.login.lockout_secs as u64);
    Ok(ctx.state.ephemeral.incr(key, lockout).await? <= ctx.state.settings.login.max_failures)
}

/// The attempt succeeded and the sign-in is proven: the account's count starts afresh.
pub(crate) async fn succeeded(ctx: &Ctx<'_>, key: &str) -> Result<(), PageError> {
    ctx.state.ephemeral.delete(key).await?;
    Ok(())
}

/// The attempt succeeded but another factor is still to come: it does not count as a failure,
/// and the earlier failures stand, so knowing the password buys no fresh guesses at the code.
pub(crate) async fn not_a_failure(ctx: &Ctx<'_>, key: &str) -> Result<(), PageError> {
    ctx.state.ephemeral.decr(key).await?;
    Ok(())
}

/// The user a second-factor step is for: the one the first step identified, still enabled,
/// with the key their attempts count under.
pub(crate) async fn second_factor_user(ctx: &Ctx<'_>) -> Result<Option<(String, String)>, PageError> {
    let Some(id) = ctx.user_id else { return Ok(None) };
    Ok(ctx
        .state
        .store
        .user(id)
        .await?
        .filter(|u| !u.disabled)
        .map(|u| (account_key(&u.id), u.id))
        .map(|(k, id)| (id, k)))
}

/// The page of a one-code step; `notice` says where the code came from.
fn code_page(ctx: &Ctx<'_>, error: Option<&str>, notice: Option<&str>, text: &'static pages::CodeText) -> View {
    let action = ctx.action();
    View::ok(&pages::CodePage {
        action: &action,
        csrf: ctx.csrf,
        client_name: ctx.audience,
        error,
        notice,
        text,
        switches: ctx.switches.clone(),
    })
}

/// What a typed one-time code (emailed, or sent by phone) turned out to be.
pub(crate) enum Verdict {
    /// Right, and taken: the user it proves.
    Right(String),
    Wrong,
    /// Its last try failed, or it had none left: it is gone.
    Exhausted,
    /// The account is over its failed-attempt limit.
    Throttled,
    /// Right, but another submission took it first.
    Used,
}

/// Judges a code waiting under `pending` (for `user_id`; none when no account is behind it,
/// and then no code is right): the account's attempt counted first, then the code's own tries
/// under `tries` — it dies at its fifth wrong one — and a right code taken, not read, so of two
/// racing submissions one passes.
pub(crate) async fn judge_code(
    ctx: &Ctx<'_>,
    pending: &str,
    tries: &str,
    account: &str,
    user_id: Option<&str>,
    right: bool,
    ttl: Duration,
) -> Result<Verdict, PageError> {
    use crate::ephemeral::Taken;
    if !attempt(ctx, account).await? {
        return Ok(Verdict::Throttled);
    }
    let n = ctx.state.ephemeral.incr(tries, ttl).await?;
    if n > email_otp::MAX_TRIES {
        not_a_failure(ctx, account).await?;
        ctx.state.ephemeral.delete(pending).await?;
        return Ok(Verdict::Exhausted);
    }
    match (user_id, right) {
        (Some(user_id), true) => {
            let Taken::Fresh(_) = ctx.state.ephemeral.take(pending).await? else { return Ok(Verdict::Used) };
            ctx.state.ephemeral.delete(pending).await?;
            succeeded(ctx, account).await?;
            Ok(Verdict::Right(user_id.to_owned()))
        }
        _ if n == email_otp::MAX_TRIES => {
            ctx.state.ephemeral.delete(pending).await?;
            Ok(Verdict::Exhausted)
        }
        _ => Ok(Verdict::Wrong),
    }
}
