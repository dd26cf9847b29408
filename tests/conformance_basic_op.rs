//! The OpenID Foundation conformance suite's Basic OP plan
//! (`oidcc-basic-certification-test-plan`, plans.md section 4), one test per module that a
//! static-client, code-flow OP runs, each named after its module and checking what that module
//! checks (section 2 for the common happy path). Checks the suite reports as WARN are asserted
//! too, since Latchkey aims at a clean run.
//!
//! Not applicable with a static client (dynamic registration only): `oidcc-idtoken-signature`
//! and `oidcc-idtoken-unsigned`. `oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported`
//! is covered with a client registered through the CLI in `conformance_request_objects.rs`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};

/// One module's world: an OP with alice (every claim set), a static client_secret_basic
/// `client` registered with the suite's callback, the discovery document and the JWKS. As in
/// the suite, each module starts with an empty cookie jar.
struct Op {
    server: Server,
    browser: Browser,
    client: TestClient,
    discovery: Value,
    jwks: Value,
}

async fn op() -> Op {
    let server = Server::start();
    server.add_alice();
    let client = server.confidential_client();
    op_with(server, client).await
}

async fn op_with(server: Server, client: TestClient) -> Op {
    let discovery = server.discovery().await;
    // 2.1: CheckServerConfiguration.
    for m in ["issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint"] {
        let v = discovery[m].as_str().unwrap_or_else(|| panic!("{m} missing"));
        url::Url::parse(v).unwrap_or_else(|e| panic!("{m} not a URL: {e}"));
    }
    let jwks = check_jwks(&server).await;
    // 2.1: the client's auth method is listed if the member is present.
    if let Some(m) = discovery.get("token_endpoint_auth_methods_supported") {
        assert!(m.as_array().unwrap().iter().any(|x| x == "client_secret_basic"));
    }
    let browser = server.browser();
    Op { server, browser, client, discovery, jwks }
}

/// plans.md 2.1: the JWKS fetched from `jwks_uri` is JSON with a `keys` array, no private or
/// symmetric material, every key has a non-empty kid and kids are unique.
async fn check_jwks(server: &Server) -> Value {
    let d = server.discovery().await;
    let uri = d["jwks_uri"].as_str().expect("jwks_uri");
    let path = uri.strip_prefix(&server.issuer).expect("jwks_uri under the issuer");
    let r = server.get(path).await;
    assert_eq!(r.status, 200, "{r:?}");
    let jwks = r.json();
    let keys = jwks["keys"].as_array().expect("keys array");
    let mut kids = std::collections::HashSet::new();
    for k in keys {
        assert_ne!(k["kty"], "oct", "symmetric key published: {k}");
        for p in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(p).is_none(), "private member {p}: {k}");
        }
        let kid = k["kid"].as_str().unwrap_or("");
        assert!(!kid.is_empty(), "key without kid: {k}");
        assert!(kids.insert(kid.to_string()), "duplicate kid {kid}");
    }
    jwks
}

/// The suite's standard request parameters, in alphabetical order (plans.md 2.2).
fn std_params<'a>(client: &'a TestClient, scope: &'a str, state: &'a str, nonce: &'a str) -> Vec<(&'a str, &'a str)> {
    auth_params(client, scope, state, nonce)
}

fn alnum10() -> String {
    random_string().chars().filter(|c| c.is_ascii_alphanumeric()).take(10).collect()
}

/// The callback checks of plans.md 2.3. Returns the code.
fn callback_checks(op: &Op, o: &Outcome, state: &str) -> String {
    assert_eq!(o.target, op.client.redirect_uri, "{o:?}");
    if let Some(iss) = o.param("iss") {
        assert_eq!(iss, op.server.issuer, "iss in the authorization response");
    }
    assert!(o.param("error").is_none(), "error in the callback: {o:?}");
    assert_eq!(o.param("state"), Some(state), "state: {o:?}");
    o.code()
}

