//! Assurance levels (OIDC Core §2 `acr`, §3.1.2.1 `acr_values`, §5.5.1.1 essential `acr`):
//! step-up from a one-factor session adds the second factor to that session instead of starting
//! over; a client's `--min-acr 2` demands it; a requirement the user cannot meet gets
//! `unmet_authentication_requirements` (OpenID Connect Core Unmet Authentication Requirements
//! 1.0 §1), while a voluntary `acr_values` gets the best the user can do.

mod common;

use common::*;

const ESSENTIAL_ACR_2: &str = r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#;

/// Runs the code flow from `resp` (whatever /authorize answered) to the ID token's claims,
/// answering an authenticator-code page with `code` when one comes.
async fn finish(
    server: &Server,
    browser: &Browser,
    c: &TestClient,
    resp: Resp,
    code: Option<&str>,
) -> serde_json::Value {
    let mut resp = resp;
    if resp.is_redirect() && browser.is_internal(&browser.resolve(resp.location().unwrap())) {
        let page = browser.follow(&resp).await;
        match (code_form(&page), code) {
            (Some(form), Some(code)) => resp = browser.submit(&form, &[("code", code)]).await,
            (None, None) => resp = page,
            (form, _) => panic!("code page {:?} but code {code:?}: {page:?}", form.is_some()),
        }
    }
    let o = browser.complete(resp, Some((USER, PASSWORD)), Decision::NotExpected).await;
    let r = server.redeem(c, &o.code(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json()).id_claims()
}

#[tokio::test]
async fn essential_acr_steps_a_password_session_up_in_place() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();

    // A password-only session; then the user sets up an authenticator.
    let first = browser
        .authorize_and_complete(&auth_params(&c, "openid", "s", "n"), Some((USER, PASSWORD)), Decision::NotExpected)
        .await;
    let one = Tokens::from_json(server.redeem(&c, &first.code(), None).await.json()).id_claims();
    assert_eq!(one["acr"], "1", "{one}");
    assert_eq!(one["amr"], serde_json::json!(["pwd"]), "{one}");
    let e = browser.enrol_totp(&browser.security_page((USER, PASSWORD)).await).await;

    // Essential acr 2: only the code is asked (no password), and the same session is raised.
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("claims", ESSENTIAL_ACR_2));
    let r = browser.authorize(&p).await;
    let page = browser.follow(&r).await;
    assert!(login_form(&page).is_none(), "step-up does not start over: {page:?}");
    let two = finish(&server, &browser, &c, r, Some(&totp_code(&e.secret, e.step + 1))).await;
    assert_eq!(two["acr"], "2", "{two}");
    assert_eq!(two["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{two}");
    assert_eq!(two["sid"], one["sid"], "the session is stepped up, not replaced");
    assert!(two["auth_time"].as_i64() >= one["auth_time"].as_i64(), "{two}");

    // Now at acr 2, the same request is answered at once, and a plain one keeps acr 2.
    let again = finish(&server, &browser, &c, browser.authorize(&p).await, None).await;
    assert_eq!(again["acr"], "2", "{again}");
    let plain =
        finish(&server, &browser, &c, browser.authorize(&auth_params(&c, "openid", "s", "n")).await, None).await;
    assert_eq!(plain["acr"], "2", "{plain}");
}

