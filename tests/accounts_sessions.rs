//! The account's sessions and devices (`/account/sessions`: browsers, addresses, applications,
//! ending one like RP-initiated logout), "keep me signed in", the idle timeout, a new session
//! token at every sign-in and step-up, the activity page and `latchkey audit`, and the
//! operator's groups and per-client roles: the `groups` / `roles` claims and a client's
//! required groups.

mod common;

use common::*;
use serde_json::{Value, json};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const ESSENTIAL_ACR_2: &str = r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#;

/// A fresh browser that says it is `user_agent`.
fn browser_as(server: &Server, user_agent: &str) -> Browser {
    browser_behind(server, user_agent, None)
}

/// The same, reaching the server through a proxy that says it forwards for `forwarded_for`.
fn browser_behind(server: &Server, user_agent: &str, forwarded_for: Option<&str>) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(ip) = forwarded_for {
        headers.insert("x-forwarded-for", ip.parse().unwrap());
    }
    let mut b = server.browser();
    b.client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .default_headers(headers)
        .build()
        .unwrap();
    b
}

/// The session cookie a response sets: its value and the whole header.
fn session_cookie(r: &Resp) -> Option<(String, String)> {
    r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let value = c.strip_prefix("latchkey_session=")?.split(';').next()?.to_owned();
        Some((value, c.to_owned()))
    })
}

/// GET `path` with only this session cookie (no cookie jar).
async fn with_cookie(server: &Server, path: &str, token: &str) -> Resp {
    server.send(server.request(reqwest::Method::GET, path).header("Cookie", format!("latchkey_session={token}"))).await
}

/// Signs in at `c` from the login page, answering with `extra` fields; returns the response
/// that set the session cookie and the code the client got.
async fn sign_in(browser: &Browser, c: &TestClient, scope: &str, extra: &[(&str, &str)]) -> (Resp, String) {
    let page = browser.follow(&browser.authorize(&auth_params(c, scope, "s", "n")).await).await;
    let form = login_form(&page).unwrap_or_else(|| panic!("login page: {page:?}"));
    let mut fields = vec![("username", USER), ("password", PASSWORD)];
    fields.extend_from_slice(extra);
    let r = browser.submit(&form, &fields).await;
    assert_eq!(r.status, 303, "{r:?}");
    let signed = r.clone();
    let code = browser.complete(r, None, Decision::NotExpected).await.code();
    (signed, code)
}

