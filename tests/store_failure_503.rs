//! Issue #20, reliability: a store failure on a protocol endpoint is 503
//! `temporarily_unavailable` (introspection answered 500), and `/readyz` answers a Postgres
//! outage within a second (it waited for the pool's 3 s acquire timeout). Needs the Postgres link
//! of the harness; skips on SQLite.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn introspection_and_readyz_answer_503_quickly_when_postgres_is_cut() {
    let Some((backends, link)) = Backends::with_postgres_link() else {
        eprintln!("skipped: LATCHKEY_TEST_POSTGRES is not set");
        return;
    };
    let server = Server::start_on(backends, &[]);
    server.add_alice();
    let client = server.first_party_client();
    let tokens = server.code_flow(&server.browser(), &client, "openid").await;
    // Warms the client cache, so the failure meets the grant lookup, not client authentication.
    assert_eq!(server.introspect(&client, &tokens.access_token).await.json()["active"], true);

    server.expect_unavailable();
    link.cut();
    server.introspect(&client, &tokens.access_token).await.assert_oauth_error(503, "temporarily_unavailable");

    let asked = Instant::now();
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(asked.elapsed() < Duration::from_millis(1000), "readyz took {:?}", asked.elapsed());

    link.restore();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "not ready after the link came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
