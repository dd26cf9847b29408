//! Recovery codes: ten single-use codes shown once at enrolment, usable in place of the
//! authenticator code; a used code is refused; the page after using one suggests setting up a
//! new factor; a new set replaces the old; turning two-step sign-in off needs a fresh sign-in.

mod common;

use common::*;

/// From a fresh browser: authorize, password, then "use a recovery code instead".
async fn recovery_page(server: &Server, c: &TestClient) -> (Browser, Resp) {
    let browser = server.browser();
    let page = browser.follow(&browser.authorize(&auth_params(c, "openid", "st", "n")).await).await;
    let r = browser.login(&page, USER, PASSWORD).await;
    let totp_page = browser.follow(&r).await;
    let page = browser.switch_to(&totp_page, "recovery_code").await;
    assert!(page.body.contains("Enter a recovery code"), "{page:?}");
    assert!(!page.body.contains("<script"), "works without JavaScript: {page:?}");
    (browser, page)
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_and_suggests_a_new_factor() {
    let (server, c, owner, e) = with_totp(&[]).await;
    assert!(
        e.recovery_codes.iter().all(|c| c.len() == 19 && c.split('-').all(|g| g.len() == 4)),
        "{:?}",
        e.recovery_codes
    );

    let (browser, page) = recovery_page(&server, &c).await;
    let wrong = browser.submit(&code_form(&page).unwrap(), &[("code", "zzzzz-zzzzz")]).await;
    assert!(wrong.body.contains("not valid, or it was already used"), "{wrong:?}");
    // Typed in capitals with a space instead of the dash: the same code.
    let typed = e.recovery_codes[0].to_uppercase().replace('-', " ");
    let r = browser.submit(&code_form(&wrong).unwrap(), &[("code", &typed)]).await;
    assert_eq!(r.status, 303, "{r:?}");
    let notice = browser.follow(&r).await;
    assert_eq!(element_text(&notice, "codes-left").as_deref(), Some("9"), "{notice:?}");
    assert!(notice.body.contains("href=\"/account/security\""), "suggests a new factor: {notice:?}");
    let cont = notice.forms().into_iter().find(|f| f.has_button("continue", "yes")).expect("continue form");
    let o = browser.complete(browser.submit(&cont, &[]).await, None, Decision::NotExpected).await;
    let r = server.redeem(&c, &o.code(), None).await;
    let claims = Tokens::from_json(r.json()).id_claims();
    // A recovery code is a one-time password (RFC 8176 "otp") and a second factor.
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");

    // Used once: refused the second time; another code still works.
    let (other, page) = recovery_page(&server, &c).await;
    let again = other.submit(&code_form(&page).unwrap(), &[("code", &e.recovery_codes[0])]).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.body.contains("not valid, or it was already used"), "{again:?}");
    let r = other.submit(&code_form(&again).unwrap(), &[("code", &e.recovery_codes[1])]).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = owner.get("/account/security").await;
    assert!(page.body.contains("<strong>8</strong> unused recovery codes"), "{page:?}");
}

#[tokio::test]
async fn changes_need_a_fresh_sign_in_and_new_codes_replace_the_old() {
    let (server, c, owner, e) =
        with_totp(&[("LATCHKEY_LOGIN_REAUTH_SECS", "4"), ("RUST_LOG", "warn,audit=info")]).await;

    // The session predates the authenticator (one factor): new codes need a sign-in with both.
    let page = owner.get("/account/security").await;
    let form = account_form(&page, "recovery-codes");
    let r = owner.submit(&form, &[]).await;
    assert_eq!(r.status, 303, "re-authentication first: {r:?}");
    let login = owner.follow(&r).await;
    let r = owner.login(&login, USER, PASSWORD).await;
    let code_page = owner.follow(&r).await;
    let r = owner.submit(&code_form(&code_page).unwrap(), &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    assert_eq!(r.location(), Some("/account/security"), "back to the account page: {r:?}");
    let page = owner.follow(&r).await;
    let form = account_form(&page, "recovery-codes");
    let fresh = owner.submit(&form, &[]).await;
    let new_codes = recovery_codes(&fresh);
    assert_eq!(new_codes.len(), 10, "{fresh:?}");

    // The old set no longer works; the new one does.
    let (browser, page) = recovery_page(&server, &c).await;
    let old = browser.submit(&code_form(&page).unwrap(), &[("code", &e.recovery_codes[2])]).await;
    assert!(old.body.contains("not valid, or it was already used"), "{old:?}");

    // Too long since the sign-in: turning two-step sign-in off goes through a sign-in again.
    server.advance(5);
    let page = owner.get("/account/security").await;
    let remove = account_form(&page, "totp-remove");
    let forged = owner.submit(&remove, &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    let r = owner.submit(&remove, &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(r.location().unwrap().starts_with("/login/"), "re-authentication: {r:?}");
    let login = owner.follow(&r).await;
    let r = owner.login(&login, USER, PASSWORD).await;
    let code_page = owner.follow(&r).await;
    let rc_page = owner.switch_to(&code_page, "recovery_code").await;
    let r = owner.submit(&code_form(&rc_page).unwrap(), &[("code", &new_codes[0])]).await;
    let notice = owner.follow(&r).await;
    let cont = notice.forms().into_iter().find(|f| f.has_button("continue", "yes")).expect("continue form");
    let r = owner.submit(&cont, &[]).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    let page = owner.follow(&r).await;
    let remove = account_form(&page, "totp-remove");
    let r = owner.submit(&remove, &[]).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    let page = owner.follow(&r).await;
    assert!(element_text(&page, "totp-status").unwrap().starts_with("Off"), "{page:?}");

    // Off: the password alone signs in again, at acr 1.
    let fresh_browser = server.browser();
    let o = fresh_browser
        .authorize_and_complete(&auth_params(&c, "openid", "s", "n"), Some((USER, PASSWORD)), Decision::NotExpected)
        .await;
    let claims = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json()).id_claims();
    assert_eq!(claims["acr"], "1", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");

    let log = server.output();
    for kind in ["mfa.totp_enrolled", "mfa.recovery_code_used", "mfa.recovery_codes_generated", "mfa.totp_removed"] {
        assert!(log.contains(kind), "audit event {kind} in the log");
    }
}

#[tokio::test]
async fn racing_uses_of_one_recovery_code_pass_once() {
    let (server, c, _owner, e) = with_totp(&[]).await;
    let (a, page_a) = recovery_page(&server, &c).await;
    let (b, page_b) = recovery_page(&server, &c).await;
    let code = &e.recovery_codes[3];
    let (form_a, form_b) = (code_form(&page_a).unwrap(), code_form(&page_b).unwrap());
    let fields = [("code", code.as_str())];
    let (ra, rb) = tokio::join!(a.submit(&form_a, &fields), b.submit(&form_b, &fields));
    assert_eq!([&ra, &rb].into_iter().filter(|r| r.status == 303).count(), 1, "{ra:?} {rb:?}");
    let refused = if ra.status == 303 { &rb } else { &ra };
    assert!(refused.body.contains("not valid, or it was already used"), "{refused:?}");
}
