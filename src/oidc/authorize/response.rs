//! Delivering an authorization response (RFC 6749 §4.1.2) to a validated redirect_uri: as query
//! parameters on a 302, or as an auto-submitting form (OAuth 2.0 Form Post Response Mode). Every
//! response carries `iss` (RFC 9207).

use super::request::{AuthzError, ResponseMode, Target};
use crate::pages;
use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub fn code(state: &AppState, target: &Target, code: &str) -> Response {
    deliver(state, target, vec![("code", code.to_owned())])
}

pub fn error(state: &AppState, target: &Target, e: &AuthzError) -> Response {
    // RFC 6749 §4.1.2.1 limits error_description to printable ASCII without `"` and `\`.
    let description: String =
        e.description.chars().filter(|c| matches!(c, ' '..='~') && !matches!(c, '"' | '\\')).collect();
    deliver(state, target, vec![("error", e.code.to_owned()), ("error_description", description)])
}

fn deliver(state: &AppState, target: &Target, mut params: Vec<(&'static str, String)>) -> Response {
    if let Some(s) = &target.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", state.issuer.clone()));
    match target.response_mode {
        ResponseMode::Query => {
            let Ok(mut url) = url::Url::parse(&target.redirect_uri) else {
                return crate::http::PageError::internal().into_response();
            };
            url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        ResponseMode::FormPost => {
            let nonce = crate::crypto::random_id();
            let fields = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = pages::FormPostPage { action: &target.redirect_uri, fields, nonce: &nonce };
            let mut resp = pages::render(StatusCode::OK, &page);
            let csp =
                format!("default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'");
            if let Ok(v) = HeaderValue::from_str(&csp) {
                resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            resp
        }
    }
}
