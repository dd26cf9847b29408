//! Signing keys: generation, encryption at rest, the JWKS document, JWS signing and verifying.
//!
//! Keys live in the durable store; the [`KeyRing`] holds them parsed and ready (signing must not
//! parse PEM per request) and rebuilds the JWKS bytes only when the set of keys changes. States
//! follow ARCHITECTURE.md: `next` (published, not signing), `active` (one per algorithm),
//! `retired` (published until its tokens have expired), `revoked` (gone). [`lifecycle`] decides
//! the transitions; [`apply`] writes them. [`client_keys`] verifies what clients sign with
//! their own keys, [`mac`] what they MAC with their secret.

pub mod alg;
pub mod client_keys;
pub mod kek;
pub mod lifecycle;
pub mod mac;
mod verified;

pub use alg::Alg;

use crate::clock::Timestamp;
use crate::crypto::{b64url_decode, random_id, sha256};
use crate::store::{AuditEvent, SigningKeyRow, Store};
use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier};
use kek::Kek;
use lifecycle::Plan;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A JSON object: a JWS header or claims set.
pub type JsonObject = Map<String, Value>;

/// How often each node re-reads the signing keys, so a CLI rotation or revocation reaches every
/// node within seconds. The lifecycle timing rules add it as a margin.
pub const REFRESH: Duration = Duration::from_secs(2);

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
}

