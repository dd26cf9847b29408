//! OpenID Connect RP-Initiated Logout 1.0. The tests named `oidcc_rp_initiated_logout_*` follow
//! the modules of the conformance suite's RP-Initiated OP plan (plans.md section 8).

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::json;
use url::Url;

/// 50 letters, 10 digits and 30 punctuation characters (printable ASCII except `+`, space
/// and `;`), as the suite sends.
fn logout_state() -> String {
    let letters: String = ('a'..='z').chain('A'..='Z').take(50).collect();
    format!("{letters}0123456789!\"#$%&'()*,-./:<=>?@[\\]^_`{{|}}~")
}

struct World {
    server: Server,
    browser: Browser,
    c1: TestClient,
    c2: TestClient,
    t1: Tokens,
}

/// Alice signed in to two clients in one browser.
async fn world() -> World {
    let server = Server::start();
    server.add_alice();
    let c1 = server.first_party_client();
    let c2 = server.add_client("rp2", &["--redirect-uri", CALLBACK2, "--post-logout-redirect-uri", POST_LOGOUT2]);
    let browser = server.browser();
    let t1 = server.code_flow(&browser, &c1, "openid").await;
    server.code_flow(&browser, &c2, "openid").await;
    World { server, browser, c1, c2, t1 }
}

async fn logout(b: &Browser, params: &[(&str, &str)]) -> Resp {
    let url = if params.is_empty() { "/logout".to_string() } else { format!("/logout?{}", encode_form(params)) };
    b.get(&url).await
}

async fn prompt_none(b: &Browser, c: &TestClient) -> Outcome {
    let mut p = auth_params(c, "openid", "pn-state", "pn-nonce");
    p.push(("prompt", "none"));
    b.authorize_and_complete(&p, None, Decision::NotExpected).await
}

async fn assert_logged_out(w: &World) {
    for c in [&w.c1, &w.c2] {
        let o = prompt_none(&w.browser, c).await;
        let e = check_authorization_error(&o, Some("pn-state"), &w.server.issuer);
        assert_eq!(e, "login_required", "after logout, for {}", c.id);
    }
}

async fn assert_logged_in(w: &World) {
    for c in [&w.c1, &w.c2] {
        prompt_none(&w.browser, c).await.code();
    }
}

/// The OP showed a page (error or confirmation) and did not redirect.
fn assert_page_no_redirect(r: &Resp) {
    assert!(r.location().is_none(), "must not redirect: {r:?}");
    assert!(matches!(r.status, 200 | 400), "{r:?}");
    assert_eq!(r.media_type(), "text/html", "{r:?}");
}

fn confirmation_form(r: &Resp) -> Option<Form> {
    r.forms().into_iter().find(|f| f.action.ends_with("/logout") && f.has_button("confirm", "yes"))
}

/// Confirms logout on the confirmation page R; asserts it does not send the browser to any
/// post-logout URI.
async fn confirm(w: &World, r: &Resp) -> Resp {
    let form = confirmation_form(r).unwrap_or_else(|| panic!("confirmation page: {r:?}"));
    assert_eq!(form.method, "post");
    assert!(form.value("csrf").is_some_and(|v| !v.is_empty()), "{form:?}");
    let done = w.browser.submit(&form, &[("confirm", "yes")]).await;
    assert!(done.status < 400, "{done:?}");
    if let Some(loc) = done.location() {
        let target = w.browser.resolve(loc);
        assert!(w.browser.is_internal(&target), "unexpected redirect after confirm: {done:?}");
    }
    done
}

fn alg_none(id_token: &str) -> String {
    let payload = id_token.split('.').nth(1).unwrap();
    format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#))
}

