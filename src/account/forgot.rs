//! Forgot password: "Forgot your password?" on the sign-in page leads here. The person gives
//! a username or email; if it names an enabled account, a link goes to the account's address.
//! The answer is the same page, after the same work, whether or not it does (the link is made
//! and kept either way; the mail goes out off the request path), so the form tells nobody
//! which accounts exist.
//!
//! ```text
//!  /account/password/forgot ──POST──► "check your email" ─► mail: /account/password/reset/{token}
//!  /account/password/reset/{token} ──GET──► the new-password form (uses nothing: scanners fetch links)
//!                                   ──POST─► policy + history ─► password set, everyone signed out
//! ```
//!
//! A link is 256 bits of randomness kept only as its SHA-256, good for `tokens.reset_ttl` and
//! for one use, and bound to the account and its password hash at the time: a link issued
//! before a password change dies with it. A reset ends every session and revokes every grant,
//! and signs nobody in: the next sign-in asks for the new password and the second factor.
//! Requests are throttled per IP and per login name as typed (never per account, so that the
//! throttle too reads the same for an unknown name); mail to one account is capped silently.

use super::{changed, mail};
use crate::crypto::{hash_secret, random_token};
use crate::domain::password_policy::Refusal;
use crate::ephemeral::Taken;
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::http::{PageError, cookies};
use crate::state::AppState;
use crate::store::{AuditEvent, SignOut};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const PAGE: &str = "/account/password/forgot";
pub const RESET: &str = "/account/password/reset/{token}";

/// Requests from one IP address per hour.
const PER_IP: u64 = 20;
/// Requests naming one login (as typed) per link lifetime.
const PER_LOGIN: u64 = 5;
/// Links mailed to one account per link lifetime; past it the answer is the same, but no mail.
const SENDS_PER_ACCOUNT: u64 = 3;
/// New-password attempts from one IP address per hour.
const TRIES_PER_IP: u64 = 30;
const HOUR: Duration = Duration::from_secs(3600);

pub(super) const THROTTLED: &str = "Too many requests. Wait a while and try again.";
pub(super) const EXPIRED: &str =
    "This link no longer works: it was used, it expired, or the password was changed since. Ask for a new one.";

/// What asking for a link came to. `Sent` is the answer whether or not a mail went out.
pub enum Asked {
    Sent,
    Throttled { retry_after: u64 },
}

/// What setting a new password with a link came to.
pub enum Reset {
    Changed,
    Refused(Refusal),
    /// Unknown, used, expired, or issued for a password that has changed since.
    Expired,
    Throttled {
        retry_after: u64,
    },
}

/// A link, under the hash of its token: whom it is for and the password it was issued
/// against (none for a login that names no account: it is kept all the same, never sent).
#[derive(Serialize, Deserialize)]
struct Link {
    user_id: Option<String>,
    binding: String,
}

fn link_key(token: &str) -> String {
    format!("password-reset:{}", hash_secret(token))
}

/// Ties a link to the account and its current password hash.
fn binding(user: &crate::domain::User) -> String {
    hash_secret(&format!("reset:{}:{}", user.id, user.password_hash.as_deref().unwrap_or("")))
}

fn ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.tokens.reset_ttl.max(1) as u64)
}

/// Counts one request under `key`; false once over `limit`.
async fn within(state: &AppState, key: &str, limit: u64, window: Duration) -> Result<bool, PageError> {
    Ok(state.ephemeral.incr(key, window).await? <= limit)
}

