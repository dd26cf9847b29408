//! The browser session cookie and the SSO session it names: the absolute lifetime
//! (`tokens.session_ttl`), the idle timeout (`login.idle_timeout`), "last used" written at most
//! once a minute, and a new cookie token at every sign-in and step-up (no session fixation).

use crate::crypto::{hash_secret, random_id, random_token};
use crate::domain::Session;
use crate::http::cookies;
use crate::state::AppState;
use crate::store::SessionAtClient;
use axum::http::{HeaderMap, HeaderValue, header};

/// The longest `User-Agent` kept with a session.
const MAX_USER_AGENT: usize = 512;

/// The live session of this browser, if any. A session unused for longer than the idle
/// timeout is over, as if it had expired; a used one notes it (at most once a minute).
pub async fn current(state: &AppState, headers: &HeaderMap, now: i64) -> crate::store::Result<Option<Session>> {
    let Some(token) = cookie_token(state, headers) else { return Ok(None) };
    let Some(mut s) = state.store.session_by_token(&token, now).await? else { return Ok(None) };
    Ok(in_use(state, &mut s, now).await?.then_some(s))
}

/// [`current`], with what the authorization endpoint decides on for `client_id` (the client's
/// required groups, the user's consent), read in the same statement.
pub async fn current_at_client(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
    now: i64,
) -> crate::store::Result<Option<SessionAtClient>> {
    let Some(token) = cookie_token(state, headers) else { return Ok(None) };
    let Some(mut at) = state.store.session_at_client(&token, client_id, now).await? else { return Ok(None) };
    Ok(in_use(state, &mut at.session, now).await?.then_some(at))
}

/// The hash of the session cookie's token, if the browser sent one.
fn cookie_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookies::get(headers, cookies::SESSION, state.secure_cookies).filter(|t| !t.is_empty()).map(hash_secret)
}

/// False when the session has been idle too long (and is ended now, as a logout ends it: its
/// grants that are not `offline_access` are revoked); otherwise notes the use (at most once a
/// minute).
async fn in_use(state: &AppState, s: &mut Session, now: i64) -> crate::store::Result<bool> {
    if s.idle(state.settings.login.idle_timeout, now) {
        state.store.end_session(&s.id, now).await?;
        return Ok(false);
    }
    if s.due_touch(now) {
        state.store.touch_session(&s.id, now).await?;
        s.last_seen_at = now;
    }
    Ok(true)
}

/// Ends the live session `id`, last used at `last_seen_at`, if it has been idle past the
/// timeout (as a logout ends it), without counting this as a use (a client's token is no visit
/// of the browser); whether it did.
pub async fn ended_idle(state: &AppState, id: &str, last_seen_at: i64, now: i64) -> crate::store::Result<bool> {
    if !crate::domain::session::idle_since(last_seen_at, state.settings.login.idle_timeout, now) {
        return Ok(false);
    }
    state.store.end_session(id, now).await?;
    Ok(true)
}

/// The browser a request came from, as its `User-Agent` says.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?.trim();
    (!ua.is_empty()).then(|| ua.chars().take(MAX_USER_AGENT).collect())
}

/// Who signed in, how, and from where: what [`establish`] records.
pub struct SignIn<'a> {
    pub user_id: &'a str,
    pub amr: Vec<String>,
    pub acr: &'a str,
    pub ip: Option<String>,
    /// "Remember me": a cookie that outlives the browser.
    pub remember: bool,
}

/// Records that a user just authenticated. The same user's session is refreshed in place (its
/// `sid` stays); otherwise a new session replaces any other. Either way the cookie gets a new
/// token, so one planted or seen before the sign-in is worth nothing after it.
pub async fn establish(
    state: &AppState,
    headers: &HeaderMap,
    sign_in: SignIn<'_>,
    now: i64,
) -> crate::store::Result<(Session, HeaderValue)> {
    let ttl = state.settings.tokens.session_ttl;
    let token = random_token();
    let SignIn { user_id, amr, acr, ip, remember } = sign_in;
    let user_agent = user_agent(headers);
    let session = match current(state, headers, now).await? {
        Some(mut s) if s.user_id == user_id => {
            s.auth_time = now;
            s.amr = amr;
            s.acr = acr.to_owned();
            s.expires_at = now + ttl;
            s.last_seen_at = now;
            s.user_agent = user_agent;
            s.ip = ip;
            s.persistent = remember;
            state.store.reauthenticate_session(&s, &hash_secret(&token)).await?;
            s
        }
        other => {
            if let Some(s) = other {
                state.store.end_session(&s.id, now).await?;
            }
            let s = Session {
                id: random_id(),
                user_id: user_id.to_owned(),
                auth_time: now,
                amr,
                acr: acr.to_owned(),
                expires_at: now + ttl,
                created_at: now,
                last_seen_at: now,
                user_agent,
                ip,
                persistent: remember,
            };
            state.store.insert_session(&s, &hash_secret(&token)).await?;
            s
        }
    };
    // Without "remember me" a browser-session cookie: no Max-Age, gone when the browser closes.
    let max_age = session.persistent.then_some(ttl);
    Ok((session, cookies::set(cookies::SESSION, &token, max_age, state.secure_cookies)))
}
