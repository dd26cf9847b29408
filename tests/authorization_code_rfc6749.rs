//! RFC 6749 §4.1.2 / §4.1.3 and §10.5: authorization codes are short-lived, single use, bound
//! to client and redirect_uri; a reused code revokes what it issued.

mod common;

use common::*;
use serde_json::json;

async fn setup_with(env: &[(&str, &str)]) -> (Server, TestClient, Browser) {
    let server = Server::start_with(env);
    server.add_alice();
    let c = server.first_party_client();
    let b = server.browser();
    (server, c, b)
}

async fn code(b: &Browser, c: &TestClient, scope: &str) -> String {
    b.authorize_and_complete(&auth_params(c, scope, "s", "n"), Some((USER, PASSWORD)), Decision::Allow).await.code()
}

#[tokio::test]
async fn reused_code_is_invalid_grant_and_revokes_what_it_issued() {
    let (server, c, b) = setup_with(&[]).await;
    let code = code(&b, &c, "openid offline_access").await;
    let r = server.redeem(&c, &code, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = Tokens::from_json(r.json());
    check_userinfo(&server.userinfo(&t.access_token).await);

    server.redeem(&c, &code, None).await.assert_oauth_error(400, "invalid_grant");

    let u = server.userinfo(&t.access_token).await;
    assert_eq!(u.status, 401, "the first access token is revoked: {u:?}");
    assert_eq!(server.introspect(&c, &t.access_token).await.json(), json!({"active": false}));
    server.refresh(&c, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
}

/// The exchange's one write checks that the user is still enabled and the session the code
/// came from still live; when either is not, it is `invalid_grant` and nothing is written.
#[tokio::test]
async fn code_of_an_ended_session_or_a_disabled_user_writes_nothing() {
    let (server, c, b) = setup_with(&[]).await;
    let stored = || {
        let (grants, tokens) = ("SELECT id FROM grants", "SELECT token_hash FROM refresh_tokens");
        (server.db_strings(grants).len(), server.db_strings(tokens).len())
    };
    let description = |r: &Resp| r.json()["error_description"].as_str().unwrap_or_default().to_owned();

    let ended = code(&b, &c, "openid offline_access").await;
    server.cli(&["users", "sign-out", USER, "--json"]);
    let r = server.redeem(&c, &ended, None).await;
    r.assert_oauth_error(400, "invalid_grant");
    assert!(description(&r).contains("session"), "{r:?}");

    let disabled = code(&server.browser(), &c, "openid offline_access").await;
    server.cli(&["users", "disable", USER, "--json"]);
    let r = server.redeem(&c, &disabled, None).await;
    r.assert_oauth_error(400, "invalid_grant");
    assert!(description(&r).contains("no longer active"), "{r:?}");
    assert_eq!(stored(), (0, 0), "no grant and no refresh token written");

    server.cli(&["users", "enable", USER, "--json"]);
    let live = code(&server.browser(), &c, "openid offline_access").await;
    let r = server.redeem(&c, &live, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(stored(), (1, 1));
}

#[tokio::test]
async fn code_expires_after_the_code_ttl() {
    let (server, c, b) = setup_with(&[("LATCHKEY_CODE_TTL", "1")]).await;
    let code = code(&b, &c, "openid").await;
    server.advance(2);
    server.redeem(&c, &code, None).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn code_is_bound_to_its_client() {
    let (server, c, b) = setup_with(&[]).await;
    let other = server.add_client("other", &["--redirect-uri", CALLBACK, "--first-party"]);
    let code = code(&b, &c, "openid").await;
    server.redeem(&other, &code, None).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn code_is_bound_to_its_redirect_uri() {
    let server = Server::start();
    server.add_alice();
    let c = server.add_client("two uris", &["--redirect-uri", CALLBACK, "--redirect-uri", CALLBACK2, "--first-party"]);
    let b = server.browser();
    let code = code(&b, &c, "openid").await;
    server
        .token(&c.auth(), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK2)])
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn missing_redirect_uri_or_code_is_invalid_request() {
    let (server, c, b) = setup_with(&[]).await;
    let code = code(&b, &c, "openid").await;
    server
        .token(&c.auth(), &[("grant_type", "authorization_code"), ("code", &code)])
        .await
        .assert_oauth_error(400, "invalid_request");
    server
        .token(&c.auth(), &[("grant_type", "authorization_code"), ("redirect_uri", CALLBACK)])
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let (server, c, _) = setup_with(&[]).await;
    server
        .redeem(&c, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", None)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn codes_are_long_and_random() {
    let (_server, c, b) = setup_with(&[]).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let code = code(&b, &c, "openid").await;
        assert!(code.len() >= 43, "code length: {code}");
        assert!(entropy_bits(&code) > 96.0, "code entropy: {code}");
        assert!(seen.insert(code), "codes repeat");
    }
}
