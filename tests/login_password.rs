//! The password login step: wrong passwords, unknown users (no enumeration), CSRF on the form,
//! disabled users and password changes through the CLI.

mod common;

use common::*;

async fn login_page(server: &Server, browser: &Browser, c: &TestClient) -> Resp {
    let _ = server;
    let r = browser.authorize(&auth_params(c, "openid", "st", "n")).await;
    assert!(r.is_redirect(), "authorize without a session redirects to login: {r:?}");
    let page = browser.follow(&r).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.media_type(), "text/html");
    let form = login_form(&page).unwrap_or_else(|| panic!("login form: {page:?}"));
    assert!(form.action.contains("/login/"), "{form:?}");
    assert!(form.value("csrf").is_some_and(|v| !v.is_empty()), "csrf: {form:?}");
    page
}

fn assert_rejected_login(r: &Resp) {
    assert!(r.status == 200 || r.status == 401, "a failed login shows the page again: {r:?}");
    assert!(r.location().is_none(), "a failed login must not redirect: {r:?}");
    assert!(r.body.contains("Invalid username or password"), "message: {r:?}");
    assert!(login_form(r).is_some(), "the login form again: {r:?}");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let page = login_page(&server, &browser, &c).await;

    let wrong = browser.login(&page, USER, "not the password").await;
    assert_rejected_login(&wrong);
    let unknown = browser.login(&wrong, "nobody", PASSWORD).await;
    assert_rejected_login(&unknown);
    assert_eq!(wrong.status, unknown.status, "no account enumeration");

    // The flow still works after failures.
    let ok = browser.login(&unknown, USER, PASSWORD).await;
    let o = browser.complete(ok, None, Decision::NotExpected).await;
    o.code();
}

#[tokio::test]
async fn login_post_with_wrong_or_missing_csrf_is_rejected() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let page = login_page(&server, &browser, &c).await;
    let form = login_form(&page).unwrap();

    let bad = browser.submit(&form, &[("csrf", "forged"), ("username", USER), ("password", PASSWORD)]).await;
    assert!(matches!(bad.status, 400 | 403), "forged csrf: {bad:?}");
    assert!(bad.location().is_none(), "{bad:?}");

    let missing = browser.post_form(&form.action, &[("username", USER), ("password", PASSWORD)]).await;
    assert!(matches!(missing.status, 400 | 403), "missing csrf: {missing:?}");
    assert!(missing.location().is_none(), "{missing:?}");

    // Not logged in: prompt=none still needs a login.
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("prompt", "none"));
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(o.error(), "login_required");
}

#[tokio::test]
async fn disabled_user_cannot_sign_in() {
    let server = Server::start();
    server.add_alice();
    server.cli_text(&["users", "disable", USER], None);
    let c = server.first_party_client();
    let browser = server.browser();
    let page = login_page(&server, &browser, &c).await;
    let r = browser.login(&page, USER, PASSWORD).await;
    assert!(matches!(r.status, 200 | 401 | 403), "{r:?}");
    assert!(r.location().is_none(), "a disabled user must not get through: {r:?}");
}

#[tokio::test]
async fn set_password_replaces_the_old_one() {
    let server = Server::start();
    server.add_alice();
    server.cli_text(&["users", "set-password", USER, "--password-stdin"], Some("new secret pw 42"));
    let c = server.first_party_client();
    let browser = server.browser();
    let page = login_page(&server, &browser, &c).await;
    let old = browser.login(&page, USER, PASSWORD).await;
    assert_rejected_login(&old);
    let new = browser.login(&old, USER, "new secret pw 42").await;
    browser.complete(new, None, Decision::NotExpected).await.code();
}

#[tokio::test]
async fn cli_lists_users_and_clients() {
    let server = Server::start();
    let u = server.add_alice();
    let c = server.confidential_client();
    let users = server.cli(&["users", "list", "--json"]);
    assert!(users.as_array().unwrap().iter().any(|x| x["username"] == USER && x["id"] == u["id"]), "{users}");
    let clients = server.cli(&["clients", "list", "--json"]);
    assert!(
        clients.as_array().unwrap().iter().any(|x| x["client_id"] == c.id.as_str() || x["id"] == c.id.as_str()),
        "{clients}"
    );
    let shown = server.cli(&["clients", "show", &c.id, "--json"]);
    assert!(shown["client_id"] == c.id.as_str() || shown["id"] == c.id.as_str(), "{shown}");
    assert!(
        shown.get("client_secret").is_none_or(|s| s.is_null()),
        "`clients show` must not reveal the secret (it is stored hashed): {shown}"
    );

    // A removed client is unknown to /authorize.
    server.cli_text(&["clients", "remove", &c.id], None);
    let browser = server.browser();
    let r = browser.authorize(&auth_params(&c, "openid", "s", "n")).await;
    r.assert_error_page();
}
