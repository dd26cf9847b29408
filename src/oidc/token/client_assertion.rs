//! JWT client authentication (OIDC Core §9, RFC 7523 §2.2 and §3): `private_key_jwt`, a JWT the
//! client signed with one of its registered keys, and `client_secret_jwt`, one it MAC'd with
//! its secret. Each check below is one MUST of RFC 7523 §3, the same for both.

use crate::crypto::hash_secret;
use crate::domain::client::AuthAlg;
use crate::domain::{AuthMethod, Client};
use crate::http::OAuthError;
use crate::keys::JsonObject;
use crate::keys::mac;
use crate::oidc::authorize::par;
use crate::oidc::{INTROSPECT, REVOKE, TOKEN};
use crate::state::AppState;
use serde_json::Value;
use std::time::Duration;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest an assertion may live: its `jti` is remembered until `exp`, so a far-off `exp`
/// would make the replay cache hold it for as long.
pub const MAX_LIFETIME: i64 = 600;

/// How far ahead of our clock an assertion's `nbf` or `iat` may be: clocks differ, and FAPI 2.0
/// §5.3.2.1-13 asks that 10 s pass.
pub const MAX_SKEW: i64 = 10;

/// Why an assertion was refused: logged, never told to the client (it gets `invalid_client`).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Signature(#[from] crate::keys::client_keys::ClientKeyError),
    #[error("{0}")]
    Mac(#[from] crate::keys::mac::MacError),
    #[error("the client has no sealed secret to check a MAC with")]
    NoSecret,
    #[error("iss and sub must both be the client_id")]
    Subject,
    #[error("aud names neither this issuer nor its token endpoint")]
    Audience,
    #[error("exp is missing, past, or more than {MAX_LIFETIME} seconds ahead")]
    Expiry,
    #[error("nbf or iat is more than {MAX_SKEW} seconds in the future")]
    NotYetValid,
    #[error("jti is missing")]
    NoJti,
    #[error("the jti was used before")]
    Replayed,
}

/// The client an assertion names, read without verifying it (`sub`, RFC 7523 §3 item 2), to
/// know whose keys verify it.
pub fn named_client(assertion: &str) -> Option<String> {
    let claims = crate::keys::decode_part(assertion.split('.').nth(1)?)?;
    claims.get("sub").and_then(Value::as_str).map(str::to_owned)
}

/// Verifies `assertion` for `client` and spends its `jti`.
pub async fn verify(state: &AppState, client: &Client, assertion: &str) -> Result<Result<(), Refused>, OAuthError> {
    let now = state.now();
    // The algorithm: the one registered (Registration §2, token_endpoint_auth_signing_alg), else
    // any of the client's method; never `none`.
    let registered = client.keys.token_endpoint_auth_signing_alg;
    let claims = match client.auth_method {
        AuthMethod::ClientSecretJwt => {
            // A sealed secret that does not open is a store failure (server_error), never a
            // refusal the client would take for a wrong secret.
            let Some(secret) = state.store.client_secret(client).await? else {
                return Ok(Err(Refused::NoSecret));
            };
            match mac::verify(assertion, &secret, |alg| registered.is_none_or(|a| a == AuthAlg::Mac(alg))) {
                Ok(claims) => claims,
                Err(e) => return Ok(Err(e.into())),
            }
        }
        _ => {
            let allowed = |alg| registered.is_none_or(|a| a == AuthAlg::Key(alg)) && client.may_sign_with(alg);
            match state.client_keys.verify(&state.upstream_http, &client.keys, assertion, allowed, now).await {
                Ok((_, claims)) => claims,
                Err(e) => return Ok(Err(e.into())),
            }
        }
    };
    if let Err(refused) = check_claims(state, client, &claims, now) {
        return Ok(Err(refused));
    }
    // jti: "The authorization server MAY ensure that JWTs are not replayed by maintaining the
    // set of used jti values for the length of time for which the JWT would be considered
    // valid based on the applicable exp instant" (§3 item 7). Spent atomically on any node.
    let jti = claims.get("jti").and_then(Value::as_str).ok_or(Refused::NoJti);
    let jti = match jti {
        Ok(j) => j,
        Err(e) => return Ok(Err(e)),
    };
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
    let key = format!("jti:assertion:{}", hash_secret(&format!("{}\n{jti}", client.id)));
    let ttl = Duration::from_secs((exp - now).max(1) as u64 + 1);
    Ok(if state.ephemeral.incr(&key, ttl).await? == 1 { Ok(()) } else { Err(Refused::Replayed) })
}

fn check_claims(state: &AppState, client: &Client, claims: &JsonObject, now: i64) -> Result<(), Refused> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // iss and sub MUST both be the client_id (§3 items 1 and 2; OIDC Core §9).
    if text("iss") != Some(client.id.as_str()) || text("sub") != Some(client.id.as_str()) {
        return Err(Refused::Subject);
    }
    // aud MUST identify the authorization server: its issuer or the endpoint the assertion is
    // sent to (§3 item 3; OIDC Core §9 names the token endpoint URL, RFC 9126 §2 the PAR
    // endpoint). FAPI 2.0 §5.3.2.1-8: the issuer alone, as a string.
    let ours = |a: &str| a == state.issuer || [TOKEN, REVOKE, INTROSPECT, par::PATH].iter().any(|p| a == state.url(p));
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) if client.is_fapi2() => *a == state.issuer,
        Some(Value::String(a)) => ours(a),
        Some(Value::Array(list)) if !client.is_fapi2() => list.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    };
    if !aud_ok {
        return Err(Refused::Audience);
    }
    // exp MUST be present and not past (§3 item 4); and not too far ahead (see MAX_LIFETIME).
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now && exp - now <= MAX_LIFETIME => {}
        _ => return Err(Refused::Expiry),
    }
    // nbf, if present, not in the future (§3 item 5), nor iat (§3 item 6), give or take
    // MAX_SKEW.
    let ahead = |name| claims.get(name).and_then(Value::as_i64).is_some_and(|t| t > now + MAX_SKEW);
    if ahead("nbf") || ahead("iat") {
        return Err(Refused::NotYetValid);
    }
    Ok(())
}