#[tokio::test]
async fn oidcc_rp_initiated_logout() {
    let w = world().await;
    let state = logout_state();
    let r = logout(
        &w.browser,
        &[("id_token_hint", w.t1.id_token()), ("post_logout_redirect_uri", POST_LOGOUT), ("state", &state)],
    )
    .await;
    assert_eq!(r.status, 302, "{r:?}");
    let loc = Url::parse(r.location().unwrap()).unwrap();
    let mut bare = loc.clone();
    bare.set_query(None);
    assert_eq!(bare.as_str(), POST_LOGOUT);
    let q: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    assert_eq!(q, vec![("state".to_string(), state)], "only state, byte-exact");
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn logout_by_post_with_hint() {
    let w = world().await;
    let r = w
        .browser
        .post_form(
            "/logout",
            &[("id_token_hint", w.t1.id_token()), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "xyz")],
        )
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.location(), Some(format!("{POST_LOGOUT}?state=xyz").as_str()));
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn logout_uses_the_post_logout_uri_of_the_hinted_client_only() {
    let w = world().await;
    // c2's URI with c1's ID token: not registered for that client.
    let r = logout(&w.browser, &[("id_token_hint", w.t1.id_token()), ("post_logout_redirect_uri", POST_LOGOUT2)]).await;
    assert_page_no_redirect(&r);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri() {
    let w = world().await;
    let r = logout(
        &w.browser,
        &[
            ("id_token_hint", w.t1.id_token()),
            ("post_logout_redirect_uri", "https://rp.example.com/bad_post_logout_redirect_uri"),
            ("state", "s"),
        ],
    )
    .await;
    assert_page_no_redirect(&r);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri() {
    let w = world().await;
    let uri = format!("{POST_LOGOUT}?foo=bar");
    let r =
        logout(&w.browser, &[("id_token_hint", w.t1.id_token()), ("post_logout_redirect_uri", &uri), ("state", "s")])
            .await;
    assert_page_no_redirect(&r);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_modified_id_token_hint() {
    let w = world().await;
    let hint = alg_none(w.t1.id_token());
    let r = logout(&w.browser, &[("id_token_hint", &hint), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "s")])
        .await;
    assert_page_no_redirect(&r);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_bad_id_token_hint() {
    let w = world().await;
    // A JWT "issued" by the client (iss = client_id, aud = issuer) with a signature the OP's
    // keys do not verify.
    let kid = jwt_header(w.t1.id_token())["kid"].clone();
    let header = json!({"alg": "RS256", "kid": kid});
    let claims = json!({
        "iss": w.c1.id, "aud": w.server.issuer, "sub": "SubjectID", "nonce": "flibble",
        "iat": now(), "exp": now() + 300,
    });
    let hint = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 256]),
    );
    let r = logout(&w.browser, &[("id_token_hint", &hint), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "s")])
        .await;
    assert_page_no_redirect(&r);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_id_token_hint() {
    let w = world().await;
    let r = logout(&w.browser, &[("post_logout_redirect_uri", POST_LOGOUT), ("state", "s")]).await;
    assert_page_no_redirect(&r);
    assert_eq!(r.status, 200);
    assert!(confirmation_form(&r).is_some(), "confirmation page: {r:?}");
    // Showing the page does not log out by itself.
    assert_logged_in(&w).await;
    let r = logout(&w.browser, &[("post_logout_redirect_uri", POST_LOGOUT), ("state", "s")]).await;
    confirm(&w, &r).await;
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_params() {
    let w = world().await;
    let r = logout(&w.browser, &[]).await;
    assert_page_no_redirect(&r);
    assert_eq!(r.status, 200);
    confirm(&w, &r).await;
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_only_state() {
    let w = world().await;
    let r = logout(&w.browser, &[("state", "only-state")]).await;
    assert_page_no_redirect(&r);
    confirm(&w, &r).await;
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri() {
    let w = world().await;
    let r = logout(&w.browser, &[("id_token_hint", w.t1.id_token()), ("state", "s")]).await;
    assert!(r.location().is_none(), "nowhere to redirect to: {r:?}");
    assert_eq!(r.status, 200, "{r:?}");
    if confirmation_form(&r).is_some() {
        confirm(&w, &r).await;
    }
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_state() {
    let w = world().await;
    let r = logout(&w.browser, &[("id_token_hint", w.t1.id_token()), ("post_logout_redirect_uri", POST_LOGOUT)]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.location(), Some(POST_LOGOUT), "no state, no query: {r:?}");
    assert_logged_out(&w).await;
}

#[tokio::test]
async fn logout_confirmation_requires_csrf() {
    let w = world().await;
    let r = logout(&w.browser, &[]).await;
    let form = confirmation_form(&r).unwrap_or_else(|| panic!("{r:?}"));
    let bad = w.browser.submit(&form, &[("csrf", "forged"), ("confirm", "yes")]).await;
    assert!(matches!(bad.status, 400 | 403), "{bad:?}");
    let missing = w.browser.post_form("/logout", &[("confirm", "yes")]).await;
    assert!(matches!(missing.status, 400 | 403), "{missing:?}");
    assert_logged_in(&w).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_discovery_endpoint_verification() {
    let server = Server::start_with(&[("LATCHKEY_ISSUER", "https://login.example.test")]);
    let d = server.discovery().await;
    let end = d["end_session_endpoint"].as_str().unwrap_or_else(|| panic!("{d}"));
    assert!(end.starts_with("https://"), "{end}");
    for (k, v) in d.as_object().unwrap() {
        if k.ends_with("_endpoint") {
            let u = v.as_str().unwrap_or_else(|| panic!("{k} is not a string"));
            assert!(Url::parse(u).is_ok_and(|u| u.scheme() == "https"), "{k}: {u}");
        }
    }
}
