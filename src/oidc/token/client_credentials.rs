//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acting for itself.
//! No durable write: the JWT access token is self-contained and names no grant.

use super::TokenResponse;
use crate::app::AppState;
use crate::domain::{Client, GrantType, parse_scope};
use crate::http::{OAuthError, Params};
use crate::oidc::id_token;

/// Scopes that only make sense for a user.
const USER_SCOPES: &[&str] = &["openid", "offline_access", "profile", "email", "address", "phone"];

pub async fn exchange(state: &AppState, client: &Client, p: &Params) -> Result<TokenResponse, OAuthError> {
    if client.is_public() || !client.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client("this client may not use the client credentials grant"));
    }
    let scopes = parse_scope(p.get("scope").unwrap_or_default());
    if let Some(s) = scopes.iter().find(|s| USER_SCOPES.contains(&s.as_str())) {
        return Err(OAuthError::invalid_scope(format!(
            "scope {s} needs a user and cannot be granted to a client alone"
        )));
    }
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if scopes.iter().any(|s| !s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)))
    {
        return Err(OAuthError::invalid_scope("the scope is malformed"));
    }
    let now = state.now();
    let access_token = id_token::access_token(state, &client.id, &client.id, &scopes, None, now)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.settings.tokens.access_token_ttl,
        scope: scopes.join(" "),
        refresh_token: None,
        id_token: None,
    })
}
