//! Emailed one-time codes: turned on from the account page (confirmed by a first code), asked
//! after the password, read here from the development outbox or from a real SMTP conversation;
//! wrong, expired, exhausted and reused codes refused; resends throttled; and, where the
//! operator enables it, a code by email as the first factor without telling anyone which
//! addresses have accounts. ID tokens carry `amr` otp (RFC 8176) and the acr it earns.

mod common;

use common::mail::SmtpServer;
use common::*;
use serde_json::json;

const EMAIL: &str = "alice@example.com";

/// A server with alice and a first-party client; alice turned emailed codes on with the
/// returned browser (whose session is password-only). Returns her recovery codes too.
async fn with_email_codes(env: &[(&str, &str)]) -> (Server, TestClient, Browser, Vec<String>) {
    let server = Server::start_with(env);
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;
    assert!(element_text(&page, "email-status").unwrap().starts_with("Off"), "{page:?}");
    let sent = owner.submit(&account_form(&page, "email-begin"), &[]).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    assert!(sent.body.contains("a•••@example.com"), "the masked address: {sent:?}");
    let mail = server.mail_to(EMAIL);
    assert_eq!(mail.len(), 1, "one mail");
    assert!(mail[0].has_html_part(), "text and HTML bodies: {:?}", mail[0]);
    assert_eq!(mail[0].header("Subject"), Some("Your sign-in code"), "the code stays out of the subject");
    let confirm = account_form(&sent, "email-confirm");
    let wrong = owner.submit(&confirm, &[("code", &other_than(&mail[0].code()))]).await;
    assert!(wrong.body.contains("That code is not right"), "{wrong:?}");
    let on = owner.submit(&confirm, &[("code", &mail[0].code())]).await;
    assert_eq!(on.status, 200, "{on:?}");
    let codes = recovery_codes(&on);
    assert_eq!(codes.len(), 10, "a first set of recovery codes: {on:?}");
    let page = owner.get("/account/security").await;
    assert!(element_text(&page, "email-status").unwrap().starts_with("On"), "{page:?}");
    (server, c, owner, codes)
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Authorize in a fresh browser and sign in with the password: returns the emailed-code page.
async fn password_then_email_page(server: &Server, c: &TestClient, pkce: &Pkce) -> (Browser, Resp) {
    let browser = server.browser();
    let mut p = auth_params(c, "openid email", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let page = browser.follow(&browser.authorize(&p).await).await;
    let r = browser.login(&page, USER, PASSWORD).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = browser.follow(&r).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(code_form(&page).is_some(), "the emailed-code page: {page:?}");
    assert!(page.body.contains("We sent a code to a•••@example.com"), "{page:?}");
    assert!(!page.body.contains("<script"), "works without JavaScript: {page:?}");
    (browser, page)
}

async fn id_claims(server: &Server, c: &TestClient, browser: &Browser, r: Resp, pkce: &Pkce) -> serde_json::Value {
    let o = browser.complete(r, None, Decision::NotExpected).await;
    let r = server.redeem(c, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json()).id_claims()
}

fn assert_refused(r: &Resp, message: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.location().is_none(), "not signed in: {r:?}");
    assert!(r.body.contains(message), "message {message:?}: {r:?}");
}

#[tokio::test]
async fn password_then_emailed_code_gives_acr_2() {
    let (server, c, _, _) = with_email_codes(&[]).await;
    let pkce = Pkce::new();
    let (browser, page) = password_then_email_page(&server, &c, &pkce).await;
    let mail = server.codes_to(EMAIL);
    assert_eq!(mail.len(), 2, "enrolment, then sign-in");
    let code = mail[1].code();
    let bad = browser.submit(&code_form(&page).unwrap(), &[("code", &other_than(&code))]).await;
    assert_refused(&bad, "That code is not right");
    let ok = browser.submit(&code_form(&bad).unwrap(), &[("code", &code)]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");

    // The same code in a new sign-in: that one has a code of its own, and this is not it.
    let (other, page) = password_then_email_page(&server, &c, &Pkce::new()).await;
    let reused = other.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&reused, "That code is not right");
    let events = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'mfa.email_otp_enabled'");
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let (server, c, _, _) = with_email_codes(&[("LATCHKEY_EMAIL_CODE_TTL", "2")]).await;
    let pkce = Pkce::new();
    let (browser, page) = password_then_email_page(&server, &c, &pkce).await;
    let code = server.latest_code(EMAIL);
    server.advance(3);
    let late = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&late, "That code has expired");
    // A new code on request, and that one works.
    let r = browser.submit(&resend_form(&late), &[("resend", "1")]).await;
    assert!(r.body.contains("We sent a code to a•••@example.com"), "{r:?}");
    let fresh = server.latest_code(EMAIL);
    assert_ne!(fresh, code, "a new code was sent");
    let ok = browser.submit(&code_form(&r).unwrap(), &[("code", &fresh)]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
}

fn resend_form(page: &Resp) -> Form {
    page.forms().into_iter().find(|f| f.has_button("resend", "1")).unwrap_or_else(|| panic!("no resend: {page:?}"))
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_tries_and_resends_are_throttled() {
    // A higher account throttle, so that the code's own limit is what is seen.
    let (server, c, _, _) = with_email_codes(&[("LATCHKEY_LOGIN_MAX_FAILURES", "50")]).await;
    let (browser, mut page) = password_then_email_page(&server, &c, &Pkce::new()).await;
    let code = server.latest_code(EMAIL);
    for i in 1..=5 {
        page = browser.submit(&code_form(&page).unwrap(), &[("code", &other_than(&code))]).await;
        let expected = if i < 5 { "That code is not right" } else { "no longer works" };
        assert_refused(&page, expected);
    }
    // The right code no longer works.
    let dead = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&dead, "That code has expired");
    let failures = server.db_strings(
        "SELECT detail FROM audit_events WHERE kind = 'login.failed' AND detail LIKE '%emailed code exhausted%'",
    );
    assert_eq!(failures.len(), 1, "audited: {failures:?}");

    // A new code on request; another one at once is refused, and no mail goes out for it.
    let before = server.codes_to(EMAIL).len();
    let r = browser.submit(&resend_form(&dead), &[("resend", "1")]).await;
    assert!(!r.body.contains("Wait half a minute"), "{r:?}");
    assert_eq!(server.codes_to(EMAIL).len(), before + 1);
    let again = browser.submit(&resend_form(&r), &[("resend", "1")]).await;
    assert!(again.body.contains("Wait half a minute"), "{again:?}");
    assert_eq!(server.codes_to(EMAIL).len(), before + 1, "no mail for a throttled resend");
}

#[tokio::test]
async fn codes_reach_a_real_smtp_relay() {
    let relay = SmtpServer::start();
    let url = relay.url();
    let server =
        Server::start_with(&[("LATCHKEY_MAIL_SMTP_URL", &url), ("LATCHKEY_MAIL_FROM", "Login <login@example.org>")]);
    server.add_alice();
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;
    let sent = owner.submit(&account_form(&page, "email-begin"), &[]).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    let got = relay.wait_for(1);
    assert!(got[0].header("To").unwrap().contains(EMAIL), "{:?}", got[0]);
    assert!(got[0].header("From").unwrap().contains("login@example.org"), "{:?}", got[0]);
    assert!(got[0].has_html_part());
    let on = owner.submit(&account_form(&sent, "email-confirm"), &[("code", &got[0].code())]).await;
    assert_eq!(recovery_codes(&on).len(), 10, "{on:?}");
    assert!(server.outbox().is_empty(), "with SMTP set, nothing goes to the outbox");
}

/// Authorize in a fresh browser and choose "Email me a code instead": the address form.
async fn address_form(server: &Server, c: &TestClient, pkce: &Pkce) -> (Browser, Form) {
    let browser = server.browser();
    let mut p = auth_params(c, "openid", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let login = browser.follow(&browser.authorize(&p).await).await;
    let page = browser.switch_to(&login, "email_otp").await;
    let form = form_with(&page, "/login/", "email").unwrap_or_else(|| panic!("address form: {page:?}"));
    (browser, form)
}

#[tokio::test]
async fn email_as_first_factor_does_not_reveal_accounts() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR", "true")]);
    server.add_alice(); // email_verified is among alice's claims
    let c = server.first_party_client();
    let pkce = Pkce::new();
    let (browser, form) = address_form(&server, &c, &pkce).await;

    // An address without an account: the same page, no mail, and no code works.
    let nobody = browser.submit(&form, &[("email", "nobody@example.com")]).await;
    assert_eq!(nobody.status, 200, "{nobody:?}");
    assert!(nobody.body.contains("We sent a code to n•••@example.com"), "{nobody:?}");
    assert!(server.outbox().is_empty(), "no mail for an unknown address");
    let guess = browser.submit(&code_form(&nobody).unwrap(), &[("code", "123456")]).await;
    assert_refused(&guess, "That code is not right");

    // Alice's address, in another browser.
    let (browser2, form) = address_form(&server, &c, &pkce).await;
    let sent = browser2.submit(&form, &[("email", EMAIL)]).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    assert!(sent.body.contains("We sent a code to a•••@example.com"), "{sent:?}");
    let ok = browser2.submit(&code_form(&sent).unwrap(), &[("code", &server.latest_code(EMAIL))]).await;
    let claims = id_claims(&server, &c, &browser2, ok, &pkce).await;
    assert_eq!(claims["amr"], json!(["otp"]), "{claims}");
    assert_eq!(claims["acr"], "1", "one factor: {claims}");
}

#[tokio::test]
async fn email_first_factor_is_followed_by_the_authenticator() {
    let (server, c, _, e) = with_totp(&[("LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR", "true")]).await;
    let pkce = Pkce::new();
    let (browser, form) = address_form(&server, &c, &pkce).await;
    let sent = browser.submit(&form, &[("email", EMAIL)]).await;
    let r = browser.submit(&code_form(&sent).unwrap(), &[("code", &server.latest_code(EMAIL))]).await;
    assert_eq!(r.status, 303, "on to the second factor: {r:?}");
    let page = browser.follow(&r).await;
    assert!(page.body.contains("Authenticator code"), "the authenticator is still asked: {page:?}");
    let ok = browser.submit(&code_form(&page).unwrap(), &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    // Two possession factors are one kind (RFC 8176 §2): no mfa, acr 1.
    assert_eq!(claims["amr"], json!(["otp"]), "{claims}");
    assert_eq!(claims["acr"], "1", "{claims}");
}

#[tokio::test]
async fn without_the_setting_there_is_no_email_first_factor() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let login = browser.follow(&browser.authorize(&auth_params(&c, "openid", "st", "n")).await).await;
    assert!(switch_form(&login, "email_otp").is_none(), "no such button: {login:?}");
    let form = login_form(&login).unwrap();
    let r = browser.submit(&form, &[("switch", "email_otp")]).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn a_step_up_can_use_the_emailed_code_and_switch_to_a_recovery_code() {
    let (server, c, owner, codes) = with_email_codes(&[]).await;
    // The owner's session is password-only: acr_values=2 steps up with an emailed code.
    let mut p = auth_params(&c, "openid", "st", "n");
    p.push(("acr_values", "2"));
    let r = owner.authorize(&p).await;
    let page = owner.follow(&r).await;
    assert!(code_form(&page).is_some(), "the emailed-code page: {page:?}");
    let page = owner.switch_to(&page, "recovery_code").await;
    let ok = owner.submit(&code_form(&page).unwrap(), &[("code", &codes[0])]).await;
    let notice = owner.follow(&ok).await;
    assert_eq!(element_text(&notice, "codes-left").as_deref(), Some("9"), "{notice:?}");
    let cont = notice.forms().into_iter().find(|f| f.has_button("continue", "yes")).expect("continue form");
    let r = owner.submit(&cont, &[("continue", "yes")]).await;
    let o = owner.complete(r, None, Decision::NotExpected).await;
    let claims = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json()).id_claims();
    assert_eq!(claims["acr"], "2", "{claims}");
}

#[tokio::test]
async fn turning_emailed_codes_off_needs_a_fresh_sign_in() {
    let (server, c, owner, _) = with_email_codes(&[("LATCHKEY_LOGIN_REAUTH_SECS", "3")]).await;
    server.advance(4);
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "email-remove"), &[]).await;
    assert_eq!(r.status, 303, "a sign-in first: {r:?}");
    assert!(r.location().unwrap().starts_with("/login/"), "{r:?}");
    let still = server.db_strings("SELECT user_id FROM email_otp_enrolments");
    assert_eq!(still.len(), 1, "not removed without a fresh sign-in");
    // Signing in again (password, then the emailed code) returns to the page; then it goes.
    let login = owner.follow(&r).await;
    let r = owner.login(&login, USER, PASSWORD).await;
    let page = owner.follow(&r).await;
    let r = owner.submit(&code_form(&page).unwrap(), &[("code", &server.latest_code(EMAIL))]).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "email-remove"), &[]).await;
    assert_eq!(r.location(), Some("/account/security"), "removed: {r:?}");
    assert!(server.db_strings("SELECT user_id FROM email_otp_enrolments").is_empty());
    assert!(
        server.db_strings("SELECT user_id FROM recovery_codes").is_empty(),
        "no factor left for codes to stand in for"
    );
    let _ = c;
}

