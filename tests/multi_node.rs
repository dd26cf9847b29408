//! Several stateless nodes over one durable store and one Redis: whatever node a request lands on,
//! the provider behaves as one. Two real server processes share a database (Postgres when
//! `LATCHKEY_TEST_POSTGRES` is set, else one SQLite file) and a Redis key prefix (the Redis of
//! `LATCHKEY_TEST_REDIS`, else a `redis-server` the test starts). Both announce one issuer, as
//! nodes behind a load balancer do, and the test addresses each node directly.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The issuer both nodes announce (the load balancer's address; never contacted).
const ISSUER: &str = "http://localhost:9";

struct Cluster {
    a: Server,
    b: Server,
    client: TestClient,
    /// Keeps the test's own Redis running, when it started one.
    _redis: Option<TestRedis>,
}

/// Starts two nodes on shared backends, or `None` when no Redis is to be had on this machine.
fn cluster() -> Option<Cluster> {
    let (backends, redis) = match std::env::var("LATCHKEY_TEST_REDIS").ok().filter(|v| !v.is_empty()) {
        Some(_) => (Backends::fresh(), None),
        None => {
            let Some(redis) = TestRedis::start() else {
                eprintln!("skipped: neither LATCHKEY_TEST_REDIS nor redis-server is available");
                return None;
            };
            (Backends::with_redis(Some(redis.url())), Some(redis))
        }
    };
    let env = [("LATCHKEY_ISSUER", ISSUER), ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0")];
    let a = Server::start_on(backends.clone(), &env);
    let b = Server::start_on(backends, &env);
    assert!(a.backends().uses_redis());
    assert_eq!(a.issuer, ISSUER);
    assert_eq!(b.issuer, ISSUER);
    assert_ne!(a.base, b.base, "two nodes, two listeners");
    a.add_alice();
    let client = a.first_party_client();
    Some(Cluster { a, b, client, _redis: redis })
}

/// Signs in on `browser`'s node (or reuses its session) and returns a fresh code and its verifier.
async fn code(browser: &Browser, client: &TestClient) -> (String, Pkce) {
    let pkce = Pkce::new();
    let state = random_string();
    let nonce = random_string();
    let mut params = auth_params(client, "openid profile", &state, &nonce);
    params.extend([("code_challenge", pkce.challenge.as_str()), ("code_challenge_method", "S256")]);
    let outcome = browser.authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_eq!(outcome.param("state"), Some(state.as_str()), "{outcome:?}");
    (outcome.code(), pkce)
}

#[tokio::test]
async fn code_issued_by_one_node_is_redeemed_at_the_other() {
    let Some(c) = cluster() else { return };
    let browser = c.a.browser();
    let (code, pkce) = code(&browser, &c.client).await;
    let r = c.b.redeem(&c.client, &code, Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = Tokens::from_json(r.json());
    check_id_token(tokens.id_token(), ISSUER, &c.client.id, None, Some(&tokens.access_token), &c.b.jwks().await);
    // The access token works on both nodes.
    for node in [&c.a, &c.b] {
        let info = node.userinfo(&tokens.access_token).await;
        assert_eq!(info.status, 200, "{info:?}");
    }
    // And the code is spent on both.
    for node in [&c.a, &c.b] {
        node.redeem(&c.client, &code, Some(&pkce.verifier)).await.assert_oauth_error(400, "invalid_grant");
    }
}

/// RFC 6749 §4.1.2: a code is used once. Sent to both nodes at the same instant, exactly one
/// redemption succeeds; the other is reuse, so the grant the winner got is revoked everywhere.
#[tokio::test]
async fn one_code_sent_to_both_nodes_at_once_succeeds_exactly_once() {
    let Some(c) = cluster() else { return };
    let browser = c.a.browser();
    for round in 0..20 {
        let (code, pkce) = code(&browser, &c.client).await;
        let (ra, rb) = tokio::join!(
            c.a.redeem(&c.client, &code, Some(&pkce.verifier)),
            c.b.redeem(&c.client, &code, Some(&pkce.verifier)),
        );
        let (won, lost) = match (ra.status, rb.status) {
            (200, 400) => (ra, rb),
            (400, 200) => (rb, ra),
            other => panic!("round {round}: statuses {other:?}, want one 200 and one 400\n{ra:?}\n{rb:?}"),
        };
        lost.assert_oauth_error(400, "invalid_grant");
        let access_token = won.json()["access_token"].as_str().unwrap().to_string();
        for node in [&c.a, &c.b] {
            let info = node.userinfo(&access_token).await;
            assert_eq!(info.status, 401, "round {round}: a reused code's tokens must be revoked: {info:?}");
        }
    }
}

#[tokio::test]
async fn a_session_made_on_one_node_is_seen_and_ended_on_the_other() {
    let Some(c) = cluster() else { return };
    let on_a = c.a.browser();
    let on_b = on_a.on(&c.b);
    code(&on_a, &c.client).await;

    // Signed in on A: B knows the session (no login page, straight to a code).
    let state = random_string();
    let nonce = random_string();
    let mut silent = auth_params(&c.client, "openid", &state, &nonce);
    silent.push(("prompt", "none"));
    let outcome = on_b.authorize_and_complete(&silent, None, Decision::NotExpected).await;
    assert!(outcome.param("code").is_some(), "B did not see A's session: {outcome:?}");

    // Logout on B ends the session on A.
    let page = on_b.get(&on_b.resolve("/logout")).await;
    let form = page.forms().into_iter().find(|f| f.method == "post").unwrap_or_else(|| panic!("{page:?}"));
    let done = on_b.submit(&form, &[("confirm", "yes")]).await;
    assert!(done.status < 400, "{done:?}");
    let outcome = on_a.authorize_and_complete(&silent, None, Decision::NotExpected).await;
    assert_eq!(outcome.error(), "login_required", "A still has the session: {outcome:?}");
}

/// A client removed through the CLI stops working on every node within seconds, no restart.
#[tokio::test]
async fn a_client_removed_through_the_cli_is_refused_by_both_nodes_within_5_seconds() {
    let Some(c) = cluster() else { return };
    let service = c.a.add_client("service", &["--grant-type", "client_credentials", "--scope", "billing:read"]);
    let grant = [("grant_type", "client_credentials"), ("scope", "billing:read")];
    for node in [&c.a, &c.b] {
        let r = node.token(&service.auth(), &grant).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    c.b.cli_text(&["clients", "remove", &service.id], None);
    let removed = Instant::now();
    for node in [&c.a, &c.b] {
        loop {
            let r = node.token(&service.auth(), &grant).await;
            if r.status == 401 {
                r.assert_invalid_client();
                break;
            }
            assert_eq!(r.status, 200, "{r:?}");
            assert!(removed.elapsed() < Duration::from_secs(5), "{} still accepts a removed client", node.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A key rotation through the CLI is honoured by every node within seconds, no restart: both sign
/// with the newly active key and publish the new next key.
#[tokio::test]
async fn a_key_rotated_through_the_cli_is_used_by_both_nodes_within_5_seconds() {
    let Some(c) = cluster() else { return };
    let service = c.a.add_client("service", &["--grant-type", "client_credentials", "--scope", "billing:read"]);
    let grant = [("grant_type", "client_credentials"), ("scope", "billing:read")];
    let rotated = c.b.cli(&["keys", "rotate", "--alg", "RS256", "--force", "--json"]);
    let active = rotated[0]["active"].as_str().unwrap_or_else(|| panic!("{rotated}")).to_string();
    let next = rotated[0]["next"].as_str().unwrap_or_else(|| panic!("{rotated}")).to_string();
    let rotated_at = Instant::now();
    for node in [&c.a, &c.b] {
        loop {
            let r = node.token(&service.auth(), &grant).await;
            assert_eq!(r.status, 200, "{r:?}");
            let kid = jwt_header(r.json()["access_token"].as_str().unwrap())["kid"].as_str().unwrap().to_string();
            let published = node.jwks().await["keys"].as_array().unwrap().iter().any(|k| k["kid"] == next.as_str());
            if kid == active && published {
                break;
            }
            assert!(rotated_at.elapsed() < Duration::from_secs(5), "{} still signs with {kid}", node.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
