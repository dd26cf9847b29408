//! Accounts people run themselves, the password part (issue #13) and the user's side of issue
//! #20 medium 6: forgot password → a single-use link by mail → a new password by the policy and
//! the history, after which every session and grant is gone and the second factor is still
//! asked; the same answer, no mail and the same time for an unknown account; change password
//! on the account page with history and policy refusals; any change of sign-in methods ends
//! the user's other sessions and mails them; delete and export; the JSON API.

mod common;

use common::mail::Received;
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const EMAIL: &str = "alice@example.com";
const NEW_PASSWORD: &str = "tangerine orbit saxophone";

/// The messages to `to` with `subject`, waiting (mail goes out off the request path) until
/// there are at least `n`.
async fn mail_with(server: &Server, to: &str, subject: &str, n: usize) -> Vec<Received> {
    for _ in 0..100 {
        let got: Vec<Received> =
            server.mail_to(to).into_iter().filter(|m| m.header("Subject") == Some(subject)).collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {n} mail(s) {subject:?} to {to}: {:?}", server.outbox());
}

/// The path of the reset link in a mail's text (quoted-printable soft breaks undone).
fn reset_link(mail: &Received) -> String {
    let text = mail.raw.replace("=\r\n", "");
    let start = text.find("/account/password/reset/").unwrap_or_else(|| panic!("no link: {mail:?}"));
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c)).collect()
}

/// The `autocomplete` token of the input named `name` on `page`.
fn autocomplete(page: &Resp, name: &str) -> Option<String> {
    tags(&page.body, "input")
        .into_iter()
        .find(|(_, a)| a.get("name").map(String::as_str) == Some(name))
        .and_then(|(_, a)| a.get("autocomplete").cloned())
}

/// Asks for a reset link for `login` on the forgot page, in `browser`.
async fn forgot(browser: &Browser, login: &str) -> Resp {
    let page = browser.get("/account/password/forgot").await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = form_with(&page, "/account/password/forgot", "login").unwrap_or_else(|| panic!("{page:?}"));
    assert_eq!(autocomplete(&page, "login").as_deref(), Some("username"), "{page:?}");
    browser.submit(&form, &[("login", login)]).await
}

/// The sign-in page links to the forgot page; asking there mails alice a link; returns it.
async fn link_for_alice(server: &Server, browser: &Browser, nth: usize) -> String {
    let r = forgot(browser, USER).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("we have sent a link"), "{r:?}");
    let mails = mail_with(server, EMAIL, "Reset your Latchkey password", nth).await;
    assert!(mails[nth - 1].has_html_part(), "{:?}", mails[nth - 1]);
    reset_link(&mails[nth - 1])
}

/// Sets `password` with the reset form at `link`.
async fn reset_with(browser: &Browser, link: &str, password: &str) -> Resp {
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = form_with(&page, "/account/password/reset/", "password").unwrap_or_else(|| panic!("{page:?}"));
    assert_eq!(autocomplete(&page, "password").as_deref(), Some("new-password"), "{page:?}");
    browser.submit(&form, &[("password", password)]).await
}

/// Whether the browser's session is alive: the account page shows, rather than a sign-in.
async fn signed_in(browser: &Browser) -> bool {
    let r = browser.get("/account/security").await;
    assert!(r.status == 200 || r.status == 303, "{r:?}");
    r.status == 200
}

