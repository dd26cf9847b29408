//! Clients' public keys (OIDC Core §10.1): the JWK Set a client registered inline (`jwks`) or
//! publishes at its `jwks_uri`, and verifying what the client signed with them — request objects
//! (OIDC Core §6) and `private_key_jwt` assertions (RFC 7523).
//!
//! A `jwks_uri` is fetched with the upstream HTTP client (short timeouts, no redirects), at most
//! [`MAX_JWKS_BYTES`], and cached for [`CACHE_TTL`] seconds. When nothing in the cached set
//! verifies a signature — a `kid` it does not know, a rotated key — the set is fetched again at
//! once, but no more often than every [`REFETCH_AFTER`] seconds per URL, so a stranger sending
//! bad signatures cannot make this node hammer the client's server.

use super::{Alg, JsonObject, decode_part};
use crate::clock::Timestamp;
use crate::domain::client::ClientKeys;
use josekit::jwk::Jwk;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a fetched JWK Set is used without asking again.
pub const CACHE_TTL: i64 = 300;
/// The least time between two fetches of one `jwks_uri`.
pub const REFETCH_AFTER: i64 = 10;
/// The largest JWK Set (or request object) this provider reads from a client's server.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// A fetched set and when it was fetched.
type Fetched = (Arc<Vec<Jwk>>, Timestamp);

/// Fetched sets by URL. A std mutex: held only for a map lookup, never across an await.
#[derive(Default)]
pub struct ClientKeyCache(Mutex<HashMap<String, Fetched>>);

#[derive(Debug, thiserror::Error)]
pub enum ClientKeyError {
    #[error("the JWT is malformed")]
    Malformed,
    #[error("the JWT is signed with an algorithm that is not allowed here")]
    AlgNotAllowed,
    #[error("the client has registered no keys")]
    NoKeys,
    #[error("the client's keys could not be read: {0}")]
    Unreachable(String),
    #[error("no key of the client verifies the signature")]
    BadSignature,
}

/// Reads a JSON document of at most `limit` bytes from `url` (https, or loopback http — the
/// caller checks which it allows), following no redirects.
pub async fn fetch(http: &reqwest::Client, url: &str, accept: &str, limit: usize) -> Result<Vec<u8>, String> {
    let mut resp = http.get(url).header("Accept", accept).send().await.map_err(|e| e.without_url().to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n as usize > limit) {
        return Err(format!("{url} sent more than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.without_url().to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(format!("{url} sent more than {limit} bytes"));
        }
    }
    Ok(body)
}

/// The keys of a JWK Set document; members that are not keys josekit reads are skipped.
fn parse_set(bytes: &[u8]) -> Result<Vec<Jwk>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a JWK Set: {e}"))?;
    let keys = v["keys"].as_array().ok_or("not a JWK Set: no keys array")?;
    Ok(keys.iter().filter_map(|k| k.as_object().and_then(|m| Jwk::from_map(m.clone()).ok())).collect())
}

impl ClientKeyCache {
    /// The client's keys; `fresh` asks for a new fetch of its `jwks_uri` unless one was made in
    /// the last [`REFETCH_AFTER`] seconds. Returns the keys and whether they were just fetched.
    async fn keys(
        &self,
        http: &reqwest::Client,
        client: &ClientKeys,
        fresh: bool,
        now: Timestamp,
    ) -> Result<(Arc<Vec<Jwk>>, bool), ClientKeyError> {
        if let Some(inline) = &client.jwks {
            return Ok((Arc::new(parse_set(inline.as_bytes()).map_err(ClientKeyError::Unreachable)?), false));
        }
        let Some(uri) = &client.jwks_uri else { return Err(ClientKeyError::NoKeys) };
        if let Some((set, at)) = self.0.lock().unwrap().get(uri).cloned() {
            let age = now - at;
            if age < CACHE_TTL && (!fresh || age < REFETCH_AFTER) {
                return Ok((set, false));
            }
        }
        let body = fetch(http, uri, "application/json, application/jwk-set+json", MAX_JWKS_BYTES)
            .await
            .map_err(ClientKeyError::Unreachable)?;
        let set = Arc::new(parse_set(&body).map_err(ClientKeyError::Unreachable)?);
        self.0.lock().unwrap().insert(uri.clone(), (set.clone(), now));
        Ok((set, true))
    }

