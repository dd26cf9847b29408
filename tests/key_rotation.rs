//! Rotation from the CLI with zero failed verifications, for each signing algorithm: a relying
//! party that caches the JWKS for its `max-age` (never refetching on an unknown `kid`) verifies
//! every ID token and access token issued before, during and after two consecutive rotations,
//! and verifies them all again at the end.

mod common;

use common::keys::*;
use common::*;
use std::time::{Duration, Instant};

/// Short JWKS max-age so that a next key is old enough to activate after a few seconds.
const ENV: &[(&str, &str)] = &[("LATCHKEY_JWKS_MAX_AGE", "1")];

struct Issued {
    alg: String,
    id_tokens: Vec<(String, String)>,
    access_tokens: Vec<String>,
}

async fn issue(
    server: &Server,
    browser: &Browser,
    client: &TestClient,
    rp: &mut CachingRp,
    out: &mut Issued,
) -> String {
    let t = server.code_flow(browser, client, "openid").await;
    let (header, claims) = rp.verify(server, t.id_token()).await;
    assert_eq!(header["alg"], out.alg.as_str(), "the client's id_token_signed_response_alg signs: {header}");
    assert_eq!(claims["at_hash"], at_hash(&out.alg, &t.access_token).as_str(), "at_hash for {}: {claims}", out.alg);
    let (at_header, _) = rp.verify(server, &t.access_token).await;
    assert_eq!(at_header["alg"], out.alg.as_str(), "access tokens use the client's alg too: {at_header}");
    let cc = server.token(&client.auth(), &[("grant_type", "client_credentials")]).await;
    assert_eq!(cc.status, 200, "{cc:?}");
    let cc = cc.json()["access_token"].as_str().unwrap().to_string();
    rp.verify(server, &cc).await;
    out.id_tokens.push((t.id_token().to_string(), t.access_token.clone()));
    out.access_tokens.extend([t.access_token, cc]);
    header["kid"].as_str().unwrap().to_string()
}

async fn two_rotations(alg: &str) {
    let server = Server::start_with(ENV);
    server.add_alice();
    let client = server.add_client(
        "rp",
        &[
            "--redirect-uri",
            CALLBACK,
            "--first-party",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "client_credentials",
            "--id-token-alg",
            alg,
        ],
    );
    let browser = server.browser();
    let mut rp = CachingRp::new(&server).await;
    let mut out = Issued { alg: alg.to_string(), id_tokens: vec![], access_tokens: vec![] };

    // A client of a new algorithm brings its keys, and the node signs with them at once.
    let first = kid_in(&server, alg, "active");
    let mut signers = vec![issue(&server, &browser, &client, &mut rp, &mut out).await];
    assert_eq!(signers[0], first);

    let mut rotations = 0;
    while rotations < 2 {
        // Tokens keep flowing while the next key waits out its pre-publication period.
        signers.push(issue(&server, &browser, &client, &mut rp, &mut out).await);
        let (ok, stdout, stderr) = server.cli_raw(&["keys", "rotate", "--alg", alg, "--json"], None);
        if ok {
            let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert!(v[0]["alg"] == alg && v[0]["retired"].is_string(), "a rotation of {alg} only: {v}");
            assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
            rotations += 1;
        } else {
            assert!(stderr.contains("--force"), "refused with a clear message: {stderr}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // After the nodes' refresh, the second successor signs.
    let last = kid_in(&server, alg, "active");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let kid = issue(&server, &browser, &client, &mut rp, &mut out).await;
        signers.push(kid.clone());
        if kid == last {
            break;
        }
        assert!(Instant::now() < deadline, "the new active key {last} does not sign after 6 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    signers.dedup();
    assert_eq!(signers.len(), 3, "three keys signed in turn: {signers:?}");

    // Everything issued is still verifiable with the RP's cached keys.
    for (id_token, at) in &out.id_tokens {
        let (_, claims) = rp.verify(&server, id_token).await;
        assert_eq!(claims["at_hash"], at_hash(alg, at).as_str());
    }
    for at in &out.access_tokens {
        rp.verify(&server, at).await;
    }
    assert!(rp.verified >= 6 * out.id_tokens.len(), "{} verifications", rp.verified);
    let states = key_states(&server);
    let retired = states.iter().filter(|(_, a, s)| a == alg && s == "retired").count();
    assert_eq!(retired, 2, "{states:?}");
    let discovery = server.discovery().await;
    assert!(
        discovery["id_token_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == alg),
        "{discovery}"
    );
}

#[tokio::test]
async fn rs256_two_rotations_without_a_failed_verification() {
    two_rotations("RS256").await;
}

#[tokio::test]
async fn ps256_two_rotations_without_a_failed_verification() {
    two_rotations("PS256").await;
}

#[tokio::test]
async fn es256_two_rotations_without_a_failed_verification() {
    two_rotations("ES256").await;
}

#[tokio::test]
async fn eddsa_two_rotations_without_a_failed_verification() {
    two_rotations("EdDSA").await;
}

#[tokio::test]
async fn fresh_install_publishes_an_active_and_a_next_key_per_alg() {
    // A longer max-age, so that the next keys are surely too young for the first rotation.
    let server = Server::start_with(&[("LATCHKEY_JWKS_MAX_AGE", "30")]);
    let states = key_states(&server);
    assert_eq!(states.len(), 8, "{states:?}");
    for alg in ALGS {
        for state in ["active", "next"] {
            assert!(states.iter().any(|(_, a, s)| a == alg && s == state), "{alg} {state}: {states:?}");
        }
    }
    let jwks = server.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 8, "active and next keys are published: {jwks}");
    let r = server.get("/jwks").await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=30"));
    let d = server.discovery().await;
    assert_eq!(d["id_token_signing_alg_values_supported"], serde_json::json!(ALGS), "{d}");

    // The next key is too young to sign at first: the rotation is refused unless forced.
    let (ok, _, stderr) = server.cli_raw(&["keys", "rotate", "--alg", "ES256"], None);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    let v = server.cli(&["keys", "rotate", "--alg", "ES256", "--force", "--json"]);
    let v = &v[0];
    assert!(v["retired"].is_string() && v["active"].is_string() && v["next"].is_string(), "{v}");
    // Without --alg every algorithm rotates, in one transaction.
    let before = key_states(&server);
    let v = server.cli(&["keys", "rotate", "--force", "--json"]);
    assert_eq!(v.as_array().unwrap().len(), 4, "{v}");
    let after = key_states(&server);
    for alg in ALGS {
        let active = |states: &[(String, String, String)]| {
            states.iter().find(|(_, a, s)| a == alg && s == "active").map(|k| k.0.clone())
        };
        assert_ne!(active(&before), active(&after), "{alg} rotated");
    }
    let kinds = server.db_strings("SELECT kind FROM audit_events");
    for k in ["key.created", "key.activated", "key.retired"] {
        assert!(kinds.iter().any(|x| x == k), "{k} audited: {kinds:?}");
    }
}
