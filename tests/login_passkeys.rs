//! Passkeys (WebAuthn Level 3) over HTTP against the real server, with a software
//! authenticator written in the test (tests/common/authenticator.rs): registration on the
//! account security page; passwordless sign-in with a discoverable credential and user
//! verification (§7.2), which alone is `acr` 2 with `amr` `hwk`/`swk` + `user` + `mfa`
//! (RFC 8176); a passkey as the second factor after a password and for step-up; and the
//! refusals: another RP ID (§7.2 step 15, rpIdHash), a counter that does not move forward
//! (§6.1.1), no user verification, a wrong or replayed challenge, an unknown credential, another
//! user's credential — audited, and throttled per account.

mod common;

use common::authenticator::SoftAuthenticator;
use common::*;
use serde_json::{Value, json};

const ESSENTIAL_ACR_2: &str = r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#;

/// The value of attribute `name` on the element with `id`, unescaped.
fn attribute(page: &Resp, id: &str, name: &str) -> Option<String> {
    let at = page.body.find(&format!("id=\"{id}\""))?;
    let start = page.body[..at].rfind('<')?;
    let tag = &page.body[start..start + page.body[start..].find('>')?];
    let value = tag.split(&format!(" {name}=\"")).nth(1)?.split('"').next()?;
    Some(unescape_html(value))
}

