//! UserInfo endpoint (OIDC Core §5.3): the claims a grant releases, for a Bearer access token
//! sent in the header (any scheme case) or, for POST, in the form body (RFC 6750 §2.1–2.2), or
//! a DPoP-bound one with the `DPoP` scheme and a proof of its key (RFC 9449 §7), a
//! certificate-bound one with its certificate (RFC 8705 §3).

use crate::oidc::dpop;

use crate::domain::claims::{Target, names_for_scopes, release, requested_names};
use crate::http::{BearerError, Params};
use crate::oidc::id_token::{AccessToken, active_grant_and_user, check_certificate, read_access_token};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(&state, &headers, "GET", bearer_header(&headers).transpose()).await
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
                (None, Some(t)) => Some(Ok(Presented { token: t.to_owned(), dpop: false })),
                (None, None) => None,
            },
            Err(_) => Some(Err(BearerError::InvalidRequest("the request body is malformed"))),
        }
    } else {
        from_header
    };
    respond(&state, &headers, "POST", token).await
}

/// An access token as presented: by the `DPoP` scheme, or as a Bearer token.
pub struct Presented {
    pub token: String,
    pub dpop: bool,
}

/// The access token of the `Authorization` header, if any (RFC 6750 §2.1, RFC 9449 §7.1).
pub fn bearer_header(headers: &HeaderMap) -> Result<Option<Presented>, BearerError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| BearerError::InvalidRequest("the Authorization header is malformed"))?;
    match v.trim().split_once(' ') {
        // Schemes are case-insensitive (RFC 9110 §11.1).
        Some((scheme, token)) if !token.trim().is_empty() => {
            let token = token.trim().to_owned();
            if scheme.eq_ignore_ascii_case("bearer") {
                Ok(Some(Presented { token, dpop: false }))
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Ok(Some(Presented { token, dpop: true }))
            } else {
                Err(BearerError::InvalidRequest("the Authorization header must be Bearer or DPoP"))
            }
        }
        _ => Err(BearerError::InvalidRequest("the Authorization header must be Bearer or DPoP")),
    }
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    token: Option<Result<Presented, BearerError>>,
) -> Response {
    let result = match token {
        None => Err(BearerError::Missing),
        Some(Err(e)) => Err(e),
        Some(Ok(t)) => claims(state, headers, method, &t).await,
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

async fn claims(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    presented: &Presented,
) -> Result<Answer, BearerError> {
    let now = state.now();
    let token = presented.token.as_str();
    let at = read_access_token(state, token, now).await?;
    // RFC 9449 §7.1: a DPoP-bound token needs the DPoP scheme and a proof, with `ath`, by the
    // key it is bound to; a Bearer one is not to be sent with that scheme.
    match (&at.jkt, presented.dpop) {
        (Some(bound), true) => {
            let proof = dpop::verify(state, headers, method, crate::oidc::USERINFO, Some(token))
                .await?
                .ok_or(BearerError::InvalidDpopProof("a DPoP proof is required with this token"))?;
            if &proof.jkt != bound {
                return Err(BearerError::InvalidDpopProof("the proof's key is not the one the token is bound to"));
            }
        }
        (Some(_), false) => return Err(BearerError::DpopBound),
        (None, true) => return Err(BearerError::InvalidToken("this token is not DPoP-bound; send it as Bearer")),
        (None, false) => {}
    }
    // RFC 8707 §2 (and RFC 9068 §4): a token issued for another resource server is that
    // server's to accept, not this endpoint's.
    if !for_userinfo(state, &at) {
        return Err(BearerError::InvalidToken("the access token was issued for another resource"));
    }
    // RFC 8705 §3: a certificate-bound token only with its certificate.
    check_certificate(state, headers, &at)?;
    let (grant, user) = active_grant_and_user(state, &at, now)
        .await?
        .ok_or(BearerError::InvalidToken("the access token is revoked or not issued for a user"))?;
    let scopes: Vec<String> =
        at.claims.get("scope").and_then(Value::as_str).map(crate::domain::parse_scope).unwrap_or_default();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(BearerError::InvalidToken("the access token was not granted the openid scope"));
    }
    if user.disabled {
        return Err(BearerError::InvalidToken("the user is no longer active"));
    }
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

/// Whether the token's audience takes in this endpoint: a token issued without a resource is for
/// its client (`aud` = `client_id`) and reads userinfo; one issued for resources only when they
/// include this provider's userinfo endpoint.
fn for_userinfo(state: &AppState, at: &AccessToken) -> bool {
    let userinfo = format!("{}{}", state.issuer, crate::oidc::USERINFO);
    let fits = |aud: &Value| aud.as_str().is_some_and(|a| a == at.client_id || a == userinfo);
    match at.claims.get("aud") {
        Some(Value::Array(auds)) => auds.iter().any(fits),
        Some(aud) => fits(aud),
        None => false,
    }
}
