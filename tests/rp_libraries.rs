//! The relying-party libraries applications really use sign in through Latchkey, each doing all
//! of its own protocol checks: openid-client and oauth4webapi (Node), Authlib (Python),
//! oidc-client-ts in headless Chromium (a single-page app on another origin, so every token and
//! userinfo call crosses origins under CORS), and the `openidconnect` crate (Rust, the relying
//! party of the rest of the suite). Each runs discovery, the code flow with PKCE, state and nonce, checks
//! the ID token against the JWKS, calls userinfo, refreshes, and signs out (RP-Initiated Logout).
//!
//! The libraries live in `tests/rp/` (`npm ci --prefix tests/rp`; a virtualenv at
//! `tests/rp/.venv` from `tests/rp/requirements.txt`), which `.ci/run` installs. Without them
//! a test says so and passes, unless LATCHKEY_REQUIRE_RP_LIBS=1 (as in CI).

mod common;

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use common::chromium::{Driver, Session};
use common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp")
}

/// Whether `path` (under tests/rp) is installed; when it is not and not required, the test
/// says so and is skipped.
fn installed(test: &str, path: &str) -> bool {
    if rp_dir().join(path).exists() {
        return true;
    }
    let required = std::env::var("LATCHKEY_REQUIRE_RP_LIBS").is_ok_and(|v| v == "1");
    assert!(!required, "LATCHKEY_REQUIRE_RP_LIBS=1 but tests/rp/{path} is missing");
    eprintln!(
        "SKIPPED {test}: tests/rp/{path} is missing (npm ci --prefix tests/rp; python3 -m venv tests/rp/.venv && \
         tests/rp/.venv/bin/pip install -r tests/rp/requirements.txt; .ci/run does both)"
    );
    false
}

/// One half of a library's sign-in: `start` (prints the authorization URL) or `finish
/// CALLBACK` (prints what the library made of the response). Its output is JSON.
fn run(program: &Path, script: &str, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = Command::new(program)
        .arg(rp_dir().join(script))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(rp_dir())
        .output()
        .unwrap_or_else(|e| panic!("{} {script}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} {args:?} failed:\n{stderr}\n{stdout}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{script} {args:?} printed no JSON ({e}): {stdout}\n{stderr}"))
}

