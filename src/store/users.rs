//! Local user accounts. The email and the claims are sealed (see [`super::sealed`]); the
//! username is not (a handle the person chose, sent as `preferred_username`); both are found
//! ignoring case through keyed hashes (`username_key`, `email_key`).

use super::sealed::{Column, Hashes, Lookup};
use super::{Result, Store};
use crate::domain::User;
use crate::domain::user::Status;

super::direct::sqlite_row! {
    #[derive(sqlx::FromRow)]
    pub(super) struct Row {
        id: String,
        username: String,
        email: String,
        password_hash: Option<String>,
        claims: String,
        disabled: i64,
        status: String,
        created_at: i64,
        updated_at: i64,
        sealed: i64,
    }
}

impl Row {
    pub(super) fn enabled(&self) -> bool {
        self.disabled == 0
    }
}

/// The columns of [`Row`], in its order, each after `$p` (a table's alias and a dot, or none).
macro_rules! user_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "username, ",
            $p,
            "email, ",
            $p,
            "password_hash, ",
            $p,
            "claims, ",
            $p,
            "disabled, ",
            $p,
            "status, ",
            $p,
            "created_at, ",
            $p,
            "updated_at, ",
            $p,
            "sealed"
        )
    };
}
pub(super) use user_columns;

macro_rules! select_users {
    ($tail:literal) => {
        concat!("SELECT ", user_columns!(""), " FROM users ", $tail)
    };
}

/// One user by id.
pub(super) const USER_BY_ID: &str = select_users!("WHERE id = $1");

