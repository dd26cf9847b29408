//! OIDC Core §3.1.2.4 (authorization server obtains end-user consent): remembered consent,
//! `prompt=consent`, denial (`access_denied`), first-party clients, CSRF on the consent form.

mod common;

use common::*;

fn params<'a>(c: &'a TestClient, scope: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = auth_params(c, scope, "consent-state", "consent-nonce");
    p.extend_from_slice(extra);
    p
}

#[tokio::test]
async fn consent_is_remembered_for_the_same_or_fewer_scopes() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let browser = server.browser();

    let o = browser
        .authorize_and_complete(&params(&c, "openid email profile", &[]), Some((USER, PASSWORD)), Decision::Allow)
        .await;
    assert_eq!((o.logins, o.consents), (1, 1));
    o.code();

    let o = browser.authorize_and_complete(&params(&c, "openid email profile", &[]), None, Decision::NotExpected).await;
    o.code();
    let o = browser.authorize_and_complete(&params(&c, "openid email", &[]), None, Decision::NotExpected).await;
    o.code();

    // More scopes: asked again.
    let o = browser.authorize_and_complete(&params(&c, "openid email phone", &[]), None, Decision::Allow).await;
    assert_eq!(o.consents, 1, "a new scope needs consent");
    o.code();
}

#[tokio::test]
async fn consent_page_lists_the_client_and_carries_csrf() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let browser = server.browser();
    let r = browser.authorize(&params(&c, "openid email", &[])).await;
    let r = browser.login(&r, USER, PASSWORD).await;
    assert_eq!(r.status, 303, "login success answers 303: {r:?}");
    assert!(r.location().unwrap().contains("/consent/"), "{r:?}");
    let page = browser.follow(&r).await;
    assert_eq!(page.status, 200);
    let form = consent_form(&page).unwrap_or_else(|| panic!("{page:?}"));
    assert!(form.action.contains("/consent/"), "{form:?}");
    assert!(form.has_button("decision", "allow") && form.has_button("decision", "deny"));
    assert!(form.value("csrf").is_some_and(|v| !v.is_empty()));
    // What is asked reads in words, not as protocol scope names.
    assert!(page.body.contains("know who you are") && page.body.contains("see your email address"), "{page:?}");
    assert!(!page.body.contains(">openid<") && !page.body.contains("openid —"), "{page:?}");

    // Forged CSRF is refused and grants nothing.
    let bad = browser.submit(&form, &[("csrf", "forged"), ("decision", "allow")]).await;
    assert!(matches!(bad.status, 400 | 403), "{bad:?}");
    assert!(bad.location().is_none(), "{bad:?}");
}

#[tokio::test]
async fn prompt_consent_shows_the_page_again() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let browser = server.browser();
    browser.authorize_and_complete(&params(&c, "openid", &[]), Some((USER, PASSWORD)), Decision::Allow).await.code();
    let o =
        browser.authorize_and_complete(&params(&c, "openid", &[("prompt", "consent")]), None, Decision::Allow).await;
    assert_eq!((o.logins, o.consents), (0, 1), "prompt=consent asks again");
    o.code();
}

#[tokio::test]
async fn deny_gives_access_denied() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let browser = server.browser();
    let o = browser.authorize_and_complete(&params(&c, "openid", &[]), Some((USER, PASSWORD)), Decision::Deny).await;
    assert_eq!(o.target, CALLBACK);
    assert_eq!(check_authorization_error(&o, Some("consent-state"), &server.issuer), "access_denied");
    // Denial is not remembered as consent.
    let o =
        browser.authorize_and_complete(&params(&c, "openid", &[("prompt", "none")]), None, Decision::NotExpected).await;
    assert_eq!(o.error(), "consent_required");
}

#[tokio::test]
async fn first_party_client_never_shows_consent() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let o = browser
        .authorize_and_complete(
            &params(&c, "openid email profile phone address", &[]),
            Some((USER, PASSWORD)),
            Decision::NotExpected,
        )
        .await;
    o.code();
    let o = browser
        .authorize_and_complete(&params(&c, "openid", &[("prompt", "consent")]), None, Decision::NotExpected)
        .await;
    o.code();
}

#[tokio::test]
async fn consent_is_per_user() {
    let server = Server::start();
    server.add_alice();
    server.add_user("bob", "bob's long password");
    let c = server.confidential_client();
    let b1 = server.browser();
    b1.authorize_and_complete(&params(&c, "openid", &[]), Some((USER, PASSWORD)), Decision::Allow).await.code();
    let b2 = server.browser();
    let o = b2
        .authorize_and_complete(&params(&c, "openid", &[]), Some(("bob", "bob's long password")), Decision::Allow)
        .await;
    assert_eq!(o.consents, 1, "alice's consent does not cover bob");
}

#[tokio::test]
async fn claims_asked_by_name_need_the_consent_of_their_scope() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let browser = server.browser();
    let o = browser.authorize_and_complete(&params(&c, "openid", &[]), Some((USER, PASSWORD)), Decision::Allow).await;
    o.code();

    // The email asked by name (OIDC Core §5.5): consent for "openid" does not cover it, so
    // prompt=none may not widen what was granted.
    let email = r#"{"userinfo":{"email":null}}"#;
    let o = browser
        .authorize_and_complete(
            &params(&c, "openid", &[("claims", email), ("prompt", "none")]),
            None,
            Decision::NotExpected,
        )
        .await;
    assert_eq!(o.error(), "consent_required", "{o:?}");
    // Asked interactively, the page names the email, and allowing it is remembered.
    let r = browser.authorize(&params(&c, "openid", &[("claims", email)])).await;
    let page = browser.follow(&r).await;
    assert!(page.body.contains("see your email address"), "{page:?}");
    let o = browser.complete(page, None, Decision::Allow).await;
    o.code();
    let o = browser
        .authorize_and_complete(
            &params(&c, "openid", &[("claims", email), ("prompt", "none")]),
            None,
            Decision::NotExpected,
        )
        .await;
    o.code();
}