async fn tokens(server: &Server, c: &TestClient, code: &str) -> Tokens {
    let r = server.redeem(c, code, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    Tokens::from_json(r.json())
}

/// The sessions page, which must not ask to sign in.
async fn sessions_page(browser: &Browser) -> Resp {
    let page = browser.get("/account/sessions").await;
    assert_eq!(page.status, 200, "{page:?}");
    page
}

#[tokio::test]
async fn sessions_list_browsers_and_applications_and_ending_one_kills_it() {
    // The harness's loopback peer stands for a trusted load balancer.
    let server = Server::start_with(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]);
    server.add_alice();
    let c = server.first_party_client();
    let other = server.add_client("Second App", &["--redirect-uri", CALLBACK2, "--first-party"]);
    let firefox = browser_as(&server, FIREFOX);
    let chrome = browser_behind(&server, CHROME, Some("198.51.100.7"));
    let (_, code) = sign_in(&firefox, &c, "openid offline_access", &[]).await;
    let on_firefox = tokens(&server, &c, &code).await;
    let (_, code) = sign_in(&chrome, &other, "openid offline_access", &[]).await;
    let on_chrome = tokens(&server, &other, &code).await;

    // Each browser sees both sessions, its own marked, with browser, address and applications.
    let page = sessions_page(&chrome).await;
    let mine = element_text(&page, "this-browser").unwrap_or_else(|| panic!("{page:?}"));
    assert!(mine.contains("Chrome 126 on Windows") && mine.contains("Second App"), "{mine}");
    assert!(mine.contains("198.51.100.7"), "the address behind the trusted proxy: {mine}");
    assert!(page.body.contains("Firefox 128 on Linux") && page.body.contains("first-party rp"), "{page:?}");
    assert_eq!(page.body.matches("class=\"session\"").count(), 2, "{page:?}");
    let theirs = element_text(&sessions_page(&firefox).await, "this-browser").unwrap();
    assert!(theirs.contains("Firefox 128 on Linux") && theirs.contains("first-party rp"), "{theirs}");
    assert!(theirs.contains("127.0.0.1"), "no forwarded address: the peer's: {theirs}");

    // Chrome ends Firefox's session.
    let sid = on_firefox.id_claims()["sid"].as_str().unwrap().to_owned();
    let form = page
        .forms()
        .into_iter()
        .find(|f| f.value("id") == Some(sid.as_str()))
        .unwrap_or_else(|| panic!("an end form for {sid}: {page:?}"));
    let r = chrome.submit(&form, &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(sessions_page(&chrome).await.body.matches("class=\"session\"").count(), 1);

    // Firefox's cookie no longer signs in, and its refresh token fails; Chrome's still works.
    let r = firefox.get("/account/sessions").await;
    assert!(r.is_redirect() && r.location().unwrap().starts_with("/login/"), "asked to sign in: {r:?}");
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("prompt", "none"));
    assert_eq!(firefox.authorize_and_complete(&p, None, Decision::NotExpected).await.error(), "login_required");
    server.refresh(&c, on_firefox.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    assert_eq!(server.refresh(&other, on_chrome.refresh_token()).await.status, 200);

    // Only the user's own sessions can be named; a form without its CSRF token is refused.
    let form = sessions_page(&chrome).await.forms().into_iter().find(|f| f.value("action") == Some("end")).unwrap();
    let r = chrome.submit(&form, &[("id", "someone-elses")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("already ended"), "{r:?}");
    let r = chrome.submit(&form, &[("csrf", "forged")]).await;
    assert!(r.status == 400 || r.status == 403, "{r:?}");
    assert_eq!(sessions_page(&chrome).await.body.matches("class=\"session\"").count(), 1);

    // Signing out here from the page ends this session too.
    let r = chrome.submit(&form, &[]).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(chrome.get("/account/sessions").await.is_redirect());
    let kinds = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'session.ended'");
    assert_eq!(kinds.len(), 2, "{kinds:?}");
}

#[tokio::test]
async fn keep_me_signed_in_chooses_a_persistent_or_a_browser_session_cookie() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();

    let b = server.browser();
    let page = b.follow(&b.authorize(&auth_params(&c, "openid", "s", "n")).await).await;
    let checkbox = login_form(&page).unwrap().input("remember").cloned().unwrap_or_else(|| panic!("{page:?}"));
    assert_eq!(checkbox.kind, "checkbox");
    assert!(!checkbox.checked, "off by default: {page:?}");
    assert!(page.body.contains("<label for=\"remember\">"), "labelled: {page:?}");

    // Unticked: no Max-Age or Expires, the cookie ends with the browser.
    let (r, _) = sign_in(&b, &c, "openid", &[]).await;
    let (_, header) = session_cookie(&r).unwrap_or_else(|| panic!("{r:?}"));
    assert!(!header.contains("Max-Age") && !header.contains("Expires"), "{header}");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"), "{header}");

    // Ticked: it lasts the session lifetime (7 days by default).
    let (r, _) = sign_in(&server.browser(), &c, "openid", &[("remember", "1")]).await;
    let (_, header) = session_cookie(&r).unwrap_or_else(|| panic!("{r:?}"));
    assert!(header.contains("Max-Age=604800"), "{header}");
    let remembered = server.db_strings("SELECT CAST(persistent AS TEXT) FROM sessions ORDER BY created_at, persistent");
    assert_eq!(remembered, ["0", "1"]);

    // The operator may tick it by default.
    let ticked = Server::start_with(&[("LATCHKEY_LOGIN_REMEMBER_ME_DEFAULT", "true")]);
    ticked.add_alice();
    let c = ticked.first_party_client();
    let b = ticked.browser();
    let page = b.follow(&b.authorize(&auth_params(&c, "openid", "s", "n")).await).await;
    assert!(login_form(&page).unwrap().input("remember").unwrap().checked, "{page:?}");
    let (r, _) = sign_in(&b, &c, "openid", &[]).await;
    assert!(session_cookie(&r).unwrap().1.contains("Max-Age=604800"), "{r:?}");
}

#[tokio::test]
async fn a_session_unused_past_the_idle_timeout_is_over() {
    // Access tokens that outlive the idle timeout, to see them stop with the session.
    let server = Server::start_with(&[("LATCHKEY_LOGIN_IDLE_TIMEOUT", "600"), ("LATCHKEY_ACCESS_TOKEN_TTL", "3600")]);
    server.add_alice();
    let c = server.first_party_client();
    let b = server.browser();
    sign_in(&b, &c, "openid", &[]).await;
    let mut silent = auth_params(&c, "openid", "s", "n");
    silent.push(("prompt", "none"));

    // Used every 500 s, it lives past the timeout counted from the sign-in.
    let mut online = None;
    for _ in 0..3 {
        server.advance(500);
        let code = b.authorize_and_complete(&silent, None, Decision::NotExpected).await.code();
        online = Some(tokens(&server, &c, &code).await);
    }
    let online = online.unwrap();
    let mut away = auth_params(&c, "openid offline_access", "s", "n");
    away.push(("prompt", "none"));
    let offline = tokens(&server, &c, &b.authorize_and_complete(&away, None, Decision::NotExpected).await.code()).await;
    assert_eq!(server.userinfo(&online.access_token).await.status, 200);

    // Unused for longer than 600 s, the session is over before its browser comes back: the
    // grants that live only as long as it stop at once, as on logout; offline_access outlives it.
    server.advance(601);
    assert_eq!(server.userinfo(&online.access_token).await.status, 401);
    assert_eq!(server.introspect(&c, &online.access_token).await.json()["active"], false);
    assert_eq!(server.refresh(&c, offline.refresh_token()).await.status, 200);
    // prompt=none is told to sign in, the pages ask for it.
    assert_eq!(b.authorize_and_complete(&silent, None, Decision::NotExpected).await.error(), "login_required");
    let r = b.get("/account/sessions").await;
    assert!(r.is_redirect() && r.location().unwrap().starts_with("/login/"), "{r:?}");
    // A sign-in starts a new session.
    let (_, code) = sign_in(&b, &c, "openid", &[]).await;
    tokens(&server, &c, &code).await;
    assert_eq!(sessions_page(&b).await.body.matches("class=\"session\"").count(), 1);
}

#[tokio::test]
async fn the_session_token_changes_at_sign_in_and_step_up() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let b = server.browser();
    let (r, code) = sign_in(&b, &c, "openid", &[]).await;
    let (first, _) = session_cookie(&r).unwrap();
    let sid = tokens(&server, &c, &code).await.id_claims()["sid"].clone();
    assert_eq!(with_cookie(&server, "/account/sessions", &first).await.status, 200);

    // prompt=login: a fresh sign-in in the same session gets a new token.
    let mut again = auth_params(&c, "openid", "s", "n");
    again.push(("prompt", "login"));
    let page = b.follow(&b.authorize(&again).await).await;
    let r = b.login(&page, USER, PASSWORD).await;
    let (second, _) = session_cookie(&r).unwrap_or_else(|| panic!("a new cookie: {r:?}"));
    assert_ne!(second, first);
    assert!(with_cookie(&server, "/account/sessions", &first).await.is_redirect(), "the old token is dead");
    b.complete(r, None, Decision::NotExpected).await.code();

    // Step-up to a second factor: again a new token, the same session.
    let e = b.enrol_totp(&b.security_page((USER, PASSWORD)).await).await;
    let mut p = auth_params(&c, "openid", "s", "n");
    p.push(("claims", ESSENTIAL_ACR_2));
    let page = b.follow(&b.authorize(&p).await).await;
    let form = code_form(&page).unwrap_or_else(|| panic!("the code page: {page:?}"));
    let r = b.submit(&form, &[("code", &totp_code(&e.secret, e.step + 1))]).await;
    let (third, _) = session_cookie(&r).unwrap_or_else(|| panic!("a new cookie at step-up: {r:?}"));
    assert_ne!(third, second);
    let stepped = tokens(&server, &c, &b.complete(r, None, Decision::NotExpected).await.code()).await.id_claims();
    assert_eq!(stepped["acr"], "2", "{stepped}");
    assert_eq!(stepped["sid"], sid, "the session is stepped up, not replaced");
    assert!(with_cookie(&server, "/account/sessions", &second).await.is_redirect(), "the old token is dead");
    assert_eq!(with_cookie(&server, "/account/sessions", &third).await.status, 200);
}

