//! The device authorization grant (RFC 8628) for TVs, consoles and command-line tools: the
//! device asks here for a pair of codes, shows the short user code and an address, and polls
//! the token endpoint while the person approves on a phone or computer (`account/device.rs`).
//!
//! ```text
//!  device ──POST /device_authorization──► device_code, user_code, verification_uri
//!  person ──/device (signed in)──► enters user_code ──► approves or denies
//!  device ──POST /token grant_type=…:device_code──► authorization_pending | slow_down | tokens
//! ```
//!
//! Both codes live only in the ephemeral store, the device code under its hash. The user code
//! is eight letters of RFC 8628 §6.1's base-20 alphabet (no vowels, so no words; no look-alikes),
//! about 34 bits: guessing one needs many tries, and tries are throttled per person.

use super::token::client_auth;
use crate::crypto::{hash_secret, random_bytes, random_token};
use crate::domain::claims::SCOPES_SUPPORTED;
use crate::domain::{Client, GrantType, parse_scope};
use crate::ephemeral::{Ephemeral, Taken, Unavailable};
use crate::http::{OAuthError, Params};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

pub const AUTHORIZATION: &str = "/device_authorization";
/// Where the person goes (`verification_uri`); served by the account pages.
pub const VERIFY: &str = "/device";

/// RFC 8628 §6.1: consonants only, none that look alike.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// The least time between two polls (RFC 8628 §3.2 `interval`), and what `slow_down` adds.
pub const INTERVAL: i64 = 5;

/// What a device asked for, and where the person has got to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub user_code: String,
    pub expires_at: i64,
    /// The earliest the device may poll again; each `slow_down` pushes it back further.
    pub interval: i64,
    pub next_poll: i64,
    pub decision: Decision,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Decision {
    Pending,
    Denied,
    /// The person approved: who, and how they had signed in.
    Approved {
        user_id: String,
        auth_time: i64,
        acr: String,
        amr: Vec<String>,
    },
}

fn device_key(device_code: &str) -> String {
    format!("device:{}", hash_secret(device_code))
}

fn user_key(user_code: &str) -> String {
    format!("device-user:{user_code}")
}

