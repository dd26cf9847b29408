//! Identities at upstream providers linked to local users: (provider, subject) → user. A link
//! is made with the account it belongs to (a new user and its link in one transaction) or to
//! an account the person has just proven. The subject and the email are sealed, bound to the
//! row by the subject's keyed hash (`subject_key`), by which links are also found.

use super::sealed::{Column, Lookup};
use super::{Result, Store};
use crate::domain::User;

#[derive(Clone, Debug)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    provider: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    created_at: i64,
    subject_key: Option<String>,
    sealed: i64,
}

/// Adds a link (`$1`…`$7`: provider, sealed subject, user, sealed email, time, subject key)
/// unless that identity is linked already.
const INSERT_LINK: &str =
    "INSERT INTO upstream_identities (provider, subject, user_id, email, created_at, subject_key, sealed)
     VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (provider, subject_key) DO NOTHING";

/// What a link's sealed columns are bound to: its provider and subject key.
pub(super) fn link_row(provider: &str, subject_key: &str) -> String {
    format!("{provider}/{subject_key}")
}

impl Store {
    /// The user linked to `subject` at `provider`, if any.
    pub async fn linked_user(&self, provider: &str, subject: &str) -> Result<Option<String>> {
        let Some(h) = self.pii.hashes(Lookup::Subject { provider, subject }) else { return Ok(None) };
        sqlx::query_scalar("SELECT user_id FROM upstream_identities WHERE provider = $1 AND subject_key IN ($2, $3)")
            .bind(provider)
            .bind(&h.current)
            .bind(&h.previous)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn linked_identities(&self, user_id: &str) -> Result<Vec<LinkedIdentity>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT provider, subject, user_id, email, created_at, subject_key, sealed FROM upstream_identities
             WHERE user_id = $1 ORDER BY created_at, provider",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let row = link_row(&r.provider, r.subject_key.as_deref().unwrap_or_default());
                Ok(LinkedIdentity {
                    subject: self.pii.open(Column::UpstreamSubject, &row, r.subject, r.sealed)?,
                    email: self.pii.open_opt(Column::UpstreamEmail, &row, r.email, r.sealed)?,
                    provider: r.provider,
                    user_id: r.user_id,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    /// The columns a link is written with: sealed subject, sealed email, subject key.
    fn sealed_link(&self, link: &LinkedIdentity) -> (String, Option<String>, Option<String>) {
        let key = self.pii.hash(Lookup::Subject { provider: &link.provider, subject: &link.subject });
        let row = link_row(&link.provider, key.as_deref().unwrap_or_default());
        (
            self.pii.seal(Column::UpstreamSubject, &row, &link.subject),
            self.pii.seal_opt(Column::UpstreamEmail, &row, link.email.as_deref()),
            key,
        )
    }

    /// Links an identity to an existing user. False when that identity is linked already
    /// (to anyone): a link is never moved.
    pub async fn link_identity(&self, link: &LinkedIdentity) -> Result<bool> {
        let (subject, email, key) = self.sealed_link(link);
        let r = sqlx::query(INSERT_LINK)
            .bind(&link.provider)
            .bind(subject)
            .bind(&link.user_id)
            .bind(email)
            .bind(link.created_at)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Creates `user` with `link` in one transaction, so neither exists without the other.
    /// False (and nothing written) when the identity was linked meanwhile.
    pub async fn insert_federated_user(&self, user: &User, link: &LinkedIdentity) -> Result<bool> {
        let mut tx = self.begin().await?;
        // The user row first: the link refers to it.
        let (email, claims) = self.sealed_user(user);
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, claims, disabled, created_at, updated_at, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(email)
        .bind(&user.password_hash)
        .bind(claims)
        .bind(user.disabled as i64)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await?;
        let (subject, email, key) = self.sealed_link(link);
        let r = sqlx::query(INSERT_LINK)
            .bind(&link.provider)
            .bind(subject)
            .bind(&user.id)
            .bind(email)
            .bind(link.created_at)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        // Its lookup keys after the commit: its email may be another account's already.
        self.key_user(user).await?;
        Ok(true)
    }

    /// Removes a link of `user_id`; false when there was none. Whether the account keeps a way
    /// in is the caller's question (`login::policy::ways_in`), asked before.
    pub async fn unlink_identity(&self, user_id: &str, provider: &str, subject: &str) -> Result<bool> {
        let Some(h) = self.pii.hashes(Lookup::Subject { provider, subject }) else { return Ok(false) };
        let r = sqlx::query(
            "DELETE FROM upstream_identities WHERE provider = $1 AND subject_key IN ($2, $3) AND user_id = $4",
        )
        .bind(provider)
        .bind(&h.current)
        .bind(&h.previous)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The account whose email is `email`, ignoring case (through its key).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<String>> {
        let Some(h) = self.pii.hashes(Lookup::Email(email)) else { return Ok(None) };
        self.holder("SELECT id FROM users WHERE email_key IN ($1, $2)", &h).await
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
        let claims = serde_json::Value::Object(merged).to_string();
        sqlx::query("UPDATE users SET claims = $1, updated_at = $2 WHERE id = $3 AND sealed = 1")
            .bind(self.pii.seal(Column::UserClaims, &user.id, &claims))
            .bind(now)
            .bind(&user.id)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }
}
