//! The authorization request (OIDC Core §3.1.2.1) once `oidc::authorize` has validated it: what
//! a login flow serves and what an authorization code is bound to. Plain data, shared by the
//! protocol endpoint that validates and answers it and the login engine that signs the user in.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

impl ResponseMode {
    pub const SUPPORTED: [&str; 2] = ["query", "form_post"];
}

/// Where an authorization response goes, once known to be safe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request, kept in the login flow and bound into the code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub target: Target,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`: the user the client expects.
    pub hint_sub: Option<String>,
    pub acr_values: Vec<String>,
    /// The `claims` parameter (OIDC Core §5.5), re-serialised.
    pub claims: Option<String>,
    /// The thumbprint of the DPoP key the code is bound to (RFC 9449 §10): `dpop_jkt`, or the
    /// key of the proof sent with the pushed request.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// The hash of the pushed request's reference (RFC 9126), spent when a code is issued.
    #[serde(default)]
    pub pushed: Option<String>,
    /// The resource server the tokens are for (RFC 8707): their `aud`.
    #[serde(default)]
    pub resource: Option<String>,
    /// The languages the end-user prefers for the pages (OIDC Core §3.1.2.1), as sent.
    #[serde(default)]
    pub ui_locales: Option<String>,
}

impl AuthRequest {
    pub fn is_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}