/// A new user code, `XXXX-XXXX` as people read it. Bytes of 240 or more are drawn again, so
/// that every letter is equally likely (240 is the largest multiple of 20 under 256).
fn user_code() -> String {
    let mut letters = String::with_capacity(USER_CODE_LEN);
    while letters.len() < USER_CODE_LEN {
        for b in random_bytes(USER_CODE_LEN) {
            if b < 240 && letters.len() < USER_CODE_LEN {
                letters.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// A user code as typed (any case, with or without the dash or spaces) in its canonical form,
/// or none when it cannot be one.
pub fn normalize(typed: &str) -> Option<String> {
    let letters: String = typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    (letters.len() == USER_CODE_LEN && letters.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| format!("{}-{}", &letters[..4], &letters[4..]))
}

fn ttl(request: &DeviceRequest, now: i64) -> Duration {
    Duration::from_secs((request.expires_at - now).max(1) as u64)
}

async fn save(ephemeral: &Ephemeral, device_hash_key: &str, r: &DeviceRequest, now: i64) -> Result<(), Unavailable> {
    let json = serde_json::to_string(r).expect("a device request serialises");
    ephemeral.put(device_hash_key, &json, ttl(r, now)).await
}

/// `POST /device_authorization` (RFC 8628 §3.1–3.2): the client authenticates as at the token
/// endpoint (a public client by its id alone) and must be registered for the device grant.
pub async fn authorize(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match start(&state, &headers, &body).await {
        Ok(json) => {
            let mut resp = Json(json).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn start(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, OAuthError> {
    let p = Params::from_form(headers, body).map_err(OAuthError::invalid_request)?;
    if let Some(name) = p.duplicate() {
        return Err(OAuthError::invalid_request(format!("the {name} parameter appears more than once")));
    }
    let client = client_auth::authenticate(state, headers, &p).await?;
    if !client.allows(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client("this client may not use the device authorization grant"));
    }
    let scopes = scopes(&client, p.get("scope").unwrap_or_default())?;
    let now = state.now();
    let lifetime = state.settings.tokens.device_code_ttl;
    let device_code = random_token();
    // A clash with a live user code is unlikely (34 bits); still, never hand out one in use.
    let mut code = user_code();
    for _ in 0..3 {
        if state.ephemeral.get(&user_key(&code)).await?.is_none() {
            break;
        }
        code = user_code();
    }
    let request = DeviceRequest {
        client_id: client.id.clone(),
        scopes,
        user_code: code.clone(),
        expires_at: now + lifetime,
        interval: INTERVAL,
        next_poll: now,
        decision: Decision::Pending,
    };
    save(&state.ephemeral, &device_key(&device_code), &request, now).await?;
    state.ephemeral.put(&user_key(&code), &device_key(&device_code), ttl(&request, now)).await?;
    let verification_uri = state.url(VERIFY);
    Ok(json!({
        "device_code": device_code,
        "user_code": code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={code}"),
        "expires_in": lifetime,
        "interval": INTERVAL,
    }))
}

/// The scopes of a device request: those Latchkey supports (unknown ones are dropped, as at
/// the authorization endpoint), `offline_access` only for clients that may refresh.
fn scopes(client: &Client, requested: &str) -> Result<Vec<String>, OAuthError> {
    let scopes: Vec<String> = parse_scope(requested)
        .into_iter()
        .filter(|s| SCOPES_SUPPORTED.contains(&s.as_str()))
        .filter(|s| s != "offline_access" || client.allows(GrantType::RefreshToken))
        .collect();
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("ask for at least one scope, such as openid"));
    }
    Ok(scopes)
}

/// The request a person's user code names, with the key it lives under, while it waits.
pub async fn by_user_code(state: &AppState, user_code: &str) -> Result<Option<(String, DeviceRequest)>, Unavailable> {
    let Some(key) = state.ephemeral.get(&user_key(user_code)).await? else { return Ok(None) };
    let Some(json) = state.ephemeral.get(&key).await? else { return Ok(None) };
    Ok(serde_json::from_str::<DeviceRequest>(&json)
        .ok()
        .filter(|r| matches!(r.decision, Decision::Pending))
        .map(|r| (key, r)))
}

/// Records the person's decision on the request under `key`; the user code is spent either way.
pub async fn decide(
    state: &AppState,
    key: &str,
    mut request: DeviceRequest,
    decision: Decision,
) -> Result<(), Unavailable> {
    let now = state.now();
    state.ephemeral.delete(&user_key(&request.user_code)).await?;
    request.decision = decision;
    save(&state.ephemeral, key, &request, now).await
}

/// The token endpoint's side (RFC 8628 §3.4–3.5): the approved request for `device_code`, taken
/// once; otherwise the error that tells the device what to do.
pub async fn redeem(state: &AppState, client: &Client, device_code: &str) -> Result<DeviceRequest, OAuthError> {
    let key = device_key(device_code);
    let now = state.now();
    // Expired, or used: either way this device authorization has concluded (§3.5).
    let expired = || OAuthError::device("expired_token", "the device code has expired or was used; start again");
    let Some(json) = state.ephemeral.get(&key).await? else { return Err(expired()) };
    let mut request: DeviceRequest = serde_json::from_str(&json).map_err(|_| expired())?;
    if request.client_id != client.id {
        return Err(OAuthError::invalid_grant("the device code was issued to another client"));
    }
    match request.decision {
        Decision::Pending if now < request.next_poll => {
            request.interval += INTERVAL;
            request.next_poll = now + request.interval;
            save(&state.ephemeral, &key, &request, now).await?;
            Err(OAuthError::device("slow_down", format!("poll at most every {} seconds", request.interval)))
        }
        Decision::Pending => {
            request.next_poll = now + request.interval;
            save(&state.ephemeral, &key, &request, now).await?;
            Err(OAuthError::device("authorization_pending", "the person has not answered yet"))
        }
        Decision::Denied => {
            state.ephemeral.delete(&key).await?;
            Err(OAuthError::device("access_denied", "the person denied the request"))
        }
        Decision::Approved { .. } => match state.ephemeral.take(&key).await? {
            // Of two polls racing for the tokens, one gets them.
            Taken::Fresh(_) => Ok(request),
            Taken::Consumed(_) | Taken::Missing => Err(expired()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_unambiguous_consonants() {
        for _ in 0..100 {
            let code = user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(normalize(&code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn typed_codes_are_read_generously_but_exactly() {
        assert_eq!(normalize("bcdf ghjk").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalize("BCDFGHJK").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalize("BCDF-GHJ"), None);
        assert_eq!(normalize("ABCD-EFGH"), None, "vowels are never in a code");
        assert_eq!(normalize("BCDF-GHJK-L"), None);
    }
}
