//! Verified phone numbers (one per user, E.164) and which channels' sign-in codes the user
//! turned on. The `phone_number` and `phone_number_verified` claims follow the verified number,
//! written in the same transaction.

use super::sealed::{Column, Lookup};
use super::{Result, Store};
use crate::phone::Channel;
use serde_json::Value;

/// A user's verified number and the code channels turned on for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    pub number: String,
    pub sms_codes: bool,
    pub whatsapp_codes: bool,
}

impl PhoneNumber {
    pub fn codes(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.sms_codes,
            Channel::Whatsapp => self.whatsapp_codes,
        }
    }
}

impl Store {
    pub async fn phone_number(&self, user_id: &str) -> Result<Option<PhoneNumber>> {
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT number, sms_codes, whatsapp_codes FROM phone_numbers WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(number, sms, whatsapp)| {
            Ok(PhoneNumber {
                number: self.pii.open(Column::PhoneNumber, user_id, number, 1)?,
                sms_codes: sms == 1,
                whatsapp_codes: whatsapp == 1,
            })
        })
        .transpose()
    }

    /// The accounts that verified `number` (E.164).
    pub async fn users_with_phone(&self, number: &str) -> Result<Vec<String>> {
        // By its keyed hash, under the current KEK or (mid-rewrap) the previous one.
        let Some(keys) = self.pii.hashes(Lookup::Phone(number)) else { return Ok(Vec::new()) };
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT user_id FROM phone_numbers WHERE number_key IN ($1, $2) LIMIT 2")
                .bind(keys.current)
                .bind(keys.previous)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// `number` is verified for the user (a code sent to it came back): it replaces any earlier
    /// one — a different one with every code channel off (they were confirmed for the old
    /// number) — and becomes
    /// the `phone_number` claim, `phone_number_verified` true.
    pub async fn set_phone_number(&self, user_id: &str, number: &str, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO phone_numbers (user_id, number, number_key, verified_at, sms_codes, whatsapp_codes)
             VALUES ($1, $2, $3, $4, 0, 0)
             ON CONFLICT (user_id) DO UPDATE SET number = excluded.number, number_key = excluded.number_key,
             verified_at = excluded.verified_at,
             sms_codes = CASE WHEN phone_numbers.number_key = excluded.number_key THEN phone_numbers.sms_codes ELSE 0 END,
             whatsapp_codes =
                 CASE WHEN phone_numbers.number_key = excluded.number_key THEN phone_numbers.whatsapp_codes ELSE 0 END",
        )
        .bind(user_id)
        .bind(self.pii.seal(Column::PhoneNumber, user_id, number))
        .bind(self.pii.hash(Lookup::Phone(number)))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.set_phone_claims(&mut tx, user_id, Some(number), now).await?;
        tx.commit().await
    }

    /// Turns one channel's codes on or off; false when there is no number (or nothing changed).
    pub async fn set_phone_codes(&self, user_id: &str, channel: Channel, on: bool) -> Result<bool> {
        let sql = match channel {
            Channel::Sms => "UPDATE phone_numbers SET sms_codes = $1 WHERE user_id = $2 AND sms_codes <> $1",
            Channel::Whatsapp => {
                "UPDATE phone_numbers SET whatsapp_codes = $1 WHERE user_id = $2 AND whatsapp_codes <> $1"
            }
        };
        let r = sqlx::query(sql).bind(i64::from(on)).bind(user_id).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Turns one channel's codes off like [`Store::remove_totp`]: the recovery codes go too when
    /// `drop_recovery_codes`.
    pub async fn disable_phone_codes(
        &self,
        user_id: &str,
        channel: Channel,
        drop_recovery_codes: bool,
    ) -> Result<bool> {
        let delete = match channel {
            Channel::Sms => "UPDATE phone_numbers SET sms_codes = 0 WHERE user_id = $1 AND sms_codes = 1",
            Channel::Whatsapp => {
                "UPDATE phone_numbers SET whatsapp_codes = 0 WHERE user_id = $1 AND whatsapp_codes = 1"
            }
        };
        self.remove_factor(delete, user_id, drop_recovery_codes).await
    }

    /// Forgets the number (and its code channels, and the recovery codes when
    /// `drop_recovery_codes`); the phone claims go with it.
    pub async fn remove_phone_number(&self, user_id: &str, drop_recovery_codes: bool, now: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("DELETE FROM phone_numbers WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        if drop_recovery_codes {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        }
        if r.rows_affected() > 0 {
            self.set_phone_claims(&mut tx, user_id, None, now).await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}

impl Store {
    /// `phone_number` and `phone_number_verified` (OIDC Core §5.1) as the verified number says,
    /// in the user's claims, sealed as the row is (see [`super::sealed`]).
    async fn set_phone_claims(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user_id: &str,
        number: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let Some((claims, sealed)): Option<(String, i64)> =
            sqlx::query_as("SELECT claims, sealed FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?
        else {
            return Ok(());
        };
        let claims = self.pii.open(Column::UserClaims, user_id, claims, sealed)?;
        let mut claims: serde_json::Map<String, Value> = serde_json::from_str(&claims).unwrap_or_default();
        match number {
            Some(n) => {
                claims.insert("phone_number".into(), Value::String(n.to_owned()));
                claims.insert("phone_number_verified".into(), Value::Bool(true));
            }
            None => {
                claims.remove("phone_number");
                claims.remove("phone_number_verified");
            }
        }
        // A row still in clear (before the migration sealed it) stays in clear, like its email.
        let claims = Value::Object(claims).to_string();
        let claims = if sealed == 1 { self.pii.seal(Column::UserClaims, user_id, &claims) } else { claims };
        sqlx::query("UPDATE users SET claims = $1, updated_at = $2 WHERE id = $3")
            .bind(claims)
            .bind(now)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
