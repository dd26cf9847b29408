//! The account JSON API for native and single-page apps: sign-up and verification by the same
//! rules, a flow id in place of a form's CSRF token, errors that name each field, 429 with
//! `Retry-After` when throttled.

use super::*;
use serde_json::{Value, json};

async fn post_json(server: &Server, path: &str, body: Value) -> Resp {
    server
        .send(
            server
                .request(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
}

fn sign_up(email: &str) -> Value {
    json!({ "email": email, "password": NEW_PASSWORD, "given_name": "Nadia", "phone_number": "01712345678" })
}

#[tokio::test]
async fn sign_up_and_verify_by_code_then_sign_in() {
    let server = Server::start_with(ENV);
    server.add_user("owner", PASSWORD);
    let r = post_json(&server, "/account/api/signup", sign_up("app@example.com")).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["status"], "verify_email", "{body}");
    let flow = body["flow"].as_str().unwrap().to_owned();

    // A taken address answers the same way.
    let taken = post_json(&server, "/account/api/signup", sign_up("OWNER@example.com")).await;
    assert_eq!(taken.status, 201, "{taken:?}");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&taken.json()), keys(&body));
    assert_eq!(taken.json()["status"], "verify_email");

    let code = code_in(&wait_mail(&server, "app@example.com", 1).await[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = post_json(&server, "/account/api/verify", json!({ "flow": flow, "code": wrong })).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(r.json()["fields"]["code"].as_str().is_some_and(|m| m.contains("not right")), "{r:?}");
    assert_eq!(status_of(&server, "app@example.com"), ["pending"]);

    let r = post_json(&server, "/account/api/verify", json!({ "flow": flow, "code": code })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({ "status": "verified" }));
    assert_eq!(status_of(&server, "app@example.com"), ["active"]);

    let c = server.first_party_client();
    let o = server
        .browser()
        .authorize_and_complete(
            &auth_params(&c, "openid", "s", "n"),
            Some(("App@Example.com", NEW_PASSWORD)),
            Decision::NotExpected,
        )
        .await;
    assert!(!o.code().is_empty());
}

#[tokio::test]
async fn errors_name_each_field_and_throttling_says_when_to_retry() {
    let server = Server::start_with(ENV);
    let r = post_json(&server, "/account/api/signup", json!({ "email": "bad", "password": "x", "given_name": "R2D2" }))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    let body = r.json();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].is_string());
    for field in ["email", "password", "given_name"] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let r = server.send(server.request(reqwest::Method::POST, "/account/api/signup").body("email=a")).await;
    assert_eq!(r.status, 400, "not JSON: {r:?}");
    assert_eq!(r.json()["error"], "invalid_request");

    // Verification by the link's token, once.
    let r = post_json(&server, "/account/api/signup", sign_up("token@example.com")).await;
    let flow = r.json()["flow"].as_str().unwrap().to_owned();
    let link = link_in(&wait_mail(&server, "token@example.com", 1).await[0]);
    let token = link.trim_start_matches("/login/signup/").trim_end_matches("/callback").to_owned();
    // "Send again" waits a minute.
    let r = post_json(&server, "/account/api/resend", json!({ "flow": flow })).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert!(
        r.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)),
        "{r:?}"
    );
    assert_eq!(r.json()["error"], "slow_down");
    let r = post_json(&server, "/account/api/verify", json!({ "token": token })).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = post_json(&server, "/account/api/verify", json!({ "token": token })).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["error"], "expired");
}

#[tokio::test]
async fn sign_up_is_off_by_default() {
    let server = Server::start();
    let r = post_json(&server, "/account/api/signup", sign_up("app@example.com")).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["error"], "access_denied");
    let c = server.first_party_client();
    let browser = server.browser();
    let login = browser.follow(&browser.authorize(&auth_params(&c, "openid", "s", "n")).await).await;
    assert!(switch_form(&login, "signup").is_none(), "not offered: {login:?}");
}

#[tokio::test]
async fn a_registered_clients_web_origin_may_call_it_from_a_browser() {
    let server = Server::start_with(ENV);
    server.public_client(); // redirects to https://rp.example.com/callback
    let preflight = |origin: &'static str| {
        server
            .request(reqwest::Method::OPTIONS, "/account/api/signup")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };
    let r = server.send(preflight("https://rp.example.com")).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("https://rp.example.com"), "{r:?}");
    assert!(r.header("access-control-allow-credentials").is_none(), "no cookies: {r:?}");
    let r = server.send(preflight("https://evil.example")).await;
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
}
