//! Identities at upstream providers linked to local users: (provider, subject) → user. A link
//! is made with the account it belongs to (a new user and its link in one transaction) or to
//! an account the person has just proven.

use super::{Result, Store};
use crate::domain::User;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// The user linked to `subject` at `provider`, if any.
    pub async fn linked_user(&self, provider: &str, subject: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT user_id FROM upstream_identities WHERE provider = $1 AND subject = $2")
                .bind(provider)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(u,)| u))
    }

    pub async fn linked_identities(&self, user_id: &str) -> Result<Vec<LinkedIdentity>> {
        sqlx::query_as(
            "SELECT provider, subject, user_id, email, created_at FROM upstream_identities
             WHERE user_id = $1 ORDER BY created_at, provider",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Links an identity to an existing user. False when that identity is linked already
    /// (to anyone): a link is never moved.
    pub async fn link_identity(&self, link: &LinkedIdentity) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO upstream_identities (provider, subject, user_id, email, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, subject) DO NOTHING",
        )
        .bind(&link.provider)
        .bind(&link.subject)
        .bind(&link.user_id)
        .bind(&link.email)
        .bind(link.created_at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Creates `user` with `link` in one transaction, so neither exists without the other.
    /// False (and nothing written) when the identity was linked meanwhile.
    pub async fn insert_federated_user(&self, user: &User, link: &LinkedIdentity) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The user row first: the link refers to it.
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, claims, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(serde_json::Value::Object(user.claims.clone()).to_string())
        .bind(user.disabled as i64)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(
            "INSERT INTO upstream_identities (provider, subject, user_id, email, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, subject) DO NOTHING",
        )
        .bind(&link.provider)
        .bind(&link.subject)
        .bind(&user.id)
        .bind(&link.email)
        .bind(link.created_at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a link of `user_id`; false when there was none. Whether the account keeps a way
    /// in is the caller's question (`login::policy::ways_in`), asked before.
    pub async fn unlink_identity(&self, user_id: &str, provider: &str, subject: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM upstream_identities WHERE provider = $1 AND subject = $2 AND user_id = $3")
            .bind(provider)
            .bind(subject)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The account whose email is `email`, ignoring case (through its key).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<String>> {
        let Some(key) = crate::domain::user::login_key(email) else { return Ok(None) };
        sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1").bind(key).fetch_optional(&self.pool).await
    }

    /// Fills the named claims that are empty on the account from `claims`; true if any was.
    pub async fn fill_empty_claims(
        &self,
        user: &User,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<bool> {
        let mut merged = user.claims.clone();
        let mut changed = false;
        for (k, v) in claims {
            if !merged.contains_key(k) {
                merged.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET claims = $1, updated_at = $2 WHERE id = $3")
            .bind(serde_json::Value::Object(merged).to_string())
            .bind(now)
            .bind(&user.id)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }
}
