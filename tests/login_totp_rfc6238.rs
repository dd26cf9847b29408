//! TOTP (RFC 6238) as a second login step: enrolment on the account security page with the
//! code computed here from the key shown, then password + code at sign-in; wrong and replayed
//! codes refused (§5.2: accept a code once); failures count toward the account throttle; the
//! ID token says `acr` 2 and `amr` pwd, otp, mfa (RFC 8176).

mod common;

use common::*;

/// Starts a code flow in a fresh browser and signs in with the password; returns the flow's
/// next page, which must be the authenticator-code page.
async fn password_then_code_page(server: &Server, c: &TestClient, pkce: &Pkce) -> (Browser, Resp) {
    let browser = server.browser();
    let mut p = auth_params(c, "openid", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let page = browser.follow(&browser.authorize(&p).await).await;
    let r = browser.login(&page, USER, PASSWORD).await;
    assert_eq!(r.status, 303, "a right password goes on to the next step: {r:?}");
    let page = browser.follow(&r).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(code_form(&page).is_some(), "the authenticator-code page: {page:?}");
    assert!(login_form(&page).is_none(), "not the password again: {page:?}");
    assert!(!page.body.contains("<script"), "works without JavaScript: {page:?}");
    (browser, page)
}

fn assert_refused(r: &Resp, message: &str) {
    assert_eq!(r.status, 200, "a refused code shows the page again: {r:?}");
    assert!(r.location().is_none(), "{r:?}");
    assert!(r.body.contains(message), "message {message:?}: {r:?}");
    assert!(code_form(r).is_some(), "{r:?}");
}

#[tokio::test]
async fn enrol_then_sign_in_with_password_and_code() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();

    // Enrolment: the account page before and after, and a wrong first code refused.
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;
    assert!(element_text(&page, "totp-status").unwrap().starts_with("Off"), "{page:?}");
    let begin = account_form(&page, "totp-begin");
    let enrol = owner.submit(&begin, &[]).await;
    let secret = element_text(&enrol, "totp-secret").unwrap();
    let confirm = account_form(&enrol, "totp-confirm");
    let wrong = owner.submit(&confirm, &[("code", "000000")]).await;
    assert!(wrong.body.contains("That code is not right"), "{wrong:?}");
    assert!(owner.get("/account/security").await.body.contains("Off:"), "not on after a wrong code");
    let forged = owner.submit(&confirm, &[("csrf", "forged"), ("code", &totp_code(&secret, totp_step()))]).await;
    assert_eq!(forged.status, 403, "CSRF: {forged:?}");
    let e = owner.enrol_totp(&owner.security_page((USER, PASSWORD)).await).await;
    let page = owner.get("/account/security").await;
    assert!(element_text(&page, "totp-status").unwrap().starts_with("On"), "{page:?}");
    assert!(page.body.contains("<strong>10</strong> unused recovery codes"), "{page:?}");

    // Sign-in: password, then a wrong code, then the next step's code.
    let pkce = Pkce::new();
    let (browser, page) = password_then_code_page(&server, &c, &pkce).await;
    let bad = browser.submit(&code_form(&page).unwrap(), &[("code", "123456")]).await;
    assert_refused(&bad, "That code is not right");
    let enrol_code = totp_code(&e.secret, e.step);
    let reused = browser.submit(&code_form(&bad).unwrap(), &[("code", &enrol_code)]).await;
    assert_refused(&reused, "already used");
    let code = totp_code(&e.secret, e.step + 1);
    let ok = browser.submit(&code_form(&reused).unwrap(), &[("code", &code)]).await;
    let o = browser.complete(ok, None, Decision::NotExpected).await;
    let r = server.redeem(&c, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let claims = Tokens::from_json(r.json()).id_claims();
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");

    // The same code again, in another browser: refused (RFC 6238 §5.2).
    let (other, page) = password_then_code_page(&server, &c, &Pkce::new()).await;
    let replay = other.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&replay, "already used");
}

#[tokio::test]
async fn wrong_codes_count_toward_the_account_throttle() {
    let (server, c, _owner, e) = with_totp(&[("LATCHKEY_LOGIN_MAX_FAILURES", "3")]).await;

    let (browser, mut page) = password_then_code_page(&server, &c, &Pkce::new()).await;
    for _ in 0..3 {
        page = browser.submit(&code_form(&page).unwrap(), &[("code", "999999")]).await;
        assert_refused(&page, "That code is not right");
    }
    // Throttled now: even the right code is refused, and so is the password.
    let right = browser.submit(&code_form(&page).unwrap(), &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    assert_refused(&right, "Too many failed attempts");
    let again = server.browser();
    let page = again.follow(&again.authorize(&auth_params(&c, "openid", "s", "n")).await).await;
    let r = again.login(&page, USER, PASSWORD).await;
    assert!(r.location().is_none(), "{r:?}");
    assert!(r.body.contains("Too many failed attempts"), "{r:?}");
}

#[tokio::test]
async fn code_page_checks_csrf() {
    let (server, c, _owner, e) = with_totp(&[]).await;
    let (browser, page) = password_then_code_page(&server, &c, &Pkce::new()).await;
    let form = code_form(&page).unwrap();
    assert!(form.value("csrf").is_some_and(|v| !v.is_empty()), "{form:?}");
    let code = totp_code(&e.secret, e.step + 1);
    let forged = browser.submit(&form, &[("csrf", "forged"), ("code", &code)]).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    // The code was not spent by the forged post.
    let ok = browser.submit(&form, &[("code", &code)]).await;
    browser.complete(ok, None, Decision::NotExpected).await.code();
}

#[tokio::test]
async fn racing_submissions_of_one_code_pass_once() {
    let (server, c, _owner, e) = with_totp(&[]).await;
    let (a, page_a) = password_then_code_page(&server, &c, &Pkce::new()).await;
    let (b, page_b) = password_then_code_page(&server, &c, &Pkce::new()).await;
    let code = totp_code(&e.secret, e.step + 1);
    let (form_a, form_b) = (code_form(&page_a).unwrap(), code_form(&page_b).unwrap());
    let fields = [("code", code.as_str())];
    let (ra, rb) = tokio::join!(a.submit(&form_a, &fields), b.submit(&form_b, &fields));
    let passed: Vec<&Resp> = [&ra, &rb].into_iter().filter(|r| r.is_redirect()).collect();
    assert_eq!(passed.len(), 1, "exactly one of two racing submissions passes: {ra:?} {rb:?}");
    let refused = if ra.is_redirect() { &rb } else { &ra };
    assert_refused(refused, "already used");
}

#[tokio::test]
async fn prompt_login_asks_for_both_factors_again() {
    let (server, c, browser, e) = with_totp(&[]).await;
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("prompt", "login"));
    let page = browser.follow(&browser.authorize(&p).await).await;
    let r = browser.login(&page, USER, PASSWORD).await;
    let code_page = browser.follow(&r).await;
    let ok = browser.submit(&code_form(&code_page).unwrap(), &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    let o = browser.complete(ok, None, Decision::NotExpected).await;
    assert_eq!(o.logins, 0, "the password was given above");
    let claims = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json()).id_claims();
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");
}
