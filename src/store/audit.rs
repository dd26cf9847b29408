//! The audit log: one row per security event, never updated (but for the sealing of rows
//! written in clear, and a rewrap). The client address is sealed (see [`super::sealed`]).

use super::pg_direct::pooled;
use super::sealed::Column;
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
    /// describes has already happened. Written by the hot writer (on SQLite, in the batch it is
    /// committing): a sign-in writes two.
    pub async fn audit(&self, event: AuditEvent, now: i64) {
        const SQL: &str = "INSERT INTO audit_events (id, at, kind, user_id, client_id, ip, detail, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1)";
        let id = crate::crypto::random_id();
        let (ip, detail) = (self.pii.seal_opt(Column::AuditIp, &id, event.ip.as_deref()), event.detail.to_string());
        let result: Result<()> = async {
            match &self.direct {
                Some(d) => {
                    let params: [super::direct::Param<'_>; 7] =
                        [&id, &now, &event.kind, &event.user_id, &event.client_id, &ip, &detail];
                    d.transaction(|tx| super::direct::execute(tx, SQL, &params)).await.map(drop)
                }
                None => pooled!(changed self, |e| sqlx::query(SQL)
                .bind(&id)
                .bind(now)
                .bind(event.kind)
                .bind(&event.user_id)
                .bind(&event.client_id)
                .bind(&ip)
                .bind(&detail)
                .execute(e))
                .map(drop),
            }
        }
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

/// An event as read back, for the activity page, the data export and `latchkey audit`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditRow {
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    #[serde(serialize_with = "as_json")]
    pub detail: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    at: i64,
    kind: String,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    detail: String,
    sealed: i64,
}

fn as_json<S: serde::Serializer>(detail: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    serde_json::from_str::<serde_json::Value>(detail).unwrap_or_default().serialize(s)
}

impl AuditRow {
    /// A string member of the event's detail.
    pub fn detail_str(&self, key: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.detail).ok()?;
        v.get(key)?.as_str().map(str::to_owned)
    }
}

/// Which events to read: all filters optional, newest first, at most `limit`.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub since: Option<i64>,
    /// Kinds beginning with this (`login.`, `mfa`).
    pub kind_prefix: Option<String>,
    /// Only these kinds (or, with `kind_prefix`, these as well).
    pub kinds: Vec<String>,
    pub limit: i64,
}

impl Store {
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let mut sql =
            String::from("SELECT id, at, kind, user_id, client_id, ip, detail, sealed FROM audit_events WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let param = |binds: &mut Vec<String>, v: String| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if let Some(u) = &q.user_id {
            sql += &format!(" AND user_id = {}", param(&mut binds, u.clone()));
        }
        if let Some(since) = q.since {
            // A number in the text: `at` is BIGINT and the only other bind type would be text.
            sql += &format!(" AND at >= {since}");
        }
        let mut kinds: Vec<String> = Vec::new();
        if let Some(prefix) = &q.kind_prefix {
            let len = prefix.chars().count();
            kinds.push(format!("substr(kind, 1, {len}) = {}", param(&mut binds, prefix.clone())));
        }
        for k in &q.kinds {
            kinds.push(format!("kind = {}", param(&mut binds, k.clone())));
        }
        if !kinds.is_empty() {
            sql += &format!(" AND ({})", kinds.join(" OR "));
        }
        sql += &format!(" ORDER BY at DESC, id DESC LIMIT {}", q.limit.max(1));
        // Built from fixed fragments and numbered placeholders only; every value is bound.
        let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditRow {
                    ip: self.pii.open_opt(Column::AuditIp, &r.id, r.ip, r.sealed)?,
                    at: r.at,
                    kind: r.kind,
                    user_id: r.user_id,
                    client_id: r.client_id,
                    detail: r.detail,
                })
            })
            .collect()
    }
}
