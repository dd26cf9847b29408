//! The password step: username (or email) and password, checked with argon2id. The answer and
//! its timing are the same for an unknown user, a disabled one and a wrong password, and
//! failures count toward a per-account throttle shared through the ephemeral store (and with
//! the second-factor steps).

use super::{Outcome, StepContext, StepKind, THROTTLED, count_failure, failures_key, throttled};
use crate::http::{PageError, Params};
use crate::pages;
use axum::http::StatusCode;
use axum::response::Response;

const INVALID: &str = "Invalid username or password.";

pub fn render(ctx: &StepContext<'_>, error: Option<&str>, form: Option<&Params>) -> Response {
    let username = form.and_then(|f| f.get("username")).or(ctx.flow.login_hint()).unwrap_or_default();
    let pending = ctx.flow.pending_link.as_ref();
    let username = pending.map_or(username, |p| p.email.as_str());
    let notice = pending.map(|p| {
        format!(
            "An account with the email {} already exists here. Sign in to it to link your {} account.",
            p.email, p.display_name
        )
    });
    let action = ctx.action();
    // The passkey, offered beside the password when WebAuthn is on (the page's script shows it).
    let passkey = ctx.state.webauthn.as_ref().map(|_| super::passkey::options_url(ctx));
    let page = pages::PasswordPage {
        action: &action,
        csrf: &ctx.flow.csrf,
        client_name: ctx.audience(),
        username,
        error,
        switches: ctx.switches(StepKind::Password),
        upstreams: super::federation::buttons(ctx.state, ctx.flow),
        notice,
        passkey: passkey.as_deref(),
    };
    match passkey {
        Some(_) => pages::render_scripted(StatusCode::OK, &page),
        None => pages::render(StatusCode::OK, &page),
    }
}

pub async fn submit(ctx: &StepContext<'_>, form: &Params) -> Result<Outcome, PageError> {
    let (Some(login), Some(password)) = (form.get("username"), form.get("password")) else {
        return Ok(Outcome::Failed {
            message: "Enter your username and password.",
            reason: "incomplete form",
            user_id: None,
        });
    };
    let key = failures_key(login);
    if throttled(ctx, &key).await? {
        return Ok(Outcome::Failed { message: THROTTLED, reason: "account throttled", user_id: None });
    }
    let user = ctx.state.store.user_by_login(login.trim()).await?;
    let hash = user.as_ref().filter(|u| !u.disabled).and_then(|u| u.password_hash.clone());
    if ctx.state.passwords.verify(password.to_owned(), hash).await
        && let Some(user) = user
    {
        // Second-factor failures count under the username: a right password does not lift them.
        let account = failures_key(&user.username);
        if throttled(ctx, &account).await? {
            return Ok(Outcome::Failed { message: THROTTLED, reason: "account throttled", user_id: Some(user.id) });
        }
        // With a second factor still to come, the count is cleared only when that passes, so
        // knowing the password does not buy fresh guesses at the code.
        if !crate::login::flow::factors(ctx.state, &user.id).await?.any() {
            ctx.state.ephemeral.delete(&key).await?;
            ctx.state.ephemeral.delete(&account).await?;
        }
        return Ok(Outcome::Passed { user_id: user.id, amr: vec!["pwd".into()] });
    }
    count_failure(ctx, &key).await?;
    Ok(Outcome::Failed { message: INVALID, reason: "wrong credentials", user_id: user.map(|u| u.id) })
}
