//! Middleware: a request id and span on every request, security headers on every response, and
//! per-IP rate limits (tower-governor) on the protocol and login endpoints.

use crate::config::RateLimit;
use crate::http::client_ip::{self, ClientIp};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Duration;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tracing::Instrument;

/// The policy for pages that set none of their own: no scripts, no framing.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// The policy of pages that run `/assets/webauthn.js`: the default, plus scripts from this
/// origin (no inline script) and the `fetch` of a challenge from it. No `form-action`: a login
/// form's answer redirects to the client, which browsers would hold to it.
pub const SCRIPTED_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
     img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

pub async fn request_context(req: Request, next: Next) -> Response {
    let id = crate::crypto::random_id();
    let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        let status = resp.status();
        if status.is_server_error() {
            tracing::error!(%status, "request failed");
        } else {
            tracing::debug!(%status, "request done");
        }
    });
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-request-id"), v);
    }
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(DEFAULT_CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// The operator's trusted proxies, which resolve the client address.
pub fn trusted_proxies(limits: &RateLimit) -> ClientIp {
    let trusted: Vec<_> = limits.trusted_proxies.iter().filter_map(|s| client_ip::parse_net(s)).collect();
    ClientIp::new(&trusted)
}

/// Wraps `router` in a per-client-IP limit, unless the operator turned limits off. Each node
/// counts on its own: N nodes behind a balancer allow N times the rate in all.
pub fn rate_limited<S: Clone + Send + Sync + 'static>(router: Router<S>, limits: &RateLimit) -> Router<S> {
    if limits.per_second == 0 {
        return router;
    }
    let Some(config) = GovernorConfigBuilder::default()
        .key_extractor(trusted_proxies(limits))
        .period(Duration::from_nanos(1_000_000_000 / limits.per_second))
        .burst_size(limits.burst.max(1))
        .finish()
    else {
        return router;
    };
    let limiter = config.limiter().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.retain_recent();
        }
    });
    router.layer(GovernorLayer::new(config).error_handler(crate::http::refusals::rate_limited))
}
