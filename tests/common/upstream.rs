//! Small real upstream identity providers, run inside the test process on 127.0.0.1:0: an
//! OpenID provider with its own RSA key (discovery, JWKS, authorize, token with PKCE, userinfo)
//! and a Graph-API stand-in for Facebook. Each can be told to misbehave. Their authorization
//! endpoints consent at once: they redirect straight back with a code and the `state`.

use super::*;
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};

/// How the upstream misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehave {
    Nothing,
    /// The person says no: `error=access_denied`.
    Deny,
    WrongNonce,
    /// Signs the ID token with a key that is not in its JWKS.
    ForeignKey,
    WrongAudience,
    WrongIssuer,
    Expired,
}

/// The person signed in at the upstream.
#[derive(Clone, Debug)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: String,
    pub amr: Option<Vec<String>>,
}

impl Person {
    pub fn new(sub: &str, email: &str) -> Person {
        Person {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: true,
            name: "Upstream Person".into(),
            amr: Some(vec!["pwd".into()]),
        }
    }
}

pub const CLIENT_ID: &str = "latchkey-at-upstream";
pub const CLIENT_SECRET: &str = "upstream-secret";

struct Grant {
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
}

struct Inner {
    issuer: String,
    key: RsaKeyPair,
    foreign: RsaKeyPair,
    person: Person,
    misbehave: Misbehave,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Person>,
    /// Every authorization request, for the tests to look at.
    pub requests: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Upstream {
    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    async fn start(facebook: bool) -> Upstream {
        let inner = Arc::new(Mutex::new(Inner {
            issuer: String::new(),
            key: RsaKeyPair::generate(2048).unwrap(),
            foreign: RsaKeyPair::generate(2048).unwrap(),
            person: Person::new("upstream-sub-1", "person@upstream.example"),
            misbehave: Misbehave::Nothing,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            requests: Vec::new(),
        }));
        let router = if facebook {
            axum::Router::new()
                .route("/dialog/oauth", get(authorize))
                .route("/oauth/access_token", post(facebook_token))
                .route("/me", get(graph_me))
        } else {
            axum::Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route("/jwks", get(jwks))
                .route("/authorize", get(authorize))
                .route("/token", post(token))
                .route("/userinfo", get(userinfo))
        };
        let url = Upstream::serve(router.with_state(inner.clone())).await;
        inner.lock().unwrap().issuer = url.clone();
        Upstream { url, inner }
    }

    /// An OpenID provider.
    pub async fn oidc() -> Upstream {
        Upstream::start(false).await
    }

    /// A Facebook stand-in: login dialog, token endpoint, Graph API `/me`.
    pub async fn facebook() -> Upstream {
        Upstream::start(true).await
    }

    pub fn misbehave(&self, m: Misbehave) {
        self.inner.lock().unwrap().misbehave = m;
    }

    pub fn sign_in_as(&self, person: Person) {
        self.inner.lock().unwrap().person = person;
    }

    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The `[[upstream]]` table for this provider, id `id`.
    pub fn config(&self, id: &str, kind: &str, allow_registration: bool) -> String {
        let endpoints = if kind == "facebook" {
            format!(
                "authorization_url = \"{0}/dialog/oauth\"\ntoken_url = \"{0}/oauth/access_token\"\ngraph_url = \"{0}\"\n",
                self.url
            )
        } else {
            format!("issuer = \"{}\"\n", self.url)
        };
        format!(
            "[[upstream]]\nid = \"{id}\"\nkind = \"{kind}\"\ndisplay_name = \"Upstream {id}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"{CLIENT_SECRET}\"\nallow_registration = {allow_registration}\n{endpoints}\n"
        )
    }
}

/// Writes `toml` to a file of its own and returns the environment that makes Latchkey (server
/// and CLI) read it.
pub fn config_env(toml: &str) -> (PathBuf, Vec<(String, String)>) {
    let path = std::env::temp_dir().join(format!("latchkey-upstream-{}.toml", random_token()));
    std::fs::write(&path, toml).unwrap();
    let env = vec![("LATCHKEY_CONFIG".to_string(), path.display().to_string())];
    (path, env)
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn discovery(State(s): Shared) -> Json<Value> {
    let iss = s.lock().unwrap().issuer.clone();
    Json(serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(s): Shared) -> Json<Value> {
    let mut jwk = s.lock().unwrap().key.to_jwk_public_key();
    jwk.set_key_id("upstream-key");
    jwk.set_algorithm("RS256");
    jwk.set_key_use("sig");
    Json(serde_json::json!({ "keys": [serde_json::to_value(jwk.as_ref()).unwrap()] }))
}

/// Consents at once: back to `redirect_uri` with a code (or `access_denied`) and the state.
async fn authorize(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    s.requests.push(q.clone());
    let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri and state required").into_response();
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "unknown client or no PKCE").into_response();
    }
    let mut back = Url::parse(redirect).unwrap();
    if s.misbehave == Misbehave::Deny {
        back.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", state);
        return Redirect::to(back.as_str()).into_response();
    }
    let code = random_token();
    let grant = Grant {
        redirect_uri: redirect.clone(),
        nonce: q.get("nonce").cloned(),
        challenge: q.get("code_challenge").cloned().unwrap_or_default(),
    };
    s.codes.insert(code.clone(), grant);
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
    Redirect::to(back.as_str()).into_response()
}

fn token_error() -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": "invalid_grant" }))).into_response()
}

