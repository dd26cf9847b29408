//! `/account/password`: the signed-in user changes their password. The current password
//! proves it is them (guesses count toward the account's sign-in throttle); an account with
//! no password yet (signed up through another provider) proves it with a fresh sign-in
//! instead. The new password meets the policy and the history. Then every other session ends
//! and the user is mailed ([`changed::methods_changed`]); this browser stays signed in.

use super::changed::{self, Change};
use super::{Signed, fresh, sign_in, signed_in};
use crate::domain::User;
use crate::domain::password_policy::Refusal;
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::login::steps::account_key;
use crate::state::AppState;
use crate::store::{AuditEvent, SignOut};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::net::IpAddr;
use std::time::Duration;

pub const PAGE: &str = "/account/password";

/// What a change came to.
pub enum Changed {
    Changed,
    /// The current password is wrong (or missing).
    WrongCurrent,
    /// Too many wrong current passwords: the account's sign-in throttle.
    Throttled {
        retry_after: u64,
    },
    Refused(Refusal),
}

/// Changes `user`'s password to `new`, `current` proving it is them when the account has a
/// password; the caller has made sure a password-less account signed in freshly. Sessions other
/// than `keep` end in the same transaction as the change.
pub async fn change(
    state: &AppState,
    user: &User,
    current: Option<&str>,
    new: &str,
    keep: Option<&str>,
    ip: Option<String>,
) -> Result<Changed, PageError> {
    if user.password_hash.is_some() {
        let key = account_key(&user.id);
        let lockout = state.settings.login.lockout_secs.max(1) as u64;
        // Counted before the check, like a sign-in: racing guesses cannot outrun the limit.
        if state.ephemeral.incr(&key, Duration::from_secs(lockout)).await? > state.settings.login.max_failures {
            return Ok(Changed::Throttled { retry_after: lockout });
        }
        let given = current.unwrap_or_default().to_owned();
        let Ok(matched) = state.passwords.verify(given, user.password_hash.clone()).await else {
            // Nothing was checked: the attempt does not count.
            state.ephemeral.decr(&key).await?;
            return Err(PageError::busy());
        };
        if !matched {
            let event = AuditEvent::new("account.password_change_failed").user(&user.id).ip(ip);
            state.store.audit(event, state.now()).await;
            return Ok(Changed::WrongCurrent);
        }
        state.ephemeral.decr(&key).await?;
    }
    let policy = &state.settings.password;
    if let Err(refusal) = super::new_password::check(&state.passwords, &state.store, policy, user, new).await? {
        return Ok(Changed::Refused(refusal));
    }
    let hash = state.passwords.hash(new.to_owned()).await?;
    let now = state.now();
    state.store.set_password(&user.id, &hash, policy.history, SignOut::OthersThan(keep), now).await?;
    state.store.audit(AuditEvent::new("account.password_changed").user(&user.id).ip(ip.clone()), now).await;
    changed::methods_changed(state, &user.id, keep, Change::Password, ip).await?;
    Ok(Changed::Changed)
}

#[derive(serde::Serialize)]
struct PasswordPage<'a> {
    username: &'a str,
    csrf: &'a str,
    has_password: bool,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

crate::pages::template!(PasswordPage<'a>, "account_password.html");

fn render(status: StatusCode, user: &User, signed: &Signed, error: Option<&str>, notice: Option<&str>) -> Response {
    let page = PasswordPage {
        username: &user.username,
        csrf: &signed.csrf,
        has_password: user.password_hash.is_some(),
        error,
        notice,
    };
    crate::pages::render(status, &page)
}

/// The signed-in user, or the response that signs them in (freshly, for an account without a
/// password) and comes back here.
async fn account(
    state: &AppState,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<Result<(Signed, User), Response>, PageError> {
    let signed = match signed_in(state, headers, client, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(Err(resp)),
    };
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    if user.password_hash.is_none() && !fresh(state, &signed.session, state.now()).await? {
        return Ok(Err(sign_in(state, headers, client, PAGE).await?));
    }
    Ok(Ok((signed, user)))
}

/// GET /account/password
pub async fn show(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    Ok(match account(&state, &headers, client).await? {
        Ok((signed, user)) => render(StatusCode::OK, &user, &signed, None, None),
        Err(resp) => resp,
    })
}

/// POST /account/password
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (signed, user) = match account(&state, &headers, client).await? {
        Ok(a) => a,
        Err(resp) => return Ok(resp),
    };
    let p = page_form(&headers, &body, &signed.csrf)?;
    let new = p.get("new_password").unwrap_or_default();
    let ip = Some(client.to_string());
    let bad = |error: &str| render(StatusCode::BAD_REQUEST, &user, &signed, Some(error), None);
    Ok(match change(&state, &user, p.get("current_password"), new, Some(&signed.session.id), ip).await? {
        Changed::Changed => {
            let user = state.store.user(&user.id).await?.unwrap_or(user.clone());
            let notice = "Your password was changed. Your other sessions were signed out.";
            render(StatusCode::OK, &user, &signed, None, Some(notice))
        }
        Changed::WrongCurrent => bad("Your current password is not right."),
        Changed::Refused(refusal) => bad(&refusal.to_string()),
        Changed::Throttled { retry_after } => {
            let mut resp = render(StatusCode::TOO_MANY_REQUESTS, &user, &signed, Some(super::forgot::THROTTLED), None);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            resp
        }
    })
}
