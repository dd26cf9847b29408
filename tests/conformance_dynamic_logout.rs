//! The OpenID Foundation conformance plans for dynamic clients and logout, one test per module,
//! named after it: the Dynamic plan (`oidcc-dynamic-certification-test-plan`, plans.md section
//! 7) and the third-party-initiated login plan (section 12), with the registration of section
//! 1.3 and its checks; then what RFC 7591 and RFC 7592 ask beyond the suite (initial access
//! tokens, reading, replacing and deleting a registration), and a node-oidc-provider-style smoke
//! test: a client registered at the endpoint signs in with `private_key_jwt` and a signed request
//! object.
//!
//! The relying party's side is a small server inside the test (`common::relying_party::Rp`): its
//! keys, request objects and sector identifier documents.

mod common;

use common::relying_party::*;
use common::*;
use serde_json::{Value, json};

/// One module's world: an OP with alice, an initial access token from the CLI, the RP's server,
/// and the OP's discovery and JWKS.
struct Dyn {
    server: Server,
    rp: Rp,
    token: String,
    discovery: Value,
    jwks: Value,
}

/// A client the endpoint registered: its answer, its registration access token and where it is
/// managed.
struct Registered {
    json: Value,
    client: TestClient,
    access_token: String,
    path: String,
}

async fn dyn_op() -> Dyn {
    dyn_op_with(&[]).await
}

async fn dyn_op_with(env: &[(&str, &str)]) -> Dyn {
    let server = Server::start_with(env);
    server.add_alice();
    let issued = server.cli(&["clients", "token", "--expires", "1h", "--json"]);
    let token = issued["initial_access_token"].as_str().expect("initial_access_token").to_owned();
    let rp = Rp::start().await;
    let discovery = server.discovery().await;
    let jwks = server.jwks().await;
    Dyn { server, rp, token, discovery, jwks }
}

impl Dyn {
    /// POSTs `body` as JSON to the registration endpoint, with `token` as Bearer when given.
    async fn register_raw(&self, token: Option<&str>, body: &Value) -> Resp {
        let path = self.registration_path();
        let mut req = self
            .server
            .request(reqwest::Method::POST, &path)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.server.send(req).await
    }

    fn registration_path(&self) -> String {
        let endpoint = self.discovery["registration_endpoint"].as_str().expect("registration_endpoint");
        endpoint.strip_prefix(&self.server.issuer).expect("under the issuer").to_owned()
    }

    /// The suite's registration request (plans.md 1.3) with `extra` members: a private_key_jwt
    /// client with one inline RS256 key without kid, the callback, a contact.
    fn suite_body(&self, extra: Value) -> Value {
        let mut body = json!({
            "client_name": format!("OIDF Conformance Test {}", alnum10()),
            "grant_types": ["authorization_code"],
            "jwks": self.rp.jwks(false),
            "token_endpoint_auth_method": "private_key_jwt",
            "response_types": ["code"],
            "redirect_uris": [CALLBACK],
            "contacts": ["certification@oidf.org"],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    /// Registers `body` and runs the checks of plans.md 1.3 on the answer.
    async fn register(&self, body: &Value) -> Registered {
        let r = self.register_raw(Some(&self.token), body).await;
        assert_eq!(r.status, 201, "registration: {r:?}");
        assert_eq!(r.media_type(), "application/json", "{r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
        let json = r.json();
        assert!(json.get("error").is_none(), "{json}");
        let id = json["client_id"].as_str().expect("client_id").to_owned();
        let secret = json["client_secret"].as_str().map(str::to_owned);
        if secret.is_some() {
            assert!(json.get("client_secret_expires_at").is_some(), "client_secret_expires_at: {json}");
        }
        let access_token = json["registration_access_token"].as_str().expect("registration_access_token").to_owned();
        let uri = json["registration_client_uri"].as_str().expect("registration_client_uri");
        let path = uri.strip_prefix(&self.server.issuer).expect("under the issuer").to_owned();
        let redirect_uri = json["redirect_uris"][0].as_str().unwrap_or(CALLBACK).to_owned();
        let post = json["token_endpoint_auth_method"] == "client_secret_post";
        Registered { client: TestClient { id, secret, redirect_uri, post }, access_token, path, json }
    }

    /// A registration refused: 400, JSON, and the error `code`.
    async fn refused(&self, body: &Value, code: &str) {
        let r = self.register_raw(Some(&self.token), body).await;
        r.assert_oauth_error(400, code);
        assert_eq!(r.media_type(), "application/json", "{r:?}");
    }

    /// The suite's cleanup at the end of each dynamic module: DELETE with the registration
    /// access token, answered 204.
    async fn delete(&self, reg: &Registered) {
        let r = self.manage(reqwest::Method::DELETE, reg, &reg.access_token, None).await;
        assert_eq!(r.status, 204, "{r:?}");
    }

    async fn manage(&self, method: reqwest::Method, reg: &Registered, token: &str, body: Option<&Value>) -> Resp {
        let mut req = self.server.request(method, &reg.path).header("Authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        self.server.send(req).await
    }

    fn token_endpoint(&self) -> String {
        self.discovery["token_endpoint"].as_str().unwrap().to_owned()
    }

    /// The code exchange with a private_key_jwt assertion and no client_id, as the suite sends
    /// it (plans.md 7), with the token and ID token checks (2.4–2.6).
    async fn redeem(&self, reg: &Registered, code: &str, nonce: &str) -> Tokens {
        let assertion = self.rp.assertion(&reg.client.id, &self.token_endpoint(), self.server.now(), 60);
        let p = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", reg.client.redirect_uri.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let r = self.server.post_form("/token", &Auth::Nothing, &p).await;
        assert_eq!(r.status, 200, "token endpoint: {r:?}");
        let t = Tokens::from_json(r.json());
        check_id_token(
            t.id_token(),
            &self.server.issuer,
            &reg.client.id,
            Some(nonce),
            Some(&t.access_token),
            &self.jwks,
        );
        t
    }

    /// The standard happy path for a registered client: authorization (login and consent),
    /// callback checks (2.3), then the exchange.
    async fn std_flow(&self, reg: &Registered, extra: &[(&str, &str)]) -> (Outcome, Tokens) {
        self.std_flow_in(&self.server.browser(), reg, extra).await
    }

    async fn std_flow_in(&self, browser: &Browser, reg: &Registered, extra: &[(&str, &str)]) -> (Outcome, Tokens) {
        let (state, nonce) = (alnum10(), alnum10());
        let mut p = auth_params(&reg.client, "openid", &state, &nonce);
        p.extend_from_slice(extra);
        let o = browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
        assert_eq!(o.target, reg.client.redirect_uri.split('?').next().unwrap(), "{o:?}");
        assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
        let code = o.code();
        let t = self.redeem(reg, &code, &nonce).await;
        (o, t)
    }
}

// ---- Plan oidcc-dynamic-certification-test-plan (plans.md 7) ----

/// 7.2 row 9: discovery, dynamic variant: the registration endpoint, private_key_jwt, and (for
/// the modules that skip without them) pairwise subjects and signed userinfo.
#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let d = dyn_op().await;
    let reg = d.discovery["registration_endpoint"].as_str().expect("registration_endpoint");
    assert_eq!(reg, format!("{}/register", d.server.issuer));
    let methods = d.discovery["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(
        methods.iter().any(|m| m == "private_key_jwt") && methods.iter().any(|m| m == "client_secret_jwt"),
        "{methods:?}"
    );
    let subjects = d.discovery["subject_types_supported"].as_array().unwrap();
    assert!(subjects.iter().any(|s| s == "public") && subjects.iter().any(|s| s == "pairwise"), "{subjects:?}");
    let userinfo = d.discovery["userinfo_signing_alg_values_supported"].as_array().expect("userinfo algs");
    assert!(userinfo.iter().any(|a| a == "RS256"), "{userinfo:?}");
}

/// 7.2 row 10: the happy path with a registered private_key_jwt client.
#[tokio::test]
async fn oidcc_server() {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({}))).await;
    assert_eq!(reg.json["token_endpoint_auth_method"], "private_key_jwt");
    assert!(reg.json.get("client_secret").is_none(), "a private_key_jwt client gets no secret: {}", reg.json);
    let (_, t) = d.std_flow(&reg, &[]).await;
    assert_eq!(d.server.userinfo(&t.access_token).await.status, 200);
    d.delete(&reg).await;
}

/// 7.1 row 1: an RS256 ID token with a kid.
#[tokio::test]
async fn oidcc_idtoken_rs256() {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ "id_token_signed_response_alg": "RS256" }))).await;
    assert_eq!(reg.json["id_token_signed_response_alg"], "RS256");
    let (_, t) = d.std_flow(&reg, &[]).await;
    let h = jwt_header(t.id_token());
    assert_eq!(h["alg"], "RS256", "{h}");
    assert!(h["kid"].as_str().is_some_and(|k| !k.is_empty()), "kid: {h}");
    d.delete(&reg).await;
}

