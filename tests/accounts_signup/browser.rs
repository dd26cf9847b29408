//! A real browser signs up, confirms by the mailed link and lands at the client: headless
//! Chromium through `common::chromium`, on the pages alone (no script of ours runs on them).

use super::*;
use crate::common::chromium::{Driver, Session};

#[tokio::test]
async fn chromium_signs_up_confirms_by_the_mailed_link_and_lands_at_the_client() {
    let Some((driver, id)) = Driver::start("accounts_signup browser").await else { return };
    let browser = Session { driver: &driver, id };
    let server = Server::start_with(ENV);
    // The client comes back to the OP's own origin, so the browser can load the callback URL.
    let callback = format!("{}/rp-callback", server.issuer);
    let c = server.add_client("browser rp", &["--redirect-uri", &callback, "--first-party"]);
    let pkce = Pkce::new();
    let mut p = auth_params(&c, "openid email profile", "st", "nonce-browser");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    browser.goto(&format!("{}/authorize?{}", server.issuer, encode_form(&p))).await;

    // "Create an account" on the sign-in page, then the form as a person fills it in.
    browser.click("#switch button[value=signup]").await;
    browser.wait_text("Create an account").await;
    browser.type_into("#given_name", "Rahim").await;
    browser.type_into("#family_name", "Uddin").await;
    // A date input's typing order follows the locale; its value does not.
    browser.script("document.getElementById('birthdate').value = '1990-04-23'; return true").await;
    browser.script("document.getElementById('gender').value = 'male'; return true").await;
    browser.type_into("#phone_number", "01712345678").await;
    browser.type_into("#email", "chromium@example.com").await;
    browser.type_into("#password", NEW_PASSWORD).await;
    browser.click("#submit").await;
    browser.wait_text("Check your email").await;

    // The link from the outbox, opened in the same browser: the button confirms, and the
    // authorization request continues to the client.
    let link = link_in(&wait_mail(&server, "chromium@example.com", 1).await[0]);
    browser.goto(&format!("{}{link}", server.issuer)).await;
    browser.click("#confirm button").await;
    let landed = browser.wait_url("the client's callback", |u| u.starts_with(&callback)).await;
    let landed = url::Url::parse(&landed).unwrap();
    let code = landed.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
    let code = code.unwrap_or_else(|| panic!("no code in {landed}"));
    let r = server.redeem(&c, &code, Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = Tokens::from_json(r.json());
    let userinfo = server.userinfo(&tokens.access_token).await.json();
    assert_eq!(userinfo["email"], "chromium@example.com", "{userinfo}");
    assert_eq!(userinfo["email_verified"], true, "{userinfo}");
    assert_eq!(userinfo["birthdate"], "1990-04-23", "{userinfo}");
    assert_eq!(userinfo["gender"], "male", "{userinfo}");

    browser.call(reqwest::Method::DELETE, "", None).await;
}
