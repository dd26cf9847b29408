//! The account JSON API, for native and single-page apps: the same flows and rules as the pages,
//! with a flow id in place of a form's CSRF token. It reads no cookie, and a JSON body cannot be
//! sent across sites without a CORS preflight, which it grants only to the web origins of
//! registered clients (`http::cors`, as for `/token`). Every answer is JSON:
//!
//! - `POST /account/api/signup` `{email, password, <fields>}` → `201 {"flow", "status": "verify_email"}`
//!   (the same for an address that has an account);
//! - `POST /account/api/verify` `{"flow", "code"}` or `{"token"}` → `200 {"status": "verified"}`;
//! - `POST /account/api/resend` `{"flow"}` → `202 {"flow", "status": "verify_email"}`;
//! - errors: `400 {"error": "invalid_request", "error_description", "fields": {name: message}}`,
//!   `403` where sign-up is off, `429` with `Retry-After` when throttled.
//!
//! The helpers below (the body, the error, the answer) are for every call under
//! [`crate::http::refusals::JSON_API_PREFIX`].

use crate::domain::password_policy;
use crate::domain::registration::{self, EMAIL};
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::http::cors::{self, WebOrigins};
use crate::signup::{self as core, Refused};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The largest JSON body accepted, in bytes.
const MAX_BODY: usize = 16 * 1024;

/// The calls, with CORS for the origins registered clients allow.
pub fn router(origins: &WebOrigins) -> Router<AppState> {
    let cors = || cors::for_clients(origins, &[Method::POST]);
    Router::new()
        .route("/account/api/signup", post(signup).layer(cors()))
        .route("/account/api/verify", post(verify).layer(cors()))
        .route("/account/api/resend", post(resend).layer(cors()))
}

/// An error of the JSON API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// A message per field that broke a rule.
    pub fields: BTreeMap<String, String>,
    /// Seconds to wait, for a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn invalid(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
            fields: BTreeMap::new(),
            retry_after: None,
        }
    }

    pub fn fields(fields: BTreeMap<String, String>) -> Self {
        Self { fields, ..Self::invalid("Some fields are not valid: see `fields`.") }
    }

    pub fn throttled(seconds: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "slow_down",
            description: format!("Too many attempts; retry after {seconds} s."),
            fields: BTreeMap::new(),
            retry_after: Some(seconds.max(1)),
        }
    }

    /// What a refusal of [`crate::signup`] is to an app.
    pub fn refused(r: Refused) -> Self {
        match r {
            Refused::Throttled(secs) => Self::throttled(secs),
            Refused::UsernameTaken => Self::fields([("username".into(), r.message().into())].into()),
            Refused::WrongCode => Self::fields([("code".into(), r.message().into())].into()),
            Refused::Expired => Self { error: "expired", ..Self::invalid(r.message()) },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error, "error_description": self.description });
        if !self.fields.is_empty() {
            body["fields"] = json!(self.fields);
        }
        let mut resp = answer(self.status, body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Internal failures keep their status (503 when a store is out of reach, else 500), in JSON.
impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        let error =
            if e.status == StatusCode::SERVICE_UNAVAILABLE { "temporarily_unavailable" } else { "server_error" };
        Self { status: e.status, error, description: e.message, fields: BTreeMap::new(), retry_after: None }
    }
}

/// A JSON answer, never cached.
pub fn answer(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The request's JSON object: `application/json`, at most [`MAX_BODY`] bytes.
pub fn body(headers: &HeaderMap, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let json = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return Err(ApiError::invalid("The body must be JSON (Content-Type: application/json)."));
    }
    if bytes.len() > MAX_BODY {
        return Err(ApiError::invalid("The body is too large."));
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid("The body must be a JSON object.")),
    }
}

/// A string member of the body, if it is one.
pub fn text<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// POST /account/api/signup
async fn signup(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    if !state.settings.registration.enabled {
        let off =
            ApiError { status: StatusCode::FORBIDDEN, error: "access_denied", ..ApiError::invalid("Sign-up is off.") };
        return Err(off);
    }
    let body = body(&headers, &bytes)?;
    let today = chrono::DateTime::from_timestamp(state.now(), 0).unwrap_or_default().date_naive();
    let checked = registration::validate(&state.settings.registration, |name| text(&body, name), today);
    let password = text(&body, "password").unwrap_or_default();
    let mut errors: BTreeMap<String, String> = match &checked {
        Err(e) => e.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        Ok(_) => BTreeMap::new(),
    };
    let identifiers = [text(&body, "username").unwrap_or_default(), text(&body, EMAIL.name).unwrap_or_default()];
    if let Err(refusal) = password_policy::check(&state.settings.password, password, &identifiers) {
        errors.insert("password".into(), refusal.to_string());
    }
    let valid = match checked {
        Ok(valid) if errors.is_empty() => valid,
        _ => return Err(ApiError::fields(errors)),
    };
    let flow = crate::crypto::random_token();
    let ip = Some(client.to_string());
    core::register(&state, valid, password.to_owned(), &flow, "your account", ip).await?.map_err(ApiError::refused)?;
    Ok(answer(StatusCode::CREATED, json!({ "flow": flow, "status": "verify_email" })))
}

/// POST /account/api/verify
async fn verify(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body = body(&headers, &bytes)?;
    let ip = Some(client.to_string());
    match (text(&body, "flow"), text(&body, "code"), text(&body, "token")) {
        (Some(flow), Some(code), None) => {
            core::confirm_code(&state, flow, code, ip).await?.map_err(ApiError::refused)?;
        }
        (_, None, Some(token)) => {
            let (user_id, flow) = core::confirm_token(&state, token, ip).await?.map_err(ApiError::refused)?;
            // A page waiting on the same flow goes on.
            core::approve(&state, &flow, &user_id).await?;
        }
        _ => return Err(ApiError::invalid("Send {\"flow\", \"code\"} or {\"token\"}.")),
    }
    Ok(answer(StatusCode::OK, json!({ "status": "verified" })))
}

/// POST /account/api/resend
async fn resend(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Result<Response, ApiError> {
    let body = body(&headers, &bytes)?;
    let flow = text(&body, "flow").ok_or_else(|| ApiError::invalid("Send {\"flow\"}."))?;
    core::resend(&state, flow, "your account").await?.map_err(ApiError::refused)?;
    Ok(answer(StatusCode::ACCEPTED, json!({ "flow": flow, "status": "verify_email" })))
}
