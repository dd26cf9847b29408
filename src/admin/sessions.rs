//! A user's browser sessions: list them, end one, end them all. Ending a session revokes the
//! grants obtained in it, `offline_access` ones too, as the user's own sessions page does.

use super::{AdminError, Ops};
use crate::store::AuditEvent;
use serde::Serialize;
use utoipa::ToSchema;

/// A live browser session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session id (the `sid` claim).
    pub id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// "Keep me signed in".
    pub persistent: bool,
    /// The clients holding grants from this session.
    pub clients: Vec<String>,
}

/// The sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    pub user_id: String,
    pub ended: Vec<String>,
}

pub async fn list(ops: &Ops<'_>, login: &str) -> Result<Vec<SessionView>, AdminError> {
    let user = ops.user(login).await?;
    let clients = ops.store.session_clients(&user.id, ops.now).await?;
    let sessions = ops.store.user_sessions(&user.id, ops.now).await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionView {
            clients: clients.iter().filter(|c| c.session_id == s.id).map(|c| c.client_id.clone()).collect(),
            id: s.id,
            user_id: s.user_id,
            auth_time: s.auth_time,
            amr: s.amr,
            acr: s.acr,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            ip: s.ip,
            persistent: s.persistent,
        })
        .collect())
}

/// Ends one live session of the user.
pub async fn end(ops: &Ops<'_>, login: &str, session_id: &str) -> Result<Ended, AdminError> {
    let user = ops.user(login).await?;
    match ops.store.session(session_id, ops.now).await? {
        Some(s) if s.user_id == user.id => {}
        _ => return Err(AdminError::NotFound(format!("{} has no live session {session_id}", user.username))),
    }
    ops.store.end_device_session(session_id, ops.now).await?;
    ops.audit(AuditEvent::new("admin.session_ended").user(&user.id).detail("session", session_id)).await;
    Ok(Ended { user_id: user.id, ended: vec![session_id.to_owned()] })
}

/// Ends every live session of the user and revokes every grant obtained in them.
pub async fn end_all(ops: &Ops<'_>, login: &str) -> Result<Ended, AdminError> {
    let user = ops.user(login).await?;
    let ended: Vec<String> = ops.store.user_sessions(&user.id, ops.now).await?.into_iter().map(|s| s.id).collect();
    ops.store.end_other_sessions(&user.id, None, ops.now).await?;
    ops.audit(AuditEvent::new("admin.sessions_ended").user(&user.id).detail("sessions", ended.len())).await;
    Ok(Ended { user_id: user.id, ended })
}
