//! Phone numbers and sign-in codes by SMS and WhatsApp (issue #14): a number verified on the
//! account page reaches the `phone` scope's claims; codes by SMS and by WhatsApp as second
//! factor (the user picks when both are on) and, where enabled, first factor, with `amr` and
//! `acr` in the ID token; wrong, expired, exhausted and replayed codes refused; each abuse limit
//! trips and says so; each provider (Twilio, the WhatsApp Cloud API, a webhook) called exactly
//! as its API documents, by a small real HTTP server inside the test that also fails on
//! purpose (5xx retried, 4xx not, a timeout). Also: RFC 8252 redirects of native apps.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, StatusCode, Uri};
use axum::response::IntoResponse;
use common::*;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MOBILE: &str = "+447400123456";
const MOBILE_TYPED: &str = "+44 7400 123456";
const MASKED: &str = "+44 ••• •••456";

// --- The development outbox ---------------------------------------------------------------

#[derive(Debug, Clone)]
struct Sms {
    to: String,
    channel: String,
    text: String,
}

impl Sms {
    fn code(&self) -> String {
        let code: String = self.text.chars().take_while(char::is_ascii_digit).collect();
        assert_eq!(code.len(), 6, "a 6-digit code first: {self:?}");
        code
    }
}

fn phone_outbox(server: &Server) -> Vec<Sms> {
    let Ok(dir) = std::fs::read_dir(server.data_dir.join("phone-outbox")) else { return Vec::new() };
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> =
        dir.filter_map(Result::ok).map(|e| (e.metadata().and_then(|m| m.modified()).unwrap(), e.path())).collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            Sms {
                to: v["to"].as_str().unwrap().into(),
                channel: v["channel"].as_str().unwrap().into(),
                text: v["text"].as_str().unwrap().into(),
            }
        })
        .collect()
}