/// 7.1 row 2: unsigned ID tokens are never issued, so the registration asking for them is
/// refused with invalid_client_metadata (the module's accepted alternative to issuing them).
#[tokio::test]
async fn oidcc_idtoken_unsigned() {
    let d = dyn_op().await;
    d.refused(&d.suite_body(json!({ "id_token_signed_response_alg": "none" })), "invalid_client_metadata").await;
    let algs = d.discovery["id_token_signing_alg_values_supported"].as_array().unwrap();
    assert!(!algs.iter().any(|a| a == "none"), "{algs:?}");
}

/// 7.1 row 3: userinfo as a JWT signed RS256 with the OP's key, for its client, no nonce.
#[tokio::test]
async fn oidcc_userinfo_rs256() {
    let d = dyn_op().await;
    let algs = d.discovery["userinfo_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.iter().any(|a| a == "RS256"), "{algs:?}");
    let reg = d.register(&d.suite_body(json!({ "userinfo_signed_response_alg": "RS256" }))).await;
    assert_eq!(reg.json["userinfo_signed_response_alg"], "RS256");
    let (_, t) = d.std_flow(&reg, &[]).await;
    let r = d.server.userinfo(&t.access_token).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/jwt", "{r:?}");
    assert_eq!(verify_rs256(&r.body, &d.jwks)["alg"], "RS256");
    let c = jwt_claims(&r.body);
    assert_eq!(c["iss"], d.server.issuer);
    assert_eq!(c["aud"], json!(reg.client.id));
    assert!(c.get("nonce").is_none(), "{c}");
    assert_eq!(c["sub"], t.id_claims()["sub"], "{c}");
    d.delete(&reg).await;
}

/// 7.1 row 4: two registered redirect URIs and none in the request: an error page, never a
/// redirect.
#[tokio::test]
async fn oidcc_ensure_redirect_uri_in_authorization_request() {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ "redirect_uris": [CALLBACK, "https://example.org/redirect"] }))).await;
    let p = [("client_id", reg.client.id.as_str()), ("response_type", "code"), ("scope", "openid"), ("state", "s")];
    d.server.browser().authorize(&p).await.assert_error_page();
    d.delete(&reg).await;
}

const CALLBACK_QUERY: &str = "https://rp.example.com/callback?bar=foo";

/// 7.1 row 5: a registered redirect URI with a query keeps it in the callback.
#[tokio::test]
async fn oidcc_redirect_uri_query_ok() {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ "redirect_uris": [CALLBACK_QUERY] }))).await;
    assert_eq!(reg.client.redirect_uri, CALLBACK_QUERY);
    let (o, _) = d.std_flow(&reg, &[]).await;
    assert_eq!(o.param("bar"), Some("foo"), "the registered query is kept: {o:?}");
    d.delete(&reg).await;
}

/// 7.1 rows 6 and 7: a client registered with `registered` asks for `...callback?foo=bar`:
/// an error page, never a redirect.
async fn other_query_is_refused(registered: &str) {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ "redirect_uris": [registered] }))).await;
    let p: Vec<_> = auth_params(&reg.client, "openid", "s", "n")
        .into_iter()
        .map(|(k, v)| if k == "redirect_uri" { (k, "https://rp.example.com/callback?foo=bar") } else { (k, v) })
        .collect();
    d.server.browser().authorize(&p).await.assert_error_page();
    d.delete(&reg).await;
}

