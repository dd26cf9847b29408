//! Local user accounts.

use super::{Result, Store};
use crate::domain::User;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    username: String,
    email: String,
    password_hash: Option<String>,
    claims: String,
    disabled: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<Row> for User {
    fn from(r: Row) -> Self {
        User {
            id: r.id,
            username: r.username,
            email: r.email,
            password_hash: r.password_hash,
            claims: serde_json::from_str(&r.claims).unwrap_or_default(),
            disabled: r.disabled != 0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, username, email, password_hash, claims, disabled, created_at, updated_at FROM users ",
            $tail
        )
    };
}

impl Store {
    /// Writes a new account; its password, if it has one, is the first entry of its history.
    pub async fn insert_user(&self, u: &User) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, claims, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(serde_json::Value::Object(u.claims.clone()).to_string())
        .bind(u.disabled as i64)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some(hash) = &u.password_hash {
            super::password_history::record(&mut tx, &u.id, hash, 1, u.created_at).await?;
        }
        tx.commit().await
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<Row> =
            sqlx::query_as(select_users!("WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(User::from))
    }

    /// Finds an account by username, or by email when the name has an `@`.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<User>> {
        let row: Option<Row> =
            sqlx::query_as(select_users!("WHERE username = $1")).bind(login).fetch_optional(&self.pool).await?;
        if row.is_some() || !login.contains('@') {
            return Ok(row.map(User::from));
        }
        let rows: Vec<Row> =
            sqlx::query_as(select_users!("WHERE email = $1 LIMIT 2")).bind(login).fetch_all(&self.pool).await?;
        // An email shared by two accounts identifies neither.
        Ok(if rows.len() == 1 { rows.into_iter().next().map(User::from) } else { None })
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<Row> =
            sqlx::query_as(select_users!("ORDER BY created_at, username")).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Disables an account, ends its sessions and revokes its grants, in one transaction.
    pub async fn disable_user(&self, user_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE users SET disabled = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sign_out_everywhere(&mut tx, user_id, now).await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Enables a disabled account. Its old sessions and grants stay ended: the user signs in anew.
    pub async fn enable_user(&self, user_id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET disabled = 0, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Removes an account and everything that is only its own (credentials, password history,
    /// sessions, grants and their refresh tokens, consents, linked upstream accounts), in one
    /// transaction. Audit events keep the id, the record of what happened, and lose the rest:
    /// the client address and the details (which may name an address or a device).
    pub async fn remove_user(&self, user_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE grant_id IN (SELECT id FROM grants WHERE user_id = $1)")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for statement in [
            "DELETE FROM grants WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM totp_credentials WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM passkeys WHERE user_id = $1",
            "DELETE FROM webauthn_users WHERE user_id = $1",
            "DELETE FROM upstream_identities WHERE user_id = $1",
            "DELETE FROM email_otp_enrolments WHERE user_id = $1",
            "DELETE FROM password_history WHERE user_id = $1",
            "UPDATE audit_events SET ip = NULL, detail = '{}' WHERE user_id = $1",
        ] {
            sqlx::query(statement).bind(user_id).execute(&mut *tx).await?;
        }
        let r = sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}

/// Ends every session of the user and revokes every grant, `offline_access` ones included: the
/// part of a disable or a reset that takes away what was obtained with the old credentials.
pub(super) async fn sign_out_everywhere(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
