//! Grants and their refresh tokens. A refresh token is stored under a hash
//! (`crypto::refresh_token_key`) and rotated on every use;
//! a rotated token presented again means it was stolen, so the whole grant (family) is revoked.

use super::direct::{self, joined_row};
use super::pg_direct::pooled;
use super::users::{Row as UserRow, USER_BY_ID, user_columns};
use super::{Result, Store, json_list, parse_list};
use crate::domain::{Grant, User, join_scope, parse_scope};

const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ($1, $2, $3)";
const MARK_USED: &str = "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL";
/// Whether a refresh token of the grant `$1` other than `$2`, issued at or after `$3`, was used.
const SUCCESSOR_USED: &str = "SELECT CAST(1 AS BIGINT) FROM refresh_tokens
     WHERE grant_id = $1 AND token_hash <> $2 AND created_at >= $3 AND used_at IS NOT NULL LIMIT 1";

pub struct NewGrant<'a> {
    pub grant: &'a Grant,
    /// Hash of the first refresh token, when one is issued.
    pub refresh_hash: Option<&'a str>,
}

/// A refresh token as stored: its grant, when it was used (rotated), whether the grant's user
/// may still use the grant's client, and that user.
#[derive(Debug)]
pub struct RefreshToken {
    pub grant: Grant,
    pub used_at: Option<i64>,
    pub may_use_client: bool,
    pub user: User,
}

#[derive(Debug)]
pub enum RotateOutcome {
    /// Rotated.
    Rotated,
    /// The token was already rotated: the family is now revoked.
    Reused,
    /// Unknown, expired, revoked or not this client's.
    Invalid,
}

super::direct::sqlite_row! {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        client_id: String,
        user_id: String,
        session_id: Option<String>,
        scopes: String,
        claims: Option<String>,
        auth_time: i64,
        acr: String,
        amr: String,
        offline: i64,
        created_at: i64,
        expires_at: i64,
        revoked_at: Option<i64>,
        dpop_jkt: Option<String>,
        resource: Option<String>,
        cert_x5t: Option<String>,
    }
}

/// A grant with the last use of its live browser session (see [`Store::live_grant`]).
pub struct LiveGrant {
    pub grant: Grant,
    pub session_seen: Option<i64>,
}

/// The columns of [`Row`], in its order, of the grant `g`.
macro_rules! grant_columns {
    () => {
        "g.id, g.client_id, g.user_id, g.session_id, g.scopes, g.claims, g.auth_time, g.acr, g.amr, g.offline,
         g.created_at, g.expires_at, g.revoked_at, g.dpop_jkt, g.resource, g.cert_x5t"
    };
}

/// The last use of the browser session the grant `g` lives with, at `$2`, if it does. (A
/// subquery rather than a join: Postgres looks the session up by its key then, where it
/// scanned a small sessions table for the join.)
macro_rules! session_seen {
    () => {
        "(SELECT s.last_seen_at FROM sessions s
          WHERE g.offline = 0 AND s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $2) AS session_seen"
    };
}

/// A refresh token `$1` with its grant, the required-group rule and its user: the columns of
/// [`TokenRow`], then `$extra`.
macro_rules! refresh_token_read {
    ($extra:literal) => {
        concat!(
            "SELECT ",
            grant_columns!(),
            ", r.used_at, ",
            may_use_client!("g.client_id", "g.user_id"),
            " AS may_use, ",
            user_columns!("u."),
            $extra,
            " FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id
             WHERE r.token_hash = $1"
        )
    };
}

joined_row!(LiveRow { grant: Row, session_seen: Option<i64> });

joined_row!(
    /// A grant with the last use of its live session, and its user.
    LiveUserRow { grant: Row, session_seen: Option<i64>, user: UserRow }
);

joined_row!(
    /// A grant with one of its refresh tokens, the required-group rule, and its user.
    TokenRow { grant: Row, used_at: Option<i64>, may_use: i64, user: UserRow }
);

joined_row!(
    /// [`TokenRow`] and whether the statement that read it rotated the token (1) or not (0).
    RotatingRow { token: TokenRow, rotated: i64 }
);

