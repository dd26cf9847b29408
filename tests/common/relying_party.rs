//! A relying party's own server inside a test: its keys at `/jwks` (rotatable, reads counted),
//! request objects served by reference at `/request/{name}`, any JSON document at `/doc/{name}`
//! (a sector identifier document), and back-channel logout endpoints at `/backchannel/{name}`
//! that record what they receive and can be told to fail first. Tests that need the RP to sign (request
//! objects, `private_key_jwt` assertions) or to be fetched from use it.

use axum::extract::{Path, State};
use axum::http::header;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsHeader, RS256};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The RP's key (kid and pair), what it serves, and how often its JWKS was read.
#[derive(Default)]
pub struct RpInner {
    key: Option<(String, Arc<RsaKeyPair>)>,
    objects: HashMap<String, String>,
    docs: HashMap<String, Value>,
    jwks_reads: usize,
    /// Back-channel logout POSTs by endpoint name: (content type, body, status answered).
    logouts: HashMap<String, Vec<(String, String, u16)>>,
    /// How many more POSTs each endpoint answers 500 before it answers 200.
    fail: HashMap<String, usize>,
}

/// A relying party's server: `/jwks` (its public keys), `/request/{name}` (request objects
/// served as `application/oauth-authz-req+jwt`) and `/doc/{name}` (JSON documents).
#[derive(Clone)]
pub struct Rp {
    pub url: String,
    inner: Arc<Mutex<RpInner>>,
}

impl Rp {
    pub async fn start() -> Rp {
        let inner = Arc::new(Mutex::new(RpInner::default()));
        let rp = Rp { url: String::new(), inner };
        rp.rotate("key-1");
        let router = axum::Router::new()
            .route("/jwks", get(rp_jwks))
            .route("/request/{name}", get(rp_object))
            .route("/doc/{name}", get(rp_doc))
            .route("/backchannel/{name}", axum::routing::post(rp_backchannel))
            .with_state(rp.inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Rp { url, ..rp }
    }

    /// Replaces the key with a new one named `kid`, as an RP rotating its keys does.
    pub fn rotate(&self, kid: &str) {
        self.inner.lock().unwrap().key = Some((kid.into(), Arc::new(RsaKeyPair::generate(2048).unwrap())));
    }

    pub fn key(&self) -> (String, Arc<RsaKeyPair>) {
        self.inner.lock().unwrap().key.clone().unwrap()
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.url)
    }

    /// The public JWK Set, as registered inline: one RS256 key, `use: sig`, and no kid when
    /// `with_kid` is false (as the conformance suite registers it).
    pub fn jwks(&self, with_kid: bool) -> Value {
        let (kid, key) = self.key();
        let mut jwk = key.to_jwk_public_key();
        if with_kid {
            jwk.set_key_id(kid);
        }
        jwk.set_key_use("sig");
        jwk.set_algorithm("RS256");
        json!({ "keys": [serde_json::to_value(jwk.as_ref()).unwrap()] })
    }

    pub fn jwks_reads(&self) -> usize {
        self.inner.lock().unwrap().jwks_reads
    }

    /// Serves `jwt` at a new URL and returns it.
    pub fn serve(&self, jwt: &str) -> String {
        let name = alnum10();
        self.inner.lock().unwrap().objects.insert(name.clone(), jwt.into());
        format!("{}/request/{name}", self.url)
    }

    /// Serves the JSON `doc` at a new URL and returns it.
    pub fn serve_doc(&self, doc: Value) -> String {
        let name = alnum10();
        self.inner.lock().unwrap().docs.insert(name.clone(), doc);
        format!("{}/doc/{name}", self.url)
    }

    /// A back-channel logout endpoint of this RP named `name`.
    pub fn backchannel_uri(&self, name: &str) -> String {
        format!("{}/backchannel/{name}", self.url)
    }

    /// Makes the endpoint `name` answer 500 to its next `n` POSTs.
    pub fn fail_first(&self, name: &str, n: usize) {
        self.inner.lock().unwrap().fail.insert(name.into(), n);
    }

    /// What the endpoint `name` received: (content type, body, status it answered).
    pub fn logouts(&self, name: &str) -> Vec<(String, String, u16)> {
        self.inner.lock().unwrap().logouts.get(name).cloned().unwrap_or_default()
    }

    /// The logout tokens the endpoint `name` accepted (answered 200).
    pub fn accepted_logout_tokens(&self, name: &str) -> Vec<String> {
        self.logouts(name)
            .into_iter()
            .filter(|(_, _, status)| *status == 200)
            .filter_map(|(_, body, _)| {
                url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
            })
            .collect()
    }

    /// `claims` signed RS256 with the current key; the kid in the header only when asked (the
    /// conformance suite sends none).
    pub fn sign(&self, claims: &Value, with_kid: bool) -> String {
        let (kid, key) = self.key();
        sign_with(&key, with_kid.then_some(kid.as_str()), claims)
    }

    /// A client assertion (RFC 7523 §3) for `client_id` with `aud`, from `now`, living `ttl`
    /// seconds, signed without a kid.
    pub fn assertion(&self, client_id: &str, aud: &str, now: i64, ttl: i64) -> String {
        let jti = alnum10();
        self.sign(
            &json!({ "iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "iat": now, "exp": now + ttl }),
            false,
        )
    }
}

pub fn sign_with(key: &RsaKeyPair, kid: Option<&str>, claims: &Value) -> String {
    let mut h = JwsHeader::new();
    h.set_token_type("JWT");
    if let Some(k) = kid {
        h.set_key_id(k);
    }
    let signer = RS256.signer_from_pem(key.to_pem_private_key()).unwrap();
    josekit::jws::serialize_compact(claims.to_string().as_bytes(), &h, &signer).unwrap()
}

async fn rp_jwks(State(inner): State<Arc<Mutex<RpInner>>>) -> axum::Json<Value> {
    let mut inner = inner.lock().unwrap();
    inner.jwks_reads += 1;
    let (kid, key) = inner.key.clone().unwrap();
    let mut jwk = key.to_jwk_public_key();
    jwk.set_key_id(kid);
    jwk.set_key_use("sig");
    jwk.set_algorithm("RS256");
    axum::Json(json!({ "keys": [serde_json::to_value(jwk.as_ref()).unwrap()] }))
}

async fn rp_object(State(inner): State<Arc<Mutex<RpInner>>>, Path(name): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match inner.lock().unwrap().objects.get(&name) {
        Some(jwt) => ([(header::CONTENT_TYPE, "application/oauth-authz-req+jwt")], jwt.clone()).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn rp_doc(State(inner): State<Arc<Mutex<RpInner>>>, Path(name): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match inner.lock().unwrap().docs.get(&name) {
        Some(doc) => axum::Json(doc.clone()).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn rp_backchannel(
    State(inner): State<Arc<Mutex<RpInner>>>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut inner = inner.lock().unwrap();
    let fail = inner.fail.get(&name).copied().unwrap_or(0);
    let status = if fail > 0 {
        inner.fail.insert(name.clone(), fail - 1);
        500
    } else {
        200
    };
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    inner.logouts.entry(name).or_default().push((media, body, status));
    // Back-Channel Logout §2.8: the RP answers with no caching.
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    (status, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

pub fn unsigned(claims: &Value) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

pub fn alnum10() -> String {
    super::random_string().chars().filter(char::is_ascii_alphanumeric).take(10).collect()
}
