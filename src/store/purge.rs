//! The background purge: deletes what can no longer be used (expired or revoked grants with
//! their refresh tokens, refresh tokens rotated more than a day ago, ended or expired sessions,
//! expired initial access tokens, audit events past `audit.retention_days`), so the database
//! stays flat under steady load.
//! It deletes in batches of `purge.batch_size` rows per statement, so no statement holds the
//! write lock long; and one node at a time runs it, under a lease row every backend supports
//! (SQLite is one node anyway).

use super::{Result, Store};
use crate::clock::Clock;
use crate::config::Settings;
use std::time::Duration;

/// How long a rotated refresh token is remembered. Presented again within this time, it is
/// recognised as reuse and revokes its family; after it, it is refused as unknown
/// (`invalid_grant`) and the family lives on. Its grant's end removes it anyway.
const USED_REFRESH_TOKEN_KEPT: i64 = 24 * 3600;

const DAY: i64 = 24 * 3600;

/// Rows deleted by one purge.
#[derive(Debug, Default)]
pub struct Purged {
    pub grants: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub initial_access_tokens: u64,
    pub audit_events: u64,
}

/// What a statement deletes, which decides its cutoff and where its count goes.
#[derive(Clone, Copy)]
enum Rows {
    DeadGrantTokens,
    DeadGrants,
    UsedRefreshTokens,
    Sessions,
    InitialAccessTokens,
    AuditEvents,
}

/// Each statement deletes at most `$2` rows whose condition holds at cutoff `$1`; tokens go
/// before their grants (the foreign key). Each finds its rows through indexes (migration 0027):
/// `revoked_at > 0` and `ended_at > 0` rather than `IS NOT NULL`, as the partial indexes on
/// them answer the one and SQLite's planner does not see them answer the other. A statement
/// that read a whole table would hold SQLite's write lock while it did.
const BATCHES: [(Rows, &str); 6] = [
    (
        Rows::DeadGrantTokens,
        "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT r.token_hash FROM grants g
         JOIN refresh_tokens r ON r.grant_id = g.id WHERE g.expires_at < $1 OR g.revoked_at > 0 LIMIT $2)",
    ),
    (
        Rows::DeadGrants,
        "DELETE FROM grants WHERE id IN (SELECT id FROM grants g WHERE (g.expires_at < $1 OR g.revoked_at > 0)
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id) LIMIT $2)",
    ),
    (
        Rows::UsedRefreshTokens,
        "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens WHERE used_at < $1 LIMIT $2)",
    ),
    (
        Rows::Sessions,
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE ended_at > 0 OR expires_at < $1 LIMIT $2)",
    ),
    (
        Rows::InitialAccessTokens,
        "DELETE FROM initial_access_tokens WHERE token_hash IN
         (SELECT token_hash FROM initial_access_tokens WHERE expires_at <= $1 LIMIT $2)",
    ),
    (Rows::AuditEvents, "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 LIMIT $2)"),
];

impl Store {
    /// Takes (or renews) the purge lease for `node` until `until`; false when another node
    /// holds it.
    async fn take_lease(&self, node: &str, now: i64, until: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE leases SET holder = $1, expires_at = $2 WHERE name = 'purge' AND (expires_at < $3 OR holder = $1)",
        )
        .bind(node)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// One purge at `now`, if this node holds the lease; `None` when another node does.
    pub async fn purge(&self, node: &str, settings: &Settings, now: i64) -> Result<Option<Purged>> {
        let lease = now + settings.purge.interval_secs as i64 * 2;
        if !self.take_lease(node, now, lease).await? {
            return Ok(None);
        }
        let mut out = Purged::default();
        for (rows, sql) in BATCHES {
            let (cutoff, count) = match rows {
                Rows::DeadGrantTokens => (now, &mut out.refresh_tokens),
                Rows::DeadGrants => (now, &mut out.grants),
                Rows::UsedRefreshTokens => (now - USED_REFRESH_TOKEN_KEPT, &mut out.refresh_tokens),
                Rows::Sessions => (now, &mut out.sessions),
                // Valid while `expires_at > now` (`initial_access_token_valid`).
                Rows::InitialAccessTokens => (now, &mut out.initial_access_tokens),
                Rows::AuditEvents => (now - settings.audit.retention_days * DAY, &mut out.audit_events),
            };
            loop {
                let n = sqlx::query(sql).bind(cutoff).bind(settings.purge.batch_size).execute(&self.pool).await?;
                let n = n.rows_affected();
                *count += n;
                if n < settings.purge.batch_size as u64 {
                    break;
                }
                // Let other writers in between batches.
                tokio::task::yield_now().await;
            }
        }
        Ok(Some(out))
    }
}

/// Runs [`Store::purge`] every `purge.interval_secs` for the life of the process.
pub fn spawn(store: Store, settings: Settings, clock: Clock) {
    let node = crate::crypto::random_id();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(settings.purge.interval_secs));
        loop {
            tick.tick().await;
            match store.purge(&node, &settings, clock.now()).await {
                Ok(Some(p)) => tracing::debug!(?p, "purged expired rows"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not purge expired rows"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    /// Every statement of the purge finds its rows through an index: one that read a whole
    /// table each batch would hold SQLite's write lock for as long as the table takes to read,
    /// stalling every sign-in and token exchange, and longer as the tables grow.
    #[tokio::test]
    async fn every_statement_of_the_purge_searches_an_index() {
        let statements: Vec<&str> = super::BATCHES.iter().map(|(_, sql)| *sql).collect();
        super::super::plans::assert_every_statement_searches_an_index(&statements).await;
    }
}