/// The conditions on which a refresh token's read may rotate it at once: those a refresh
/// checks before rotating (RFC 6749 §6, RFC 8707 §2.2, RFC 9449 §5, RFC 8705 §4), for a
/// request that asks for no narrower scope.
pub struct Rotation<'a> {
    /// The hash of the token that replaces it.
    pub new: &'a str,
    pub client_id: &'a str,
    /// The key of the request's DPoP proof, and the thumbprint of its client certificate.
    pub dpop_jkt: Option<&'a str>,
    pub x5t: Option<&'a str>,
    /// The request's `resource`, which must be the grant's.
    pub resource: Option<&'a str>,
    pub now: i64,
}

impl From<Row> for Grant {
    fn from(r: Row) -> Self {
        Grant {
            id: r.id,
            client_id: r.client_id,
            user_id: r.user_id,
            session_id: r.session_id,
            scopes: parse_scope(&r.scopes),
            claims: r.claims,
            auth_time: r.auth_time,
            acr: r.acr,
            amr: parse_list(&r.amr),
            offline: r.offline != 0,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            dpop_jkt: r.dpop_jkt,
            resource: r.resource,
            cert_x5t: r.cert_x5t,
        }
    }
}

/// What [`Store::insert_grant`] did.
pub enum GrantWrite {
    /// Written, with the grant's user as read in the same transaction.
    Written(User),
    /// Not written: the user is gone or disabled.
    UserInactive,
    /// Not written: the browser session the grant would live with has ended.
    SessionEnded,
}

/// [`GrantWrite`] before the user's row is opened.
enum Written {
    Yes(UserRow),
    UserInactive,
    SessionEnded,
}

joined_row!(
    /// The user of a grant written on Postgres, and whether it was (1) or not (0).
    WrittenRow { user: UserRow, written: i64 }
);

