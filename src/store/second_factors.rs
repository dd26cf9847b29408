//! Second factors at rest: one TOTP credential per user (its secret sealed by the caller) and
//! single-use recovery codes (SHA-256 hashes). Both are consumed by conditional UPDATEs, so two
//! racing submissions of one code cannot both pass, on any node.

use super::pg_direct::pooled;
use super::sealed::Column;
use super::{Result, Store};
use crate::domain::Credentials;

/// A user's authenticator app: the sealed secret and the last accepted time step.
#[derive(Clone, Debug)]
pub struct TotpCredential {
    pub secret_enc: String,
    pub last_step: i64,
}

impl Store {
    pub async fn totp_credential(&self, user_id: &str) -> Result<Option<TotpCredential>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT secret_enc, last_step FROM totp_credentials WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(secret_enc, last_step)| TotpCredential { secret_enc, last_step }))
    }

    /// Stores (or replaces) the user's TOTP secret. `last_step` is the step of the code that
    /// confirmed it, so that code cannot be used again to sign in.
    pub async fn set_totp_credential(&self, user_id: &str, secret_enc: &str, last_step: i64, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO totp_credentials (user_id, secret_enc, last_step, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, last_step = excluded.last_step,
             created_at = excluded.created_at",
        )
        .bind(user_id)
        .bind(secret_enc)
        .bind(last_step)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Compare-and-set of the replay guard (RFC 6238 §5.2: a code is accepted once): true only
    /// for the one caller that moves `last_step` forward to `step`.
    pub async fn advance_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE totp_credentials SET last_step = $1 WHERE user_id = $2 AND last_step < $1")
            .bind(step)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes the authenticator app, and the recovery codes with it when `drop_recovery_codes`
    /// (the policy's call: they stand in for second factors), in one transaction. Returns
    /// whether there was one.
    pub async fn remove_totp(&self, user_id: &str, drop_recovery_codes: bool) -> Result<bool> {
        self.remove_factor("DELETE FROM totp_credentials WHERE user_id = $1", user_id, drop_recovery_codes).await
    }

    /// What the user has to sign in with, in one round trip, as the login policy asks on every
    /// sign-in (and authorization on a step-up).
    pub async fn credentials(&self, user_id: &str) -> Result<Credentials> {
        let counts: Option<Counts> = match &self.direct {
            Some(d) => d.read(|c| super::direct::query_opt(c, CREDENTIAL_COUNTS, &[&user_id]))?,
            None => pooled!(self, |e| sqlx::query_as(CREDENTIAL_COUNTS).bind(user_id).fetch_optional(e))?,
        };
        Ok(credentials(counts.unwrap_or_default()))
    }

    /// The address emailed codes go to, when the user turned them on (sealed at rest).
    pub async fn email_otp_address(&self, user_id: &str) -> Result<Option<String>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT email, sealed FROM email_otp_enrolments WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(email, sealed)| self.pii.open(Column::EmailCodeAddress, user_id, email, sealed)).transpose()
    }

    /// Turns emailed codes on, to `email` (just confirmed by a code sent there).
    pub async fn enable_email_otp(&self, user_id: &str, email: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO email_otp_enrolments (user_id, email, created_at, sealed) VALUES ($1, $2, $3, 1)
             ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, created_at = excluded.created_at, sealed = 1",
        )
        .bind(user_id)
        .bind(self.pii.seal(Column::EmailCodeAddress, user_id, email))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Turns emailed codes off, like [`Store::remove_totp`].
    pub async fn disable_email_otp(&self, user_id: &str, drop_recovery_codes: bool) -> Result<bool> {
        self.remove_factor("DELETE FROM email_otp_enrolments WHERE user_id = $1", user_id, drop_recovery_codes).await
    }

    /// Runs `delete` (one factor of `user_id`) and, when asked, drops the recovery codes.
    pub(super) async fn remove_factor(
        &self,
        delete: &'static str,
        user_id: &str,
        drop_recovery_codes: bool,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(delete).bind(user_id).execute(&mut *tx).await?;
        if drop_recovery_codes {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// For an operator helping a locked-out user: every second factor and recovery code gone,
    /// every session ended and every grant revoked (refresh tokens too: a thief who passed the
    /// old factor must not keep a token), in one transaction. Returns how many factors there were.
    pub async fn reset_second_factors(&self, user_id: &str, now: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut removed = 0;
        for delete in [
            "DELETE FROM totp_credentials WHERE user_id = $1",
            "DELETE FROM email_otp_enrolments WHERE user_id = $1",
            "DELETE FROM passkeys WHERE user_id = $1",
            "UPDATE phone_numbers SET sms_codes = 0, whatsapp_codes = 0
             WHERE user_id = $1 AND (sms_codes = 1 OR whatsapp_codes = 1)",
        ] {
            removed += sqlx::query(delete).bind(user_id).execute(&mut *tx).await?.rows_affected();
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        super::users::sign_out_everywhere(&mut tx, user_id, now).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Replaces every recovery code of the user with the given hashes, in one transaction.
    pub async fn replace_recovery_codes(&self, user_id: &str, hashes: &[String], now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(crate::crypto::random_id())
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Consumes a recovery code: true only for the one caller whose UPDATE marks it used.
    pub async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Every sealed TOTP secret with its user, for `keys rewrap`.
    pub async fn totp_secrets(&self) -> Result<Vec<(String, String)>> {
        sqlx::query_as("SELECT user_id, secret_enc FROM totp_credentials ORDER BY user_id").fetch_all(&self.pool).await
    }

    /// Replaces sealed TOTP secrets `(user, old, new)` in one transaction, each only if it still
    /// holds `old`; returns how many changed.
    pub async fn reseal_totp_secrets(&self, sealed: &[(String, String, String)]) -> Result<usize> {
        self.reseal("UPDATE totp_credentials SET secret_enc = $1 WHERE user_id = $2 AND secret_enc = $3", sealed).await
    }
}

/// What the user `$1` has to sign in with, counted in one subquery per column of
/// [`Credentials`], in the order [`credentials`] reads them.
const CREDENTIAL_COUNTS: &str = "SELECT (SELECT COUNT(*) FROM users WHERE id = $1 AND password_hash IS NOT NULL),
     (SELECT COUNT(*) FROM totp_credentials WHERE user_id = $1),
     (SELECT COUNT(*) FROM email_otp_enrolments WHERE user_id = $1),
     (SELECT COUNT(*) FROM passkeys WHERE user_id = $1),
     (SELECT COUNT(*) FROM upstream_identities WHERE user_id = $1),
     (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL),
     (SELECT COUNT(*) FROM phone_numbers WHERE user_id = $1 AND sms_codes = 1),
     (SELECT COUNT(*) FROM phone_numbers WHERE user_id = $1 AND whatsapp_codes = 1),
     (SELECT COUNT(*) FROM phone_numbers WHERE user_id = $1)";

/// The columns of [`CREDENTIAL_COUNTS`].
type Counts = (i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// [`Credentials`] from the columns of [`CREDENTIAL_COUNTS`], in order.
fn credentials((password, totp, email, passkeys, upstream, codes, sms, whatsapp, phone): Counts) -> Credentials {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    Credentials {
        password: password > 0,
        totp: totp > 0,
        email_otp: email > 0,
        passkeys: count(passkeys),
        upstream: count(upstream),
        recovery_codes: count(codes),
        sms_codes: sms > 0,
        whatsapp_codes: whatsapp > 0,
        phone_number: phone > 0,
    }
}