/// The grant behind `code` if the verifier and redirect URI match it (RFC 7636 §4.6), taken once.
fn redeem(s: &mut Inner, form: &HashMap<String, String>) -> Option<Grant> {
    let grant = s.codes.remove(form.get("code")?)?;
    let verifier = form.get("code_verifier")?;
    (s256(verifier) == grant.challenge && form.get("redirect_uri") == Some(&grant.redirect_uri)).then_some(grant)
}

async fn token(State(s): Shared, headers: AxumHeaders, Form(form): Form<HashMap<String, String>>) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth != basic(CLIENT_ID, CLIENT_SECRET) {
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({ "error": "invalid_client" }))).into_response();
    }
    let mut s = s.lock().unwrap();
    let Some(grant) = redeem(&mut s, &form) else { return token_error() };
    let p = s.person.clone();
    let now = now();
    let mut c = JwtPayload::new();
    let iss = if s.misbehave == Misbehave::WrongIssuer { "https://impostor.example".into() } else { s.issuer.clone() };
    c.set_issuer(iss);
    c.set_subject(&p.sub);
    c.set_audience(vec![if s.misbehave == Misbehave::WrongAudience { "someone-else" } else { CLIENT_ID }]);
    let exp = if s.misbehave == Misbehave::Expired { now - 600 } else { now + 300 };
    c.set_expires_at(&(UNIX_EPOCH + Duration::from_secs(exp as u64)));
    c.set_issued_at(
        &(UNIX_EPOCH + Duration::from_secs((now - if s.misbehave == Misbehave::Expired { 900 } else { 0 }) as u64)),
    );
    let nonce = if s.misbehave == Misbehave::WrongNonce { Some("not-the-nonce".into()) } else { grant.nonce };
    if let Some(n) = nonce {
        c.set_claim("nonce", Some(Value::String(n))).unwrap();
    }
    if let Some(e) = &p.email {
        c.set_claim("email", Some(Value::String(e.clone()))).unwrap();
        c.set_claim("email_verified", Some(Value::Bool(p.email_verified))).unwrap();
    }
    c.set_claim("name", Some(Value::String(p.name.clone()))).unwrap();
    c.set_claim("given_name", Some(Value::String("Upstream".into()))).unwrap();
    if let Some(amr) = &p.amr {
        c.set_claim("amr", Some(serde_json::json!(amr))).unwrap();
    }
    let key = if s.misbehave == Misbehave::ForeignKey { &s.foreign } else { &s.key };
    let signer = RS256.signer_from_der(key.to_der_private_key()).unwrap();
    let mut h = JwsHeader::new();
    h.set_token_type("JWT");
    h.set_key_id("upstream-key");
    let id_token = jwt::encode_with_signer(&c, &h, &signer).unwrap();
    let access_token = random_token();
    s.tokens.insert(access_token.clone(), p);
    Json(serde_json::json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
    }))
    .into_response()
}