/// 7.1 row 6: another query than the registered one.
#[tokio::test]
async fn oidcc_redirect_uri_query_mismatch() {
    other_query_is_refused(CALLBACK_QUERY).await;
}

/// 7.1 row 7: a query added to the registered redirect URI.
#[tokio::test]
async fn oidcc_redirect_uri_query_added() {
    other_query_is_refused(CALLBACK).await;
}

/// 7.1 row 8: a redirect URI with a fragment is refused at registration.
#[tokio::test]
async fn oidcc_redirect_uri_regfrag() {
    let d = dyn_op().await;
    let body = d.suite_body(json!({ "redirect_uris": ["https://rp.example.com/callback#foobar"] }));
    d.refused(&body, "invalid_redirect_uri").await;
}

/// 7.2 rows 11–13: logo, policy and terms registered, echoed, and the sign-in goes on (the
/// consent page links the policy and the terms).
async fn registration_with_link(member: &str, url: &str) {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ member: url }))).await;
    assert_eq!(reg.json[member], url, "echoed: {}", reg.json);
    let (state, nonce) = (alnum10(), alnum10());
    let p = auth_params(&reg.client, "openid", &state, &nonce);
    let browser = d.server.browser();
    let login = browser.authorize(&p).await;
    let login = if login.is_redirect() { browser.follow(&login).await } else { login };
    assert!(login_form(&login).is_some(), "a login page, not an error: {login:?}");
    let consent = browser.login(&login, USER, PASSWORD).await;
    let consent = if consent.is_redirect() { browser.follow(&consent).await } else { consent };
    assert!(consent_form(&consent).is_some(), "{consent:?}");
    if member != "logo_uri" {
        let links = tags(&consent.body, "a");
        assert!(
            links.iter().any(|(_, a)| a.get("href").map(String::as_str) == Some(url)),
            "links {member}: {consent:?}"
        );
    }
    let o = browser.complete(browser.consent(&consent, true).await, None, Decision::NotExpected).await;
    assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
    d.delete(&reg).await;
}

#[tokio::test]
async fn oidcc_registration_logo_uri() {
    registration_with_link("logo_uri", "https://rp.example.com/logo.png").await;
}

#[tokio::test]
async fn oidcc_registration_policy_uri() {
    registration_with_link("policy_uri", "https://rp.example.com/policy").await;
}

#[tokio::test]
async fn oidcc_registration_tos_uri() {
    registration_with_link("tos_uri", "https://rp.example.com/tos").await;
}

/// 7.2 row 14: keys by `jwks_uri` (a thumbprint kid), fetched by the OP for the assertion.
#[tokio::test]
async fn oidcc_registration_jwks_uri() {
    let d = dyn_op().await;
    let mut body = d.suite_body(json!({ "jwks_uri": d.rp.jwks_uri() }));
    body.as_object_mut().unwrap().remove("jwks");
    let reg = d.register(&body).await;
    assert_eq!(reg.json["jwks_uri"], json!(d.rp.jwks_uri()));
    d.std_flow(&reg, &[]).await;
    assert!(d.rp.jwks_reads() > 0, "the OP read the client's keys");
    d.delete(&reg).await;
}

/// 7.2 row 15: pairwise with a sector identifier document that lists the redirect URI.
#[tokio::test]
async fn oidcc_registration_sector_uri() {
    let d = dyn_op().await;
    let sector = d.rp.serve_doc(json!([CALLBACK]));
    let reg = d.register(&d.suite_body(json!({ "subject_type": "pairwise", "sector_identifier_uri": sector }))).await;
    assert_eq!(reg.json["subject_type"], "pairwise");
    assert_eq!(reg.json["sector_identifier_uri"], json!(sector));
    d.delete(&reg).await;
}

/// 7.2 row 16: a sector identifier document that does not list the redirect URI.
#[tokio::test]
async fn oidcc_registration_sector_bad() {
    let d = dyn_op().await;
    let sector = d.rp.serve_doc(json!(["https://example.com/op"]));
    let body = d.suite_body(json!({ "subject_type": "pairwise", "sector_identifier_uri": sector }));
    d.refused(&body, "invalid_client_metadata").await;
    // Nor one that cannot be read.
    let missing = format!("{}/doc/none", d.rp.url);
    let body = d.suite_body(json!({ "subject_type": "pairwise", "sector_identifier_uri": missing }));
    d.refused(&body, "invalid_client_metadata").await;
}

// ---- Plan oidcc-3rdparty-init-login-certification-test-plan (plans.md 12) ----

/// 12 row 1: `initiate_login_uri` echoed by the registration and by the RFC 7592 read.
#[tokio::test]
async fn oidcc_3rd_party_init_login() {
    let d = dyn_op().await;
    let uri = "https://rp.example.com/initiate_login";
    let reg = d.register(&d.suite_body(json!({ "initiate_login_uri": uri }))).await;
    assert_eq!(reg.json["initiate_login_uri"], uri);
    let r = d.manage(reqwest::Method::GET, &reg, &reg.access_token, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json");
    assert_eq!(r.json()["initiate_login_uri"], uri);
    d.delete(&reg).await;
}

/// 12 row 2: an http `initiate_login_uri` is refused with invalid_client_metadata.
#[tokio::test]
async fn oidcc_3rd_party_init_login_nohttps() {
    let d = dyn_op().await;
    let body = d.suite_body(json!({ "initiate_login_uri": "http://rp.example.com/initiate_login" }));
    d.refused(&body, "invalid_client_metadata").await;
}

// ---- RFC 7591 and RFC 7592 beyond the suite ----

/// RFC 7591 §3: without an initial access token, or with a wrong or expired one, nothing is
/// registered (401, a Bearer challenge); the token is kept only as a hash.
#[tokio::test]
async fn registration_needs_a_valid_initial_access_token() {
    let d = dyn_op().await;
    let body = d.suite_body(json!({}));
    let r = d.register_raw(None, &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{r:?}");
    let r = d.register_raw(Some("not-a-token"), &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json()["error"], "invalid_token");
    let stored = d.server.db_strings("SELECT token_hash FROM initial_access_tokens");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], d.token, "only the hash is kept");
    // The token works until it expires, for as many registrations as it is asked for.
    d.register(&body).await;
    d.register(&body).await;
    d.server.advance(3601);
    let r = d.register_raw(Some(&d.token), &body).await;
    assert_eq!(r.status, 401, "expired: {r:?}");
    let none = d.server.cli_raw(&["clients", "token", "--expires", "soon"], None);
    assert!(!none.0, "a duration it cannot read is refused: {none:?}");
}

