//! UserInfo endpoint (OIDC Core §5.3): the claims a grant releases, for a Bearer access token
//! sent in the header (any scheme case) or, for POST, in the form body (RFC 6750 §2.1–2.2).

use crate::domain::claims::{Target, names_for_scopes, release, requested_names};
use crate::http::{BearerError, Params};
use crate::oidc::id_token::{active_grant, read_access_token};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(&state, bearer_header(&headers).transpose()).await
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let from_header = bearer_header(&headers).transpose();
    let token = if crate::http::form::is_form(&headers) {
        match Params::from_form(&headers, &body) {
            Ok(p) => match (from_header, p.get("access_token")) {
                (Some(_), Some(_)) => {
                    Some(Err(BearerError::InvalidRequest("use one way of sending the token, not two")))
                }
                (Some(h), None) => Some(h),
                (None, Some(t)) => Some(Ok(t.to_owned())),
                (None, None) => None,
            },
            Err(_) => Some(Err(BearerError::InvalidRequest("the request body is malformed"))),
        }
    } else {
        from_header
    };
    respond(&state, token).await
}

/// The Bearer token of the `Authorization` header, if any (RFC 6750 §2.1).
pub fn bearer_header(headers: &HeaderMap) -> Result<Option<String>, BearerError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| BearerError::InvalidRequest("the Authorization header is malformed"))?;
    match v.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(BearerError::InvalidRequest("the Authorization header must be Bearer")),
    }
}

async fn respond(state: &AppState, token: Option<Result<String, BearerError>>) -> Response {
    let result = match token {
        None => Err(BearerError::Missing),
        Some(Err(e)) => Err(e),
        Some(Ok(t)) => claims(state, &t).await,
    };
    match result {
        Ok(Answer::Json(body)) => {
            let mut resp = axum::Json(body).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Ok(Answer::Signed(jwt)) => {
            let h = [(header::CONTENT_TYPE, "application/jwt"), (header::CACHE_CONTROL, "no-store")];
            (h, jwt).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The claims as JSON, or as a JWT signed with the algorithm the client registered as its
/// `userinfo_signed_response_alg` (OIDC Core §5.3.2).
enum Answer {
    Json(Value),
    Signed(String),
}

async fn claims(state: &AppState, token: &str) -> Result<Answer, BearerError> {
    let now = state.now();
    let at = read_access_token(state, token, now)?;
    let grant = active_grant(state, &at, now)
        .await?
        .ok_or(BearerError::InvalidToken("the access token is revoked or not issued for a user"))?;
    let scopes: Vec<String> =
        at.claims.get("scope").and_then(Value::as_str).map(crate::domain::parse_scope).unwrap_or_default();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(BearerError::InvalidToken("the access token was not granted the openid scope"));
    }
    let user = state
        .store
        .user(&grant.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(BearerError::InvalidToken("the user is no longer active"))?;
    let mut names = names_for_scopes(&scopes);
    names.extend(requested_names(grant.claims.as_deref(), Target::UserInfo));
    let mut body = release(&user, &names);
    body.extend(crate::oidc::token::access(state, &user.id, &grant.client_id, &scopes).await?.claims());
    let client = state
        .store
        .client(&grant.client_id)
        .await?
        .ok_or(BearerError::InvalidToken("the client of this token is no longer registered"))?;
    body.insert("sub".into(), json!(crate::oidc::subject::for_client(state, &client, &user.id).await?));
    let Some(alg) = client.metadata.userinfo_signed_response_alg else { return Ok(Answer::Json(Value::Object(body))) };
    // §5.3.2: a signed response SHOULD carry iss and aud; it carries no nonce.
    body.insert("iss".into(), json!(state.issuer));
    body.insert("aud".into(), json!(client.id));
    body.insert("iat".into(), json!(now));
    Ok(Answer::Signed(state.keys.sign(&body, None, alg)?))
}