/// Adds `auth` as a passkey named `name` from the security page PAGE (signed in and fresh),
/// as the page's script would; returns the page after.
async fn add_passkey(browser: &Browser, page: &Resp, auth: &mut SoftAuthenticator, name: &str) -> Resp {
    let r = browser.submit(&account_form(page, "passkey-begin"), &[("name", name)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let options = attribute(&r, "passkey-create", "data-options-json").unwrap_or_else(|| panic!("{r:?}"));
    let options: Value = serde_json::from_str(&options).unwrap();
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost", "RP ID = the issuer's host: {options}");
    let credential = auth.create(&options);
    let r = browser.submit(&account_form(&r, "passkey-finish"), &[("credential", &credential)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    r
}

/// The passkey form on PAGE and a challenge for it, fetched as the page's script does.
async fn passkey_challenge(browser: &Browser, page: &Resp) -> (Form, Value) {
    let form = page.forms().into_iter().find(|f| f.value("step") == Some("passkey"));
    let form = form.unwrap_or_else(|| panic!("no passkey form: {page:?}"));
    let url = attribute(page, "passkey-form", "data-options").expect("challenge URL");
    let r = browser.post_form(&url, &[("csrf", form.value("csrf").unwrap())]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    (form, r.json())
}

/// Answers the passkey offered on PAGE with `auth`.
async fn use_passkey(browser: &Browser, page: &Resp, auth: &mut SoftAuthenticator) -> Resp {
    let (form, options) = passkey_challenge(browser, page).await;
    browser.submit(&form, &[("credential", &auth.get(&options))]).await
}

/// Runs the rest of a code flow from RESP and returns the checked ID token's claims.
async fn claims(server: &Server, browser: &Browser, c: &TestClient, resp: Resp, nonce: &str) -> Value {
    let o = browser.complete(resp, None, Decision::NotExpected).await;
    let r = server.redeem(c, &o.code(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = Tokens::from_json(r.json());
    check_id_token(tokens.id_token(), &server.issuer, &c.id, Some(nonce), None, &server.jwks().await)
}

/// A new browser at the sign-in page of a code flow for `c`.
async fn sign_in_page(server: &Server, c: &TestClient, nonce: &str) -> (Browser, Resp) {
    let browser = server.browser();
    let page = browser.follow(&browser.authorize(&auth_params(c, "openid", "s", nonce)).await).await;
    assert!(login_form(&page).is_some(), "{page:?}");
    (browser, page)
}

fn audit(server: &Server, kind: &str) -> Vec<String> {
    server.db_strings(&format!("SELECT detail FROM audit_events WHERE kind = '{kind}' ORDER BY at, id"))
}

#[tokio::test]
async fn passkeys_are_added_listed_and_sign_in_alone() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;
    assert!(page.body.contains("No passkeys yet"), "{page:?}");

    // Two passkeys, named: one bound to this device, one synced (backup eligible).
    let mut laptop = SoftAuthenticator::new(&server.issuer);
    let page = add_passkey(&owner, &page, &mut laptop, "Laptop").await;
    assert!(page.body.contains("Your passkey is added."), "{page:?}");
    // Now a change needs a sign-in with two factors: the passkey alone is one.
    let r = owner.submit(&account_form(&page, "passkey-begin"), &[("name", "Phone")]).await;
    assert!(r.location().is_some_and(|l| l.starts_with("/login/")), "re-authentication: {r:?}");
    let r = use_passkey(&owner, &owner.follow(&r).await, &mut laptop).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    let page = owner.follow(&r).await;
    let mut phone = SoftAuthenticator::new(&server.issuer);
    phone.backup_eligible = true;
    let page = add_passkey(&owner, &page, &mut phone, " Phone ").await;
    assert!(page.body.contains("<strong>Laptop</strong>"), "{page:?}");
    assert!(page.body.contains("<strong>Phone</strong>") && page.body.contains("(synced)"), "{page:?}");
    assert!(page.body.contains("not used yet"), "{page:?}");
    assert!(page.body.contains("last used "), "the re-authentication used the laptop: {page:?}");
    assert_eq!(laptop.user_handle, phone.user_handle, "one user handle per account");
    assert_ne!(laptop.user_handle_bytes(), USER.as_bytes(), "the user handle is not the username");
    assert_eq!(audit(&server, "mfa.passkey_added").len(), 2);

    // The same authenticator cannot be added twice.
    let options_page = owner.submit(&account_form(&page, "passkey-begin"), &[("name", "Again")]).await;
    let options = attribute(&options_page, "passkey-create", "data-options-json").unwrap();
    let options: Value = serde_json::from_str(&options).unwrap();
    assert_eq!(options["publicKey"]["excludeCredentials"].as_array().map(Vec::len), Some(2), "{options}");
    let again =
        owner.submit(&account_form(&options_page, "passkey-finish"), &[("credential", &laptop.create(&options))]).await;
    assert!(again.body.contains("could not be created"), "{again:?}");
    assert_eq!(again.body.matches("class=\"passkey\"").count(), 2, "{again:?}");

    // The sign-in page offers passkeys through the browser's autofill, by a served script.
    let (browser, page) = sign_in_page(&server, &c, "n1").await;
    assert!(page.body.contains(r#"autocomplete="username webauthn""#), "{page:?}");
    assert!(page.body.contains(r#"<script src="/assets/webauthn.js" defer></script>"#), "{page:?}");
    let csp = page.header("content-security-policy").unwrap_or_default().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let js = browser.get("/assets/webauthn.js").await;
    assert_eq!((js.status, js.media_type().as_str()), (200, "text/javascript"), "{js:?}");

    // Passwordless with the device-bound passkey: two kinds of factor at once.
    let r = use_passkey(&browser, &page, &mut laptop).await;
    assert!(r.is_redirect(), "{r:?}");
    let id = claims(&server, &browser, &c, r, "n1").await;
    assert_eq!(id["acr"], "2", "{id}");
    assert_eq!(id["amr"], json!(["hwk", "user", "mfa"]), "{id}");

    // With the synced one: swk.
    let (browser, page) = sign_in_page(&server, &c, "n2").await;
    let r = use_passkey(&browser, &page, &mut phone).await;
    let id = claims(&server, &browser, &c, r, "n2").await;
    assert_eq!(id["amr"], json!(["swk", "user", "mfa"]), "{id}");

    let page = owner.get("/account/security").await;
    assert!(!page.body.contains("not used yet"), "{page:?}");
    let rename = page.forms().into_iter().find(|f| f.value("action") == Some("passkey-rename")).unwrap();
    let r = owner.submit(&rename, &[("name", "Work laptop")]).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(owner.follow(&r).await.body.contains("<strong>Work laptop</strong>"));
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_after_a_password() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let mut key = SoftAuthenticator::new(&server.issuer);
    add_passkey(&owner, &owner.security_page((USER, PASSWORD)).await, &mut key, "Key").await;

    // Setting up an authenticator app now needs a sign-in with both factors: password, passkey.
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "totp-begin"), &[]).await;
    assert!(r.location().is_some_and(|l| l.starts_with("/login/")), "re-authentication: {r:?}");
    let r = owner.login(&owner.follow(&r).await, USER, PASSWORD).await;
    let passkey_page = owner.follow(&r).await;
    assert!(passkey_page.body.contains("Use your passkey"), "{passkey_page:?}");
    assert!(login_form(&passkey_page).is_none(), "{passkey_page:?}");
    assert!(!passkey_page.body.contains("authenticator app instead"), "no TOTP yet: {passkey_page:?}");
    let r = use_passkey(&owner, &passkey_page, &mut key).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    let e = owner.enrol_totp(&owner.follow(&r).await).await;

    // Password, then the passkey, offered first, with the other factors as alternatives.
    let (browser, page) = sign_in_page(&server, &c, "n1").await;
    let page = browser.follow(&browser.login(&page, USER, PASSWORD).await).await;
    assert!(switch_form(&page, "totp").is_some() && switch_form(&page, "recovery_code").is_some(), "{page:?}");
    let r = use_passkey(&browser, &page, &mut key).await;
    let id = claims(&server, &browser, &c, r, "n1").await;
    assert_eq!(id["acr"], "2", "{id}");
    assert_eq!(id["amr"], json!(["pwd", "hwk", "user", "mfa"]), "{id}");

    // Or the authenticator app instead, whose page offers the passkey back, without a script.
    let (browser, page) = sign_in_page(&server, &c, "n2").await;
    let page = browser.follow(&browser.login(&page, USER, PASSWORD).await).await;
    let code_page = browser.switch_to(&page, "totp").await;
    assert!(switch_form(&code_page, "passkey").is_some(), "{code_page:?}");
    assert!(!code_page.body.contains("<script"), "{code_page:?}");
    let r = browser.submit(&code_form(&code_page).unwrap(), &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    let id = claims(&server, &browser, &c, r, "n2").await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]), "{id}");

    // Passwordless is still the passkey alone: not asked for the app as well.
    let (browser, page) = sign_in_page(&server, &c, "n3").await;
    let r = use_passkey(&browser, &page, &mut key).await;
    let id = claims(&server, &browser, &c, r, "n3").await;
    assert_eq!(id["amr"], json!(["hwk", "user", "mfa"]), "{id}");
}

#[tokio::test]
async fn a_password_session_steps_up_with_a_passkey() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let first = browser
        .authorize_and_complete(&auth_params(&c, "openid", "s", "n1"), Some((USER, PASSWORD)), Decision::NotExpected)
        .await;
    let one = Tokens::from_json(server.redeem(&c, &first.code(), None).await.json()).id_claims();
    assert_eq!((one["acr"].as_str(), &one["amr"]), (Some("1"), &json!(["pwd"])), "{one}");
    let mut key = SoftAuthenticator::new(&server.issuer);
    add_passkey(&browser, &browser.security_page((USER, PASSWORD)).await, &mut key, "Key").await;

    // Essential acr 2: the passkey page, not the password again; the same session is raised.
    let mut p = auth_params(&c, "openid", "s", "n2");
    p.push(("claims", ESSENTIAL_ACR_2));
    let page = browser.follow(&browser.authorize(&p).await).await;
    assert!(login_form(&page).is_none(), "step-up does not start over: {page:?}");
    let r = use_passkey(&browser, &page, &mut key).await;
    let two = claims(&server, &browser, &c, r, "n2").await;
    assert_eq!(two["acr"], "2", "{two}");
    assert_eq!(two["amr"], json!(["pwd", "hwk", "user", "mfa"]), "{two}");
    assert_eq!(two["sid"], one["sid"], "the session is stepped up, not replaced");
}

#[tokio::test]
async fn refused_assertions_are_audited_and_count_toward_the_throttle() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_MAX_FAILURES", "4")]);
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let mut key = SoftAuthenticator::new(&server.issuer);
    add_passkey(&owner, &owner.security_page((USER, PASSWORD)).await, &mut key, "Key").await;

    // One good sign-in moves the stored counter to 5.
    let (browser, page) = sign_in_page(&server, &c, "n").await;
    key.next_counter = Some(5);
    let r = use_passkey(&browser, &page, &mut key).await;
    assert_eq!(claims(&server, &browser, &c, r, "n").await["acr"], "2");
    let refused = |r: &Resp, message: &str| {
        assert_eq!(r.status, 200, "refused on the sign-in page: {r:?}");
        assert!(r.body.contains(message), "{message:?} in {r:?}");
        assert!(login_form(r).is_some(), "{r:?}");
    };

    let (browser, page) = sign_in_page(&server, &c, "n").await;
    // Not counted (no account is known, or nothing was checked): garbage, an unregistered
    // credential, a replayed assertion.
    let (form, _) = passkey_challenge(&browser, &page).await;
    refused(&browser.submit(&form, &[("credential", "{not json")]).await, "did not answer");
    let mut stranger = SoftAuthenticator::new(&server.issuer);
    stranger.user_handle = key.user_handle.clone();
    refused(&use_passkey(&browser, &page, &mut stranger).await, "not recognised");

    // Counted: signed for another RP ID; then the same assertion again finds no challenge.
    let (form, options) = passkey_challenge(&browser, &page).await;
    key.rp_id_override = Some("evil.example".into());
    let assertion = key.get(&options);
    key.rp_id_override = None;
    refused(&browser.submit(&form, &[("credential", &assertion)]).await, "could not be verified");
    refused(&browser.submit(&form, &[("credential", &assertion)]).await, "expired or was already used");
    // Counted: no user verification; a challenge the server did not issue; a counter that went
    // back (a cloned authenticator?).
    key.uv = false;
    refused(&use_passkey(&browser, &page, &mut key).await, "could not be verified");
    key.uv = true;
    let (form, _) = passkey_challenge(&browser, &page).await;
    let stray = key.assert("localhost", &SoftAuthenticator::stray_challenge());
    refused(&browser.submit(&form, &[("credential", &stray)]).await, "could not be verified");
    key.next_counter = Some(3);
    refused(&use_passkey(&browser, &page, &mut key).await, "could not be accepted");

    // Four counted failures: now even a good assertion is throttled.
    key.next_counter = Some(9);
    refused(&use_passkey(&browser, &page, &mut key).await, "Too many failed attempts");

    let failed = audit(&server, "login.failed").join("\n");
    for reason in [
        "no or unreadable passkey assertion",
        "unknown passkey",
        "passkey for another relying party",
        "no or used passkey challenge",
        "passkey without user verification",
        "passkey challenge mismatch",
        "passkey counter regression",
        "account throttled",
    ] {
        assert!(failed.contains(reason), "{reason:?} audited: {failed}");
    }
    let regression = audit(&server, "login.passkey_counter_regression");
    assert_eq!(regression.len(), 1, "{regression:?}");
    assert!(regression[0].contains("\"stored_counter\":5"), "{regression:?}");
}

#[tokio::test]
async fn another_users_passkey_is_refused_and_removal_needs_a_fresh_sign_in() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_REAUTH_SECS", "3")]);
    server.add_alice();
    server.add_user("bob", "bob's own long password");
    let c = server.first_party_client();
    let owner = server.browser();
    let mut key = SoftAuthenticator::new(&server.issuer);
    add_passkey(&owner, &owner.security_page((USER, PASSWORD)).await, &mut key, "Key").await;
    let bob = server.browser();
    let mut bobs = SoftAuthenticator::new(&server.issuer);
    add_passkey(&bob, &bob.security_page(("bob", "bob's own long password")).await, &mut bobs, "Bob's").await;

    // Alice's password, then Bob's passkey: refused.
    let (browser, page) = sign_in_page(&server, &c, "n").await;
    let page = browser.follow(&browser.login(&page, USER, PASSWORD).await).await;
    let r = use_passkey(&browser, &page, &mut bobs).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("not recognised"), "{r:?}");
    assert!(audit(&server, "login.failed").join("\n").contains("passkey of another user"));

    // Removing the passkey after reauth_secs: sign in again (password and passkey) first.
    server.advance(4);
    let page = owner.get("/account/security").await;
    let remove = account_form(&page, "passkey-remove");
    let r = owner.submit(&remove, &[]).await;
    assert!(r.location().is_some_and(|l| l.starts_with("/login/")), "re-authentication: {r:?}");
    let r = owner.login(&owner.follow(&r).await, USER, PASSWORD).await;
    let r = use_passkey(&owner, &owner.follow(&r).await, &mut key).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    let page = owner.follow(&r).await;
    let r = owner.submit(&account_form(&page, "passkey-remove"), &[]).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    assert!(owner.follow(&r).await.body.contains("No passkeys yet"));
    assert_eq!(audit(&server, "mfa.passkey_removed").len(), 1);

    // Gone: the password alone is acr 1 again, and the passkey is not recognised.
    let fresh = server.browser();
    let o = fresh
        .authorize_and_complete(&auth_params(&c, "openid", "s", "n"), Some((USER, PASSWORD)), Decision::NotExpected)
        .await;
    let id = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json()).id_claims();
    assert_eq!(id["amr"], json!(["pwd"]), "{id}");
    let (browser, page) = sign_in_page(&server, &c, "n").await;
    let r = use_passkey(&browser, &page, &mut key).await;
    assert!(r.body.contains("not recognised"), "{r:?}");
}

#[tokio::test]
async fn bad_ceremony_input_gets_pages_not_errors() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let page = owner.security_page((USER, PASSWORD)).await;

    // Registration: garbage, then a replayed finish, each a readable page.
    let begin = owner.submit(&account_form(&page, "passkey-begin"), &[("name", "x")]).await;
    let finish = account_form(&begin, "passkey-finish");
    let r = owner.submit(&finish, &[("credential", "[1,2")]).await;
    assert!(r.status == 200 && r.body.contains("could not be created"), "{r:?}");
    let r = owner.submit(&finish, &[("credential", "{}")]).await;
    assert!(r.status == 200 && r.body.contains("expired or was already used"), "{r:?}");

    // Sign-in: a challenge without the CSRF token, a step that does not exist.
    let (browser, page) = sign_in_page(&server, &c, "n").await;
    let url = attribute(&page, "passkey-form", "data-options").unwrap();
    let r = browser.post_form(&url, &[("csrf", "forged")]).await;
    assert_eq!(r.status, 403, "{r:?}");
    let form = login_form(&page).unwrap();
    let r = browser.submit(&form, &[("step", "nonsense")]).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = browser.submit(&form, &[("switch", "passkey")]).await;
    assert_eq!(r.status, 400, "no passkey to switch to before a user is known: {r:?}");
}
