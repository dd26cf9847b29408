//! OIDC Core §3.1.2.6 / RFC 6749 §4.1.2.1: errors redirected to a validated redirect_uri, with
//! `state` and `iss` (RFC 9207); request objects are not supported (OIDC Core §6).

mod common;

use common::*;

async fn setup() -> (Server, TestClient, Browser) {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let b = server.browser();
    (server, c, b)
}

async fn error_for(server: &Server, b: &Browser, p: &[(&str, &str)], state: Option<&str>) -> String {
    let r = b.authorize(p).await;
    assert_eq!(r.status, 302, "{r:?}");
    let o = b.complete(r, None, Decision::NotExpected).await;
    assert_eq!(o.target, CALLBACK, "{o:?}");
    check_authorization_error(&o, state, &server.issuer)
}

#[tokio::test]
async fn duplicate_parameters_are_invalid_request() {
    let (server, c, b) = setup().await;
    for dup in ["scope", "response_type", "nonce", "prompt"] {
        let mut p = auth_params(&c, "openid", "dup-state", "n");
        p.push((
            dup,
            if dup == "scope" {
                "openid"
            } else if dup == "response_type" {
                "code"
            } else {
                "x"
            },
        ));
        if dup == "prompt" {
            p.push(("prompt", "login"));
        }
        assert_eq!(error_for(&server, &b, &p, Some("dup-state")).await, "invalid_request", "duplicate {dup}");
    }
}

#[tokio::test]
async fn unsupported_response_types() {
    let (server, c, b) = setup().await;
    for rt in ["token", "id_token", "code id_token", "code token", "bogus"] {
        let mut p = auth_params(&c, "openid", "rt-state", "n");
        p.retain(|(k, _)| *k != "response_type");
        p.push(("response_type", rt));
        assert_eq!(
            error_for(&server, &b, &p, Some("rt-state")).await,
            "unsupported_response_type",
            "response_type={rt}"
        );
    }
}

#[tokio::test]
async fn request_objects_are_refused_with_the_state_kept() {
    let (server, c, b) = setup().await;
    // Unsigned, for a client that did not register request_object_signing_alg none.
    let mut p = auth_params(&c, "openid", "ro-state", "n");
    p.push(("request", "eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6IngifQ."));
    assert_eq!(error_for(&server, &b, &p, Some("ro-state")).await, "invalid_request_object");
    // Plain http to a host that is not loopback is never fetched.
    let mut p = auth_params(&c, "openid", "ru-state", "n");
    p.push(("request_uri", "http://rp.example.com/request.jwt"));
    assert_eq!(error_for(&server, &b, &p, Some("ru-state")).await, "invalid_request_uri");
}

#[tokio::test]
async fn unsupported_response_mode_is_rejected() {
    let (server, c, b) = setup().await;
    let mut p = auth_params(&c, "openid", "rm-state", "n");
    p.push(("response_mode", "fragment"));
    let e = error_for(&server, &b, &p, Some("rm-state")).await;
    assert!(e == "invalid_request" || e == "unsupported_response_mode", "{e}");
}

#[tokio::test]
async fn error_without_state_has_no_state() {
    let (server, c, b) = setup().await;
    let p =
        vec![("client_id", c.id.as_str()), ("redirect_uri", CALLBACK), ("response_type", "token"), ("scope", "openid")];
    assert_eq!(error_for(&server, &b, &p, None).await, "unsupported_response_type");
}

#[tokio::test]
async fn malformed_parameters_never_cause_a_server_error() {
    // The harness fails the test on any 5xx; here each odd value must be a redirect with an
    // error or a normal flow, never a crash.
    let (_server, c, b) = setup().await;
    let long = "x".repeat(4000);
    let cases: Vec<(&str, &str)> = vec![
        ("claims", "{"),
        ("claims", "[]"),
        ("claims", r#"{"userinfo":{"name":5}}"#),
        ("claims", r#"{"id_token":{"acr":{"essential":true,"values":"x"}}}"#),
        ("max_age", "-1"),
        ("max_age", "abc"),
        ("max_age", "99999999999999999999999"),
        ("prompt", "bogus"),
        ("display", "weird"),
        ("acr_values", "\u{0}\u{1}"),
        ("ui_locales", "!!!"),
        ("code_challenge", "short"),
        ("login_hint", &long),
        ("id_token_hint", "not.a.jwt"),
        ("nonce", &long),
    ];
    for (k, v) in cases {
        let mut p = auth_params(&c, "openid", "m", "n");
        p.push((k, v));
        let r = b.authorize(&p).await;
        assert!(matches!(r.status, 200 | 302 | 303 | 400), "{k}={v:.40}: {r:?}");
        if r.is_redirect() {
            let to = b.resolve(r.location().unwrap());
            if !b.is_internal(&to) {
                assert!(to.starts_with(CALLBACK), "{r:?}");
                assert!(!to.contains("code="), "{k}={v:.40} must not issue a code without a login: {r:?}");
            }
        }
    }
}

#[tokio::test]
async fn oversized_parameters_are_refused_and_never_kept() {
    let server = Server::start();
    let c = server.confidential_client();
    let browser = server.browser();
    let long = "x".repeat(5000);
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("claims", &long));
    let o = browser.complete(browser.authorize(&p).await, None, Decision::NotExpected).await;
    assert_eq!(o.error(), "invalid_request", "{o:?}");
    assert_eq!(o.param("state"), Some("s"));
    // An oversized state is not sent back: the error is shown to the user.
    let r = browser.authorize(&auth_params(&c, "openid", &long, "n")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.location().is_none(), "{r:?}");
}