/// The newest message to `to` by `channel`, waiting up to 5 s (first-factor codes go out after
/// the answer).
fn latest(server: &Server, to: &str, channel: &str) -> Sms {
    for _ in 0..100 {
        if let Some(m) = phone_outbox(server).into_iter().rfind(|m| m.to == to && m.channel == channel) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no {channel} message to {to}");
}

/// The first message to `to` by `channel` after the `before` there were, waiting up to 5 s.
fn next(server: &Server, to: &str, channel: &str, before: usize) -> Sms {
    for _ in 0..100 {
        let got: Vec<Sms> = phone_outbox(server).into_iter().filter(|m| m.to == to && m.channel == channel).collect();
        if got.len() > before {
            return got[before].clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no new {channel} message to {to}");
}

fn count(server: &Server, to: &str, channel: &str) -> usize {
    phone_outbox(server).into_iter().filter(|m| m.to == to && m.channel == channel).count()
}

/// A change on the security page once a factor is on asks for a sign-in with it: R is the
/// redirect to it; the code goes by SMS. Returns the security page after.
async fn step_up(server: &Server, owner: &Browser, r: &Resp) -> Resp {
    assert_eq!(r.status, 303, "{r:?}");
    let mut r = r.clone();
    for _ in 0..8 {
        if r.location() == Some("/account/security") {
            return owner.follow(&r).await;
        }
        r = if r.is_redirect() {
            owner.follow(&r).await
        } else if let Some(form) = login_form(&r) {
            owner.submit(&form, &[("username", USER), ("password", PASSWORD)]).await
        } else {
            let form = code_form(&r).unwrap_or_else(|| panic!("the SMS step: {r:?}"));
            owner.submit(&form, &[("code", &latest(server, MOBILE, "sms").code())]).await
        };
    }
    panic!("no way back to the account page: {r:?}");
}

fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

fn assert_refused(r: &Resp, message: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.location().is_none(), "not signed in: {r:?}");
    assert!(r.body.contains(message), "message {message:?}: {r:?}");
}

// --- Account pages -------------------------------------------------------------------------

/// Verifies MOBILE for the signed-in owner of PAGE by `channel`, with one wrong code first.
async fn verify_number(server: &Server, owner: &Browser, page: &Resp, channel: &str, code_of: impl Fn() -> String) {
    let sent = owner.submit(&account_form(page, "phone-begin"), &[("phone", MOBILE_TYPED), ("channel", channel)]).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    assert!(sent.body.contains(MASKED), "the masked number: {sent:?}");
    assert!(!sent.body.contains("<script"), "works without JavaScript: {sent:?}");
    let code = code_of();
    let confirm = account_form(&sent, "phone-confirm");
    let wrong = owner.submit(&confirm, &[("code", &other_than(&code))]).await;
    assert!(wrong.body.contains("That code is not right"), "{wrong:?}");
    let ok = owner.submit(&confirm, &[("code", &code)]).await;
    assert!(ok.body.contains("Your phone number is verified"), "{ok:?}");
    assert_eq!(element_text(&ok, "phone-status").unwrap(), format!("Verified: {MASKED}."), "{ok:?}");
    let _ = server;
}

/// Turns `channel`'s codes on from the security page PAGE; returns the page after, with the
/// recovery codes shown when they are the first.
async fn codes_on(owner: &Browser, page: &Resp, channel: &str, code_of: impl Fn() -> String) -> Resp {
    let sent = owner.submit(&account_form(page, &format!("{channel}-begin")), &[]).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    let ok = owner.submit(&account_form(&sent, "phone-confirm"), &[("code", &code_of())]).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    ok
}

/// A server with alice (a verified number, SMS codes on) and a first-party client.
async fn with_sms_codes(env: &[(&str, &str)]) -> (Server, TestClient, Browser) {
    let server = Server::start_with(env);
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;
    assert_eq!(element_text(&page, "phone-status").unwrap(), "No verified phone number.");
    verify_number(&server, &owner, &page, "sms", || latest(&server, MOBILE, "sms").code()).await;
    let page = owner.get("/account/security").await;
    assert!(element_text(&page, "sms-status").unwrap().starts_with("Off"), "{page:?}");
    let on = codes_on(&owner, &page, "sms", || latest(&server, MOBILE, "sms").code()).await;
    assert_eq!(recovery_codes(&on).len(), 10, "a first set of recovery codes: {on:?}");
    let page = owner.get("/account/security").await;
    assert!(element_text(&page, "sms-status").unwrap().starts_with("On"), "{page:?}");
    (server, c, owner)
}

#[tokio::test]
async fn a_verified_number_reaches_the_phone_claims() {
    let server = Server::start_with(&[("LATCHKEY_PHONE_ALLOWED_REGIONS", "GB,+1")]);
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;
    let add = account_form(&page, "phone-begin");
    assert!(page.body.contains(r#"autocomplete="tel""#), "{page:?}");
    for (typed, why) in [
        ("+44 20 7946 0958", "Enter a mobile number"),
        ("+44 909 879 0000", "premium-rate"),
        ("+33 6 12 34 56 78", "Codes cannot be sent to numbers of this country"),
        ("12", "Enter a mobile number with + and its country code"),
    ] {
        let r = owner.submit(&add, &[("phone", typed), ("channel", "sms")]).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains(why), "{typed}: {why}: {r:?}");
    }
    assert!(phone_outbox(&server).is_empty(), "nothing sent to a refused number");
    verify_number(&server, &owner, &page, "whatsapp", || latest(&server, MOBILE, "whatsapp").code()).await;
    let msg = latest(&server, MOBILE, "whatsapp");
    assert!(msg.text.contains("is your Latchkey sign-in code"), "{msg:?}");
    let host = server.issuer.trim_start_matches("http://").split(':').next().unwrap().to_owned();
    assert!(msg.text.ends_with(&format!("@{host} #{}", msg.code())), "the WebOTP line: {msg:?}");

    let tokens = server.code_flow(&owner, &c, "openid phone").await;
    let claims = tokens.id_claims();
    let info = server.userinfo(&tokens.access_token).await.json();
    assert_eq!(info["phone_number"], MOBILE, "{info}");
    assert_eq!(info["phone_number_verified"], true, "{info}");
    assert_eq!(claims["amr"], json!(["pwd"]), "a verified number is no second factor: {claims}");
    // At rest the number is sealed (#20): neither its row nor the account's claims hold it.
    let digits = MOBILE.trim_start_matches('+');
    let stored = server.db_strings("SELECT number FROM phone_numbers");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let stored = [
        stored,
        server.db_strings("SELECT number_key FROM phone_numbers"),
        server.db_strings("SELECT claims FROM users"),
    ];
    assert!(stored.iter().flatten().all(|v| !v.contains(digits)), "in clear: {stored:?}");
    let kinds = server.db_strings("SELECT kind FROM audit_events WHERE kind LIKE 'phone.%' ORDER BY id");
    assert!(
        kinds.contains(&"phone.code_sent".to_string()) && kinds.contains(&"phone.verified".to_string()),
        "{kinds:?}"
    );

    // Removed: the claims go with it.
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "phone-remove"), &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    let info = server.userinfo(&server.code_flow(&owner, &c, "openid phone").await.access_token).await.json();
    assert!(info.get("phone_number").is_none(), "{info}");
}

// --- Second factor ----------------------------------------------------------------------------

async fn password_then_code_page(server: &Server, c: &TestClient, pkce: &Pkce) -> (Browser, Resp) {
    let browser = server.browser();
    let mut p = auth_params(c, "openid", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let page = browser.follow(&browser.authorize(&p).await).await;
    let r = browser.login(&page, USER, PASSWORD).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = browser.follow(&r).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(!page.body.contains("<script"), "works without JavaScript: {page:?}");
    (browser, page)
}

async fn id_claims(server: &Server, c: &TestClient, browser: &Browser, r: Resp, pkce: &Pkce) -> Value {
    let o = browser.complete(r, None, Decision::NotExpected).await;
    let r = server.redeem(c, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json()).id_claims()
}

#[tokio::test]
async fn sms_code_after_the_password_gives_acr_2_and_is_used_once() {
    let (server, c, _) = with_sms_codes(&[]).await;
    let pkce = Pkce::new();
    let (browser, page) = password_then_code_page(&server, &c, &pkce).await;
    assert!(page.body.contains(&format!("We sent a code by SMS to {MASKED}")), "{page:?}");
    let code = latest(&server, MOBILE, "sms").code();
    let bad = browser.submit(&code_form(&page).unwrap(), &[("code", &other_than(&code))]).await;
    assert_refused(&bad, "That code is not right");
    let ok = browser.submit(&code_form(&bad).unwrap(), &[("code", &code)]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "sms", "mfa"]), "{claims}");

    // Replayed in a new sign-in: that one has a code of its own, and this is not it.
    let (other, page) = password_then_code_page(&server, &c, &Pkce::new()).await;
    let replayed = other.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&replayed, "That code is not right");
}

