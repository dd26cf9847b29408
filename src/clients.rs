//! Creating a client: one implementation behind the operator's `clients add` and the dynamic
//! registration endpoint (`oidc::register`). Each surface reads and checks its own input into a
//! `NewClient`; this gives it an id and, when it authenticates with one, a secret (kept only as
//! a hash), stores it and records the event.

use crate::crypto::{hash_secret, random_id, random_token};
use crate::domain::Client;
use crate::domain::client_metadata::NewClient;
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
    let secret = new.auth_method.uses_secret().then(random_token);
    let client = new.into_client(random_id(), secret.as_deref().map(hash_secret), now);
    match registration_token_hash {
        Some(hash) => store.insert_registered_client(&client, hash).await?,
        None => store.insert_client(&client).await?,
    }
    let kind = if registration_token_hash.is_some() { "client.registered" } else { "admin.client_added" };
    store.audit(by(AuditEvent::new(kind).client(&client.id)), now).await;
    Ok(Created { client, secret })
}
