//! Errors that speak the RFCs. One type per surface:
//! - [`OAuthError`]: token-style JSON (RFC 6749 §5.2), `Cache-Control: no-store`, 401 with
//!   `WWW-Authenticate` for `invalid_client`;
//! - [`BearerError`]: protected resources (RFC 6750 §3);
//! - [`PageError`]: a readable HTML page for the browser.
//!
//! Internal failures are logged with their detail and leave as `server_error` (or 503
//! `temporarily_unavailable` when a backing store is unreachable): they can never turn into a
//! protocol error such as `invalid_grant`.

use crate::pages;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// Set for `invalid_client`: the auth scheme the client tried (RFC 6749 §5.2).
    pub challenge: Option<&'static str>,
    /// Set for `use_dpop_nonce`: the nonce the next DPoP proof must carry (RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into(), challenge: None, dpop_nonce: None }
    }
    /// A 400 with the code a specification names (RFC 9126 §2.3: the authorization endpoint's
    /// codes at the PAR endpoint).
    pub fn bad_request(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, d)
    }
    /// A DPoP proof is missing or refused (RFC 9449 §5, §7.1).
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", d)
    }
    /// The proof must carry the server's nonce (RFC 9449 §8).
    pub fn use_dpop_nonce(nonce: String) -> Self {
        Self {
            dpop_nonce: Some(nonce),
            ..Self::new(StatusCode::BAD_REQUEST, "use_dpop_nonce", "the DPoP proof must carry the server's nonce")
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self { challenge: Some("Basic realm=\"latchkey\""), ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d) }
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }
    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_token_type", d)
    }
    /// The resource asked for is not one a token may be issued for (RFC 8707 §2).
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    /// The device grant's answers while it waits (RFC 8628 §3.5): `authorization_pending`,
    /// `slow_down`, `access_denied`, `expired_token`.
    pub fn device(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, d)
    }
    /// A registration refused (RFC 7591 §3.2.2): `invalid_redirect_uri`, `invalid_client_metadata`.
    pub fn registration(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, d)
    }
    pub fn server_error() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "The server could not complete the request.")
    }
    pub fn temporarily_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable; retry shortly.",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "error_description": self.description });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert("dpop-nonce", nonce);
        }
        resp
    }
}

/// The kind of internal failure, decided once for every surface.
pub enum Internal {
    /// A backing store cannot be reached: 503, retry later.
    Unavailable,
    Bug,
}

pub fn classify(e: &dyn std::fmt::Display, unavailable: bool) -> Internal {
    if unavailable {
        tracing::warn!(error = %e, "backing store unavailable");
        Internal::Unavailable
    } else {
        tracing::error!(error = %e, "internal error");
        Internal::Bug
    }
}

/// Does the error say the database is out of reach (rather than that a query is wrong)? Besides
/// the pool and network failures: Postgres connection exceptions (SQLSTATE class 08), operator
/// intervention such as a restart (57), insufficient resources (53); SQLite busy or locked.
fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57") || c.starts_with("53") || c == "5" || c == "6"),
        _ => false,
    }
}

/// A bearer-token check met on a token-style endpoint (introspection reads the grant as userinfo
/// does): a store failure stays 503, anything else is a bug.
impl From<BearerError> for OAuthError {
    fn from(e: BearerError) -> Self {
        match e {
            BearerError::Unavailable => OAuthError::temporarily_unavailable(),
            _ => OAuthError::server_error(),
        }
    }
}

macro_rules! internal_conversions {
    ($ty:ty, $unavailable:expr, $bug:expr) => {
        impl From<sqlx::Error> for $ty {
            fn from(e: sqlx::Error) -> Self {
                crate::metrics::backend_error("store");
                match classify(&e, sqlx_unavailable(&e)) {
                    Internal::Unavailable => $unavailable,
                    Internal::Bug => $bug,
                }
            }
        }
        impl From<crate::ephemeral::Unavailable> for $ty {
            fn from(e: crate::ephemeral::Unavailable) -> Self {
                crate::metrics::backend_error("ephemeral");
                classify(&e, true);
                $unavailable
            }
        }
        impl From<anyhow::Error> for $ty {
            fn from(e: anyhow::Error) -> Self {
                crate::metrics::backend_error("internal");
                classify(&e, false);
                $bug
            }
        }
    };
}