#[tokio::test]
async fn activity_shows_sign_ins_and_security_changes_and_the_operator_queries_the_log() {
    let server = Server::start();
    server.add_alice();
    server.add_user("bob", "bob's own long passphrase");
    let c = server.first_party_client();
    let b = browser_as(&server, FIREFOX);

    // A second factor turned on; later a wrong password; later a sign-in with both factors.
    sign_in(&b, &c, "openid", &[]).await;
    let e = b.enrol_totp(&b.security_page((USER, PASSWORD)).await).await;
    server.advance(60);
    let b = browser_as(&server, FIREFOX);
    let page = b.follow(&b.authorize(&auth_params(&c, "openid", "s", "n")).await).await;
    let failed = b.login(&page, USER, "not the password").await;
    assert_eq!(failed.status, 200, "{failed:?}");
    server.advance(60);
    let code_page = b.follow(&b.login(&failed, USER, PASSWORD).await).await;
    let form = code_form(&code_page).unwrap_or_else(|| panic!("{code_page:?}"));
    let r = b.submit(&form, &[("code", &totp_code(&e.secret, server.now() / 30))]).await;
    b.complete(r, None, Decision::NotExpected).await.code();
    let bob = server.browser();
    let bobs = auth_params(&c, "openid", "s", "n");
    bob.authorize_and_complete(&bobs, Some(("bob", "bob's own long passphrase")), Decision::NotExpected).await.code();

    let page = b.get("/account/activity").await;
    assert_eq!(page.status, 200, "{page:?}");
    let list = element_text(&page, "activity").unwrap_or_else(|| panic!("{page:?}"));
    let totp = list.find("Turned on the authenticator app").unwrap_or_else(|| panic!("{list}"));
    let signed_in = list.find("Signed in to first-party rp").unwrap_or_else(|| panic!("{list}"));
    let failed = list.find("A sign-in to first-party rp failed").unwrap_or_else(|| panic!("{list}"));
    assert!(signed_in < failed && failed < totp, "newest first: {list}");
    assert!(list.contains("127.0.0.1") && list.contains("Firefox 128 on Linux"), "{list}");
    assert!(!list.contains("step_passed") && !list.contains("bob"), "only alice's, in words: {list}");

    // latchkey audit: by user, kind, time and count, as text and JSON.
    let all = server.cli(&["audit", "--user", USER, "--json"]);
    let kinds: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"login.failed") && kinds.contains(&"mfa.totp_enrolled"), "{all}");
    let alice_id = all[0]["user_id"].clone();
    assert!(all.as_array().unwrap().iter().all(|e| e["user_id"] == alice_id), "{all}");
    let logins = server.cli(&["audit", "--user", "alice@example.com", "--kind", "login.", "--json"]);
    let kinds: Vec<&str> = logins.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.iter().all(|k| k.starts_with("login.")) && kinds.contains(&"login.succeeded"), "{logins}");
    let fails = server.cli(&["audit", "--kind", "login.failed", "--json"]);
    assert_eq!(fails.as_array().unwrap().len(), 1, "{fails}");
    assert_eq!(fails[0]["detail"]["browser"], "Firefox 128 on Linux", "{fails}");
    assert_eq!(fails[0]["ip"], "127.0.0.1", "{fails}");
    let one = server.cli(&["audit", "--limit", "1", "--json"]);
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    let recent = server.cli(&["audit", "--since", "90s", "--user", USER, "--json"]);
    let recent_kinds: Vec<&str> = recent.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(recent_kinds.contains(&"login.failed") && !recent_kinds.contains(&"mfa.totp_enrolled"), "{recent}");
    let future = server.cli(&["audit", "--since", "2999-01-01", "--json"]);
    assert_eq!(future, json!([]));
    let text = server.cli_text(&["audit", "--user", USER, "--kind", "mfa."], None);
    assert!(text.contains("mfa.totp_enrolled") && !text.contains("login."), "{text}");
    let (ok, _, err) = server.cli_raw(&["audit", "--since", "yesterday"], None);
    assert!(!ok && err.contains("--since"), "{err}");
}

