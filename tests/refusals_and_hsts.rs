//! Refusals made before a handler runs speak the surface's language: OAuth JSON (RFC 6749
//! §5.2) on protocol endpoints, a readable page elsewhere, with a truthful `Retry-After` for
//! rate limits (RFC 6585 §4). HSTS (RFC 6797) when the issuer is https.

mod common;

use common::*;

const SLOW: &[(&str, &str)] = &[("LATCHKEY_RATE_LIMIT_PER_SECOND", "1"), ("LATCHKEY_RATE_LIMIT_BURST", "3")];

#[tokio::test]
async fn a_rate_limited_token_request_gets_oauth_json_and_a_page_gets_a_page() {
    let server = Server::start_with(SLOW);
    for _ in 0..3 {
        assert_ne!(server.token(&Auth::Nothing, &[("grant_type", "client_credentials")]).await.status, 429);
    }
    let r = server.token(&Auth::Nothing, &[("grant_type", "client_credentials")]).await;
    r.assert_oauth_error(429, "temporarily_unavailable");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("delay-seconds");
    // One token per second: the bucket refills within a second, never "retry after 0".
    assert_eq!(retry, 1, "{r:?}");
    assert!(r.json()["error_description"].as_str().unwrap().contains("retry after 1 s"), "{r:?}");

    let page = server.get("/authorize").await;
    assert_eq!(page.status, 429, "{page:?}");
    assert_eq!(page.media_type(), "text/html", "{page:?}");
    assert!(page.body.contains("Too many requests"), "{}", page.body);
    assert_eq!(page.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn an_oversized_body_gets_oauth_json_on_the_token_endpoint() {
    let server = Server::start();
    let big = "a".repeat(3 * 1024 * 1024);
    let r = server
        .send(
            server
                .request(reqwest::Method::POST, "/token")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=client_credentials&x={big}")),
        )
        .await;
    r.assert_oauth_error(413, "invalid_request");

    let r = server
        .send(
            server
                .request(reqwest::Method::POST, "/authorize")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("x={big}")),
        )
        .await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.media_type(), "text/html", "{r:?}");
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_issuer_is_https() {
    let plain = Server::start();
    assert_eq!(plain.get("/healthz").await.header("strict-transport-security"), None);

    let https = Server::start_with(&[("LATCHKEY_ISSUER", "https://login.example.test")]);
    for path in ["/healthz", "/.well-known/openid-configuration", "/authorize", "/no-such-page"] {
        let r = https.get(path).await;
        assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000"), "{path}: {r:?}");
    }
}
