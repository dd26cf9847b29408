//! Creating a client: one implementation behind the operator's `clients add` and the dynamic
//! registration endpoint (`oidc::register`). Each surface reads and checks its own input into a
//! `NewClient`; this gives it an id and, when it authenticates with one, a secret (kept as a
//! hash, and sealed too for `client_secret_jwt`, which needs it as a MAC key), stores it and
//! records the event.

use crate::crypto::{b64url, hash_secret, random_bytes, random_id, random_token};
use crate::domain::client_metadata::NewClient;
use crate::domain::{AuthMethod, Client};
use crate::store::{AuditEvent, Store};

/// A client just created, and its secret: shown once, never kept.
pub struct Created {
    pub client: Client,
    pub secret: Option<String>,
}

/// Stores `new` as a client; `registration_token_hash` is the hash of its registration access
/// token when it was registered at the endpoint. `by` stamps the audit event with who created it
/// (the registration endpoint, or the operator's CLI or admin API: `admin::Ops::stamp`).
pub async fn create(
    store: &Store,
    new: NewClient,
    registration_token_hash: Option<&str>,
    now: i64,
    by: impl FnOnce(AuditEvent) -> AuditEvent,
) -> anyhow::Result<Created> {
    new.check().map_err(anyhow::Error::msg)?;
    let method = new.auth_method;
    let secret = method.uses_secret().then(|| new_secret(method));
    let mut client = new.into_client(random_id(), secret.as_deref().map(hash_secret), now);
    client.secret_sealed = sealed_secret(store, &client, secret.as_deref());
    match registration_token_hash {
        Some(hash) => store.insert_registered_client(&client, hash).await?,
        None => store.insert_client(&client).await?,
    }
    let kind = if registration_token_hash.is_some() { "client.registered" } else { "admin.client_added" };
    store.audit(by(AuditEvent::new(kind).client(&client.id)), now).await;
    Ok(Created { client, secret })
}

/// A new secret for a client authenticating with `method`: 256 random bits, or 512 for
/// `client_secret_jwt`, whose secret is an HMAC key and must be as long as the hash of HS512
/// (RFC 7518 §3.2).
pub fn new_secret(method: AuthMethod) -> String {
    if method == AuthMethod::ClientSecretJwt { b64url(&random_bytes(64)) } else { random_token() }
}

/// The sealed copy of `secret` that `client` keeps: only a `client_secret_jwt` client has one.
pub fn sealed_secret(store: &Store, client: &Client, secret: Option<&str>) -> Option<String> {
    secret
        .filter(|_| client.auth_method == AuthMethod::ClientSecretJwt)
        .map(|s| store.seal_client_secret(&client.id, s))
}
