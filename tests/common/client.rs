//! The relying party's side: registered clients, client authentication, PKCE, token responses.

use super::*;

#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
    /// Registered with `--auth-method client_secret_post`.
    pub post: bool,
}

impl TestClient {
    /// The client's registered authentication method.
    pub fn auth(&self) -> Auth {
        match (&self.secret, self.post) {
            (Some(s), false) => Auth::Basic(self.id.clone(), s.clone()),
            (Some(s), true) => Auth::Post(self.id.clone(), s.clone()),
            (None, _) => Auth::Public(self.id.clone()),
        }
    }
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("confidential client")
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    /// `client_secret_basic`, with RFC 6749 §2.3.1 form-encoding of id and secret.
    Basic(String, String),
    /// `client_secret_post`.
    Post(String, String),
    /// `none`: only `client_id` in the body.
    Public(String),
    /// No client authentication at all.
    Nothing,
}

pub fn basic(id: &str, secret: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn encode_form<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_token();
        let challenge = s256(&verifier);
        Pkce { verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn random_string() -> String {
    random_token()
}

#[derive(Debug, Default)]
pub struct Tokens {
    pub json: Value,
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub nonce: String,
    pub outcome: Option<Outcome>,
}

impl Tokens {
    pub fn from_json(json: Value) -> Tokens {
        Tokens {
            access_token: json["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no access_token in {json}"))
                .to_string(),
            id_token: json["id_token"].as_str().map(str::to_string),
            refresh_token: json["refresh_token"].as_str().map(str::to_string),
            json,
            nonce: String::new(),
            outcome: None,
        }
    }
    pub fn id_token(&self) -> &str {
        self.id_token.as_deref().expect("id_token in the token response")
    }
    pub fn id_claims(&self) -> Value {
        jwt_claims(self.id_token())
    }
    pub fn refresh_token(&self) -> &str {
        self.refresh_token.as_deref().unwrap_or_else(|| panic!("no refresh_token in {}", self.json))
    }
}