/// A refresh with the tokens' refresh token fails: their grant is revoked.
async fn assert_revoked(server: &Server, c: &TestClient, tokens: &Tokens) {
    server.refresh(c, tokens.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn forgot_then_reset_signs_everyone_out_and_still_asks_the_second_factor() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    // Alice's own browser: tokens with offline_access, then an authenticator app.
    let owner = server.browser();
    let tokens = server.code_flow(&owner, &c, "openid offline_access").await;
    let e = owner.enrol_totp(&owner.security_page((USER, PASSWORD)).await).await;

    // The sign-in page offers the way to the forgot page.
    let browser = server.browser();
    let login = browser.follow(&browser.authorize(&auth_params(&c, "openid", "st", "n")).await).await;
    assert!(login.body.contains("href=\"/account/password/forgot\""), "{login:?}");
    let link = link_for_alice(&server, &browser, 1).await;

    // A GET (a mail scanner) uses nothing; a refused password neither.
    assert_eq!(server.browser().get(&link).await.status, 200);
    let weak = reset_with(&browser, &link, "password1").await;
    assert_eq!(weak.status, 400, "{weak:?}");
    assert!(weak.body.contains("too easy to guess"), "{weak:?}");
    let reused = reset_with(&browser, &link, PASSWORD).await;
    assert_eq!(reused.status, 400, "{reused:?}");
    assert!(reused.body.contains("have not used"), "the current password is in the history: {reused:?}");
    let done = reset_with(&browser, &link, NEW_PASSWORD).await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.body.contains("Your password was changed"), "{done:?}");
    assert!(done.headers.get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().contains("session")), "{done:?}");

    // Whoever held the account is out: the old session, the refresh token.
    assert!(!signed_in(&owner).await, "the old session ended");
    assert_revoked(&server, &c, &tokens).await;
    let mails = mail_with(&server, EMAIL, "Your Latchkey password was changed", 1).await;
    assert!(mails[0].raw.contains("reset link"), "{:?}", mails[0]);
    assert!(mails[0].raw.contains("/account/password/forgot"), "what to do if it was not them: {:?}", mails[0]);

    // Used: the link is spent.
    let again = browser.get(&link).await;
    assert_eq!(again.status, 400, "{again:?}");
    assert!(again.body.contains("no longer works"), "{again:?}");

    // The next sign-in takes the new password, then still the authenticator code.
    server.advance(30);
    let b = server.browser();
    let page = b.follow(&b.authorize(&auth_params(&c, "openid", "st", "n")).await).await;
    let old = b.login(&page, USER, PASSWORD).await;
    assert!(old.body.contains("Invalid username or password"), "{old:?}");
    let r = b.login(&old, USER, NEW_PASSWORD).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = b.follow(&r).await;
    let form = code_form(&page).unwrap_or_else(|| panic!("the second factor is still asked: {page:?}"));
    let r = b.submit(&form, &[("code", &totp_code(&e.secret, server.now() / 30))]).await;
    let o = b.complete(r, None, Decision::NotExpected).await;
    assert!(!o.code().is_empty());
}

