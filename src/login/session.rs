//! The browser session cookie and the SSO session it names.

use crate::crypto::{hash_secret, random_id, random_token};
use crate::domain::Session;
use crate::http::cookies;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue};

/// The live session of this browser, if any.
pub async fn current(state: &AppState, headers: &HeaderMap, now: i64) -> crate::store::Result<Option<Session>> {
    match cookies::get(headers, cookies::SESSION) {
        Some(token) if !token.is_empty() => state.store.session_by_token(&hash_secret(token), now).await,
        _ => Ok(None),
    }
}

/// Records that `user_id` just authenticated with `amr`. The same user's session is refreshed
/// in place (its `sid` stays); otherwise a new session replaces any other, and the cookie to
/// set is returned.
pub async fn establish(
    state: &AppState,
    headers: &HeaderMap,
    user_id: &str,
    amr: Vec<String>,
    acr: &str,
    now: i64,
) -> crate::store::Result<(Session, Option<HeaderValue>)> {
    let expires_at = now + state.settings.tokens.session_ttl;
    if let Some(mut s) = current(state, headers, now).await? {
        if s.user_id == user_id {
            s.auth_time = now;
            s.amr = amr;
            s.acr = acr.to_owned();
            s.expires_at = expires_at;
            state.store.reauthenticate_session(&s).await?;
            return Ok((s, None));
        }
        state.store.end_session(&s.id, now).await?;
    }
    let token = random_token();
    let s =
        Session { id: random_id(), user_id: user_id.to_owned(), auth_time: now, amr, acr: acr.to_owned(), expires_at };
    state.store.insert_session(&s, &hash_secret(&token), now).await?;
    let cookie = cookies::set(cookies::SESSION, &token, state.settings.tokens.session_ttl, state.secure_cookies);
    Ok((s, Some(cookie)))
}
