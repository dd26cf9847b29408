//! Token introspection (RFC 7662) for confidential clients, typically resource servers. It
//! consults the grant, so a revoked grant reads `active: false` at once.
//!
//! A token reads active only to the client it was issued to, or to a client registered as a
//! resource server (`clients add --resource-server`): §2.2 lets the server answer
//! `{"active": false}` to a caller not allowed to know, so one client cannot learn who holds
//! another's tokens.

use crate::crypto::refresh_token_key;
use crate::domain::Client;
use crate::http::{BearerError, OAuthError, Params};
use crate::oidc::id_token::{active_grant, read_access_token};
use crate::oidc::token::client_auth;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match introspect(&state, &headers, &body).await {
        Ok(v) => {
            let mut resp = axum::Json(v).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn introspect(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let p = Params::from_form(headers, body).map_err(OAuthError::invalid_request)?;
    if let Some(name) = p.duplicate() {
        return Err(OAuthError::invalid_request(format!("the {name} parameter appears more than once")));
    }
    let client = client_auth::authenticate(state, headers, &p).await?;
    if client.is_public() {
        return Err(OAuthError::invalid_client("introspection is for confidential clients"));
    }
    let token = p.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let now = state.now();
    let inactive = json!({ "active": false });
    // An access token: signature, expiry, and a live grant (or a live client for
    // client_credentials tokens).
    let read = read_access_token(state, token, now).await;
    if let Err(BearerError::Unavailable) = read {
        return Err(OAuthError::temporarily_unavailable());
    }
    if let Ok(at) = read {
        if !may_see(&client, &at.client_id) {
            return Ok(inactive);
        }
        let active = match &at.grant_id {
            Some(_) => active_grant(state, &at, now).await?.is_some(),
            None => state.store.client(&at.client_id).await?.is_some(),
        };
        if !active {
            return Ok(inactive);
        }
        let mut out = at.claims.clone();
        out.remove("gid");
        out.insert("active".into(), json!(true));
        // RFC 9449 §6.2: a DPoP-bound token says so, with its `cnf` (kept from the claims).
        out.insert("token_type".into(), json!(if at.jkt.is_some() { "DPoP" } else { "Bearer" }));
        return Ok(Value::Object(out));
    }
    // A refresh token: by its hash, live only while unused and its grant is active.
    if let Some((grant, used)) = state.store.grant_by_refresh_token(&refresh_token_key(token)).await?
        && !used
        && grant.is_active(now)
        && may_see(&client, &grant.client_id)
    {
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": grant.scopes.join(" "),
            "client_id": grant.client_id,
            "sub": grant.user_id,
            "iss": state.issuer,
            "exp": grant.expires_at,
            "iat": grant.created_at,
        }));
    }
    Ok(inactive)
}

/// May `caller` learn that a token issued to `holder` is active?
fn may_see(caller: &Client, holder: &str) -> bool {
    caller.id == holder || caller.resource_server
}
