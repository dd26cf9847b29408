//! JWS MACs (RFC 7518 §3.2): HS256, HS384 and HS512, keyed by a client's secret, for
//! `client_secret_jwt` assertions (OIDC Core §9). Latchkey never signs with them; it only checks
//! what a client made with the secret both hold.
//!
//! josekit computes the MAC; the comparison is ours, in constant time (josekit's HMAC verifier
//! compares with `!=`, which would tell an attacker, byte by byte, how much of a forged MAC is
//! right).

use super::{JsonObject, decode_part};
use crate::crypto::{b64url_decode, constant_time_eq};
use josekit::jws::{HS256, HS384, HS512, JwsSigner};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacAlg {
    Hs256,
    Hs384,
    Hs512,
}

impl MacAlg {
    pub const ALL: [MacAlg; 3] = [Self::Hs256, Self::Hs384, Self::Hs512];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The MAC of `input` under `key`; none when the key is shorter than the hash (RFC 7518
    /// §3.2: "a key of the same size as the hash output ... or larger MUST be used").
    fn mac(self, key: &[u8], input: &[u8]) -> Option<Vec<u8>> {
        let signer = match self {
            Self::Hs256 => HS256.signer_from_bytes(key),
            Self::Hs384 => HS384.signer_from_bytes(key),
            Self::Hs512 => HS512.signer_from_bytes(key),
        }
        .ok()?;
        signer.sign(input).ok()
    }
}

/// Why a MAC'd JWT was refused.
#[derive(Debug, thiserror::Error)]
pub enum MacError {
    #[error("the JWT is malformed")]
    Malformed,
    #[error("the JWT is not MAC'd with an algorithm allowed here")]
    AlgNotAllowed,
    #[error("the MAC does not verify")]
    BadMac,
}

/// Verifies a compact JWS MAC'd with `secret` (its UTF-8 octets are the key, OIDC Core §16.19)
/// under an algorithm `allowed` accepts; returns its claims.
pub fn verify(token: &str, secret: &str, allowed: impl Fn(MacAlg) -> bool) -> Result<JsonObject, MacError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MacError::Malformed);
    };
    let h = decode_part(header).ok_or(MacError::Malformed)?;
    // Only an HS algorithm: `none`, or one of the asymmetric ones (whose "key" an attacker
    // could take to be the secret), never.
    let alg = h.get("alg").and_then(Value::as_str).and_then(MacAlg::parse).ok_or(MacError::AlgNotAllowed)?;
    if !allowed(alg) {
        return Err(MacError::AlgNotAllowed);
    }
    let presented = b64url_decode(mac).ok_or(MacError::Malformed)?;
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let expected = alg.mac(secret.as_bytes(), signing_input.as_bytes()).ok_or(MacError::BadMac)?;
    if !constant_time_eq(&expected, &presented) {
        return Err(MacError::BadMac);
    }
    decode_part(payload).ok_or(MacError::Malformed)
}

impl std::fmt::Display for MacAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;

    fn mac(alg: &str, key: &[u8], claims: &str) -> String {
        let h = JwsHeader::new();
        let signer: Box<dyn JwsSigner> = match alg {
            "HS256" => Box::new(HS256.signer_from_bytes(key).unwrap()),
            "HS384" => Box::new(HS384.signer_from_bytes(key).unwrap()),
            _ => Box::new(HS512.signer_from_bytes(key).unwrap()),
        };
        josekit::jws::serialize_compact(claims.as_bytes(), &h, signer.as_ref()).unwrap()
    }

    #[test]
    fn each_alg_verifies_with_its_secret_and_no_other() {
        let secret = "s".repeat(86);
        for alg in MacAlg::ALL {
            let jwt = mac(alg.as_str(), secret.as_bytes(), r#"{"iss":"c"}"#);
            assert_eq!(verify(&jwt, &secret, |_| true).unwrap()["iss"], "c", "{alg}");
            assert!(matches!(verify(&jwt, &"t".repeat(86), |_| true), Err(MacError::BadMac)), "{alg}");
            assert!(matches!(verify(&jwt, &secret, |a| a != alg), Err(MacError::AlgNotAllowed)), "{alg}");
        }
        // A key shorter than the hash (RFC 7518 §3.2) verifies nothing.
        assert!(MacAlg::Hs512.mac(&[7; 63], b"x").is_none());
        assert!(MacAlg::Hs512.mac(&[7; 64], b"x").is_some());
    }

    #[test]
    fn unsigned_and_malformed_tokens_are_refused() {
        let none = format!("{}.{}.", crate::crypto::b64url(br#"{"alg":"none"}"#), crate::crypto::b64url(b"{}"));
        assert!(matches!(verify(&none, "secret", |_| true), Err(MacError::AlgNotAllowed)));
        assert!(matches!(verify("a.b", "secret", |_| true), Err(MacError::Malformed)));
        assert!(matches!(verify("a.b.c.d", "secret", |_| true), Err(MacError::Malformed)));
    }
}