/// `dynamic_registration.open`: anyone may register, no token needed.
#[tokio::test]
async fn open_registration_takes_anyone() {
    let d = dyn_op_with(&[("LATCHKEY_DYNAMIC_REGISTRATION_OPEN", "true")]).await;
    let r = d.register_raw(None, &d.suite_body(json!({ "token_endpoint_auth_method": "client_secret_basic" }))).await;
    assert_eq!(r.status, 201, "{r:?}");
    let v = r.json();
    assert!(v["client_secret"].as_str().is_some_and(|s| s.len() >= 43), "{v}");
    assert_eq!(v["client_secret_expires_at"], 0);
}

/// RFC 7591 §2: each field is checked, with the error its definition calls for; a member the
/// provider does not know is ignored.
#[tokio::test]
async fn registration_checks_every_field() {
    let d = dyn_op().await;
    for (member, value, code) in [
        ("redirect_uris", json!([]), "invalid_redirect_uri"),
        ("redirect_uris", json!(["http://rp.example.com/cb"]), "invalid_redirect_uri"),
        ("redirect_uris", json!(["javascript:alert(1)"]), "invalid_redirect_uri"),
        ("response_types", json!(["code id_token"]), "invalid_client_metadata"),
        ("grant_types", json!(["implicit"]), "invalid_client_metadata"),
        ("token_endpoint_auth_method", json!("client_secret_hmac"), "invalid_client_metadata"),
        ("token_endpoint_auth_signing_alg", json!("none"), "invalid_client_metadata"),
        // The suite's body registers private_key_jwt: an HMAC does not fit it.
        ("token_endpoint_auth_signing_alg", json!("HS256"), "invalid_client_metadata"),
        ("userinfo_signed_response_alg", json!("none"), "invalid_client_metadata"),
        ("request_object_signing_alg", json!("HS256"), "invalid_client_metadata"),
        ("jwks", json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] }), "invalid_client_metadata"),
        ("subject_type", json!("anonymous"), "invalid_client_metadata"),
        ("default_max_age", json!("1 hour"), "invalid_client_metadata"),
        ("post_logout_redirect_uris", json!(["https://rp.example.com/out#x"]), "invalid_client_metadata"),
    ] {
        let r = d.register_raw(Some(&d.token), &d.suite_body(json!({ member: value }))).await;
        r.assert_oauth_error(400, code);
    }
    // Pairwise across two hosts with no sector identifier: no one sector.
    let two = d.suite_body(json!({ "subject_type": "pairwise", "redirect_uris": [CALLBACK, CALLBACK2] }));
    d.refused(&two, "invalid_client_metadata").await;
    // Not JSON at all.
    let r = d
        .server
        .send(
            d.server
                .request(reqwest::Method::POST, "/register")
                .header("Authorization", format!("Bearer {}", d.token))
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await;
    r.assert_oauth_error(400, "invalid_client_metadata");
    let reg = d.register(&d.suite_body(json!({ "software_statement_unknown": 1, "default_max_age": 600 }))).await;
    assert!(reg.json.get("software_statement_unknown").is_none(), "unknown members are ignored");
    assert_eq!(reg.json["default_max_age"], 600);
}

/// RFC 7592: the registration access token reads, replaces and deletes its one registration;
/// any other token, and any token for another client, is refused alike.
#[tokio::test]
async fn registration_is_read_replaced_and_deleted_with_its_token() {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ "token_endpoint_auth_method": "client_secret_basic" }))).await;
    let other = d.register(&d.suite_body(json!({}))).await;
    let hashes = d.server.db_strings("SELECT registration_token_hash FROM clients");
    assert!(!hashes.contains(&reg.access_token), "only the hash of the registration token is kept");
    // Read.
    let r = d.manage(reqwest::Method::GET, &reg, &reg.access_token, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["client_id"], json!(reg.client.id));
    assert!(r.json().get("client_secret").is_none(), "the secret is shown only once");
    for wrong in ["nope", other.access_token.as_str()] {
        let r = d.manage(reqwest::Method::GET, &reg, wrong, None).await;
        assert_eq!(r.status, 401, "{r:?}");
    }
    // Replace: the body is whole, client_id must match, the server's own members are refused.
    let mut update = d.suite_body(json!({
        "client_id": reg.client.id, "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": [CALLBACK2], "client_name": "Renamed",
    }));
    let r = d.manage(reqwest::Method::PUT, &reg, &reg.access_token, Some(&update)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["redirect_uris"], json!([CALLBACK2]));
    assert_eq!(r.json()["client_name"], "Renamed");
    assert!(r.json().get("client_secret").is_none(), "the client keeps its secret");
    let shown = d.server.cli(&["clients", "show", &reg.client.id, "--json"]);
    assert_eq!(shown["redirect_uris"], json!([CALLBACK2]), "{shown}");
    update["client_id"] = json!(other.client.id);
    let r = d.manage(reqwest::Method::PUT, &reg, &reg.access_token, Some(&update)).await;
    r.assert_oauth_error(400, "invalid_request");
    update["client_id"] = json!(reg.client.id);
    update["registration_access_token"] = json!(reg.access_token);
    let r = d.manage(reqwest::Method::PUT, &reg, &reg.access_token, Some(&update)).await;
    r.assert_oauth_error(400, "invalid_request");
    // The secret still authenticates: client_credentials is not allowed, so the grant is refused
    // for the grant, not for the client.
    let client = TestClient { redirect_uri: CALLBACK2.into(), ..reg.client.clone() };
    let r = d.server.token(&client.auth(), &[("grant_type", "client_credentials")]).await;
    assert_ne!(r.status, 401, "the client still authenticates: {r:?}");
    // Delete: 204, then the token and the client are gone.
    d.delete(&reg).await;
    let r = d.manage(reqwest::Method::GET, &reg, &reg.access_token, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = d.server.token(&client.auth(), &[("grant_type", "client_credentials")]).await;
    r.assert_invalid_client();
    // A client the operator added has no registration token to manage it with.
    let cli = d.server.confidential_client();
    let as_reg = Registered { path: format!("/register/{}", cli.id), ..reg };
    let r = d.manage(reqwest::Method::GET, &as_reg, "anything", None).await;
    assert_eq!(r.status, 401, "{r:?}");
}

