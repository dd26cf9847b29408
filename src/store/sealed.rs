//! Personal data sealed at rest: the columns that name or locate a person (a user's email and
//! claims, an upstream identity's subject and email, the address emailed codes go to, a verified
//! phone number, the client address of a session or an audit event) are stored AES-256-GCM-sealed under the
//! key-encryption key that seals the signing keys (`keys::kek`), with the table, the column and
//! the row's id as associated data, so a sealed value opens only in the row it was written to.
//! The secret of a `client_secret_jwt` client is sealed the same way: it is the key of the MAC
//! its assertions carry, so a hash would not do (every other client secret is kept only as a
//! hash: a sealed copy opens for whoever holds the database and the KEK, a hash for nobody).
//!
//! Lookups that need equality (sign-in by username or email ignoring case, an upstream's
//! subject) compare keyed hashes instead: HMAC-SHA256 of the normalised value under a key
//! derived from the KEK. While a rewrap is under way a row may still carry the previous KEK's
//! hash, so lookups ask for both.
//!
//! Each table with sealed columns has a `sealed` flag (0: written in clear by an older version,
//! 1: sealed); [`Store::seal_plain_rows`](super::Store::seal_plain_rows) converts the rows
//! still in clear.

use super::{Result, Store};
use crate::keys::kek::Kek;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

/// A sealed column: its name is part of the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    UserEmail,
    UserClaims,
    UpstreamSubject,
    UpstreamEmail,
    EmailCodeAddress,
    SessionIp,
    AuditIp,
    PhoneNumber,
    ClientSecret,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Self::UserEmail => "users.email",
            Self::UserClaims => "users.claims",
            Self::UpstreamSubject => "upstream_identities.subject",
            Self::UpstreamEmail => "upstream_identities.email",
            Self::EmailCodeAddress => "email_otp_enrolments.email",
            Self::SessionIp => "sessions.ip",
            Self::AuditIp => "audit_events.ip",
            Self::PhoneNumber => "phone_numbers.number",
            Self::ClientSecret => "clients.secret",
        }
    }
}

