//! Browser sessions. The cookie carries a random token; only its hash is stored. The client
//! address is sealed (see [`super::sealed`]).

use super::pg_direct::pooled;
use super::sealed::Column;
use super::{Result, Store, json_list, parse_list};
use crate::domain::{Session, parse_scope};

super::direct::sqlite_row! {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        user_id: String,
        auth_time: i64,
        amr: String,
        acr: String,
        expires_at: i64,
        created_at: i64,
        last_seen_at: i64,
        user_agent: Option<String>,
        ip: Option<String>,
        persistent: i64,
        sealed: i64,
    }
}

impl Store {
    /// Opens a session row: one AES-GCM open, of its address.
    fn session_from(&self, r: Row) -> Result<Session> {
        Ok(Session {
            ip: self.pii.open_opt(Column::SessionIp, &r.id, r.ip, r.sealed)?,
            id: r.id,
            user_id: r.user_id,
            auth_time: r.auth_time,
            amr: parse_list(&r.amr),
            acr: r.acr,
            expires_at: r.expires_at,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            user_agent: r.user_agent,
            persistent: r.persistent != 0,
        })
    }
}

/// A live session with what the authorization endpoint decides on: the client's required-group
/// rule and the user's consent to the client.
pub struct SessionAtClient {
    pub session: Session,
    pub may_use_client: bool,
    pub consented: Vec<String>,
}

struct AtClientRow {
    session: Row,
    may_use: i64,
    consented: Option<String>,
}

impl super::direct::FromSqlite for AtClientRow {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let n = |i: usize| row.get::<_, i64>(i);
        Ok(Self { session: Row::from_sqlite(row)?, may_use: n(12)?, consented: row.get(13)? })
    }
}

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for AtClientRow
where
    Row: sqlx::FromRow<'r, R>,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> std::result::Result<Self, sqlx::Error> {
        let n = |i: usize| row.try_get::<i64, _>(i);
        Ok(Self { session: Row::from_row(row)?, may_use: n(12)?, consented: row.try_get(13)? })
    }
}

/// A live session (not ended, not expired at `$2`) matching `$1`.
macro_rules! select_live {
    ($by:literal) => {
        concat!(
            "SELECT id, user_id, auth_time, amr, acr, expires_at, created_at, last_seen_at, user_agent, ip, persistent, sealed
             FROM sessions WHERE ",
            $by,
            " AND ended_at IS NULL AND expires_at > $2"
        )
    };
}

/// Revokes the grants made in the session `$2` (at `$1`). A session's grants are found by its
/// user and its id together, the index on grants (`grants_user_session`).
const REVOKE_SESSION_GRANTS: &str = "UPDATE grants SET revoked_at = $1
     WHERE user_id = (SELECT user_id FROM sessions WHERE id = $2) AND session_id = $2 AND revoked_at IS NULL";
/// [`REVOKE_SESSION_GRANTS`], but those of `offline_access` (refresh tokens) live on.
const REVOKE_SESSION_ONLINE_GRANTS: &str = "UPDATE grants SET revoked_at = $1
     WHERE user_id = (SELECT user_id FROM sessions WHERE id = $2) AND session_id = $2 AND offline = 0
       AND revoked_at IS NULL";

/// The clients holding grants made in the live sessions (at `$2`) of the user `$1`.
const SESSION_CLIENTS: &str = "SELECT DISTINCT g.session_id AS session_id, g.client_id AS client_id
     FROM sessions s JOIN grants g ON g.user_id = s.user_id AND g.session_id = s.id
     WHERE s.user_id = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND g.revoked_at IS NULL
     ORDER BY g.client_id";
/// Revokes (at `$1`) the grants made in the sessions of the user `$2` but the session `$3`.
const REVOKE_OTHER_SESSIONS_GRANTS: &str = "UPDATE grants SET revoked_at = $1
     WHERE user_id = $2 AND revoked_at IS NULL AND session_id IS NOT NULL AND session_id <> $3";

/// What the sessions page shows of the applications a session signed in to.
#[derive(sqlx::FromRow)]
pub struct SessionClient {
    pub session_id: String,
    pub client_id: String,
}

