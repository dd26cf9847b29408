//! The audit log: one row per security event, never updated.

use super::{Result, Store};
use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditEvent {
    pub kind: &'static str,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: &'static str) -> Self {
        Self { kind, detail: serde_json::Value::Object(Default::default()), ..Default::default() }
    }
    pub fn user(mut self, id: &str) -> Self {
        self.user_id = Some(id.to_owned());
        self
    }
    pub fn client(mut self, id: &str) -> Self {
        self.client_id = Some(id.to_owned());
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let serde_json::Value::Object(m) = &mut self.detail {
            m.insert(key.to_owned(), value.into());
        }
        self
    }
}

impl Store {
    /// Records an event. A failure to write the audit log is logged, not raised: the action it
    /// describes has already happened.
    pub async fn audit(&self, event: AuditEvent, now: i64) {
        let result: Result<_> = sqlx::query(
            "INSERT INTO audit_events (id, at, kind, user_id, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crate::crypto::random_id())
        .bind(now)
        .bind(event.kind)
        .bind(&event.user_id)
        .bind(&event.client_id)
        .bind(&event.ip)
        .bind(event.detail.to_string())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {
                crate::metrics::audited(event.kind);
                tracing::info!(target: "audit", kind = event.kind, user = ?event.user_id, client = ?event.client_id, "audit event")
            }
            Err(e) => tracing::error!(kind = event.kind, error = %e, "could not write audit event"),
        }
    }

    pub async fn audit_kinds(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT kind FROM audit_events ORDER BY at").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }
}

/// A recorded event, as the user's data export lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub kind: String,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

impl Store {
    /// The newest `limit` events about the user, newest first.
    pub async fn audit_of(&self, user_id: &str, limit: i64) -> Result<Vec<AuditRow>> {
        sqlx::query_as(
            "SELECT at, kind, client_id, ip, detail FROM audit_events WHERE user_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}
