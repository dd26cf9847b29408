//! Issue #20, reliability: a lost refresh response no longer costs the user their sign-in.
//! Within `tokens.refresh_reuse_grace_secs` of its first use, a rotated refresh token presented
//! again gets working tokens and the grant lives; after the grace (or once a newer token of the
//! family was used) reuse revokes the family as RFC 9700 §4.14.2 asks.

mod common;

use common::*;

/// A short grace, which the test clock moves past.
const GRACE: &str = "2";

async fn setup(grace: &str) -> (Server, TestClient, Tokens) {
    let server = Server::start_with(&[("LATCHKEY_REFRESH_REUSE_GRACE_SECS", grace)]);
    server.add_alice();
    let client = server.first_party_client();
    let tokens = server.code_flow(&server.browser(), &client, "openid offline_access").await;
    (server, client, tokens)
}

async fn refreshed(server: &Server, client: &TestClient, rt: &str) -> Tokens {
    let r = server.refresh(client, rt).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json())
}

#[tokio::test]
async fn a_retry_within_the_grace_gets_working_tokens_and_the_family_lives() {
    let (server, client, t) = setup(GRACE).await;
    let lost = refreshed(&server, &client, t.refresh_token()).await; // the response the client never saw
    let retried = refreshed(&server, &client, t.refresh_token()).await;
    assert_ne!(retried.refresh_token(), lost.refresh_token());
    check_userinfo(&server.userinfo(&retried.access_token).await);
    // The family goes on from the retried token.
    let next = refreshed(&server, &client, retried.refresh_token()).await;
    assert_eq!(server.introspect(&client, &next.access_token).await.json()["active"], true);
}

#[tokio::test]
async fn reuse_after_the_grace_revokes_the_family() {
    let (server, client, t) = setup(GRACE).await;
    let next = refreshed(&server, &client, t.refresh_token()).await;
    // Past the grace by the second-granular clock.
    server.advance(GRACE.parse::<i64>().unwrap() + 1);
    server.refresh(&client, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    server.refresh(&client, next.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    assert_eq!(server.introspect(&client, &next.access_token).await.json()["active"], false);
}

/// A client that went on with its new token did receive it: presenting the old one again is
/// reuse even inside the grace.
#[tokio::test]
async fn reuse_after_a_newer_token_was_used_revokes_even_within_the_grace() {
    let (server, client, t) = setup("60").await;
    let t2 = refreshed(&server, &client, t.refresh_token()).await;
    let t3 = refreshed(&server, &client, t2.refresh_token()).await;
    server.refresh(&client, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    server.refresh(&client, t3.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_grace_of_zero_revokes_at_once() {
    let (server, client, t) = setup("0").await;
    let next = refreshed(&server, &client, t.refresh_token()).await;
    server.refresh(&client, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    server.refresh(&client, next.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
}