#[tokio::test]
async fn forgot_for_an_unknown_account_answers_the_same_in_the_same_time_and_mails_nobody() {
    let server = Server::start();
    server.add_alice();
    let browser = server.browser();
    // Warm up (first template, first connection) before timing.
    forgot(&browser, "warm-up").await;
    let page = browser.get("/account/password/forgot").await;
    let form = form_with(&page, "/account/password/forgot", "login").unwrap();
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let (mut known_page, mut unknown_page) = (String::new(), String::new());
    for _ in 0..5 {
        let t = Instant::now();
        let r = browser.submit(&form, &[("login", USER)]).await;
        known.push(t.elapsed());
        assert_eq!(r.status, 200, "{r:?}");
        known_page = r.body.replace(USER, "LOGIN");
        let t = Instant::now();
        let r = browser.submit(&form, &[("login", "nobody")]).await;
        unknown.push(t.elapsed());
        assert_eq!(r.status, 200, "{r:?}");
        unknown_page = r.body.replace("nobody", "LOGIN");
    }
    assert_eq!(known_page, unknown_page, "the same page whether or not the account exists");
    // Medians, compared relative to the time a request takes.
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    assert!((k - u).abs() <= 0.5 * (k + u) / 2.0 + 0.010, "known {k:.4}s, unknown {u:.4}s: {known:?} {unknown:?}");

    // The API answers the same too.
    let a = api(&server, "/account/api/password/forgot", json!({ "login": EMAIL }), None).await;
    let b = api(&server, "/account/api/password/forgot", json!({ "login": "nobody@example.com" }), None).await;
    assert_eq!((a.status, a.json()), (202, json!({ "status": "sent" })));
    assert_eq!((b.status, b.json()), (202, json!({ "status": "sent" })));

    // Mail went to alice only: three links of six asked (the silent cap per account), none for
    // "nobody".
    mail_with(&server, EMAIL, "Reset your Latchkey password", 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outbox = server.outbox();
    assert!(outbox.iter().all(|m| m.header("To").is_some_and(|t| t.contains(EMAIL))), "{outbox:?}");
    assert_eq!(outbox.len(), 3, "at most three links per account and link lifetime: {outbox:?}");

    // The throttle per login name reads the same for an unknown name: a sixth ask is refused.
    let last = forgot(&browser, "nobody").await;
    assert_eq!(last.status, 429, "{last:?}");
    assert!(last.header("retry-after").is_some(), "{last:?}");
}

#[tokio::test]
async fn a_reset_link_expires_and_dies_with_a_password_change() {
    let server = Server::start();
    server.add_alice();
    let browser = server.browser();
    let link = link_for_alice(&server, &browser, 1).await;
    server.advance(31 * 60);
    let r = browser.get(&link).await;
    assert_eq!(r.status, 400, "expired after 30 minutes: {r:?}");
    assert!(r.body.contains("no longer works"), "{r:?}");

    let link = link_for_alice(&server, &browser, 2).await;
    assert_eq!(browser.get(&link).await.status, 200);
    server.cli_text(&["users", "set-password", USER, "--password-stdin"], Some(NEW_PASSWORD));
    let r = browser.get(&link).await;
    assert_eq!(r.status, 400, "issued for the old password: {r:?}");
    let form_post = browser.post_form(&link, &[("csrf", "x"), ("password", "another fine passphrase")]).await;
    assert_eq!(form_post.status, 403, "{form_post:?}");
    // The CLI keeps the history too.
    let (ok, _, err) = server.cli_raw(&["users", "set-password", USER, "--password-stdin"], Some(PASSWORD));
    assert!(!ok && err.contains("have not used"), "{err}");
}

/// Opens the change-password page in `browser` (signed in) and submits it.
async fn change_password(browser: &Browser, current: &str, new: &str) -> Resp {
    let page = browser.get("/account/password").await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = form_with(&page, "/account/password", "new_password").unwrap_or_else(|| panic!("{page:?}"));
    assert_eq!(autocomplete(&page, "current_password").as_deref(), Some("current-password"));
    assert_eq!(autocomplete(&page, "new_password").as_deref(), Some("new-password"));
    browser.submit(&form, &[("current_password", current), ("new_password", new)]).await
}

#[tokio::test]
async fn change_password_by_the_policy_and_history_ends_the_other_sessions() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let elsewhere = server.browser();
    let tokens = server.code_flow(&elsewhere, &c, "openid offline_access").await;
    let here = server.browser();
    here.security_page((USER, PASSWORD)).await;

    let wrong = change_password(&here, "not my password", NEW_PASSWORD).await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert!(wrong.body.contains("current password is not right"), "{wrong:?}");
    let weak = change_password(&here, PASSWORD, "qwertyuiop").await;
    assert_eq!(weak.status, 400, "{weak:?}");
    assert!(weak.body.contains("too easy to guess"), "{weak:?}");
    let same = change_password(&here, PASSWORD, PASSWORD).await;
    assert_eq!(same.status, 400, "{same:?}");
    assert!(same.body.contains("have not used"), "{same:?}");
    assert!(signed_in(&elsewhere).await, "nothing changed yet");

    let ok = change_password(&here, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("Your password was changed"), "{ok:?}");
    assert!(signed_in(&here).await, "this session stays");
    assert!(!signed_in(&elsewhere).await, "the other session ended");
    assert_revoked(&server, &c, &tokens).await;
    mail_with(&server, EMAIL, "Your Latchkey password was changed", 1).await;
    let audited = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'account.password_changed'");
    assert_eq!(audited.len(), 1, "{audited:?}");

    // Back to the first password: one of the last five.
    let back = change_password(&here, NEW_PASSWORD, PASSWORD).await;
    assert_eq!(back.status, 400, "{back:?}");
    assert!(back.body.contains("the last 5 are remembered"), "{back:?}");
}