internal_conversions!(OAuthError, OAuthError::temporarily_unavailable(), OAuthError::server_error());
internal_conversions!(PageError, PageError::unavailable(), PageError::internal());
internal_conversions!(BearerError, BearerError::Unavailable, BearerError::Internal);

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER: &str = "5";

/// An error shown to the person at the browser.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    /// The OAuth error code, when there is one, shown for the integrator.
    pub code: Option<&'static str>,
}

impl PageError {
    pub fn bad_request(code: &'static str, title: &str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, title: title.into(), message: message.into(), code: Some(code) }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, title: "Not found".into(), message: message.into(), code: None }
    }
    pub fn expired() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "This sign-in has expired".into(),
            message: "The sign-in took too long or was already completed. Go back to the application and start again."
                .into(),
            code: None,
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, title: "Request refused".into(), message: message.into(), code: None }
    }
    pub fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong".into(),
            message: "The server could not complete the request. Please try again.".into(),
            code: Some("server_error"),
        }
    }
    /// The server has more work queued than it takes on (password hashing): 503, and the
    /// `Retry-After` every 503 page carries.
    pub fn busy() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Busy".into(),
            message: "The server is busy with many sign-ins just now. Wait a few seconds and try again.".into(),
            code: Some("temporarily_unavailable"),
        }
    }
    /// Too many requests from one browser or address: 429, with what to do.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: "Too many sign-ins at once".into(),
            message: message.into(),
            code: Some("temporarily_unavailable"),
        }
    }
    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Temporarily unavailable".into(),
            message: "The service is temporarily unavailable. Please try again in a moment.".into(),
            code: Some("temporarily_unavailable"),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = pages::ErrorPage { title: &self.title, message: &self.message, code: self.code };
        let mut resp = pages::render(self.status, &page);
        // Every 503 is passing (a busy queue, a store on its way back): say when to try again.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static(RETRY_AFTER));
        }
        resp
    }
}

/// Errors of a protected resource (RFC 6750 §3.1).
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: a bare challenge.
    Missing,
    InvalidRequest(&'static str),
    InvalidToken(&'static str),
    /// A DPoP-bound token presented without its proof, or with a refused one (RFC 9449 §7.1).
    InvalidDpopProof(&'static str),
    /// The proof must carry the server's nonce (RFC 9449 §9).
    UseDpopNonce(String),
    /// A DPoP-bound token presented as a Bearer token (RFC 9449 §7.2).
    DpopBound,
    Unavailable,
    Internal,
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, code, description) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"latchkey\"".to_owned(),
                "invalid_token",
                "No access token was presented.",
            ),
            Self::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                format!("Bearer realm=\"latchkey\", error=\"invalid_request\", error_description=\"{d}\""),
                "invalid_request",
                d,
            ),
            Self::InvalidToken(d) => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{d}\""),
                "invalid_token",
                d,
            ),
            Self::InvalidDpopProof(d) => (
                StatusCode::UNAUTHORIZED,
                format!("DPoP algs=\"{}\", error=\"invalid_dpop_proof\", error_description=\"{d}\"", dpop_algs()),
                "invalid_dpop_proof",
                d,
            ),
            Self::UseDpopNonce(nonce) => {
                let d = "the DPoP proof must carry the server's nonce";
                let challenge =
                    format!("DPoP algs=\"{}\", error=\"use_dpop_nonce\", error_description=\"{d}\"", dpop_algs());
                let mut resp = bearer_response(StatusCode::UNAUTHORIZED, &challenge, "use_dpop_nonce", d);
                if let Ok(v) = HeaderValue::from_str(&nonce) {
                    resp.headers_mut().insert("dpop-nonce", v);
                }
                return resp;
            }
            Self::DpopBound => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "DPoP algs=\"{}\", error=\"invalid_token\", error_description=\"this token is DPoP-bound: send it with the DPoP scheme and a proof\"",
                    dpop_algs()
                ),
                "invalid_token",
                "this token is DPoP-bound: send it with the DPoP scheme and a proof",
            ),
            Self::Unavailable => return OAuthError::temporarily_unavailable().into_response(),
            Self::Internal => return OAuthError::server_error().into_response(),
        };
        bearer_response(status, &challenge, code, description)
    }
}

fn dpop_algs() -> String {
    crate::oidc::dpop::ALGS.map(crate::keys::Alg::as_str).join(" ")
}

fn bearer_response(status: StatusCode, challenge: &str, code: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(challenge) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
