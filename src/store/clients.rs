//! Registered clients, with a short-lived read cache: the token endpoint reads its client on
//! every call, and a removal through the CLI must still take effect within seconds. The cache
//! expires by the store's [`Clock`], so tests move time instead of waiting for it.

use super::{Result, Store, json_list, parse_list};
use crate::clock::Clock;
use crate::domain::client::{AccessTokenFormat, AuthAlg, ClientKeys, ClientSecurity, ObjectAlg, Profile, TlsSubject};
use crate::domain::client_metadata::ClientMetadata;
use crate::domain::{AuthMethod, Client, GrantType};
use crate::keys::Alg;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a cached client is used before it is read again, in milliseconds.
const CACHE_TTL_MS: i64 = 2000;

/// Clients by id, each with the clock time (ms) at which it stops being used. A std mutex is
/// right here: it is held only for a map lookup, never across an await.
pub(super) struct Cache {
    pub(super) entries: Mutex<HashMap<String, (Arc<Client>, i64)>>,
    clock: Clock,
}

impl Cache {
    pub(super) fn new(clock: Clock) -> Self {
        Self { entries: Mutex::default(), clock }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    secret_hash: Option<String>,
    secret_sealed: Option<String>,
    auth_method: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    first_party: i64,
    min_acr: i64,
    resource_server: i64,
    require_pkce: i64,
    created_at: i64,
    id_token_signed_response_alg: String,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    request_object_signing_alg: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    require_par: i64,
    dpop_bound: i64,
    profile: Option<String>,
    exchange_from: String,
    metadata: Option<String>,
    tls_subject_field: Option<String>,
    tls_subject: Option<String>,
    cert_bound: i64,
    access_token_format: String,
}

impl From<Row> for Client {
    fn from(r: Row) -> Self {
        Client {
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            secret_sealed: r.secret_sealed,
            auth_method: AuthMethod::parse(&r.auth_method).unwrap_or(AuthMethod::ClientSecretBasic),
            redirect_uris: parse_list(&r.redirect_uris),
            post_logout_redirect_uris: parse_list(&r.post_logout_redirect_uris),
            grant_types: parse_list(&r.grant_types).iter().filter_map(|g| GrantType::parse(g)).collect(),
            scopes: parse_list(&r.scopes),
            first_party: r.first_party != 0,
            min_acr: u8::try_from(r.min_acr).unwrap_or(u8::MAX),
            resource_server: r.resource_server != 0,
            require_pkce: r.require_pkce != 0,
            access_token_format: AccessTokenFormat::parse(&r.access_token_format).unwrap_or_default(),
            created_at: r.created_at,
            id_token_signed_response_alg: Alg::parse(&r.id_token_signed_response_alg).unwrap_or(Alg::DEFAULT),
            keys: ClientKeys {
                jwks: r.jwks,
                jwks_uri: r.jwks_uri,
                request_object_signing_alg: r.request_object_signing_alg.as_deref().and_then(ObjectAlg::parse),
                token_endpoint_auth_signing_alg: r.token_endpoint_auth_signing_alg.as_deref().and_then(AuthAlg::parse),
            },
            security: ClientSecurity {
                require_par: r.require_par != 0,
                dpop_bound: r.dpop_bound != 0,
                profile: r.profile.as_deref().and_then(Profile::parse),
                token_exchange_from: parse_list(&r.exchange_from),
                tls_subject: match (&r.tls_subject_field, &r.tls_subject) {
                    (Some(f), Some(v)) => TlsSubject::parse(f, v).ok(),
                    _ => None,
                },
                cert_bound: r.cert_bound != 0,
            },
            metadata: ClientMetadata::from_stored(r.metadata.as_deref()),
        }
    }
}

macro_rules! select_clients {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, secret_hash, secret_sealed, auth_method, redirect_uris, post_logout_redirect_uris, grant_types, scopes, first_party, min_acr, resource_server, require_pkce, created_at, id_token_signed_response_alg, jwks, jwks_uri, request_object_signing_alg, token_endpoint_auth_signing_alg, require_par, dpop_bound, profile, exchange_from, metadata, tls_subject_field, tls_subject, cert_bound, access_token_format FROM clients ",
            $tail
        )
    };
}