/// `client_secret_jwt` at the registration endpoint (OIDC Core §9, Registration §2): the secret
/// issued is long enough for HS512, the registered algorithm is echoed and held to, and the
/// client completes the code flow with an HS256 assertion MAC'd with its secret. A signature
/// algorithm for it is refused; a replacement keeps its secret; a client_secret_basic
/// registration moved to client_secret_jwt is issued a new one.
#[tokio::test]
async fn a_registered_client_secret_jwt_client_completes_the_code_flow() {
    let d = dyn_op().await;
    let hs256 = |secret: &str, claims: &Value| {
        let mut h = josekit::jws::JwsHeader::new();
        h.set_token_type("JWT");
        let signer = josekit::jws::HS256.signer_from_bytes(secret.as_bytes()).unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &h, &signer).unwrap()
    };
    let assertion = |client: &TestClient| {
        let now = d.server.now();
        let aud = d.token_endpoint();
        hs256(
            client.secret(),
            &json!({ "iss": client.id, "sub": client.id, "aud": aud, "jti": alnum10(), "iat": now, "exp": now + 60 }),
        )
    };
    let secret_jwt = |extra: Value| {
        let mut body = d.suite_body(json!({ "token_endpoint_auth_method": "client_secret_jwt" }));
        body.as_object_mut().unwrap().remove("jwks");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    d.refused(&secret_jwt(json!({ "token_endpoint_auth_signing_alg": "RS256" })), "invalid_client_metadata").await;
    let reg = d.register(&secret_jwt(json!({ "token_endpoint_auth_signing_alg": "HS256" }))).await;
    assert_eq!(reg.json["token_endpoint_auth_method"], "client_secret_jwt", "{}", reg.json);
    assert_eq!(reg.json["token_endpoint_auth_signing_alg"], "HS256", "{}", reg.json);
    assert!(reg.client.secret().len() >= 64, "{}", reg.json);

    let (state, nonce) = (alnum10(), alnum10());
    let browser = d.server.browser();
    let p = auth_params(&reg.client, "openid", &state, &nonce);
    let o = browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    let code = o.code();
    // The RP's RS256 key is no credential of this client.
    let rs256 = d.rp.assertion(&reg.client.id, &d.token_endpoint(), d.server.now(), 60);
    let p = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", rs256.as_str()),
    ];
    d.server.post_form("/token", &Auth::Nothing, &p).await.assert_invalid_client();
    let r = exchange_with(&d, &reg.client, &code, &assertion(&reg.client)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = Tokens::from_json(r.json());
    check_id_token(t.id_token(), &d.server.issuer, &reg.client.id, Some(&nonce), Some(&t.access_token), &d.jwks);

    // RFC 7592 replacement that stays client_secret_jwt: the secret stays.
    let mut update = secret_jwt(json!({ "client_id": reg.client.id, "client_name": "Renamed" }));
    update.as_object_mut().unwrap().remove("token_endpoint_auth_signing_alg");
    let r = d.manage(reqwest::Method::PUT, &reg, &reg.access_token, Some(&update)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json().get("client_secret").is_none(), "{r:?}");
    // A client_secret_basic registration moved to client_secret_jwt: its old secret is only a
    // hash, so it is issued a new one, which MACs its assertions.
    let basic = d.register(&d.suite_body(json!({ "token_endpoint_auth_method": "client_secret_basic" }))).await;
    let moved = secret_jwt(json!({ "client_id": basic.client.id }));
    let r = d.manage(reqwest::Method::PUT, &basic, &basic.access_token, Some(&moved)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let secret = r.json()["client_secret"].as_str().map(str::to_owned);
    assert!(secret.as_ref().is_some_and(|s| s.len() >= 64 && s != basic.client.secret()), "{r:?}");
    let moved = TestClient { secret, ..basic.client.clone() };
    let o = browser.authorize_and_complete(&auth_params(&moved, "openid", "s", "n"), None, Decision::Allow).await;
    let r = exchange_with(&d, &moved, &o.code(), &assertion(&moved)).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// The code exchange authenticated by `assertion` alone (no client_id, as the suite sends it).
async fn exchange_with(d: &Dyn, client: &TestClient, code: &str, assertion: &str) -> Resp {
    let p = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    d.server.post_form("/token", &Auth::Nothing, &p).await
}

/// A node-oidc-provider-style smoke test: a client registered at the endpoint, with its keys
/// inline, signs its request object and authenticates with `private_key_jwt`, and gets through
/// the code flow to userinfo.
#[tokio::test]
async fn a_registered_client_signs_in_with_private_key_jwt_and_a_signed_request_object() {
    let d = dyn_op().await;
    let reg = d
        .register(&d.suite_body(json!({
            "request_object_signing_alg": "RS256",
            "grant_types": ["authorization_code", "refresh_token"],
        })))
        .await;
    assert_eq!(reg.json["request_object_signing_alg"], "RS256");
    let (state, nonce) = (alnum10(), alnum10());
    let object = d.rp.sign(
        &json!({
            "iss": reg.client.id, "aud": d.server.issuer, "client_id": reg.client.id, "redirect_uri": CALLBACK,
            "response_type": "code", "scope": "openid email", "state": state, "nonce": nonce,
        }),
        false,
    );
    let p = [
        ("client_id", reg.client.id.as_str()),
        ("request", object.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let o = d.server.browser().authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(o.target, CALLBACK, "{o:?}");
    assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
    let t = d.redeem(&reg, &o.code(), &nonce).await;
    let u = d.server.userinfo(&t.access_token).await;
    assert_eq!(u.status, 200, "{u:?}");
    assert_eq!(u.json()["sub"], t.id_claims()["sub"]);
    d.delete(&reg).await;
}

// ---- Plans oidcc-backchannel-rp-initiated-logout (plans.md 10) and
// ---- oidcc-frontchannel-rp-initiated-logout (plans.md 9) ----

/// The suite's 90-character logout state (plans.md 8): letters, digits, punctuation.
fn logout_state() -> String {
    let letters: String = ('a'..='z').chain('A'..='Z').take(50).collect();
    format!("{letters}0123456789!\"#$%&'()*,-./:<=>?@[\\]^_`{{|}}~")
}

/// RP-initiated logout in `browser` with the ID token as hint, the post-logout URI and state.
async fn end_session(browser: &Browser, t: &Tokens, state: &str) -> Resp {
    let p = [("id_token_hint", t.id_token()), ("post_logout_redirect_uri", POST_LOGOUT), ("state", state)];
    browser.get(&format!("/logout?{}", encode_form(&p))).await
}

/// After logout, `prompt=none` must fail: the session really ended (plans.md 8 row 2).
async fn assert_signed_out(browser: &Browser, reg: &Registered, issuer: &str) {
    let mut p = auth_params(&reg.client, "openid", "pn-state", "pn-nonce");
    p.push(("prompt", "none"));
    let o = browser.authorize_and_complete(&p, None, Decision::NotExpected).await;
    assert_eq!(check_authorization_error(&o, Some("pn-state"), issuer), "login_required");
}

/// The post-logout redirect carries exactly the state sent (plans.md 8 row 2).
fn assert_post_logout(url: &str, state: &str) {
    let u = url::Url::parse(url).unwrap();
    assert!(url.starts_with(POST_LOGOUT), "{url}");
    let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    assert_eq!(q, vec![("state".to_owned(), state.to_owned())], "only the state: {url}");
}

/// Waits (up to 60 s) until the endpoint `name` has accepted `n` logout tokens; returns them.
/// The clock moves only past a retry that `name` made necessary, never by more than the lease
/// on a delivery (30 s): a delivery still in flight (to this endpoint or another) is never
/// taken again by a poll, which would send it twice.
async fn await_logout_tokens(d: &Dyn, name: &str, n: usize) -> Vec<String> {
    let mut refused = 0;
    for _ in 0..600 {
        let got = d.rp.accepted_logout_tokens(name);
        if got.len() >= n {
            return got;
        }
        refused = past_retries(d, name, refused);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no logout token at {name}: {:?}", d.rp.logouts(name));
}

/// When `name` has refused more deliveries than `seen`, moves the clock past the retry delay
/// the newest refusal earned (2, 4, 8, 16 then 32 s), once; returns the refusals now seen.
fn past_retries(d: &Dyn, name: &str, seen: usize) -> usize {
    let refused = d.rp.logouts(name).iter().filter(|(_, _, status)| *status != 200).count();
    if refused > seen {
        d.server.advance((1 << refused.min(5)) + 1);
    }
    refused
}

/// Waits (up to 60 s) until the delivery queue is empty: every logout delivered or given up,
/// none in flight.
async fn await_empty_queue(d: &Dyn) {
    for _ in 0..600 {
        if d.server.db_strings("SELECT id FROM logout_deliveries").is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("logout deliveries left: {:?}", d.server.db_strings("SELECT id FROM logout_deliveries"));
}

/// The logout token checks of plans.md 10 row 2, against the ID token it ends.
fn check_logout_token(d: &Dyn, token: &str, client_id: &str, id_claims: &Value) {
    assert_eq!(jwt_header(token)["typ"], "logout+jwt", "{}", jwt_header(token));
    verify_rs256(token, &d.jwks);
    let c = jwt_claims(token);
    assert_eq!(c["iss"], d.server.issuer);
    assert!(c["aud"] == client_id || c["aud"].as_array().is_some_and(|a| a.iter().any(|x| x == client_id)), "{c}");
    let iat = c["iat"].as_i64().expect("iat");
    let now = d.server.now();
    assert!(iat <= now + 5 && iat > now - 86_400, "iat: {c}");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()), "jti: {c}");
    assert_eq!(c["events"], json!({ "http://schemas.openid.net/event/backchannel-logout": {} }), "{c}");
    assert_eq!(c["sub"], id_claims["sub"], "{c}");
    assert_eq!(c["sid"], id_claims["sid"], "{c}");
    assert!(c.get("nonce").is_none(), "no nonce: {c}");
}

/// plans.md 10 row 1.
#[tokio::test]
async fn oidcc_backchannel_logout_discovery_endpoint_verification() {
    let d = dyn_op().await;
    assert_eq!(d.discovery["backchannel_logout_supported"], true);
    assert_eq!(d.discovery["backchannel_logout_session_supported"], true);
    assert!(d.discovery["end_session_endpoint"].as_str().is_some());
}

/// plans.md 10 row 2: a logout token POSTed to the client, the redirect with the state, and the
/// session gone.
#[tokio::test]
async fn oidcc_backchannel_rp_initiated_logout() {
    let d = dyn_op().await;
    let reg = d
        .register(&d.suite_body(json!({
            "backchannel_logout_uri": d.rp.backchannel_uri("bc"),
            "backchannel_logout_session_required": true,
            "post_logout_redirect_uris": [POST_LOGOUT],
        })))
        .await;
    assert_eq!(reg.json["backchannel_logout_session_required"], true);
    let browser = d.server.browser();
    let (_, t) = d.std_flow_in(&browser, &reg, &[]).await;
    let state = logout_state();
    let r = end_session(&browser, &t, &state).await;
    assert!(r.is_redirect(), "{r:?}");
    assert_post_logout(r.location().unwrap(), &state);
    let tokens = await_logout_tokens(&d, "bc", 1).await;
    assert_eq!(tokens.len(), 1);
    check_logout_token(&d, &tokens[0], &reg.client.id, &t.id_claims());
    let (media, body, _) = &d.rp.logouts("bc")[0];
    assert_eq!(media, "application/x-www-form-urlencoded");
    assert!(
        url::form_urlencoded::parse(body.as_bytes()).all(|(k, _)| k == "logout_token"),
        "only logout_token: {body}"
    );
    assert_signed_out(&browser, &reg, &d.server.issuer).await;
    d.delete(&reg).await;
}

/// plans.md 9 row 1.
#[tokio::test]
async fn oidcc_frontchannel_logout_discovery_endpoint_verification() {
    let d = dyn_op().await;
    assert_eq!(d.discovery["frontchannel_logout_supported"], true);
    assert_eq!(d.discovery["frontchannel_logout_session_supported"], true);
}

/// plans.md 9 row 2: the signed-out page frames the client's `frontchannel_logout_uri` with
/// `iss` and the ID token's `sid`, and goes on to the post-logout URI with the state.
#[tokio::test]
async fn oidcc_frontchannel_rp_initiated_logout() {
    let d = dyn_op().await;
    let front = "https://rp.example.com/frontchannel_logout";
    let reg = d
        .register(&d.suite_body(json!({
            "frontchannel_logout_uri": front,
            "frontchannel_logout_session_required": true,
            "post_logout_redirect_uris": [POST_LOGOUT],
        })))
        .await;
    let browser = d.server.browser();
    let (_, t) = d.std_flow_in(&browser, &reg, &[]).await;
    let sid = t.id_claims()["sid"].as_str().expect("the ID token carries sid").to_owned();
    let state = logout_state();
    let r = end_session(&browser, &t, &state).await;
    assert_eq!(r.status, 200, "{r:?}");
    let frames = tags(&r.body, "iframe");
    assert_eq!(frames.len(), 1, "{r:?}");
    let src = url::Url::parse(&frames[0].1["src"]).unwrap();
    assert!(src.as_str().starts_with(front), "{src}");
    let q: Vec<(String, String)> = src.query_pairs().into_owned().collect();
    assert_eq!(q, vec![("iss".to_owned(), d.server.issuer.clone()), ("sid".to_owned(), sid)], "{src}");
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-src https://rp.example.com"), "{csp}");
    let refresh = tags(&r.body, "meta").into_iter().find(|(_, a)| a.get("http-equiv").is_some_and(|v| v == "refresh"));
    let content = refresh.expect("the page goes on by itself").1["content"].clone();
    let next = content.split_once("url=").expect("a url").1;
    assert_post_logout(next, &state);
    assert_signed_out(&browser, &reg, &d.server.issuer).await;
    d.delete(&reg).await;
}

/// Back-Channel Logout 1.0 §2.5–§2.7 as the issue asks: every client of the session gets
/// exactly one valid logout token per logout, when the logout happens on another node than the
/// sign-in, and when a client's endpoint fails twice first (it is tried again).
#[tokio::test]
async fn back_channel_logout_reaches_every_client_once_from_any_node_despite_failures() {
    // Two nodes of one deployment share the issuer (as behind a load balancer).
    let d = dyn_op_with(&[("LATCHKEY_ISSUER", "http://localhost:9")]).await;
    let body = |name: &str, callback: &str| {
        d.suite_body(json!({
            "backchannel_logout_uri": d.rp.backchannel_uri(name),
            "redirect_uris": [callback],
            "post_logout_redirect_uris": [POST_LOGOUT],
        }))
    };
    let a = d.register(&body("a", CALLBACK)).await;
    let b = d.register(&body("b", CALLBACK2)).await;
    let quiet = d.register(&d.suite_body(json!({}))).await; // registered no back-channel URI
    // A client the operator added with its back-channel URI is told like the others.
    let cli_uri = d.rp.backchannel_uri("cli");
    let cli = d
        .server
        .add_client("operator's", &["--redirect-uri", CALLBACK, "--first-party", "--backchannel-logout-uri", &cli_uri]);
    let browser = d.server.browser();
    let (_, ta) = d.std_flow_in(&browser, &a, &[]).await;
    let (_, tb) = d.std_flow_in(&browser, &b, &[]).await;
    d.std_flow_in(&browser, &quiet, &[]).await;
    let tc = d.server.code_flow(&browser, &cli, "openid").await;
    d.rp.fail_first("a", 2);
    // The logout lands on another node of the deployment.
    let peer = d.server.start_peer();
    let on_peer = browser.on(&peer);
    let r = end_session(&on_peer, &ta, "s").await;
    assert!(r.is_redirect(), "{r:?}");
    let got_b = await_logout_tokens(&d, "b", 1).await;
    let got_a = await_logout_tokens(&d, "a", 1).await;
    let got_cli = await_logout_tokens(&d, "cli", 1).await;
    // Once the queue is empty nothing is left to send: what arrived is all that will.
    await_empty_queue(&d).await;
    assert_eq!(d.rp.accepted_logout_tokens("a"), got_a, "exactly one for a");
    assert_eq!(d.rp.accepted_logout_tokens("b"), got_b, "exactly one for b");
    assert_eq!(d.rp.accepted_logout_tokens("cli"), got_cli, "exactly one for the operator's client");
    check_logout_token(&d, &got_cli[0], &cli.id, &tc.id_claims());
    assert_eq!(d.rp.logouts("a").len(), 3, "a failed twice, then took it: {:?}", d.rp.logouts("a"));
    check_logout_token(&d, &got_a[0], &a.client.id, &ta.id_claims());
    check_logout_token(&d, &got_b[0], &b.client.id, &tb.id_claims());
}

/// Back-Channel Logout §2.7: sessions ended by the operator (`users disable`) or by a password
/// reset (`users set-password`) are logged out at their clients too; an endpoint that never
/// takes the token is given up after its last try, with an audit event.
#[tokio::test]
async fn back_channel_logout_follows_disable_and_password_reset() {
    let d = dyn_op().await;
    let reg = d
        .register(&d.suite_body(json!({
            "backchannel_logout_uri": d.rp.backchannel_uri("op"),
            "post_logout_redirect_uris": [POST_LOGOUT],
        })))
        .await;
    let (_, t1) = d.std_flow(&reg, &[]).await;
    d.server.cli(&["users", "disable", USER, "--json"]);
    let tokens = await_logout_tokens(&d, "op", 1).await;
    check_logout_token(&d, &tokens[0], &reg.client.id, &t1.id_claims());
    d.server.cli(&["users", "enable", USER, "--json"]);
    let (_, t2) = d.std_flow(&reg, &[]).await;
    let new_password = "another long passphrase, freshly minted 42";
    let (ok, out, err) = d.server.cli_raw(&["users", "set-password", USER, "--password-stdin"], Some(new_password));
    assert!(ok, "{out}{err}");
    let tokens = await_logout_tokens(&d, "op", 2).await;
    check_logout_token(&d, &tokens[1], &reg.client.id, &t2.id_claims());
    // An endpoint that fails every time: tried six times, then given up and audited.
    d.rp.fail_first("op", usize::MAX);
    let browser = d.server.browser();
    let (state, nonce) = (alnum10(), alnum10());
    let p = auth_params(&reg.client, "openid", &state, &nonce);
    let o = browser.authorize_and_complete(&p, Some((USER, new_password)), Decision::Allow).await;
    let t3 = d.redeem(&reg, &o.code(), &nonce).await;
    assert!(end_session(&browser, &t3, "s").await.status < 500);
    let failed = || d.server.db_strings("SELECT kind FROM audit_events WHERE kind = 'logout.backchannel_failed'");
    let mut refused = 0;
    for _ in 0..600 {
        if !failed().is_empty() {
            break;
        }
        refused = past_retries(&d, "op", refused);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(failed().len(), 1, "given up once");
    assert_eq!(d.rp.logouts("op").len(), 2 + 6, "two delivered, then six tries");
    assert!(d.server.db_strings("SELECT id FROM logout_deliveries").is_empty());
}

// ---- Pairwise subjects and registered defaults (OIDC Core §8, Dynamic Registration §2) ----

/// Pairwise clients of different sectors see different `sub`s for one user, none of them the
/// account's id; ID token and userinfo agree; their `id_token_hint` still names the session (a
/// `prompt=none` sign-in, a logout without confirmation).
#[tokio::test]
async fn pairwise_subjects_differ_between_sectors_and_hints_still_name_the_user() {
    let d = dyn_op().await;
    let pairwise = |callback: &str| {
        d.suite_body(json!({
            "subject_type": "pairwise", "redirect_uris": [callback], "post_logout_redirect_uris": [POST_LOGOUT],
        }))
    };
    let a = d.register(&pairwise(CALLBACK)).await;
    let b = d.register(&pairwise(CALLBACK2)).await;
    let a2 = d.register(&pairwise("https://rp.example.com/other-callback")).await;
    let public = d.register(&d.suite_body(json!({ "redirect_uris": [CALLBACK] }))).await;
    let browser = d.server.browser();
    let (_, ta) = d.std_flow_in(&browser, &a, &[]).await;
    let (_, tb) = d.std_flow_in(&browser, &b, &[]).await;
    let (_, ta2) = d.std_flow_in(&browser, &a2, &[]).await;
    let (_, tp) = d.std_flow_in(&browser, &public, &[]).await;
    let sub = |t: &Tokens| t.id_claims()["sub"].as_str().unwrap().to_owned();
    let alice = d.server.cli(&["users", "show", USER, "--json"])["id"].as_str().unwrap().to_owned();
    assert_eq!(sub(&tp), alice, "a public client sees the account's id");
    assert_ne!(sub(&ta), alice);
    assert_ne!(sub(&ta), sub(&tb), "another sector, another sub");
    assert_eq!(sub(&ta), sub(&ta2), "one sector, one sub");
    assert_eq!(d.server.userinfo(&ta.access_token).await.json()["sub"], json!(sub(&ta)));
    // prompt=none with A's hint signs in silently: the hint names this session's user.
    let (state, nonce) = (alnum10(), alnum10());
    let mut p = auth_params(&a.client, "openid", &state, &nonce);
    p.push(("prompt", "none"));
    p.push(("id_token_hint", ta.id_token()));
    browser.authorize_and_complete(&p, None, Decision::NotExpected).await.code();
    // And logout with it needs no confirmation.
    let r = end_session(&browser, &ta, "bye").await;
    assert!(r.is_redirect(), "{r:?}");
    assert_post_logout(r.location().unwrap(), "bye");
}

/// Dynamic Registration §2 `default_max_age`: a request without `max_age` is held to it.
#[tokio::test]
async fn default_max_age_asks_for_a_fresh_sign_in() {
    let d = dyn_op().await;
    let reg = d.register(&d.suite_body(json!({ "default_max_age": 60, "require_auth_time": true }))).await;
    assert_eq!(reg.json["require_auth_time"], true);
    let browser = d.server.browser();
    let (_, t) = d.std_flow_in(&browser, &reg, &[]).await;
    assert!(t.id_claims()["auth_time"].as_i64().is_some(), "auth_time is always sent");
    // How many times the person is asked to sign in for one authorization (the clock moves, so
    // the ID token checks, which read the real time, stay with the first flow).
    let logins = |extra: &'static [(&'static str, &'static str)]| {
        let browser = &browser;
        let reg = &reg;
        async move {
            let mut p = auth_params(&reg.client, "openid", "st", "nn");
            p.extend_from_slice(extra);
            let o = browser.authorize_and_complete(&p, Some((USER, PASSWORD)), Decision::Allow).await;
            o.code();
            o.logins
        }
    };
    assert_eq!(logins(&[]).await, 0, "within the minute, the session is enough");
    d.server.advance(120);
    assert_eq!(logins(&[]).await, 1, "older than default_max_age: sign in again");
    d.server.advance(120);
    assert_eq!(logins(&[("max_age", "3600")]).await, 0, "a max_age in the request wins over the default");
}