#[tokio::test]
async fn expired_and_exhausted_codes_are_refused() {
    let (server, c, _) = with_sms_codes(&[("LATCHKEY_LOGIN_MAX_FAILURES", "50")]).await;
    let (browser, page) = password_then_code_page(&server, &c, &Pkce::new()).await;
    let code = latest(&server, MOBILE, "sms").code();
    server.advance(301);
    let late = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&late, "That code has expired");
    let resend = late.forms().into_iter().find(|f| f.has_button("resend", "1")).expect("a resend button");
    let mut page = browser.submit(&resend, &[("resend", "1")]).await;
    let code = latest(&server, MOBILE, "sms").code();
    for i in 1..=5 {
        page = browser.submit(&code_form(&page).unwrap(), &[("code", &other_than(&code))]).await;
        assert_refused(&page, if i < 5 { "That code is not right" } else { "no longer works" });
    }
    let dead = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_refused(&dead, "That code has expired");
    let fresh = browser.submit(&resend, &[("resend", "1")]).await;
    assert!(fresh.body.contains("We sent a code by SMS"), "{fresh:?}");
    let again = browser.submit(&resend, &[("resend", "1")]).await;
    assert!(again.body.contains("Wait half a minute"), "resends throttled: {again:?}");
    let failures = server.db_strings(
        "SELECT detail FROM audit_events WHERE kind = 'login.failed' AND detail LIKE '%phone code exhausted%'",
    );
    assert_eq!(failures.len(), 1, "{failures:?}");
}

