//! The application: every module's routes, the operations endpoints, and the middleware around
//! them.

use crate::http::{cors, middleware, refusals};
use crate::state::AppState;
use crate::{account, login, oidc, pages};
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::convert::Infallible;
use tower::ServiceExt;

/// The whole application: protocol endpoints, login pages, operations endpoints.
pub fn router(state: AppState) -> Router {
    let origins = cors::WebOrigins::new(state.store.clone());
    let limited = Router::new()
        .merge(oidc::router(&origins))
        .merge(login::router())
        .merge(account::router())
        .merge(account::api::router(&origins))
        .merge(crate::admin::api::router(&state));
    // The forward-auth gateway: its pages limited like the others, its checks not.
    let gateway = crate::gateway::routers(&state);
    let limited = match &gateway {
        Some((_, pages)) => limited.merge(pages.clone()),
        None => limited,
    };
    let limited = middleware::rate_limited(limited, &state.settings.rate_limit);
    let mut router = Router::new();
    if let Some((checks, _)) = gateway {
        router = router.merge(checks);
    }
    if state.settings.metrics.enabled {
        match crate::metrics::install() {
            Ok(handle) => router = router.merge(crate::metrics::router(handle)),
            Err(e) => tracing::error!(error = %e, "metrics are off: could not install the recorder"),
        }
    }
    let router = router
        .merge(limited)
        .merge(oidc::discovery::router())
        .route("/", get(home))
        .route("/assets/style.css", get(stylesheet))
        .route("/assets/webauthn.js", get(webauthn_js))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(not_found);
    // Per route, as it labels requests by their route (`MatchedPath`), which only routing knows.
    let router = if state.settings.metrics.enabled {
        router.layer(axum::middleware::from_fn(crate::metrics::track))
    } else {
        router
    };
    router.with_state(state)
}

/// The service that serves `router`: the middleware every request passes through, around the
/// router rather than inside it on every route (`Router::layer`), where each layer boxed the
/// route again and each request cloned the boxes of every layer below.
pub fn service(router: Router, state: &AppState) -> App {
    // HSTS (RFC 6797) only where the issuer is https: a plain-http development issuer would be
    // made unreachable in the browser for a year.
    let hsts = state.issuer.starts_with("https://").then(|| {
        tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000"),
        )
    });
    let client_ip = middleware::trusted_proxies(&state.settings.rate_limit);
    let cert_gate = oidc::mtls::Gate::new(state);
    let service = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(middleware::request_context))
        .layer(axum::middleware::from_fn_with_state(client_ip, crate::http::client_ip::resolve_client))
        .layer(axum::middleware::from_fn_with_state(state.clone(), pages::scope))
        .layer(axum::middleware::from_fn_with_state(cert_gate, oidc::mtls::from_trusted_proxies))
        .option_layer(hsts)
        .layer(axum::middleware::from_fn_with_state(oidc::BACK_CHANNEL, refusals::by_surface))
        .layer(axum::middleware::from_fn(refusals::declared_too_large))
        .service(router);
    App(tower::util::BoxCloneSyncService::new(service))
}

/// The application as one service (see [`service`]).
#[derive(Clone)]
pub struct App(tower::util::BoxCloneSyncService<Request, Response, Infallible>);

impl App {
    /// Serves one request. Takes the application by value, as `oneshot` does: the connection
    /// clones it once per request.
    pub async fn serve(self, req: Request) -> Result<Response, Infallible> {
        self.0.oneshot(req).await
    }
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

/// The built-in stylesheet, or the theme's `style.css`.
async fn stylesheet(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        state.theme.stylesheet().to_owned(),
    )
}

async fn webauthn_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        pages::WEBAUTHN_JS,
    )
}

/// How long `/readyz` waits for the stores: under the 1–2 s timeouts of usual probes, so that an
/// unreachable store reads 503 rather than a probe timeout.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

async fn ready(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    let both = async { tokio::join!(state.store.ping(), state.ephemeral.ping()) };
    if let Ok((true, true)) = tokio::time::timeout(READY_TIMEOUT, both).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn not_found() -> crate::http::PageError {
    crate::http::PageError::not_found("There is nothing at this address.")
}
