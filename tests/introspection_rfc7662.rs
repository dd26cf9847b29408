//! RFC 7662 (token introspection).

mod common;

use common::*;
use serde_json::json;

async fn setup() -> (Server, TestClient, Tokens) {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, "openid email offline_access").await;
    (server, c, t)
}

#[tokio::test]
async fn active_access_token() {
    let (server, c, t) = setup().await;
    let r = server.introspect(&c, &t.access_token).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json");
    let i = r.json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], c.id.as_str(), "{i}");
    assert_eq!(i["sub"], t.id_claims()["sub"], "{i}");
    let scope: Vec<&str> = i["scope"].as_str().unwrap_or_else(|| panic!("{i}")).split(' ').collect();
    for s in ["openid", "email", "offline_access"] {
        assert!(scope.contains(&s), "{s} in {i}");
    }
    let (exp, iat) = (i["exp"].as_i64().unwrap(), i["iat"].as_i64().unwrap());
    assert!(exp > now() && iat <= now() + 1 && exp > iat, "{i}");
    assert!(
        i["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "token_type of an access token: {i}"
    );
}

#[tokio::test]
async fn active_refresh_token() {
    let (server, c, t) = setup().await;
    let i = server.introspect(&c, t.refresh_token()).await.json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], c.id.as_str(), "{i}");
    assert_eq!(i["sub"], t.id_claims()["sub"], "{i}");
    assert!(i["scope"].as_str().is_some_and(|s| s.split(' ').any(|x| x == "offline_access")), "{i}");
    assert!(i.get("token_type").is_some(), "{i}");

    // After rotation the old refresh token is no longer active.
    assert_eq!(server.refresh(&c, t.refresh_token()).await.status, 200);
    let i = server.introspect(&c, t.refresh_token()).await.json();
    assert_eq!(i, json!({"active": false}));
}

#[tokio::test]
async fn unknown_token_is_inactive_and_nothing_else() {
    let (server, c, _) = setup().await;
    let r = server.introspect(&c, "garbage-token").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"active": false}));
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let (server, c, t) = setup().await;
    server.post_form("/introspect", &Auth::Nothing, &[("token", &t.access_token)]).await.assert_invalid_client();
    server
        .post_form("/introspect", &Auth::Basic(c.id.clone(), format!("{}x", c.secret())), &[("token", &t.access_token)])
        .await
        .assert_invalid_client();
}

#[tokio::test]
async fn introspection_without_token_is_invalid_request() {
    let (server, c, _) = setup().await;
    server.post_form("/introspect", &c.auth(), &[]).await.assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn expired_access_token_is_inactive() {
    let server = Server::start_with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "1")]);
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, "openid").await;
    assert_eq!(server.introspect(&c, &t.access_token).await.json()["active"], true);
    server.advance(2);
    assert_eq!(server.introspect(&c, &t.access_token).await.json(), json!({"active": false}));
}