#[tokio::test]
async fn with_sms_and_whatsapp_on_the_user_picks() {
    let (server, c, owner) = with_sms_codes(&[]).await;
    let page = owner.security_page((USER, PASSWORD)).await;
    let r = owner.submit(&account_form(&page, "whatsapp-begin"), &[]).await;
    let page = step_up(&server, &owner, &r).await;
    let on = codes_on(&owner, &page, "whatsapp", || latest(&server, MOBILE, "whatsapp").code()).await;
    assert!(on.body.contains("Codes by WhatsApp are on"), "{on:?}");
    let sent_before = phone_outbox(&server).len();
    let pkce = Pkce::new();
    let (browser, page) = password_then_code_page(&server, &c, &pkce).await;
    assert!(page.body.contains("Send me a code by SMS"), "a choice, not a message yet: {page:?}");
    assert_eq!(phone_outbox(&server).len(), sent_before, "nothing sent before the choice");
    let page = browser.switch_to(&page, "whatsapp").await;
    let send = page.forms().into_iter().find(|f| f.has_button("send", "1")).expect("a send button");
    let page = browser.submit(&send, &[("send", "1")]).await;
    assert!(page.body.contains(&format!("We sent a code by WhatsApp to {MASKED}")), "{page:?}");
    let code = latest(&server, MOBILE, "whatsapp").code();
    let ok = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "whatsapp", "mfa"]), "{claims}");

    // Turned off on the account page, like the other factors.
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "whatsapp-remove"), &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = owner.get("/account/security").await;
    assert!(element_text(&page, "whatsapp-status").unwrap().starts_with("Off"), "{page:?}");

    // A new number: codes by phone, confirmed for the old one, are off, and the user is told.
    let sent =
        owner.submit(&account_form(&page, "phone-begin"), &[("phone", "+447400123457"), ("channel", "sms")]).await;
    let code = latest(&server, "+447400123457", "sms").code();
    let ok = owner.submit(&account_form(&sent, "phone-confirm"), &[("code", &code)]).await;
    assert_eq!(element_text(&ok, "phone-status").unwrap(), "Verified: +44 ••• •••457.", "{ok:?}");
    assert!(element_text(&ok, "sms-status").unwrap().starts_with("Off"), "{ok:?}");
    let changes = server.db_strings("SELECT detail FROM audit_events WHERE kind = 'account.methods_changed'");
    assert!(changes.iter().any(|d| d.contains("phone_changed")), "{changes:?}");
}

// --- First factor ----------------------------------------------------------------------------

async fn number_form(server: &Server, browser: &Browser, c: &TestClient, pkce: &Pkce) -> Form {
    number_form_of(server, browser, c, pkce, "sms").await
}

