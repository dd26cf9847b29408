//! The back-channel logout queue (OIDC Back-Channel Logout 1.0, see `oidc::backchannel`): which
//! clients to tell that a session ended. Rows are written in the transaction that ends the
//! session, for every client that signed in with it and registered a `backchannel_logout_uri`;
//! the id (`session client`) makes it one row per session and client, however the session ends.

use super::{Result, Store};

/// The sessions a transaction is about to end.
pub(super) enum Ending<'a> {
    /// One session.
    Session(&'a str),
    /// Every session of a user.
    AllOf(&'a str),
    /// Every session of a user but one (`""` keeps none).
    AllOfBut(&'a str, &'a str),
}

/// The sessions of each [`Ending`], a condition on `s`.
const SESSION: &str = "s.id = $2";
const ALL_OF: &str = "s.user_id = $2";
const ALL_OF_BUT: &str = "s.user_id = $2 AND s.id <> $3";

/// The statement that queues the logouts of the sessions `which` selects (at `$1`). A
/// session's grants are found by its user and its id together (`grants_user_session`).
fn enqueue_statement(which: &str) -> String {
    format!(
        "INSERT INTO logout_deliveries (id, client_id, session_id, user_id, attempts, next_at, created_at)
         SELECT DISTINCT g.session_id || ' ' || g.client_id, g.client_id, g.session_id, s.user_id, 0, $1, $1
         FROM sessions s JOIN grants g ON g.user_id = s.user_id AND g.session_id = s.id
         JOIN clients c ON c.id = g.client_id
         WHERE s.ended_at IS NULL AND c.metadata LIKE '%\"backchannel_logout_uri\"%' AND {which}
         ON CONFLICT (id) DO NOTHING"
    )
}

/// Queues a logout for every client that signed in with the sessions `ending` names and asked
/// to be told. Run before the sessions are marked ended, in the same transaction.
pub(super) async fn enqueue(tx: &mut sqlx::Transaction<'_, sqlx::Any>, ending: Ending<'_>, now: i64) -> Result<()> {
    let q = |which: &str| sqlx::query(sqlx::AssertSqlSafe(enqueue_statement(which))).bind(now);
    let q = match ending {
        Ending::Session(id) => q(SESSION).bind(id.to_owned()),
        Ending::AllOf(user) => q(ALL_OF).bind(user.to_owned()),
        Ending::AllOfBut(user, keep) => q(ALL_OF_BUT).bind(user.to_owned()).bind(keep.to_owned()),
    };
    q.execute(&mut **tx).await?;
    Ok(())
}

/// A logout to deliver: the client to tell, the session that ended and its user.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub session_id: String,
    pub user_id: String,
    pub attempts: i64,
    pub next_at: i64,
}

impl Store {
    /// Up to `limit` deliveries due at `now`, the oldest first.
    pub async fn due_logouts(&self, now: i64, limit: i64) -> Result<Vec<LogoutDelivery>> {
        sqlx::query_as(
            "SELECT id, client_id, session_id, user_id, attempts, next_at FROM logout_deliveries
             WHERE next_at <= $1 ORDER BY next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Takes a due delivery for this node until `until` and counts the attempt; false when
    /// another node took it first (its `next_at` moved).
    pub async fn claim_logout(&self, d: &LogoutDelivery, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE logout_deliveries SET next_at = $1, attempts = attempts + 1 WHERE id = $2 AND next_at = $3",
        )
        .bind(until)
        .bind(&d.id)
        .bind(d.next_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets when a failed delivery is tried again.
    pub async fn retry_logout_at(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE logout_deliveries SET next_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a delivery: delivered, given up, or no longer wanted.
    pub async fn remove_logout(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM logout_deliveries WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The grants of the sessions that end are found through an index, never by reading every
    /// grant in the transaction that ends a session.
    #[tokio::test]
    async fn the_logouts_of_ending_sessions_are_found_through_indexes() {
        let statements = [super::SESSION, super::ALL_OF, super::ALL_OF_BUT].map(super::enqueue_statement);
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        super::super::plans::assert_every_statement_searches_an_index(&statements).await;
    }
}
