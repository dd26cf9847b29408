//! Signing key records. The private part is stored only encrypted (see `keys::kek`).

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

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        sqlx::query_as(
            "SELECT kid, alg, state, public_jwk, private_enc, created_at, activated_at, retires_at
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<()> {
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