/// The first page of the first-factor step `step` (`sms` or `whatsapp`): the number form.
async fn number_form_of(_server: &Server, browser: &Browser, c: &TestClient, pkce: &Pkce, step: &str) -> Form {
    let mut p = auth_params(c, "openid", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let login = browser.follow(&browser.authorize(&p).await).await;
    let page = browser.switch_to(&login, step).await;
    form_with(&page, "/login/", "phone").unwrap_or_else(|| panic!("number form: {page:?}"))
}

#[tokio::test]
async fn codes_by_phone_as_first_factor_do_not_reveal_numbers() {
    let (server, c, _) = with_sms_codes(&[("LATCHKEY_PHONE_FIRST_FACTOR", "true")]).await;
    let before = phone_outbox(&server).len();
    let pkce = Pkce::new();
    let browser = server.browser();
    let form = number_form(&server, &browser, &c, &pkce).await;
    let nobody = browser.submit(&form, &[("phone", "+44 7400 123999")]).await;
    assert!(nobody.body.contains("We sent a code by SMS to +44 ••• •••999"), "{nobody:?}");
    let guess = browser.submit(&code_form(&nobody).unwrap(), &[("code", "123456")]).await;
    assert_refused(&guess, "That code is not right");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(phone_outbox(&server).len(), before, "no message to a number without an account");

    let browser = server.browser();
    let form = number_form(&server, &browser, &c, &pkce).await;
    let sent = count(&server, MOBILE, "sms");
    let page = browser.submit(&form, &[("phone", MOBILE_TYPED)]).await;
    assert!(page.body.contains(&format!("We sent a code by SMS to {MASKED}")), "{page:?}");
    let code = next(&server, MOBILE, "sms", sent).code();
    let ok = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    assert_eq!(claims["acr"], "1", "one factor: {claims}");
    assert_eq!(claims["amr"], json!(["sms"]), "{claims}");

    // By WhatsApp: a verified number is enough to start a sign-in with a code on either channel.
    let browser = server.browser();
    let pkce = Pkce::new();
    let form = number_form_of(&server, &browser, &c, &pkce, "whatsapp").await;
    let sent = count(&server, MOBILE, "whatsapp");
    let page = browser.submit(&form, &[("phone", MOBILE_TYPED)]).await;
    assert!(page.body.contains(&format!("We sent a code by WhatsApp to {MASKED}")), "{page:?}");
    let code = next(&server, MOBILE, "whatsapp", sent).code();
    let sms_sent = count(&server, MOBILE, "sms");
    let r = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    // Alice's second factor, SMS, is still asked: a step not yet taken in this sign-in. Two
    // possession factors are not two kinds, so acr stays 1.
    let page = browser.follow(&r).await;
    assert!(page.body.contains("We sent a code by SMS"), "{page:?}");
    let code = next(&server, MOBILE, "sms", sms_sent).code();
    let ok = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    let claims = id_claims(&server, &c, &browser, ok, &pkce).await;
    assert_eq!(claims["acr"], "1", "{claims}");
    assert_eq!(claims["amr"], json!(["otp", "whatsapp", "sms"]), "{claims}");
}

/// With codes by phone as a first factor the verified number is a way into the account, which
/// the "last way in" rule counts: an account with no password may turn its SMS codes off (the
/// number still signs in), but not remove the number too.
#[tokio::test]
async fn a_number_that_signs_in_is_a_way_in() {
    let (server, c, owner) = with_sms_codes(&[("LATCHKEY_PHONE_FIRST_FACTOR", "true")]).await;
    let page = owner.security_page((USER, PASSWORD)).await;
    let r = owner.submit(&account_form(&page, "sms-remove"), &[]).await;
    let page = step_up(&server, &owner, &r).await;
    // An account whose only way in is its number (as one made by federation and then unlinked).
    server.db_strings("UPDATE users SET password_hash = NULL");
    let r = owner.submit(&account_form(&page, "sms-remove"), &[]).await;
    assert_eq!(r.status, 303, "the number still signs in: {r:?}");
    let page = owner.get("/account/security").await;
    assert!(element_text(&page, "sms-status").unwrap().starts_with("Off"), "{page:?}");
    let r = owner.submit(&account_form(&page, "phone-remove"), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("This is the only way to sign in to your account, so it stays."), "{r:?}");
    assert_eq!(element_text(&r, "phone-status").unwrap(), format!("Verified: {MASKED}."), "{r:?}");
    // And it does sign in.
    let browser = server.browser();
    let pkce = Pkce::new();
    let form = number_form(&server, &browser, &c, &pkce).await;
    let sent = count(&server, MOBILE, "sms");
    let page = browser.submit(&form, &[("phone", MOBILE_TYPED)]).await;
    let code = next(&server, MOBILE, "sms", sent).code();
    let ok = browser.submit(&code_form(&page).unwrap(), &[("code", &code)]).await;
    assert_eq!(id_claims(&server, &c, &browser, ok, &pkce).await["amr"], json!(["sms"]));
}

// --- Limits -----------------------------------------------------------------------------------

#[tokio::test]
async fn each_limit_trips_and_says_so() {
    let server = Server::start_with(&[
        ("LATCHKEY_PHONE_FIRST_FACTOR", "true"),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_PHONE_PER_NUMBER_PER_HOUR", "2"),
        ("LATCHKEY_PHONE_PER_ACCOUNT_PER_HOUR", "2"),
        ("LATCHKEY_PHONE_PER_IP_PER_HOUR", "3"),
        ("LATCHKEY_PHONE_GLOBAL_PER_HOUR", "6"),
    ]);
    server.add_alice();
    let c = server.first_party_client();

    // Per account, on the account page.
    let owner = server.browser_behind_proxy("10.0.0.1");
    let page = owner.security_page((USER, PASSWORD)).await;
    for (n, number) in ["+447400123101", "+447400123102", "+447400123103"].iter().enumerate() {
        let r = owner.submit(&account_form(&page, "phone-begin"), &[("phone", number), ("channel", "sms")]).await;
        assert_eq!(r.status, 200, "{r:?}");
        let limited = r.body.contains("Too many codes were sent for this account");
        assert_eq!(limited, n == 2, "{number}: {r:?}");
    }

    // Per number: a first-factor code and two resends to one number.
    let b = server.browser_behind_proxy("10.0.0.2");
    let form = number_form(&server, &b, &c, &Pkce::new()).await;
    let mut page = b.submit(&form, &[("phone", "+447400123201")]).await;
    assert!(page.body.contains("We sent a code by SMS"), "{page:?}");
    for n in 0..2 {
        server.advance(31);
        let resend = page.forms().into_iter().find(|f| f.has_button("resend", "1")).expect("resend");
        page = b.submit(&resend, &[("resend", "1")]).await;
        assert_eq!(page.body.contains("Too many codes were sent to this number"), n == 1, "{page:?}");
    }

    // Per client address: a third number from the same one is its third send; a fourth is refused.
    let b = server.browser_behind_proxy("10.0.0.2");
    let form = number_form(&server, &b, &c, &Pkce::new()).await;
    let r = b.submit(&form, &[("phone", "+447400123202")]).await;
    assert!(r.body.contains("We sent a code by SMS"), "{r:?}");
    let r = b.submit(&form, &[("phone", "+447400123203")]).await;
    assert!(r.body.contains("Too many codes were asked for from your network"), "{r:?}");

    // The global budget: 5 sent so far, the sixth goes, the seventh does not.
    let b = server.browser_behind_proxy("10.0.0.3");
    let form = number_form(&server, &b, &c, &Pkce::new()).await;
    let r = b.submit(&form, &[("phone", "+447400123301")]).await;
    assert!(r.body.contains("We sent a code by SMS"), "{r:?}");
    let r = b.submit(&form, &[("phone", "+447400123302")]).await;
    assert!(r.body.contains("Codes by phone are paused for now"), "{r:?}");

    let reasons = server.db_strings("SELECT detail FROM audit_events WHERE kind = 'phone.code_refused'");
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    for why in ["per_account_limit", "per_number_limit", "per_ip_limit", "global_limit"] {
        assert_eq!(reasons.iter().filter(|r| r.contains(why)).count(), 1, "{why} once: {reasons:?}");
    }
}

// --- Providers ------------------------------------------------------------------------------

/// One request as the gateway saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: AxumHeaders,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body: {e}: {}", self.body))
    }
}