impl Store {
    /// Writes a grant and its first refresh token in one transaction, the one durable write of
    /// a code exchange, and reads the grant's user in it: only for a user who exists and is
    /// enabled, and for a grant of a browser session only while that session is live at `now`
    /// (both checked in the same statement on Postgres).
    pub async fn insert_grant(&self, new: NewGrant<'_>, now: i64) -> Result<GrantWrite> {
        macro_rules! insert_grant {
            ($from:literal, $live:literal) => {
                concat!(
                    "INSERT INTO grants (id, client_id, user_id, session_id, scopes, claims, auth_time, acr, amr, offline, created_at, expires_at, dpop_jkt, resource, cert_x5t)
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16 ",
                    $from,
                    " WHERE ",
                    $live,
                    "($4 IS NULL OR EXISTS (SELECT 1 FROM sessions WHERE id = $4 AND ended_at IS NULL AND expires_at > $15))"
                )
            };
        }
        const INSERT_GRANT: &str = insert_grant!("", "");
        // Postgres reads the user and writes both rows in one statement: one round trip
        // instead of five (begin, a read, two inserts, commit).
        macro_rules! pg_insert {
            ($refresh:literal) => {
                concat!(
                    "WITH u AS (SELECT ",
                    user_columns!(""),
                    " FROM users WHERE id = $3), g AS (",
                    insert_grant!("FROM u", "u.disabled = 0 AND "),
                    " RETURNING id)",
                    $refresh,
                    " SELECT ",
                    user_columns!("u."),
                    ", (SELECT count(*) FROM g) AS written FROM u"
                )
            };
        }
        const PG_INSERT_GRANT: &str = pg_insert!("");
        const PG_INSERT_GRANT_AND_TOKEN: &str = pg_insert!(
            ", r AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at) SELECT $17, id, $11 FROM g)"
        );
        let g = new.grant;
        let (scopes, amr, offline) = (join_scope(&g.scopes), json_list(&g.amr), g.offline as i64);
        let written = if let Some(d) = &self.direct {
            let params: [direct::Param<'_>; 16] = [
                &g.id,
                &g.client_id,
                &g.user_id,
                &g.session_id,
                &scopes,
                &g.claims,
                &g.auth_time,
                &g.acr,
                &amr,
                &offline,
                &g.created_at,
                &g.expires_at,
                &g.dpop_jkt,
                &g.resource,
                &now,
                &g.cert_x5t,
            ];
            // The early answers have written nothing: their commit commits nothing.
            d.transaction(|tx| {
                let user: Option<UserRow> = direct::query_opt(tx, USER_BY_ID, &[&g.user_id])?;
                let Some(user) = user.filter(UserRow::enabled) else { return Ok(Written::UserInactive) };
                if direct::execute(tx, INSERT_GRANT, &params)? == 0 {
                    return Ok(Written::SessionEnded);
                }
                if let Some(hash) = new.refresh_hash {
                    direct::execute(tx, INSERT_REFRESH_TOKEN, &[&hash, &g.id, &g.created_at])?;
                }
                Ok(Written::Yes(user))
            })
            .await?
        } else {
            macro_rules! query {
                ($q:expr) => {
                    $q.bind(&g.id)
                        .bind(&g.client_id)
                        .bind(&g.user_id)
                        .bind(&g.session_id)
                        .bind(scopes.as_str())
                        .bind(&g.claims)
                        .bind(g.auth_time)
                        .bind(&g.acr)
                        .bind(amr.as_str())
                        .bind(offline)
                        .bind(g.created_at)
                        .bind(g.expires_at)
                        .bind(&g.dpop_jkt)
                        .bind(&g.resource)
                        .bind(now)
                        .bind(&g.cert_x5t)
                };
            }
            if self.backend == super::Backend::Postgres {
                let row: Option<WrittenRow> = match new.refresh_hash {
                    Some(hash) => pooled!(self, |e| query!(sqlx::query_as(PG_INSERT_GRANT_AND_TOKEN))
                        .bind(hash)
                        .fetch_optional(e))?,
                    None => pooled!(self, |e| query!(sqlx::query_as(PG_INSERT_GRANT)).fetch_optional(e))?,
                };
                match row {
                    Some(r) if r.written > 0 => Written::Yes(r.user),
                    Some(r) if r.user.enabled() => Written::SessionEnded,
                    _ => Written::UserInactive,
                }
            } else {
                let mut tx = self.begin().await?;
                let user: Option<UserRow> =
                    sqlx::query_as(USER_BY_ID).bind(&g.user_id).fetch_optional(&mut *tx).await?;
                match user.filter(UserRow::enabled) {
                    None => Written::UserInactive,
                    Some(user) => {
                        if query!(sqlx::query(INSERT_GRANT)).execute(&mut *tx).await?.rows_affected() == 0 {
                            tx.rollback().await?;
                            Written::SessionEnded
                        } else {
                            if let Some(hash) = new.refresh_hash {
                                sqlx::query(INSERT_REFRESH_TOKEN)
                                    .bind(hash)
                                    .bind(&g.id)
                                    .bind(g.created_at)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                            tx.commit().await?;
                            Written::Yes(user)
                        }
                    }
                }
            }
        };
        Ok(match written {
            Written::Yes(row) => GrantWrite::Written(self.user_from(row)?),
            Written::UserInactive => GrantWrite::UserInactive,
            Written::SessionEnded => GrantWrite::SessionEnded,
        })
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        const SQL: &str = "SELECT id, client_id, user_id, session_id, scopes, claims, auth_time, acr, amr, offline, created_at, expires_at, revoked_at, dpop_jkt, resource, cert_x5t
             FROM grants WHERE id = $1";
        let row: Option<Row> = match &self.direct {
            Some(d) => d.read(|c| direct::query_opt(c, SQL, &[&id]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(id).fetch_optional(e))?,
        };
        Ok(row.map(Grant::from))
    }

    /// A grant with the last use of the browser session it lives with, in one statement:
    /// `session_seen` is None when the grant has no session, is `offline_access` (it outlives
    /// its session) or its session has ended or expired at `now`.
    pub async fn live_grant(&self, id: &str, now: i64) -> Result<Option<LiveGrant>> {
        const SQL: &str = concat!("SELECT ", grant_columns!(), ", ", session_seen!(), " FROM grants g WHERE g.id = $1");
        let row: Option<LiveRow> = match &self.direct {
            Some(d) => d.read(|c| direct::query_opt(c, SQL, &[&id, &now]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(id).bind(now).fetch_optional(e))?,
        };
        Ok(row.map(|r| LiveGrant { grant: r.grant.into(), session_seen: r.session_seen }))
    }

    /// [`Store::live_grant`] with the grant's user, in the same statement; None as well when
    /// the user is gone.
    pub async fn live_grant_and_user(&self, id: &str, now: i64) -> Result<Option<(LiveGrant, User)>> {
        const SQL: &str = concat!(
            "SELECT ",
            grant_columns!(),
            ", ",
            session_seen!(),
            ", ",
            user_columns!("u."),
            " FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = $1"
        );
        let row: Option<LiveUserRow> = match &self.direct {
            Some(d) => d.read(|c| direct::query_opt(c, SQL, &[&id, &now]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(id).bind(now).fetch_optional(e))?,
        };
        let Some(r) = row else { return Ok(None) };
        let user = self.user_from(r.user)?;
        Ok(Some((LiveGrant { grant: r.grant.into(), session_seen: r.session_seen }, user)))
    }

    /// Revokes a grant; every token that points at it stops working.
    pub async fn revoke_grant(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The grant a refresh token belongs to, whether or not the token was already rotated.
    pub async fn grant_by_refresh_token(&self, hash: &str) -> Result<Option<(Grant, bool)>> {
        Ok(self.refresh_token(hash).await?.map(|t| (t.grant, t.used_at.is_some())))
    }

    /// A refresh token by its hash: its grant, when it was rotated (if it was), whether the
    /// grant's user may still use its client (the required-group rule), and that user, in one
    /// statement. None as well when the user is gone.
    pub async fn refresh_token(&self, hash: &str) -> Result<Option<RefreshToken>> {
        const SQL: &str = refresh_token_read!("");
        let row: Option<TokenRow> = match &self.direct {
            Some(d) => d.read(|c| direct::query_opt(c, SQL, &[&hash]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(hash).fetch_optional(e))?,
        };
        row.map(|r| self.refresh_token_from(r)).transpose()
    }

    fn refresh_token_from(&self, r: TokenRow) -> Result<RefreshToken> {
        Ok(RefreshToken {
            user: self.user_from(r.user)?,
            grant: r.grant.into(),
            used_at: r.used_at,
            may_use_client: r.may_use == 1,
        })
    }

    /// A refresh token by its hash, as [`Store::refresh_token`] reads it, rotated in the same
    /// statement on Postgres when `rotation`'s conditions hold (true then): one round trip
    /// instead of two for a refresh that will be granted. A token the statement did not rotate
    /// (used before, another client's, a binding or resource that does not match, an ended
    /// grant) is answered by the caller's checks and [`Store::rotate_refresh_token`], as on
    /// SQLite, where the read goes to a reader and costs no round trip.
    pub async fn refresh_token_rotating(
        &self,
        hash: &str,
        rotation: Option<Rotation<'_>>,
    ) -> Result<Option<(RefreshToken, bool)>> {
        let Some(r) = rotation.filter(|_| self.backend == super::Backend::Postgres) else {
            return Ok(self.refresh_token(hash).await?.map(|t| (t, false)));
        };
        // The update sees the token and its grant as the read does; the read below sees them
        // as they were before it (one snapshot), so `used_at` is the previous use.
        const SQL: &str = concat!(
            "WITH marked AS (
                 UPDATE refresh_tokens r SET used_at = $2 FROM grants g
                 WHERE r.token_hash = $1 AND r.used_at IS NULL AND g.id = r.grant_id AND g.client_id = $3
                   AND g.revoked_at IS NULL AND g.expires_at > $2
                   AND (g.dpop_jkt IS NULL OR g.dpop_jkt = $4) AND (g.cert_x5t IS NULL OR g.cert_x5t = $5)
                   AND ($6 IS NULL OR g.resource = $6)
                 RETURNING r.grant_id),
             fresh AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at) SELECT $7, grant_id, $2 FROM marked)
             ",
            refresh_token_read!(", (SELECT count(*) FROM marked) AS rotated")
        );
        let row: Option<RotatingRow> = pooled!(self, |e| sqlx::query_as(SQL)
            .bind(hash)
            .bind(r.now)
            .bind(r.client_id)
            .bind(r.dpop_jkt)
            .bind(r.x5t)
            .bind(r.resource)
            .bind(r.new)
            .fetch_optional(e))?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((self.refresh_token_from(row.token)?, row.rotated == 1)))
    }

    /// Rotates the refresh token `old`, as read by [`Store::refresh_token`] (RFC 9700
    /// §4.14.2): marks it used and stores `new`, atomically, so two concurrent uses cannot both
    /// succeed unnoticed. A token presented again less than `grace` seconds after its first use
    /// (a client retrying after a lost response, or two concurrent uses) gets `new` as well and
    /// the family lives; later reuse revokes the family.
    pub async fn rotate_refresh_token(
        &self,
        old: &str,
        token: &RefreshToken,
        new: &str,
        client_id: &str,
        now: i64,
        grace: i64,
    ) -> Result<RotateOutcome> {
        let RefreshToken { grant, used_at, .. } = token;
        if grant.client_id != client_id || !grant.is_active(now) {
            return Ok(RotateOutcome::Invalid);
        }
        // Not marked now: used before, or by a concurrent request an instant ago (used now).
        // Within the grace, and while no token issued since has been used (a client that used
        // its new token did receive it), the retry is forgiven.
        let at = used_at.unwrap_or(now);
        let in_grace = now - at < grace;
        if let Some(d) = &self.direct {
            // Refused, it has written nothing: its commit commits nothing.
            let rotated = d
                .transaction(|tx| {
                    if direct::execute(tx, MARK_USED, &[&now, &old])? == 0
                        && (!in_grace || direct::exists(tx, SUCCESSOR_USED, &[&grant.id, &old, &at])?)
                    {
                        return Ok(false);
                    }
                    direct::execute(tx, INSERT_REFRESH_TOKEN, &[&new, &grant.id, &now])?;
                    Ok(true)
                })
                .await?;
            return self.rotated(rotated, &grant.id, now).await;
        }
        if self.backend == super::Backend::Postgres {
            // One statement: the update and the insert that depends on it.
            const ROTATE: &str = "WITH marked AS (
                     UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL RETURNING 1)
                 INSERT INTO refresh_tokens (token_hash, grant_id, created_at)
                 SELECT $3, $4, $1
                 WHERE EXISTS (SELECT 1 FROM marked)
                    OR ($5 AND NOT EXISTS (SELECT 1 FROM refresh_tokens
                         WHERE grant_id = $4 AND token_hash <> $2 AND created_at >= $6 AND used_at IS NOT NULL))";
            let rotated = pooled!(changed self, |e| sqlx::query(ROTATE)
                .bind(now)
                .bind(old)
                .bind(new)
                .bind(&grant.id)
                .bind(in_grace)
                .bind(at)
                .execute(e))?;
            return self.rotated(rotated > 0, &grant.id, now).await;
        }
        let mut tx = self.begin().await?;
        let marked = sqlx::query(MARK_USED).bind(now).bind(old).execute(&mut *tx).await?;
        if marked.rows_affected() == 0 && (!in_grace || self.successor_used(&mut tx, &grant.id, old, at).await?) {
            tx.rollback().await?;
            return self.rotated(false, &grant.id, now).await;
        }
        sqlx::query(INSERT_REFRESH_TOKEN).bind(new).bind(&grant.id).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        self.rotated(true, &grant.id, now).await
    }

    /// The outcome of a rotation: a token used again, outside the grace, revokes its family.
    async fn rotated(&self, rotated: bool, grant_id: &str, now: i64) -> Result<RotateOutcome> {
        if !rotated {
            self.revoke_grant(grant_id, now).await?;
            return Ok(RotateOutcome::Reused);
        }
        Ok(RotateOutcome::Rotated)
    }

    /// Was a refresh token of the grant issued at or after `since` (other than `old`) used?
    async fn successor_used(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        grant_id: &str,
        old: &str,
        since: i64,
    ) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as(SUCCESSOR_USED).bind(grant_id).bind(old).bind(since).fetch_optional(&mut **tx).await?;
        Ok(row.is_some())
    }
}
