//! RFC 7009 (token revocation).

mod common;

use common::*;

async fn setup() -> (Server, TestClient, Tokens) {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, "openid offline_access").await;
    (server, c, t)
}

#[tokio::test]
async fn revoking_a_refresh_token_kills_its_family() {
    let (server, c, t) = setup().await;
    let r = server.revoke(&c, t.refresh_token()).await;
    assert_eq!(r.status, 200, "{r:?}");
    server.refresh(&c, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    let i = server.introspect(&c, t.refresh_token()).await.json();
    assert_eq!(i, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn revoking_a_refresh_token_also_invalidates_its_access_tokens() {
    // RFC 7009 §2.1: SHOULD, and Latchkey's grant model makes it so.
    let (server, c, t) = setup().await;
    assert_eq!(server.revoke(&c, t.refresh_token()).await.status, 200);
    let i = server.introspect(&c, &t.access_token).await.json();
    assert_eq!(i["active"], false, "{i}");
    assert_eq!(server.userinfo(&t.access_token).await.status, 401);
}

#[tokio::test]
async fn revoking_an_access_token_stops_userinfo_and_introspection() {
    let (server, c, t) = setup().await;
    check_userinfo(&server.userinfo(&t.access_token).await);
    let r = server
        .post_form("/revoke", &c.auth(), &[("token", &t.access_token), ("token_type_hint", "access_token")])
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let u = server.userinfo(&t.access_token).await;
    assert_eq!(u.status, 401, "{u:?}");
    assert!(u.header("www-authenticate").unwrap_or("").contains("invalid_token"), "{u:?}");
    let i = server.introspect(&c, &t.access_token).await.json();
    assert_eq!(i["active"], false, "{i}");
}

#[tokio::test]
async fn a_wrong_hint_does_not_prevent_revocation() {
    let (server, c, t) = setup().await;
    let r = server
        .post_form("/revoke", &c.auth(), &[("token", t.refresh_token()), ("token_type_hint", "access_token")])
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    server.refresh(&c, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn unknown_tokens_are_answered_with_200() {
    let (server, c, _) = setup().await;
    let r = server.revoke(&c, "this-token-never-existed").await;
    assert_eq!(r.status, 200, "RFC 7009 §2.2: {r:?}");
}

#[tokio::test]
async fn revocation_requires_client_authentication() {
    let (server, c, t) = setup().await;
    server.post_form("/revoke", &Auth::Nothing, &[("token", t.refresh_token())]).await.assert_invalid_client();
    server
        .post_form("/revoke", &Auth::Basic(c.id.clone(), "wrong".into()), &[("token", t.refresh_token())])
        .await
        .assert_invalid_client();
    // Nothing was revoked.
    assert_eq!(server.refresh(&c, t.refresh_token()).await.status, 200);
}

#[tokio::test]
async fn another_client_cannot_revoke_a_token() {
    let (server, c, t) = setup().await;
    let other = server.add_client("other", &["--redirect-uri", CALLBACK2]);
    let r = server.revoke(&other, t.refresh_token()).await;
    assert!(matches!(r.status, 200 | 400), "{r:?}");
    let r = server.revoke(&other, &t.access_token).await;
    assert!(matches!(r.status, 200 | 400), "{r:?}");
    // RFC 7009 §2.1: the token was not issued to that client, so it stays valid.
    check_userinfo(&server.userinfo(&t.access_token).await);
    assert_eq!(server.refresh(&c, t.refresh_token()).await.status, 200);
}

#[tokio::test]
async fn revocation_without_token_is_invalid_request() {
    let (server, c, _) = setup().await;
    server.post_form("/revoke", &c.auth(), &[]).await.assert_oauth_error(400, "invalid_request");
}