/// What the gateway answers next: a status, after a delay.
#[derive(Clone, Default)]
struct Gateway {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<(u16, Duration)>>>,
}

impl Gateway {
    async fn start() -> (Gateway, String) {
        let g = Gateway::default();
        let app = axum::Router::new().fallback(answer).with_state(g.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (g, url)
    }

    /// The next answers, in order; after them, 201.
    fn script(&self, answers: &[(u16, u64)]) {
        let mut s = self.script.lock().unwrap();
        s.clear();
        s.extend(answers.iter().map(|(code, ms)| (*code, Duration::from_millis(*ms))));
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

async fn answer(State(g): State<Gateway>, uri: Uri, headers: AxumHeaders, body: Bytes) -> impl IntoResponse {
    g.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, delay) = g.script.lock().unwrap().pop_front().unwrap_or((201, Duration::ZERO));
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).unwrap(), axum::Json(json!({ "sid": "SM123", "status": "queued" })))
}

fn code_in(text: &str) -> String {
    text.chars().take_while(char::is_ascii_digit).collect()
}

/// Starts to verify MOBILE by `channel` from the account page; returns the answer.
async fn begin_verify(owner: &Browser, channel: &str) -> Resp {
    let page = owner.get("/account/security").await;
    owner.submit(&account_form(&page, "phone-begin"), &[("phone", MOBILE_TYPED), ("channel", channel)]).await
}

const COULD_NOT_SEND: &str = "We could not send the code. Try another way to sign in";