impl Store {
    /// Opens a user row.
    pub(super) fn user_from(&self, r: Row) -> Result<User> {
        let email = self.pii.open(Column::UserEmail, &r.id, r.email, r.sealed)?;
        let claims = self.pii.open(Column::UserClaims, &r.id, r.claims, r.sealed)?;
        Ok(User {
            id: r.id,
            username: r.username,
            email,
            password_hash: r.password_hash,
            claims: serde_json::from_str(&claims).unwrap_or_default(),
            disabled: r.disabled != 0,
            status: Status::parse(&r.status),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }

    fn users_from(&self, rows: Vec<Row>) -> Result<Vec<User>> {
        rows.into_iter().map(|r| self.user_from(r)).collect()
    }

    /// The sealed email and claims of `u`, as written.
    pub(super) fn sealed_user(&self, u: &User) -> (String, String) {
        let claims = serde_json::Value::Object(u.claims.clone()).to_string();
        (self.pii.seal(Column::UserEmail, &u.id, &u.email), self.pii.seal(Column::UserClaims, &u.id, &claims))
    }
}

impl Store {
    /// Writes a new account; its password, if it has one, is the first entry of its history.
    pub async fn insert_user(&self, u: &User) -> Result<()> {
        let mut tx = self.begin().await?;
        let (email, claims) = self.sealed_user(u);
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, claims, disabled, status, created_at, updated_at,
                                username_key, email_key, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(email)
        .bind(&u.password_hash)
        .bind(claims)
        .bind(u.disabled as i64)
        .bind(u.status.as_str())
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(self.pii.hash(Lookup::Username(&u.username)))
        .bind(self.pii.hash(Lookup::Email(&u.email)))
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
        let username = match self.pii.hashes(Lookup::Username(username)) {
            Some(h) => self.holder("SELECT id FROM users WHERE username_key IN ($1, $2)", &h).await?,
            None => None,
        };
        let email = match self.pii.hashes(Lookup::Email(email)) {
            Some(h) => self.holder("SELECT id FROM users WHERE email_key IN ($1, $2)", &h).await?,
            None => None,
        };
        Ok((username.is_some(), email.is_some()))
    }

    /// The account `query` finds by a lookup hash (current or previous KEK's).
    pub(super) async fn holder(&self, query: &'static str, h: &Hashes) -> Result<Option<String>> {
        sqlx::query_scalar(query).bind(&h.current).bind(&h.previous).fetch_optional(&self.pool).await
    }

    /// A pending account has confirmed `email`: active, `email_verified` true. False when the
    /// account is gone or its address changed meanwhile.
    pub async fn confirm_email(&self, user_id: &str, email: &str, now: i64) -> Result<bool> {
        let Some(mut user) = self.user(user_id).await? else { return Ok(false) };
        if !user.email.eq_ignore_ascii_case(email) {
            return Ok(false);
        }
        user.claims.insert("email_verified".into(), serde_json::Value::Bool(true));
        let (_, claims) = self.sealed_user(&user);
        let r = sqlx::query(
            "UPDATE users SET status = 'active', claims = $1, updated_at = $2 WHERE id = $3 AND sealed = 1",
        )
        .bind(claims)
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
        let r = sqlx::query(
            "UPDATE users SET email = $1, email_key = $2, claims = $3, updated_at = $4 WHERE id = $5 AND sealed = 1",
        )
        .bind(self.pii.seal(Column::UserEmail, user_id, email))
        .bind(self.pii.hash(Lookup::Email(email)))
        .bind(self.pii.seal(Column::UserClaims, user_id, &serde_json::Value::Object(claims.clone()).to_string()))
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

    /// Fills the lookup keys of rows that have none (accounts from before migration 0009, or
    /// made by federation), in the order they were created: the first account with a key keeps
    /// it, a later one that differs from it only in case gets the key of its exact spelling
    /// (marked `=`). Answers every account keyed so, with the account holding the key, so that
    /// each start names the conflicts still there.
    pub async fn fill_login_keys(&self) -> Result<Vec<KeyConflict>> {
        let unkeyed: Vec<Row> =
            sqlx::query_as(select_users!("WHERE username_key IS NULL OR email_key IS NULL ORDER BY created_at, id"))
                .fetch_all(&self.pool)
                .await?;
        for user in self.users_from(unkeyed)? {
            self.key_user(&user).await?;
        }
        let exact: Vec<Row> = sqlx::query_as(select_users!(
            "WHERE substr(username_key, 1, 1) = '=' OR substr(email_key, 1, 1) = '=' ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut conflicts = Vec::new();
        for user in self.users_from(exact)? {
            for field in ["username", "email"] {
                let (lookup, holder) = match field {
                    "username" => {
                        (Lookup::Username(&user.username), "SELECT id FROM users WHERE username_key IN ($1, $2)")
                    }
                    _ => (Lookup::Email(&user.email), "SELECT id FROM users WHERE email_key IN ($1, $2)"),
                };
                let Some(h) = self.pii.hashes(lookup) else { continue };
                if let Some(holder) = self.holder(holder, &h).await?.filter(|h| *h != user.id) {
                    conflicts.push(KeyConflict { user_id: user.id.clone(), field, holder });
                }
            }
        }
        Ok(conflicts)
    }

    /// Gives `user` the lookup keys it lacks: the case-insensitive one when no other account
    /// holds it, else the key of its exact spelling, marked `=` (none when another account has
    /// that exact spelling too).
    pub(super) async fn key_user(&self, user: &User) -> Result<()> {
        for (set, normal, exact) in [
            (
                "UPDATE users SET username_key = $1 WHERE id = $2 AND username_key IS NULL
                 AND NOT EXISTS (SELECT 1 FROM users WHERE username_key = $1)",
                Lookup::Username(&user.username),
                Lookup::ExactUsername(&user.username),
            ),
            (
                "UPDATE users SET email_key = $1 WHERE id = $2 AND email_key IS NULL
                 AND NOT EXISTS (SELECT 1 FROM users WHERE email_key = $1)",
                Lookup::Email(&user.email),
                Lookup::ExactEmail(&user.email),
            ),
        ] {
            let keys = [self.pii.hash(normal), self.pii.hash(exact).map(|k| format!("={k}"))];
            for key in keys.into_iter().flatten() {
                let filled = match sqlx::query(set).bind(&key).bind(&user.id).execute(&self.pool).await {
                    Ok(r) => r.rows_affected() > 0,
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                    Err(e) => return Err(e),
                };
                if filled {
                    break;
                }
            }
        }
        Ok(())
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<Row> = match &self.direct {
            Some(d) => d.read(|c| super::direct::query_opt(c, USER_BY_ID, &[&id]))?,
            None => super::pg_direct::pooled!(self, |e| sqlx::query_as(USER_BY_ID).bind(id).fetch_optional(e))?,
        };
        row.map(|r| self.user_from(r)).transpose()
    }

    /// Finds an account by username, or by email when the name has an `@`, ignoring case
    /// (through the keys). An account left with the key of its exact spelling by a case
    /// conflict (see [`Store::fill_login_keys`]) is found by that spelling; an address that
    /// several accounts share exactly identifies none of them.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<User>> {
        let login = login.trim();
        let Some(h) = self.pii.hashes(Lookup::Username(login)) else { return Ok(None) };
        let exact = exact_keys(self.pii.hashes(Lookup::ExactUsername(login)), &h);
        let rows = self.users_keyed(select_users!("WHERE username_key IN ($1, $2, $3, $4)"), &h, &exact).await?;
        if let Some(user) = pick(self.users_from(rows)?, |u| u.username == login) {
            return Ok(Some(user));
        }
        if !login.contains('@') {
            return Ok(None);
        }
        let Some(h) = self.pii.hashes(Lookup::Email(login)) else { return Ok(None) };
        let exact = exact_keys(self.pii.hashes(Lookup::ExactEmail(login)), &h);
        let rows = self.users_keyed(select_users!("WHERE email_key IN ($1, $2, $3, $4) LIMIT 3"), &h, &exact).await?;
        Ok(pick(self.users_from(rows)?, |u| u.email == login))
    }

    /// The rows `sql` finds by the keys of a login (`$1`…`$4`: `h`'s, then those of its exact
    /// spelling, `x`'s): a sign-in's first read, on the hot paths' connections.
    async fn users_keyed(&self, sql: &'static str, h: &Hashes, x: &Hashes) -> Result<Vec<Row>> {
        match &self.direct {
            Some(d) => {
                d.read(|c| super::direct::query_all(c, sql, &[&h.current, &h.previous, &x.current, &x.previous]))
            }
            None => super::pg_direct::pooled!(self, |e| {
                sqlx::query_as(sql).bind(&h.current).bind(&h.previous).bind(&x.current).bind(&x.previous).fetch_all(e)
            }),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<Row> =
            sqlx::query_as(select_users!("ORDER BY created_at, username")).fetch_all(&self.pool).await?;
        self.users_from(rows)
    }

    /// Disables an account, ends its sessions and revokes its grants, in one transaction.
    pub async fn disable_user(&self, user_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
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
            "DELETE FROM phone_numbers WHERE user_id = $1",
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

/// The keys an exact spelling is stored under (marked `=`), or the case-insensitive ones again.
fn exact_keys(exact: Option<Hashes>, normal: &Hashes) -> Hashes {
    match exact {
        Some(e) => Hashes { current: format!("={}", e.current), previous: format!("={}", e.previous) },
        None => normal.clone(),
    }
}

/// Of the accounts a login matched: the one spelt exactly so, when there is one (none when
/// several are); else the one holding the key.
fn pick(rows: Vec<User>, exact: impl Fn(&User) -> bool) -> Option<User> {
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
/// only the key of its exact spelling for that field until the operator renames one of them.
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
