//! The password step: username (or email) and password, checked with argon2id. The answer and
//! its timing are the same for an unknown user, a disabled one and a wrong password, and
//! failures count toward a per-account throttle shared through the ephemeral store.

use super::{Outcome, StepContext};
use crate::http::{PageError, Params};
use crate::pages;
use axum::http::StatusCode;
use axum::response::Response;
use std::time::Duration;

const INVALID: &str = "Invalid username or password.";
const THROTTLED: &str = "Too many failed attempts. Wait a few minutes and try again.";

pub fn render(ctx: &StepContext<'_>, error: Option<&str>, form: Option<&Params>) -> Response {
    let username = form.and_then(|f| f.get("username")).or(ctx.flow.request.login_hint.as_deref()).unwrap_or_default();
    let action = format!("/login/{}", ctx.flow.id);
    let page =
        pages::PasswordPage { action: &action, csrf: &ctx.flow.csrf, client_name: &ctx.client.name, username, error };
    pages::render(StatusCode::OK, &page)
}

fn failures_key(login: &str) -> String {
    format!("login-failures:{}", login.trim().to_lowercase())
}

pub async fn submit(ctx: &StepContext<'_>, form: &Params) -> Result<Outcome, PageError> {
    let (Some(login), Some(password)) = (form.get("username"), form.get("password")) else {
        return Ok(Outcome::Failed {
            message: "Enter your username and password.",
            reason: "incomplete form",
            user_id: None,
        });
    };
    let settings = &ctx.state.settings.login;
    let key = failures_key(login);
    let failures = ctx.state.ephemeral.count(&key).await?;
    if failures >= settings.max_failures {
        return Ok(Outcome::Failed { message: THROTTLED, reason: "account throttled", user_id: None });
    }
    let user = ctx.state.store.user_by_login(login.trim()).await?;
    let hash = user.as_ref().filter(|u| !u.disabled).and_then(|u| u.password_hash.clone());
    if ctx.state.passwords.verify(password.to_owned(), hash).await
        && let Some(user) = user
    {
        ctx.state.ephemeral.delete(&key).await?;
        return Ok(Outcome::Passed { user_id: user.id, amr: vec!["pwd".into()] });
    }
    ctx.state.ephemeral.incr(&key, Duration::from_secs(settings.lockout_secs as u64)).await?;
    Ok(Outcome::Failed { message: INVALID, reason: "wrong credentials", user_id: user.map(|u| u.id) })
}
