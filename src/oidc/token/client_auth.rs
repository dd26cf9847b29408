//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3,
//! OIDC Core §9): `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and
//! `private_key_jwt` (see [`client_assertion`](super::client_assertion)), or `none` for public
//! clients. A client uses
//! exactly the method it registered, and exactly one method per request.

use super::client_assertion;
use crate::crypto::verify_secret;
use crate::domain::{AuthMethod, Client};
use crate::http::{OAuthError, Params};
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use std::sync::Arc;

/// What the request presented.
struct Presented {
    method: AuthMethod,
    client_id: String,
    credential: Credential,
}

enum Credential {
    Secret(String),
    /// A `client_assertion` JWT (RFC 7521 §4.2).
    Assertion(String),
    Nothing,
}

fn presented(headers: &HeaderMap, p: &Params) -> Result<Presented, OAuthError> {
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim().to_owned())
    });
    if let Some(b64) = basic {
        if p.has("client_secret") || p.has("client_assertion") {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_client("the Basic credentials are malformed"))?;
        let (id, secret) =
            decoded.split_once(':').ok_or_else(|| OAuthError::invalid_client("the Basic credentials are malformed"))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        let (id, secret) = (form_decode(id), form_decode(secret));
        if let Some(body_id) = p.get("client_id")
            && body_id != id
        {
            return Err(OAuthError::invalid_request("client_id in the body differs from the authenticated client"));
        }
        return Ok(Presented {
            method: AuthMethod::ClientSecretBasic,
            client_id: id,
            credential: Credential::Secret(secret),
        });
    }
    if p.has("client_assertion") || p.has("client_assertion_type") {
        return assertion(p);
    }
    let client_id =
        p.get("client_id").ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?.to_owned();
    Ok(match p.get("client_secret") {
        Some(s) => {
            Presented { method: AuthMethod::ClientSecretPost, client_id, credential: Credential::Secret(s.to_owned()) }
        }
        None => Presented { method: AuthMethod::None, client_id, credential: Credential::Nothing },
    })
}

/// RFC 7521 §4.2: `client_assertion_type` and `client_assertion` together; `client_id` is
/// optional, and when present must be the assertion's subject (RFC 7523 §3).
fn assertion(p: &Params) -> Result<Presented, OAuthError> {
    if p.has("client_secret") {
        return Err(OAuthError::invalid_request("use one client authentication method, not two"));
    }
    let (Some(kind), Some(jwt)) = (p.get("client_assertion_type"), p.get("client_assertion")) else {
        return Err(OAuthError::invalid_request("client_assertion and client_assertion_type go together"));
    };
    if kind != client_assertion::JWT_BEARER {
        return Err(OAuthError::invalid_client(format!("client_assertion_type {kind} is not supported")));
    }
    let sub = client_assertion::named_client(jwt)
        .ok_or_else(|| OAuthError::invalid_client("the client assertion names no subject"))?;
    if p.get("client_id").is_some_and(|id| id != sub) {
        return Err(OAuthError::invalid_client("client_id differs from the assertion's subject"));
    }
    // private_key_jwt or client_secret_jwt: the method the client registered says which.
    Ok(Presented {
        method: AuthMethod::PrivateKeyJwt,
        client_id: sub,
        credential: Credential::Assertion(jwt.to_owned()),
    })
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The authenticated client, or `invalid_client` (401) saying nothing about which part failed.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<Arc<Client>, OAuthError> {
    let presented = presented(headers, p)?;
    let client = state.store.client(&presented.client_id).await?;
    let ok = match (&client, &presented.credential) {
        (Some(c), Credential::Secret(secret)) => {
            c.auth_method == presented.method && c.secret_hash.as_deref().is_some_and(|h| verify_secret(secret, h))
        }
        (Some(c), Credential::Assertion(jwt)) if c.auth_method.uses_assertion() => {
            match client_assertion::verify(state, c, jwt).await? {
                Ok(()) => true,
                Err(why) => {
                    tracing::info!(client = %c.id, "client assertion refused: {why}");
                    false
                }
            }
        }
        (Some(_), Credential::Assertion(_)) => false,
        (Some(c), Credential::Nothing) => c.auth_method == AuthMethod::None && presented.method == AuthMethod::None,
        // Unknown client: spend the same hash-and-compare as a known one.
        (None, Credential::Secret(secret)) => {
            let _ = verify_secret(secret, "");
            false
        }
        (None, _) => false,
    };
    match client {
        // FAPI 2.0 §5.3.2.1-6: private_key_jwt (or mTLS) only, whatever was registered.
        Some(c) if ok && c.is_fapi2() && c.auth_method != AuthMethod::PrivateKeyJwt => {
            Err(OAuthError::invalid_client("a FAPI 2.0 client authenticates with private_key_jwt"))
        }
        Some(c) if ok => Ok(c),
        _ => Err(OAuthError::invalid_client("client authentication failed")),
    }
}
