//! Back-channel logout (OIDC Back-Channel Logout 1.0): when a session ends (RP-initiated logout,
//! the user signing a device out, `users disable`, a password reset), every client that signed
//! in with it and registered a `backchannel_logout_uri` is sent a logout token, server to server.
//!
//! Off the request path and from any node: the store queues one row per session and client in
//! the transaction that ends the session (`store::logouts`); every node polls the queue once a
//! second, claims a due row with a lease (so two nodes never both send it, and a node that stops
//! mid-delivery leaves it to another), signs the token then and POSTs it. A failure is tried
//! again after 2, 4, 8, 16 and 32 seconds; after [`MAX_ATTEMPTS`] the row is dropped and the
//! failure audited.

use crate::domain::Client;
use crate::state::AppState;
use crate::store::{AuditEvent, LogoutDelivery};
use serde_json::{Map, json};
use std::time::Duration;

/// §2.4: the event that makes a JWT a logout token.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Tries per delivery, the first included.
pub const MAX_ATTEMPTS: i64 = 6;
/// How long a claimed delivery is this node's before another may take it: longer than one call.
const LEASE_SECS: i64 = 30;
/// How often each node looks for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// How many deliveries a node takes per look.
const BATCH: i64 = 32;
/// §2.4: a logout token is short-lived.
const TOKEN_TTL: i64 = 120;

/// Delivers queued logouts for the life of the process.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = deliver_due(&state).await {
                tracing::warn!(error = %e, "back-channel logouts: the queue could not be read");
            }
        }
    });
}

async fn deliver_due(state: &AppState) -> anyhow::Result<()> {
    let now = state.now();
    for d in state.store.due_logouts(now, BATCH).await? {
        if !state.store.claim_logout(&d, now + LEASE_SECS).await? {
            continue; // another node has it
        }
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = deliver_one(&state, &d).await {
                tracing::warn!(error = %e, client = %d.client_id, "back-channel logout: could not record the outcome");
            }
        });
    }
    Ok(())
}

async fn deliver_one(state: &AppState, d: &LogoutDelivery) -> anyhow::Result<()> {
    let attempt = d.attempts + 1;
    let client = state.store.client(&d.client_id).await?;
    let Some((client, uri)) =
        client.as_ref().and_then(|c| c.metadata.backchannel_logout_uri.clone().map(|u| (c.clone(), u)))
    else {
        // The client was removed, or no longer asks to be told.
        return Ok(state.store.remove_logout(&d.id).await?);
    };
    let result = match logout_token(state, &client, d).await {
        Ok(token) => post(state, &uri, &token).await,
        Err(e) => Err(format!("{e:#}")),
    };
    let now = state.now();
    match result {
        Ok(()) => state.store.remove_logout(&d.id).await?,
        Err(e) if attempt >= MAX_ATTEMPTS => {
            tracing::warn!(client = %d.client_id, attempt, "back-channel logout given up: {e}");
            state.store.remove_logout(&d.id).await?;
            let event = AuditEvent::new("logout.backchannel_failed")
                .client(&d.client_id)
                .user(&d.user_id)
                .detail("error", json!(e))
                .detail("attempts", json!(attempt));
            state.store.audit(event, now).await;
        }
        Err(e) => {
            tracing::info!(client = %d.client_id, attempt, "back-channel logout failed, tried again later: {e}");
            state.store.retry_logout_at(&d.id, now + (1 << attempt.min(10))).await?;
        }
    }
    Ok(())
}

/// §2.4: the logout token: `iss`, `aud`, `iat`, `exp`, `jti`, the event, the `sub` this client
/// knows and the session's `sid`; never a `nonce`. Typed `logout+jwt` (§2.4) and signed like the
/// client's ID tokens.
async fn logout_token(state: &AppState, client: &Client, d: &LogoutDelivery) -> anyhow::Result<String> {
    let now = state.now();
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.issuer));
    c.insert("sub".into(), json!(super::subject::for_client(state, client, &d.user_id).await?));
    c.insert("aud".into(), json!(client.id));
    c.insert("iat".into(), json!(now));
    c.insert("exp".into(), json!(now + TOKEN_TTL));
    c.insert("jti".into(), json!(crate::crypto::random_id()));
    c.insert("events".into(), json!({ EVENT: {} }));
    c.insert("sid".into(), json!(d.session_id));
    state.keys.sign(&c, Some("logout+jwt"), client.id_token_signed_response_alg)
}

/// §2.5: a form POST of `logout_token`; any 2xx is success (§2.8 asks for 200).
async fn post(state: &AppState, uri: &str, token: &str) -> Result<(), String> {
    let resp = state
        .upstream_http
        .post(uri)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("logout_token={token}"))
        .send()
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    if resp.status().is_success() { Ok(()) } else { Err(format!("{uri} answered {}", resp.status())) }
}
