//! Password changes and the history they leave: the last `password.history` argon2 hashes of
//! each account, the current one included, so that a new password can be refused when it
//! repeats a recent one. A change writes the new hash, its history entry and the sign-outs it
//! implies in one transaction: whoever was to be signed out is out once it commits.

use super::users::sign_out_everywhere;
use super::{Result, Store};

/// Who stays signed in after a password change.
#[derive(Clone, Copy, Debug)]
pub enum SignOut<'a> {
    /// A reset (forgotten password, operator): every session ends, every grant is revoked.
    Everywhere,
    /// The user's own change: every session but this one ends (none kept when `None`).
    OthersThan(Option<&'a str>),
}

impl Store {
    /// The newest `n` password hashes of the account, newest first (the current one included).
    pub async fn password_history(&self, user_id: &str, n: usize) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY generation DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(n as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(h,)| h).collect())
    }

    /// Sets the password hash, records it in the history (keeping the newest `keep` entries)
    /// and signs out whom `sign_out` says, in one transaction. False when there is no such user.
    pub async fn set_password(
        &self,
        user_id: &str,
        hash: &str,
        keep: usize,
        sign_out: SignOut<'_>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        record(&mut tx, user_id, hash, keep, now).await?;
        match sign_out {
            SignOut::Everywhere => sign_out_everywhere(&mut tx, user_id, now).await?,
            SignOut::OthersThan(this) => super::sessions::end_others(&mut tx, user_id, this, now).await?,
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Adds `hash` as the account's newest history entry and forgets all but the newest `keep`
/// (at least the one just added).
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    hash: &str,
    keep: usize,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO password_history (user_id, generation, password_hash, created_at)
         SELECT $1, COALESCE(MAX(generation), 0) + 1, $2, $3 FROM password_history WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM password_history WHERE user_id = $1
         AND generation <= (SELECT MAX(generation) FROM password_history WHERE user_id = $1) - $2",
    )
    .bind(user_id)
    .bind(keep.max(1) as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
