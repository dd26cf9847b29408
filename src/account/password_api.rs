//! The password calls of the JSON API, for native and single-page apps: the same flows and
//! rules as the pages (`forgot`, `password`), with JSON in and out instead of forms.
//!
//! - `POST /account/api/password/forgot` `{"login"}` → `202 {"status": "sent"}`, always;
//! - `POST /account/api/password/reset` `{"token", "password"}` → `200 {"status": "changed"}`;
//! - `POST /account/api/password/change` `{"current_password", "new_password"}`, as the user:
//!   a Bearer access token of theirs, or this browser's session → `200 {"status": "changed"}`.
//!
//! Errors are `400 {"error": "invalid_request", "error_description", "fields": {name: why}}`,
//! `401` (RFC 6750) without a usable token or session, and `429` with `Retry-After`. Bodies must
//! be `application/json`: a page on another site cannot send that without a CORS preflight,
//! which these routes never grant, so a session cookie alone cannot be ridden across sites.

use super::forgot::{self, Asked, Reset};
use super::password::{self, Changed};
use crate::http::client_ip::ClientAddr;
use crate::http::{BearerError, PageError};
use crate::login::policy;
use crate::oidc::id_token::{active_grant, read_bearer_token};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub const FORGOT: &str = "/account/api/password/forgot";
pub const RESET: &str = "/account/api/password/reset";
pub const CHANGE: &str = "/account/api/password/change";

/// A JSON answer that no cache keeps.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `400 invalid_request`, naming the field at fault when there is one.
fn invalid(description: &str, field: Option<(&str, &str)>) -> Response {
    let mut body = json!({ "error": "invalid_request", "error_description": description });
    if let Some((name, why)) = field {
        body["fields"] = json!({ name: why });
    }
    answer(StatusCode::BAD_REQUEST, body)
}

fn too_many(retry_after: u64) -> Response {
    let body = json!({ "error": "too_many_requests", "error_description": forgot::THROTTLED });
    let mut resp = answer(StatusCode::TOO_MANY_REQUESTS, body);
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// An internal failure, as JSON: 503 when a store is out of reach, else `server_error`.
fn failed(e: PageError) -> Response {
    match e.status {
        StatusCode::SERVICE_UNAVAILABLE => crate::http::OAuthError::temporarily_unavailable().into_response(),
        _ => crate::http::OAuthError::server_error().into_response(),
    }
}

/// The JSON body as `T`, or what is wrong with it.
fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, &'static str> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err("The request body must be application/json.");
    }
    serde_json::from_slice(bytes).map_err(|_| "The request body is not the JSON this call takes.")
}

#[derive(Deserialize)]
struct ForgotBody {
    login: String,
}

/// POST /account/api/password/forgot
pub async fn forgot(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let b: ForgotBody = match body(&headers, &bytes) {
        Ok(b) => b,
        Err(why) => return invalid(why, None),
    };
    let login = b.login.trim();
    if login.is_empty() || login.len() > 254 {
        return invalid("Give the username or email address of the account.", Some(("login", "Required.")));
    }
    match forgot::ask(&state, login, Some(client.to_string())).await {
        Ok(Asked::Sent) => answer(StatusCode::ACCEPTED, json!({ "status": "sent" })),
        Ok(Asked::Throttled { retry_after }) => too_many(retry_after),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct ResetBody {
    token: String,
    password: String,
}

/// POST /account/api/password/reset
pub async fn reset(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let b: ResetBody = match body(&headers, &bytes) {
        Ok(b) => b,
        Err(why) => return invalid(why, None),
    };
    match forgot::reset(&state, b.token.trim(), &b.password, Some(client.to_string())).await {
        Ok(Reset::Changed) => answer(StatusCode::OK, json!({ "status": "changed" })),
        Ok(Reset::Refused(r)) => invalid("The new password was refused.", Some(("password", &r.to_string()))),
        Ok(Reset::Expired) => invalid("The reset link does not work.", Some(("token", forgot::EXPIRED))),
        Ok(Reset::Throttled { retry_after }) => too_many(retry_after),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct ChangeBody {
    #[serde(default)]
    current_password: Option<String>,
    new_password: String,
}

/// Who is asking: the user, the session that stays signed in, and when they last signed in.
struct Caller {
    user_id: String,
    keep: Option<String>,
    auth_time: i64,
    strong: bool,
}

/// The user behind a Bearer access token (its grant active), else behind the session cookie.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, BearerError> {
    let now = state.now();
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let token = v
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty())
            .map(|(_, t)| t.trim().to_owned())
            .ok_or(BearerError::InvalidRequest("the Authorization header must be Bearer"))?;
        let at = read_bearer_token(state, headers, &token, now).await?;
        let grant = active_grant(state, &at, now)
            .await?
            .ok_or(BearerError::InvalidToken("the access token is revoked or not issued for a user"))?;
        let strong = policy::acr_level(&grant.acr) >= Some(2);
        return Ok(Caller { user_id: grant.user_id, keep: grant.session_id, auth_time: grant.auth_time, strong });
    }
    let s = crate::login::session::current(state, headers, now).await?.ok_or(BearerError::Missing)?;
    let strong = policy::acr_level(&s.acr) >= Some(2);
    Ok(Caller { user_id: s.user_id, keep: Some(s.id), auth_time: s.auth_time, strong })
}

/// POST /account/api/password/change
pub async fn change(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let who = match caller(&state, &headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let b: ChangeBody = match body(&headers, &bytes) {
        Ok(b) => b,
        Err(why) => return invalid(why, None),
    };
    let user = match state.store.user(&who.user_id).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return BearerError::InvalidToken("the account is not active").into_response(),
        Err(e) => return failed(e.into()),
    };
    // An account without a password proves it is them by a recent sign-in instead.
    if user.password_hash.is_none() {
        let factors = match crate::login::flow::factors_of(&state, &user.id).await {
            Ok(f) => f,
            Err(e) => return failed(e.into()),
        };
        let recent = state.now() - who.auth_time <= state.settings.login.reauth_secs;
        if !recent || (factors.any() && !who.strong) {
            let why = "Sign in again first: setting a password needs a recent sign-in.";
            return invalid(why, Some(("current_password", why)));
        }
    }
    let ip = Some(client.to_string());
    let current = b.current_password.as_deref();
    match password::change(&state, &user, current, &b.new_password, who.keep.as_deref(), ip).await {
        Ok(Changed::Changed) => answer(StatusCode::OK, json!({ "status": "changed" })),
        Ok(Changed::WrongCurrent) => invalid(
            "The current password is not right.",
            Some(("current_password", "Your current password is not right.")),
        ),
        Ok(Changed::Refused(r)) => invalid("The new password was refused.", Some(("new_password", &r.to_string()))),
        Ok(Changed::Throttled { retry_after }) => too_many(retry_after),
        Err(e) => failed(e),
    }
}