/// What a lookup hash is of; each kind hashes under its own label, so equal text in two
/// columns gives unrelated hashes.
#[derive(Clone, Copy, Debug)]
pub enum Lookup<'a> {
    /// A username or an email ignoring case and surrounding space (`domain::user::login_key`).
    Username(&'a str),
    Email(&'a str),
    /// The same, spelt exactly: the key of an account whose case-insensitive key another
    /// account holds (see `Store::fill_login_keys`).
    ExactUsername(&'a str),
    ExactEmail(&'a str),
    /// An upstream provider's subject, exact (OIDC Core §2: `sub` is case-sensitive).
    Subject {
        provider: &'a str,
        subject: &'a str,
    },
    /// A verified phone number, E.164.
    Phone(&'a str),
}

impl Lookup<'_> {
    fn message(&self) -> Option<String> {
        let normal = |label: &str, v: &str| crate::domain::user::login_key(v).map(|k| format!("{label}\n{k}"));
        match *self {
            Self::Username(v) => normal("username", v),
            Self::Email(v) => normal("email", v),
            Self::ExactUsername(v) => (!v.trim().is_empty()).then(|| format!("username-exact\n{}", v.trim())),
            Self::ExactEmail(v) => (!v.trim().is_empty()).then(|| format!("email-exact\n{}", v.trim())),
            Self::Subject { provider, subject } => Some(format!("subject\n{provider}\n{subject}")),
            Self::Phone(v) => (!v.is_empty()).then(|| format!("phone\n{v}")),
        }
    }
}

/// The hashes a lookup compares with: the current KEK's, and the previous one's while a
/// rewrap is under way (else the current one again, so the statement stays the same).
#[derive(Clone, Debug)]
pub struct Hashes {
    pub current: String,
    pub previous: String,
}

/// Seals, opens and hashes personal data under the KEK. One per store; a node re-reads the KEK
/// file when `keys rewrap` replaced it.
pub struct Pii {
    kek: RwLock<Kek>,
    /// The KEK file's modification time when it was read (file mode).
    stamp: Mutex<Option<SystemTime>>,
    /// False for the target of a rewrap, which must not trade its KEK for the file's.
    reloads: bool,
}

impl std::fmt::Debug for Pii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pii(..)")
    }
}

impl Pii {
    pub fn new(kek: Kek) -> Self {
        let stamp = kek.file_stamp();
        Self { kek: RwLock::new(kek), stamp: Mutex::new(stamp), reloads: true }
    }

    /// Under exactly `kek`, never re-read: what `keys rewrap` seals with.
    fn fixed(kek: Kek) -> Self {
        Self { kek: RwLock::new(kek), stamp: Mutex::new(None), reloads: false }
    }

    fn kek(&self) -> Kek {
        self.kek.read().unwrap().clone()
    }

    pub fn seal(&self, column: Column, row: &str, plain: &str) -> String {
        self.kek.read().unwrap().seal(&aad(column, row), plain.as_bytes())
    }

    pub fn seal_opt(&self, column: Column, row: &str, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal(column, row, p))
    }

    /// Opens a value of `row`; `sealed` is the row's flag (0: still in clear, as written before
    /// sealing existed). A value that does not open is a store failure, never a wrong answer.
    pub fn open(&self, column: Column, row: &str, stored: String, sealed: i64) -> Result<String> {
        if sealed == 0 {
            return Ok(stored);
        }
        let aad = aad(column, row);
        let kek = self.kek();
        let plain = match kek.open(&aad, &stored) {
            Ok(p) => p,
            Err(e) if !self.reloads => return Err(decode(e)),
            // `keys rewrap` may have replaced the KEK file since this node read it.
            Err(e) => match kek.reload() {
                Some(Ok(newer)) => {
                    let p = newer.open(&aad, &stored).map_err(|_| decode(e))?;
                    self.replace(newer);
                    p
                }
                _ => return Err(decode(e)),
            },
        };
        String::from_utf8(plain).map_err(|e| decode(e.into()))
    }

    pub fn open_opt(&self, column: Column, row: &str, stored: Option<String>, sealed: i64) -> Result<Option<String>> {
        stored.map(|s| self.open(column, row, s, sealed)).transpose()
    }

    /// The hashes to look `value` up by; None when it cannot match anything (empty).
    pub fn hashes(&self, value: Lookup<'_>) -> Option<Hashes> {
        Some(self.keyed(&value.message()?))
    }

    /// The keyed hashes of `message` (labelled by what it is, as [`Lookup`] labels its kinds).
    fn keyed(&self, message: &str) -> Hashes {
        self.notice_rewrap();
        let (current, previous) = self.kek.read().unwrap().lookup_hashes(message.as_bytes());
        Hashes { previous: previous.unwrap_or_else(|| current.clone()), current }
    }

    /// The hash a row is written with (the current KEK's).
    pub fn hash(&self, value: Lookup<'_>) -> Option<String> {
        self.hashes(value).map(|h| h.current)
    }

    /// Whether `stored` (of `row`) is sealed under the current KEK, for `keys rewrap`.
    pub fn is_current(&self, column: Column, row: &str, stored: &str) -> bool {
        self.kek.read().unwrap().is_current(&aad(column, row), stored)
    }

    /// In file mode, re-reads the KEK when its file changed: a lookup hash under a KEK a rewrap
    /// replaced would miss silently, where an open fails loudly.
    fn notice_rewrap(&self) {
        if !self.reloads {
            return;
        }
        let kek = self.kek();
        let Some(now) = kek.file_stamp() else { return };
        if *self.stamp.lock().unwrap() == Some(now) {
            return;
        }
        match kek.reload() {
            Some(Ok(newer)) => self.replace(newer),
            Some(Err(e)) => tracing::warn!(error = %e, "could not re-read the key-encryption key"),
            None => {}
        }
    }

    fn replace(&self, newer: Kek) {
        *self.stamp.lock().unwrap() = newer.file_stamp();
        *self.kek.write().unwrap() = newer;
    }
}

/// Rows sealed per transaction when converting rows written in clear: small enough that no
/// transaction holds the write lock long, so a start on a large database keeps going.
pub const BATCH: u64 = 500;