/// Asks for a reset link for `login` (a username or an email address).
pub async fn ask(state: &AppState, login: &str, ip: Option<String>) -> Result<Asked, PageError> {
    let login = login.trim();
    let by_ip = within(state, &format!("reset-asks:ip:{}", ip.as_deref().unwrap_or("-")), PER_IP, HOUR).await?;
    let by_login =
        within(state, &format!("reset-asks:login:{}", hash_secret(&login.to_lowercase())), PER_LOGIN, ttl(state))
            .await?;
    if !by_ip || !by_login {
        let retry_after = if by_ip { ttl(state).as_secs() } else { HOUR.as_secs() };
        return Ok(Asked::Throttled { retry_after });
    }
    let now = state.now();
    let user = state.store.user_by_login(login).await?.filter(|u| !u.disabled);
    let token = random_token();
    let link =
        Link { user_id: user.as_ref().map(|u| u.id.clone()), binding: user.as_ref().map(binding).unwrap_or_default() };
    let json = serde_json::to_string(&link).map_err(anyhow::Error::from)?;
    state.ephemeral.put(&link_key(&token), &json, ttl(state)).await?;
    let event = AuditEvent::new("account.password_reset_requested").ip(ip);
    // The cap on mail per account, counted for an unknown name too: the same work either way.
    let sends = match &user {
        Some(u) => format!("reset-sends:user:{}", u.id),
        None => format!("reset-sends:name:{}", hash_secret(&login.to_lowercase())),
    };
    let mail_allowed = within(state, &sends, SENDS_PER_ACCOUNT, ttl(state)).await?;
    let Some(user) = user else {
        state.store.audit(event.detail("account", false), now).await;
        return Ok(Asked::Sent);
    };
    if mail_allowed {
        let url = state.url(&RESET.replace("{token}", &token));
        state.send_later(mail::reset_link(state, &user.email, &user.username, &url));
        state.store.audit(event.user(&user.id), now).await;
    } else {
        state.store.audit(event.user(&user.id).detail("mailed", false), now).await;
    }
    Ok(Asked::Sent)
}

/// The account a link is for, while the link works; a link whose password has changed since
/// is forgotten.
async fn live(state: &AppState, token: &str) -> Result<Option<crate::domain::User>, PageError> {
    let key = link_key(token);
    let Some(json) = state.ephemeral.get(&key).await? else { return Ok(None) };
    let Ok(Link { user_id: Some(user_id), binding: bound }) = serde_json::from_str::<Link>(&json) else {
        return Ok(None);
    };
    let user = state.store.user(&user_id).await?.filter(|u| !u.disabled);
    match user {
        Some(u) if crate::crypto::constant_time_eq(binding(&u).as_bytes(), bound.as_bytes()) => Ok(Some(u)),
        _ => {
            state.ephemeral.delete(&key).await?;
            Ok(None)
        }
    }
}

/// Sets `password` on the account the link is for, if the link works and the password is
/// acceptable; the link is used only when the password is set.
pub async fn reset(state: &AppState, token: &str, password: &str, ip: Option<String>) -> Result<Reset, PageError> {
    if !within(state, &format!("reset-tries:ip:{}", ip.as_deref().unwrap_or("-")), TRIES_PER_IP, HOUR).await? {
        return Ok(Reset::Throttled { retry_after: HOUR.as_secs() });
    }
    let Some(user) = live(state, token).await? else { return Ok(Reset::Expired) };
    let policy = &state.settings.password;
    if let Err(refusal) = super::new_password::check(&state.passwords, &state.store, policy, &user, password).await? {
        return Ok(Reset::Refused(refusal));
    }
    let hash = state.passwords.hash(password.to_owned()).await?;
    // Taken once, now: of two racing submissions only one sets a password.
    if !matches!(state.ephemeral.take(&link_key(token)).await?, Taken::Fresh(_)) {
        return Ok(Reset::Expired);
    }
    let now = state.now();
    state.store.set_password(&user.id, &hash, policy.history, SignOut::Everywhere, now).await?;
    // The mailbox is proven: earlier failed sign-ins no longer hold the account back.
    state.ephemeral.delete(&crate::login::steps::account_key(&user.id)).await?;
    state.store.audit(AuditEvent::new("account.password_reset").user(&user.id).ip(ip), now).await;
    let signed_out = "Every session was signed out and every application must ask you to sign in again.";
    state.send_later(mail::methods_changed(state, &user.email, &user.username, changed::RESET_SENTENCE, signed_out));
    Ok(Reset::Changed)
}

// ---- pages ------------------------------------------------------------------------------------

/// The forgot form is not tied to a session, so its CSRF token is tied to a cookie of its own.
const FORM_COOKIE: &str = "latchkey_form";

fn form_csrf(cookie: &str) -> String {
    hash_secret(&format!("forgot-csrf:{cookie}"))
}

#[derive(serde::Serialize)]
struct ForgotPage<'a> {
    csrf: &'a str,
    login: &'a str,
    sent: bool,
    error: Option<&'a str>,
    minutes: i64,
}

