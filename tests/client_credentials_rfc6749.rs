//! RFC 6749 §4.4 (client credentials grant) with RFC 9068 JWT access tokens.

mod common;

use common::*;
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, OAuth2TokenResponse};

fn service(server: &Server) -> TestClient {
    server.add_client("service", &["--redirect-uri", CALLBACK, "--grant-type", "client_credentials"])
}

#[tokio::test]
async fn client_credentials_issues_an_at_jwt_without_refresh_or_id_token() {
    let server = Server::start();
    let c = service(&server);
    let r = server.token(&c.auth(), &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json");
    assert!(r.header("cache-control").unwrap_or("").contains("no-store"), "{r:?}");
    let v = r.json();
    assert!(v.get("refresh_token").is_none(), "RFC 6749 §4.4.3: no refresh token: {v}");
    assert!(v.get("id_token").is_none(), "no user, no ID token: {v}");
    assert!(v["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{v}");
    assert!(v["expires_in"].as_i64().is_some_and(|e| e > 0), "{v}");

    let at = v["access_token"].as_str().unwrap();
    let jwks = server.jwks().await;
    let header = verify_rs256(at, &jwks);
    assert!(
        header["typ"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")),
        "{header}"
    );
    let claims = jwt_claims(at);
    assert_eq!(claims["iss"], server.issuer.as_str(), "{claims}");
    assert_eq!(claims["client_id"], c.id.as_str(), "{claims}");
    // RFC 9068 §2.2: sub is required; with no resource owner it identifies the client.
    for k in ["sub", "exp", "iat", "jti", "aud"] {
        assert!(claims.get(k).is_some(), "{k} missing: {claims}");
    }

    // Introspection agrees.
    let i = server.introspect(&c, at).await.json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], c.id.as_str(), "{i}");
}

#[tokio::test]
async fn client_credentials_through_the_openidconnect_client() {
    let server = Server::start();
    let c = service(&server);
    let http = server.rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.id.clone()),
        Some(ClientSecret::new(c.secret().to_string())),
    );
    let token = client
        .exchange_client_credentials()
        .unwrap()
        .request_async(&http)
        .await
        .expect("client_credentials via openidconnect");
    assert!(token.refresh_token().is_none());
    assert!(!token.access_token().secret().is_empty());
}

#[tokio::test]
async fn client_credentials_refused_for_a_client_without_the_grant() {
    let server = Server::start();
    let c = server.confidential_client();
    server
        .token(&c.auth(), &[("grant_type", "client_credentials")])
        .await
        .assert_oauth_error(400, "unauthorized_client");
}

#[tokio::test]
async fn client_credentials_client_cannot_use_the_code_flow() {
    let server = Server::start();
    let c = service(&server);
    server
        .token(&c.auth(), &[("grant_type", "authorization_code"), ("code", "whatever"), ("redirect_uri", CALLBACK)])
        .await
        .assert_oauth_error(400, "unauthorized_client");
}

#[tokio::test]
async fn client_credentials_with_unknown_scope_is_invalid_scope() {
    let server = Server::start();
    let c = service(&server);
    server
        .token(&c.auth(), &[("grant_type", "client_credentials"), ("scope", "no_such_scope")])
        .await
        .assert_oauth_error(400, "invalid_scope");
}

#[tokio::test]
async fn client_credentials_requires_client_authentication() {
    let server = Server::start();
    let c = service(&server);
    server
        .token(&Auth::Basic(c.id.clone(), "wrong".into()), &[("grant_type", "client_credentials")])
        .await
        .assert_invalid_client();
    server.token(&Auth::Public(c.id.clone()), &[("grant_type", "client_credentials")]).await.assert_invalid_client();
}

#[tokio::test]
async fn client_credentials_grants_only_registered_scopes() {
    let server = Server::start();
    let c = server.add_client(
        "billing",
        &["--grant-type", "client_credentials", "--scope", "billing:read", "--scope", "billing:write"],
    );
    // Without a scope parameter the client gets what it is registered for (RFC 6749 §3.3).
    let v = server.token(&c.auth(), &[("grant_type", "client_credentials")]).await.json();
    assert_eq!(v["scope"], "billing:read billing:write", "{v}");
    assert_eq!(jwt_claims(v["access_token"].as_str().unwrap())["scope"], "billing:read billing:write");
    // A narrower request is honoured.
    let v = server.token(&c.auth(), &[("grant_type", "client_credentials"), ("scope", "billing:read")]).await.json();
    assert_eq!(v["scope"], "billing:read", "{v}");
    // Anything beyond the registration is refused, user scopes included.
    for scope in ["billing:read billing:admin", "openid", "offline_access"] {
        server
            .token(&c.auth(), &[("grant_type", "client_credentials"), ("scope", scope)])
            .await
            .assert_oauth_error(400, "invalid_scope");
    }
}
