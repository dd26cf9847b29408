//! A relying party that caches the JWKS as HTTP caching allows (refetching only once the
//! `Cache-Control: max-age` has passed, never on an unknown `kid`) and verifies JWS signatures
//! with the `openidconnect` crate, independently of the provider's josekit code.

use super::*;
use std::time::Instant;

pub const ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

pub struct CachingRp {
    jwks: Value,
    fetched: Instant,
    max_age: Duration,
    pub fetches: usize,
    pub verified: usize,
}

fn core_alg(alg: &str) -> CoreJwsSigningAlgorithm {
    match alg {
        "RS256" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "PS256" => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        "EdDSA" => CoreJwsSigningAlgorithm::EdDsa,
        other => panic!("unexpected alg {other}"),
    }
}

impl CachingRp {
    pub async fn new(server: &Server) -> CachingRp {
        let mut rp =
            CachingRp { jwks: Value::Null, fetched: Instant::now(), max_age: Duration::ZERO, fetches: 0, verified: 0 };
        rp.fetch(server).await;
        rp
    }

    async fn fetch(&mut self, server: &Server) {
        let r = server.get("/jwks").await;
        assert_eq!(r.status, 200, "jwks: {r:?}");
        let cc = r.header("cache-control").unwrap_or_else(|| panic!("JWKS without Cache-Control: {r:?}"));
        let secs = cc
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no max-age in {cc}"));
        self.jwks = r.json();
        self.max_age = Duration::from_secs(secs);
        self.fetched = Instant::now();
        self.fetches += 1;
        for k in self.jwks["keys"].as_array().unwrap() {
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(k.get(private).is_none(), "private member {private} in the JWKS: {k}");
            }
        }
    }

    /// The JWKS as this RP holds it, refetched only when its copy is stale.
    pub async fn jwks(&mut self, server: &Server) -> &Value {
        if self.fetched.elapsed() >= self.max_age {
            self.fetch(server).await;
        }
        &self.jwks
    }

    /// Verifies `jwt` against the cached JWKS; panics with the reason when it does not verify.
    /// Returns (header, claims).
    pub async fn verify(&mut self, server: &Server, jwt: &str) -> (Value, Value) {
        let jwks = self.jwks(server).await.clone();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "not a JWS: {jwt}");
        let header = b64url_json(parts[0]);
        let alg = header["alg"].as_str().unwrap_or_else(|| panic!("no alg: {header}"));
        let kid = header["kid"].as_str().unwrap_or_else(|| panic!("no kid: {header}"));
        let keys: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().filter(|k| k["kid"] == kid).collect();
        assert_eq!(
            keys.len(),
            1,
            "the cached JWKS (fetched {:?} ago) has no key {kid}: {jwks}",
            self.fetched.elapsed()
        );
        assert_eq!(keys[0]["alg"], alg, "alg of key {kid}");
        let jwk: CoreJsonWebKey = serde_json::from_value(keys[0].clone()).expect("parse JWK");
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature base64url");
        let message = format!("{}.{}", parts[0], parts[1]);
        jwk.verify_signature(&core_alg(alg), message.as_bytes(), &sig)
            .unwrap_or_else(|e| panic!("signature by {kid} ({alg}) does not verify: {e:?}"));
        self.verified += 1;
        (header, jwt_claims(jwt))
    }
}

/// `at_hash` as OIDC Core §3.1.3.6 computes it for `alg`: SHA-512 for EdDSA (Ed25519).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    if alg == "EdDSA" {
        let d = sha2::Sha512::digest(access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&d[..32])
    } else {
        half_hash(access_token)
    }
}

/// A server with a key-encryption key of its own (`LATCHKEY_KEYS_DIR` in a fresh temporary
/// directory, which the caller removes), for tests that read or replace it.
pub fn start_with_own_keys_dir(env: &[(&str, &str)]) -> (Server, PathBuf) {
    let keys_dir = std::env::temp_dir().join(format!("latchkey-test-keys-{}", random_string()));
    let dir = keys_dir.to_str().unwrap().to_string();
    let mut all = vec![("LATCHKEY_KEYS_DIR", dir.as_str())];
    all.extend_from_slice(env);
    (Server::start_with(&all), keys_dir)
}

/// `keys list --json` as a list of (kid, alg, state).
pub fn key_states(server: &Server) -> Vec<(String, String, String)> {
    let v = server.cli(&["keys", "list", "--json"]);
    v.as_array()
        .unwrap_or_else(|| panic!("keys list --json: {v}"))
        .iter()
        .map(|k| {
            let s = |n: &str| k[n].as_str().unwrap_or_else(|| panic!("{n} in {k}")).to_string();
            (s("kid"), s("alg"), s("state"))
        })
        .collect()
}

/// The kid of the key of `alg` in `state`.
pub fn kid_in(server: &Server, alg: &str, state: &str) -> String {
    key_states(server)
        .into_iter()
        .find(|(_, a, s)| a == alg && s == state)
        .unwrap_or_else(|| panic!("no {state} {alg} key: {:?}", key_states(server)))
        .0
}
