//! Signing key records. The private part is stored only encrypted (see `keys::kek`).
//!
//! Every change of state goes through [`Store::change_signing_keys`]: one transaction whose
//! updates each name the state they expect to find, so that two nodes (or a node and the CLI)
//! acting on the same keys at once make one change, and the other learns it lost. The partial
//! unique indexes of migration 0002 (one `active` and one `next` key per algorithm) back this up.

use super::{Result, Store};

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    #[serde(skip)]
    pub public_jwk: String,
    #[serde(skip)]
    pub private_enc: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retires_at: Option<i64>,
}

/// One key moving from one state to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub kid: String,
    pub from: String,
    pub to: String,
    /// Set when the key becomes active.
    pub activated_at: Option<i64>,
    /// Set when the key is retired: the moment it leaves the JWKS.
    pub retires_at: Option<i64>,
}

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        sqlx::query_as(
            "SELECT kid, alg, state, public_jwk, private_enc, created_at, activated_at, retires_at
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Applies `changes` and inserts `new` in one transaction. Returns false, changing nothing,
    /// when a key was no longer in the state a change expected or a new key would make a second
    /// `active`/`next` key of its algorithm: someone else changed the keys first.
    pub async fn change_signing_keys(&self, changes: &[KeyChange], new: &[SigningKeyRow]) -> Result<bool> {
        let mut tx = self.begin().await?;
        // Retirements and revocations first, so the unique indexes never see two active keys.
        let mut ordered: Vec<&KeyChange> = changes.iter().collect();
        ordered.sort_by_key(|c| c.to == "active");
        for c in ordered {
            let done = sqlx::query(
                "UPDATE signing_keys SET state = $1, activated_at = COALESCE($2, activated_at), retires_at = $3
                 WHERE kid = $4 AND state = $5",
            )
            .bind(&c.to)
            .bind(c.activated_at)
            .bind(c.retires_at)
            .bind(&c.kid)
            .bind(&c.from)
            .execute(&mut *tx)
            .await;
            match done {
                Ok(r) if r.rows_affected() == 1 => {}
                Ok(_) => return Ok(false),
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        for k in new {
            match insert(&mut tx, k).await {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces sealed private parts in one transaction, each only if it still holds the value it
    /// was read with (`(kid, old, new)`). Returns how many were replaced.
    pub async fn reseal_signing_keys(&self, sealed: &[(String, String, String)]) -> Result<usize> {
        self.reseal("UPDATE signing_keys SET private_enc = $1 WHERE kid = $2 AND private_enc = $3", sealed).await
    }
}

async fn insert(tx: &mut sqlx::Transaction<'_, sqlx::Any>, k: &SigningKeyRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_enc, created_at, activated_at, retires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.state)
    .bind(&k.public_jwk)
    .bind(&k.private_enc)
    .bind(k.created_at)
    .bind(k.activated_at)
    .bind(k.retires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
