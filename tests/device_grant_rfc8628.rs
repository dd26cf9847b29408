//! The device authorization grant (RFC 8628): a device asks for codes, polls while the person
//! approves on a phone or computer (signed in there, with every factor the policy asks), and
//! gets its tokens once; the answers a device must act on (`authorization_pending`,
//! `slow_down`, `access_denied`, `expired_token`) each at the right moment; guessing codes is
//! throttled.

mod common;

use common::*;
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public client for a television: the device grant and refresh tokens, no redirect URI.
fn tv(server: &Server) -> TestClient {
    server.add_client("Living-room TV", &["--public", "--grant-type", "device_code", "--grant-type", "refresh_token"])
}

async fn ask(server: &Server, client: &TestClient, scope: &str) -> Value {
    let resp = server.post_form("/device_authorization", &client.auth(), &[("scope", scope)]).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.header("cache-control").is_some_and(|c| c.contains("no-store")), "{resp:?}");
    resp.json()
}

async fn poll(server: &Server, client: &TestClient, device_code: &str) -> Resp {
    server.token(&client.auth(), &[("grant_type", GRANT), ("device_code", device_code)]).await
}

/// Signs the browser in from the verification address and returns the page it lands on.
async fn arrive(server: &Server, browser: &Browser, url: &str) -> Resp {
    let mut resp = browser.get(url).await;
    for _ in 0..8 {
        if resp.is_redirect() {
            resp = browser.follow(&resp).await;
        } else if login_form(&resp).is_some() {
            resp = browser.login(&resp, USER, PASSWORD).await;
        } else {
            return resp;
        }
    }
    panic!("no page at the end of {url} on {}: {resp:?}", server.issuer);
}

async fn answer(browser: &Browser, page: &Resp, decision: &str) -> Resp {
    let form = consent_form(page).unwrap_or_else(|| panic!("no approval form: {page:?}"));
    browser.submit(&form, &[("decision", decision)]).await
}

