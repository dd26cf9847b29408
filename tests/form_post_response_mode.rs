//! OAuth 2.0 Form Post Response Mode: `response_mode=form_post` answers with an auto-submitting
//! HTML form instead of a redirect, for successes and errors alike.

mod common;

use common::*;

fn assert_form_post_page(o: &Outcome, redirect_uri: &str) {
    assert!(o.form_post, "{o:?}");
    assert_eq!(o.target, redirect_uri, "form action is the redirect_uri");
    let page = o.page.as_ref().unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.media_type(), "text/html");
    assert!(page.location().is_none());
    let form = page.forms().into_iter().find(|f| f.action == redirect_uri).unwrap();
    assert_eq!(form.method, "post");
    // The suite compares the callback's Content-Type exactly with
    // application/x-www-form-urlencoded: the form must keep the default enctype.
    assert!(form.enctype.as_deref().is_none_or(|e| e == "application/x-www-form-urlencoded"), "{form:?}");
    for i in &form.inputs {
        if !i.name.is_empty() && matches!(i.tag.as_str(), "input") {
            assert_eq!(i.kind, "hidden", "visible field in the form: {i:?}");
        }
    }
    assert!(
        page.body.contains(".submit()")
            || page.body.to_ascii_lowercase().contains("onload")
            || page.body.to_ascii_lowercase().contains("<script"),
        "the form must submit itself: {page:?}"
    );
}

#[tokio::test]
async fn form_post_success_posts_code_state_and_iss() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let mut p = auth_params(&c, "openid", "fp-state", "fp-nonce");
    p.push(("response_mode", "form_post"));
    let o = browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_form_post_page(&o, CALLBACK);
    assert_eq!(o.param("state"), Some("fp-state"));
    assert_eq!(o.param("iss"), Some(server.issuer.as_str()));
    let code = o.code();
    let r = server.redeem(&c, &code, None).await;
    assert_eq!(r.status, 200, "{r:?}");

    // With a session, /authorize itself answers 200 with the form.
    let r = browser.authorize(&p).await;
    assert_eq!(r.status, 200, "{r:?}");
    let o = browser.complete(r, None, Decision::NotExpected).await;
    assert_form_post_page(&o, CALLBACK);
    o.code();
}

#[tokio::test]
async fn form_post_errors_are_posted_too() {
    let server = Server::start();
    let c = server.first_party_client();
    let browser = server.browser();
    let mut p = auth_params(&c, "openid", "fp-err", "n");
    p.push(("response_mode", "form_post"));
    p.push(("prompt", "none"));
    let r = browser.authorize(&p).await;
    assert_eq!(r.status, 200, "form_post error: {r:?}");
    assert!(r.location().is_none(), "no query-string error with form_post: {r:?}");
    let o = browser.complete(r, None, Decision::NotExpected).await;
    assert_form_post_page(&o, CALLBACK);
    assert_eq!(check_authorization_error(&o, Some("fp-err"), &server.issuer), "login_required");
}

#[tokio::test]
async fn form_post_escapes_the_values() {
    let server = Server::start();
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let state = r#""><script>alert(1)</script>&amp;'"#;
    let mut p = auth_params(&c, "openid", state, "n");
    p.push(("response_mode", "form_post"));
    let o = browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::NotExpected).await;
    assert_eq!(o.param("state"), Some(state), "state survives HTML escaping");
    assert!(!o.page.unwrap().body.contains("<script>alert(1)"), "state must be escaped");
}
