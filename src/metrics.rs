//! Prometheus metrics, served at `/metrics` when `metrics.enabled` is set. Recorded through the
//! `metrics` facade and rendered by `metrics-exporter-prometheus`:
//!
//! - `latchkey_http_requests_total{route,status}` and `latchkey_http_request_duration_seconds`
//!   (histogram, by route), from [`track`] around every request;
//! - `latchkey_tokens_issued_total{grant}`, from the token endpoint;
//! - `latchkey_sign_ins_total{outcome}` (`succeeded`, `failed`) and
//!   `latchkey_login_events_total{kind}`, counted where audit events are written ([`audited`]);
//! - `latchkey_rate_limited_total`, per-IP refusals;
//! - `latchkey_backend_errors_total{backend}` (`store`, `ephemeral`, `internal`);
//! - `latchkey_signing_key_age_seconds{kid,alg,state}`, read at each scrape;
//! - `latchkey_argon2_queue_depth`, hashes waiting for a password worker;
//! - `latchkey_store_query_duration_seconds` (histogram), every SQL statement's time: as sqlx
//!   reports it ([`store_timing`], a `tracing` layer on its `sqlx::query` events, listening only
//!   while the recorder is installed), and as [`time_statement`] and [`time_query`] take it for
//!   the statements sqlx does not report (the hot paths', on their own connections);
//! - `latchkey_redis_command_duration_seconds` (histogram) and `latchkey_redis_errors_total`,
//!   every command sent to Redis ([`redis_command`]).
//!
//! The `metrics` recorder is process-wide by that crate's design; with none installed (metrics
//! off, the CLI) every call here costs next to nothing.

use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const PATH: &str = "/metrics";

const REQUEST_DURATION: &str = "latchkey_http_request_duration_seconds";
const STORE_DURATION: &str = "latchkey_store_query_duration_seconds";
const REDIS_DURATION: &str = "latchkey_redis_command_duration_seconds";

/// Whether SQL statements are timed: only once the recorder is installed, so that with metrics
/// off sqlx does not even describe its statements.
static STORE_TIMING: AtomicBool = AtomicBool::new(false);

/// Latency buckets in seconds: a userinfo call takes well under a millisecond, a password
/// sign-in tens of milliseconds, a stalled store seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Store and Redis latency buckets: an indexed lookup takes tens of microseconds, a write that
/// syncs milliseconds, a stalled backend seconds.
const BACKEND_BUCKETS: [f64; 12] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder keeps every histogram sample until an upkeep folds it into its buckets, and
/// `install_recorder` leaves upkeep to its caller: with only scrapes to run it, a node whose
/// scrapes stopped (or never started) grew by 1.4 MB a second at 31 000 userinfo requests a
/// second. A thread of its own runs it, whatever runtime is current.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
const UPKEEP_THREAD: &str = "metrics-upkeep";

/// Installs the recorder once per process and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(STORE_DURATION.into()), &BACKEND_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(REDIS_DURATION.into()), &BACKEND_BUCKETS)?
        .install_recorder()?;
    STORE_TIMING.store(true, Ordering::Relaxed);
    let handle = HANDLE.get_or_init(|| handle).clone();
    let upkeep = handle.clone();
    std::thread::Builder::new().name(UPKEEP_THREAD.into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        }
    })?;
    Ok(handle)
}

/// `GET /metrics`, the Prometheus text exposition format.
pub fn router(handle: PrometheusHandle) -> Router<AppState> {
    Router::new().route(
        PATH,
        get(move |State(state): State<AppState>| {
            let handle = handle.clone();
            async move { scrape(&state, &handle).await }
        }),
    )
}

