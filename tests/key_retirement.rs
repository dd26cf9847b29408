//! Retirement: a retired key stays in the JWKS until every token it signed has expired (its
//! `retires_at` is the retirement plus the longest token lifetime, plus the nodes' refresh
//! interval), and leaves it then.

mod common;

use common::keys::*;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn retired_key_leaves_the_jwks_only_after_its_tokens_expired() {
    let server = Server::start_with(&[
        ("LATCHKEY_JWKS_MAX_AGE", "1"),
        ("LATCHKEY_ID_TOKEN_TTL", "2"),
        ("LATCHKEY_ACCESS_TOKEN_TTL", "2"),
    ]);
    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    let old = kid_in(&server, "RS256", "active");
    // The next key created at start must be published for over max-age + 2 s before it signs.
    server.advance(4);
    let t = loop {
        let t = server.code_flow(&browser, &client, "openid").await;
        let (ok, _, stderr) = server.cli_raw(&["keys", "rotate"], None);
        if ok {
            break t;
        }
        assert!(stderr.contains("--force"), "{stderr}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let retired_at = server.now();
    assert_eq!(jwt_header(t.id_token())["kid"], old.as_str());
    let exp =
        jwt_claims(t.id_token())["exp"].as_i64().unwrap().max(jwt_claims(&t.access_token)["exp"].as_i64().unwrap());

    let v = server.cli(&["keys", "list", "--json"]);
    let row = v.as_array().unwrap().iter().find(|k| k["kid"] == old.as_str()).unwrap().clone();
    assert_eq!(row["state"], "retired", "{row}");
    let retires_at = row["retires_at"].as_i64().unwrap();
    assert!(retires_at >= exp, "retires_at {retires_at} is after the last token's exp {exp}");
    assert!(retires_at <= retired_at + 2 + 2 + 1, "and not much later: {row}");

    // Poll the JWKS: the old key is there until the tokens it signed have expired.
    let mut rp = CachingRp::new(&server).await;
    rp.verify(&server, t.id_token()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jwks = server.jwks().await;
        let published = jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == old.as_str());
        if !published {
            let now = server.now();
            assert!(now >= exp, "the retired key left the JWKS at {now} before its last token expired at {exp}");
            break;
        }
        assert!(Instant::now() < deadline, "the retired key is still published 10 s later");
        // A second on, and a moment for the node's key refresh, which reacts to a moved clock.
        server.advance(1);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(server.now() <= retires_at + 5, "it left within a refresh (and some scheduling slack) of retires_at");
}

#[tokio::test]
async fn retiring_the_next_key_replaces_it_and_retiring_active_rotates() {
    // A long max-age: the new next key stays too young for the whole test.
    let server = Server::start_with(&[("LATCHKEY_JWKS_MAX_AGE", "30")]);
    let next = kid_in(&server, "RS256", "next");
    server.cli_text(&["keys", "retire", &next], None);
    let new_next = kid_in(&server, "RS256", "next");
    assert_ne!(new_next, next);
    let jwks = server.jwks().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut jwks = jwks;
    while jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == next.as_str()) {
        assert!(Instant::now() < deadline, "a retired next key (it signed nothing) leaves at once: {jwks}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        jwks = server.jwks().await;
    }
    let active = kid_in(&server, "RS256", "active");
    let (ok, _, stderr) = server.cli_raw(&["keys", "retire", &active], None);
    assert!(!ok && stderr.contains("--force"), "the new next key is too young: {stderr}");
    server.cli_text(&["keys", "retire", &active, "--force"], None);
    assert_eq!(kid_in(&server, "RS256", "active"), new_next);
}
