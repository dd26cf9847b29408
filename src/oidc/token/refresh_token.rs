//! `grant_type=refresh_token` (RFC 6749 §6) with rotation on every use (RFC 9700 §4.14.2).

use super::{Sender, TokenResponse, user_tokens};
use crate::crypto::{refresh_token, refresh_token_key};
use crate::domain::{Client, Grant, GrantType, parse_scope};
use crate::http::{OAuthError, Params};
use crate::state::AppState;
use crate::store::{AuditEvent, RefreshToken, RotateOutcome, Rotation};

/// How long a FAPI 2.0 client's rotated refresh token still works (Security Profile
/// §5.3.2.1-9).
const FAPI2_REFRESH_GRACE: i64 = 60;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    sender: Sender<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client("this client may not use refresh tokens"));
    }
    let presented = p.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let old = refresh_token_key(presented);
    let now = state.now();
    let requested = p.get("scope").map(parse_scope);
    let new = refresh_token(state.clock.now_ms());
    let new_hash = refresh_token_key(&new);
    // A request for the whole grant's scope (the usual one) may be rotated by the read itself,
    // on the conditions checked below; one that is not is checked and rotated after it.
    let at_once = requested.is_none().then(|| Rotation {
        new: &new_hash,
        client_id: &client.id,
        dpop_jkt: sender.dpop,
        x5t: sender.x5t,
        resource: p.get("resource"),
        now,
    });
    let (token, rotated) = match state.store.refresh_token_rotating(&old, at_once).await? {
        Some((t, rotated)) if t.grant.client_id == client.id => (t, rotated),
        _ => return Err(invalid()),
    };
    if !rotated {
        // Checked before the token is rotated, so a refused request spends nothing.
        check(p, sender, requested.as_deref(), &token.grant)?;
        rotate(state, client, &old, &token, &new_hash, now).await?;
    }
    let grant = &token.grant;
    // The user, read with the token, is still active.
    super::check_active(&token.user)?;
    // A user no longer in any group the client requires keeps no access through old grants
    // (read with the token).
    if !token.may_use_client {
        return Err(OAuthError::invalid_grant("the user is not in a group this client requires"));
    }
    let scopes = requested.unwrap_or_else(|| grant.scopes.clone());
    user_tokens(state, client, grant, &token.user, &scopes, None, Some(new), sender, now).await
}

/// Whether the request may refresh the grant: its scope, resource and the sender's binding.
/// [`Rotation`] holds the same conditions for the read that rotates at once.
fn check(p: &Params, sender: Sender<'_>, requested: Option<&[String]>, grant: &Grant) -> Result<(), OAuthError> {
    // A narrower scope may be asked for, never a wider one (§6).
    if let Some(req) = requested
        && !req.iter().all(|s| grant.scopes.contains(s))
    {
        return Err(OAuthError::invalid_scope("the requested scope exceeds what was granted"));
    }
    // RFC 8707 §2.2: the grant's resource, no other.
    super::same_resource(p, grant.resource.as_deref())?;
    // RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
    if let Some(bound) = &grant.dpop_jkt {
        match sender.dpop {
            None => return Err(OAuthError::invalid_dpop_proof("this refresh token is bound to a DPoP key")),
            Some(jkt) if jkt != bound => {
                return Err(OAuthError::invalid_grant("the DPoP proof's key is not the refresh token's"));
            }
            Some(_) => {}
        }
    }
    // RFC 8705 §4: a public client's refresh token is bound to its certificate.
    if let Some(bound) = &grant.cert_x5t
        && sender.x5t != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_grant("this refresh token is bound to another client certificate"));
    }
    Ok(())
}

/// Rotates a refresh token its read did not rotate: a reuse revokes the grant.
async fn rotate(
    state: &AppState,
    client: &Client,
    old: &str,
    token: &RefreshToken,
    new_hash: &str,
    now: i64,
) -> Result<(), OAuthError> {
    // FAPI 2.0 §5.3.2.1-9: no rotation "except in extraordinary circumstances", and then the
    // old token stays good for a while (the conformance plan retries it 30 s later).
    let grace = if client.is_fapi2() {
        state.settings.tokens.refresh_reuse_grace_secs.max(FAPI2_REFRESH_GRACE)
    } else {
        state.settings.tokens.refresh_reuse_grace_secs
    };
    match state.store.rotate_refresh_token(old, token, new_hash, &client.id, now, grace).await? {
        RotateOutcome::Rotated => Ok(()),
        RotateOutcome::Reused => {
            state
                .store
                .audit(AuditEvent::new("refresh_token.reused").client(&client.id).detail("family_revoked", true), now)
                .await;
            Err(OAuthError::invalid_grant("the refresh token was already used; its grant is revoked"))
        }
        RotateOutcome::Invalid => Err(invalid()),
    }
}

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}