#[tokio::test]
async fn the_history_keeps_only_the_last_n_passwords() {
    let server = Server::start_with(&[("LATCHKEY_PASSWORD_HISTORY", "2")]);
    server.add_alice();
    let here = server.browser();
    here.security_page((USER, PASSWORD)).await;
    let second = "marmalade lighthouse quartet";
    let third = "velvet cactus harmonica";
    assert_eq!(change_password(&here, PASSWORD, second).await.status, 200);
    assert_eq!(change_password(&here, second, third).await.status, 200);
    let rows = server.db_strings("SELECT user_id FROM password_history");
    assert_eq!(rows.len(), 2, "two remembered: {rows:?}");
    // The first password has left the history of two.
    assert_eq!(change_password(&here, third, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_factor_change_ends_the_other_sessions_and_mails_the_user() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let elsewhere = server.browser();
    let tokens = server.code_flow(&elsewhere, &c, "openid offline_access").await;
    let here = server.browser();
    let page = here.security_page((USER, PASSWORD)).await;
    here.enrol_totp(&page).await;
    assert!(signed_in(&here).await, "this session stays");
    assert!(!signed_in(&elsewhere).await, "the other session ended");
    assert_revoked(&server, &c, &tokens).await;
    let mails = mail_with(&server, EMAIL, "Your Latchkey sign-in methods changed", 1).await;
    assert!(mails[0].raw.contains("authenticator app"), "{:?}", mails[0]);
    assert!(mails[0].has_html_part());
    let audited = server.db_strings("SELECT detail FROM audit_events WHERE kind = 'account.methods_changed'");
    assert!(audited.iter().any(|d| d.contains("totp_on")), "{audited:?}");
}

#[tokio::test]
async fn export_then_delete_the_account() {
    let server = Server::start();
    let id = server.add_alice()["id"].as_str().unwrap().to_owned();
    let c = server.confidential_client();
    let browser = server.browser();
    let tokens = server.code_flow(&browser, &c, "openid email offline_access").await;

    let export = browser.get("/account/export").await;
    assert_eq!(export.status, 200, "{export:?}");
    assert!(export.header("content-disposition").unwrap_or("").contains("attachment"), "{export:?}");
    let data = export.json();
    assert_eq!(data["profile"]["username"], USER, "{data}");
    assert_eq!(data["profile"]["email"], EMAIL, "{data}");
    assert_eq!(data["profile"]["claims"]["given_name"], "Alice", "{data}");
    assert_eq!(data["sign_in_methods"]["password"], true, "{data}");
    assert_eq!(data["applications"][0]["client_id"], c.id.as_str(), "{data}");
    assert!(data["recent_events"].as_array().is_some_and(|e| !e.is_empty()), "{data}");
    assert!(!export.body.contains("$argon2"), "no secrets: {data}");

    // A stale sign-in is asked again before deleting.
    server.advance(301);
    let stale = browser.get("/account/delete").await;
    assert_eq!(stale.status, 303, "{stale:?}");
    assert!(stale.location().unwrap().starts_with("/login/"), "{stale:?}");
    let r = browser.login(&stale, USER, PASSWORD).await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = browser.follow(&r).await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = form_with(&page, "/account/delete", "confirm").unwrap_or_else(|| panic!("{page:?}"));
    let wrong = browser.submit(&form, &[("confirm", "bob")]).await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert_eq!(server.db_strings("SELECT username FROM users").len(), 1);
    let gone = browser.submit(&form, &[("confirm", USER)]).await;
    assert_eq!(gone.status, 200, "{gone:?}");
    assert!(gone.body.contains("Your account was deleted"), "{gone:?}");

    assert_revoked(&server, &c, &tokens).await;
    assert!(!signed_in(&browser).await);
    mail_with(&server, EMAIL, "Your Latchkey account was deleted", 1).await;
    for table in [
        "users",
        "sessions",
        "grants",
        "refresh_tokens",
        "consents",
        "password_history",
        "totp_credentials",
        "recovery_codes",
        "passkeys",
        "webauthn_users",
        "upstream_identities",
        "email_otp_enrolments",
    ] {
        let rows = server.db_strings(&format!("SELECT 'row' FROM {table}"));
        assert!(rows.is_empty(), "{table} still has {rows:?}");
    }
    let pii = server.db_strings(&format!(
        "SELECT kind FROM audit_events WHERE (user_id = '{id}' AND (ip IS NOT NULL OR detail <> '{{}}')) OR detail LIKE '%alice@%'"
    ));
    assert!(pii.is_empty(), "{pii:?}");
    let kept = server.db_strings(&format!("SELECT kind FROM audit_events WHERE user_id = '{id}'"));
    assert!(kept.iter().any(|k| k == "account.deleted") && kept.len() > 1, "{kept:?}");
}

/// A JSON call to the API, with a Bearer token when given.
async fn api(server: &Server, path: &str, body: Value, bearer: Option<&str>) -> Resp {
    let mut req = server.request(reqwest::Method::POST, path).header("Content-Type", "application/json");
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    server.send(req.body(body.to_string())).await
}

#[tokio::test]
async fn the_json_api_forgot_reset_and_change() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let tokens = server.code_flow(&browser, &c, "openid offline_access").await;

    let form =
        server.send(server.request(reqwest::Method::POST, "/account/api/password/forgot").body("login=alice")).await;
    assert_eq!(form.status, 400, "JSON only: {form:?}");
    let r = api(&server, "/account/api/password/forgot", json!({ "login": USER }), None).await;
    assert_eq!((r.status, r.json()), (202, json!({ "status": "sent" })), "{r:?}");
    let mails = mail_with(&server, EMAIL, "Reset your Latchkey password", 1).await;
    let token = reset_link(&mails[0]).rsplit('/').next().unwrap().to_owned();

    let weak = api(&server, "/account/api/password/reset", json!({ "token": token, "password": "short" }), None).await;
    assert_eq!(weak.status, 400, "{weak:?}");
    assert_eq!(weak.json()["error"], "invalid_request");
    assert!(weak.json()["fields"]["password"].as_str().unwrap().contains("at least 8"), "{weak:?}");
    let ok =
        api(&server, "/account/api/password/reset", json!({ "token": token, "password": NEW_PASSWORD }), None).await;
    assert_eq!((ok.status, ok.json()), (200, json!({ "status": "changed" })), "{ok:?}");
    let spent =
        api(&server, "/account/api/password/reset", json!({ "token": token, "password": NEW_PASSWORD }), None).await;
    assert_eq!(spent.status, 400, "{spent:?}");
    assert!(spent.json()["fields"]["token"].is_string(), "{spent:?}");
    assert_revoked(&server, &c, &tokens).await;

    // Change, as the user of a fresh access token.
    let b = server.browser();
    let mut p = auth_params(&c, "openid", "st", "n");
    let pkce = Pkce::new();
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let o = b.authorize_and_complete(&p, Some((USER, NEW_PASSWORD)), Decision::NotExpected).await;
    let t = Tokens::from_json(server.redeem(&c, &o.code(), Some(&pkce.verifier)).await.json());
    let at = t.access_token.as_str();
    let change = "/account/api/password/change";
    let none = api(&server, change, json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD }), None).await;
    assert_eq!(none.status, 401, "{none:?}");
    let wrong = api(&server, change, json!({ "current_password": "nope", "new_password": PASSWORD }), Some(at)).await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert!(wrong.json()["fields"]["current_password"].is_string(), "{wrong:?}");
    let reused =
        api(&server, change, json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD }), Some(at)).await;
    assert_eq!(reused.status, 400, "the password before the reset is in the history: {reused:?}");
    assert!(reused.json()["fields"]["new_password"].as_str().unwrap().contains("have not used"), "{reused:?}");
    let third = "velvet cactus harmonica";
    let ok = api(&server, change, json!({ "current_password": NEW_PASSWORD, "new_password": third }), Some(at)).await;
    assert_eq!((ok.status, ok.json()), (200, json!({ "status": "changed" })), "{ok:?}");
    assert!(signed_in(&b).await, "the session of the token's grant stays");
    mail_with(&server, EMAIL, "Your Latchkey password was changed", 2).await;

    // Or as the browser's session.
    let fourth = "marmalade lighthouse quartet";
    let body = json!({ "current_password": third, "new_password": fourth }).to_string();
    let url = b.resolve(change);
    let plain = b.send(b.client.post(&url).header("Content-Type", "text/plain").body(body.clone())).await;
    assert_eq!(plain.status, 400, "not JSON, as a cross-site form would send: {plain:?}");
    let r = b.send(b.client.post(&url).header("Content-Type", "application/json").body(body)).await;
    assert_eq!((r.status, r.json()), (200, json!({ "status": "changed" })), "{r:?}");
    assert!(signed_in(&b).await, "this session stays");

    // Rate limited: the per-login throttle, with Retry-After.
    let mut last = None;
    for _ in 0..6 {
        last = Some(api(&server, "/account/api/password/forgot", json!({ "login": "someone" }), None).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, 429, "{last:?}");
    assert!(last.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()), "{last:?}");
}

