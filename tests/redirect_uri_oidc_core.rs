//! OIDC Core §3.1.2.1 / RFC 6749 §3.1.2 and §4.1.2.1: exact redirect_uri matching, and errors
//! shown to the user (never redirected) until client_id and redirect_uri are validated.

mod common;

use common::*;

fn params<'a>(client_id: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("nonce", "n"),
    ]
}

#[tokio::test]
async fn modified_or_unregistered_redirect_uris_get_an_error_page() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    // With a session too, so that nothing but the redirect_uri can stop a redirect.
    server.code_flow(&browser, &c, "openid").await;
    for bad in [
        "https://rp.example.com/callback/extra",
        "https://rp.example.com/callback?foo=bar",
        "https://rp.example.com/callback#frag",
        "https://rp.example.com/callback/",
        "https://rp.example.com/Callback",
        "https://rp.example.com/call",
        "https://rp.example.com:8443/callback",
        "https://rp.example.com:443/callback/../callback",
        "http://rp.example.com/callback",
        "https://evil.example.com/callback",
        "https://rp.example.com.evil.com/callback",
        "https://evil.com/?https://rp.example.com/callback",
        CALLBACK2,
        "not a uri",
    ] {
        let r = browser.authorize(&params(&c.id, bad)).await;
        assert_eq!(r.status, 400, "redirect_uri {bad}: {r:?}");
        r.assert_error_page();
        let r = browser.authorize(&[params(&c.id, bad), vec![("prompt", "none")]].concat()).await;
        r.assert_error_page();
    }
    // The registered one still works.
    let r = browser.authorize(&params(&c.id, CALLBACK)).await;
    assert_eq!(r.status, 302);
    assert!(r.location().unwrap().starts_with(CALLBACK), "{r:?}");
}

#[tokio::test]
async fn unknown_or_missing_client_id_gets_an_error_page() {
    let server = Server::start();
    let c = server.first_party_client();
    let browser = server.browser();
    browser.authorize(&params("no-such-client", CALLBACK)).await.assert_error_page();
    let mut p = params(&c.id, CALLBACK);
    p.remove(0);
    browser.authorize(&p).await.assert_error_page();
    // An empty client_id, too.
    browser.authorize(&params("", CALLBACK)).await.assert_error_page();
}

#[tokio::test]
async fn missing_redirect_uri_gets_an_error_page() {
    let server = Server::start();
    let c = server.first_party_client();
    let browser = server.browser();
    let mut p = params(&c.id, CALLBACK);
    p.remove(1);
    browser.authorize(&p).await.assert_error_page();
}

#[tokio::test]
async fn duplicate_client_id_or_redirect_uri_gets_an_error_page() {
    let server = Server::start();
    let c = server.first_party_client();
    let browser = server.browser();
    let mut p = params(&c.id, CALLBACK);
    p.push(("client_id", &c.id));
    browser.authorize(&p).await.assert_error_page();
    let mut p = params(&c.id, CALLBACK);
    p.push(("redirect_uri", CALLBACK));
    browser.authorize(&p).await.assert_error_page();
}

#[tokio::test]
async fn one_of_several_registered_redirect_uris() {
    let server = Server::start();
    server.add_alice();
    let c = server.add_client("two uris", &["--redirect-uri", CALLBACK, "--redirect-uri", CALLBACK2, "--first-party"]);
    let browser = server.browser();
    let o =
        browser.authorize_and_complete(&params(&c.id, CALLBACK2), Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_eq!(o.target, CALLBACK2);
    o.code();
}

#[tokio::test]
async fn registered_query_is_kept_in_the_callback() {
    let server = Server::start();
    server.add_alice();
    let uri = "https://rp.example.com/callback?bar=foo";
    let c = server.add_client("query", &["--redirect-uri", uri, "--first-party"]);
    let browser = server.browser();
    let o = browser.authorize_and_complete(&params(&c.id, uri), Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_eq!(o.param("bar"), Some("foo"), "{o:?}");
    let code = o.code();
    let r = server.redeem(&c, &code, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    // ...and a different query is not the registered URI.
    browser.authorize(&params(&c.id, "https://rp.example.com/callback?foo=bar")).await.assert_error_page();
}

#[tokio::test]
async fn error_page_does_not_reflect_markup() {
    let server = Server::start();
    let browser = server.browser();
    let evil = "<script>alert('x')</script>";
    let r = browser.authorize(&params(evil, CALLBACK)).await;
    r.assert_error_page();
    assert!(!r.body.contains(evil), "client_id must be escaped: {r:?}");
}
