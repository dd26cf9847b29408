//! Automatic rotation (`keys.rotate_every`) with two nodes on one database: the keys rotate on
//! schedule, each due rotation is made once (the store arbitrates the race between the nodes),
//! and a relying party caching the JWKS verifies every token either node issues meanwhile.

mod common;

use common::keys::*;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn two_nodes_rotate_on_schedule_once_per_period() {
    // A next key may sign after max-age 1 s + 2 s refresh; rotations are due every 4 s.
    let a = Server::start_with(&[("LATCHKEY_JWKS_MAX_AGE", "1"), ("LATCHKEY_KEYS_ROTATE_EVERY", "4")]);
    let b = a.start_peer();
    let client = a.add_client("service", &["--grant-type", "client_credentials", "--scope", "jobs"]);
    let mut rps = [CachingRp::new(&a).await, CachingRp::new(&b).await];
    let mut kids = Vec::new();
    let end = Instant::now() + Duration::from_secs(13);
    while Instant::now() < end {
        for (node, rp) in [&a, &b].into_iter().zip(rps.iter_mut()) {
            let r = node.token(&client.auth(), &[("grant_type", "client_credentials")]).await;
            assert_eq!(r.status, 200, "{r:?}");
            let at = r.json()["access_token"].as_str().unwrap().to_string();
            let (header, _) = rp.verify(node, &at).await;
            kids.push(header["kid"].as_str().unwrap().to_string());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kids.dedup();
    let v = a.cli(&["keys", "list", "--json"]);
    for alg in ALGS {
        let mut activations: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["alg"] == alg && k["activated_at"].is_i64())
            .map(|k| k["activated_at"].as_i64().unwrap())
            .collect();
        activations.sort();
        assert!(activations.len() >= 3, "{alg} rotated at least twice in 13 s: {v}");
        for w in activations.windows(2) {
            assert!(
                w[1] - w[0] >= 4,
                "{alg} rotated twice within one period (two nodes both rotated?): {activations:?}"
            );
        }
    }
    let rs256: Vec<_> = v.as_array().unwrap().iter().filter(|k| k["alg"] == "RS256").collect();
    assert!(kids.len() >= 3, "RS256 tokens came from at least three keys in turn: {kids:?} of {rs256:?}");
    let activated = a.db_strings("SELECT kind FROM audit_events WHERE kind = 'key.activated'").len();
    let retired = a.db_strings("SELECT kind FROM audit_events WHERE kind = 'key.retired'").len();
    assert_eq!(activated, retired, "one activation per retirement, none doubled");
}