    /// Whether a key of the client's set is `wanted` (a self-signed certificate's key, RFC 8705
    /// §2.2); a set from `jwks_uri` without it is fetched again, as for an unknown `kid`.
    pub async fn find(
        &self,
        http: &reqwest::Client,
        client: &ClientKeys,
        wanted: impl Fn(&Jwk) -> bool,
        now: Timestamp,
    ) -> Result<bool, ClientKeyError> {
        let (set, fetched) = self.keys(http, client, false, now).await?;
        if set.iter().any(&wanted) {
            return Ok(true);
        }
        if !fetched && client.jwks_uri.is_some() {
            let (set, _) = self.keys(http, client, true, now).await?;
            return Ok(set.iter().any(&wanted));
        }
        Ok(false)
    }

    /// Verifies a compact JWS the client signed with an algorithm `allowed` accepts; returns its
    /// header and claims. Tries the key named by `kid`, or every key when the JWS names none
    /// (as the conformance suite's clients do).
    pub async fn verify(
        &self,
        http: &reqwest::Client,
        client: &ClientKeys,
        token: &str,
        allowed: impl Fn(Alg) -> bool,
        now: Timestamp,
    ) -> Result<(JsonObject, JsonObject), ClientKeyError> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(ClientKeyError::Malformed);
        }
        let header = decode_part(parts[0]).ok_or(ClientKeyError::Malformed)?;
        let alg =
            header.get("alg").and_then(Value::as_str).and_then(Alg::parse).ok_or(ClientKeyError::AlgNotAllowed)?;
        if !allowed(alg) {
            return Err(ClientKeyError::AlgNotAllowed);
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let (set, fetched) = self.keys(http, client, false, now).await?;
        if let Some(claims) = verify_with(&set, alg, kid, token) {
            return Ok((header, claims));
        }
        // A key the cached set does not have: the client may have rotated.
        if !fetched && client.jwks_uri.is_some() {
            let (set, _) = self.keys(http, client, true, now).await?;
            if let Some(claims) = verify_with(&set, alg, kid, token) {
                return Ok((header, claims));
            }
        }
        Err(ClientKeyError::BadSignature)
    }
}

/// The claims, if a key of `set` (the one named `kid`, or any) verifies `token` with `alg`.
fn verify_with(set: &[Jwk], alg: Alg, kid: Option<&str>, token: &str) -> Option<JsonObject> {
    set.iter()
        .filter(|k| kid.is_none() || k.key_id() == kid)
        // josekit refuses a JWS without a kid for a verifier made from a key with one; the kid
        // was matched above.
        .filter_map(|k| {
            let mut map = k.as_ref().clone();
            map.remove("kid");
            Jwk::from_map(map).ok().and_then(|k| alg.verifier(&k).ok())
        })
        .find_map(|v| josekit::jws::deserialize_compact(token, v.as_ref()).ok())
        .and_then(|(payload, _)| match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => Some(claims),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;

    fn sign(alg: Alg, pem: &[u8], kid: Option<&str>) -> String {
        let mut h = JwsHeader::new();
        if let Some(k) = kid {
            h.set_key_id(k);
        }
        josekit::jws::serialize_compact(br#"{"iss":"c"}"#, &h, alg.signer(pem).unwrap().as_ref()).unwrap()
    }

    #[test]
    fn a_key_verifies_by_kid_or_by_trying_each() {
        for alg in Alg::ALL {
            let (pem, mut jwk) = alg.generate().unwrap();
            jwk.set_key_id("k1");
            jwk.set_algorithm(alg.as_str());
            let (other_pem, _) = alg.generate().unwrap();
            let set = vec![jwk];
            assert!(verify_with(&set, alg, Some("k1"), &sign(alg, &pem, Some("k1"))).is_some(), "{alg} by kid");
            assert!(verify_with(&set, alg, None, &sign(alg, &pem, None)).is_some(), "{alg} without kid");
            assert!(verify_with(&set, alg, Some("k2"), &sign(alg, &pem, Some("k2"))).is_none(), "{alg} unknown kid");
            assert!(verify_with(&set, alg, None, &sign(alg, &other_pem, None)).is_none(), "{alg} another key");
        }
    }
}
