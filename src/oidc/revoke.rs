//! Token revocation (RFC 7009). Revoking either token of a grant revokes the grant, so the
//! refresh family and every access token from it stop together (§2.1 permits this); an opaque
//! access token is also forgotten at once. The answer is 200 whether or not the token was known
//! (§2.2).

use crate::crypto::refresh_token_key;
use crate::http::{BearerError, OAuthError, Params};
use crate::oidc::id_token::{forget, read_access_token};
use crate::oidc::token::client_auth;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match revoke(&state, &headers, &body).await {
        Ok(()) => {
            let mut resp = StatusCode::OK.into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn revoke(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let p = Params::from_form(headers, body).map_err(OAuthError::invalid_request)?;
    if let Some(name) = p.duplicate() {
        return Err(OAuthError::invalid_request(format!("the {name} parameter appears more than once")));
    }
    let client = client_auth::authenticate(state, headers, &p).await?;
    let token = p.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let now = state.now();
    let grant_id = match state.store.grant_by_refresh_token(&refresh_token_key(token)).await? {
        Some((grant, _)) => Some(grant),
        None => match read_access_token(state, token, now).await {
            Ok(at) if at.client_id == client.id => {
                // An opaque token stops at once, even one no grant stands behind
                // (client_credentials); a JWT stops with its grant.
                forget(state, token, &at).await?;
                match &at.grant_id {
                    Some(gid) => state.store.grant(gid).await?,
                    None => None,
                }
            }
            Err(BearerError::Unavailable) => return Err(OAuthError::temporarily_unavailable()),
            _ => None,
        },
    }
    // A client may revoke only its own tokens (§2.1).
    .filter(|g| g.client_id == client.id)
    .map(|g| g.id);
    if let Some(gid) = grant_id
        && state.store.revoke_grant(&gid, now).await?
    {
        state
            .store
            .audit(
                AuditEvent::new("grant.revoked")
                    .client(&client.id)
                    .detail("grant", gid)
                    .detail("by", "revocation_endpoint"),
                now,
            )
            .await;
    }
    Ok(())
}
