//! Sign-in links by email, the step added on the login engine as one module and one registry
//! line: offered where the operator lets people sign in by email; a link for an account's
//! confirmed address only, the page reading the same for an unknown one; opening the link
//! uses nothing until the person presses the button (mail scanners fetch links); in the same
//! browser the sign-in completes, on another device it approves the waiting browser, which goes
//! on by itself and alone gets the session; a link works once. ID tokens carry `amr` otp.

mod common;

use common::mail::Received;
use common::*;
use serde_json::json;

const EMAIL: &str = "alice@example.com";

/// The path of the sign-in link in a mail's text part (quoted-printable soft breaks undone).
fn link_in(mail: &Received) -> String {
    let text = mail.raw.replace("=\r\n", "");
    let start = text.find("/login/link/").unwrap_or_else(|| panic!("no link: {mail:?}"));
    let rest = &text[start..];
    let end = rest.find("/callback").unwrap_or_else(|| panic!("no link end: {mail:?}")) + "/callback".len();
    rest[..end].to_owned()
}

/// A server with alice and email sign-in on, a fresh browser at the address form of the link
/// step, and the PKCE of its authorization request.
async fn address_form() -> (Server, TestClient, Browser, Form, Pkce) {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_EMAIL_FIRST_FACTOR", "true")]);
    server.add_alice(); // email_verified is among alice's claims
    let c = server.first_party_client();
    let pkce = Pkce::new();
    let browser = server.browser();
    let mut p = auth_params(&c, "openid", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let login = browser.follow(&browser.authorize(&p).await).await;
    assert!(switch_form(&login, "magic_link").is_some(), "offered on the sign-in page: {login:?}");
    let page = browser.switch_to(&login, "magic_link").await;
    let form = form_with(&page, "/login/", "email").unwrap_or_else(|| panic!("address form: {page:?}"));
    (server, c, browser, form, pkce)
}

/// The confirmation page a link opens on, and its form.
async fn opened(browser: &Browser, link: &str) -> Form {
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{page:?}");
    page.forms().into_iter().find(|f| f.action.ends_with("/callback")).unwrap_or_else(|| panic!("{page:?}"))
}

async fn id_claims(server: &Server, c: &TestClient, o: &Outcome, pkce: &Pkce) -> serde_json::Value {
    let r = server.redeem(c, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json()).id_claims()
}

#[tokio::test]
async fn a_link_opened_in_the_same_browser_signs_in_once() {
    let (server, c, browser, form, pkce) = address_form().await;
    let waiting = browser.submit(&form, &[("email", EMAIL)]).await;
    assert_eq!(waiting.status, 200, "{waiting:?}");
    assert!(waiting.body.contains("a•••@example.com"), "{waiting:?}");
    let mail = server.await_mail_to(EMAIL, 1);
    assert_eq!(mail.len(), 1, "one mail");
    assert_eq!(mail[0].header("Subject"), Some("Your sign-in link"));
    assert!(mail[0].has_html_part(), "{:?}", mail[0]);
    let link = link_in(&mail[0]);

    // A scanner's GET uses nothing: the link still opens on its page.
    opened(&server.browser(), &link).await;
    let confirm = opened(&browser, &link).await;
    let r = browser.submit(&confirm, &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    let o = browser.complete(r, None, Decision::NotExpected).await;
    let claims = id_claims(&server, &c, &o, &pkce).await;
    assert_eq!(claims["amr"], json!(["otp"]), "{claims}");
    assert_eq!(claims["acr"], "1", "{claims}");

    // Spent.
    let again = browser.get(&link).await;
    assert_eq!(again.status, 400, "{again:?}");
    assert!(again.body.contains("no longer works"), "{again:?}");
    let replay = browser.submit(&confirm, &[]).await;
    assert_eq!(replay.status, 400, "{replay:?}");
    let opened = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'login.email_link_opened'");
    assert_eq!(opened.len(), 1, "{opened:?}");
}

#[tokio::test]
async fn a_link_opened_on_another_device_signs_in_the_waiting_browser_only() {
    let (server, c, browser, form, pkce) = address_form().await;
    let waiting = browser.submit(&form, &[("email", EMAIL)]).await;
    let flow_page = waiting.forms().into_iter().find(|f| f.action.starts_with("/login/")).unwrap().action;
    assert!(waiting.body.contains("http-equiv=\"refresh\""), "the waiting page looks again by itself: {waiting:?}");
    // Before the link is used, the waiting page stays.
    let still = browser.get(&flow_page).await;
    assert_eq!(still.status, 200, "{still:?}");
    assert!(still.body.contains("Check your email"), "{still:?}");

    let phone = server.browser();
    let confirm = opened(&phone, &link_in(&server.await_mail_to(EMAIL, 1)[0])).await;
    let there = phone.submit(&confirm, &[]).await;
    assert_eq!(there.status, 200, "{there:?}");
    assert!(there.body.contains("Go back to your other device"), "{there:?}");
    assert!(there.headers.get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().contains("session")), "{there:?}");
    let home = phone.get("/").await;
    assert!(!home.body.contains("alice"), "the phone is not signed in: {home:?}");

    // The waiting browser's next look goes on to the client.
    let r = browser.get(&flow_page).await;
    assert_eq!(r.status, 303, "{r:?}");
    let o = browser.complete(r, None, Decision::NotExpected).await;
    assert_eq!(id_claims(&server, &c, &o, &pkce).await["amr"], json!(["otp"]));
}

#[tokio::test]
async fn an_expired_link_signs_nobody_in() {
    let (server, _c, browser, form, _pkce) = address_form().await;
    browser.submit(&form, &[("email", EMAIL)]).await;
    let link = link_in(&server.await_mail_to(EMAIL, 1)[0]);
    let confirm = opened(&browser, &link).await;
    server.advance(601); // past tokens.email_code_ttl, the link's 10 minutes
    let late = browser.submit(&confirm, &[]).await;
    assert_eq!(late.status, 400, "{late:?}");
    assert!(late.body.contains("no longer works"), "{late:?}");
    let again = browser.get(&link).await;
    assert_eq!(again.status, 400, "{again:?}");
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_page_and_no_mail() {
    let (server, _c, browser, form, _pkce) = address_form().await;
    let nobody = browser.submit(&form, &[("email", "nobody@example.com")]).await;
    assert_eq!(nobody.status, 200, "{nobody:?}");
    assert!(nobody.body.contains("If n•••@example.com is the address of an account here"), "{nobody:?}");
    assert!(server.outbox().is_empty(), "no mail for an unknown address");
    let forged = browser.get("/login/link/not-a-link/callback").await;
    assert_eq!(forged.status, 400, "{forged:?}");
}

#[tokio::test]
async fn without_the_setting_there_is_no_link_step() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let login = browser.follow(&browser.authorize(&auth_params(&c, "openid", "st", "n")).await).await;
    assert!(switch_form(&login, "magic_link").is_none(), "no such button: {login:?}");
    let r = browser.submit(&login_form(&login).unwrap(), &[("switch", "magic_link")]).await;
    assert_eq!(r.status, 400, "{r:?}");
}
