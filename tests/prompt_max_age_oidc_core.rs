//! OIDC Core §3.1.2.1 `prompt` and `max_age`, §3.1.2.6 errors (login_required,
//! consent_required), and `id_token_hint`.

mod common;

use common::*;

fn with<'a>(mut p: Vec<(&'a str, &'a str)>, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    p.extend_from_slice(extra);
    p
}

#[tokio::test]
async fn prompt_none_without_session_gives_login_required() {
    let server = Server::start();
    let c = server.first_party_client();
    let browser = server.browser();
    let state = format!("{}-._~", "a1B2c3D4e5".repeat(13).chars().take(124).collect::<String>());
    assert_eq!(state.len(), 128);
    let p = with(auth_params(&c, "openid", &state, "nonce123"), &[("prompt", "none")]);
    let r = browser.authorize(&p).await;
    assert_eq!(r.status, 302, "an immediate redirect: {r:?}");
    let o = browser.complete(r, None, Decision::NotExpected).await;
    assert_eq!(o.target, CALLBACK);
    let e = check_authorization_error(&o, Some(&state), &server.issuer);
    assert_eq!(e, "login_required");
}

#[tokio::test]
async fn prompt_none_with_session_succeeds_without_ui() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t1 = server.code_flow(&browser, &c, "openid").await;
    let p = with(auth_params(&c, "openid", "s2", "n2"), &[("prompt", "none")]);
    let r = browser.authorize(&p).await;
    assert_eq!(r.status, 302, "{r:?}");
    let o = browser.complete(r, None, Decision::NotExpected).await;
    let r = server.redeem(&c, &o.code(), None).await;
    let t2 = Tokens::from_json(r.json());
    let (a, b) = (t1.id_claims(), t2.id_claims());
    assert_eq!(a["sub"], b["sub"]);
    assert_eq!(a["auth_time"], b["auth_time"], "no new authentication");
}

#[tokio::test]
async fn prompt_none_with_session_but_no_consent_gives_consent_required() {
    let server = Server::start();
    server.add_alice();
    let first = server.first_party_client();
    let other = server.add_client("needs consent", &["--redirect-uri", CALLBACK2]);
    let browser = server.browser();
    server.code_flow(&browser, &first, "openid").await;
    let p = with(auth_params(&other, "openid", "st", "n"), &[("prompt", "none")]);
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(o.target, CALLBACK2);
    assert_eq!(check_authorization_error(&o, Some("st"), &server.issuer), "consent_required");
}

#[tokio::test]
async fn prompt_login_forces_a_new_login_with_later_auth_time() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t1 = server.code_flow(&browser, &c, "openid").await;
    server.advance(1);
    let t2 = server.code_flow_with(&browser, &c, "openid", &[("prompt", "login")]).await;
    assert_eq!(t2.outcome.as_ref().unwrap().logins, 1, "prompt=login shows the login page");
    let (a, b) = (t1.id_claims(), t2.id_claims());
    assert!(b["auth_time"].as_i64() > a["auth_time"].as_i64(), "auth_time must be later: {a} / {b}");
    assert_eq!(a["sub"], b["sub"]);
}

#[tokio::test]
async fn max_age_exceeded_forces_a_new_login() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t1 = server.code_flow(&browser, &c, "openid").await;
    server.advance(2);
    let t2 = server.code_flow_with(&browser, &c, "openid", &[("max_age", "1")]).await;
    assert_eq!(t2.outcome.as_ref().unwrap().logins, 1, "max_age=1 after 2 s: login again");
    let (a, b) = (t1.id_claims(), t2.id_claims());
    let bt = b["auth_time"].as_i64().expect("auth_time is required with max_age");
    assert!(bt > a["auth_time"].as_i64().unwrap(), "{a} / {b}");
    assert!(bt >= now() - 5, "recent auth_time");
}

#[tokio::test]
async fn max_age_not_exceeded_keeps_the_session() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t1 = server.code_flow_with(&browser, &c, "openid", &[("max_age", "15000")]).await;
    let t2 = server.code_flow_with(&browser, &c, "openid", &[("max_age", "10000")]).await;
    assert_eq!(t2.outcome.as_ref().unwrap().logins, 0);
    let (a, b) = (t1.id_claims(), t2.id_claims());
    assert!(a["auth_time"].is_i64() && b["auth_time"].is_i64(), "{a} / {b}");
    assert_eq!(a["auth_time"], b["auth_time"]);
}

#[tokio::test]
async fn prompt_none_with_id_token_hint_of_the_session_user() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let t1 = server.code_flow(&browser, &c, "openid").await;
    let p = with(auth_params(&c, "openid", "s", "n"), &[("prompt", "none"), ("id_token_hint", t1.id_token())]);
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    let t2 = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json());
    assert_eq!(t1.id_claims()["sub"], t2.id_claims()["sub"]);
}

#[tokio::test]
async fn prompt_none_combined_with_another_value_is_invalid_request() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    server.code_flow(&browser, &c, "openid").await;
    let p = with(auth_params(&c, "openid", "s", "n"), &[("prompt", "none login")]);
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(check_authorization_error(&o, Some("s"), &server.issuer), "invalid_request");
}
