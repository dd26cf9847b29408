//! DPoP (RFC 9449): a client proves, request by request, that it holds a private key, by a
//! short JWT in the `DPoP` header signed with it. Tokens issued with a proof are bound to the
//! key's thumbprint (`cnf.jkt`), so a stolen token is useless without the key.
//!
//! [`verify`] runs the checks of RFC 9449 §4.3, in its order; the callers (the PAR and token
//! endpoints, userinfo) decide whether a proof is required and which key it must be.

use crate::crypto::{b64url, constant_time_eq, hash_secret, random_id, sha256};
use crate::ephemeral::Unavailable;
use crate::http::{BearerError, OAuthError};
use crate::keys::{Alg, JsonObject, decode_part};
use crate::state::AppState;
use axum::http::HeaderMap;
use josekit::jwk::Jwk;
use serde_json::Value;
use std::time::Duration;

/// The algorithms a proof may use (`dpop_signing_alg_values_supported`): asymmetric only
/// (§4.3 item 5), and those FAPI 2.0 allows (§5.4.1), so no RS256.
pub const ALGS: [Alg; 3] = [Alg::Ps256, Alg::Es256, Alg::EdDsa];

/// How old a proof's `iat` may be, and how far ahead (§4.3 item 11 leaves the window to the
/// server; FAPI 2.0 §5.3.2.1-13 asks that 10 s ahead pass and more than 60 s fail).
pub const MAX_AGE: i64 = 300;
pub const MAX_AHEAD: i64 = 60;

/// How long a server nonce stays good (§8).
const NONCE_TTL: Duration = Duration::from_secs(300);

/// A proof that passed: the thumbprint (RFC 7638) of the key that signed it.
#[derive(Debug, Clone)]
pub struct Proof {
    pub jkt: String,
}

/// Why a proof was refused.
#[derive(Debug)]
pub enum Refused {
    Invalid(&'static str),
    /// The proof lacks the server's current nonce: here is one to use (§8, §9).
    UseNonce(String),
    Unavailable(Unavailable),
}

impl From<Unavailable> for Refused {
    fn from(e: Unavailable) -> Self {
        Refused::Unavailable(e)
    }
}

impl From<Refused> for OAuthError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Invalid(d) => OAuthError::invalid_dpop_proof(d),
            Refused::UseNonce(n) => OAuthError::use_dpop_nonce(n),
            Refused::Unavailable(e) => e.into(),
        }
    }
}

impl From<Refused> for BearerError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Invalid(d) => BearerError::InvalidDpopProof(d),
            Refused::UseNonce(n) => BearerError::UseDpopNonce(n),
            Refused::Unavailable(e) => e.into(),
        }
    }
}