#[tokio::test]
async fn operators_can_reset_a_locked_out_users_factors() {
    let (server, c, _, _) = with_email_codes(&[]).await;
    // Alice signs in afresh with both factors and adds an authenticator app.
    let owner = server.browser();
    let login = owner.follow(&owner.get("/account/security").await).await;
    let page = owner.follow(&owner.login(&login, USER, PASSWORD).await).await;
    let r = owner.submit(&code_form(&page).unwrap(), &[("code", &server.latest_code(EMAIL))]).await;
    let page = owner.follow(&r).await;
    let enrol = owner.submit(&account_form(&page, "totp-begin"), &[]).await;
    let secret = element_text(&enrol, "totp-secret").unwrap_or_else(|| panic!("{enrol:?}"));
    let on = owner.submit(&account_form(&enrol, "totp-confirm"), &[("code", &totp_code(&secret, totp_step()))]).await;
    assert!(on.body.contains("Your authenticator app is set up"), "the codes made with emailed codes remain: {on:?}");
    let out = server.cli(&["users", "reset-factors", USER, "--json"]);
    assert_eq!(out["factors_removed"], 2, "{out}");
    // Their sessions ended, and the next sign-in is the password alone.
    let page = owner.get("/account/security").await;
    assert_eq!(page.status, 303, "signed out: {page:?}");
    let browser = server.browser();
    let o = browser
        .authorize_and_complete(&auth_params(&c, "openid", "st", "n"), Some((USER, PASSWORD)), Decision::NotExpected)
        .await;
    let claims = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json()).id_claims();
    assert_eq!(claims["amr"], json!(["pwd"]), "{claims}");
    for table in ["totp_credentials", "email_otp_enrolments", "recovery_codes"] {
        assert!(server.db_strings(&format!("SELECT user_id FROM {table}")).is_empty(), "{table} emptied");
    }
    let events = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'admin.factors_reset'");
    assert_eq!(events.len(), 1, "audited");
}