impl Store {
    pub async fn insert_client(&self, c: &Client) -> Result<()> {
        let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, auth_method, redirect_uris, post_logout_redirect_uris, grant_types, scopes, first_party, min_acr, created_at, id_token_signed_response_alg, jwks, jwks_uri, request_object_signing_alg, token_endpoint_auth_signing_alg, resource_server, require_pkce, require_par, dpop_bound, profile, exchange_from, metadata, secret_sealed, tls_subject_field, tls_subject, cert_bound, access_token_format)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(c.auth_method.as_str())
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(json_list(&grants))
        .bind(json_list(&c.scopes))
        .bind(c.first_party as i64)
        .bind(i64::from(c.min_acr))
        .bind(c.created_at)
        .bind(c.id_token_signed_response_alg.as_str())
        .bind(&c.keys.jwks)
        .bind(&c.keys.jwks_uri)
        .bind(c.keys.request_object_signing_alg.map(ObjectAlg::as_str))
        .bind(c.keys.token_endpoint_auth_signing_alg.map(AuthAlg::as_str))
        .bind(c.resource_server as i64)
        .bind(c.require_pkce as i64)
        .bind(c.security.require_par as i64)
        .bind(c.security.dpop_bound as i64)
        .bind(c.security.profile.map(Profile::as_str))
        .bind(json_list(&c.security.token_exchange_from))
        .bind(c.metadata.to_stored())
        .bind(&c.secret_sealed)
        .bind(c.security.tls_subject.as_ref().map(TlsSubject::field))
        .bind(c.security.tls_subject.as_ref().map(TlsSubject::value))
        .bind(c.security.cert_bound as i64)
        .bind(c.access_token_format.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes what `clients update` may change: redirect URIs, flags and the access token format. Returns whether the
    /// client exists.
    pub async fn update_client(&self, c: &Client) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE clients SET redirect_uris = $1, resource_server = $2, require_pkce = $3, require_par = $4, dpop_bound = $5, exchange_from = $6, tls_subject_field = $7, tls_subject = $8, cert_bound = $9, access_token_format = $10 WHERE id = $11",
        )
        .bind(json_list(&c.redirect_uris))
        .bind(c.resource_server as i64)
        .bind(c.require_pkce as i64)
        .bind(c.security.require_par as i64)
        .bind(c.security.dpop_bound as i64)
        .bind(json_list(&c.security.token_exchange_from))
        .bind(c.security.tls_subject.as_ref().map(TlsSubject::field))
        .bind(c.security.tls_subject.as_ref().map(TlsSubject::value))
        .bind(c.security.cert_bound as i64)
        .bind(c.access_token_format.as_str())
        .bind(&c.id)
        .execute(&self.pool)
        .await?;
        self.clients.entries.lock().unwrap().remove(&c.id);
        Ok(done.rows_affected() > 0)
    }

    /// The client by id, from the cache when it is fresh. Unknown ids are not cached, so a
    /// client added through the CLI is usable at once.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>> {
        let now = self.clients.clock.now_ms();
        if let Some((c, until)) = self.clients.entries.lock().unwrap().get(id)
            && now < *until
        {
            return Ok(Some(c.clone()));
        }
        let row: Option<Row> =
            sqlx::query_as(select_clients!("WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
        let mut cache = self.clients.entries.lock().unwrap();
        Ok(match row {
            Some(r) => {
                let c = Arc::new(Client::from(r));
                cache.insert(id.to_owned(), (c.clone(), now + CACHE_TTL_MS));
                Some(c)
            }
            None => {
                cache.remove(id);
                None
            }
        })
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        let rows: Vec<Row> = sqlx::query_as(select_clients!("ORDER BY created_at, id")).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(Client::from).collect())
    }

    /// Sets a client's web origins (see `domain::client::allowed_origins`). Returns whether the
    /// client exists.
    pub async fn set_client_web_origins(&self, id: &str, origins: &[String]) -> Result<bool> {
        let done = sqlx::query("UPDATE clients SET web_origins = $1 WHERE id = $2")
            .bind(json_list(origins))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a client's keys and signing algorithms (see `domain::client::ClientKeys`).
    /// Returns whether the client exists.
    pub async fn set_client_keys(&self, id: &str, keys: &ClientKeys) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE clients SET jwks = $1, jwks_uri = $2, request_object_signing_alg = $3, token_endpoint_auth_signing_alg = $4 WHERE id = $5",
        )
        .bind(&keys.jwks)
        .bind(&keys.jwks_uri)
        .bind(keys.request_object_signing_alg.map(ObjectAlg::as_str))
        .bind(keys.token_endpoint_auth_signing_alg.map(AuthAlg::as_str))
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.clients.entries.lock().unwrap().remove(id);
        Ok(done.rows_affected() > 0)
    }

    /// Writes how a client authenticates: its method and its secret (hash and sealed copy).
    pub async fn set_client_auth(&self, c: &Client) -> Result<bool> {
        let done =
            sqlx::query("UPDATE clients SET auth_method = $1, secret_hash = $2, secret_sealed = $3 WHERE id = $4")
                .bind(c.auth_method.as_str())
                .bind(&c.secret_hash)
                .bind(&c.secret_sealed)
                .bind(&c.id)
                .execute(&self.pool)
                .await?;
        self.clients.entries.lock().unwrap().remove(&c.id);
        Ok(done.rows_affected() > 0)
    }

    /// A client's web origins as registered (`+` not expanded); none for an unknown client.
    pub async fn client_web_origins(&self, id: &str) -> Result<Option<Vec<String>>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT web_origins FROM clients WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|(o,)| parse_list(&o)))
    }

    /// Every origin some client allows, `+` expanded. CORS preflights carry no client id, so
    /// they are answered for this union (see `http::cors`).
    pub async fn all_web_origins(&self) -> Result<Vec<String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT web_origins, redirect_uris FROM clients").fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .flat_map(|(o, r)| crate::domain::client::allowed_origins(&parse_list(o), &parse_list(r)))
            .collect())
    }

    /// Removes a client and revokes every grant it holds. Returns whether it existed.
    pub async fn remove_client(&self, id: &str, now: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM consents WHERE client_id = $1").bind(id).execute(&mut *tx).await?;
        for table in ["role_members", "client_roles", "client_required_groups"] {
            let delete = format!("DELETE FROM {table} WHERE client_id = $1");
            sqlx::query(sqlx::AssertSqlSafe(delete)).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM clients WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.clients.entries.lock().unwrap().remove(id);
        Ok(done.rows_affected() > 0)
    }
}