/// A library signs alice in with a confidential client (consent shown and given), then checks
/// what it got: the same subject in the ID token, userinfo and after the refresh, her email, a
/// rotated refresh token; then its logout URL signs her out.
async fn signs_in_refreshes_and_signs_out(program: &Path, script: &str) {
    let server = Server::start();
    server.add_alice();
    let client = server.confidential_client();
    let state = std::env::temp_dir().join(format!("latchkey-rp-{}.json", random_string()));
    let state_file = state.to_string_lossy();
    let env = [
        ("RP_ISSUER", server.issuer.as_str()),
        ("RP_CLIENT_ID", client.id.as_str()),
        ("RP_CLIENT_SECRET", client.secret()),
        ("RP_REDIRECT_URI", CALLBACK),
        ("RP_POST_LOGOUT_REDIRECT_URI", POST_LOGOUT),
        ("RP_STATE_FILE", &state_file),
    ];
    let started = run(program, script, &env, &["start"]);
    let url = started["url"].as_str().unwrap_or_else(|| panic!("no url: {started}"));
    assert!(url.starts_with(&server.url("/authorize")), "{url}");

    let browser = server.browser();
    let outcome = browser.complete(browser.get(url).await, Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(outcome.consents, 1, "a third-party client asks for consent");
    let callback = outcome.url.expect("a redirect back to the client").to_string();
    let got = run(program, script, &env, &["finish", &callback]);
    let _ = std::fs::remove_file(&state);

    let sub = got["claims"]["sub"].as_str().unwrap_or_else(|| panic!("no sub: {got}"));
    assert_eq!(got["claims"]["iss"], server.issuer, "{got}");
    assert_eq!(got["claims"]["aud"].as_str().or(got["claims"]["aud"][0].as_str()), Some(client.id.as_str()));
    assert_eq!(got["userinfo"]["sub"], sub, "{got}");
    assert_eq!(got["userinfo"]["email"], format!("{USER}@example.com"), "{got}");
    assert_eq!(got["refreshed_sub"], sub, "the refreshed access token works at userinfo: {got}");
    assert_eq!(got["rotated"], true, "refresh tokens rotate: {got}");

    let logout = got["logout_url"].as_str().unwrap_or_else(|| panic!("no logout_url: {got}"));
    signs_out(&browser, logout, url).await;
}

/// The library's logout URL ends the browser's session without asking (its ID token names this
/// session) and sends it back to the client; the sign-in URL then asks for a password again.
async fn signs_out(browser: &Browser, logout: &str, sign_in: &str) {
    let resp = browser.get(logout).await;
    let back = resp.location().unwrap_or_else(|| panic!("no redirect back: {resp:?}"));
    assert!(back.starts_with(POST_LOGOUT), "{resp:?}");
    assert!(back.contains("state=signed-out"), "{back}");
    let mut resp = browser.get(sign_in).await;
    while resp.is_redirect() && browser.is_internal(&browser.resolve(resp.location().unwrap())) {
        resp = browser.follow(&resp).await;
    }
    assert!(login_form(&resp).is_some(), "signed out, the next sign-in asks for the password: {resp:?}");
}

#[tokio::test]
async fn openidconnect_signs_in_refreshes_and_signs_out() {
    let server = Server::start();
    server.add_alice();
    let c = server.confidential_client();
    let http = server.rp_http();
    let browser = server.browser();
    let metadata = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let end_session = metadata.additional_metadata().end_session_endpoint.clone().expect("end_session_endpoint");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.id.clone()),
        Some(ClientSecret::new(c.secret().into())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let outcome = browser.complete(browser.get(url.as_str()).await, Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(outcome.param("state"), Some(csrf.secret().as_str()));
    let token = client
        .exchange_code(AuthorizationCode::new(outcome.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("id_token").clone();
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("the ID token verifies");
    let userinfo: CoreUserInfoClaims =
        client.user_info(token.access_token().clone(), None).unwrap().request_async(&http).await.expect("userinfo");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(userinfo.email().map(|e| e.to_string()), Some(format!("{USER}@example.com")));

    let refresh = token.refresh_token().expect("a refresh token with offline_access");
    let refreshed =
        client.exchange_refresh_token(refresh).unwrap().request_async(&http).await.expect("the refresh grant");
    assert_ne!(refreshed.refresh_token().map(|t| t.secret()), Some(refresh.secret()), "refresh tokens rotate");
    let again: CoreUserInfoClaims =
        client.user_info(refreshed.access_token().clone(), None).unwrap().request_async(&http).await.expect("userinfo");
    assert_eq!(again.subject(), claims.subject());

    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(&id_token)
        .set_client_id(ClientId::new(c.id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(POST_LOGOUT.into()).unwrap())
        .set_state(CsrfToken::new("signed-out".into()))
        .http_get_url();
    signs_out(&browser, logout.as_str(), url.as_str()).await;
}

#[tokio::test]
async fn openid_client_signs_in_refreshes_and_signs_out() {
    if installed("openid_client", "node_modules/openid-client") {
        signs_in_refreshes_and_signs_out(Path::new("node"), "openid_client.mjs").await;
    }
}

#[tokio::test]
async fn oauth4webapi_signs_in_refreshes_and_signs_out() {
    if installed("oauth4webapi", "node_modules/oauth4webapi") {
        signs_in_refreshes_and_signs_out(Path::new("node"), "oauth4webapi.mjs").await;
    }
}

#[tokio::test]
async fn authlib_signs_in_refreshes_and_signs_out() {
    if installed("authlib", ".venv/bin/python") {
        signs_in_refreshes_and_signs_out(&rp_dir().join(".venv/bin/python"), "authlib_rp.py").await;
    }
}

/// Serves the single-page app (`tests/rp/oidc_client_ts.html` at `/`, `/callback` and
/// `/signed-out`, and the
/// library's browser bundle) on an origin of its own; returns that origin.
async fn single_page_app() -> String {
    let page = std::fs::read_to_string(rp_dir().join("oidc_client_ts.html")).unwrap();
    let bundle =
        std::fs::read_to_string(rp_dir().join("node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js"))
            .unwrap();
    let page = move || {
        let page = page.clone();
        async move { Html(page) }
    };
    let app = axum::Router::new()
        .route("/", get(page.clone()))
        .route("/callback", get(page.clone()))
        .route("/signed-out", get(page))
        .route(
            "/oidc-client-ts.min.js",
            get(move || async move { ([("content-type", "text/javascript")], bundle).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_client_ts_in_chromium_signs_in_and_out_across_origins() {
    if !installed("oidc_client_ts", "node_modules/oidc-client-ts") {
        return;
    }
    let Some((driver, id)) = Driver::start("oidc_client_ts").await else { return };
    let browser = Session { driver: &driver, id };
    let server = Server::start();
    server.add_alice();
    let origin = single_page_app().await;
    assert_ne!(origin, server.issuer, "the app is on an origin of its own");
    // A public client whose web origin is its redirect URI's (the default).
    let client = server.add_client(
        "spa",
        &[
            "--redirect-uri",
            &format!("{origin}/callback"),
            "--post-logout-redirect-uri",
            &format!("{origin}/signed-out"),
            "--public",
            "--first-party",
        ],
    );

    browser.goto(&format!("{origin}/?authority={}&client_id={}", server.issuer, client.id)).await;
    browser.wait_url("the sign-in page", |u| u.starts_with(&server.issuer)).await;
    browser.type_into("#username", USER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#submit").await;
    browser.wait_url("the app's callback", |u| u.starts_with(&format!("{origin}/callback"))).await;

    let started = Instant::now();
    let title = loop {
        let title = browser.script("return document.title").await;
        if title != "single-page app" {
            break title;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the app did not finish: {}", browser.text().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out: Value = serde_json::from_str(
        browser.script("return document.getElementById('out').textContent").await.as_str().unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(title, "done", "{out}");
    assert!(out["sub"].as_str().is_some_and(|s| !s.is_empty()), "{out}");
    assert_eq!(out["email"], format!("{USER}@example.com"), "userinfo was loaded across origins: {out}");
    assert_eq!(out["renewed_sub"], out["sub"], "{out}");
    assert_eq!(out["rotated"], true, "the refresh went through /token from the page: {out}");

    // Signing out through the library ends the session: the app's next sign-in asks again.
    browser.script("window.signOut(); return null").await;
    browser.wait_url("the app's signed-out page", |u| u.starts_with(&format!("{origin}/signed-out"))).await;
    browser.goto(&format!("{origin}/")).await;
    browser.wait_url("the sign-in page", |u| u.starts_with(&server.issuer)).await;
    browser.element("#password").await;
}
