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

/// A client registered with `--access-token-format opaque`.
fn opaque_client(server: &Server, extra: &[&str]) -> TestClient {
    let mut args = vec!["--redirect-uri", CALLBACK, "--first-party", "--access-token-format", "opaque"];
    args.extend_from_slice(extra);
    server.add_client("opaque rp", &args)
}

/// An opaque access token is no JWT, yet reads as one would wherever a token is checked:
/// introspection (with the same claims), userinfo, the account API; a refresh issues another.
#[tokio::test]
async fn opaque_access_tokens_work_where_jwts_do() {
    let server = Server::start();
    server.add_alice();
    let c = opaque_client(&server, &[]);
    let t = server.code_flow(&server.browser(), &c, "openid email offline_access").await;
    let at = t.access_token.as_str();
    assert!(!at.contains('.') && at.len() >= 43, "an opaque token, not a JWT: {at}");
    // The ID token still binds it (OIDC Core §3.1.3.6).
    assert_eq!(t.id_claims()["at_hash"], common::keys::at_hash("RS256", at), "{:?}", t.id_claims());

    let i = server.introspect(&c, at).await.json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], c.id.as_str(), "{i}");
    assert_eq!(i["sub"], t.id_claims()["sub"], "{i}");
    assert_eq!(i["iss"], server.issuer.as_str(), "{i}");
    assert!(i["scope"].as_str().is_some_and(|s| s.split(' ').any(|x| x == "email")), "{i}");
    assert_eq!(i["token_type"], "Bearer", "{i}");
    assert!(i.get("gid").is_none(), "the grant id stays inside: {i}");
    // Another client (not a resource server) learns nothing of it.
    let other = server.first_party_client();
    assert_eq!(server.introspect(&other, at).await.json(), json!({"active": false}));

    let u = server.userinfo(at).await;
    assert_eq!(u.status, 200, "{u:?}");
    assert_eq!(u.json()["sub"], t.id_claims()["sub"]);
    assert_eq!(u.json()["email"], "alice@example.com", "{u:?}");
    // One character off is just an unknown token.
    let mut forged = at.to_owned();
    forged.replace_range(..1, if at.starts_with('A') { "B" } else { "A" });
    assert_eq!(server.userinfo(&forged).await.status, 401);
    assert_eq!(server.introspect(&c, &forged).await.json(), json!({"active": false}));

    let r = server.refresh(&c, t.refresh_token()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let second = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(!second.contains('.') && second != at, "{second}");
    assert_eq!(server.introspect(&c, &second).await.json()["active"], true);
    assert_eq!(server.userinfo(&second).await.status, 200);
}

/// Revoking an opaque access token (RFC 7009) forgets it and, as for a JWT, revokes its grant:
/// the tokens it came with stop too.
#[tokio::test]
async fn revoked_opaque_access_token_is_inactive_with_its_grant() {
    let server = Server::start();
    server.add_alice();
    let c = opaque_client(&server, &[]);
    let t = server.code_flow(&server.browser(), &c, "openid offline_access").await;
    // Another client cannot revoke it.
    let other = server.first_party_client();
    assert_eq!(server.revoke(&other, &t.access_token).await.status, 200);
    assert_eq!(server.introspect(&c, &t.access_token).await.json()["active"], true);

    assert_eq!(server.revoke(&c, &t.access_token).await.status, 200);
    assert_eq!(server.introspect(&c, &t.access_token).await.json(), json!({"active": false}));
    assert_eq!(server.userinfo(&t.access_token).await.status, 401);
    assert_eq!(server.introspect(&c, t.refresh_token()).await.json(), json!({"active": false}));
    server.refresh(&c, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
}

/// An opaque token lives `tokens.access_token_ttl` by the server's clock, as a JWT does.
#[tokio::test]
async fn expired_opaque_access_token_is_inactive() {
    let server = Server::start_with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "60")]);
    server.add_alice();
    let c = opaque_client(&server, &[]);
    let t = server.code_flow(&server.browser(), &c, "openid").await;
    server.advance(50);
    assert_eq!(server.introspect(&c, &t.access_token).await.json()["active"], true);
    assert_eq!(server.userinfo(&t.access_token).await.status, 200);
    server.advance(11);
    assert_eq!(server.introspect(&c, &t.access_token).await.json(), json!({"active": false}));
    assert_eq!(server.userinfo(&t.access_token).await.status, 401);
}

/// A client_credentials token may be opaque too; no grant stands behind it, yet revoking it
/// stops it at once (a JWT one would live until it expires).
#[tokio::test]
async fn opaque_client_credentials_token_can_be_revoked() {
    let server = Server::start();
    let c = opaque_client(&server, &["--grant-type", "client_credentials", "--scope", "reports"]);
    let r = server.token(&c.auth(), &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(!at.contains('.'), "{at}");
    let i = server.introspect(&c, &at).await.json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], c.id.as_str(), "{i}");
    assert_eq!(i["scope"], "reports", "{i}");
    // It names no user: userinfo refuses it.
    assert_eq!(server.userinfo(&at).await.status, 401);

    assert_eq!(server.revoke(&c, &at).await.status, 200);
    assert_eq!(server.introspect(&c, &at).await.json(), json!({"active": false}));
}

/// The format is the client's setting: `clients add|update --access-token-format` and the admin
/// API's `access_token_format` (here through an admin client whose own tokens are opaque). A
/// change applies to the tokens issued from then on; those issued before work until they expire.
#[tokio::test]
async fn access_token_format_is_a_client_setting() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    assert_eq!(server.cli(&["clients", "show", &c.id, "--json"])["access_token_format"], "jwt");
    let jwt = server.code_flow(&server.browser(), &c, "openid").await.access_token;
    assert_eq!(jwt.matches('.').count(), 2, "{jwt}");

    let admin = opaque_client(&server, &["--grant-type", "client_credentials", "--scope", "latchkey:admin"]);
    let r = server.token(&admin.auth(), &[("grant_type", "client_credentials")]).await;
    let admin_token = r.json()["access_token"].as_str().unwrap_or_else(|| panic!("{r:?}")).to_owned();
    let patch = |format: &str| {
        server
            .request(reqwest::Method::PATCH, &format!("/admin/api/v1/clients/{}", c.id))
            .header("Authorization", format!("Bearer {admin_token}"))
            .header("Content-Type", "application/json")
            .body(json!({ "access_token_format": format }).to_string())
    };
    let r = server.send(patch("paseto")).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = server.send(patch("opaque")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["access_token_format"], "opaque", "{r:?}");
    assert_eq!(server.cli(&["clients", "show", &c.id, "--json"])["access_token_format"], "opaque");
    let opaque = server.code_flow(&server.browser(), &c, "openid").await.access_token;
    assert!(!opaque.contains('.'), "{opaque}");
    for token in [&jwt, &opaque] {
        assert_eq!(server.introspect(&c, token).await.json()["active"], true, "{token}");
    }

    let changed = server.cli(&["clients", "update", &c.id, "--access-token-format", "jwt", "--json"]);
    assert_eq!(changed["access_token_format"], "jwt", "{changed}");
    let (ok, _, err) = server.cli_raw(&["clients", "update", &c.id, "--access-token-format", "paseto"], None);
    assert!(!ok && err.contains("opaque"), "{err}");
}
