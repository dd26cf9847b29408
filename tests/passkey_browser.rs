//! A real browser registers a passkey and signs in with it alone: headless Chromium driven
//! through chromedriver (W3C WebDriver, plain JSON over HTTP), with a virtual authenticator
//! from the WebDriver extension of WebAuthn Level 2 §11 (CTAP2, internal transport, resident
//! keys, user verification). It checks what the other tests cannot: that `webauthn.js` speaks to
//! a browser's WebAuthn API, under the page's CSP, and that webauthn-rs accepts what it sends.
//!
//! Needs /usr/bin/chromedriver and /usr/bin/chromium (Debian `chromium`, `chromium-driver`).
//! Without them the test says so and passes, unless LATCHKEY_REQUIRE_BROWSER=1 (as in CI).

mod common;

use common::chromium::{Driver, Session};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn chromium_registers_a_passkey_and_signs_in_with_it_alone() {
    let Some((driver, id)) = Driver::start("passkey_browser").await else { return };
    let browser = Session { driver: &driver, id };
    let server = Server::start();
    server.add_alice();
    // The client comes back to the OP's own origin, so the browser can load the callback URL.
    let callback = format!("{}/rp-callback", server.issuer);
    let c = server.add_client("browser rp", &["--redirect-uri", &callback, "--first-party"]);

    // A platform authenticator that holds discoverable credentials and verifies its user.
    let authenticator = browser
        .call(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            Some(json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                        "hasUserVerification": true, "isUserVerified": true,
                        "automaticPresenceSimulation": true})),
        )
        .await;
    let authenticator = authenticator.as_str().expect("authenticator id").to_owned();

    // Sign in with the password and add a passkey on the security page.
    browser.goto(&server.url("/account/security")).await;
    browser.type_into("#username", USER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#submit").await;
    browser.wait_text("Account security").await;
    browser.type_into("#passkey-name", "Chromium").await;
    browser.click("#passkey-add button").await;
    browser.click("#passkey-create-button").await;
    browser.wait_text("Your passkey is added.").await;
    let path = format!("/webauthn/authenticator/{authenticator}/credentials");
    let creds = browser.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(creds.as_array().map(Vec::len), Some(1), "{creds}");
    assert_eq!(creds[0]["isResidentCredential"], true, "a discoverable credential: {creds}");
    assert_eq!(creds[0]["rpId"], "localhost", "{creds}");

    // Signed out (cookies gone), a new authorization: sign in with the passkey alone.
    browser.call(reqwest::Method::DELETE, "/cookie", None).await;
    let pkce = Pkce::new();
    let mut p = auth_params(&c, "openid", "st", "nonce-browser");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    browser.goto(&format!("{}/authorize?{}", server.issuer, encode_form(&p))).await;
    // The page's conditional request (autofill) may already be answered by the virtual
    // authenticator, which simulates the user's touch; otherwise press the passkey button.
    // Up to 2 s for that, polled: the browser is another process.
    let asked = Instant::now();
    while asked.elapsed() < Duration::from_secs(2) {
        let url = browser.call(reqwest::Method::GET, "/url", None).await;
        if url.as_str().is_some_and(|u| u.starts_with(&callback)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let script = "var b = document.getElementById('passkey-button'); \
                  if (b && !b.closest('form').hidden) { b.click(); return true } return false";
    let clicked = browser.script(script).await;
    eprintln!("signed in by {}", if clicked == json!(true) { "the passkey button" } else { "autofill" });
    let landed = browser.wait_url("the client's callback", |u| u.starts_with(&callback)).await;
    let landed = url::Url::parse(&landed).unwrap();
    let code = landed.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
    let code = code.unwrap_or_else(|| panic!("no code in {landed}"));
    let r = server.redeem(&c, &code, Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = Tokens::from_json(r.json());
    let claims = check_id_token(
        tokens.id_token(),
        &server.issuer,
        &c.id,
        Some("nonce-browser"),
        Some(&tokens.access_token),
        &server.jwks().await,
    );
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]), "{claims}");

    browser.call(reqwest::Method::DELETE, "", None).await;
}
