//! OIDC Core §5.3 (UserInfo) and §5.4 (claims by scope); RFC 6750 bearer usage and errors.

mod common;

use common::*;
use serde_json::Value;

async fn signed_in(scope: &str) -> (Server, Tokens) {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, scope).await;
    (server, t)
}

#[tokio::test]
async fn userinfo_by_get_with_bearer_header() {
    let (server, t) = signed_in("openid profile").await;
    let r = server.userinfo(&t.access_token).await;
    let v = check_userinfo(&r);
    assert_eq!(v["sub"], t.id_claims()["sub"]);
    assert_eq!(v["name"], "Alice Liddell");
}

#[tokio::test]
async fn userinfo_by_post_with_bearer_header() {
    let (server, t) = signed_in("openid profile").await;
    let r = server
        .send(
            server
                .request(reqwest::Method::POST, "/userinfo")
                .header("Authorization", format!("Bearer {}", t.access_token)),
        )
        .await;
    let v = check_userinfo(&r);
    assert_eq!(v["sub"], t.id_claims()["sub"]);
}

#[tokio::test]
async fn userinfo_by_post_with_access_token_in_form_body() {
    let (server, t) = signed_in("openid profile").await;
    let r = server.post_form("/userinfo", &Auth::Nothing, &[("access_token", &t.access_token)]).await;
    let v = check_userinfo(&r);
    assert_eq!(v["sub"], t.id_claims()["sub"]);
    assert_eq!(v["given_name"], "Alice");
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let (server, t) = signed_in("openid").await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let r = server
            .send(
                server
                    .request(reqwest::Method::GET, "/userinfo")
                    .header("Authorization", format!("{scheme} {}", t.access_token)),
            )
            .await;
        check_userinfo(&r);
    }
}

#[tokio::test]
async fn claims_follow_the_granted_scopes() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let get = |scope: &'static str| {
        let (server, browser, c) = (&server, &browser, &c);
        async move {
            let t = server.code_flow(browser, c, scope).await;
            check_userinfo(&server.userinfo(&t.access_token).await)
        }
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };

    let v = get("openid").await;
    assert_eq!(keys(&v), vec!["sub"], "scope openid alone gives only sub: {v}");

    let v = get("openid email").await;
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["email_verified"], true);
    assert!(v.get("name").is_none() && v.get("address").is_none(), "{v}");

    let v = get("openid address").await;
    assert_eq!(v["address"]["locality"], "Oxford", "{v}");
    assert!(v.get("email").is_none(), "{v}");

    let v = get("openid phone").await;
    assert_eq!(v["phone_number"], "+442079460958");
    assert_eq!(v["phone_number_verified"], true);
    assert!(v.get("email").is_none(), "{v}");

    let v = get("openid profile").await;
    for (claim, value) in [
        ("name", "Alice Liddell"),
        ("given_name", "Alice"),
        ("family_name", "Liddell"),
        ("middle_name", "Pleasance"),
        ("nickname", "Ally"),
        ("preferred_username", USER),
        ("profile", "https://example.com/alice"),
        ("picture", "https://example.com/alice.png"),
        ("website", "https://alice.example.com"),
        ("gender", "female"),
        ("birthdate", "1952-05-04"),
        ("zoneinfo", "Europe/London"),
        ("locale", "en-GB"),
    ] {
        assert_eq!(v[claim], value, "{claim} in {v}");
    }
    assert!(v["updated_at"].is_i64(), "updated_at: {v}");
    assert!(v.get("email").is_none() && v.get("phone_number").is_none(), "{v}");
}

#[tokio::test]
async fn invalid_token_gets_401_with_bearer_challenge() {
    let (server, t) = signed_in("openid").await;
    // A garbage token, and a real one with its signature altered.
    let mut tampered = t.access_token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for token in ["not-a-token", tampered.as_str()] {
        let r = server.userinfo(token).await;
        assert_eq!(r.status, 401, "{r:?}");
        let wa = r.header("www-authenticate").unwrap_or_else(|| panic!("{r:?}"));
        assert!(wa.starts_with("Bearer"), "{wa}");
        assert!(wa.contains(r#"error="invalid_token""#), "{wa}");
    }
}

#[tokio::test]
async fn missing_token_gets_401_with_bearer_challenge() {
    let server = Server::start();
    let r = server.get("/userinfo").await;
    assert_eq!(r.status, 401, "{r:?}");
    let wa = r.header("www-authenticate").unwrap_or_else(|| panic!("{r:?}"));
    assert!(wa.starts_with("Bearer"), "RFC 6750 §3: {wa}");
}

#[tokio::test]
async fn expired_access_token_is_rejected() {
    let server = Server::start_with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "1")]);
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t = server.code_flow(&browser, &c, "openid").await;
    assert!(t.json["expires_in"].as_i64().is_some_and(|e| e <= 1), "{}", t.json);
    server.advance(2);
    let r = server.userinfo(&t.access_token).await;
    assert_eq!(r.status, 401, "expired token: {r:?}");
    assert!(r.header("www-authenticate").unwrap_or("").contains(r#"error="invalid_token""#), "{r:?}");
}
