//! `latchkey keys rewrap`: every private key and authenticator (TOTP) secret re-sealed under a
//! new key-encryption key, while the server runs. The node holding the old KEK switches to the new file on
//! its own at the next key change, and keeps signing and verifying throughout.

mod common;

use common::keys::*;
use common::{PASSWORD, USER, code_form, totp_code};
use std::time::{Duration, Instant};

#[tokio::test]
async fn rewrap_reseals_every_key_and_the_running_node_follows() {
    let (server, keys_dir) = start_with_own_keys_dir(&[("LATCHKEY_JWKS_MAX_AGE", "1")]);
    server.add_alice();
    let client = server.first_party_client();
    let browser = server.browser();
    let before = server.code_flow(&browser, &client, "openid").await;
    let old_kek = std::fs::read_to_string(keys_dir.join("kek")).unwrap();
    let sealed_before = server.db_strings("SELECT private_enc FROM signing_keys ORDER BY kid");
    let authenticator = browser.enrol_totp(&browser.security_page((USER, PASSWORD)).await).await;
    let totp_before = server.db_strings("SELECT secret_enc FROM totp_credentials");

    let out = server.cli_text(&["keys", "rewrap"], None);
    assert!(out.contains("re-sealed 8 keys, 1 authenticator secrets"), "{out}");
    let new_kek = std::fs::read_to_string(keys_dir.join("kek")).unwrap();
    assert_ne!(new_kek, old_kek);
    assert_eq!(std::fs::read_to_string(keys_dir.join("kek.previous")).unwrap(), old_kek);
    assert!(!keys_dir.join("kek.next").exists());
    let sealed_after = server.db_strings("SELECT private_enc FROM signing_keys ORDER BY kid");
    assert!(sealed_before.iter().zip(&sealed_after).all(|(a, b)| a != b), "every record re-sealed");
    assert!(server.db_strings("SELECT kind FROM audit_events").iter().any(|k| k == "key.kek_rewrapped"));
    assert_ne!(server.db_strings("SELECT secret_enc FROM totp_credentials"), totp_before);

    // Without the previous KEK, the CLI opens every key with the new one.
    std::fs::remove_file(keys_dir.join("kek.previous")).unwrap();
    for kid in key_states(&server).into_iter().map(|(k, _, _)| k) {
        let pem = server.cli_text(&["keys", "export", &kid, "--public", "--format", "pem"], None);
        assert!(pem.contains("PUBLIC KEY"), "{pem}");
    }

    // The authenticator secret, re-sealed under the new KEK, opens on the running node, which
    // still holds the old KEK: it reads the KEK file again.
    let fresh = server.browser();
    let mut p = common::auth_params(&client, "openid", "st", "n");
    let pkce = common::Pkce::new();
    p.extend([("code_challenge", pkce.challenge.as_str()), ("code_challenge_method", "S256")]);
    let page = fresh.follow(&fresh.authorize(&p).await).await;
    let code_page = fresh.follow(&fresh.login(&page, USER, PASSWORD).await).await;
    let form = code_form(&code_page).unwrap_or_else(|| panic!("the authenticator-code page: {code_page:?}"));
    let done = fresh.submit(&form, &[("code", &totp_code(&authenticator.secret, authenticator.step + 1))]).await;
    // Signed in, the flow hands back to the authorization endpoint, which answers with the code.
    let done = fresh.complete(done, None, common::Decision::NotExpected).await;
    assert!(done.param("code").is_some(), "password + code after the rewrap: {done:?}");

    // A rotation after the rewrap: the node, still holding the old KEK, re-reads the KEK file.
    let old_kid = kid_in(&server, "RS256", "active");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.cli_raw(&["keys", "rotate"], None).0 {
        assert!(Instant::now() < deadline, "rotation refused for 10 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let new_kid = kid_in(&server, "RS256", "active");
    let mut rp = CachingRp::new(&server).await;
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let t = server.code_flow(&browser, &client, "openid").await;
        let (header, _) = rp.verify(&server, t.id_token()).await;
        if header["kid"] == new_kid.as_str() {
            break;
        }
        assert_eq!(header["kid"], old_kid.as_str());
        assert!(Instant::now() < deadline, "the node never signed with the key sealed under the new KEK");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    rp.verify(&server, before.id_token()).await;
    assert_eq!(server.userinfo(&before.access_token).await.status, 200);
    assert!(!server.output().contains("could not refresh"), "{}", server.output());
    let _ = std::fs::remove_dir_all(&keys_dir);
}
