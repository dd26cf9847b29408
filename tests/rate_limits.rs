//! Per-client-IP rate limits on the protocol endpoints, and who the client is behind a load
//! balancer: `X-Forwarded-For` counts only when the peer is a trusted proxy.

mod common;

use common::*;

/// Sends `n` `/authorize` requests (an error page each: no parameters) carrying `forwarded_for`.
async fn statuses(server: &Server, forwarded_for: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = server
            .send(server.request(reqwest::Method::GET, "/authorize").header("X-Forwarded-For", forwarded_for))
            .await;
        out.push(r.status);
    }
    out
}

const SLOW: &[(&str, &str)] = &[("LATCHKEY_RATE_LIMIT_PER_SECOND", "1"), ("LATCHKEY_RATE_LIMIT_BURST", "3")];

#[tokio::test]
async fn a_burst_past_the_limit_gets_429() {
    let server = Server::start_with(SLOW);
    assert_eq!(statuses(&server, "198.51.100.1", 4).await, [400, 400, 400, 429]);
    // Discovery is not limited: it is static bytes.
    assert_eq!(server.get("/.well-known/openid-configuration").await.status, 200);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let server = Server::start_with(SLOW);
    assert_eq!(statuses(&server, "198.51.100.1", 3).await, [400, 400, 400]);
    // A new X-Forwarded-For value does not buy a new bucket.
    assert_eq!(statuses(&server, "198.51.100.2", 1).await, [429]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let env = [SLOW, &[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1, ::1")]].concat();
    let server = Server::start_with(&env);
    assert_eq!(statuses(&server, "198.51.100.1", 4).await, [400, 400, 400, 429]);
    // The client cannot escape by prepending a forged hop: the proxy's entry is the right-most.
    assert_eq!(statuses(&server, "203.0.113.77, 198.51.100.1", 1).await, [429]);
    assert_eq!(statuses(&server, "198.51.100.2", 3).await, [400, 400, 400]);
}
