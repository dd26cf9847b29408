//! Grants and their refresh tokens. A refresh token is stored as a hash and rotated on every use;
//! a rotated token presented again means it was stolen, so the whole grant (family) is revoked.

use super::{Result, Store, json_list, parse_list};
use crate::domain::{Grant, join_scope, parse_scope};

pub struct NewGrant<'a> {
    pub grant: &'a Grant,
    /// Hash of the first refresh token, when one is issued.
    pub refresh_hash: Option<&'a str>,
}

#[derive(Debug)]
pub enum RotateOutcome {
    /// Rotated; and whether the grant's user may still use the client (its required groups).
    Rotated { grant: Box<Grant>, may_use_client: bool },
    /// The token was already rotated: the family is now revoked.
    Reused,
    /// Unknown, expired, revoked or not this client's.
    Invalid,
}

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

/// A grant with one of its refresh tokens and the required-group rule.
struct TokenRow {
    grant: Row,
    used_at: Option<i64>,
    may_use: i64,
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for TokenRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> std::result::Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Self { grant: Row::from_row(row)?, used_at: row.try_get("used_at")?, may_use: row.try_get("may_use")? })
    }
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

impl Store {
    /// Writes a grant and its first refresh token in one transaction: the one durable write of
    /// a code exchange. A grant of a browser session is written only while that session is
    /// live at `now` (checked in the same statement); false when it has ended.
    pub async fn insert_grant(&self, new: NewGrant<'_>, now: i64) -> Result<bool> {
        let g = new.grant;
        let mut tx = self.pool.begin().await?;
        let written = sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, session_id, scopes, claims, auth_time, acr, amr, offline, created_at, expires_at, dpop_jkt, resource, cert_x5t)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16
             WHERE $4 IS NULL
                OR EXISTS (SELECT 1 FROM sessions WHERE id = $4 AND ended_at IS NULL AND expires_at > $15)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(&g.session_id)
        .bind(join_scope(&g.scopes))
        .bind(&g.claims)
        .bind(g.auth_time)
        .bind(&g.acr)
        .bind(json_list(&g.amr))
        .bind(g.offline as i64)
        .bind(g.created_at)
        .bind(g.expires_at)
        .bind(&g.dpop_jkt)
        .bind(&g.resource)
        .bind(now)
        .bind(&g.cert_x5t)
        .execute(&mut *tx)
        .await?;
        if written.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(hash) = new.refresh_hash {
            sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ($1, $2, $3)")
                .bind(hash)
                .bind(&g.id)
                .bind(g.created_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, client_id, user_id, session_id, scopes, claims, auth_time, acr, amr, offline, created_at, expires_at, revoked_at, dpop_jkt, resource, cert_x5t
             FROM grants WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Grant::from))
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
        Ok(self.refresh_token(hash).await?.map(|(g, used_at, _)| (g, used_at.is_some())))
    }

    /// The grant a refresh token belongs to, when the token was rotated (if it was), and whether
    /// the grant's user may still use its client (the required-group rule), in one statement.
    async fn refresh_token(&self, hash: &str) -> Result<Option<(Grant, Option<i64>, bool)>> {
        let row: Option<TokenRow> = sqlx::query_as(concat!(
            "SELECT g.id, g.client_id, g.user_id, g.session_id, g.scopes, g.claims, g.auth_time, g.acr, g.amr,
                    g.offline, g.created_at, g.expires_at, g.revoked_at, g.dpop_jkt, g.resource, g.cert_x5t, r.used_at, ",
            may_use_client!("g.client_id", "g.user_id"),
            " AS may_use FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.grant.into(), r.used_at, r.may_use == 1)))
    }

    /// Rotates a refresh token (RFC 9700 §4.14.2): marks `old` used and stores `new`, atomically,
    /// so two concurrent uses cannot both succeed unnoticed. A token presented again less than
    /// `grace` seconds after its first use (a client retrying after a lost response, or two
    /// concurrent uses) gets `new` as well and the family lives; later reuse revokes the family.
    pub async fn rotate_refresh_token(
        &self,
        old: &str,
        new: &str,
        client_id: &str,
        now: i64,
        grace: i64,
    ) -> Result<RotateOutcome> {
        let Some((grant, used_at, may_use_client)) = self.refresh_token(old).await? else {
            return Ok(RotateOutcome::Invalid);
        };
        if grant.client_id != client_id || !grant.is_active(now) {
            return Ok(RotateOutcome::Invalid);
        }
        let mut tx = self.pool.begin().await?;
        let marked = sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(now)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        // Not marked now: used before, or by a concurrent request an instant ago (used now).
        // Within the grace, and while no token issued since has been used (a client that used
        // its new token did receive it), the retry is forgiven.
        let earlier_use = (marked.rows_affected() == 0).then(|| used_at.unwrap_or(now));
        if let Some(at) = earlier_use
            && (now - at >= grace || self.successor_used(&mut tx, &grant.id, old, at).await?)
        {
            tx.rollback().await?;
            self.revoke_grant(&grant.id, now).await?;
            return Ok(RotateOutcome::Reused);
        }
        sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ($1, $2, $3)")
            .bind(new)
            .bind(&grant.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated { grant: Box::new(grant), may_use_client })
    }

    /// Was a refresh token of the grant issued at or after `since` (other than `old`) used?
    async fn successor_used(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        grant_id: &str,
        old: &str,
        since: i64,
    ) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT token_hash FROM refresh_tokens
             WHERE grant_id = $1 AND token_hash <> $2 AND created_at >= $3 AND used_at IS NOT NULL LIMIT 1",
        )
        .bind(grant_id)
        .bind(old)
        .bind(since)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.is_some())
    }
}
