//! Token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3): parse the form strictly, authenticate the
//! client, then hand over to the grant's own handler. Every answer is `no-store` JSON.

pub mod authorization_code;
pub mod client_assertion;
pub mod client_auth;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use crate::domain::claims::Access;
use crate::domain::resource::Resource;
use crate::domain::{Client, Grant, User};
use crate::http::{OAuthError, Params};
use crate::oidc::{dpop, id_token, mtls};
use crate::state::AppState;
use crate::store::GrantWrite;
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
    // RFC 9449 §5: a proof binds what is issued to its key. Checked before the client
    // authenticates, so that a `use_dpop_nonce` answer spends no client assertion.
    let proof = dpop::verify(state, headers, "POST", crate::oidc::TOKEN, None).await?;
    let client = client_auth::authenticate(state, headers, &p).await?;
    // A client registered for DPoP-bound tokens (or under FAPI 2.0, §5.3.2.1-4) must send one.
    if proof.is_none() && client.requires_dpop() {
        return Err(OAuthError::invalid_dpop_proof("this client's token requests need a DPoP proof"));
    }
    // RFC 8705 §3: a client registered for certificate-bound tokens presents its certificate
    // (through the proxy), and what is issued is bound to it.
    let cert = if client.security.cert_bound { mtls::thumbprint(state, headers) } else { None };
    if client.security.cert_bound && cert.is_none() {
        return Err(OAuthError::invalid_request("this client's tokens are bound to its certificate; none came"));
    }
    let sender = Sender { dpop: proof.as_ref().map(|p| p.jkt.as_str()), x5t: cert.as_deref() };
    // A client registered with an algorithm this node has no key for yet (`clients add
    // --id-token-alg` created it moments ago): read the keys now rather than at the next tick.
    if !state.keys.can_sign(client.id_token_signed_response_alg) {
        state.keys.refresh(state.now()).await?;
    }
    let issued = match grant_type {
        "authorization_code" => authorization_code::exchange(state, &client, &p, sender).await,
        "refresh_token" => refresh_token::exchange(state, &client, &p, sender).await,
        "client_credentials" => client_credentials::exchange(state, &client, &p, sender).await,
        "urn:ietf:params:oauth:grant-type:device_code" => device_code::exchange(state, &client, &p, sender).await,
        "urn:ietf:params:oauth:grant-type:token-exchange" => token_exchange::exchange(state, &client, &p, sender).await,
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
    /// What token exchange issued (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
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
/// carry the user's groups and roles at this client when those scopes were granted. With a
/// DPoP proof the access token is bound to the key (RFC 9449 §6), with a client certificate to
/// the certificate (RFC 8705 §3): `sender`.
#[allow(clippy::too_many_arguments)] // each is a distinct input of OIDC Core §3.1.3.3
pub async fn user_tokens(
    state: &AppState,
    client: &Client,
    grant: &Grant,
    user: &User,
    scopes: &[String],
    nonce: Option<&str>,
    refresh_token: Option<String>,
    sender: Sender<'_>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let access = access(state, &user.id, &client.id, scopes).await?;
    let bound =
        id_token::Binding { dpop: sender.dpop, x5t: sender.x5t, resource: grant.resource.as_deref(), act: None };
    let access_token =
        id_token::access_token(state, &user.id, client, scopes, Some(grant), &access, bound, now).await?;
    let id_token = if scopes.iter().any(|s| s == "openid") {
        let alg = client.id_token_signed_response_alg;
        let sub = super::subject::for_client(state, client, &user.id).await?;
        Some(id_token::id_token(state, grant, user, &sub, nonce, &access_token, &access, alg, now)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: token_type(sender.dpop),
        expires_in: state.settings.tokens.access_token_ttl,
        scope: scopes.join(" "),
        refresh_token,
        id_token,
        issued_token_type: None,
    })
}

/// What a token request's tokens are bound to: the DPoP key's thumbprint (RFC 9449 §6) and
/// the client certificate's (RFC 8705 §3), each when there is one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sender<'a> {
    pub dpop: Option<&'a str>,
    pub x5t: Option<&'a str>,
}

/// `DPoP` for a token bound to a DPoP key (RFC 9449 §5), else `Bearer`.
pub fn token_type(dpop: Option<&str>) -> &'static str {
    if dpop.is_some() { "DPoP" } else { "Bearer" }
}

/// The DPoP key or certificate a new grant's refresh tokens are bound to: a public client's
/// (RFC 9449 §5, RFC 8705 §4); a confidential client's refresh tokens are bound by its
/// authentication, and may move to a new DPoP key (the FAPI 2.0 plan refreshes with one).
pub fn bound_refresh(client: &Client, key: Option<&str>) -> Option<String> {
    key.filter(|_| client.is_public()).map(str::to_owned)
}

/// The registered resource server a token request names (RFC 8707 §2: `resource`), or
/// `invalid_target`.
pub async fn resource(state: &AppState, p: &Params) -> Result<Option<Resource>, OAuthError> {
    let Some(uri) = p.get("resource") else { return Ok(None) };
    match state.store.resource(uri).await? {
        Some(r) => Ok(Some(r)),
        None => Err(OAuthError::invalid_target("resource is not a resource server registered here")),
    }
}

/// RFC 8707 §2.2: a token request for a grant may name its resource again, not another one.
pub fn same_resource(p: &Params, granted: Option<&str>) -> Result<(), OAuthError> {
    match p.get("resource") {
        Some(asked) if Some(asked) != granted => {
            Err(OAuthError::invalid_target("resource is not the one this grant was given for"))
        }
        _ => Ok(()),
    }
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
    let user = state.store.user(user_id).await?.ok_or_else(inactive_user)?;
    check_active(&user)?;
    Ok(user)
}

/// The user of a grant just written (only for a live user, see [`crate::store::Store::insert_grant`]),
/// or why it was not.
pub fn written_for(written: GrantWrite) -> Result<User, OAuthError> {
    match written {
        GrantWrite::Written(user) => Ok(user),
        GrantWrite::UserInactive => Err(inactive_user()),
        GrantWrite::SessionEnded => Err(OAuthError::invalid_grant("the session this code came from has ended")),
    }
}

/// Refuses a grant whose user is disabled.
pub fn check_active(user: &User) -> Result<(), OAuthError> {
    if user.disabled { Err(inactive_user()) } else { Ok(()) }
}

fn inactive_user() -> OAuthError {
    OAuthError::invalid_grant("the user of this grant is no longer active")
}
