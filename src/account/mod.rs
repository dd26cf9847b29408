//! Self-service pages for the signed-in user. Each page needs a live session (else a login
//! flow that returns here); every form carries a CSRF token derived from the session cookie;
//! changes need a recent sign-in (else a re-authentication that returns here) and are audited.

pub mod linked;
mod passkeys;
pub mod security;

use crate::crypto::hash_secret;
use crate::domain::Session;
use crate::http::{PageError, cookies};
use crate::login::flow::{self, Entry, Purpose};
use crate::login::{policy, session};
use crate::state::AppState;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(security::PAGE, get(security::show).post(security::change))
        .route(linked::PAGE, get(linked::show).post(linked::unlink))
}

/// The signed-in user's session, with the CSRF token its forms carry.
pub struct Signed {
    pub session: Session,
    pub csrf: String,
}

/// The session of this browser, or the response that signs the person in and comes back to
/// `return_to`.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    return_to: &str,
) -> Result<Result<Signed, Response>, PageError> {
    let now = state.now();
    match (session::current(state, headers, now).await?, cookies::get(headers, cookies::SESSION)) {
        (Some(session), Some(token)) => Ok(Ok(Signed { session, csrf: csrf_for(token) })),
        _ => Ok(Err(sign_in(state, headers, return_to).await?)),
    }
}

/// A login flow for the account pages that returns to `return_to`.
async fn sign_in(state: &AppState, headers: &HeaderMap, return_to: &str) -> Result<Response, PageError> {
    flow::start(state, headers, Purpose::Account { return_to: return_to.to_owned() }, Entry::SignIn).await
}

/// Bound to the session cookie, which another site can neither read nor guess.
fn csrf_for(session_token: &str) -> String {
    hash_secret(&format!("account-csrf:{session_token}"))
}

/// Recent enough for a security change: signed in within `login.reauth_secs`, and with the
/// second factor when the user has one.
async fn fresh(state: &AppState, s: &Session, now: i64) -> Result<bool, PageError> {
    let factors = flow::factors(state, &s.user_id).await?;
    let strong = !factors.any() || policy::acr_level(&s.acr) >= Some(2);
    Ok(now - s.auth_time <= state.settings.login.reauth_secs && strong)
}
