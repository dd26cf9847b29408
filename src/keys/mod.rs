//! Signing keys: generation, encryption at rest, the JWKS document, JWS signing and verifying.
//!
//! Keys live in the durable store; the [`KeyRing`] holds them parsed and ready (signing must not
//! parse PEM per request) and rebuilds the JWKS bytes only when the set of keys changes. States
//! follow ARCHITECTURE.md: `next` (published, not signing), `active`, `retired` (published,
//! verifying), `revoked` (gone).

pub mod kek;

use crate::clock::Timestamp;
use crate::crypto::{b64url, b64url_decode, random_id, sha256};
use crate::store::{SigningKeyRow, Store};
use josekit::jwk::Jwk;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier, RS256};
use kek::Kek;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A JSON object: a JWS header or claims set.
pub type JsonObject = Map<String, Value>;

pub const SIGNING_ALGS: &[&str] = &["RS256"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Next, Self::Active, Self::Retired, Self::Revoked].into_iter().find(|k| k.as_str() == s)
    }
    fn published(self) -> bool {
        !matches!(self, Self::Revoked)
    }
}

/// Why a JWS was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signed by a key this provider does not hold")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
}

struct Signing {
    kid: String,
    signer: Box<dyn JwsSigner>,
}

#[derive(Default)]
struct KeySet {
    signing: Option<Signing>,
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    jwks: Arc<String>,
    /// (kid, state) pairs the set was built from, to rebuild only on change.
    fingerprint: Vec<(String, String)>,
}

pub struct KeyRing {
    store: Store,
    kek: Kek,
    set: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Loads the keys, creating the first active RS256 key on a fresh install.
    pub async fn load(store: Store, kek: Kek, now: Timestamp) -> anyhow::Result<Self> {
        let rows = store.signing_keys().await?;
        if !rows.iter().any(|r| r.state == KeyState::Active.as_str()) {
            let row = generate(&kek, KeyState::Active, now)?;
            store.insert_signing_key(&row).await?;
            store
                .audit(
                    crate::store::AuditEvent::new("key.created").detail("kid", row.kid.clone()).detail("alg", "RS256"),
                    now,
                )
                .await;
        }
        let ring = Self { store, kek, set: RwLock::default() };
        ring.refresh().await?;
        Ok(ring)
    }

    /// Re-reads the key records and rebuilds the parsed set if they changed (e.g. a CLI rotation).
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let rows = self.store.signing_keys().await?;
        let fingerprint: Vec<_> = rows.iter().map(|r| (r.kid.clone(), r.state.clone())).collect();
        if self.set.read().unwrap().fingerprint == fingerprint && !fingerprint.is_empty() {
            return Ok(());
        }
        let set = build(&self.kek, &rows, fingerprint)?;
        *self.set.write().unwrap() = Arc::new(set);
        Ok(())
    }

    /// The key-encryption key, for other secrets sealed at rest (TOTP secrets).
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap().clone()
    }

    /// The JWKS document (RFC 7517 §5), built once per key change.
    pub fn jwks(&self) -> Arc<String> {
        self.current().jwks.clone()
    }

    /// Signs `claims` as a compact JWS with the active key; `typ` goes in the header.
    pub fn sign(&self, claims: &Map<String, Value>, typ: Option<&str>) -> anyhow::Result<String> {
        let set = self.current();
        let signing = set.signing.as_ref().ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
        let mut header = JwsHeader::new();
        header.set_key_id(&signing.kid);
        if let Some(t) = typ {
            header.set_token_type(t);
        }
        let payload = serde_json::to_vec(claims)?;
        Ok(josekit::jws::serialize_compact(&payload, &header, signing.signer.as_ref())?)
    }

    /// Verifies a compact JWS made by one of our published keys; returns its header and claims.
    pub fn verify(&self, token: &str) -> Result<(JsonObject, JsonObject), VerifyError> {
        let header = decode_part(token.split('.').next().unwrap_or_default()).ok_or(VerifyError::Malformed)?;
        if token.split('.').count() != 3 {
            return Err(VerifyError::Malformed);
        }
        let kid = header.get("kid").and_then(Value::as_str).ok_or(VerifyError::UnknownKey)?;
        let set = self.current();
        let verifier = set.verifiers.get(kid).ok_or(VerifyError::UnknownKey)?;
        if header.get("alg").and_then(Value::as_str) != Some(verifier.algorithm().name()) {
            return Err(VerifyError::BadSignature);
        }
        let (payload, _) =
            josekit::jws::deserialize_compact(token, verifier.as_ref()).map_err(|_| VerifyError::BadSignature)?;
        match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => Ok((header, claims)),
            _ => Err(VerifyError::Malformed),
        }
    }
}

/// Decodes one base64url JSON part of a JWT without verifying anything.
pub fn decode_part(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&b64url_decode(part)?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the SHA-256 of the access token, for RS256.
pub fn left_half_hash(value: &str) -> String {
    let digest = sha256(value.as_bytes());
    b64url(&digest[..16])
}

/// A new RSA-2048 key for RS256, its private part sealed with the KEK.
pub fn generate(kek: &Kek, state: KeyState, now: Timestamp) -> anyhow::Result<SigningKeyRow> {
    let pair = RsaKeyPair::generate(2048)?;
    let kid = random_id();
    let mut jwk = pair.to_jwk_public_key();
    jwk.set_key_id(&kid);
    jwk.set_algorithm("RS256");
    jwk.set_key_use("sig");
    let public_jwk = serde_json::to_string(jwk.as_ref())?;
    let private_enc = kek.seal(&kid, &pair.to_pem_private_key());
    Ok(SigningKeyRow {
        kid,
        alg: "RS256".into(),
        state: state.as_str().into(),
        public_jwk,
        private_enc,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retires_at: None,
    })
}

fn build(kek: &Kek, rows: &[SigningKeyRow], fingerprint: Vec<(String, String)>) -> anyhow::Result<KeySet> {
    let mut set = KeySet { fingerprint, ..Default::default() };
    let mut published = Vec::new();
    for row in rows {
        let state = KeyState::parse(&row.state).unwrap_or(KeyState::Revoked);
        if !state.published() || row.alg != "RS256" {
            continue;
        }
        let jwk = Jwk::from_bytes(row.public_jwk.as_bytes())?;
        set.verifiers.insert(row.kid.clone(), Box::new(RS256.verifier_from_jwk(&jwk)?));
        published.push(serde_json::from_str::<Value>(&row.public_jwk)?);
        if state == KeyState::Active {
            let pem = kek.open(&row.kid, &row.private_enc)?;
            set.signing = Some(Signing { kid: row.kid.clone(), signer: Box::new(RS256.signer_from_pem(&pem)?) });
        }
    }
    set.jwks = Arc::new(serde_json::json!({ "keys": published }).to_string());
    Ok(set)
}
