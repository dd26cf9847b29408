//! `grant_type=authorization_code` (RFC 6749 §4.1.3, OIDC Core §3.1.3.2, RFC 7636 §4.6).

use super::{Sender, TokenResponse, bound_refresh, user_tokens, written_for};
use crate::crypto::{b64url, constant_time_eq, refresh_token, refresh_token_key, sha256};
use crate::domain::{Client, Grant, GrantType};
use crate::http::{OAuthError, Params};
use crate::oidc::authorize::code::{self, Redeemed};
use crate::oidc::authorize::request::is_pkce_value;
use crate::state::AppState;
use crate::store::{AuditEvent, NewGrant};

/// The longest a FAPI 2.0 client's code lives (Security Profile §5.3.2.1-11).
const FAPI2_CODE_TTL: i64 = 60;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    sender: Sender<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("this client may not use the authorization code grant"));
    }
    let presented = p.get("code").ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    // §4.1.3: redirect_uri is REQUIRED when the authorization request had one, as OIDC's always do.
    let redirect_uri = p.get("redirect_uri").ok_or_else(|| OAuthError::invalid_request("redirect_uri is missing"))?;
    let now = state.now();
    // Single use, atomically; a second use revokes what the first issued (RFC 6749 §4.1.2).
    let c = match code::redeem(state, presented).await? {
        Redeemed::Fresh(c) => c,
        Redeemed::Reused(c) => {
            code::mark_reused(state, &c.grant_id).await?;
            let revoked = state.store.revoke_grant(&c.grant_id, now).await?;
            state
                .store
                .audit(
                    AuditEvent::new("code.reused").client(&client.id).user(&c.user_id).detail("grant_revoked", revoked),
                    now,
                )
                .await;
            return Err(OAuthError::invalid_grant("the authorization code was already used"));
        }
        Redeemed::Unknown => return Err(OAuthError::invalid_grant("the authorization code is invalid or expired")),
    };
    // The code is bound to the client it was issued to…
    if c.client_id != client.id {
        return Err(OAuthError::invalid_grant("the authorization code was issued to another client"));
    }
    // …to the redirect_uri of the request (§4.1.3: REQUIRED and identical)…
    if redirect_uri != c.redirect_uri {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    // …and to its PKCE challenge (RFC 7636 §4.6); a verifier without a challenge is a downgrade.
    match (&c.code_challenge, p.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let computed = b64url(&sha256(verifier.as_bytes()));
            if !is_pkce_value(verifier) || !constant_time_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant("no code_challenge was sent with the authorization request"));
        }
        (None, None) => {}
    }
    // …to the resource it was issued for (RFC 8707 §2.2)…
    super::same_resource(p, c.resource.as_deref())?;
    // …to the DPoP key named at the authorization request (RFC 9449 §10.1: the proof here
    // MUST use that key)…
    if let Some(bound) = &c.dpop_jkt {
        match sender.dpop {
            None => return Err(OAuthError::invalid_dpop_proof("the authorization code is bound to a DPoP key")),
            Some(jkt) if jkt != bound => {
                return Err(OAuthError::invalid_grant("the DPoP proof's key is not the one the code is bound to"));
            }
            Some(_) => {}
        }
    }
    // …and, under FAPI 2.0, to a lifetime of 60 s at most (§5.3.2.1-11) whatever
    // tokens.code_ttl says.
    if client.is_fapi2() && now - c.issued_at > FAPI2_CODE_TTL {
        return Err(OAuthError::invalid_grant("the authorization code is invalid or expired"));
    }
    let offline = c.scopes.iter().any(|s| s == "offline_access") && client.allows(GrantType::RefreshToken);
    let grant = Grant {
        id: c.grant_id.clone(),
        client_id: client.id.clone(),
        user_id: c.user_id.clone(),
        session_id: Some(c.session_id.clone()),
        scopes: c.scopes.clone(),
        claims: c.claims.clone(),
        auth_time: c.auth_time,
        acr: c.acr.clone(),
        amr: c.amr.clone(),
        offline,
        created_at: now,
        expires_at: now
            + if offline { state.settings.tokens.refresh_token_ttl } else { state.settings.tokens.session_ttl },
        revoked_at: None,
        dpop_jkt: bound_refresh(client, sender.dpop),
        cert_x5t: bound_refresh(client, sender.x5t),
        resource: c.resource.clone(),
    };
    let refresh = offline.then(|| refresh_token(state.clock.now_ms()));
    let refresh_hash = refresh.as_deref().map(refresh_token_key);
    // Written only for a live user, and while the session the code came from is live (both
    // checked in the same write).
    let written =
        state.store.insert_grant(NewGrant { grant: &grant, refresh_hash: refresh_hash.as_deref() }, now).await?;
    let user = written_for(written)?;
    // A second redemption racing this one (possibly on another node) revoked before the grant
    // existed: honour it now. The answer stays 200, as if this redemption had come first; the
    // tokens are made meanwhile (with Redis, the check and an opaque access token's write share
    // a round trip), and a revoked grant's tokens stop at once.
    let (reused, tokens) = tokio::join!(
        code::reuse_seen(state, &grant.id),
        user_tokens(state, client, &grant, &user, &grant.scopes, c.nonce.as_deref(), refresh, sender, now)
    );
    if reused? {
        state.store.revoke_grant(&grant.id, now).await?;
    }
    tokens
}