/// The token request (2.4) and response (2.5) checks, then the ID token checks (2.6).
async fn token_checks(op: &Op, client: &TestClient, code: &str, nonce: Option<&str>, verifier: Option<&str>) -> Tokens {
    let mut p =
        vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", client.redirect_uri.as_str())];
    if let Some(v) = verifier {
        p.push(("code_verifier", v));
    }
    let r = op.server.token(&client.auth(), &p).await;
    assert_eq!(r.status, 200, "token endpoint: {r:?}");
    let v = r.json();
    assert!(v.get("error").is_none(), "{v}");
    assert!(v["access_token"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert!(v["token_type"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let exp = v["expires_in"].as_i64().unwrap_or_else(|| panic!("expires_in missing (WARN): {v}"));
    assert!(exp > 0 && exp <= 31_536_000, "expires_in: {v}");
    let t = Tokens::from_json(v);
    let id = t.id_token.as_deref().unwrap_or_else(|| panic!("id_token: {}", t.json));
    assert_eq!(id.split('.').count(), 3, "id_token is a JWT");
    check_id_token(id, &op.server.issuer, &client.id, nonce, Some(&t.access_token), &op.jwks);
    t
}

/// The whole standard happy path for OP's client with extra parameters: authorization (logging
/// in and consenting when asked), callback checks, token and ID token checks.
async fn std_flow(op: &Op, scope: &str, extra: &[(&str, &str)]) -> (Outcome, Tokens) {
    let state = alnum10();
    let nonce = alnum10();
    let mut p = std_params(&op.client, scope, &state, &nonce);
    p.extend_from_slice(extra);
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = callback_checks(op, &o, &state);
    let t = token_checks(op, &op.client, &code, Some(&nonce), None).await;
    (o, t)
}

async fn userinfo_get(op: &Op, t: &Tokens) -> Value {
    // 2.7: the scheme is copied from token_type.
    let scheme = t.json["token_type"].as_str().unwrap();
    let r = op
        .server
        .send(
            op.server
                .request(reqwest::Method::GET, "/userinfo")
                .header("Authorization", format!("{scheme} {}", t.access_token)),
        )
        .await;
    let v = check_userinfo(&r);
    assert_eq!(v["sub"], t.id_claims()["sub"], "userinfo sub = ID token sub");
    v
}

fn scopes_supported(op: &Op) -> Vec<String> {
    op.discovery["scopes_supported"]
        .as_array()
        .expect("scopes_supported")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "nbf",
    "jti",
    "sid",
    "s_hash",
    "txn",
];

const PROFILE: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "preferred_username",
];
const EMAIL: &[&str] = &["email", "email_verified"];
const ADDRESS: &[&str] = &["address"];
const PHONE: &[&str] = &["phone_number", "phone_number_verified"];

async fn scope_module(scope: &str, expected: &[&[&str]]) -> (Op, Tokens, Value) {
    let op = op().await;
    let supported = scopes_supported(&op);
    for s in scope.split(' ') {
        assert!(supported.iter().any(|x| x == s), "{s} not in scopes_supported: the module would SKIP");
    }
    let (_, t) = std_flow(&op, scope, &[]).await;
    let v = userinfo_get(&op, &t).await;
    for group in expected {
        for c in *group {
            assert!(v.get(*c).is_some(), "{c} missing from userinfo for scope {scope}: {v}");
        }
    }
    (op, t, v)
}

// --- 4.1 happy path, ID token and userinfo ---------------------------------------------------

#[tokio::test]
async fn oidcc_server() {
    let op = op().await;
    let state = alnum10();
    let nonce = alnum10();
    let o = op
        .browser
        .authorize_and_complete(
            &std_params(&op.client, "openid", &state, &nonce),
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    let code = callback_checks(&op, &o, &state);
    assert!(code.len() >= 43, "code of {} chars; use 32 random bytes or more", code.len());
    assert!(entropy_bits(&code) > 96.0, "code entropy {} bits", entropy_bits(&code));
    let t = token_checks(&op, &op.client, &code, Some(&nonce), None).await;
    let c = t.id_claims();
    assert!(c.get("name").is_none(), "name in the ID token for scope=openid (WARN)");
    for k in c.as_object().unwrap().keys() {
        assert!(
            PROTOCOL_CLAIMS.contains(&k.as_str()),
            "non-protocol claim {k} in the ID token for scope=openid (WARN)"
        );
    }
    userinfo_get(&op, &t).await;
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let op = op().await;
    let state = alnum10();
    let mut p = std_params(&op.client, "openid", &state, "nonce12345");
    p.retain(|(k, _)| *k != "response_type");
    let r = op.browser.authorize(&p).await;
    if r.status == 400 {
        r.assert_error_page();
        return;
    }
    assert_eq!(r.status, 302, "{r:?}");
    let o = op.browser.complete(r, Some((USER, PASSWORD)), Decision::Allow).await;
    let e = check_authorization_error(&o, Some(&state), &op.server.issuer);
    assert!(e == "invalid_request" || e == "unsupported_response_type", "{e}");
}

#[tokio::test]
async fn oidcc_userinfo_get() {
    let op = op().await;
    let (_, t) = std_flow(&op, "openid", &[]).await;
    userinfo_get(&op, &t).await;
}

#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let op = op().await;
    let (_, t) = std_flow(&op, "openid", &[]).await;
    let r = op
        .server
        .send(
            op.server
                .request(reqwest::Method::POST, "/userinfo")
                .header("Authorization", format!("Bearer {}", t.access_token)),
        )
        .await;
    let v = check_userinfo(&r);
    assert_eq!(v["sub"], t.id_claims()["sub"]);
}

#[tokio::test]
async fn oidcc_userinfo_post_body() {
    let op = op().await;
    let (_, t) = std_flow(&op, "openid", &[]).await;
    let r = op.server.post_form("/userinfo", &Auth::Nothing, &[("access_token", &t.access_token)]).await;
    assert!((200..300).contains(&r.status), "non-2xx (WARN): {r:?}");
    let v = check_userinfo(&r);
    assert_eq!(v["sub"], t.id_claims()["sub"]);
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let op = op().await;
    let state = alnum10();
    let mut p = std_params(&op.client, "openid", &state, "");
    p.retain(|(k, _)| *k != "nonce");
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    callback_checks(&op, &o, &state);
    // Beyond the module: the code still redeems, and the ID token carries no nonce.
    let r = op.server.redeem(&op.client, &o.code(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = Tokens::from_json(r.json());
    assert!(t.id_claims().get("nonce").is_none(), "no nonce requested, none returned");
}

// --- 4.2 scopes ------------------------------------------------------------------------------

#[tokio::test]
async fn oidcc_scope_profile() {
    scope_module("openid profile", &[PROFILE]).await;
}

#[tokio::test]
async fn oidcc_scope_email() {
    let (_, t, v) = scope_module("openid email", &[EMAIL]).await;
    let c = t.id_claims();
    assert!(c.get("name").is_none(), "name in the ID token (WARN): {c}");
    assert!(c.get("email").is_none(), "email in the ID token when an access token was issued (WARN): {c}");
    assert!(v.get("name").is_none(), "name in userinfo, not requested (WARN): {v}");
}

#[tokio::test]
async fn oidcc_scope_address() {
    scope_module("openid address", &[ADDRESS]).await;
}

#[tokio::test]
async fn oidcc_scope_phone() {
    scope_module("openid phone", &[PHONE]).await;
}

#[tokio::test]
async fn oidcc_scope_all() {
    scope_module("openid email phone address profile", &[PROFILE, EMAIL, ADDRESS, PHONE]).await;
}

#[tokio::test]
async fn oidcc_alternate_happy_flow() {
    let op = op().await;
    let state = alnum10();
    let nonce = alnum10();
    // Reverse alphabetical order, scope reversed.
    let p = vec![
        ("state", state.as_str()),
        ("scope", "email openid"),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("nonce", nonce.as_str()),
        ("client_id", op.client.id.as_str()),
    ];
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = callback_checks(&op, &o, &state);
    let t = token_checks(&op, &op.client, &code, Some(&nonce), None).await;
    let v = userinfo_get(&op, &t).await;
    for c in EMAIL {
        assert!(v.get(*c).is_some(), "{c}: {v}");
    }
    let c = t.id_claims();
    assert!(c.get("name").is_none() && c.get("email").is_none(), "{c}");
    assert!(v.get("name").is_none(), "{v}");
}

// --- 4.3 display, prompt, max_age ------------------------------------------------------------

#[tokio::test]
async fn oidcc_display_page() {
    let op = op().await;
    std_flow(&op, "openid", &[("display", "page")]).await;
}

#[tokio::test]
async fn oidcc_display_popup() {
    let op = op().await;
    std_flow(&op, "openid", &[("display", "popup")]).await;
}

#[tokio::test]
async fn oidcc_prompt_login() {
    let op = op().await;
    let (_, t1) = std_flow(&op, "openid", &[]).await;
    op.server.advance(1);
    let (o2, t2) = std_flow(&op, "openid", &[("prompt", "login")]).await;
    assert_eq!(o2.logins, 1, "the OP must show the login page again");
    let (a, b) = (t1.id_claims()["auth_time"].as_i64(), t2.id_claims()["auth_time"].as_i64());
    if let (Some(a), Some(b)) = (a, b) {
        assert!(b > a, "second auth_time {b} must be later than {a}");
    }
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let op = op().await;
    let state = format!("{}-._~", "AbCdEfGh12".repeat(13).chars().take(124).collect::<String>());
    let mut p = std_params(&op.client, "openid", &state, "nonce12345");
    p.push(("prompt", "none"));
    let o = op.browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(o.target, CALLBACK);
    let e = check_authorization_error(&o, Some(&state), &op.server.issuer);
    assert!(
        ["login_required", "interaction_required", "account_selection_required", "consent_required"]
            .contains(&e.as_str()),
        "{e}"
    );
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let op = op().await;
    let (_, t1) = std_flow(&op, "openid", &[]).await;
    let state = alnum10();
    let nonce = alnum10();
    let mut p = std_params(&op.client, "openid", &state, &nonce);
    p.push(("prompt", "none"));
    let r = op.browser.authorize(&p).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert!(r.location().unwrap().starts_with(CALLBACK), "no UI with prompt=none: {r:?}");
    let o = op.browser.complete(r, None, Decision::NotExpected).await;
    let code = callback_checks(&op, &o, &state);
    let t2 = token_checks(&op, &op.client, &code, Some(&nonce), None).await;
    let (a, b) = (t1.id_claims(), t2.id_claims());
    assert_eq!(a["sub"], b["sub"]);
    assert_eq!(a.get("auth_time"), b.get("auth_time"));
}

#[tokio::test]
async fn oidcc_max_age_1() {
    let op = op().await;
    let (_, t1) = std_flow(&op, "openid", &[]).await;
    op.server.advance(2);
    let (o2, t2) = std_flow(&op, "openid", &[("max_age", "1")]).await;
    assert_eq!(o2.logins, 1, "the OP must re-authenticate");
    let a = t1.id_claims()["auth_time"].as_i64();
    let b = t2.id_claims()["auth_time"].as_i64().expect("auth_time missing in the 2nd ID token");
    assert!(a.is_none_or(|a| b > a), "auth_time not later");
    assert!(b >= now() - 301, "auth_time not recent");
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let op = op().await;
    let (_, t1) = std_flow(&op, "openid", &[("max_age", "15000")]).await;
    let (o2, t2) = std_flow(&op, "openid", &[("max_age", "10000")]).await;
    assert_eq!(o2.logins, 0, "no login within max_age");
    let (a, b) = (t1.id_claims(), t2.id_claims());
    assert!(a["auth_time"].is_i64() && b["auth_time"].is_i64(), "auth_time missing");
    assert_eq!(a["auth_time"], b["auth_time"]);
    assert_eq!(a["sub"], b["sub"]);
}

// --- 4.4 other request parameters ------------------------------------------------------------

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let op = op().await;
    std_flow(&op, "openid", &[("extra", "foobar")]).await;
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let op = op().await;
    let (_, t1) = std_flow(&op, "openid", &[]).await;
    let state = alnum10();
    let nonce = alnum10();
    let mut p = std_params(&op.client, "openid", &state, &nonce);
    p.push(("prompt", "none"));
    p.push(("id_token_hint", t1.id_token()));
    let o = op.browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    let code = callback_checks(&op, &o, &state);
    let t2 = token_checks(&op, &op.client, &code, Some(&nonce), None).await;
    let (a, b) = (t1.id_claims(), t2.id_claims());
    assert_eq!(a["sub"], b["sub"]);
    assert_eq!(a.get("auth_time"), b.get("auth_time"));
}

#[tokio::test]
async fn oidcc_login_hint() {
    let op = op().await;
    std_flow(&op, "openid", &[("login_hint", "buffy@localhost")]).await;
}

#[tokio::test]
async fn oidcc_ui_locales() {
    let op = op().await;
    std_flow(&op, "openid", &[("ui_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_claims_locales() {
    let op = op().await;
    std_flow(&op, "openid", &[("claims_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let op = op().await;
    let values: Vec<String> = op.discovery["acr_values_supported"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_else(|| vec!["1".into(), "2".into()]);
    let joined = values.join(" ");
    let (_, t) = std_flow(&op, "openid", &[("acr_values", &joined)]).await;
    let c = t.id_claims();
    let acr = c["acr"].as_str().unwrap_or_else(|| panic!("no acr in the ID token (WARN): {c}"));
    assert!(values.iter().any(|v| v == acr), "acr {acr} not among the requested {values:?} (WARN)");
}

// --- 4.5 code reuse, redirect URI, POST ------------------------------------------------------

async fn code_and_tokens(op: &Op) -> (String, Tokens) {
    let state = alnum10();
    let nonce = alnum10();
    let o = op
        .browser
        .authorize_and_complete(
            &std_params(&op.client, "openid", &state, &nonce),
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    let code = callback_checks(op, &o, &state);
    let t = token_checks(op, &op.client, &code, Some(&nonce), None).await;
    (code, t)
}

/// plans.md 2.9.
fn token_error_checks(r: &Resp, expected: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.media_type(), "application/json", "{r:?}");
    let v = r.json();
    assert_eq!(v["error"], expected, "{v}");
    check_error_chars(&v);
}

#[tokio::test]
async fn oidcc_codereuse() {
    let op = op().await;
    let (code, _) = code_and_tokens(&op).await;
    let r = op.server.redeem(&op.client, &code, None).await;
    token_error_checks(&r, "invalid_grant");
}

#[tokio::test]
async fn oidcc_codereuse_30seconds() {
    let op = op().await;
    let (code, t) = code_and_tokens(&op).await;
    op.server.advance(30);
    let r = op.server.redeem(&op.client, &code, None).await;
    token_error_checks(&r, "invalid_grant");
    let u = op.server.userinfo(&t.access_token).await;
    assert!((400..500).contains(&u.status), "the first access token should be revoked (WARN): {u:?}");
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let op = op().await;
    let bad = format!("{CALLBACK}/{}", alnum10());
    let mut p = std_params(&op.client, "openid", "state12345", "nonce12345");
    for kv in p.iter_mut() {
        if kv.0 == "redirect_uri" {
            kv.1 = &bad;
        }
    }
    let r = op.browser.authorize(&p).await;
    r.assert_error_page();
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let op = op().await;
    let started = Instant::now();
    let state = alnum10();
    let nonce = alnum10();
    let r = op.browser.authorize_post(&std_params(&op.client, "openid", &state, &nonce)).await;
    let o = op.browser.complete(r, Some((USER, PASSWORD)), Decision::Allow).await;
    assert!(started.elapsed() < Duration::from_secs(30), "callback within 30 s");
    let code = callback_checks(&op, &o, &state);
    token_checks(&op, &op.client, &code, Some(&nonce), None).await;
}

// --- 4.6 second auth method, request objects, claims, refresh, PKCE --------------------------

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let server = Server::start();
    server.add_alice();
    let client =
        server.add_client("client_secret_post", &["--redirect-uri", CALLBACK, "--auth-method", "client_secret_post"]);
    let op = op_with(server, client).await;
    let methods = op.discovery["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "client_secret_post"), "{methods:?}");
    let (_, t) = std_flow(&op, "openid", &[]).await;
    userinfo_get(&op, &t).await;
}

fn unsigned_request_object(claims: &Value) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// The suite's static client for the unsigned request-object modules: registered with
/// `request_object_signing_alg: none` (plans.md 1.2), which only this registration allows.
async fn op_accepting_unsigned_objects() -> Op {
    let server = Server::start();
    server.add_alice();
    let client = server.add_client("rp", &["--redirect-uri", CALLBACK, "--request-object-alg", "none"]);
    op_with(server, client).await
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let op = op_accepting_unsigned_objects().await;
    // Supported, so the module runs rather than SKIPs: none listed, the parameter supported.
    assert_eq!(op.discovery["request_parameter_supported"], json!(true));
    let algs = op.discovery["request_object_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.iter().any(|a| a == "none"), "{algs:?}");
    // state and nonce only inside the object; the rest duplicated outside.
    let state = alnum10();
    let nonce = alnum10();
    let request = unsigned_request_object(&json!({
        "client_id": op.client.id, "redirect_uri": CALLBACK, "response_type": "code",
        "scope": "openid", "state": state, "nonce": nonce,
    }));
    let p = vec![
        ("client_id", op.client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("request", request.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    // Processed: state and nonce echoed from the object, then the standard checks.
    let code = callback_checks(&op, &o, &state);
    token_checks(&op, &op.client, &code, Some(&nonce), None).await;
}

#[tokio::test]
async fn oidcc_claims_essential() {
    let op = op().await;
    let (_, t) = std_flow(&op, "openid", &[("claims", r#"{"userinfo":{"name":{"essential":true}}}"#)]).await;
    let v = userinfo_get(&op, &t).await;
    assert_eq!(v["name"], "Alice Liddell", "name requested in userinfo (WARN): {v}");
    assert!(t.id_claims().get("name").is_none(), "name in the ID token (WARN)");
}

#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    let op = op_accepting_unsigned_objects().await;
    let request = unsigned_request_object(&json!({
        "client_id": op.client.id, "redirect_uri": CALLBACK, "response_type": "code",
        "scope": "openid", "state": "state12345", "nonce": "nonce12345",
    }));
    let invalid = format!("{CALLBACK}_invalid");
    let p = vec![
        ("client_id", op.client.id.as_str()),
        ("redirect_uri", invalid.as_str()),
        ("request", request.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    // The object's redirect_uri wins (OIDC Core §6.3.3): the registered callback, with no
    // error (an error there is FAIL-stop in the suite: the OP fell back to a default).
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = callback_checks(&op, &o, "state12345");
    token_checks(&op, &op.client, &code, Some("nonce12345"), None).await;
    // A client that did not opt in to unsigned objects: the object is refused, and the
    // invalid redirect_uri of the query is refused on a page, never followed.
    let other = op.server.confidential_client();
    let request = unsigned_request_object(&json!({
        "client_id": other.id, "redirect_uri": CALLBACK, "response_type": "code",
        "scope": "openid", "state": "state12345", "nonce": "nonce12345",
    }));
    let p = vec![
        ("client_id", other.id.as_str()),
        ("redirect_uri", invalid.as_str()),
        ("request", request.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    op.server.browser().authorize(&p).await.assert_error_page();
}

/// plans.md 4.7: the checks on each refresh response.
fn refresh_checks(r: &Resp, original: &Tokens, client: &TestClient, op: &Op) -> Tokens {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json");
    assert!(r.header("cache-control").unwrap_or("").contains("no-store"), "{r:?}");
    let v = r.json();
    assert!(v["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{v}");
    let t = Tokens::from_json(v.clone());
    assert!(entropy_bits(&t.access_token) > 96.0, "access token entropy");
    assert!(t.access_token.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    let exp = v["expires_in"].as_i64().unwrap_or_else(|| panic!("expires_in (WARN): {v}"));
    assert!(exp > 0 && exp <= 31_536_000);
    if let Some(rt) = &t.refresh_token {
        assert!(rt.len() * 8 >= 128 && entropy_bits(rt) > 96.0, "rotated refresh token strength");
    }
    if let Some(id) = &t.id_token {
        let b = check_id_token(id, &op.server.issuer, &client.id, None, Some(&t.access_token), &op.jwks);
        let a = original.id_claims();
        if b.get("nonce").is_some() {
            assert_eq!(a.get("nonce"), b.get("nonce"), "OIDC Core 12.2: nonce unchanged");
        }
        for k in ["iss", "sub", "aud", "auth_time", "azp"] {
            assert_eq!(a.get(k), b.get(k), "{k} changed on refresh");
        }
        assert_ne!(a["iat"], b["iat"], "iat must differ");
    }
    t
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let op = op().await;
    let client2 = op.server.add_client("client2", &["--redirect-uri", CALLBACK]);
    assert!(scopes_supported(&op).iter().any(|s| s == "offline_access"));
    let grants = op.discovery["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == "refresh_token"), "refresh_token grant listed (WARN)");

    // Client 1.
    let (_, t1) = std_flow(&op, "openid offline_access", &[("prompt", "consent")]).await;
    let rt1 = t1.refresh_token();
    assert!(rt1.bytes().all(|b| (0x20..=0x7e).contains(&b)), "refresh token characters");
    op.server.advance(1);
    let r = op
        .server
        .token(
            &op.client.auth(),
            &[("grant_type", "refresh_token"), ("refresh_token", rt1), ("scope", "openid offline_access")],
        )
        .await;
    let n1 = refresh_checks(&r, &t1, &op.client, &op);
    check_userinfo(&op.server.userinfo(&n1.access_token).await);

    // Client 2, same browser session, 43-character nonce ending in -._~.
    let state = alnum10();
    let nonce = format!("{}-._~", "Zy98Xw76Vu".repeat(5).chars().take(39).collect::<String>());
    let mut p = auth_params(&client2, "openid offline_access", &state, &nonce);
    p.push(("prompt", "consent"));
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = callback_checks(&op, &o, &state);
    let t2 = token_checks(&op, &client2, &code, Some(&nonce), None).await;
    op.server.advance(1);
    let r = op.server.refresh(&client2, t2.refresh_token()).await;
    let n2 = refresh_checks(&r, &t2, &client2, &op);
    check_userinfo(&op.server.userinfo(&n2.access_token).await);

    // Client 2's refresh token with client 1's credentials.
    let rt2 = n2.refresh_token.as_deref().unwrap_or(t2.refresh_token());
    let r = op.server.refresh(&op.client, rt2).await;
    token_error_checks(&r, "invalid_grant");
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let op = op().await;
    let pkce = Pkce::new();
    let state = alnum10();
    let nonce = alnum10();
    let mut p = std_params(&op.client, "openid", &state, &nonce);
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    let o = op.browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = callback_checks(&op, &o, &state);
    token_checks(&op, &op.client, &code, Some(&nonce), Some(&pkce.verifier)).await;
}
