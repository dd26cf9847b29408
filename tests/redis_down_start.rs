//! Issue #20, reliability: a node starts while Redis is down (it used to exit 1), answers
//! `/readyz` and the requests that need Redis with 503, and recovers by itself when Redis
//! returns. Skips where `redis-server` is not installed.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_node_started_with_redis_down_recovers_when_redis_returns() {
    let Some(mut redis) = TestRedis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    redis.stop();
    let server = Server::start_on(Backends::with_redis(Some(redis.url())), &[]);
    server.expect_unavailable();
    server.add_alice();
    let client = server.first_party_client();

    assert_eq!(server.get("/healthz").await.status, 200);
    assert_eq!(server.get("/readyz").await.status, 503);
    assert_eq!(server.get("/.well-known/openid-configuration").await.status, 200, "discovery needs no Redis");
    let browser = server.browser();
    let r = browser.authorize(&auth_params(&client, "openid", "s", "n")).await;
    assert_eq!(r.status, 503, "a sign-in needs Redis: {r:?}");

    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "not ready 5 s after Redis returned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tokens = server.code_flow(&server.browser(), &client, "openid").await;
    check_userinfo(&server.userinfo(&tokens.access_token).await);
}