/// The text of every mail to alice with `subject`, soft line breaks undone.
fn texts(server: &Server, subject: &str) -> Vec<String> {
    server
        .mail_to(EMAIL)
        .into_iter()
        .filter(|m| m.header("Subject") == Some(subject))
        .map(|m| m.raw.replace("=\r\n", ""))
        .collect()
}

#[tokio::test]
async fn new_recovery_codes_and_turning_a_factor_off_end_the_other_sessions_too() {
    let (server, c, owner, e) = with_totp(&[]).await;
    // Elsewhere: a sign-in with both factors and an offline refresh token.
    server.advance(30);
    let elsewhere = server.browser();
    let pkce = Pkce::new();
    let mut p = auth_params(&c, "openid offline_access", "st", "n");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let r = elsewhere.login(&elsewhere.authorize(&p).await, USER, PASSWORD).await;
    let page = elsewhere.follow(&r).await;
    let r = elsewhere.submit(&code_form(&page).unwrap(), &[("code", &totp_code(&e.secret, server.now() / 30))]).await;
    let o = elsewhere.complete(r, None, Decision::Allow).await;
    let tokens = Tokens::from_json(server.redeem(&c, &o.code(), Some(&pkce.verifier)).await.json());
    assert!(signed_in(&elsewhere).await);

    // Here: new recovery codes, after signing in again with both factors.
    server.advance(30);
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "recovery-codes"), &[]).await;
    assert_eq!(r.status, 303, "re-authentication first: {r:?}");
    let r = owner.login(&owner.follow(&r).await, USER, PASSWORD).await;
    let code_page = owner.follow(&r).await;
    let r = owner.submit(&code_form(&code_page).unwrap(), &[("code", &totp_code(&e.secret, server.now() / 30))]).await;
    let page = owner.follow(&r).await;
    let fresh = owner.submit(&account_form(&page, "recovery-codes"), &[]).await;
    assert_eq!(recovery_codes(&fresh).len(), 10, "{fresh:?}");
    assert!(!signed_in(&elsewhere).await, "the other session ended");
    assert_revoked(&server, &c, &tokens).await;
    mail_with(&server, EMAIL, "Your Latchkey sign-in methods changed", 2).await;
    assert!(texts(&server, "Your Latchkey sign-in methods changed").iter().any(|t| t.contains("New recovery codes")));

    // Turning the authenticator off: this session stays, a third notice goes out.
    let page = owner.get("/account/security").await;
    let r = owner.submit(&account_form(&page, "totp-remove"), &[]).await;
    assert_eq!(r.location(), Some("/account/security"), "{r:?}");
    assert!(signed_in(&owner).await, "this session stays");
    mail_with(&server, EMAIL, "Your Latchkey sign-in methods changed", 3).await;
    assert!(texts(&server, "Your Latchkey sign-in methods changed").iter().any(|t| t.contains("turned off")));
}
