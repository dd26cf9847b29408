//! CORS (the Fetch standard's CORS protocol) for browser clients: a single-page app calls
//! `/token`, `/userinfo` and `/revoke` from its own origin. Each client lists its allowed web
//! origins (`clients add|update --web-origin`, default `+`: the origins of its redirect URIs).
//!
//! A preflight carries no client id, so an origin is allowed when some registered client allows
//! it; the answer names that exact origin (never `*`), the methods and headers of the endpoint,
//! and `Vary: Origin`. No endpoint here reads cookies, so `Access-Control-Allow-Credentials` is
//! never sent. Introspection serves resource servers, not browsers, and gets no CORS at all.
//! Discovery and the JWKS are public documents without credentials: any origin may read them.

use crate::store::Store;
use axum::http::{HeaderName, HeaderValue, Method, header};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// How long the union of allowed origins is reused: a client added or updated through the CLI is
/// answered within this time on every node, like the client cache.
const ORIGINS_TTL: Duration = Duration::from_secs(2);

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The union of allowed origins and when it was read.
type Cached = Option<(Instant, Arc<HashSet<String>>)>;

/// The origins some client allows, read from the store at most every [`ORIGINS_TTL`].
#[derive(Clone)]
pub struct WebOrigins {
    store: Store,
    /// A std mutex: held for a lookup only, never across an await.
    cache: Arc<Mutex<Cached>>,
}

impl WebOrigins {
    pub fn new(store: Store) -> Self {
        Self { store, cache: Default::default() }
    }

    pub async fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else { return false };
        if let Some((at, set)) = self.cache.lock().unwrap().as_ref()
            && at.elapsed() < ORIGINS_TTL
        {
            return set.contains(origin);
        }
        match self.store.all_web_origins().await {
            Ok(all) => {
                let set: Arc<HashSet<String>> = Arc::new(all.into_iter().collect());
                *self.cache.lock().unwrap() = Some((Instant::now(), set.clone()));
                set.contains(origin)
            }
            Err(e) => {
                // Refusing is safe: the browser reports a CORS failure, nothing is disclosed.
                tracing::warn!(error = %e, "could not read the web origins");
                false
            }
        }
    }
}

/// CORS for an endpoint a browser client calls with its credentials in the request (a client id,
/// a code verifier, a bearer token) rather than cookies.
pub fn for_clients(origins: &WebOrigins, methods: &[Method]) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin, _| {
            let origins = origins.clone();
            async move { origins.allows(&origin).await }
        }))
        .allow_methods(methods.to_vec())
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("dpop")])
        // A bearer error's challenge is in `WWW-Authenticate`; `Retry-After` says when to retry.
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// CORS for the public documents (discovery, JWKS): readable from any origin, no credentials.
pub fn public() -> CorsLayer {
    CorsLayer::new().allow_origin(Any).allow_methods([Method::GET])
}
