//! Starting the provider: bind, open the stores, load keys, serve until SIGTERM or Ctrl-C, then
//! let in-flight requests finish. The serving loop is hyper's own (not `axum::serve`) for three
//! limits: a header-read timeout (a slowloris client is closed), a cap on open connections, and
//! a shutdown deadline (a stuck client cannot keep a stopping node alive).

use crate::app;
use crate::clock::Clock;
use crate::config::Settings;
use crate::ephemeral::Ephemeral;
use crate::keys::{KeyRing, kek::Kek};
use crate::state::AppState;
use crate::store::Store;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub async fn run(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    let issuer = match &settings.issuer {
        Some(i) => i.trim_end_matches('/').to_owned(),
        None => format!("http://localhost:{}", addr.port()),
    };
    crate::dirs::prepare(&settings)?;
    // The one clock of this process: every read of "now" below goes through it.
    let clock = Clock::from_env();
    if let Some(warning) = clock.warning() {
        eprintln!("{warning}");
    }
    let store = Store::connect(&settings, clock.clone()).await?;
    store.migrate().await?;
    let kek = Kek::load_or_create(&settings.keys_dir)?;
    // A KEK file beside the database is fine on a developer's machine, not in production.
    let development = url::Url::parse(&issuer).is_ok_and(|u| crate::config::is_loopback(&u));
    if !development
        && let Some(dir) = kek.keys_dir()
        && crate::keys::kek::beside_database(dir, &settings.database_url())
    {
        tracing::warn!(
            keys_dir = %dir.display(),
            "the key-encryption key file is on the same volume as the database, so one copy of that volume \
             opens every signing key; set LATCHKEY_KEK from a secret store, or move keys_dir to another volume"
        );
    }
    let keys = Arc::new(KeyRing::load(store.clone(), kek, clock.now()).await?);
    let ephemeral = Ephemeral::open(&settings.ephemeral, clock.clone()).await?;
    let state = AppState::new(settings, issuer.clone(), store, ephemeral, keys.clone(), clock.clone())?;
    let demo_info = if demo { Some(crate::demo::ensure(&state).await?) } else { None };
    let mut router = app::router(state.clone());
    if demo {
        router = router.merge(crate::demo::router(state.clone()));
    }
    let app = app::service(router, &state);
    let key_settings = state.settings.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::keys::REFRESH);
        let mut offset = clock.offset_secs();
        loop {
            // Every REFRESH, and at once when a test moves the clock (never otherwise).
            tokio::select! {
                _ = tick.tick() => {}
                moved = clock.moved(offset) => offset = moved,
            }
            if let Err(e) = keys.tick(&key_settings, clock.now()).await {
                tracing::warn!(error = %e, "could not refresh signing keys");
            }
        }
    });

    let mut out = std::io::stdout().lock();
    writeln!(out, "Listening on {addr}")?;
    writeln!(out, "Issuer: {issuer}")?;
    match demo_info {
        Some(info) => writeln!(out, "{info}")?,
        None => writeln!(
            out,
            "\nNext: register an application and a user (in another terminal, same directory):\n  \
             latchkey clients add --name \"My app\" --redirect-uri https://app.example/callback\n  \
             latchkey users add --username alice --email alice@example.com --password-stdin\n\
             or restart with `serve --demo` for a ready-made demo client and user."
        )?,
    }
    out.flush()?;
    drop(out);

    crate::store::purge::spawn(state.store.clone(), state.settings.clone(), state.clock.clone());
    crate::oidc::backchannel::spawn(state.clone());
    serve(listener, app, &state.settings.http).await;
    Ok(())
}

/// Accepts connections until the shutdown signal, at most `max_connections` at once; then stops
/// accepting at once, lets open connections finish, and returns when they have or when the
/// deadline has passed, whichever comes first.
async fn serve(listener: TcpListener, app: app::App, limits: &crate::config::Http) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut signal = std::pin::pin!(shutdown_signal());
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let app = app.clone();
            async move { app.serve(req.map(axum::body::Body::new)).await }
        });
        let conn = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let deadline = Duration::from_secs(limits.shutdown_deadline_secs);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("stopped"),
        _ = tokio::time::sleep(deadline) => tracing::warn!("stopped at the shutdown deadline with requests still open"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
