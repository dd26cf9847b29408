//! Dynamic client registration's own records (RFC 7591, RFC 7592): registration access tokens,
//! initial access tokens, the full replacement of a registered client, and the salts of pairwise
//! subject identifiers. Tokens are kept only as hashes (`crypto::hash_secret`).

use super::{Result, Store, json_list};
use crate::domain::Client;
use crate::domain::client::{AuthAlg, ObjectAlg};

impl Store {
    /// Inserts a client registered at the endpoint, then the hash of its registration access
    /// token (its id is unknown to anyone until the endpoint answers, so nobody can use it
    /// between the two).
    pub async fn insert_registered_client(&self, c: &Client, token_hash: &str) -> Result<()> {
        self.insert_client(c).await?;
        sqlx::query("UPDATE clients SET registration_token_hash = $1 WHERE id = $2")
            .bind(token_hash)
            .bind(&c.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The hash of a client's registration access token; none for an unknown client or one the
    /// operator added.
    pub async fn registration_token_hash(&self, client_id: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT registration_token_hash FROM clients WHERE id = $1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(h,)| h))
    }

    /// Replaces everything a registration says (RFC 7592 §2.2: the update is whole). Returns
    /// whether the client exists.
    pub async fn replace_registered_client(&self, c: &Client) -> Result<bool> {
        let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
        let done = sqlx::query(
            "UPDATE clients SET name = $1, secret_hash = $2, auth_method = $3, redirect_uris = $4, post_logout_redirect_uris = $5,
             grant_types = $6, id_token_signed_response_alg = $7, jwks = $8, jwks_uri = $9, request_object_signing_alg = $10,
             token_endpoint_auth_signing_alg = $11, metadata = $12, secret_sealed = $13 WHERE id = $14",
        )
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(c.auth_method.as_str())
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(json_list(&grants))
        .bind(c.id_token_signed_response_alg.as_str())
        .bind(&c.keys.jwks)
        .bind(&c.keys.jwks_uri)
        .bind(c.keys.request_object_signing_alg.map(ObjectAlg::as_str))
        .bind(c.keys.token_endpoint_auth_signing_alg.map(AuthAlg::as_str))
        .bind(c.metadata.to_stored())
        .bind(&c.secret_sealed)
        .bind(&c.id)
        .execute(&self.pool)
        .await?;
        self.clients.entries.lock().unwrap().remove(&c.id);
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_initial_access_token(&self, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO initial_access_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether an initial access token with this hash exists and has not expired. The lookup is
    /// by the hash of a 256-bit random value, so it leaks nothing by timing.
    pub async fn initial_access_token_valid(&self, token_hash: &str, now: i64) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT expires_at FROM initial_access_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|(exp,)| exp > now))
    }

    /// The salt of a sector's pairwise identifiers, made on first use. Two nodes making it at
    /// once agree: the first insert wins and both read it back.
    pub async fn sector_salt(&self, sector: &str, now: i64) -> Result<String> {
        if let Some((salt,)) = sqlx::query_as::<_, (String,)>("SELECT salt FROM sector_salts WHERE sector = $1")
            .bind(sector)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(salt);
        }
        sqlx::query(
            "INSERT INTO sector_salts (sector, salt, created_at) VALUES ($1, $2, $3) ON CONFLICT (sector) DO NOTHING",
        )
        .bind(sector)
        .bind(crate::crypto::random_token())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let (salt,): (String,) = sqlx::query_as("SELECT salt FROM sector_salts WHERE sector = $1")
            .bind(sector)
            .fetch_one(&self.pool)
            .await?;
        Ok(salt)
    }
}