fn bearer_person(s: &Shared, headers: &AxumHeaders) -> Option<Person> {
    let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?;
    s.lock().unwrap().tokens.get(token).cloned()
}

async fn userinfo(s: Shared, headers: AxumHeaders) -> Response {
    match bearer_person(&s, &headers) {
        Some(p) => Json(serde_json::json!({ "sub": p.sub, "email": p.email, "name": p.name })).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Facebook's token endpoint: client secret in the form, and PKCE.
async fn facebook_token(State(s): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    let client_ok = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !client_ok {
        return token_error();
    }
    if redeem(&mut s, &form).is_none() {
        return token_error();
    }
    let access_token = random_token();
    let p = s.person.clone();
    s.tokens.insert(access_token.clone(), p);
    Json(serde_json::json!({ "access_token": access_token, "token_type": "bearer", "expires_in": 5000 }))
        .into_response()
}

/// `appsecret_proof` as Facebook computes it: HMAC-SHA256 of the access token under the app
/// secret, in hex (computed here with OpenSSL, apart from the server's own code).
fn appsecret_proof(access_token: &str) -> String {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let key = PKey::hmac(CLIENT_SECRET.as_bytes()).unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.update(access_token.as_bytes()).unwrap();
    signer.sign_to_vec().unwrap().iter().map(|b| format!("{b:02x}")).collect()
}

/// Graph API `/me?fields=…` for the bearer of an access token, which must come with its
/// `appsecret_proof` (the app has "Require App Secret" on).
async fn graph_me(s: Shared, headers: AxumHeaders, Query(q): Query<HashMap<String, String>>) -> Response {
    let refused = || {
        (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": { "type": "OAuthException" } }))).into_response()
    };
    let Some(p) = bearer_person(&s, &headers) else { return refused() };
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()?.strip_prefix("Bearer ")).unwrap_or_default();
    if q.get("appsecret_proof") != Some(&appsecret_proof(token)) {
        return refused();
    }
    let fields = q.get("fields").cloned().unwrap_or_default();
    let mut me = serde_json::json!({
        "id": p.sub,
        "name": p.name,
        "first_name": "Upstream",
        "last_name": "Person",
        "picture": { "data": { "url": "https://graph.example/picture.jpg" } },
    });
    if let Some(e) = &p.email {
        me["email"] = Value::String(e.clone());
    }
    let me: serde_json::Map<String, Value> = me
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| fields.split(',').any(|f| f == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Json(Value::Object(me)).into_response()
}

/// An address nothing listens on.
pub async fn unreachable_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    url
}

impl Browser {
    /// From the sign-in page PAGE (or a redirect to it), presses "Continue with Upstream ID",
    /// lets the upstream answer and returns what Latchkey's callback answered.
    pub async fn federate(&self, page: &Resp, id: &str) -> Resp {
        let page = if page.is_redirect() { self.follow(page).await } else { page.clone() };
        let form = page
            .forms()
            .into_iter()
            .find(|f| f.action.ends_with(&format!("/upstream/{id}")))
            .unwrap_or_else(|| panic!("no button for {id}: {page:?}"));
        let to_upstream = self.submit(&form, &[]).await;
        assert_eq!(to_upstream.status, 303, "{to_upstream:?}");
        let at_upstream = self.get(to_upstream.location().unwrap()).await;
        assert!(at_upstream.is_redirect(), "the upstream answers with a redirect: {at_upstream:?}");
        let callback = at_upstream.location().unwrap().to_string();
        assert!(self.is_internal(&callback), "back to Latchkey: {at_upstream:?}");
        self.get(&callback).await
    }
}
