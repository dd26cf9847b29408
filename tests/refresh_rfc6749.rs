//! RFC 6749 §6 (refreshing an access token), with rotation and reuse detection as in
//! RFC 9700 §4.14.2, and OIDC Core §11 (offline_access).

mod common;

use common::*;

async fn setup() -> (Server, TestClient, Browser) {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    (server, c, browser)
}

#[tokio::test]
async fn refresh_token_only_with_offline_access() {
    let (server, c, browser) = setup().await;
    let t = server.code_flow(&browser, &c, "openid").await;
    assert!(t.refresh_token.is_none(), "no offline_access, no refresh token: {}", t.json);
    let t = server.code_flow(&browser, &c, "openid offline_access").await;
    let rt = t.refresh_token();
    assert!(rt.len() >= 22 && entropy_bits(rt) > 96.0, "refresh token strength: {rt}");
}

#[tokio::test]
async fn no_refresh_token_for_a_client_without_the_refresh_grant() {
    let server = Server::start();
    server.add_alice();
    let c = server
        .add_client("no refresh", &["--redirect-uri", CALLBACK, "--first-party", "--grant-type", "authorization_code"]);
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, "openid offline_access").await;
    assert!(t.refresh_token.is_none(), "{}", t.json);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let (server, c, browser) = setup().await;
    let t = server.code_flow(&browser, &c, "openid offline_access").await;
    let rt1 = t.refresh_token().to_string();

    let r = server.refresh(&c, &rt1).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("cache-control").unwrap_or("").contains("no-store"), "{r:?}");
    let t2 = Tokens::from_json(r.json());
    let rt2 = t2.refresh_token().to_string();
    assert_ne!(rt1, rt2, "rotation: a new refresh token on every use");
    assert_ne!(t.access_token, t2.access_token);
    check_userinfo(&server.userinfo(&t2.access_token).await);

    let r = server.refresh(&c, &rt2).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t3 = Tokens::from_json(r.json());
    let rt3 = t3.refresh_token().to_string();

    // Replaying the rotated rt1 is reuse: invalid_grant, and the whole family dies.
    server.refresh(&c, &rt1).await.assert_oauth_error(400, "invalid_grant");
    server.refresh(&c, &rt3).await.assert_oauth_error(400, "invalid_grant");
    let intro = server.introspect(&c, &rt3).await.json();
    assert_eq!(intro["active"], false, "{intro}");
}

#[tokio::test]
async fn refresh_token_is_bound_to_its_client() {
    let (server, c1, browser) = setup().await;
    let c2 = server.add_client("other", &["--redirect-uri", CALLBACK2, "--first-party"]);
    let t2 = server.code_flow(&browser, &c2, "openid offline_access").await;
    server.refresh(&c1, t2.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    // The owner can still use it (a foreign presentation is not a reuse of the owner's token).
    let r = server.refresh(&c2, t2.refresh_token()).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn refresh_may_narrow_but_not_widen_the_scope() {
    let (server, c, browser) = setup().await;
    let t = server.code_flow(&browser, &c, "openid email offline_access").await;
    let r = server
        .token(
            &c.auth(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t.refresh_token()),
                ("scope", "openid profile offline_access"),
            ],
        )
        .await;
    r.assert_oauth_error(400, "invalid_scope");

    let r = server
        .token(
            &c.auth(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t.refresh_token()),
                ("scope", "openid offline_access"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let t2 = Tokens::from_json(r.json());
    let v = check_userinfo(&server.userinfo(&t2.access_token).await);
    assert!(v.get("email").is_none(), "narrowed scope has no email: {v}");
}

#[tokio::test]
async fn refreshed_id_token_keeps_the_identity() {
    let (server, c, browser) = setup().await;
    let t = server.code_flow(&browser, &c, "openid offline_access").await;
    server.advance(1);
    let r = server.refresh(&c, t.refresh_token()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t2 = Tokens::from_json(r.json());
    if t2.id_token.is_some() {
        let jwks = server.jwks().await;
        let a = t.id_claims();
        let b = check_id_token(t2.id_token(), &server.issuer, &c.id, None, None, &jwks);
        if b.get("nonce").is_some() {
            assert_eq!(a.get("nonce"), b.get("nonce"), "OIDC Core §12.2");
        }
        for k in ["iss", "sub", "aud", "auth_time", "azp"] {
            assert_eq!(a.get(k), b.get(k), "{k} must not change on refresh");
        }
        assert_ne!(a["iat"], b["iat"], "a refreshed ID token is new");
    }
}

#[tokio::test]
async fn unknown_or_missing_refresh_token() {
    let (server, c, _) = setup().await;
    server.refresh(&c, "no-such-token").await.assert_oauth_error(400, "invalid_grant");
    server.token(&c.auth(), &[("grant_type", "refresh_token")]).await.assert_oauth_error(400, "invalid_request");
}

/// A refresh token is kept as the time it was made and its SHA-256, never itself; one issued
/// before tokens carried their time (kept as its SHA-256 alone) still refreshes, once.
#[tokio::test]
async fn refresh_tokens_are_kept_hashed_and_old_ones_still_work() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest, Sha256};
    let digest = |token: &str| URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));

    let (server, c, browser) = setup().await;
    let t = server.code_flow(&browser, &c, "openid offline_access").await;
    let rt = t.refresh_token().to_string();
    let stored = server.db_strings("SELECT token_hash FROM refresh_tokens");
    assert_eq!(stored, [format!("{}{}", &rt[..8], digest(&rt))], "the time, then the digest: {rt}");

    let old = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let grant = &server.db_strings("SELECT id FROM grants")[0];
    server.db_strings(&format!(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ('{}', '{grant}', {})",
        digest(&old),
        now()
    ));
    let r = server.refresh(&c, &old).await;
    assert_eq!(r.status, 200, "{r:?}");
    let next = Tokens::from_json(r.json()).refresh_token().to_string();
    assert_eq!(next.len(), rt.len(), "its successor carries its time: {next}");
    // Rotated: once its successor was used, presented again it is reuse, and the family is
    // revoked.
    let r = server.refresh(&c, &next).await;
    assert_eq!(r.status, 200, "{r:?}");
    server.refresh(&c, &old).await.assert_oauth_error(400, "invalid_grant");
    server.refresh(&c, &rt).await.assert_oauth_error(400, "invalid_grant");
}
