//! `/account/sessions`: the user's live browser sessions — when each started and was last
//! used, from which address and browser, which applications hold grants from it — with "this
//! browser" marked. Ending a session does what RP-initiated logout does to it — the session ends
//! and the grants issued under it are revoked — and more: its `offline_access` grants go too,
//! since the owner means to sign that device out entirely, so its cookie and its refresh tokens
//! stop. Ending one needs no fresh sign-in: it only ever takes access away.

use super::{Signed, signed_in, when};
use crate::domain::user_agent;
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::http::{PageError, cookies};
use crate::login::routes::see_other;
use crate::pages;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

pub const PAGE: &str = "/account/sessions";

async fn render(state: &AppState, signed: &Signed, notice: Option<&str>) -> Result<Response, PageError> {
    let now = state.now();
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let idle = state.settings.login.idle_timeout;
    let clients = state.store.session_clients(&user.id, now).await?;
    let gateway = match state.settings.gateway.enabled {
        true => crate::gateway::session::of_user(state, &user.id).await?,
        false => Vec::new(),
    };
    let mut lines = Vec::new();
    for s in state.store.user_sessions(&user.id, now).await?.into_iter().filter(|s| !s.idle(idle, now)) {
        let mut applications = Vec::new();
        for c in clients.iter().filter(|c| c.session_id == s.id) {
            let name = state.store.client(&c.client_id).await?.map_or_else(|| c.client_id.clone(), |c| c.name.clone());
            applications.push(name);
        }
        lines.push(pages::SessionLine {
            current: s.id == signed.session.id,
            browser: user_agent::summary(s.user_agent.as_deref()),
            ip: s.ip.clone().unwrap_or_else(|| "unknown".into()),
            started: when(s.created_at),
            last_used: when(s.last_seen_at),
            remembered: s.persistent,
            applications,
            gateway: gateway
                .iter()
                .filter(|(_, g)| g.sid == s.id)
                .map(|(_, g)| {
                    let device = g.device.get(..8).unwrap_or_default();
                    format!("{} — device {device}, last used {}", g.host, when(g.last_seen_at))
                })
                .collect(),
            id: s.id,
        });
    }
    // This browser first, then the most recently used.
    lines.sort_by_key(|l| !l.current);
    let page = pages::SessionsPage { username: &user.username, csrf: &signed.csrf, sessions: lines, notice };
    Ok(pages::render(StatusCode::OK, &page))
}

/// GET /account/sessions
pub async fn show(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match signed_in(&state, &headers, client, PAGE).await? {
        Ok(signed) => render(&state, &signed, None).await,
        Err(resp) => Ok(resp),
    }
}

/// POST /account/sessions: end one session of this user (`action=end`, `id`), or every one
/// but this browser's (`action=end-others`).
pub async fn end(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, client, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let p = page_form(&headers, &body, &signed.csrf)?;
    let now = state.now();
    let user_id = &signed.session.user_id;
    let sessions = state.store.user_sessions(user_id, now).await?;
    // Only this user's own live sessions can be named.
    let targets: Vec<&str> = match p.get("action") {
        Some("end") => match sessions.iter().find(|s| Some(s.id.as_str()) == p.get("id")) {
            Some(s) => vec![s.id.as_str()],
            None => return render(&state, &signed, Some("That session has already ended.")).await,
        },
        Some("end-others") => sessions.iter().map(|s| s.id.as_str()).filter(|id| *id != signed.session.id).collect(),
        _ => return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown action.")),
    };
    let ip = Some(client.to_string());
    for id in &targets {
        state.store.end_device_session(id, now).await?;
        crate::gateway::session::end_for(&state, user_id, Some(id)).await?;
        let event = AuditEvent::new("session.ended").user(user_id).ip(ip.clone()).detail("sid", *id);
        state.store.audit(event.detail("by", "user"), now).await;
    }
    // Ending this browser's own session signs it out: the next page asks to sign in.
    let mut resp = see_other(PAGE);
    if targets.contains(&signed.session.id.as_str()) {
        resp.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::SESSION, state.secure_cookies));
    }
    Ok(resp)
}