/// A client whose users get roles, with `groups` and `roles` among the scopes.
fn groups_and_roles(server: &Server) -> TestClient {
    let c = server.first_party_client();
    server.cli(&["groups", "add", "staff", "--json"]);
    server.cli(&["groups", "add", "admins", "--json"]);
    server.cli(&["users", "add-to-group", USER, "staff", "--json"]);
    server.cli(&["users", "add-to-group", USER, "admins", "--json"]);
    server.cli(&["clients", "roles", "add", &c.id, "editor", "--json"]);
    server.cli(&["clients", "roles", "add", &c.id, "viewer", "--json"]);
    server.cli(&["users", "grant-role", USER, &c.id, "editor", "--json"]);
    c
}

#[tokio::test]
async fn groups_and_roles_reach_tokens_and_userinfo_only_with_their_scopes() {
    let server = Server::start();
    server.add_alice();
    let c = groups_and_roles(&server);
    let other = server.add_client("other", &["--redirect-uri", CALLBACK2, "--first-party"]);
    server.cli(&["clients", "roles", "add", &other.id, "auditor", "--json"]);

    let d = server.discovery().await;
    let scopes = d["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("groups")) && scopes.contains(&json!("roles")), "{d}");

    let b = server.browser();
    let t = server.code_flow(&b, &c, "openid groups roles").await;
    let id = t.id_claims();
    assert_eq!(id["groups"], json!(["admins", "staff"]), "{id}");
    assert_eq!(id["roles"], json!(["editor"]), "roles at this client only: {id}");
    let at = jwt_claims(&t.access_token);
    assert_eq!(at["groups"], json!(["admins", "staff"]), "{at}");
    assert_eq!(at["roles"], json!(["editor"]), "{at}");
    let info = check_userinfo(&server.userinfo(&t.access_token).await);
    assert_eq!(info["groups"], json!(["admins", "staff"]), "{info}");
    assert_eq!(info["roles"], json!(["editor"]), "{info}");

    // Without the scopes: none of them.
    let t = server.code_flow(&b, &c, "openid").await;
    for claims in [t.id_claims(), jwt_claims(&t.access_token), check_userinfo(&server.userinfo(&t.access_token).await)]
    {
        assert!(claims.get("groups").is_none() && claims.get("roles").is_none(), "{claims}");
    }
    // One without the other.
    let t = server.code_flow(&b, &c, "openid roles").await;
    assert!(t.id_claims().get("groups").is_none() && t.id_claims()["roles"] == json!(["editor"]));

    // Changes show at the next refresh; a removed role goes from every user.
    let t = server.code_flow(&b, &c, "openid groups roles offline_access").await;
    server.cli(&["users", "remove-from-group", USER, "admins", "--json"]);
    server.cli(&["users", "grant-role", USER, &c.id, "viewer", "--json"]);
    server.cli(&["clients", "roles", "remove", &c.id, "editor", "--json"]);
    let r = server.refresh(&c, t.refresh_token()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let refreshed = Tokens::from_json(r.json());
    assert_eq!(refreshed.id_claims()["groups"], json!(["staff"]));
    assert_eq!(refreshed.id_claims()["roles"], json!(["viewer"]));

    // The consent page says what the scopes release.
    let consented = server.confidential_client();
    let b2 = server.browser();
    let page = b2.follow(&b2.authorize(&auth_params(&consented, "openid groups roles", "s", "n")).await).await;
    let page = b2.follow(&b2.login(&page, USER, PASSWORD).await).await;
    assert!(page.body.contains("see which groups you belong to") && page.body.contains("see your roles"), "{page:?}");

    // The CLI: lists, refusals, an audit event for every change.
    let groups = server.cli(&["groups", "list", "--json"]);
    assert_eq!(
        groups.as_array().unwrap().iter().map(|g| g["name"].clone()).collect::<Vec<_>>(),
        [json!("admins"), json!("staff")]
    );
    assert_eq!(groups[1]["members"], 1, "{groups}");
    assert_eq!(server.cli(&["users", "show", USER, "--json"])["groups"], json!(["staff"]));
    assert_eq!(server.cli(&["clients", "roles", "list", &c.id, "--json"])["roles"], json!(["viewer"]));
    for bad in [
        vec!["groups", "add", "staff"],
        vec!["groups", "add", "no spaces"],
        vec!["users", "add-to-group", USER, "nobody"],
        vec!["users", "add-to-group", "nobody", "staff"],
        vec!["users", "grant-role", USER, &c.id, "editor"],
        vec!["clients", "roles", "add", "no-such-client", "x"],
        vec!["groups", "remove", "nothing"],
    ] {
        let (ok, _, err) = server.cli_raw(&bad, None);
        assert!(!ok && !err.is_empty(), "{bad:?} must fail");
    }
    let kinds = server.db_strings("SELECT kind FROM audit_events WHERE kind LIKE 'admin.%' ORDER BY at");
    for k in [
        "admin.group_added",
        "admin.group_member_added",
        "admin.group_member_removed",
        "admin.client_role_added",
        "admin.client_role_removed",
        "admin.role_granted",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    server.cli(&["users", "revoke-role", USER, &c.id, "viewer", "--json"]);
    server.cli(&["groups", "remove", "admins", "--json"]);
    assert_eq!(server.cli(&["groups", "list", "--json"]).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_requiring_a_group_refuses_others_at_authorization_and_refresh() {
    let server = Server::start();
    server.add_alice();
    server.add_user("bob", "bob's own long passphrase");
    let c = groups_and_roles(&server);
    let updated = server.cli(&["clients", "update", &c.id, "--require-group", "staff", "--json"]);
    assert_eq!(updated["required_groups"], json!(["staff"]), "{updated}");
    assert_eq!(server.cli(&["clients", "show", &c.id, "--json"])["required_groups"], json!(["staff"]));
    let (ok, _, err) = server.cli_raw(&["groups", "remove", "staff"], None);
    assert!(!ok && err.contains(&c.id), "a required group stays: {err}");
    let (ok, _, _) = server.cli_raw(&["clients", "update", &c.id, "--require-group", "ghosts"], None);
    assert!(!ok, "only existing groups");

    // alice is in staff: signed in. bob is not: after sign-in the client gets access_denied.
    let alice = server.browser();
    let t = server.code_flow(&alice, &c, "openid groups offline_access").await;
    let bob = server.browser();
    let o = bob
        .authorize_and_complete(
            &auth_params(&c, "openid", "st", "n"),
            Some(("bob", "bob's own long passphrase")),
            Decision::NotExpected,
        )
        .await;
    assert_eq!(o.error(), "access_denied", "{o:?}");
    check_authorization_error(&o, Some("st"), &server.issuer);
    // A client without the rule still lets bob in.
    let open = server.add_client("open", &["--redirect-uri", CALLBACK2, "--first-party"]);
    bob.authorize_and_complete(&auth_params(&open, "openid", "s", "n"), None, Decision::NotExpected).await.code();

    // Out of the group: alice's refresh is refused, and so is her next authorization.
    assert_eq!(server.refresh(&c, t.refresh_token()).await.status, 200);
    let t = server.code_flow(&alice, &c, "openid offline_access").await;
    server.cli(&["users", "remove-from-group", USER, "staff", "--json"]);
    server.refresh(&c, t.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    let o = alice.authorize_and_complete(&auth_params(&c, "openid", "s", "n"), None, Decision::NotExpected).await;
    assert_eq!(o.error(), "access_denied", "{o:?}");
    let refused = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'login.refused_group'");
    assert_eq!(refused.len(), 2, "{refused:?}");

    // --any-group lifts the rule.
    let updated = server.cli(&["clients", "update", &c.id, "--any-group", "--json"]);
    assert_eq!(updated["required_groups"], json!([]), "{updated}");
    alice.authorize_and_complete(&auth_params(&c, "openid", "s", "n"), None, Decision::NotExpected).await.code();
    let _: Value = server.cli(&["groups", "remove", "staff", "--json"]);
}

/// The value of the cookie `name` a response sets, and the whole header.
fn set_cookie(r: &Resp, name: &str) -> (String, String) {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| Some((c.strip_prefix(&format!("{name}="))?.split(';').next()?.to_owned(), c.to_owned())))
        .unwrap_or_else(|| panic!("no {name} cookie: {r:?}"))
}

#[tokio::test]
async fn over_https_cookies_carry_the_host_prefix() {
    // An https issuer (the harness still speaks plain HTTP to the listener, so cookies are
    // carried by hand: a real browser keeps Secure cookies off plain http).
    let server = Server::start_with(&[("LATCHKEY_ISSUER", "https://id.example.com")]);
    server.add_alice();
    let c = server.first_party_client();
    let get = |path: &str, cookie: &str| server.request(reqwest::Method::GET, path).header("Cookie", cookie.to_owned());
    let query = encode_form(&auth_params(&c, "openid", "s", "n"));
    let r = server.send(get(&format!("/authorize?{query}"), "")).await;
    assert_eq!(r.status, 303, "{r:?}");
    let (browser, header) = set_cookie(&r, "__Host-latchkey_browser");
    assert!(header.contains("; Secure") && header.contains("Path=/") && !header.contains("Domain"), "{header}");
    let jar = format!("__Host-latchkey_browser={browser}");
    let page = server.send(get(r.location().unwrap(), &jar)).await;
    let form = login_form(&page).unwrap_or_else(|| panic!("{page:?}"));
    let mut fields: Vec<(String, String)> =
        form.inputs.iter().filter(|i| i.kind == "hidden").map(|i| (i.name.clone(), i.value.clone())).collect();
    fields.push(("username".into(), USER.into()));
    fields.push(("password".into(), PASSWORD.into()));
    let post = server
        .request(reqwest::Method::POST, &form.action)
        .header("Cookie", jar)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encode_form(&fields));
    let r = server.send(post).await;
    assert_eq!(r.status, 303, "{r:?}");
    let (token, header) = set_cookie(&r, "__Host-latchkey_session");
    assert!(header.contains("; Secure") && header.contains("Path=/"), "{header}");
    // Only the prefixed name is read.
    let page = server.send(get("/account/sessions", &format!("__Host-latchkey_session={token}"))).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(server.send(get("/account/sessions", &format!("latchkey_session={token}"))).await.is_redirect());
}