/// Whether a key is in the JWKS at `now`: next and active always, retired until `retires_at`.
pub fn is_published(row: &SigningKeyRow, now: Timestamp) -> bool {
    match KeyState::parse(&row.state) {
        Some(KeyState::Next | KeyState::Active) => true,
        Some(KeyState::Retired) => row.retires_at.is_none_or(|t| t > now),
        _ => false,
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
    signing: HashMap<Alg, Signing>,
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    jwks: Arc<String>,
    /// (kid, state, published) triples the set was built from, to rebuild only on change.
    fingerprint: Vec<(String, String, bool)>,
    /// Tokens these keys verified (see [`verified`]).
    verified: verified::Verified,
}

pub struct KeyRing {
    store: Store,
    kek: RwLock<Kek>,
    set: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Loads the keys. On a fresh install it first creates an active and a next key for every
    /// algorithm, so the first rotation activates a key clients have already seen. All
    /// algorithms, not only the default: a key of an algorithm introduced later would sign the
    /// moment it exists, before clients caching the JWKS could have fetched it.
    pub async fn load(store: Store, kek: Kek, now: Timestamp) -> anyhow::Result<Self> {
        let rows = store.signing_keys().await?;
        let mut plan = Plan::default();
        for alg in Alg::ALL {
            plan.create.extend(lifecycle::ensure(&rows, alg).create);
        }
        // When two nodes start at once on an empty store, one creates the keys and the other
        // finds its insert refused; either way the keys exist afterwards.
        apply(&store, &kek, &plan, now, "start").await?;
        let ring = Self { store, kek: RwLock::new(kek), set: RwLock::default() };
        ring.refresh(now).await?;
        Ok(ring)
    }

    /// Re-reads the key records and rebuilds the parsed set if they changed (a CLI rotation, a
    /// retired key reaching `retires_at`).
    pub async fn refresh(&self, now: Timestamp) -> anyhow::Result<()> {
        let rows = self.store.signing_keys().await?;
        let fingerprint: Vec<_> = rows.iter().map(|r| (r.kid.clone(), r.state.clone(), is_published(r, now))).collect();
        if self.set.read().unwrap().fingerprint == fingerprint && !fingerprint.is_empty() {
            return Ok(());
        }
        let kek = self.kek.read().unwrap().clone();
        let set = match build(&kek, &rows, now, fingerprint.clone()) {
            Ok(set) => set,
            // `keys rewrap` may have replaced the KEK file since this node read it.
            Err(e) => match kek.reload() {
                Some(Ok(newer)) => {
                    let set = build(&newer, &rows, now, fingerprint).map_err(|_| e)?;
                    *self.kek.write().unwrap() = newer;
                    set
                }
                _ => return Err(e),
            },
        };
        *self.set.write().unwrap() = Arc::new(set);
        Ok(())
    }

    /// One turn of a node's key loop: rotate what `keys.rotate_every` makes due, then re-read
    /// the keys. Every node runs it; the conditional transaction of [`apply`] lets exactly one
    /// of them rotate, and the others find the rotation done.
    pub async fn tick(&self, settings: &crate::config::Settings, now: Timestamp) -> anyhow::Result<()> {
        if let Some(every) = settings.keys.rotate_every {
            let rows = self.store.signing_keys().await?;
            let kek = self.kek.read().unwrap().clone();
            for plan in lifecycle::due(&rows, now, lifecycle::Policy::from_settings(settings), every) {
                if !apply(&self.store, &kek, &plan, now, "schedule").await? {
                    tracing::debug!("another node rotated the keys first");
                }
            }
        }
        self.refresh(now).await
    }

    /// Seals another secret kept at rest (a TOTP secret) under the current KEK; `aad` names
    /// what it belongs to, so a ciphertext cannot be moved onto another record.
    pub fn seal_secret(&self, aad: &str, plain: &[u8]) -> String {
        self.kek.read().unwrap().seal(aad, plain)
    }

    /// Opens what [`KeyRing::seal_secret`] sealed, reading the KEK file again when `keys rewrap`
    /// has re-sealed the secret under a KEK this node has not seen yet.
    pub fn open_secret(&self, aad: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let kek = self.kek.read().unwrap().clone();
        kek.open(aad, sealed).or_else(|e| match kek.reload() {
            Some(Ok(newer)) => {
                let plain = newer.open(aad, sealed).map_err(|_| e)?;
                *self.kek.write().unwrap() = newer;
                Ok(plain)
            }
            _ => Err(e),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap().clone()
    }

    /// The JWKS document (RFC 7517 §5), built once per key change.
    pub fn jwks(&self) -> Arc<String> {
        self.current().jwks.clone()
    }

    /// The algorithms that have an active key, in [`Alg::ALL`] order.
    pub fn algs(&self) -> Vec<Alg> {
        let set = self.current();
        Alg::ALL.into_iter().filter(|a| set.signing.contains_key(a)).collect()
    }

    pub fn can_sign(&self, alg: Alg) -> bool {
        self.current().signing.contains_key(&alg)
    }

    /// Signs `claims` as a compact JWS with the active key of `alg`; `typ` goes in the header.
    pub fn sign(&self, claims: &Map<String, Value>, typ: Option<&str>, alg: Alg) -> anyhow::Result<String> {
        let set = self.current();
        let signing = set.signing.get(&alg).ok_or_else(|| anyhow::anyhow!("no active {alg} signing key"))?;
        let mut header = JwsHeader::new();
        header.set_key_id(&signing.kid);
        if let Some(t) = typ {
            header.set_token_type(t);
        }
        let payload = serde_json::to_vec(claims)?;
        Ok(josekit::jws::serialize_compact(&payload, &header, signing.signer.as_ref())?)
    }

    /// Verifies a compact JWS made by one of our published keys; returns its header and claims.
    /// A revoked key is not among them, so what it signed fails here.
    pub fn verify(&self, token: &str) -> Result<(JsonObject, JsonObject), VerifyError> {
        let set = self.current();
        let digest = sha256(token.as_bytes());
        if let Some(checked) = set.verified.get(&digest) {
            return Ok((*checked).clone());
        }
        let checked = verify_with(&set, token)?;
        set.verified.insert(digest, Arc::new(checked.clone()));
        Ok(checked)
    }
}

/// [`KeyRing::verify`] with the keys of `set`, without the cache.
fn verify_with(set: &KeySet, token: &str) -> Result<(JsonObject, JsonObject), VerifyError> {
    let header = decode_part(token.split('.').next().unwrap_or_default()).ok_or(VerifyError::Malformed)?;
    if token.split('.').count() != 3 {
        return Err(VerifyError::Malformed);
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or(VerifyError::UnknownKey)?;
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

/// Decodes one base64url JSON part of a JWT without verifying anything.
pub fn decode_part(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&b64url_decode(part)?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A key record from a private PEM (as [`Alg`] stores it) and its public JWK: the JWK gets
/// the new kid, `alg` and `use`; the private part is sealed with the KEK at once.
pub fn record(
    kek: &Kek,
    alg: Alg,
    private_pem: &[u8],
    mut jwk: Jwk,
    state: KeyState,
    now: Timestamp,
) -> anyhow::Result<SigningKeyRow> {
    let kid = random_id();
    jwk.set_key_id(&kid);
    jwk.set_algorithm(alg.as_str());
    jwk.set_key_use("sig");
    Ok(SigningKeyRow {
        private_enc: kek.seal(&kid, private_pem),
        kid,
        alg: alg.as_str().into(),
        state: state.as_str().into(),
        public_jwk: serde_json::to_string(jwk.as_ref())?,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retires_at: None,
    })
}

/// A new key of `alg` in `state`.
pub fn generate(kek: &Kek, alg: Alg, state: KeyState, now: Timestamp) -> anyhow::Result<SigningKeyRow> {
    let (pem, jwk) = alg.generate()?;
    record(kek, alg, &pem, jwk, state, now)
}

/// Applies a lifecycle plan in one transaction, generating the keys it creates, and records one
/// audit event per key touched. Returns false when another node or command changed the keys
/// first (nothing was written then).
pub async fn apply(store: &Store, kek: &Kek, plan: &Plan, now: Timestamp, by: &str) -> anyhow::Result<bool> {
    if plan.is_empty() {
        return Ok(true);
    }
    // RSA key generation takes a good fraction of a second per key; a first start makes eight
    // keys, so they are made side by side.
    let new = std::thread::scope(|scope| {
        let made: Vec<_> =
            plan.create.iter().map(|(alg, s)| scope.spawn(move || generate(kek, *alg, *s, now))).collect();
        made.into_iter().map(|h| h.join().expect("key generation does not panic")).collect::<anyhow::Result<Vec<_>>>()
    })?;
    commit(store, &plan.changes, &new, now, by).await
}

/// Writes state changes and new keys in one transaction and audits each; false when someone
/// else changed the keys first.
pub async fn commit(
    store: &Store,
    changes: &[crate::store::KeyChange],
    new: &[SigningKeyRow],
    now: Timestamp,
    by: &str,
) -> anyhow::Result<bool> {
    if !store.change_signing_keys(changes, new).await? {
        return Ok(false);
    }
    for c in changes {
        let kind = match KeyState::parse(&c.to) {
            Some(KeyState::Active) => "key.activated",
            Some(KeyState::Retired) => "key.retired",
            _ => "key.revoked",
        };
        let mut event = AuditEvent::new(kind).detail("kid", c.kid.clone()).detail("by", by);
        if let Some(t) = c.retires_at {
            event = event.detail("retires_at", t);
        }
        store.audit(event, now).await;
    }
    for k in new {
        let event = AuditEvent::new("key.created")
            .detail("kid", k.kid.clone())
            .detail("alg", k.alg.clone())
            .detail("state", k.state.clone())
            .detail("by", by);
        store.audit(event, now).await;
    }
    Ok(true)
}

fn build(
    kek: &Kek,
    rows: &[SigningKeyRow],
    now: Timestamp,
    fingerprint: Vec<(String, String, bool)>,
) -> anyhow::Result<KeySet> {
    let mut set = KeySet { fingerprint, ..Default::default() };
    let mut published = Vec::new();
    for row in rows {
        let Some(alg) = Alg::parse(&row.alg) else { continue };
        if !is_published(row, now) {
            continue;
        }
        let jwk = Jwk::from_bytes(row.public_jwk.as_bytes())?;
        set.verifiers.insert(row.kid.clone(), alg.verifier(&jwk)?);
        published.push(serde_json::from_str::<Value>(&row.public_jwk)?);
        if row.state == KeyState::Active.as_str() {
            let pem = kek.open(&row.kid, &row.private_enc)?;
            set.signing.insert(alg, Signing { kid: row.kid.clone(), signer: alg.signer(&pem)? });
        }
    }
    set.jwks = Arc::new(serde_json::json!({ "keys": published }).to_string());
    Ok(set)
}