#[tokio::test]
async fn client_min_acr_and_acr_values_step_up() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let strict = server.add_client("strict", &["--redirect-uri", CALLBACK, "--first-party", "--min-acr", "2"]);
    let shown = server.cli(&["clients", "show", &strict.id, "--json"]);
    assert_eq!(shown["min_acr"], 2, "{shown}");
    let browser = server.browser();
    browser
        .authorize_and_complete(&auth_params(&c, "openid", "s", "n"), Some((USER, PASSWORD)), Decision::NotExpected)
        .await
        .code();
    let e = browser.enrol_totp(&browser.security_page((USER, PASSWORD)).await).await;

    // prompt=none cannot show the code page.
    let mut p = auth_params(&strict, "openid", "s", "n");
    p.push(("prompt", "none"));
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(o.error(), "interaction_required", "{o:?}");

    // The strict client's minimum is met by stepping up.
    let r = browser.authorize(&auth_params(&strict, "openid", "s", "n")).await;
    let claims = finish(&server, &browser, &strict, r, Some(&totp_code(&e.secret, e.step + 1))).await;
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");

    // Voluntary acr_values=2 from a fresh password session also steps up when the user can.
    let other = server.browser();
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("acr_values", "2"));
    let page = other.follow(&other.authorize(&p).await).await;
    let r = other.login(&page, USER, PASSWORD).await;
    let code_page = other.follow(&r).await;
    let rc = other.switch_to(&code_page, "recovery_code").await;
    let r = other.submit(&code_form(&rc).unwrap(), &[("code", &e.recovery_codes[0])]).await;
    let notice = other.follow(&r).await;
    let cont = notice.forms().into_iter().find(|f| f.has_button("continue", "yes")).expect("continue form");
    let claims = finish(&server, &other, &c, other.submit(&cont, &[]).await, None).await;
    assert_eq!(claims["acr"], "2", "{claims}");
}

#[tokio::test]
async fn unmet_requirements_for_a_user_without_a_second_factor() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let strict = server.add_client("strict", &["--redirect-uri", CALLBACK, "--first-party", "--min-acr", "2"]);
    let (ok, _, err) =
        server.cli_raw(&["clients", "add", "--name", "x", "--redirect-uri", CALLBACK, "--min-acr", "3"], None);
    assert!(!ok, "--min-acr 3 is not offered: {err}");

    // No session: the password passes, then the client is told, with state and iss.
    let browser = server.browser();
    let o = browser
        .authorize_and_complete(
            &auth_params(&strict, "openid", "st1", "n"),
            Some((USER, PASSWORD)),
            Decision::NotExpected,
        )
        .await;
    assert_eq!(o.error(), "unmet_authentication_requirements", "{o:?}");
    check_authorization_error(&o, Some("st1"), &server.issuer);

    let mut essential = auth_params(&c, "openid", "st2", "n");
    essential.push(("claims", ESSENTIAL_ACR_2));
    let fresh = server.browser();
    let o = fresh.authorize_and_complete(&essential, Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_eq!(o.error(), "unmet_authentication_requirements", "{o:?}");

    // Voluntary acr_values=2: the best the user can do, acr 1.
    let mut voluntary = auth_params(&c, "openid", "s", "n");
    voluntary.push(("acr_values", "2 1"));
    let claims = finish(&server, &fresh, &c, fresh.authorize(&voluntary).await, None).await;
    assert_eq!(claims["acr"], "1", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");

    // With a one-factor session: refused at once, no login page, and the session survives.
    let o = fresh.authorize_and_complete(&essential, None, Decision::NotExpected).await;
    assert_eq!(o.error(), "unmet_authentication_requirements", "{o:?}");
    assert_eq!(o.logins, 0);
    let o = fresh.authorize_and_complete(&auth_params(&strict, "openid", "s", "n"), None, Decision::NotExpected).await;
    assert_eq!(o.error(), "unmet_authentication_requirements", "{o:?}");
    // An essential acr naming nothing offered cannot be met either.
    let mut unknown = auth_params(&c, "openid", "s", "n");
    unknown.push(("claims", r#"{"id_token":{"acr":{"essential":true,"values":["urn:gold"]}}}"#));
    let o = fresh.authorize_and_complete(&unknown, None, Decision::NotExpected).await;
    assert_eq!(o.error(), "unmet_authentication_requirements", "{o:?}");
    fresh.authorize_and_complete(&auth_params(&c, "openid", "s", "n"), None, Decision::NotExpected).await.code();
}

#[tokio::test]
async fn discovery_offers_both_levels() {
    let server = Server::start();
    let d = server.discovery().await;
    assert_eq!(d["acr_values_supported"], serde_json::json!(["1", "2"]), "{d}");
}