/// What a run of [`Store::seal_plain_rows`] did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sealing {
    pub rows: u64,
    /// Whether rows in clear remain (the run stopped at its batch limit).
    pub more: bool,
}

/// How many times [`empty_the_log`] tries (20 ms apart: 10 s) while a running server is in the
/// log's way.
const EMPTY_LOG_TRIES: u32 = 500;

/// Copies the SQLite log into the database and truncates it (`wal_checkpoint(TRUNCATE)`). A
/// running server's checkpointer or readers can be in the way for a moment: the checkpoint then
/// answers busy at once, having emptied nothing, so it is tried again (20 ms apart, 10 s at most).
async fn empty_the_log(conn: &mut sqlx::AnyConnection) -> Result<()> {
    for _ in 0..EMPTY_LOG_TRIES {
        let (busy, _, _): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut *conn).await?;
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tracing::warn!("the SQLite log could not be emptied: it may hold rows as they were until the server restarts it");
    Ok(())
}

impl Store {
    /// Seals the rows still in clear (written before migration 0015, or by an older node), in
    /// batches of `batch` rows, each its own transaction, at most `batches` of them (all when
    /// None). A run that stops or is interrupted loses nothing: the next one continues with
    /// the rows still flagged in clear.
    pub async fn seal_plain_rows(&self, batch: u64, batches: Option<u64>) -> Result<Sealing> {
        let mut conn = self.pool.acquire().await?;
        let sqlite = self.backend == super::Backend::Sqlite;
        if sqlite {
            // The text a sealed value replaces is zeroed in the file, not left in a freed cell.
            sqlx::query("PRAGMA secure_delete = ON").execute(&mut *conn).await?;
        }
        let done = self.seal_tables(&mut conn, batch, batches).await;
        if sqlite {
            sqlx::query("PRAGMA secure_delete = OFF").execute(&mut *conn).await?;
            if let Ok(d) = &done
                && d.rows > 0
            {
                if !d.more {
                    // Pages freed before (the email index migration 0015 dropped) still hold
                    // text: the file is rewritten once, when the last plain row is sealed.
                    sqlx::query("VACUUM").execute(&mut *conn).await?;
                }
                // And the write-ahead log, which still holds the pages as they were, emptied.
                empty_the_log(&mut conn).await?;
            }
        }
        done
    }

    async fn seal_tables(&self, conn: &mut sqlx::AnyConnection, batch: u64, batches: Option<u64>) -> Result<Sealing> {
        let mut done = Sealing::default();
        let mut left = batches.unwrap_or(u64::MAX);
        for table in [Plain::Users, Plain::Upstream, Plain::EmailCodes, Plain::Sessions, Plain::Audit] {
            loop {
                if left == 0 {
                    done.more = any_plain(conn, table).await?;
                    return Ok(done);
                }
                let n = self.seal_batch(conn, table, batch.max(1)).await?;
                if n == 0 {
                    break;
                }
                done.rows += n;
                left -= 1;
            }
        }
        Ok(done)
    }

