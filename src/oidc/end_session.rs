//! RP-Initiated Logout 1.0. When the `id_token_hint` names this browser's own session (its `sub`,
//! and its `sid` when the token has one) the session ends at once and the browser returns to a
//! registered `post_logout_redirect_uri` (with `state`). Any other request (no hint, a hint for
//! another user or another session, no session at all) asks the user to confirm first (§2: "the
//! OP SHOULD ask the End-User whether to log out"), since anyone can link to this endpoint with
//! any ID token they hold. The confirmation is bound to the session it was shown for. An
//! unregistered return address is never followed.
//!
//! A confirmation is kept for 10 minutes, so what one browser can make us keep is bounded: its
//! session (or, without one, its address) holds its newest `login.max_flows_per_browser`
//! confirmations, and showing another forgets the oldest.

use crate::crypto::{hash_secret, random_token};
use crate::domain::Session;
use crate::http::client_ip::{ClientAddr, limit_key};
use crate::http::{PageError, Params, cookies};
use crate::login::session;
use crate::oidc::id_token::{Hint, verify_hint};
use crate::pages;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

const CONFIRM_TTL: Duration = Duration::from_secs(600);

/// Where to go after logout, once validated against the client's registration.
#[derive(Serialize, Deserialize)]
struct Return {
    uri: String,
    state: Option<String>,
}

/// What a confirmation page remembers: where to return, and the session it would end (none when
/// the browser had none), so that a form shown for one session cannot end another.
#[derive(Serialize, Deserialize)]
struct Pending {
    ret: Option<Return>,
    sid: Option<String>,
}

/// Does the hint name this very session? Only then may logout skip the confirmation.
fn hint_names(hint: &Hint, session: &Session) -> bool {
    hint.sub == session.user_id && hint.sid.as_ref().is_none_or(|sid| *sid == session.id)
}

pub async fn get(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    reply(start(&state, &headers, addr, &p).await)
}

pub async fn post(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match Params::from_form(&headers, &body) {
        Ok(p) => p,
        Err(m) => {
            return PageError::bad_request("invalid_request", "This sign-out request is not valid", m).into_response();
        }
    };
    if p.get("confirm") == Some("yes") {
        reply(confirm(&state, &headers, &p).await)
    } else {
        reply(start(&state, &headers, addr, &p).await)
    }
}

fn reply(r: Result<Response, PageError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn start(state: &AppState, headers: &HeaderMap, addr: IpAddr, p: &Params) -> Result<Response, PageError> {
    let invalid = |m: &str| PageError::bad_request("invalid_request", "This sign-out request is not valid", m);
    if let Some(name) = p.duplicate() {
        return Err(invalid(&format!("The {name} parameter appears more than once.")));
    }
    let hint = match p.get("id_token_hint") {
        Some(h) => {
            Some(verify_hint(state, h).ok_or_else(|| invalid("The id_token_hint is not an ID token issued here."))?)
        }
        None => None,
    };
    // The client: the hint's audience, or client_id; when both are given they must agree.
    let client_id = match (&hint, p.get("client_id")) {
        (Some(h), Some(id)) if !h.aud.iter().any(|a| a == id) => {
            return Err(invalid("client_id does not match the id_token_hint."));
        }
        (_, Some(id)) => Some(id.to_owned()),
        (Some(h), None) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => Some(state.store.client(id).await?.ok_or_else(|| invalid("The application is not registered."))?),
        None => None,
    };
    let ret = match (p.get("post_logout_redirect_uri"), &client) {
        (None, _) => None,
        (Some(uri), Some(c)) if c.has_post_logout_redirect_uri(uri) => {
            Some(Return { uri: uri.to_owned(), state: p.get("state").map(str::to_owned) })
        }
        (Some(_), Some(_)) => {
            return Err(invalid("The address to return to after signing out is not registered for this application."));
        }
        // Without a client the address cannot be checked, so it is not followed.
        (Some(_), None) => None,
    };
    let current = session::current(state, headers, state.now()).await?;
    if let (Some(h), Some(s)) = (&hint, &current)
        && hint_names(h, s)
    {
        return finish(state, current, ret).await;
    }
    let csrf = random_token();
    let holder = match &current {
        Some(s) => format!("logouts-of:{}", hash_secret(&s.id)),
        None => format!("logouts-from:{}", limit_key(addr)),
    };
    let pending = Pending { ret, sid: current.map(|s| s.id) };
    state
        .ephemeral
        .put(&format!("logout:{csrf}"), &serde_json::to_string(&pending).map_err(anyhow::Error::from)?, CONFIRM_TTL)
        .await?;
    let cap = state.settings.login.max_flows_per_browser;
    for oldest in state.ephemeral.enlist(&holder, &csrf, cap, CONFIRM_TTL).await? {
        state.ephemeral.delete(&format!("logout:{oldest}")).await?;
    }
    let page = pages::LogoutConfirmPage { csrf: &csrf, client_name: client.as_ref().map(|c| c.name.as_str()) };
    Ok(pages::render(StatusCode::OK, &page))
}

async fn confirm(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<Response, PageError> {
    let csrf = p.get("csrf").unwrap_or_default();
    let stored = state.ephemeral.take(&format!("logout:{csrf}")).await?;
    let crate::ephemeral::Taken::Fresh(json) = stored else {
        return Err(PageError::forbidden(
            "This sign-out form has expired or was already used. Reload the page and try again.",
        ));
    };
    let pending: Pending = serde_json::from_str(&json).map_err(anyhow::Error::from)?;
    let current = session::current(state, headers, state.now()).await?;
    if current.as_ref().map(|s| &s.id) != pending.sid.as_ref() {
        return Err(PageError::forbidden(
            "This sign-out form was shown for another sign-in. Reload the page and try again.",
        ));
    }
    finish(state, current, pending.ret).await
}

/// Ends `session` (and the grants bound to it), then returns or shows a page.
async fn finish(state: &AppState, session: Option<Session>, ret: Option<Return>) -> Result<Response, PageError> {
    let now = state.now();
    if let Some(s) = session {
        state.store.end_session(&s.id, now).await?;
        // The gateway sessions made from it end too, on every node at once.
        crate::gateway::session::end_for(state, &s.user_id, Some(&s.id)).await?;
        state.store.audit(AuditEvent::new("logout").user(&s.user_id).detail("sid", s.id.clone()), now).await;
    }
    let mut resp = match ret {
        Some(r) => {
            let mut url = url::Url::parse(&r.uri).map_err(anyhow::Error::from)?;
            if let Some(s) = &r.state {
                url.query_pairs_mut().append_pair("state", s);
            }
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(url.as_str()).map_err(anyhow::Error::from)?);
            resp
        }
        None => pages::render(StatusCode::OK, &pages::LoggedOutPage),
    };
    resp.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::SESSION, state.secure_cookies));
    Ok(resp)
}