#[tokio::test]
async fn a_device_gets_tokens_once_the_person_approves_it() {
    let server = Server::start();
    let alice = server.add_alice();
    let client = tv(&server);
    let codes = ask(&server, &client, "openid email offline_access").await;
    let device_code = codes["device_code"].as_str().unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    assert_eq!(codes["verification_uri"], server.url("/device"));
    assert_eq!(codes["verification_uri_complete"], format!("{}?user_code={user_code}", server.url("/device")));
    assert_eq!(codes["expires_in"], 600);
    assert_eq!(codes["interval"], 5);
    assert!(
        user_code.len() == 9 && user_code.chars().filter(|c| *c != '-').all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );

    // §3.5: the device waits, and is told to slow down when it polls faster than `interval`.
    poll(&server, &client, device_code).await.assert_oauth_error(400, "authorization_pending");
    poll(&server, &client, device_code).await.assert_oauth_error(400, "slow_down");
    server.advance(11);
    poll(&server, &client, device_code).await.assert_oauth_error(400, "authorization_pending");

    // The person follows the complete address on a phone: sign in, compare the code, allow.
    let browser = server.browser();
    let page = arrive(&server, &browser, codes["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(element_text(&page, "device-user-code").as_deref(), Some(user_code), "{page:?}");
    assert!(page.body.contains("Living-room TV") && page.body.contains("see your email address"), "{page:?}");
    let done = answer(&browser, &page, "allow").await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(element_text(&done, "device-done").is_some_and(|t| t.contains("close this page")), "{done:?}");

    server.advance(11);
    let resp = poll(&server, &client, device_code).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let tokens = Tokens::from_json(resp.json());
    let claims = tokens.id_claims();
    assert_eq!(claims["sub"], alice["id"], "{claims}");
    assert_eq!(claims["aud"], client.id.as_str(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");
    let info = server.userinfo(&tokens.access_token).await;
    assert_eq!(info.json()["email"], "alice@example.com", "{info:?}");
    let refreshed = server.refresh(&client, tokens.refresh_token()).await;
    assert_eq!(refreshed.status, 200, "the device keeps access with its refresh token: {refreshed:?}");

    // Once only: the session of this device code has concluded; and the code the person typed
    // is spent.
    server.advance(11);
    poll(&server, &client, device_code).await.assert_oauth_error(400, "expired_token");
    let again = arrive(&server, &browser, codes["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(again.status, 400, "{again:?}");
    assert!(consent_form(&again).is_none(), "{again:?}");
}

#[tokio::test]
async fn a_denied_device_is_told_so_and_gets_nothing() {
    let server = Server::start();
    server.add_alice();
    let client = tv(&server);
    let codes = ask(&server, &client, "openid").await;
    let device_code = codes["device_code"].as_str().unwrap();
    let browser = server.browser();
    // Typed by hand, in lower case and without the dash, on the plain address.
    let form_page = arrive(&server, &browser, &server.url("/device")).await;
    let form = form_page.forms().into_iter().find(|f| f.input("user_code").is_some()).expect("the code form");
    let typed = codes["user_code"].as_str().unwrap().replace('-', "").to_lowercase();
    let page = browser.submit(&form, &[("user_code", &typed)]).await;
    let done = answer(&browser, &page, "deny").await;
    assert!(element_text(&done, "device-done").is_some_and(|t| t.contains("not given access")), "{done:?}");
    poll(&server, &client, device_code).await.assert_oauth_error(400, "access_denied");
    server.advance(11);
    poll(&server, &client, device_code).await.assert_oauth_error(400, "expired_token");
}

#[tokio::test]
async fn codes_expire_and_belong_to_their_client() {
    let server = Server::start();
    server.add_alice();
    let client = tv(&server);
    let other = server.add_client("Console", &["--public", "--grant-type", "device_code"]);
    let codes = ask(&server, &client, "openid").await;
    let device_code = codes["device_code"].as_str().unwrap();
    poll(&server, &other, device_code).await.assert_oauth_error(400, "invalid_grant");
    server.advance(601);
    poll(&server, &client, device_code).await.assert_oauth_error(400, "expired_token");
    let browser = server.browser();
    let page = arrive(&server, &browser, codes["verification_uri_complete"].as_str().unwrap()).await;
    assert!(consent_form(&page).is_none(), "an expired code asks nothing: {page:?}");
}

#[tokio::test]
async fn guessing_codes_is_throttled() {
    let server = Server::start();
    server.add_alice();
    let client = tv(&server);
    let browser = server.browser();
    let mut page = arrive(&server, &browser, &server.url("/device")).await;
    for _ in 0..10 {
        let form = page.forms().into_iter().find(|f| f.input("user_code").is_some()).expect("the code form");
        page = browser.submit(&form, &[("user_code", "BBBB-BBBB")]).await;
        assert_eq!(page.status, 400, "{page:?}");
    }
    let codes = ask(&server, &client, "openid").await;
    let form = page.forms().into_iter().find(|f| f.input("user_code").is_some()).expect("the code form");
    let page = browser.submit(&form, &[("user_code", codes["user_code"].as_str().unwrap())]).await;
    assert!(consent_form(&page).is_none(), "past ten wrong codes even the right one waits: {page:?}");
    assert!(element_text(&page, "device-error").is_some_and(|t| t.contains("Too many")), "{page:?}");
    server.advance(15 * 60 + 1);
    let codes = ask(&server, &client, "openid").await;
    let form = page.forms().into_iter().find(|f| f.input("user_code").is_some()).expect("the code form");
    let page = browser.submit(&form, &[("user_code", codes["user_code"].as_str().unwrap())]).await;
    assert!(consent_form(&page).is_some(), "{page:?}");
}

#[tokio::test]
async fn only_clients_registered_for_the_grant_may_ask() {
    let server = Server::start();
    let web = server.confidential_client();
    let resp = server.post_form("/device_authorization", &web.auth(), &[("scope", "openid")]).await;
    resp.assert_oauth_error(400, "unauthorized_client");
    let resp = server.post_form("/device_authorization", &Auth::Public("nobody".into()), &[("scope", "openid")]).await;
    resp.assert_invalid_client();
    let client = tv(&server);
    let resp = server.post_form("/device_authorization", &client.auth(), &[("scope", "nothing-we-know")]).await;
    resp.assert_oauth_error(400, "invalid_scope");
    let d = server.discovery().await;
    assert_eq!(d["device_authorization_endpoint"], server.url("/device_authorization"));
    assert!(d["grant_types_supported"].as_array().unwrap().iter().any(|g| g == GRANT), "{d}");
}

#[tokio::test]
async fn a_client_s_required_groups_hold_for_its_devices() {
    let server = Server::start();
    server.add_alice();
    let client = tv(&server);
    server.cli(&["groups", "add", "staff", "--json"]);
    server.cli(&["clients", "update", &client.id, "--require-group", "staff", "--json"]);
    let codes = ask(&server, &client, "openid").await;
    let browser = server.browser();
    let page = arrive(&server, &browser, codes["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(page.status, 403, "alice is in no group the TV requires: {page:?}");
    assert!(consent_form(&page).is_none(), "{page:?}");
    poll(&server, &client, codes["device_code"].as_str().unwrap())
        .await
        .assert_oauth_error(400, "authorization_pending");

    server.cli(&["users", "add-to-group", USER, "staff", "--json"]);
    let page = arrive(&server, &browser, codes["verification_uri_complete"].as_str().unwrap()).await;
    assert!(consent_form(&page).is_some(), "{page:?}");
}
