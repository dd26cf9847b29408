//! The password step: username (or email) and password, checked with argon2id. The answer and
//! its timing are the same for an unknown user, a disabled one and a wrong password. Attempts
//! count toward the per-account throttle the other steps share, counted before the check so
//! that racing guesses cannot outrun it.
//!
//! Its page is the sign-in page: it also offers what [`Step::BESIDE_FIRST`] steps add there (a
//! passkey, upstream providers).

use super::{THROTTLED, account_key, attempt, federation, login_key, not_a_failure, passkey, signup, succeeded};
use crate::domain::user::Status;
use crate::http::{PageError, Params};
use crate::login::step::{Ctx, Outcome, Role, Step};
use crate::pages::{self, View};
use axum::http::StatusCode;

const INVALID: &str = "Invalid username or password.";

pub struct Password;

impl Step for Password {
    const NAME: &'static str = "password";
    const ROLE: Role = Role::First;
    const PROVES: &'static [&'static str] = &["pwd"];
    const SWITCH_LABEL: &'static str = "Use my password instead";

    /// The sign-in page, or — once a pending account proved its password here — the page that
    /// asks it to confirm its email.
    async fn render(ctx: &Ctx<'_>, error: Option<&str>, form: Option<&Params>) -> Result<View, PageError> {
        if let Some(view) = signup::pending_page(ctx, error, None).await? {
            return Ok(view);
        }
        Ok(page(ctx, error, form))
    }

    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        if let Some(outcome) = signup::answer(ctx, form).await? {
            return Ok(outcome);
        }
        let (Some(login), Some(password)) = (form.get("username"), form.get("password")) else {
            return Ok(Outcome::failed("Enter your username and password.", "incomplete form", None));
        };
        let user = ctx.state.store.user_by_login(login.trim()).await?;
        let key = user.as_ref().map_or_else(|| login_key(login), |u| account_key(&u.id));
        if !attempt(ctx, &key).await? {
            return Ok(Outcome::failed(THROTTLED, "account throttled", user.map(|u| u.id)));
        }
        let hash = user.as_ref().filter(|u| !u.disabled).and_then(|u| u.password_hash.clone());
        if ctx.state.passwords.verify(password.to_owned(), hash).await
            && let Some(user) = user
        {
            // With a second factor still to come, the count is cleared only when that passes.
            let credentials = ctx.state.store.credentials(&user.id).await?;
            if super::enrolled(ctx.state, &credentials).any() {
                not_a_failure(ctx, &key).await?;
            } else {
                succeeded(ctx, &key).await?;
            }
            if user.status == Status::Pending {
                return signup::pending_sign_in(ctx, &user).await;
            }
            return Ok(Outcome::passed(user.id, vec!["pwd".into()]));
        }
        Ok(Outcome::failed(INVALID, "wrong credentials", user.map(|u| u.id)))
    }

    /// A pending account that signed in here confirmed its email on another device.
    async fn waiting(ctx: &Ctx<'_>) -> Result<Option<Outcome>, PageError> {
        signup::approved(ctx).await
    }
}

/// The sign-in page: the password form, the passkey and upstream providers beside it.
pub fn page(ctx: &Ctx<'_>, error: Option<&str>, form: Option<&Params>) -> View {
    let username = form.and_then(|f| f.get("username")).or(ctx.login_hint).unwrap_or_default();
    let action = ctx.action();
    // The passkey, offered beside the password when WebAuthn is on (the page's script shows it).
    let passkey = ctx.state.webauthn.as_ref().map(|_| passkey::options_url(ctx));
    let page = pages::PasswordPage {
        action: &action,
        csrf: ctx.csrf,
        client_name: ctx.audience,
        username,
        error,
        switches: ctx.switches.clone(),
        upstreams: federation::buttons(ctx),
        notice: ctx.notice.map(str::to_owned),
        passkey: passkey.as_deref(),
        remember: ctx.at_start().then_some(ctx.remember),
    };
    match passkey {
        Some(_) => View::scripted(StatusCode::OK, &page),
        None => View::ok(&page),
    }
}