impl Store {
    /// Written by the hot writer (on SQLite, in the batch it is committing), as every sign-in
    /// writes one: see [`Store::touch_session`].
    pub async fn insert_session(&self, s: &Session, token_hash: &str) -> Result<()> {
        const SQL: &str = "INSERT INTO sessions (id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at,
                                   last_seen_at, user_agent, ip, persistent, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)";
        let (amr, ip) = (json_list(&s.amr), self.pii.seal_opt(Column::SessionIp, &s.id, s.ip.as_deref()));
        let persistent = s.persistent as i64;
        match &self.direct {
            Some(d) => {
                let params: [super::direct::Param<'_>; 12] = [
                    &s.id,
                    &token_hash,
                    &s.user_id,
                    &s.auth_time,
                    &amr,
                    &s.acr,
                    &s.created_at,
                    &s.expires_at,
                    &s.last_seen_at,
                    &s.user_agent,
                    &ip,
                    &persistent,
                ];
                d.transaction(|tx| super::direct::execute(tx, SQL, &params)).await.map(drop)
            }
            None => pooled!(changed self, |e| sqlx::query(SQL)
                .bind(&s.id)
                .bind(token_hash)
                .bind(&s.user_id)
                .bind(s.auth_time)
                .bind(&amr)
                .bind(&s.acr)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(s.last_seen_at)
                .bind(&s.user_agent)
                .bind(&ip)
                .bind(persistent)
                .execute(e))
            .map(drop),
        }
    }

    /// Records a fresh authentication in an existing session (`prompt=login`, `max_age`, a
    /// step-up) under a new cookie token: the old token stops working at once.
    pub async fn reauthenticate_session(&self, s: &Session, token_hash: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET token_hash = $1, auth_time = $2, amr = $3, acr = $4, expires_at = $5,
                                 last_seen_at = $6, user_agent = $7, ip = $8, persistent = $9, sealed = 1
             WHERE id = $10",
        )
        .bind(token_hash)
        .bind(s.auth_time)
        .bind(json_list(&s.amr))
        .bind(&s.acr)
        .bind(s.expires_at)
        .bind(s.last_seen_at)
        .bind(&s.user_agent)
        .bind(self.pii.seal_opt(Column::SessionIp, &s.id, s.ip.as_deref()))
        .bind(s.persistent as i64)
        .bind(&s.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Notes that the session was used at `now` (the caller writes at most once a minute).
    ///
    /// On SQLite by the hot writer, in the batch being committed: on sqlx's one connection the
    /// write waited for SQLite's lock behind the hot writer, which under load holds it nearly
    /// always, in SQLite's own busy handler (sleeps of 1, 2, 5, … 100 ms), and the touches of
    /// sessions that fell due together queued behind each other: sign-ins made together are
    /// due together, and their next `/authorize` took 100–250 ms.
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1";
        match &self.direct {
            Some(d) => d.transaction(|tx| super::direct::execute(tx, SQL, &[&now, &id])).await.map(drop),
            None => pooled!(changed self, |e| sqlx::query(SQL).bind(now).bind(id).execute(e)).map(drop),
        }
    }

    /// The live session the cookie token names, if any.
    pub async fn session_by_token(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        let row: Option<Row> = sqlx::query_as(select_live!("token_hash = $1"))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.session_from(r)).transpose()
    }

    /// The live session the cookie token names, with what the authorization endpoint asks of it
    /// for `client_id`, in one statement (one round trip instead of three). The user's
    /// credentials are not in it: they matter only to a step-up, and counting them took nine
    /// subqueries (on Postgres, twice the CPU of the rest of the statement).
    pub async fn session_at_client(
        &self,
        token_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<SessionAtClient>> {
        const SQL: &str = concat!(
            "SELECT s.id, s.user_id, s.auth_time, s.amr, s.acr, s.expires_at, s.created_at, s.last_seen_at,
                    s.user_agent, s.ip, s.persistent, s.sealed, ",
            may_use_client!("$3", "s.user_id"),
            " AS may_use, (SELECT c.scopes FROM consents c WHERE c.user_id = s.user_id AND c.client_id = $3) AS consented
             FROM sessions s WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2"
        );
        let row: Option<AtClientRow> = match &self.direct {
            Some(d) => d.read(|c| super::direct::query_opt(c, SQL, &[&token_hash, &now, &client_id]))?,
            None => {
                pooled!(self, |e| sqlx::query_as(SQL).bind(token_hash).bind(now).bind(client_id).fetch_optional(e))?
            }
        };
        row.map(|r| {
            Ok(SessionAtClient {
                may_use_client: r.may_use == 1,
                consented: r.consented.as_deref().map(parse_scope).unwrap_or_default(),
                session: self.session_from(r.session)?,
            })
        })
        .transpose()
    }

    /// Ends a session and revokes the grants that live only as long as it (not `offline_access`
    /// ones), so every client's tokens from this browser session stop at once.
    pub async fn end_session(&self, session_id: &str, now: i64) -> Result<()> {
        self.end_session_revoking(session_id, now, false).await
    }

    /// Ends a session from the account's sessions page: a device signed out by its owner keeps
    /// nothing, so its `offline_access` grants (refresh tokens) are revoked too.
    pub async fn end_device_session(&self, session_id: &str, now: i64) -> Result<()> {
        self.end_session_revoking(session_id, now, true).await
    }

    async fn end_session_revoking(&self, session_id: &str, now: i64, offline_too: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        super::logouts::enqueue(&mut tx, super::logouts::Ending::Session(session_id), now).await?;
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        let revoke = if offline_too { REVOKE_SESSION_GRANTS } else { REVOKE_SESSION_ONLINE_GRANTS };
        sqlx::query(revoke).bind(now).bind(session_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live session by its public id.
    pub async fn session(&self, id: &str, now: i64) -> Result<Option<Session>> {
        const SQL: &str = select_live!("id = $1");
        let row: Option<Row> = match &self.direct {
            Some(d) => d.read(|c| super::direct::query_opt(c, SQL, &[&id, &now]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(id).bind(now).fetch_optional(e))?,
        };
        row.map(|r| self.session_from(r)).transpose()
    }

    /// A user's live sessions, the most recently used first.
    pub async fn user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>> {
        let rows: Vec<Row> = sqlx::query_as(concat!(select_live!("user_id = $1"), " ORDER BY last_seen_at DESC"))
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|r| self.session_from(r)).collect()
    }

    /// The clients holding grants issued in a user's live sessions.
    pub async fn session_clients(&self, user_id: &str, now: i64) -> Result<Vec<SessionClient>> {
        sqlx::query_as(SESSION_CLIENTS).bind(user_id).bind(now).fetch_all(&self.pool).await
    }
}

impl Store {
    /// Ends every session of the user but `keep`, and revokes every grant obtained in them
    /// (`offline_access` ones too): after a change to the user's sign-in methods, whoever
    /// signed in elsewhere is out, while the browser that made the change stays.
    pub async fn end_other_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
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
    super::logouts::enqueue(tx, super::logouts::Ending::AllOfBut(user_id, keep), now).await?;
    sqlx::query(REVOKE_OTHER_SESSIONS_GRANTS).bind(now).bind(user_id).bind(keep).execute(&mut **tx).await?;
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND id <> $3 AND ended_at IS NULL")
        .bind(now)
        .bind(user_id)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A session's grants are found by its user and its id together, a user's by the user:
    /// through the one index on both (`grants_user_session`), never by reading every grant.
    #[tokio::test]
    async fn grants_are_found_by_session_and_by_user_through_an_index() {
        let statements = [
            super::REVOKE_SESSION_GRANTS,
            super::REVOKE_SESSION_ONLINE_GRANTS,
            super::SESSION_CLIENTS,
            super::REVOKE_OTHER_SESSIONS_GRANTS,
        ];
        super::super::plans::assert_every_statement_searches_an_index(&statements).await;
    }

    /// On SQLite a session's touch is written by the hot writer: it does not wait for sqlx's
    /// one connection, held here throughout (a touch that needed it would fail once the
    /// pool's acquire timeout of a second had passed).
    #[tokio::test]
    async fn a_touch_is_written_without_the_pool() {
        let dir = std::env::temp_dir().join(format!("latchkey-touch-{}", crate::crypto::random_id()));
        let settings = crate::config::Settings {
            data_dir: dir.join("data"),
            keys_dir: dir.join("keys"),
            database: crate::config::Database { acquire_timeout: 1, ..Default::default() },
            ..Default::default()
        };
        let store = super::Store::connect(&settings, crate::clock::Clock::system()).await.unwrap();
        store.migrate().await.unwrap();
        let mut held = store.pool.acquire().await.unwrap();
        for sql in [
            "INSERT INTO users (id, username, email, claims, disabled, created_at, updated_at)
             VALUES ('u', 'u', 'u@example.com', '{}', 0, 1, 1)",
            "INSERT INTO sessions (id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at, last_seen_at,
                                   persistent)
             VALUES ('s', 'h', 'u', 1, '[]', '1', 1, 9999999999, 1, 0)",
        ] {
            sqlx::query(sql).execute(&mut *held).await.unwrap();
        }
        store.touch_session("s", 100).await.unwrap();
        store.touch_session("s", 50).await.unwrap();
        let seen: i64 =
            sqlx::query_scalar("SELECT last_seen_at FROM sessions WHERE id = 's'").fetch_one(&mut *held).await.unwrap();
        assert_eq!(seen, 100, "touched at 100, and not set back by a touch of an earlier time");
        drop(held);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
