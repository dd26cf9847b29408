//! Emergency revocation (`latchkey keys revoke KID`): the key leaves the JWKS at once, and an
//! access token it signed is rejected by userinfo (RFC 6750 `invalid_token`) and reported
//! inactive by introspection (RFC 7662 §2.2), for each algorithm. Signing goes on with the next
//! key, which was already published.

mod common;

use common::keys::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

async fn revoke_active_key(alg: &str) {
    let server = Server::start_with(&[("LATCHKEY_JWKS_MAX_AGE", "1")]);
    server.add_alice();
    let client = server.add_client("rp", &["--redirect-uri", CALLBACK, "--first-party", "--id-token-alg", alg]);
    let browser = server.browser();
    let revoked = kid_in(&server, alg, "active");
    let next = kid_in(&server, alg, "next");
    let t = server.code_flow(&browser, &client, "openid profile").await;
    assert_eq!(jwt_header(&t.access_token)["kid"], revoked.as_str());
    assert_eq!(server.userinfo(&t.access_token).await.status, 200);
    assert_eq!(server.introspect(&client, &t.access_token).await.json()["active"], true);

    let out = server.cli_text(&["keys", "revoke", &revoked], None);
    assert!(out.contains("revoked"), "{out}");
    // Every node re-reads its keys every 2 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let r = server.userinfo(&t.access_token).await;
        if r.status == 401 {
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(challenge.contains("invalid_token"), "{r:?}");
            break;
        }
        assert_eq!(r.status, 200, "{r:?}");
        assert!(Instant::now() < deadline, "userinfo still accepts a token of a revoked key after 8 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.introspect(&client, &t.access_token).await.json(), json!({ "active": false }));
    let jwks = server.jwks().await;
    assert!(!jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == revoked.as_str()), "{jwks}");
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == next.as_str()), "{jwks}");

    // The next key signs now; its tokens work.
    assert_eq!(kid_in(&server, alg, "active"), next);
    let t2 = server.code_flow(&browser, &client, "openid").await;
    let mut rp = CachingRp::new(&server).await;
    let (header, _) = rp.verify(&server, t2.id_token()).await;
    assert_eq!(header["kid"], next.as_str());
    assert_eq!(server.userinfo(&t2.access_token).await.status, 200);
    let states = key_states(&server);
    assert!(states.iter().any(|(k, _, s)| k == &revoked && s == "revoked"), "{states:?}");
    let kinds = server.db_strings("SELECT kind FROM audit_events");
    assert!(kinds.iter().any(|k| k == "key.revoked"), "{kinds:?}");
}

#[tokio::test]
async fn rs256_revoked_key_tokens_are_rejected() {
    revoke_active_key("RS256").await;
}

#[tokio::test]
async fn ps256_revoked_key_tokens_are_rejected() {
    revoke_active_key("PS256").await;
}

#[tokio::test]
async fn es256_revoked_key_tokens_are_rejected() {
    revoke_active_key("ES256").await;
}

#[tokio::test]
async fn eddsa_revoked_key_tokens_are_rejected() {
    revoke_active_key("EdDSA").await;
}

#[tokio::test]
async fn revoking_twice_or_an_unknown_key_fails_clearly() {
    let server = Server::start();
    let (ok, _, stderr) = server.cli_raw(&["keys", "revoke", "no-such-kid"], None);
    assert!(!ok && stderr.contains("no key no-such-kid"), "{stderr}");
    let next = kid_in(&server, "RS256", "next");
    server.cli_text(&["keys", "revoke", &next], None);
    let (ok, _, stderr) = server.cli_raw(&["keys", "revoke", &next], None);
    assert!(!ok && stderr.contains("already revoked"), "{stderr}");
    // A revoked next key is replaced, so a rotation still finds a published successor.
    assert_ne!(kid_in(&server, "RS256", "next"), next);
}
