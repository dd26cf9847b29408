//! `grant_type=refresh_token` (RFC 6749 §6) with rotation on every use (RFC 9700 §4.14.2).

use super::{TokenResponse, live_user, user_tokens};
use crate::crypto::{hash_secret, random_token};
use crate::domain::{Client, GrantType, parse_scope};
use crate::http::{OAuthError, Params};
use crate::state::AppState;
use crate::store::{AuditEvent, RotateOutcome};

pub async fn exchange(state: &AppState, client: &Client, p: &Params) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client("this client may not use refresh tokens"));
    }
    let presented = p.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let old = hash_secret(presented);
    let now = state.now();
    // A narrower scope may be asked for, never a wider one (§6).
    let requested = p.get("scope").map(parse_scope);
    if let Some(req) = &requested
        && let Some((grant, _)) = state.store.grant_by_refresh_token(&old).await?
        && grant.client_id == client.id
        && !req.iter().all(|s| grant.scopes.contains(s))
    {
        return Err(OAuthError::invalid_scope("the requested scope exceeds what was granted"));
    }
    let new = random_token();
    let grace = state.settings.tokens.refresh_reuse_grace_secs;
    let (grant, may_use_client) = match state
        .store
        .rotate_refresh_token(&old, &hash_secret(&new), &client.id, now, grace)
        .await?
    {
        RotateOutcome::Rotated { grant, may_use_client } => (grant, may_use_client),
        RotateOutcome::Reused => {
            state
                .store
                .audit(AuditEvent::new("refresh_token.reused").client(&client.id).detail("family_revoked", true), now)
                .await;
            return Err(OAuthError::invalid_grant("the refresh token was already used; its grant is revoked"));
        }
        RotateOutcome::Invalid => {
            return Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked"));
        }
    };
    let user = live_user(state, &grant.user_id).await?;
    // A user no longer in any group the client requires keeps no access through old grants
    // (read with the token).
    if !may_use_client {
        return Err(OAuthError::invalid_grant("the user is not in a group this client requires"));
    }
    let scopes = requested.unwrap_or_else(|| grant.scopes.clone());
    user_tokens(state, client, &grant, &user, &scopes, None, Some(new), now).await
}
