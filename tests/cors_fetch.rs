//! CORS (Fetch standard §3.2) for browser clients: a single-page app calls `/token`,
//! `/userinfo` and `/revoke` from an origin its client allows; any other origin is refused, and
//! introspection (for resource servers) never answers CORS.

mod common;

use common::*;

const SPA: &str = "https://spa.example.com";
const EVIL: &str = "https://evil.example.net";

async fn preflight(server: &Server, path: &str, origin: &str, method: &str) -> Resp {
    server
        .send(
            server
                .request(reqwest::Method::OPTIONS, path)
                .header("Origin", origin)
                .header("Access-Control-Request-Method", method)
                .header("Access-Control-Request-Headers", "content-type"),
        )
        .await
}

fn vary_origin(r: &Resp) -> bool {
    r.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("origin"))
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_names_that_origin_and_no_other() {
    let server = Server::start();
    server.add_client("spa", &["--redirect-uri", "https://spa.example.com/callback", "--public"]);

    let r = preflight(&server, "/token", SPA, "POST").await;
    assert!(r.status < 300, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(SPA), "{r:?}");
    assert!(r.header("access-control-allow-methods").unwrap_or_default().contains("POST"), "{r:?}");
    let allowed_headers = r.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(allowed_headers.contains("content-type") && allowed_headers.contains("authorization"), "{r:?}");
    assert!(vary_origin(&r), "{r:?}");
    assert_eq!(r.header("access-control-allow-credentials"), None, "no cookies are read: never credentials");

    let refused = preflight(&server, "/token", EVIL, "POST").await;
    assert_eq!(refused.header("access-control-allow-origin"), None, "{refused:?}");

    for path in ["/userinfo", "/revoke"] {
        let r = preflight(&server, path, SPA, "POST").await;
        assert_eq!(r.header("access-control-allow-origin"), Some(SPA), "{path}: {r:?}");
    }
    // Introspection serves resource servers, not browsers.
    let r = preflight(&server, "/introspect", SPA, "POST").await;
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
}

#[tokio::test]
async fn the_token_response_of_a_public_client_is_readable_by_its_origin_only() {
    let server = Server::start();
    server.add_alice();
    let spa =
        server.add_client("spa", &["--redirect-uri", "https://spa.example.com/callback", "--public", "--first-party"]);
    let browser = server.browser();
    let tokens = server.code_flow(&browser, &spa, "openid profile offline_access").await;

    // The actual POST the app's script makes after the preflight: a failed one carries the
    // header too, so the app can read the OAuth error.
    let post = |origin: &'static str, refresh_token: &str| {
        server
            .request(reqwest::Method::POST, "/token")
            .header("Origin", origin)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode_form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", spa.id.as_str()),
            ]))
    };
    let r = server.send(post(SPA, tokens.refresh_token())).await;
    assert_eq!(r.status, 200, "{r:?}");
    let access_token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(r.header("access-control-allow-origin"), Some(SPA), "{r:?}");
    assert!(vary_origin(&r), "{r:?}");
    assert_eq!(r.header("access-control-allow-credentials"), None);

    // (Another token: presenting the rotated one again would revoke the whole grant.)
    let r = server.send(post(EVIL, "not-a-refresh-token")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");

    let r = server
        .send(server.request(reqwest::Method::GET, "/userinfo").header("Origin", SPA).bearer_auth(&access_token))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(SPA), "{r:?}");
}

#[tokio::test]
async fn web_origins_are_set_per_client_and_plus_means_the_redirect_origins() {
    let server = Server::start();
    let c = server.add_client(
        "spa",
        &["--redirect-uri", "https://app.example.com/cb", "--public", "--web-origin", "http://localhost:5173"],
    );
    let shown = server.cli(&["clients", "show", &c.id, "--json"]);
    assert_eq!(shown["allowed_origins"], serde_json::json!(["http://localhost:5173"]), "{shown}");
    assert_eq!(
        preflight(&server, "/token", "http://localhost:5173", "POST").await.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    assert_eq!(
        preflight(&server, "/token", "https://app.example.com", "POST").await.header("access-control-allow-origin"),
        None
    );

    server.cli(&["clients", "update", &c.id, "--web-origin", "+", "--json"]);
    let shown = server.cli(&["clients", "show", &c.id, "--json"]);
    assert_eq!(shown["allowed_origins"], serde_json::json!(["https://app.example.com"]), "{shown}");
    // A node reads the origins afresh at most every 2 s; a new node at once.
    let peer = server.start_peer();
    let allowed = |r: Resp| r.header("access-control-allow-origin").map(str::to_owned);
    assert_eq!(
        allowed(preflight(&peer, "/token", "https://app.example.com", "POST").await).as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(allowed(preflight(&peer, "/token", "http://localhost:5173", "POST").await), None);

    // Never `*`, never a path.
    for bad in ["*", "https://app.example.com/", "https://app.example.com/app"] {
        let (ok, _, err) = server.cli_raw(&["clients", "update", &c.id, "--web-origin", bad], None);
        assert!(!ok && err.contains("--web-origin"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn discovery_and_jwks_are_public_documents() {
    let server = Server::start();
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        let r = server.send(server.request(reqwest::Method::GET, path).header("Origin", EVIL)).await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}: {r:?}");
        assert_eq!(r.header("access-control-allow-credentials"), None);
    }
}
