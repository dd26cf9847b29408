//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acting for itself.
//! No durable write: the JWT access token is self-contained and names no grant.

use super::{Sender, TokenResponse};
use crate::domain::{Client, GrantType, parse_scope};
use crate::http::{OAuthError, Params};
use crate::oidc::id_token;
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    sender: Sender<'_>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() || !client.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client("this client may not use the client credentials grant"));
    }
    // RFC 8707 §2: a token for a registered resource server, audience-restricted to it.
    let resource = super::resource(state, p).await?;
    // RFC 6749 §4.4.2: scope is optional; without it the client gets what it is registered for
    // (and, for a resource, what that resource takes).
    let scopes = match p.get("scope") {
        None => {
            client.scopes.iter().filter(|s| resource.as_ref().is_none_or(|r| r.scopes.contains(s))).cloned().collect()
        }
        Some(requested) => parse_scope(requested),
    };
    if let Some(s) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(OAuthError::invalid_scope(format!("scope {s} is not registered for this client")));
    }
    if let Some(r) = &resource
        && let Some(s) = scopes.iter().find(|s| !r.scopes.contains(s))
    {
        return Err(OAuthError::invalid_scope(format!("scope {s} is not one of the resource's")));
    }
    let now = state.now();
    let bound = id_token::Binding {
        dpop: sender.dpop,
        x5t: sender.x5t,
        resource: resource.as_ref().map(|r| r.uri.as_str()),
        act: None,
    };
    let access_token =
        id_token::access_token(state, &client.id, client, &scopes, None, &Default::default(), bound, now).await?;
    Ok(TokenResponse {
        access_token,
        token_type: super::token_type(sender.dpop),
        expires_in: state.settings.tokens.access_token_ttl,
        scope: scopes.join(" "),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}
