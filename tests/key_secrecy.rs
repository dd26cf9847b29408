//! Private keys never appear in clear: not in the database (the SQLite files, or the Postgres
//! rows), not in `keys list` or `keys export --public`, not in the JWKS, not in the logs. The
//! test imports private keys it generated itself, so it knows exactly what to look for, then has
//! them sign tokens.

mod common;

use common::keys::*;
use common::*;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};

/// The secret strings of a private key: its JWK private members and its PEM body (whole and
/// line by line), plus the DER bytes.
fn secrets(pair: &dyn KeyPair) -> (Vec<String>, Vec<u8>) {
    let jwk: Jwk = pair.to_jwk_private_key();
    let mut out: Vec<String> = ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .filter_map(|m| jwk.parameter(m).and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    let pem = String::from_utf8(pair.to_pem_private_key()).unwrap();
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    out.push(body.concat());
    out.extend(body.iter().filter(|l| l.len() >= 32).map(|l| l.to_string()));
    (out, pair.to_der_private_key())
}

#[tokio::test]
async fn private_keys_never_appear_in_clear() {
    let (server, keys_dir) = start_with_own_keys_dir(&[("RUST_LOG", "debug")]);
    server.add_alice();
    let files = std::env::temp_dir().join(format!("latchkey-test-import-{}", random_string()));
    std::fs::create_dir_all(&files).unwrap();

    let rsa = RsaKeyPair::generate(2048).unwrap();
    let pss = RsaKeyPair::generate(2048).unwrap();
    let ec = EcKeyPair::generate(EcCurve::P256).unwrap();
    let ed = EdKeyPair::generate(EdCurve::Ed25519).unwrap();
    // (alg, the pair, the file as imported: PEM for some, private JWK for others)
    let imports: Vec<(&str, &dyn KeyPair, Vec<u8>)> = vec![
        ("RS256", &rsa, rsa.to_pem_private_key()),
        ("PS256", &pss, pss.to_jwk_private_key().to_string().into_bytes()),
        ("ES256", &ec, ec.to_jwk_private_key().to_string().into_bytes()),
        ("EdDSA", &ed, ed.to_pem_private_key()),
    ];
    let mut all_secrets = Vec::new();
    let mut all_der = Vec::new();
    for (alg, pair, file) in &imports {
        let path = files.join(format!("{alg}.key"));
        std::fs::write(&path, file).unwrap();
        let mut args = vec!["keys", "import", path.to_str().unwrap(), "--json"];
        if *alg == "PS256" {
            args.extend(["--alg", "PS256"]);
        }
        let v = server.cli(&args);
        assert_eq!(v["alg"], *alg, "{v}");
        assert_eq!(v["state"], "next", "{v}");
        let kid = v["kid"].as_str().unwrap().to_string();
        server.cli(&["keys", "rotate", "--alg", alg, "--force", "--json"]);
        assert_eq!(kid_in(&server, alg, "active"), kid, "the imported key signs after the rotation");

        // It signs this client's tokens (once the node has re-read its keys), verifiably.
        let client = server.add_client("rp", &["--redirect-uri", CALLBACK, "--first-party", "--id-token-alg", alg]);
        let browser = server.browser();
        // --force skipped the pre-publication period: this RP fetches the JWKS once the node
        // publishes the key.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !server.jwks().await["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid.as_str()) {
            assert!(std::time::Instant::now() < deadline, "the imported {alg} key is not published");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let mut rp = CachingRp::new(&server).await;
        loop {
            let t = server.code_flow(&browser, &client, "openid").await;
            let (header, _) = rp.verify(&server, t.id_token()).await;
            if header["kid"] == kid.as_str() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the imported {alg} key does not sign");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }

        let jwk = server.cli_text(&["keys", "export", &kid, "--public"], None);
        let jwk: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        assert_eq!(jwk["kid"], kid.as_str(), "{jwk}");
        let pem = server.cli_text(&["keys", "export", &kid, "--public", "--format", "pem"], None);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        assert_eq!(
            pem.trim(),
            String::from_utf8(pair.to_pem_public_key()).unwrap().trim(),
            "the public key of what was imported"
        );
        let (s, der) = secrets(*pair);
        all_secrets.extend(s);
        all_der.push(der);
    }
    let (ok, _, _) = server.cli_raw(&["keys", "export", &kid_in(&server, "RS256", "active")], None);
    assert!(!ok, "export without --public is refused");

    // Everything an operator or an attacker with the database could read.
    let mut texts = vec![
        ("keys list".to_string(), server.cli_text(&["keys", "list"], None)),
        ("keys list --json".to_string(), server.cli_text(&["keys", "list", "--json"], None)),
        ("jwks".to_string(), server.jwks().await.to_string()),
        (
            "database rows".to_string(),
            server
                .db_strings(
                    "SELECT kid || ' ' || alg || ' ' || state || ' ' || public_jwk || ' ' || private_enc FROM signing_keys \
                     UNION ALL SELECT detail FROM audit_events",
                )
                .join("\n"),
        ),
    ];
    let mut raw_files = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            texts.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
            raw_files.push((path, bytes));
        }
    }
    texts.push(("server and CLI output".to_string(), server.output()));
    for (what, text) in &texts {
        for secret in &all_secrets {
            assert!(!text.contains(secret.as_str()), "a private key part appears in {what}");
        }
        for member in ["\"d\":", "PRIVATE KEY"] {
            assert!(!text.contains(member), "{member} appears in {what}");
        }
    }
    for (path, bytes) in &raw_files {
        for der in &all_der {
            // The tail of the DER holds the private scalar / exponents.
            let needle = &der[der.len() - 32..];
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "private key bytes in {}", path.display());
        }
    }
    let _ = std::fs::remove_dir_all(&files);
    let _ = std::fs::remove_dir_all(&keys_dir);
}