crate::pages::template!(ForgotPage<'a>, "account_password_forgot.html");

#[derive(serde::Serialize)]
struct ResetPage<'a> {
    action: &'a str,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

crate::pages::template!(ResetPage<'a>, "account_password_reset.html");

#[derive(serde::Serialize)]
pub(super) struct NoticePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub link: &'a str,
    pub link_label: &'a str,
}

crate::pages::template!(NoticePage<'a>, "account_notice.html");

fn forgot_page(
    status: StatusCode,
    csrf: &str,
    login: &str,
    sent: bool,
    error: Option<&str>,
    state: &AppState,
) -> Response {
    let minutes = (state.settings.tokens.reset_ttl.max(60) + 59) / 60;
    crate::pages::render(status, &ForgotPage { csrf, login, sent, error, minutes })
}

/// GET /account/password/forgot
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (cookie, set) = match cookies::get(&headers, FORM_COOKIE, state.secure_cookies) {
        Some(c) if !c.is_empty() => (c.to_owned(), None),
        _ => {
            let c = random_token();
            let set = cookies::set(FORM_COOKIE, &c, Some(3600), state.secure_cookies);
            (c, Some(set))
        }
    };
    let mut resp = forgot_page(StatusCode::OK, &form_csrf(&cookie), "", false, None, &state);
    if let Some(set) = set {
        resp.headers_mut().append(header::SET_COOKIE, set);
    }
    resp
}

/// POST /account/password/forgot
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let csrf = form_csrf(cookies::get(&headers, FORM_COOKIE, state.secure_cookies).unwrap_or(&random_token()));
    let p = page_form(&headers, &body, &csrf)?;
    let login = p.get("login").map(str::trim).unwrap_or_default();
    if login.is_empty() || login.len() > 254 {
        let error = Some("Enter the username or email address of your account.");
        return Ok(forgot_page(StatusCode::BAD_REQUEST, &csrf, login, false, error, &state));
    }
    Ok(match ask(&state, login, Some(client.to_string())).await? {
        Asked::Sent => forgot_page(StatusCode::OK, &csrf, login, true, None, &state),
        Asked::Throttled { retry_after } => {
            let mut resp = forgot_page(StatusCode::TOO_MANY_REQUESTS, &csrf, login, false, Some(THROTTLED), &state);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            resp
        }
    })
}

fn expired_page() -> Response {
    let page = NoticePage {
        title: "This link no longer works",
        message: EXPIRED,
        link: PAGE,
        link_label: "Ask for a new link",
    };
    crate::pages::render(StatusCode::BAD_REQUEST, &page)
}

fn reset_csrf(token: &str) -> String {
    hash_secret(&format!("reset-csrf:{token}"))
}

/// GET /account/password/reset/{token}: the form, while the link works. Nothing is used: mail
/// scanners fetch links.
pub async fn show_reset(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, PageError> {
    let Some(user) = live(&state, &token).await? else { return Ok(expired_page()) };
    let action = RESET.replace("{token}", &token);
    let page = ResetPage { action: &action, csrf: &reset_csrf(&token), username: &user.username, error: None };
    Ok(crate::pages::render(StatusCode::OK, &page))
}

/// POST /account/password/reset/{token}: the new password.
pub async fn submit_reset(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let csrf = reset_csrf(&token);
    let p = page_form(&headers, &body, &csrf)?;
    let password = p.get("password").unwrap_or_default();
    let action = RESET.replace("{token}", &token);
    let again = |username: String, error: String| {
        let page = ResetPage { action: &action, csrf: &csrf, username: &username, error: Some(&error) };
        crate::pages::render(StatusCode::BAD_REQUEST, &page)
    };
    Ok(match reset(&state, &token, password, Some(client.to_string())).await? {
        Reset::Changed => {
            let page = NoticePage {
                title: "Your password was changed",
                message: "Every session of your account was signed out. Sign in with your new password.",
                link: super::security::PAGE,
                link_label: "Sign in",
            };
            crate::pages::render(StatusCode::OK, &page)
        }
        Reset::Refused(refusal) => {
            let username = live(&state, &token).await?.map(|u| u.username).unwrap_or_default();
            again(username, refusal.to_string())
        }
        Reset::Expired => expired_page(),
        Reset::Throttled { retry_after } => {
            let mut resp = PageError {
                status: StatusCode::TOO_MANY_REQUESTS,
                title: "Too many attempts".into(),
                message: THROTTLED.into(),
                code: None,
            }
            .into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            resp
        }
    })
}
