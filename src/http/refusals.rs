//! Refusals made by layers before any handler runs: a body over the size limit (413, from
//! axum's body limit) and a client over its rate limit (429, from tower-governor). Both layers
//! answer in plain text; this turns their answers into the format of the surface that was
//! called: OAuth JSON (RFC 6749 §5.2) on the protocol endpoints an RP calls from its back end,
//! a problem document on the admin API, a readable page everywhere else. A 429 says truthfully
//! when to retry.

use crate::http::{OAuthError, PageError};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_governor::GovernorError;

/// Where the account JSON API lives: its refusals are JSON too.
pub const JSON_API_PREFIX: &str = "/account/api/";

/// tower-governor's error handler: 429 with a `Retry-After` that is never too short.
pub fn rate_limited(e: GovernorError) -> Response {
    match e {
        GovernorError::TooManyRequests { wait_time, .. } => {
            crate::metrics::rate_limited();
            // governor rounds the wait down to whole seconds (often to 0): a client that waited
            // only that long would be refused again. One second more is always enough.
            let mut resp = StatusCode::TOO_MANY_REQUESTS.into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_time + 1));
            resp
        }
        other => {
            tracing::error!(error = %other, "rate limiter failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Rewrites a 413 or 429 that a layer answered in plain text into the surface's own format,
/// keeping its `Retry-After`. `protocol` are the paths whose callers are programs that parse
/// OAuth JSON errors (given by the router, which knows the endpoints).
pub async fn by_surface(State(protocol): State<&'static [&'static str]>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let protocol = protocol.contains(&path) || path.starts_with(JSON_API_PREFIX);
    let admin = path.starts_with(crate::admin::api::PREFIX);
    let resp = next.run(req).await;
    let status = resp.status();
    // Only plain text is a layer's: JSON and pages were written for their surface already.
    let formatted = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/json") || v.starts_with(b"text/html")
    });
    if formatted || !matches!(status, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS) {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let seconds = retry_after.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("a few");
    let (code, title, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ("invalid_request", "Request too large", "The request body is larger than this server accepts.".to_owned())
    } else {
        // RFC 6749 has no code for rate limits; `temporarily_unavailable` (§4.1.2.1) is the one
        // that tells a client to retry later rather than change its request.
        ("temporarily_unavailable", "Too many requests", format!("Too many requests; retry after {seconds} s."))
    };
    let mut out = if admin {
        // The admin API's own format: a problem document (RFC 9457) with the same code.
        crate::admin::api::Problem::new(status, code, message).into_response()
    } else if protocol {
        OAuthError { status, code, description: message, challenge: None, dpop_nonce: None }.into_response()
    } else {
        PageError { status, title: title.into(), message, code: None }.into_response()
    };
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

/// The largest body axum's extractors read (its `DefaultBodyLimit`).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// How much of a body declared too large is read and dropped before the 413 goes out.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// A body whose `Content-Length` is over [`BODY_LIMIT`] is refused (413) before any handler
/// runs, after the body is read and dropped: a server that answers and closes with request bytes
/// still unread makes the client's TCP stack reset the connection, so the client would see a
/// reset instead of the answer. Bodies over [`DRAIN_LIMIT`] are not read; theirs is the reset.
pub async fn declared_too_large(req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match declared {
        Some(n) if n > BODY_LIMIT => {
            if n <= DRAIN_LIMIT {
                let _ = axum::body::to_bytes(req.into_body(), DRAIN_LIMIT).await;
            }
            StatusCode::PAYLOAD_TOO_LARGE.into_response()
        }
        _ => next.run(req).await,
    }
}
