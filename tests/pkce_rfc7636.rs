//! RFC 7636 (PKCE): S256 only, required for public clients, verified at the token endpoint;
//! RFC 9700 §4.8.2 (no PKCE downgrade).

mod common;

use common::*;

async fn code_with(server: &Server, browser: &Browser, c: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut p = auth_params(c, "openid", "pkce-state", "pkce-nonce");
    p.extend_from_slice(extra);
    let _ = server;
    browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::NotExpected).await.code()
}

async fn setup() -> (Server, TestClient, Browser) {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let b = server.browser();
    (server, c, b)
}

#[tokio::test]
async fn missing_code_verifier_is_invalid_grant() {
    let (server, c, b) = setup().await;
    let pkce = Pkce::new();
    let code =
        code_with(&server, &b, &c, &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256")]).await;
    server.redeem(&c, &code, None).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant() {
    let (server, c, b) = setup().await;
    let pkce = Pkce::new();
    let other = Pkce::new();
    let code =
        code_with(&server, &b, &c, &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256")]).await;
    server.redeem(&c, &code, Some(&other.verifier)).await.assert_oauth_error(400, "invalid_grant");
    // The challenge itself is not the verifier.
    let code =
        code_with(&server, &b, &c, &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256")]).await;
    server.redeem(&c, &code, Some(&pkce.challenge)).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn code_verifier_without_a_challenge_is_invalid_grant() {
    let (server, c, b) = setup().await;
    let code = code_with(&server, &b, &c, &[]).await;
    let pkce = Pkce::new();
    server.redeem(&c, &code, Some(&pkce.verifier)).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn confidential_client_may_skip_pkce() {
    let (server, c, b) = setup().await;
    let code = code_with(&server, &b, &c, &[]).await;
    assert_eq!(server.redeem(&c, &code, None).await.status, 200);
}

#[tokio::test]
async fn public_client_with_pkce_succeeds_without_a_secret() {
    let (server, _, b) = setup().await;
    let c = server.public_client();
    assert!(c.secret.is_none(), "public clients have no secret");
    let pkce = Pkce::new();
    let code =
        code_with(&server, &b, &c, &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256")]).await;
    let r = server.redeem(&c, &code, Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = Tokens::from_json(r.json());
    assert_eq!(t.id_claims()["aud"], c.id.as_str());
}

#[tokio::test]
async fn public_client_without_code_challenge_gets_invalid_request() {
    let (server, _, b) = setup().await;
    let c = server.public_client();
    let o = b
        .authorize_and_complete(
            &auth_params(&c, "openid", "pub-state", "n"),
            Some((USER, PASSWORD)),
            Decision::NotExpected,
        )
        .await;
    assert_eq!(o.target, CALLBACK);
    assert_eq!(o.logins, 0, "rejected before any login");
    assert_eq!(check_authorization_error(&o, Some("pub-state"), &server.issuer), "invalid_request");
}

#[tokio::test]
async fn public_client_with_wrong_verifier_is_invalid_grant() {
    let (server, _, b) = setup().await;
    let c = server.public_client();
    let pkce = Pkce::new();
    let code =
        code_with(&server, &b, &c, &[("code_challenge", &pkce.challenge), ("code_challenge_method", "S256")]).await;
    server.redeem(&c, &code, Some(&Pkce::new().verifier)).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn plain_and_unknown_methods_are_invalid_request() {
    let (server, c, b) = setup().await;
    let pkce = Pkce::new();
    for method in ["plain", "S512", "s256"] {
        let mut p = auth_params(&c, "openid", "m-state", "n");
        p.push(("code_challenge", &pkce.verifier));
        p.push(("code_challenge_method", method));
        let o = b.authorize_and_complete(&p, None, Decision::NotExpected).await;
        assert_eq!(
            check_authorization_error(&o, Some("m-state"), &server.issuer),
            "invalid_request",
            "code_challenge_method={method}"
        );
    }
}