#[tokio::test]
async fn twilio_and_whatsapp_cloud_are_called_as_documented() {
    let (twilio, twilio_url) = Gateway::start().await;
    let (meta, meta_url) = Gateway::start().await;
    let server = Server::start_with(&[
        ("LATCHKEY_PHONE_SMS", "twilio"),
        ("LATCHKEY_PHONE_WHATSAPP", "whatsapp_cloud"),
        ("LATCHKEY_PHONE_TWILIO_ACCOUNT_SID", "AC0123456789abcdef"),
        ("LATCHKEY_PHONE_TWILIO_AUTH_TOKEN", "twilio-token"),
        ("LATCHKEY_PHONE_TWILIO_FROM", "+15005550006"),
        ("LATCHKEY_PHONE_TWILIO_BASE_URL", &twilio_url),
        ("LATCHKEY_PHONE_WHATSAPP_CLOUD_PHONE_NUMBER_ID", "106540352242922"),
        ("LATCHKEY_PHONE_WHATSAPP_CLOUD_ACCESS_TOKEN", "meta-token"),
        ("LATCHKEY_PHONE_WHATSAPP_CLOUD_TEMPLATE", "latchkey_code"),
        ("LATCHKEY_PHONE_WHATSAPP_CLOUD_LANGUAGE", "en_GB"),
        ("LATCHKEY_PHONE_WHATSAPP_CLOUD_BASE_URL", &meta_url),
        ("LATCHKEY_PHONE_TIMEOUT_SECS", "1"),
    ]);
    server.add_alice();
    let owner = server.browser();
    owner.security_page((USER, PASSWORD)).await;

    // Twilio: a form POST with basic auth of the account SID and token; two 503s are retried.
    twilio.script(&[(503, 0), (503, 0)]);
    let sent = begin_verify(&owner, "sms").await;
    assert!(sent.body.contains(MASKED), "{sent:?}");
    let seen = twilio.take();
    assert_eq!(seen.len(), 3, "two retries after 5xx: {seen:?}");
    let s = &seen[2];
    assert_eq!(s.path, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    assert_eq!(s.header("authorization"), format!("Basic {}", basic_b64("AC0123456789abcdef", "twilio-token")));
    assert_eq!(s.header("content-type"), "application/x-www-form-urlencoded");
    let form = s.form();
    let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["To", "From", "Body"], "{form:?}");
    assert_eq!(form[0].1, MOBILE);
    assert_eq!(form[1].1, "+15005550006");
    let code = code_in(&form[2].1);
    let ok = owner.submit(&account_form(&sent, "phone-confirm"), &[("code", &code)]).await;
    assert!(ok.body.contains("Your phone number is verified"), "{ok:?}");
    assert!(phone_outbox(&server).is_empty(), "no outbox with a provider set");

    // A 4xx is not retried, and the person is told to try another way; never a 500.
    twilio.script(&[(400, 0)]);
    let r = begin_verify(&owner, "sms").await;
    assert!(r.body.contains(COULD_NOT_SEND), "{r:?}");
    assert_eq!(twilio.take().len(), 1, "no retry after a 4xx");

    // A provider that does not answer in time: one try, and the same message.
    meta.script(&[(200, 3000)]);
    let page = owner.get("/account/security").await;
    let r =
        owner.submit(&account_form(&page, "phone-begin"), &[("phone", MOBILE_TYPED), ("channel", "whatsapp")]).await;
    assert!(r.body.contains(COULD_NOT_SEND), "{r:?}");
    assert_eq!(meta.take().len(), 1, "no retry after a timeout");
    let failed = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'phone.code_send_failed'");
    assert_eq!(failed.len(), 2, "{failed:?}");

    // WhatsApp Cloud: JSON, a bearer token, the authentication template with the code as the
    // body parameter and as the copy-code button's.
    let page = owner.get("/account/security").await;
    let sent = owner.submit(&account_form(&page, "whatsapp-begin"), &[]).await;
    assert_eq!(sent.status, 200, "{sent:?}");
    let seen = meta.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_eq!(s.path, "/106540352242922/messages");
    assert_eq!(s.header("authorization"), "Bearer meta-token");
    assert!(s.header("content-type").starts_with("application/json"), "{s:?}");
    let body = s.json();
    let code = body["template"]["components"][0]["parameters"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6, "{body}");
    assert_eq!(
        body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": MOBILE,
            "type": "template",
            "template": {
                "name": "latchkey_code",
                "language": { "code": "en_GB" },
                "components": [
                    { "type": "body", "parameters": [{ "type": "text", "text": code }] },
                    { "type": "button", "sub_type": "url", "index": "0", "parameters": [{ "type": "text", "text": code }] }
                ]
            }
        })
    );
    let on = owner.submit(&account_form(&sent, "phone-confirm"), &[("code", &code)]).await;
    assert_eq!(recovery_codes(&on).len(), 10, "a first factor: recovery codes shown: {on:?}");
}

