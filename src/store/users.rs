//! Local user accounts.

use super::{Result, Store};
use crate::domain::User;
use crate::domain::user::{Status, login_key};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    username: String,
    email: String,
    password_hash: Option<String>,
    claims: String,
    disabled: i64,
    status: String,
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
            status: Status::parse(&r.status),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, username, email, password_hash, claims, disabled, status, created_at, updated_at FROM users ",
            $tail
        )
    };
}

impl Store {
    /// Writes a new account; its password, if it has one, is the first entry of its history.
    pub async fn insert_user(&self, u: &User) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, claims, disabled, status, created_at, updated_at,
                                username_key, email_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(serde_json::Value::Object(u.claims.clone()).to_string())
        .bind(u.disabled as i64)
        .bind(u.status.as_str())
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(login_key(&u.username))
        .bind(login_key(&u.email))
        .execute(&mut *tx)
        .await?;
        if let Some(hash) = &u.password_hash {
            super::password_history::record(&mut tx, &u.id, hash, 1, u.created_at).await?;
        }
        tx.commit().await
    }

    /// Inserts a new account unless its username or email is another's, whatever the case:
    /// false then (the unique keys decide, so two racing sign-ups cannot both win).
    pub async fn create_user(&self, u: &User) -> Result<bool> {
        match self.insert_user(u).await {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Which of `username` and `email` another account holds already, ignoring case.
    pub async fn login_taken(&self, username: &str, email: &str) -> Result<(bool, bool)> {
        let username = match login_key(username) {
            Some(k) => {
                sqlx::query("SELECT id FROM users WHERE username_key = $1").bind(k).fetch_optional(&self.pool).await?
            }
            None => None,
        };
        let email = match login_key(email) {
            Some(k) => {
                sqlx::query("SELECT id FROM users WHERE email_key = $1").bind(k).fetch_optional(&self.pool).await?
            }
            None => None,
        };
        Ok((username.is_some(), email.is_some()))
    }

    /// A pending account has confirmed `email`: active, `email_verified` true. False when the
    /// account is gone or its address changed meanwhile.
    pub async fn confirm_email(&self, user_id: &str, email: &str, now: i64) -> Result<bool> {
        let Some(mut user) = self.user(user_id).await? else { return Ok(false) };
        if !user.email.eq_ignore_ascii_case(email) {
            return Ok(false);
        }
        user.claims.insert("email_verified".into(), serde_json::Value::Bool(true));
        let r = sqlx::query("UPDATE users SET status = 'active', claims = $1, updated_at = $2 WHERE id = $3")
            .bind(serde_json::Value::Object(user.claims).to_string())
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Replaces the account's email (confirmed: `email_verified` true) and its standard claims.
    /// False when another account holds the address, ignoring case.
    pub async fn update_profile(
        &self,
        user_id: &str,
        email: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET email = $1, email_key = $2, claims = $3, updated_at = $4 WHERE id = $5")
            .bind(email)
            .bind(login_key(email))
            .bind(serde_json::Value::Object(claims.clone()).to_string())
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await;
        match r {
            Ok(r) => Ok(r.rows_affected() > 0),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fills the lookup keys of rows that have none (accounts from before migration 0009), in
    /// the order they were created: the first account with a key keeps it, a later one that
    /// differs from it only in case keeps none and is reported. Runs after every migration, so
    /// each start names the conflicts still there.
    pub async fn fill_login_keys(&self) -> Result<Vec<KeyConflict>> {
        // id, username, email, username_key, email_key
        type Unkeyed = (String, String, String, Option<String>, Option<String>);
        let rows: Vec<Unkeyed> = sqlx::query_as(
            "SELECT id, username, email, username_key, email_key FROM users
             WHERE username_key IS NULL OR email_key IS NULL ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut conflicts = Vec::new();
        for (id, username, email, username_key, email_key) in rows {
            for (field, value, current) in [("username", &username, username_key), ("email", &email, email_key)] {
                let (None, Some(key)) = (current, login_key(value)) else { continue };
                let (set, holder) = match field {
                    "username" => (
                        "UPDATE users SET username_key = $1 WHERE id = $2
                         AND NOT EXISTS (SELECT 1 FROM users WHERE username_key = $1)",
                        "SELECT id FROM users WHERE username_key = $1",
                    ),
                    _ => (
                        "UPDATE users SET email_key = $1 WHERE id = $2
                         AND NOT EXISTS (SELECT 1 FROM users WHERE email_key = $1)",
                        "SELECT id FROM users WHERE email_key = $1",
                    ),
                };
                let filled = match sqlx::query(set).bind(&key).bind(&id).execute(&self.pool).await {
                    Ok(r) => r.rows_affected() > 0,
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                    Err(e) => return Err(e),
                };
                if !filled {
                    let holder: Option<String> =
                        sqlx::query_scalar(holder).bind(&key).fetch_optional(&self.pool).await?;
                    conflicts.push(KeyConflict { user_id: id.clone(), field, holder: holder.unwrap_or_default() });
                }
            }
        }
        Ok(conflicts)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<Row> =
            sqlx::query_as(select_users!("WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(User::from))
    }

    /// Finds an account by username, or by email when the name has an `@`, ignoring case
    /// (through the keys). An account left without a key by a case conflict (see
    /// [`Store::fill_login_keys`]) is still found by its exact spelling; an address that several
    /// accounts share exactly identifies none of them.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<User>> {
        let Some(key) = login_key(login) else { return Ok(None) };
        let login = login.trim();
        let rows: Vec<Row> =
            sqlx::query_as(select_users!("WHERE username_key = $1 OR (username_key IS NULL AND username = $2)"))
                .bind(&key)
                .bind(login)
                .fetch_all(&self.pool)
                .await?;
        if let Some(row) = pick(rows, |r| r.username == login) {
            return Ok(Some(row.into()));
        }
        if !login.contains('@') {
            return Ok(None);
        }
        let rows: Vec<Row> =
            sqlx::query_as(select_users!("WHERE email_key = $1 OR (email_key IS NULL AND email = $2) LIMIT 3"))
                .bind(&key)
                .bind(login)
                .fetch_all(&self.pool)
                .await?;
        Ok(pick(rows, |r| r.email == login).map(User::from))
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

/// Of the rows a login matched: the one spelt exactly so, when there is one (none when several
/// are); else the one holding the key.
fn pick(rows: Vec<Row>, exact: impl Fn(&Row) -> bool) -> Option<Row> {
    let exact_count = rows.iter().filter(|r| exact(r)).count();
    match exact_count {
        0 => rows.into_iter().next(),
        1 => rows.into_iter().find(|r| exact(r)),
        _ => None,
    }
}

/// Ends every session of the user and revokes every grant, `offline_access` ones included: the
/// part of a disable or a reset that takes away what was obtained with the old credentials.
pub(super) async fn sign_out_everywhere(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    now: i64,
) -> Result<()> {
    super::logouts::enqueue(tx, super::logouts::Ending::AllOf(user_id), now).await?;
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

/// An account whose username or email differs from an earlier account's only in case: it has
/// no lookup key for that field until the operator renames one of them.
#[derive(Clone, Debug)]
pub struct KeyConflict {
    pub user_id: String,
    /// `username` or `email`.
    pub field: &'static str,
    /// The account that holds the key.
    pub holder: String,
}

impl std::fmt::Display for KeyConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "user {} has the same {} as user {} except for case: it signs in only by its exact spelling until one of them is changed",
            self.user_id, self.field, self.holder
        )
    }
}
