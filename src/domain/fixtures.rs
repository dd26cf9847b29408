//! Plain values for unit tests of the rules that take a client and a request.

use super::authorization::{AuthRequest, Prompt, ResponseMode, Target};
use super::{AuthMethod, Client, GrantType};

/// A confidential client `c`, first-party or not, with no minimum acr.
pub fn client(first_party: bool) -> Client {
    Client {
        id: "c".into(),
        name: "C".into(),
        secret_hash: None,
        secret_sealed: None,
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec![],
        first_party,
        min_acr: 1,
        resource_server: false,
        require_pkce: false,
        access_token_format: Default::default(),
        created_at: 0,
        id_token_signed_response_alg: crate::keys::Alg::DEFAULT,
        keys: Default::default(),
        security: Default::default(),
        metadata: Default::default(),
    }
}

/// A request of client `c` for `openid email`, with nothing else asked.
pub fn request() -> AuthRequest {
    AuthRequest {
        client_id: "c".into(),
        target: Target { redirect_uri: "https://rp/cb".into(), response_mode: ResponseMode::Query, state: None },
        scopes: vec!["openid".into(), "email".into()],
        nonce: None,
        code_challenge: None,
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        hint_sub: None,
        acr_values: vec![],
        claims: None,
        dpop_jkt: None,
        pushed: None,
        resource: None,
        ui_locales: None,
    }
}
