//! The state every handler shares and the router that serves them.

use crate::clock::Clock;
use crate::config::Settings;
use crate::ephemeral::Ephemeral;
use crate::http::middleware;
use crate::keys::KeyRing;
use crate::mail::Mailer;
use crate::passwords::Passwords;
use crate::store::Store;
use crate::{account, login, oidc, pages};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    /// The issuer identifier, exactly as it appears in `iss` (no trailing slash).
    pub issuer: String,
    pub store: Store,
    pub ephemeral: Ephemeral,
    pub keys: Arc<KeyRing>,
    pub passwords: Passwords,
    pub mail: Mailer,
    pub clock: Clock,
    /// Cookies carry `Secure` unless the issuer is plain-http localhost.
    pub secure_cookies: bool,
    /// The discovery document, built once per set of signing algorithms.
    pub discovery: oidc::discovery::Cached,
    /// For calls to upstream identity providers: short timeouts, no redirects.
    pub upstream_http: reqwest::Client,
    /// The WebAuthn relying party; none when the issuer cannot be one (an IP address).
    pub webauthn: Option<webauthn_rs::Webauthn>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        settings: Settings,
        issuer: String,
        store: Store,
        ephemeral: Ephemeral,
        keys: Arc<KeyRing>,
        mail: Mailer,
    ) -> Self {
        let secure_cookies = !issuer.starts_with("http://");
        let passwords = Passwords::new(settings.login.password_workers);
        let webauthn =
            crate::webauthn::relying_party(&issuer).inspect_err(|e| tracing::warn!("passkeys are off: {e}")).ok();
        Self(Arc::new(Inner {
            settings,
            issuer,
            store,
            ephemeral,
            keys,
            passwords,
            mail,
            clock: Clock::system(),
            secure_cookies,
            discovery: Default::default(),
            upstream_http: login::steps::federation::http_client(),
            webauthn,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The whole application: protocol endpoints, login pages, operations endpoints.
pub fn router(state: AppState) -> Router {
    let limited = Router::new().merge(oidc::router()).merge(login::router()).merge(account::router());
    let limited = middleware::rate_limited(limited, &state.settings.rate_limit);
    Router::new()
        .merge(limited)
        .merge(oidc::discovery::router())
        .route("/", get(home))
        .route("/assets/style.css", get(stylesheet))
        .route("/assets/webauthn.js", get(webauthn_js))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}

async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let now = state.now();
    let user = match login::session::current(&state, &headers, now).await {
        Ok(Some(s)) => state.store.user(&s.user_id).await.ok().flatten().map(|u| u.username),
        _ => None,
    };
    pages::render(StatusCode::OK, &pages::HomePage { issuer: &state.issuer, username: user.as_deref() })
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        pages::STYLESHEET,
    )
}

async fn webauthn_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        pages::WEBAUTHN_JS,
    )
}

async fn ready(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    if state.store.ping().await && state.ephemeral.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn not_found() -> crate::http::PageError {
    crate::http::PageError::not_found("There is nothing at this address.")
}