/// The proof of a request to `path` with `method`, if it carries one; `access_token` is the
/// token presented with it at a protected resource (its hash must be the proof's `ath`).
pub async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<Proof>, Refused> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else { return Ok(None) };
    // §4.3 item 1: not more than one DPoP header.
    if values.next().is_some() {
        return Err(Refused::Invalid("send one DPoP header, not several"));
    }
    let jwt = first.to_str().map_err(|_| Refused::Invalid("the DPoP header is not a JWT"))?.trim();
    let now = state.now();
    // Items 2–7: a JWT, typ dpop+jwt, an allowed asymmetric alg, a public jwk, a good signature.
    let (header, claims) = signed_by_its_key(jwt)?;
    let jkt = thumbprint(header.get("jwk").and_then(Value::as_object).ok_or(Refused::Invalid("jwk is missing"))?)
        .ok_or(Refused::Invalid("the jwk is not a public key"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // Item 4: the claims it must have.
    let jti = text("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or(Refused::Invalid("jti is missing"))?;
    // Item 8: htm is the request's method.
    if text("htm") != Some(method) {
        return Err(Refused::Invalid("htm is not this request's method"));
    }
    // Item 9: htu is this endpoint, ignoring query and fragment, after normalising (§4.3).
    if !same_target(text("htu").unwrap_or_default(), &state.url(path)) {
        return Err(Refused::Invalid("htu is not this endpoint's URL"));
    }
    // Item 11: iat within the window.
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat >= now - MAX_AGE && iat <= now + MAX_AHEAD => {}
        Some(_) => return Err(Refused::Invalid("iat is outside the accepted window")),
        None => return Err(Refused::Invalid("iat is missing")),
    }
    // Item 12: ath is the hash of the access token presented with it (§4.2, §7.1).
    if let Some(token) = access_token {
        let expected = b64url(&sha256(token.as_bytes()));
        let ath = text("ath").ok_or(Refused::Invalid("ath is missing"))?;
        if !constant_time_eq(ath.as_bytes(), expected.as_bytes()) {
            return Err(Refused::Invalid("ath is not the hash of the access token"));
        }
    }
    // Item 10: the server's nonce, when it asks for one (§8).
    if state.settings.tokens.dpop_nonce {
        let known = match text("nonce") {
            Some(n) if n.len() <= 64 => state.ephemeral.get(&nonce_key(n)).await?.is_some(),
            _ => false,
        };
        if !known {
            return Err(Refused::UseNonce(new_nonce(state).await?));
        }
    }
    // §11.1: a jti is accepted once, spent atomically on any node for as long as its proof
    // could pass the iat window; last, so that a refused proof spends nothing.
    let key = format!("dpop-jti:{}", hash_secret(&format!("{jkt}\n{jti}")));
    if state.ephemeral.incr(&key, Duration::from_secs((MAX_AGE + MAX_AHEAD + 1) as u64)).await? != 1 {
        return Err(Refused::Invalid("this proof's jti was used before"));
    }
    Ok(Some(Proof { jkt }))
}

fn nonce_key(nonce: &str) -> String {
    format!("dpop-nonce:{nonce}")
}

/// A new server nonce (§8): random, base64url (within the `NQCHAR` set of §8.1), remembered on
/// every node for [`NONCE_TTL`].
async fn new_nonce(state: &AppState) -> Result<String, Unavailable> {
    let nonce = random_id();
    state.ephemeral.put(&nonce_key(&nonce), "1", NONCE_TTL).await?;
    Ok(nonce)
}

/// The header and claims of a proof whose signature its own `jwk` verifies.
fn signed_by_its_key(jwt: &str) -> Result<(JsonObject, JsonObject), Refused> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let (Some(header), true) = (parts.first().and_then(|h| decode_part(h)), parts.len() == 3) else {
        return Err(Refused::Invalid("the DPoP proof is not a JWT"));
    };
    if !header.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(Refused::Invalid("typ must be dpop+jwt"));
    }
    let alg = header.get("alg").and_then(Value::as_str).and_then(Alg::parse).filter(|a| ALGS.contains(a));
    let alg = alg.ok_or(Refused::Invalid("alg is not one of dpop_signing_alg_values_supported"))?;
    let mut jwk = header.get("jwk").and_then(Value::as_object).cloned().ok_or(Refused::Invalid("jwk is missing"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(Refused::Invalid("the jwk holds private key material"));
    }
    if jwk.get("kty").and_then(Value::as_str) == Some("RSA")
        && jwk.get("n").and_then(Value::as_str).and_then(crate::crypto::b64url_decode).is_none_or(|n| n.len() < 256)
    {
        return Err(Refused::Invalid("an RSA key of 2048 bits or more is required"));
    }
    // The members that name or restrict a key would only make josekit refuse it.
    for m in ["kid", "alg", "use", "key_ops"] {
        jwk.remove(m);
    }
    let verifier = Jwk::from_map(jwk).ok().and_then(|k| alg.verifier(&k).ok());
    let verifier = verifier.ok_or(Refused::Invalid("the jwk does not fit the alg"))?;
    let (payload, _) = josekit::jws::deserialize_compact(jwt, verifier.as_ref())
        .map_err(|_| Refused::Invalid("the DPoP proof's signature does not verify"))?;
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(claims)) => Ok((header, claims)),
        _ => Err(Refused::Invalid("the DPoP proof's claims are not a JSON object")),
    }
}

/// JWK members that carry private or symmetric key material (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The JWK SHA-256 thumbprint (RFC 7638 §3): the required members, in lexicographic order, as
/// JSON without white space, hashed and base64url-encoded.
pub fn thumbprint(jwk: &JsonObject) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).map(|v| Value::from(v).to_string());
    let canonical = match jwk.get("kty").and_then(Value::as_str)? {
        "EC" => format!(r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#, member("crv")?, member("x")?, member("y")?),
        "RSA" => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, member("e")?, member("n")?),
        "OKP" => format!(r#"{{"crv":{},"kty":"OKP","x":{}}}"#, member("crv")?, member("x")?),
        _ => return None,
    };
    Some(b64url(&sha256(canonical.as_bytes())))
}

/// Is `htu` the URL `ours`, compared as §4.3 item 9 says: without query and fragment, after
/// syntax- and scheme-based normalisation (case of scheme and host, default port)?
fn same_target(htu: &str, ours: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(ours)) else { return false };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// Is `v` shaped like a JWK thumbprint (a base64url SHA-256: 43 characters)? For `dpop_jkt`.
pub fn is_thumbprint(v: &str) -> bool {
    v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_of_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk: JsonObject = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(thumbprint(&jwk).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn htu_compares_without_query_and_after_normalising() {
        let ours = "https://op.example.com/token";
        assert!(same_target("https://op.example.com/token", ours));
        assert!(same_target("https://OP.example.com:443/token?x=1#f", ours));
        assert!(same_target("HTTPS://op.example.com/token", ours));
        assert!(!same_target("https://op.example.com/userinfo", ours));
        assert!(!same_target("http://op.example.com/token", ours));
        assert!(!same_target("https://op.example.com:8443/token", ours));
        assert!(!same_target("", ours));
    }
}
