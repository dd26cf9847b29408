//! Browser sessions. The cookie carries a random token; only its hash is stored.

use super::{Result, Store, json_list, parse_list};
use crate::domain::Session;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    auth_time: i64,
    amr: String,
    acr: String,
    expires_at: i64,
}

impl From<Row> for Session {
    fn from(r: Row) -> Self {
        Session {
            id: r.id,
            user_id: r.user_id,
            auth_time: r.auth_time,
            amr: parse_list(&r.amr),
            acr: r.acr,
            expires_at: r.expires_at,
        }
    }
}

/// A live session (not ended, not expired at `$2`) matching `$1`.
macro_rules! select_live {
    ($by:literal) => {
        concat!(
            "SELECT id, user_id, auth_time, amr, acr, expires_at FROM sessions WHERE ",
            $by,
            " AND ended_at IS NULL AND expires_at > $2"
        )
    };
}

impl Store {
    pub async fn insert_session(&self, s: &Session, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(token_hash)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(json_list(&s.amr))
        .bind(&s.acr)
        .bind(now)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a fresh authentication in an existing session (`prompt=login`, `max_age`).
    pub async fn reauthenticate_session(&self, s: &Session) -> Result<()> {
        sqlx::query("UPDATE sessions SET auth_time = $1, amr = $2, acr = $3, expires_at = $4 WHERE id = $5")
            .bind(s.auth_time)
            .bind(json_list(&s.amr))
            .bind(&s.acr)
            .bind(s.expires_at)
            .bind(&s.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The live session the cookie token names, if any.
    pub async fn session_by_token(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        let row: Option<Row> = sqlx::query_as(select_live!("token_hash = $1"))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Session::from))
    }

    /// Ends a session and revokes the grants that live only as long as it (not `offline_access`
    /// ones), so every client's tokens from this browser session stop at once.
    pub async fn end_session(&self, session_id: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE session_id = $2 AND offline = 0 AND revoked_at IS NULL")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live session by its public id.
    pub async fn session(&self, id: &str, now: i64) -> Result<Option<Session>> {
        let row: Option<Row> =
            sqlx::query_as(select_live!("id = $1")).bind(id).bind(now).fetch_optional(&self.pool).await?;
        Ok(row.map(Session::from))
    }
}

impl Store {
    /// Ends every session of the user but `keep`, and revokes every grant obtained in them
    /// (`offline_access` ones too): after a change to the user's sign-in methods, whoever
    /// signed in elsewhere is out, while the browser that made the change stays.
    pub async fn end_other_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        end_others(&mut tx, user_id, keep, now).await?;
        tx.commit().await
    }
}

pub(super) async fn end_others(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<()> {
    // No session has the empty id, so `None` keeps none.
    let keep = keep.unwrap_or("");
    sqlx::query(
        "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL
         AND session_id IS NOT NULL AND session_id <> $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(keep)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND id <> $3 AND ended_at IS NULL")
        .bind(now)
        .bind(user_id)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
