//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4): the device polls
//! until the person has answered; once approved, the tokens are issued once. The grant is the
//! device's own, tied to no browser session: signing out on the phone that approved it does not
//! sign the television out (revoking the grant does, as does the user's account page).

use super::{Sender, TokenResponse, bound_refresh, user_tokens, written_for};
use crate::crypto::{ordered_id, refresh_token, refresh_token_key};
use crate::domain::{Client, Grant, GrantType};
use crate::http::{OAuthError, Params};
use crate::oidc::device::{self, Decision};
use crate::state::AppState;
use crate::store::{AuditEvent, NewGrant};

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    sender: Sender<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client("this client may not use the device authorization grant"));
    }
    let device_code = p.get("device_code").ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    let request = device::redeem(state, client, device_code).await?;
    let Decision::Approved { user_id, auth_time, acr, amr } = request.decision else {
        return Err(OAuthError::invalid_grant("the device code was not approved"));
    };
    let now = state.now();
    let offline = request.scopes.iter().any(|s| s == "offline_access") && client.allows(GrantType::RefreshToken);
    let grant = Grant {
        id: ordered_id(state.clock.now_ms()),
        client_id: client.id.clone(),
        user_id,
        session_id: None,
        scopes: request.scopes,
        claims: None,
        auth_time,
        acr,
        amr,
        offline,
        created_at: now,
        expires_at: now
            + if offline { state.settings.tokens.refresh_token_ttl } else { state.settings.tokens.session_ttl },
        revoked_at: None,
        dpop_jkt: bound_refresh(client, sender.dpop),
        cert_x5t: bound_refresh(client, sender.x5t),
        resource: None,
    };
    let refresh = offline.then(|| refresh_token(state.clock.now_ms()));
    let refresh_hash = refresh.as_deref().map(refresh_token_key);
    // No session to outlive: always written.
    let written =
        state.store.insert_grant(NewGrant { grant: &grant, refresh_hash: refresh_hash.as_deref() }, now).await?;
    let user = written_for(written)?;
    state.store.audit(AuditEvent::new("device.tokens_issued").client(&client.id).user(&user.id), now).await;
    user_tokens(state, client, &grant, &user, &grant.scopes, None, refresh, sender, now).await
}