    /// Seals up to `batch` rows of `table` in one transaction; answers how many.
    async fn seal_batch(&self, conn: &mut sqlx::AnyConnection, table: Plain, batch: u64) -> Result<u64> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        let mut n = 0;
        match table {
            Plain::Users => {
                type Old = (String, String, String, String, Option<String>, Option<String>);
                let rows: Vec<Old> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, username, email, claims, username_key, email_key FROM users WHERE sealed = 0 ORDER BY id LIMIT {batch}"
                )))
                .fetch_all(&mut *tx)
                .await?;
                for (id, username, email, claims, username_key, email_key) in rows {
                    // A key in clear is the value's case-insensitive form; any other is a hash already.
                    let rekey = |key: Option<String>, value: &str, lookup: Lookup<'_>| match key {
                        Some(k) if crate::domain::user::login_key(value).as_deref() == Some(k.as_str()) => {
                            self.hash(lookup)
                        }
                        other => other,
                    };
                    let r = sqlx::query(
                        "UPDATE users SET email = $1, claims = $2, username_key = $3, email_key = $4, sealed = 1
                         WHERE id = $5 AND sealed = 0",
                    )
                    .bind(self.pii.seal(Column::UserEmail, &id, &email))
                    .bind(self.pii.seal(Column::UserClaims, &id, &claims))
                    .bind(rekey(username_key, &username, Lookup::Username(&username)))
                    .bind(rekey(email_key, &email, Lookup::Email(&email)))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    n += r.rows_affected();
                }
            }
            Plain::Upstream => {
                let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT provider, subject, email FROM upstream_identities WHERE sealed = 0 ORDER BY provider, subject LIMIT {batch}"
                )))
                .fetch_all(&mut *tx)
                .await?;
                for (provider, subject, email) in rows {
                    let key = self.hash(Lookup::Subject { provider: &provider, subject: &subject });
                    let row = super::upstream_identities::link_row(&provider, key.as_deref().unwrap_or_default());
                    let r = sqlx::query(
                        "UPDATE upstream_identities SET subject = $1, email = $2, subject_key = $3, sealed = 1
                         WHERE provider = $4 AND subject = $5 AND sealed = 0",
                    )
                    .bind(self.pii.seal(Column::UpstreamSubject, &row, &subject))
                    .bind(self.pii.seal_opt(Column::UpstreamEmail, &row, email.as_deref()))
                    .bind(key)
                    .bind(&provider)
                    .bind(&subject)
                    .execute(&mut *tx)
                    .await?;
                    n += r.rows_affected();
                }
            }
            Plain::EmailCodes | Plain::Sessions | Plain::Audit => {
                let (id, column, sealed) = table.single();
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {id}, {column} FROM {t} WHERE sealed = 0 ORDER BY {id} LIMIT {batch}",
                    t = table.table()
                )))
                .fetch_all(&mut *tx)
                .await?;
                let update = format!(
                    "UPDATE {t} SET {column} = $1, sealed = 1 WHERE {id} = $2 AND sealed = 0",
                    t = table.table()
                );
                for (row, value) in rows {
                    let r = sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                        .bind(self.pii.seal_opt(sealed, &row, value.as_deref()))
                        .bind(&row)
                        .execute(&mut *tx)
                        .await?;
                    n += r.rows_affected();
                }
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    fn hash(&self, lookup: Lookup<'_>) -> Option<String> {
        self.pii.hash(lookup)
    }

    /// The keyed hashes of a device's traits (`gateway::device`), which the ephemeral store
    /// keeps instead of the traits themselves.
    /// The traits (browser family and platform, perhaps the network) are few enough to guess,
    /// so they are never kept unkeyed.
    pub fn device_hashes(&self, traits: &str) -> Hashes {
        self.pii.keyed(&format!("device\n{traits}"))
    }

    /// A `client_secret_jwt` client's secret sealed for its row (see the module's doc).
    pub fn seal_client_secret(&self, client_id: &str, secret: &str) -> String {
        self.pii.seal(Column::ClientSecret, client_id, secret)
    }

    /// The secret of a `client_secret_jwt` client, opened; none for a client without a sealed
    /// secret. A record from the client cache may predate a `keys rewrap` whose previous KEK is
    /// gone already: then the row is read again, and the cached record dropped.
    pub async fn client_secret(&self, client: &crate::domain::Client) -> Result<Option<String>> {
        match self.pii.open_opt(Column::ClientSecret, &client.id, client.secret_sealed.clone(), 1) {
            Ok(secret) => Ok(secret),
            Err(e) => {
                self.clients.entries.lock().unwrap().remove(&client.id);
                let row: Option<(Option<String>,)> = sqlx::query_as("SELECT secret_sealed FROM clients WHERE id = $1")
                    .bind(&client.id)
                    .fetch_optional(&self.pool)
                    .await?;
                match row.and_then(|(s,)| s) {
                    Some(fresh) if Some(&fresh) != client.secret_sealed.as_ref() => {
                        self.pii.open(Column::ClientSecret, &client.id, fresh, 1).map(Some)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// `keys rewrap`: every sealed value not yet under `target`'s current KEK is opened (with
    /// its previous one) and sealed again, and every lookup hash recomputed, in one transaction
    /// (so a failed rewrap leaves every row as it was). Answers how many rows changed.
    pub async fn reseal_personal_data(&self, target: &Kek) -> Result<u64> {
        let t = Pii::fixed(target.clone());
        let mut tx = self.begin().await?;
        let mut n = 0;

        type UserRow = (String, String, String, String, Option<String>, Option<String>);
        let users: Vec<UserRow> = sqlx::query_as(
            "SELECT id, username, email, claims, username_key, email_key FROM users WHERE sealed = 1 ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (id, username, email, claims, username_key, email_key) in users {
            if t.is_current(Column::UserEmail, &id, &email) {
                continue;
            }
            let email = t.open(Column::UserEmail, &id, email, 1)?;
            let claims = t.open(Column::UserClaims, &id, claims, 1)?;
            // The same kind of key again: case-insensitive, exact spelling (`=`), or none.
            let rekey = |key: Option<String>, normal: Lookup<'_>, exact: Lookup<'_>| match key {
                Some(k) if k.starts_with('=') => t.hash(exact).map(|h| format!("={h}")),
                Some(_) => t.hash(normal),
                None => None,
            };
            let r = sqlx::query(
                "UPDATE users SET email = $1, claims = $2, username_key = $3, email_key = $4 WHERE id = $5",
            )
            .bind(t.seal(Column::UserEmail, &id, &email))
            .bind(t.seal(Column::UserClaims, &id, &claims))
            .bind(rekey(username_key, Lookup::Username(&username), Lookup::ExactUsername(&username)))
            .bind(rekey(email_key, Lookup::Email(&email), Lookup::ExactEmail(&email)))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            n += r.rows_affected();
        }

        type LinkRow = (String, String, Option<String>, Option<String>);
        let links: Vec<LinkRow> = sqlx::query_as(
            "SELECT provider, subject, email, subject_key FROM upstream_identities WHERE sealed = 1 ORDER BY provider",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (provider, old_subject, email, key) in links {
            let row = super::upstream_identities::link_row(&provider, key.as_deref().unwrap_or_default());
            if t.is_current(Column::UpstreamSubject, &row, &old_subject) {
                continue;
            }
            let subject = t.open(Column::UpstreamSubject, &row, old_subject.clone(), 1)?;
            let email = t.open_opt(Column::UpstreamEmail, &row, email, 1)?;
            let key = t.hash(Lookup::Subject { provider: &provider, subject: &subject });
            let row = super::upstream_identities::link_row(&provider, key.as_deref().unwrap_or_default());
            let r = sqlx::query(
                "UPDATE upstream_identities SET subject = $1, email = $2, subject_key = $3
                 WHERE provider = $4 AND subject = $5",
            )
            .bind(t.seal(Column::UpstreamSubject, &row, &subject))
            .bind(t.seal_opt(Column::UpstreamEmail, &row, email.as_deref()))
            .bind(key)
            .bind(&provider)
            .bind(&old_subject)
            .execute(&mut *tx)
            .await?;
            n += r.rows_affected();
        }

        // Phone numbers (always written sealed: the table is younger than sealing).
        let phones: Vec<(String, String)> =
            sqlx::query_as("SELECT user_id, number FROM phone_numbers ORDER BY user_id").fetch_all(&mut *tx).await?;
        for (user_id, stored) in phones {
            if t.is_current(Column::PhoneNumber, &user_id, &stored) {
                continue;
            }
            let number = t.open(Column::PhoneNumber, &user_id, stored, 1)?;
            let r = sqlx::query("UPDATE phone_numbers SET number = $1, number_key = $2 WHERE user_id = $3")
                .bind(t.seal(Column::PhoneNumber, &user_id, &number))
                .bind(t.hash(Lookup::Phone(&number)))
                .bind(&user_id)
                .execute(&mut *tx)
                .await?;
            n += r.rows_affected();
        }

        // client_secret_jwt secrets (always written sealed: the column is younger than sealing).
        let secrets: Vec<(String, String)> =
            sqlx::query_as("SELECT id, secret_sealed FROM clients WHERE secret_sealed IS NOT NULL ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        for (id, stored) in secrets {
            if t.is_current(Column::ClientSecret, &id, &stored) {
                continue;
            }
            let secret = t.open(Column::ClientSecret, &id, stored, 1)?;
            let r = sqlx::query("UPDATE clients SET secret_sealed = $1 WHERE id = $2")
                .bind(t.seal(Column::ClientSecret, &id, &secret))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            n += r.rows_affected();
        }

        for table in [Plain::EmailCodes, Plain::Sessions, Plain::Audit] {
            let (id, column, sealed) = table.single();
            let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {id}, {column} FROM {t} WHERE sealed = 1 AND {column} IS NOT NULL ORDER BY {id}",
                t = table.table()
            )))
            .fetch_all(&mut *tx)
            .await?;
            let update = format!("UPDATE {t} SET {column} = $1 WHERE {id} = $2", t = table.table());
            for (row, value) in rows {
                if t.is_current(sealed, &row, &value) {
                    continue;
                }
                let plain = t.open(sealed, &row, value, 1)?;
                let r = sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                    .bind(t.seal(sealed, &row, &plain))
                    .bind(&row)
                    .execute(&mut *tx)
                    .await?;
                n += r.rows_affected();
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// Whether `table` or a later one still has rows in clear. On the connection the sealing holds
/// (SQLite's pool has only that one).
async fn any_plain(conn: &mut sqlx::AnyConnection, table: Plain) -> Result<bool> {
    for t in [Plain::Users, Plain::Upstream, Plain::EmailCodes, Plain::Sessions, Plain::Audit] {
        if t as u8 >= table as u8 {
            let q = sqlx::AssertSqlSafe(format!("SELECT 1 FROM {} WHERE sealed = 0 LIMIT 1", t.table()));
            if sqlx::query(q).fetch_optional(&mut *conn).await?.is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The tables with sealed columns, in the order they are converted.
#[derive(Clone, Copy, Debug)]
enum Plain {
    Users,
    Upstream,
    EmailCodes,
    Sessions,
    Audit,
}

impl Plain {
    fn table(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Upstream => "upstream_identities",
            Self::EmailCodes => "email_otp_enrolments",
            Self::Sessions => "sessions",
            Self::Audit => "audit_events",
        }
    }

    /// For the tables with one sealed column: the row id, that column and its [`Column`].
    fn single(self) -> (&'static str, &'static str, Column) {
        match self {
            Self::EmailCodes => ("user_id", "email", Column::EmailCodeAddress),
            Self::Sessions => ("id", "ip", Column::SessionIp),
            _ => ("id", "ip", Column::AuditIp),
        }
    }
}

fn aad(column: Column, row: &str) -> String {
    format!("{}/{row}", column.name())
}

fn decode(e: anyhow::Error) -> sqlx::Error {
    sqlx::Error::Decode(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pii() -> Pii {
        let dir = std::env::temp_dir().join(format!("latchkey-pii-{}", crate::crypto::random_id()));
        let pii = Pii::new(Kek::load_or_create(&dir).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        pii
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_row_and_column() {
        let pii = pii();
        let sealed = pii.seal(Column::UserEmail, "u1", "alice@example.com");
        assert!(!sealed.contains("alice"));
        assert_eq!(pii.open(Column::UserEmail, "u1", sealed.clone(), 1).unwrap(), "alice@example.com");
        assert!(pii.open(Column::UserEmail, "u2", sealed.clone(), 1).is_err());
        assert!(pii.open(Column::UpstreamEmail, "u1", sealed, 1).is_err());
        assert_eq!(pii.open(Column::UserEmail, "u1", "plain".into(), 0).unwrap(), "plain");
    }

    #[test]
    fn lookups_ignore_case_where_asked_and_differ_by_kind() {
        let pii = pii();
        let h = |l| pii.hash(l).unwrap();
        assert_eq!(h(Lookup::Email(" Alice@Example.com ")), h(Lookup::Email("alice@example.com")));
        assert_ne!(h(Lookup::Email("alice@example.com")), h(Lookup::Username("alice@example.com")));
        assert_ne!(h(Lookup::ExactEmail("Alice@example.com")), h(Lookup::ExactEmail("alice@example.com")));
        let sub = |s| h(Lookup::Subject { provider: "google", subject: s });
        assert_ne!(sub("Abc"), sub("abc"));
        assert!(pii.hash(Lookup::Email("  ")).is_none());
    }
}
