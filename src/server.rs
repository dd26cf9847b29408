//! Starting the provider: bind, open the stores, load keys, serve until SIGTERM or Ctrl-C, then
//! let in-flight requests finish.

use crate::app;
use crate::clock::Clock;
use crate::config::Settings;
use crate::ephemeral::Ephemeral;
use crate::keys::{KeyRing, kek::Kek};
use crate::state::AppState;
use crate::store::Store;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
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
    let store = Store::connect(&settings).await?;
    store.migrate().await?;
    // The one clock of this process: every read of "now" below goes through it.
    let clock = Clock::from_env();
    if let Some(warning) = clock.warning() {
        eprintln!("{warning}");
    }
    let kek = Kek::load_or_create(&settings.keys_dir)?;
    let keys = Arc::new(KeyRing::load(store.clone(), kek, clock.now()).await?);
    let ephemeral = Ephemeral::open(&settings.ephemeral, clock.clone()).await?;
    let mail = crate::mail::Mailer::from_settings(&settings, clock.clone())?;
    let state = AppState::new(settings, issuer.clone(), store, ephemeral, keys.clone(), mail, clock.clone());
    let demo_info = if demo { Some(crate::demo::ensure(&state).await?) } else { None };
    let mut router = app::router(state.clone());
    if demo {
        router = router.merge(crate::demo::router(state.clone()));
    }
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

    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
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
