//! Passkeys at rest: each user's WebAuthn user handle, and their registered credentials, the
//! webauthn-rs credential kept as JSON beside the columns that are looked up or shown. The
//! counter moves by compare-and-set, so two assertions racing on one credential cannot both
//! move it from the same value.

use super::{Result, Store};

/// A registered credential.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    /// base64url of the credential id.
    pub credential_id: String,
    /// The webauthn-rs `Passkey`, serialised.
    pub passkey: String,
    pub name: String,
    pub sign_count: i64,
    backup_eligible: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl PasskeyRow {
    /// Synced between devices (the BE flag at registration) rather than bound to one.
    pub fn backup_eligible(&self) -> bool {
        self.backup_eligible != 0
    }
}

/// What registering a credential stores.
pub struct NewPasskey<'a> {
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub passkey: &'a str,
    pub name: &'a str,
    pub sign_count: i64,
    pub backup_eligible: bool,
}

macro_rules! select_passkeys {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, credential_id, passkey, name, sign_count, backup_eligible, created_at, last_used_at ",
            "FROM passkeys ",
            $tail
        )
    };
}

impl Store {
    /// The user's WebAuthn user handle, made (random) on first use.
    pub async fn webauthn_handle(&self, user_id: &str, fresh: &str) -> Result<String> {
        sqlx::query("INSERT INTO webauthn_users (user_id, handle) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
            .bind(user_id)
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        let (handle,): (String,) = sqlx::query_as("SELECT handle FROM webauthn_users WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(handle)
    }

    /// The account whose user handle this is.
    pub async fn user_by_webauthn_handle(&self, handle: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT user_id FROM webauthn_users WHERE handle = $1")
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(u,)| u))
    }

    pub async fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRow>> {
        sqlx::query_as(select_passkeys!("WHERE user_id = $1 ORDER BY created_at, id"))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
    }

    pub async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyRow>> {
        sqlx::query_as(select_passkeys!("WHERE credential_id = $1"))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Stores a new credential; false when its credential id is registered already (to anyone).
    pub async fn insert_passkey(&self, p: &NewPasskey<'_>, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, name, sign_count, backup_eligible, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(crate::crypto::random_id())
        .bind(p.user_id)
        .bind(p.credential_id)
        .bind(p.passkey)
        .bind(p.name)
        .bind(p.sign_count)
        .bind(p.backup_eligible as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a use: the updated credential and counter, only if the counter is still `old`.
    pub async fn record_passkey_use(&self, id: &str, old: i64, new: i64, passkey: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE passkeys SET sign_count = $1, passkey = $2, last_used_at = $3 WHERE id = $4 AND sign_count = $5",
        )
        .bind(new)
        .bind(passkey)
        .bind(now)
        .bind(id)
        .bind(old)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Renames one of the user's passkeys; false when it is not theirs.
    pub async fn rename_passkey(&self, user_id: &str, id: &str, name: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
            .bind(name)
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes one of the user's passkeys; false when it is not theirs.
    pub async fn remove_passkey(&self, user_id: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