async fn scrape(state: &AppState, handle: &PrometheusHandle) -> Response {
    match state.store.signing_keys().await {
        Ok(rows) => {
            let now = state.now();
            for k in rows {
                let labels = [("kid", k.kid), ("alg", k.alg), ("state", k.state)];
                gauge!("latchkey_signing_key_age_seconds", &labels).set((now - k.created_at) as f64);
            }
        }
        Err(e) => {
            backend_error("store");
            tracing::warn!(error = %e, "metrics: could not read the signing keys");
        }
    }
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Middleware: counts every request by route template (never the raw path, whose ids would
/// make a series per user) and status, and records its latency.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let route = route.unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    histogram!(REQUEST_DURATION, "route" => route.clone()).record(started.elapsed().as_secs_f64());
    counter!("latchkey_http_requests_total", "route" => route, "status" => status).increment(1);
    resp
}

/// A token response was issued for `grant` (`authorization_code`, `refresh_token`, ...).
pub fn token_issued(grant: &str) {
    counter!("latchkey_tokens_issued_total", "grant" => grant.to_owned()).increment(1);
}

/// An audit event was written: sign-in events are counted by kind and by outcome.
pub fn audited(kind: &'static str) {
    if !kind.starts_with("login.") {
        return;
    }
    counter!("latchkey_login_events_total", "kind" => kind).increment(1);
    match kind {
        "login.succeeded" => counter!("latchkey_sign_ins_total", "outcome" => "succeeded").increment(1),
        "login.failed" => counter!("latchkey_sign_ins_total", "outcome" => "failed").increment(1),
        _ => {}
    }
}

/// A client was refused by the per-IP rate limit.
pub fn rate_limited() {
    counter!("latchkey_rate_limited_total").increment(1);
}

/// A request failed on a backing store (`store`, `ephemeral`) or on an internal error.
pub fn backend_error(backend: &'static str) {
    counter!("latchkey_backend_errors_total", "backend" => backend).increment(1);
}

/// A password hash joined (`1.0`) or left (`-1.0`) the argon2 queue.
pub fn argon2_queue(delta: f64) {
    gauge!("latchkey_argon2_queue_depth").increment(delta);
}

/// A command sent to Redis took `elapsed` and succeeded or not.
pub fn redis_command(elapsed: Duration, ok: bool) {
    histogram!(REDIS_DURATION).record(elapsed.as_secs_f64());
    if !ok {
        counter!("latchkey_redis_errors_total").increment(1);
    }
}

/// The `tracing` layer that times SQL statements: sqlx reports each one as a `sqlx::query`
/// event with its `elapsed_secs`. Its filter lets those events through only while metrics are
/// on, whatever the log filter says.
pub fn store_timing<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    let sqlx = |meta: &tracing::Metadata<'_>| meta.target() == "sqlx::query";
    // sqlx reports statements at DEBUG: the hint lets that level through the global maximum,
    // and the callsite filter keeps every other callsite's interest `never`, as the log filter
    // decided it, so no other DEBUG line costs anything.
    let filter = tracing_subscriber::filter::dynamic_filter_fn(move |meta, _| {
        sqlx(meta) && STORE_TIMING.load(Ordering::Relaxed)
    })
    .with_max_level_hint(tracing::Level::DEBUG)
    .with_callsite_filter(move |meta| match sqlx(meta) {
        true => tracing::subscriber::Interest::sometimes(),
        false => tracing::subscriber::Interest::never(),
    });
    StoreTiming.with_filter(filter)
}

/// Runs a statement that sqlx does not see (SQLite's, run in place by `store::direct`), timed
/// with sqlx's while metrics are on.
pub fn time_statement<T>(run: impl FnOnce() -> T) -> T {
    let start = statement_started();
    let out = run();
    statement_ended(start);
    out
}

/// [`time_statement`] for a statement that is awaited: Postgres's, on the hot paths' own
/// connections (`store::pg_direct`), which report nothing to `tracing`.
pub async fn time_query<T>(run: impl std::future::Future<Output = T>) -> T {
    let start = statement_started();
    let out = run.await;
    statement_ended(start);
    out
}

/// When a statement started, if statements are being timed.
fn statement_started() -> Option<Instant> {
    STORE_TIMING.load(Ordering::Relaxed).then(Instant::now)
}

fn statement_ended(start: Option<Instant>) {
    if let Some(start) = start {
        histogram!(STORE_DURATION).record(start.elapsed().as_secs_f64());
    }
}

struct StoreTiming;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StoreTiming {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Elapsed(Option<f64>);
        impl tracing::field::Visit for Elapsed {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "elapsed_secs" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut elapsed = Elapsed(None);
        event.record(&mut elapsed);
        if let Some(secs) = elapsed.0 {
            histogram!(STORE_DURATION).record(secs);
        }
    }
}
