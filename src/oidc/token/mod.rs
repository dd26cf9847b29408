//! Token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3): parse the form strictly, authenticate the
//! client, then hand over to the grant's own handler. Every answer is `no-store` JSON.

pub mod authorization_code;
pub mod client_assertion;
pub mod client_auth;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use crate::domain::claims::Access;
use crate::domain::{Client, Grant, User};
use crate::http::{OAuthError, Params};
use crate::oidc::id_token;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match token(&state, &headers, &body).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn token(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, OAuthError> {
    let p = Params::from_form(headers, body).map_err(OAuthError::invalid_request)?;
    if let Some(name) = p.duplicate() {
        return Err(OAuthError::invalid_request(format!("the {name} parameter appears more than once")));
    }
    let grant_type = p.get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let client = client_auth::authenticate(state, headers, &p).await?;
    // A client registered with an algorithm this node has no key for yet (`clients add
    // --id-token-alg` created it moments ago): read the keys now rather than at the next tick.
    if !state.keys.can_sign(client.id_token_signed_response_alg) {
        state.keys.refresh(state.now()).await?;
    }
    let issued = match grant_type {
        "authorization_code" => authorization_code::exchange(state, &client, &p).await,
        "refresh_token" => refresh_token::exchange(state, &client, &p).await,
        "client_credentials" => client_credentials::exchange(state, &client, &p).await,
        "urn:ietf:params:oauth:grant-type:device_code" => device_code::exchange(state, &client, &p).await,
        other => Err(OAuthError::unsupported_grant_type(format!("grant_type {other} is not supported"))),
    }?;
    crate::metrics::token_issued(grant_type);
    Ok(issued)
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut resp = axum::Json(self).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        resp
    }
}

/// Tokens for a user grant: an access token, an ID token when `openid` was granted, and the
/// refresh token the caller minted (if any), signed with the client's algorithm. Both tokens
/// carry the user's groups and roles at this client when those scopes were granted.
#[allow(clippy::too_many_arguments)] // each is a distinct input of OIDC Core §3.1.3.3
pub async fn user_tokens(
    state: &AppState,
    client: &Client,
    grant: &Grant,
    user: &User,
    scopes: &[String],
    nonce: Option<&str>,
    refresh_token: Option<String>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let access = access(state, &user.id, &client.id, scopes).await?;
    let access_token = id_token::access_token(state, &user.id, client, scopes, Some(grant), &access, now)?;
    let id_token = if scopes.iter().any(|s| s == "openid") {
        let alg = client.id_token_signed_response_alg;
        let sub = super::subject::for_client(state, client, &user.id).await?;
        Some(id_token::id_token(state, grant, user, &sub, nonce, &access_token, &access, alg, now)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.settings.tokens.access_token_ttl,
        scope: scopes.join(" "),
        refresh_token,
        id_token,
    })
}

/// The groups and roles the scopes ask for, read only when asked.
pub async fn access(
    state: &AppState,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
) -> crate::store::Result<Access> {
    let (groups, roles) = Access::wanted(scopes);
    Ok(Access {
        groups: if groups { Some(state.store.user_groups(user_id).await?) } else { None },
        roles: if roles { Some(state.store.user_roles(user_id, client_id).await?) } else { None },
    })
}

/// The user a grant acts for, if the account still exists and is enabled.
pub async fn live_user(state: &AppState, user_id: &str) -> Result<User, OAuthError> {
    state
        .store
        .user(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::invalid_grant("the user of this grant is no longer active"))
}