fn basic_b64(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

#[tokio::test]
async fn twilio_whatsapp_and_a_webhook_are_called_as_documented() {
    let (twilio, twilio_url) = Gateway::start().await;
    let (hook, hook_url) = Gateway::start().await;
    let server = Server::start_with(&[
        ("LATCHKEY_PHONE_SMS", "webhook"),
        ("LATCHKEY_PHONE_WHATSAPP", "twilio"),
        ("LATCHKEY_PHONE_TWILIO_ACCOUNT_SID", "AC42"),
        ("LATCHKEY_PHONE_TWILIO_AUTH_TOKEN", "tok"),
        ("LATCHKEY_PHONE_TWILIO_WHATSAPP_FROM", "+14155238886"),
        ("LATCHKEY_PHONE_TWILIO_WHATSAPP_CONTENT_SID", "HX0123"),
        ("LATCHKEY_PHONE_TWILIO_BASE_URL", &twilio_url),
        ("LATCHKEY_PHONE_WEBHOOK_URL", &format!("{hook_url}/send")),
        ("LATCHKEY_PHONE_WEBHOOK_BODY", r#"{"recipient":"{to}","text":"{message}","otp":"{code}","via":"{channel}"}"#),
        ("LATCHKEY_PHONE_WEBHOOK_AUTHORIZATION", "Token gateway-secret"),
    ]);
    server.add_alice();
    let owner = server.browser();
    owner.security_page((USER, PASSWORD)).await;

    // The webhook: the body template filled in (JSON-escaped), its Authorization header.
    let sent = begin_verify(&owner, "sms").await;
    let seen = hook.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_eq!(s.path, "/send");
    assert_eq!(s.header("authorization"), "Token gateway-secret");
    assert_eq!(s.header("content-type"), "application/json");
    let body = s.json();
    assert_eq!(body["recipient"], MOBILE);
    assert_eq!(body["via"], "sms");
    let code = body["otp"].as_str().unwrap().to_owned();
    assert!(body["text"].as_str().unwrap().starts_with(&format!("{code} is your Latchkey sign-in code")), "{body}");
    assert!(body["text"].as_str().unwrap().contains('\n'), "a newline survives the JSON escaping: {body}");
    let ok = owner.submit(&account_form(&sent, "phone-confirm"), &[("code", &code)]).await;
    assert!(ok.body.contains("Your phone number is verified"), "{ok:?}");

    // A gateway down for good: three tries (two retries), then "try another way".
    hook.script(&[(502, 0), (502, 0), (502, 0)]);
    let r = begin_verify(&owner, "sms").await;
    assert!(r.body.contains(COULD_NOT_SEND), "{r:?}");
    assert_eq!(hook.take().len(), 3);

    // Twilio for WhatsApp: whatsapp: addresses and a Content API template with the code as `1`.
    let page = owner.get("/account/security").await;
    let sent = owner.submit(&account_form(&page, "whatsapp-begin"), &[]).await;
    let seen = twilio.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/2010-04-01/Accounts/AC42/Messages.json");
    assert_eq!(seen[0].header("authorization"), format!("Basic {}", basic_b64("AC42", "tok")));
    let form = seen[0].form();
    assert_eq!(form[0], ("To".into(), format!("whatsapp:{MOBILE}")));
    assert_eq!(form[1], ("From".into(), "whatsapp:+14155238886".into()));
    assert_eq!(form[2], ("ContentSid".into(), "HX0123".into()));
    let vars: Value = serde_json::from_str(&form[3].1).unwrap();
    let code = vars["1"].as_str().unwrap().to_owned();
    let on = owner.submit(&account_form(&sent, "phone-confirm"), &[("code", &code)]).await;
    assert_eq!(recovery_codes(&on).len(), 10, "{on:?}");
}

// --- Native apps (RFC 8252) -------------------------------------------------------------------

#[tokio::test]
async fn native_app_redirects_loopback_any_port_private_scheme_and_claimed_https() {
    let server = Server::start();
    server.add_alice();
    let c = server.add_client(
        "native app",
        &[
            "--redirect-uri",
            "http://127.0.0.1/oauth2redirect",
            "--redirect-uri",
            "http://[::1]/oauth2redirect",
            "--redirect-uri",
            "com.example.app:/oauth2redirect",
            "--redirect-uri",
            "https://app.example.com/oauth2redirect",
            "--public",
            "--first-party",
        ],
    );
    let browser = server.browser();
    browser.security_page((USER, PASSWORD)).await;
    for redirect in [
        "http://127.0.0.1:51004/oauth2redirect",
        "http://127.0.0.1:8/oauth2redirect",
        "http://[::1]:61123/oauth2redirect",
        "com.example.app:/oauth2redirect",
        "https://app.example.com/oauth2redirect",
    ] {
        let pkce = Pkce::new();
        let p = [
            ("client_id", c.id.as_str()),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ];
        let r = browser.authorize(&p).await;
        let loc = r.location().unwrap_or_else(|| panic!("{redirect}: {r:?}"));
        assert!(loc.starts_with(&format!("{redirect}?")), "{redirect}: {loc}");
        let code = url::Url::parse(loc).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let t = server
            .token(
                &c.auth(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &pkce.verifier),
                ],
            )
            .await;
        assert_eq!(t.status, 200, "{redirect}: {t:?}");
    }
    // Without PKCE a public client is refused (by redirect, the URI being registered).
    let p = [
        ("client_id", c.id.as_str()),
        ("redirect_uri", "http://127.0.0.1:51004/oauth2redirect"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
    ];
    let r = browser.authorize(&p).await;
    assert!(r.location().unwrap().contains("error=invalid_request"), "{r:?}");
    // The port may vary, nothing else: another path, `localhost`, or https on loopback.
    for wrong in [
        "http://127.0.0.1:51004/other",
        "http://localhost:51004/oauth2redirect",
        "https://127.0.0.1:51004/oauth2redirect",
        "com.example.app:/other",
    ] {
        let p = [("client_id", c.id.as_str()), ("redirect_uri", wrong), ("response_type", "code"), ("scope", "openid")];
        let r = browser.authorize(&p).await;
        r.assert_error_page();
    }
}
