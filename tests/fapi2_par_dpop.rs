//! Pushed authorization requests (RFC 9126), DPoP (RFC 9449) and the FAPI 2.0 Security Profile
//! per client, driven over HTTP as a client would: the `request_uri` used once and expiring by
//! the clock, DPoP proofs built here with josekit (independently of the server's code) and
//! refused for each broken part (a replayed `jti`, a wrong `htu`, a missing `ath`, ...), tokens
//! bound to the key at userinfo, introspection and refresh, and a FAPI 2.0 client refused what
//! the profile forbids (no PAR, no PKCE, `client_secret_basic`, RS256, no DPoP, an assertion
//! aimed at the token endpoint); and the plan's modules by row, among them the user cancelling
//! at the sign-in page, the `claims` parameter pushed, and an RS256 assertion from a PS256 key.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{ES256, JwsHeader, PS256, RS256};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const URN: &str = "urn:ietf:params:oauth:request_uri:";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A client's DPoP key (P-256) and what it signs.
struct DpopKey {
    pair: EcKeyPair,
}

impl DpopKey {
    fn new() -> DpopKey {
        DpopKey { pair: EcKeyPair::generate(EcCurve::P256).unwrap() }
    }

    fn public_jwk(&self) -> Value {
        serde_json::to_value(self.pair.to_jwk_public_key().as_ref()).unwrap()
    }

    /// The RFC 7638 thumbprint, computed here from the required members in order.
    fn jkt(&self) -> String {
        let j = self.public_jwk();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            j["crv"].as_str().unwrap(),
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for `method` at the server's `path`, with `ath` for `token` when given.
    fn proof(&self, server: &Server, method: &str, path: &str, token: Option<&str>) -> String {
        let mut claims = json!({ "jti": random_string(), "htm": method, "htu": server.url(path), "iat": server.now() });
        if let Some(t) = token {
            claims["ath"] = json!(b64(&Sha256::digest(t.as_bytes())));
        }
        self.sign(&self.header(), &claims)
    }

    fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk() })
    }

    /// `claims` under `header`, signed with this key whatever the header says.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let h = JwsHeader::from_map(header.as_object().unwrap().clone()).unwrap();
        let signer = ES256.signer_from_pem(self.pair.to_pem_private_key()).unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &h, &signer).unwrap()
    }
}

/// A `private_key_jwt` client's own key (P-256), registered as its JWK Set.
struct ClientKey {
    pair: EcKeyPair,
}

impl ClientKey {
    fn new() -> ClientKey {
        ClientKey { pair: EcKeyPair::generate(EcCurve::P256).unwrap() }
    }

    /// Writes the public JWK Set where `--jwks` reads it and returns the path.
    fn jwks_file(&self, server: &Server) -> String {
        let mut jwk = self.pair.to_jwk_public_key();
        jwk.set_key_id("k1");
        let set = json!({ "keys": [serde_json::to_value(jwk.as_ref()).unwrap()] });
        let path = server.data_dir.join(format!("jwks-{}.json", random_string().get(..8).unwrap()));
        std::fs::write(&path, set.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// A client assertion for `client_id` aimed at `aud`.
    fn assertion(&self, server: &Server, client_id: &str, aud: Value) -> String {
        let now = server.now();
        let claims = json!({ "iss": client_id, "sub": client_id, "aud": aud, "jti": random_string(), "iat": now, "exp": now + 60 });
        self.sign(&claims)
    }

    /// `claims` (a client assertion, a request object) signed ES256 under the registered kid.
    fn sign(&self, claims: &Value) -> String {
        let mut h = JwsHeader::new();
        h.set_key_id("k1");
        let signer = ES256.signer_from_pem(self.pair.to_pem_private_key()).unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &h, &signer).unwrap()
    }
}

/// POSTs a form to `path` with extra headers (DPoP, Authorization).
async fn post(server: &Server, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
    let mut req = server
        .request(reqwest::Method::POST, path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encode_form(params));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    server.send(req).await
}

/// GETs `path` with extra headers.
async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = server.request(reqwest::Method::GET, path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    server.send(req).await
}

/// The authorization parameters of a code flow for `client` with PKCE S256.
fn auth_params<'a>(client: &'a TestClient, pkce: &'a Pkce, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid email offline_access"),
        ("state", state),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
}

/// Pushes `params` for a client_secret_basic client; asserts 201 and returns the request_uri.
async fn push_basic(server: &Server, client: &TestClient, params: &[(&str, &str)]) -> String {
    let r = post(server, "/par", params, &[("Authorization", &basic(&client.id, client.secret()))]).await;
    assert_eq!(r.status, 201, "PAR: {r:?}");
    assert_eq!(r.media_type(), "application/json");
    assert!(r.header("cache-control").unwrap_or_default().contains("no-store"), "{r:?}");
    let v = r.json();
    assert_eq!(v["expires_in"], 60, "{v}");
    let uri = v["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with(URN), "{uri}");
    assert!(entropy_bits(&uri[URN.len()..]) > 96.0, "{uri}");
    uri
}

fn confidential_client(server: &Server, extra: &[&str]) -> TestClient {
    let mut args = vec!["--redirect-uri", CALLBACK, "--first-party"];
    args.extend_from_slice(extra);
    server.add_client("rp", &args)
}

#[tokio::test]
async fn discovery_advertises_par_and_dpop() {
    let server = Server::start();
    let d = server.discovery().await;
    assert_eq!(d["pushed_authorization_request_endpoint"], format!("{}/par", server.issuer));
    assert_eq!(d["require_pushed_authorization_requests"], false);
    assert_eq!(d["dpop_signing_alg_values_supported"], json!(["PS256", "ES256", "EdDSA"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let strict = Server::start_with(&[("LATCHKEY_REQUIRE_PAR", "true")]);
    assert_eq!(strict.discovery().await["require_pushed_authorization_requests"], true);
}

/// RFC 9126 §2, §4: the pushed request stands for the query, once; the browser that left the
/// page without signing in may come back with it (FAPI 2.0 note 3), a completed one may not.
#[tokio::test]
async fn par_request_uri_stands_for_the_pushed_request_once() {
    let server = Server::start();
    server.add_alice();
    let client = confidential_client(&server, &["--require-par"]);
    let browser = server.browser();
    let (pkce, state) = (Pkce::new(), random_string());
    let params = auth_params(&client, &pkce, &state);

    // Held to PAR: the plain request is refused at the redirect URI, with iss.
    let o = browser.authorize_and_complete(&params, None, Decision::NotExpected).await;
    assert_eq!(check_authorization_error(&o, Some(&state), &server.issuer), "invalid_request");

    let uri = push_basic(&server, &client, &params).await;
    let by_reference = [("client_id", client.id.as_str()), ("request_uri", uri.as_str())];
    // A first visit that does not sign in leaves the request_uri usable.
    let first = browser.authorize(&by_reference).await;
    assert!(first.is_redirect(), "{first:?}");
    // Query duplicates of pushed values are ignored: the pushed state comes back.
    let mut again: Vec<(&str, &str)> = by_reference.to_vec();
    again.extend([("state", "from-the-query"), ("response_type", "code")]);
    let o = browser.authorize_and_complete(&again, Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(o.param("state"), Some(state.as_str()));
    assert_eq!(o.param("iss"), Some(server.issuer.as_str()));
    let r = server.redeem(&client, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["token_type"], "Bearer");

    // Used: refused, even with a signed-in browser that would get a code at once.
    browser.authorize(&by_reference).await.assert_error_page();
    assert!(browser.authorize(&by_reference).await.body.contains("invalid_request_uri"));
}

#[tokio::test]
async fn par_request_uri_expires_by_the_clock() {
    let server = Server::start();
    server.add_alice();
    let client = confidential_client(&server, &[]);
    let browser = server.browser();
    let (pkce, state) = (Pkce::new(), random_string());
    let uri = push_basic(&server, &client, &auth_params(&client, &pkce, &state)).await;
    server.advance(61);
    let r = browser.authorize(&[("client_id", client.id.as_str()), ("request_uri", uri.as_str())]).await;
    r.assert_error_page();
    assert!(r.body.contains("invalid_request_uri"), "{r:?}");
}

/// RFC 9126 §2.1–2.3: what the PAR endpoint refuses, each with its error.
#[tokio::test]
async fn par_refusals() {
    let server = Server::start();
    server.add_alice();
    let client = confidential_client(&server, &[]);
    let other = confidential_client(&server, &[]);
    let (pkce, state) = (Pkce::new(), random_string());
    let params = auth_params(&client, &pkce, &state);
    let auth = basic(&client.id, client.secret());
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut p = params.clone();
        p.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        p.extend_from_slice(extra);
        p
    };

    // No client authentication, or a wrong one: invalid_client.
    post(&server, "/par", &params, &[]).await.assert_invalid_client();
    post(&server, "/par", &params, &[("Authorization", &basic(&client.id, "wrong"))]).await.assert_invalid_client();
    // A request_uri in the body (§2.1).
    let pushed_uri = with(&[("request_uri", "https://rp.example.com/r")]);
    post(&server, "/par", &pushed_uri, &[("Authorization", &auth)]).await.assert_oauth_error(400, "invalid_request");
    // The authorization endpoint's own checks, answered as JSON.
    let r = post(&server, "/par", &with(&[("response_type", "token")]), &[("Authorization", &auth)]).await;
    r.assert_oauth_error(400, "unsupported_response_type");
    let no_redirect: Vec<_> = params.iter().filter(|(k, _)| *k != "redirect_uri").cloned().collect();
    let r = post(&server, "/par", &no_redirect, &[("Authorization", &auth)]).await;
    r.assert_oauth_error(400, "invalid_request");
    let r = post(&server, "/par", &with(&[("code_challenge_method", "plain")]), &[("Authorization", &auth)]).await;
    r.assert_oauth_error(400, "invalid_request");
    // A client_id other than the authenticated client's.
    let r = post(&server, "/par", &with(&[("client_id", "someone-else")]), &[("Authorization", &auth)]).await;
    r.assert_oauth_error(400, "invalid_request");
    // Only POST (§2: 405 otherwise).
    let r = server.send(server.request(reqwest::Method::PUT, "/par")).await;
    assert_eq!(r.status, 405, "{r:?}");

    // A request_uri is bound to its client (§4).
    let uri = push_basic(&server, &client, &params).await;
    let r = server.browser().authorize(&[("client_id", other.id.as_str()), ("request_uri", uri.as_str())]).await;
    r.assert_error_page();
}

/// RFC 9126 §3: a request object may be pushed; its parameters are the request's.
#[tokio::test]
async fn par_accepts_a_signed_request_object() {
    let server = Server::start();
    server.add_alice();
    let key = ClientKey::new();
    let jwks = key.jwks_file(&server);
    let client = server.add_client(
        "rp",
        &["--redirect-uri", CALLBACK, "--first-party", "--auth-method", "private_key_jwt", "--jwks", &jwks],
    );
    let (pkce, state) = (Pkce::new(), random_string());
    let mut object = json!({ "iss": client.id, "aud": server.issuer, "exp": server.now() + 60 });
    for (k, v) in auth_params(&client, &pkce, &state) {
        object[k] = json!(v);
    }
    let request = key.sign(&object);
    // The token endpoint's audience serves at PAR too (RFC 9126 §2).
    let assertion = key.assertion(&server, &client.id, json!(server.issuer));
    let r = post(
        &server,
        "/par",
        &[
            ("client_id", &client.id),
            ("request", &request),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
    let browser = server.browser();
    let o = browser
        .authorize_and_complete(
            &[("client_id", &client.id), ("request_uri", &uri)],
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    assert_eq!(o.param("state"), Some(state.as_str()));
    o.code();
}

/// Gets a code for `client` through PAR (client_secret_basic), with `extra` pushed and `dpop`
/// sent at PAR when given.
async fn code_by_par(
    server: &Server,
    client: &TestClient,
    pkce: &Pkce,
    extra: &[(&str, &str)],
    dpop: Option<&DpopKey>,
) -> Result<String, Resp> {
    let state = random_string();
    let mut params = auth_params(client, pkce, &state);
    params.extend_from_slice(extra);
    let auth = basic(&client.id, client.secret());
    let proof = dpop.map(|k| k.proof(server, "POST", "/par", None));
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(p) = &proof {
        headers.push(("DPoP", p.as_str()));
    }
    let r = post(server, "/par", &params, &headers).await;
    if r.status != 201 {
        return Err(r);
    }
    let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
    let o = server
        .browser()
        .authorize_and_complete(
            &[("client_id", &client.id), ("request_uri", &uri)],
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    Ok(o.code())
}

/// Redeems `code` with a DPoP proof by `key` (or none).
async fn redeem_dpop(server: &Server, client: &TestClient, code: &str, pkce: &Pkce, key: Option<&DpopKey>) -> Resp {
    let proof = key.map(|k| k.proof(server, "POST", "/token", None));
    let auth = basic(&client.id, client.secret());
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(p) = &proof {
        headers.push(("DPoP", p.as_str()));
    }
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    post(server, "/token", &params, &headers).await
}

/// RFC 9449 §5–§7: the access token is bound to the proof's key (`cnf.jkt`, `token_type`
/// DPoP); userinfo wants the DPoP scheme, a proof by that key and `ath`; introspection says so.
#[tokio::test]
async fn dpop_binds_the_access_token_and_userinfo_checks_the_proof() {
    let server = Server::start();
    server.add_alice();
    let client = confidential_client(&server, &["--dpop-bound", "--resource-server"]);
    let key = DpopKey::new();
    let pkce = Pkce::new();

    // A client registered for DPoP-bound tokens sends a proof, or is refused.
    let code = code_by_par(&server, &client, &pkce, &[], None).await.unwrap();
    redeem_dpop(&server, &client, &code, &pkce, None).await.assert_oauth_error(400, "invalid_dpop_proof");

    let pkce = Pkce::new();
    let code = code_by_par(&server, &client, &pkce, &[], None).await.unwrap();
    let r = redeem_dpop(&server, &client, &code, &pkce, Some(&key)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = r.json();
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["jkt"], key.jkt());

    // userinfo: DPoP scheme (any case) + proof with ath.
    let proof = key.proof(&server, "GET", "/userinfo", Some(at));
    let r = get(&server, "/userinfo", &[("Authorization", &format!("dpop {at}")), ("DPoP", &proof)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    // The same proof again: its jti is spent.
    let r = get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &proof)]).await;
    assert_dpop_refused(&r);
    // As a Bearer token: refused with a DPoP challenge.
    let r = server.userinfo(at).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("www-authenticate").unwrap().starts_with("DPoP"), "{r:?}");
    // No proof, or one without ath, or by another key, or for another URL or method.
    let r = get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}"))]).await;
    assert_dpop_refused(&r);
    let no_ath = key.proof(&server, "GET", "/userinfo", None);
    assert_dpop_refused(
        &get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &no_ath)]).await,
    );
    let other = DpopKey::new().proof(&server, "GET", "/userinfo", Some(at));
    assert_dpop_refused(
        &get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &other)]).await,
    );
    let wrong_htu = key.proof(&server, "GET", "/token", Some(at));
    assert_dpop_refused(
        &get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &wrong_htu)]).await,
    );
    let wrong_htm = key.proof(&server, "POST", "/userinfo", Some(at));
    assert_dpop_refused(
        &get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &wrong_htm)]).await,
    );
    // htu with a query is the same endpoint (§4.3 item 9).
    let mut claims = json!({ "jti": random_string(), "htm": "GET", "htu": format!("{}?x=1", server.url("/userinfo")),
                             "iat": server.now(), "ath": b64(&Sha256::digest(at.as_bytes())) });
    let with_query = key.sign(&key.header(), &claims);
    let r = get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &with_query)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Two DPoP headers.
    let (a, b) = (key.proof(&server, "GET", "/userinfo", Some(at)), key.proof(&server, "GET", "/userinfo", Some(at)));
    let r = get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &a), ("DPoP", &b)]).await;
    assert_dpop_refused(&r);
    // An iat an hour ago.
    claims["jti"] = json!(random_string());
    claims["iat"] = json!(server.now() - 3600);
    let old = key.sign(&key.header(), &claims);
    assert_dpop_refused(&get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &old)]).await);

    // Nor is it a Bearer token anywhere else (the account API).
    let r = post(&server, "/account/api/password/change", &[], &[("Authorization", &format!("Bearer {at}"))]).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("www-authenticate").unwrap_or_default().starts_with("DPoP"), "{r:?}");

    // Introspection reports the binding (§6.2).
    let r = server.introspect(&client, at).await;
    let v = r.json();
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    assert_eq!(v["cnf"]["jkt"], key.jkt());
}

fn assert_dpop_refused(r: &Resp) {
    assert!(matches!(r.status, 400 | 401), "expected a refusal: {r:?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("DPoP"), "a DPoP challenge is expected: {r:?}");
}

/// RFC 9449 §4.3: each broken part of a proof at the token endpoint is refused with
/// `invalid_dpop_proof`, and a refused proof spends nothing.
#[tokio::test]
async fn dpop_proofs_are_checked_at_the_token_endpoint() {
    let server = Server::start();
    let client = server.add_client("svc", &["--grant-type", "client_credentials", "--scope", "reports"]);
    let auth = basic(&client.id, client.secret());
    let key = DpopKey::new();
    let cc = [("grant_type", "client_credentials")];
    let send = |proof: String| {
        let auth = auth.clone();
        let server = &server;
        async move { post(server, "/token", &cc, &[("Authorization", &auth), ("DPoP", &proof)]).await }
    };
    let now = server.now();
    let good = || json!({ "jti": random_string(), "htm": "POST", "htu": server.url("/token"), "iat": now });
    let refused = |r: Resp| r.assert_oauth_error(400, "invalid_dpop_proof");

    // A replayed jti.
    let proof = key.proof(&server, "POST", "/token", None);
    let r = send(proof.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["token_type"], "DPoP");
    assert_eq!(jwt_claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());
    refused(send(proof).await);
    // A wrong htu, htm, a missing claim, an old or future iat.
    let mut c = good();
    c["htu"] = json!(server.url("/userinfo"));
    refused(send(key.sign(&key.header(), &c)).await);
    let mut c = good();
    c["htm"] = json!("GET");
    refused(send(key.sign(&key.header(), &c)).await);
    let mut c = good();
    c.as_object_mut().unwrap().remove("jti");
    refused(send(key.sign(&key.header(), &c)).await);
    let mut c = good();
    c["iat"] = json!(now - 3600);
    refused(send(key.sign(&key.header(), &c)).await);
    let mut c = good();
    c["iat"] = json!(now + 3600);
    refused(send(key.sign(&key.header(), &c)).await);
    // iat 10 s ahead or behind passes (FAPI 2.0 §5.3.2.1-13).
    for skew in [10, -10] {
        let mut c = good();
        c["iat"] = json!(now + skew);
        assert_eq!(send(key.sign(&key.header(), &c)).await.status, 200);
    }
    // A wrong typ, alg none, a private key in the header, another key's signature.
    let mut h = key.header();
    h["typ"] = json!("JWT");
    refused(send(key.sign(&h, &good())).await);
    let none = format!(
        "{}.{}.",
        b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()}).to_string().as_bytes()),
        b64(good().to_string().as_bytes())
    );
    refused(send(none).await);
    let mut h = key.header();
    h["jwk"] = serde_json::to_value(key.pair.to_jwk_private_key().as_ref()).unwrap();
    refused(send(key.sign(&h, &good())).await);
    let mut h = key.header();
    h["jwk"] = DpopKey::new().public_jwk();
    refused(send(key.sign(&h, &good())).await);
    // RS256 is not on the allow-list.
    let rsa = RsaKeyPair::generate(2048).unwrap();
    let mut h = JwsHeader::new();
    h.set_token_type("dpop+jwt");
    h.set_jwk(rsa.to_jwk_public_key());
    let signer = RS256.signer_from_pem(rsa.to_pem_private_key()).unwrap();
    refused(send(josekit::jws::serialize_compact(good().to_string().as_bytes(), &h, &signer).unwrap()).await);
    // Not a JWT.
    refused(send("not-a-jwt".into()).await);
}

/// RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
#[tokio::test]
async fn dpop_binds_a_public_clients_refresh_token() {
    let server = Server::start();
    server.add_alice();
    let client = server.public_client();
    let key = DpopKey::new();
    let pkce = Pkce::new();
    let state = random_string();
    let o = server
        .browser()
        .authorize_and_complete(&auth_params(&client, &pkce, &state), Some((USER, PASSWORD)), Decision::Allow)
        .await;
    let proof = key.proof(&server, "POST", "/token", None);
    let code = o.code();
    let params = [
        ("grant_type", "authorization_code"),
        ("client_id", client.id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let r = post(&server, "/token", &params, &[("DPoP", &proof)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let params = [("grant_type", "refresh_token"), ("client_id", client.id.as_str()), ("refresh_token", &refresh)];
    // Without a proof, or with another key's: refused, and nothing is spent.
    post(&server, "/token", &params, &[]).await.assert_oauth_error(400, "invalid_dpop_proof");
    let other = DpopKey::new().proof(&server, "POST", "/token", None);
    post(&server, "/token", &params, &[("DPoP", &other)]).await.assert_oauth_error(400, "invalid_grant");
    let proof = key.proof(&server, "POST", "/token", None);
    let r = post(&server, "/token", &params, &[("DPoP", &proof)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["token_type"], "DPoP");
}

/// RFC 9449 §10: `dpop_jkt` (or a proof at PAR) binds the code to a key; the token request's
/// proof must be by that key.
#[tokio::test]
async fn dpop_jkt_binds_the_authorization_code() {
    let server = Server::start();
    server.add_alice();
    let client = confidential_client(&server, &[]);
    let (k1, k2) = (DpopKey::new(), DpopKey::new());

    // dpop_jkt that is not the PAR proof's key.
    let pkce = Pkce::new();
    let wrong = k2.jkt();
    let r = code_by_par(&server, &client, &pkce, &[("dpop_jkt", &wrong)], Some(&k1)).await.unwrap_err();
    r.assert_oauth_error(400, "invalid_dpop_proof");
    // A PAR proof by K1, a token proof by K2 (or none).
    let code = code_by_par(&server, &client, &pkce, &[], Some(&k1)).await.unwrap();
    redeem_dpop(&server, &client, &code, &pkce, Some(&k2)).await.assert_oauth_error(400, "invalid_grant");
    let pkce = Pkce::new();
    let code = code_by_par(&server, &client, &pkce, &[], Some(&k1)).await.unwrap();
    redeem_dpop(&server, &client, &code, &pkce, None).await.assert_oauth_error(400, "invalid_dpop_proof");
    // dpop_jkt alone, at the plain authorization endpoint, then the same key: bound and issued.
    let pkce = Pkce::new();
    let state = random_string();
    let jkt = k1.jkt();
    let mut params = auth_params(&client, &pkce, &state);
    params.push(("dpop_jkt", &jkt));
    let o = server.browser().authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::Allow).await;
    let r = redeem_dpop(&server, &client, &o.code(), &pkce, Some(&k1)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(jwt_claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"], jkt);
}

/// RFC 9449 §8: with `tokens.dpop_nonce` the server asks for its nonce, then accepts it.
#[tokio::test]
async fn dpop_server_nonce() {
    let server = Server::start_with(&[("LATCHKEY_DPOP_NONCE", "true")]);
    let client = server.add_client("svc", &["--grant-type", "client_credentials", "--scope", "reports"]);
    let auth = basic(&client.id, client.secret());
    let key = DpopKey::new();
    let cc = [("grant_type", "client_credentials")];
    let r = post(
        &server,
        "/token",
        &cc,
        &[("Authorization", &auth), ("DPoP", &key.proof(&server, "POST", "/token", None))],
    )
    .await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    let nonce = r.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();
    assert!(nonce.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)), "{nonce}");
    let claims = json!({ "jti": random_string(), "htm": "POST", "htu": server.url("/token"), "iat": server.now(), "nonce": nonce });
    let r =
        post(&server, "/token", &cc, &[("Authorization", &auth), ("DPoP", &key.sign(&key.header(), &claims))]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["token_type"], "DPoP");
}

/// FAPI 2.0 Security Profile as a client's profile: what registration refuses, then each
/// requirement at run time, then the whole flow (PAR, private_key_jwt, PKCE, DPoP, ES256) and a
/// refresh token that still works 30 s after it was used (§5.3.2.1-9).
#[tokio::test]
async fn fapi2_client_is_held_to_the_profile() {
    let server = Server::start();
    server.add_alice();
    let key = ClientKey::new();
    let jwks = key.jwks_file(&server);
    let base = ["--redirect-uri", CALLBACK, "--first-party", "--profile", "fapi2"];
    let refused = |extra: &[&str], why: &str| {
        let mut args = vec!["clients", "add", "--name", "fapi"];
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        let (ok, _, stderr) = server.cli_raw(&args, None);
        assert!(!ok && stderr.contains(why), "{args:?}: {stderr}");
    };
    refused(&["--id-token-alg", "ES256"], "private_key_jwt");
    refused(&["--auth-method", "client_secret_basic", "--id-token-alg", "ES256"], "private_key_jwt");
    refused(&["--auth-method", "private_key_jwt", "--jwks", &jwks], "PS256, ES256 or EdDSA");

    let mut args = base.to_vec();
    args.extend(["--auth-method", "private_key_jwt", "--jwks", &jwks, "--id-token-alg", "ES256"]);
    let client = server.add_client("fapi", &args);
    let dpop = DpopKey::new();
    let (pkce, state) = (Pkce::new(), random_string());
    let params = owned(&auth_params(&client, &pkce, &state));
    let assertion = |aud: Value| key.assertion(&server, &client.id, aud);
    // The parameters with a client assertion for `aud`.
    let signed = |p: &[(String, String)], aud: Value| {
        let mut p = p.to_vec();
        p.push(("client_assertion_type".into(), JWT_BEARER.into()));
        p.push(("client_assertion".into(), assertion(aud)));
        p
    };
    let issuer = json!(server.issuer);

    // Without PAR (§5.3.2.2-3): invalid_request at the redirect URI.
    let o = server.browser().authorize_and_complete(&borrowed(&params), None, Decision::NotExpected).await;
    assert_eq!(check_authorization_error(&o, Some(&state), &server.issuer), "invalid_request");
    // Without PKCE (§5.3.2.2-5).
    let no_pkce: Vec<_> = params.iter().filter(|(k, _)| !k.starts_with("code_challenge")).cloned().collect();
    post_owned(&server, "/par", &signed(&no_pkce, issuer.clone()), None)
        .await
        .assert_oauth_error(400, "invalid_request");
    // An assertion aimed at the token endpoint, or at the issuer inside an array (§5.3.2.1-8).
    post_owned(&server, "/par", &signed(&params, json!(server.url("/token"))), None).await.assert_invalid_client();
    post_owned(&server, "/par", &signed(&params, json!([server.issuer])), None).await.assert_invalid_client();
    // A response_type other than code (§5.3.2.2-1).
    let hybrid: Vec<_> = params
        .iter()
        .map(
            |(k, v)| {
                if k == "response_type" { (k.clone(), "code id_token".to_owned()) } else { (k.clone(), v.clone()) }
            },
        )
        .collect();
    assert_eq!(post_owned(&server, "/par", &signed(&hybrid, issuer.clone()), None).await.status, 400);

    // The whole flow.
    let r = post_owned(&server, "/par", &signed(&params, issuer.clone()), None).await;
    assert_eq!(r.status, 201, "{r:?}");
    let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
    let o = server
        .browser()
        .authorize_and_complete(
            &[("client_id", &client.id), ("request_uri", &uri)],
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    assert_eq!(o.param("iss"), Some(server.issuer.as_str()));
    let code = o.code();
    let redeem = owned(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &pkce.verifier),
    ]);
    // No DPoP proof (§5.3.2.1-4): refused before the code is spent.
    post_owned(&server, "/token", &signed(&redeem, issuer.clone()), None)
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let proof = dpop.proof(&server, "POST", "/token", None);
    let r = post_owned(&server, "/token", &signed(&redeem, issuer.clone()), Some(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = r.json();
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(jwt_header(tokens["id_token"].as_str().unwrap())["alg"], "ES256");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token").to_owned();

    // Refresh with a new DPoP key (a confidential client's refresh token is not bound to it),
    // then the same refresh token again 30 s later: it still works.
    let again = owned(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    let new_key = DpopKey::new();
    let proof = new_key.proof(&server, "POST", "/token", None);
    let r = post_owned(&server, "/token", &signed(&again, issuer.clone()), Some(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    server.advance(30);
    let proof = new_key.proof(&server, "POST", "/token", None);
    let r = post_owned(&server, "/token", &signed(&again, issuer.clone()), Some(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn borrowed(p: &[(String, String)]) -> Vec<(&str, &str)> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// POSTs owned parameters, with a DPoP proof when given.
async fn post_owned(server: &Server, path: &str, p: &[(String, String)], dpop: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = dpop.map(|d| ("DPoP", d)).into_iter().collect();
    post(server, path, &borrowed(p), &headers).await
}

/// RFC 8707: registered resources; `resource` at /authorize and /token makes the access token's
/// `aud` the resource, with the resource's scopes; anything else is `invalid_target`.
#[tokio::test]
async fn resource_indicators_audience_restrict_tokens() {
    let server = Server::start();
    server.add_alice();
    const API: &str = "https://api.example.com/reports";
    let added = server.cli(&["resources", "add", API, "--scope", "reports.read", "--json"]);
    assert_eq!(added["uri"], API, "{added}");
    assert!(!server.cli_raw(&["resources", "add", API], None).0, "registered twice");
    assert!(!server.cli_raw(&["resources", "add", "/reports"], None).0, "not an absolute URI");
    assert!(!server.cli_raw(&["resources", "add", "https://api.example.com/#x"], None).0, "a fragment");
    assert_eq!(server.cli(&["resources", "list", "--json"])[0]["scopes"], json!(["reports.read"]));
    let client = confidential_client(&server, &[]);
    let browser = server.browser();

    // An unregistered resource: invalid_target at the redirect URI.
    let (pkce, state) = (Pkce::new(), random_string());
    let mut params = auth_params(&client, &pkce, &state);
    params.push(("resource", "https://elsewhere.example.com"));
    let o = browser.authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::Allow).await;
    assert_eq!(check_authorization_error(&o, Some(&state), &server.issuer), "invalid_target");

    // The registered one: its scope is granted, the token is for it.
    let (pkce, state) = (Pkce::new(), random_string());
    let mut params = auth_params(&client, &pkce, &state);
    params.retain(|(k, _)| *k != "scope");
    params.extend([("resource", API), ("scope", "openid reports.read offline_access")]);
    let o = browser.authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::Allow).await;
    let r = server.redeem(&client, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let access_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let at = jwt_claims(&access_token);
    assert_eq!(at["aud"], API);
    assert!(at["scope"].as_str().unwrap().split(' ').any(|s| s == "reports.read"), "{at}");
    // It is the resource's token: userinfo does not take it, although it carries openid.
    let u = server.userinfo(&access_token).await;
    assert_eq!(u.status, 401, "{u:?}");
    assert!(u.header("www-authenticate").unwrap_or("").contains(r#"error="invalid_token""#), "{u:?}");
    let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    // A refresh for another resource is refused; for the same one it is issued.
    let other = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("resource", "https://elsewhere.example.com"),
    ];
    server.token(&client.auth(), &other).await.assert_oauth_error(400, "invalid_target");
    let same = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("resource", API)];
    let r = server.token(&client.auth(), &same).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(jwt_claims(r.json()["access_token"].as_str().unwrap())["aud"], API);

    // client_credentials for the resource: only the resource's scopes.
    let svc = server
        .add_client("svc", &["--grant-type", "client_credentials", "--scope", "reports.read", "--scope", "billing"]);
    let r = server.token(&svc.auth(), &[("grant_type", "client_credentials"), ("resource", API)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let at = jwt_claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!((at["aud"].as_str(), at["scope"].as_str()), (Some(API), Some("reports.read")));
    let r = server
        .token(&svc.auth(), &[("grant_type", "client_credentials"), ("resource", API), ("scope", "billing")])
        .await;
    r.assert_oauth_error(400, "invalid_scope");
    let r = server.token(&svc.auth(), &[("grant_type", "client_credentials"), ("resource", "urn:unknown")]).await;
    r.assert_oauth_error(400, "invalid_target");
    assert_eq!(server.cli(&["resources", "remove", API, "--json"])["removed"], API);

    // A token for this provider's userinfo endpoint, named as the resource, reads userinfo.
    let userinfo = format!("{}/userinfo", server.issuer);
    server.cli(&["resources", "add", &userinfo, "--json"]);
    let (pkce, state) = (Pkce::new(), random_string());
    let mut params = auth_params(&client, &pkce, &state);
    params.push(("resource", &userinfo));
    let o = browser.authorize_and_complete(&params, None, Decision::Allow).await;
    let r = server.redeem(&client, &o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let access_token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&access_token)["aud"], userinfo.as_str());
    check_userinfo(&server.userinfo(&access_token).await);
}

/// RFC 8693: a back end exchanges the front end's access token (or ID token) for one to call a
/// resource, as the user or on their behalf (`act`), as far as its policy allows.
#[tokio::test]
async fn token_exchange_by_policy() {
    let server = Server::start();
    server.add_alice();
    const API: &str = "https://api.example.com/reports";
    const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
    const IDT: &str = "urn:ietf:params:oauth:token-type:id_token";
    const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    server.cli(&["resources", "add", API, "--scope", "reports.read", "--json"]);
    let front = confidential_client(&server, &[]);
    let back = server.add_client(
        "back end",
        &[
            "--grant-type",
            "token_exchange",
            "--grant-type",
            "client_credentials",
            "--scope",
            "reports.read",
            "--exchange-from",
            &front.id,
        ],
    );
    let stranger = server.add_client("stranger", &["--grant-type", "token_exchange"]);
    let (ok, _, stderr) =
        server.cli_raw(&["clients", "add", "--name", "spa", "--public", "--grant-type", "token_exchange"], None);
    assert!(!ok && stderr.contains("public client"), "{stderr}");

    // The front end's tokens for the API, as alice.
    let (pkce, state) = (Pkce::new(), random_string());
    let mut params = auth_params(&front, &pkce, &state);
    params.retain(|(k, _)| *k != "scope");
    params.extend([("resource", API), ("scope", "openid reports.read")]);
    let o = server.browser().authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::Allow).await;
    let r = server.redeem(&front, &o.code(), Some(&pkce.verifier)).await;
    let (subject, id_token) =
        (r.json()["access_token"].as_str().unwrap().to_owned(), r.json()["id_token"].as_str().unwrap().to_owned());
    let alice = jwt_claims(&subject)["sub"].as_str().unwrap().to_owned();

    let exchange = |client: &TestClient, extra: &[(&str, &str)]| {
        let mut p = vec![("grant_type", EXCHANGE), ("subject_token", subject.as_str()), ("subject_token_type", AT)];
        p.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        p.extend_from_slice(extra);
        let (server, auth) = (&server, client.auth());
        let p: Vec<(String, String)> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        async move { server.token(&auth, &borrowed(&p)).await }
    };

    // A client whose policy does not name the front end: refused.
    exchange(&stranger, &[("resource", API)]).await.assert_oauth_error(400, "invalid_request");
    // No target, an unknown one, a scope beyond the subject's.
    exchange(&back, &[]).await.assert_oauth_error(400, "invalid_target");
    exchange(&back, &[("audience", "urn:unknown")]).await.assert_oauth_error(400, "invalid_target");
    exchange(&back, &[("resource", API), ("scope", "reports.write")]).await.assert_oauth_error(400, "invalid_scope");
    exchange(&back, &[("resource", API), ("subject_token", "not-a-token")])
        .await
        .assert_oauth_error(400, "invalid_request");

    // Impersonation: the user's token for the API, issued to the back end.
    let r = exchange(&back, &[("resource", API)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["issued_token_type"], AT);
    let exchanged = r.json()["access_token"].as_str().unwrap().to_owned();
    let c = jwt_claims(&exchanged);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str(), c["client_id"].as_str()),
        (Some(alice.as_str()), Some(API), Some(back.id.as_str()))
    );
    assert_eq!(c["scope"], "reports.read");
    assert!(c.get("act").is_none(), "{c}");

    // Delegation: the back end's own token as the actor.
    let actor = server.token(&back.auth(), &[("grant_type", "client_credentials")]).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = exchange(&back, &[("audience", API), ("actor_token", &actor), ("actor_token_type", AT)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let c = jwt_claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!((c["sub"].as_str(), c["act"]["sub"].as_str()), (Some(alice.as_str()), Some(back.id.as_str())));
    // Another client's token is no actor of the back end's.
    let r = exchange(&back, &[("resource", API), ("actor_token", &subject), ("actor_token_type", AT)]).await;
    r.assert_oauth_error(400, "invalid_request");

    // An ID token as the subject.
    let r = exchange(&back, &[("resource", API), ("subject_token", &id_token), ("subject_token_type", IDT)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(jwt_claims(r.json()["access_token"].as_str().unwrap())["sub"], alice);

    // The exchanged token lives on the user's grant: revoked with it.
    let back_rs = TestClient { ..back.clone() };
    assert_eq!(server.introspect(&back_rs, &exchanged).await.json()["active"], true);
    assert_eq!(server.revoke(&front, &subject).await.status, 200);
    assert_eq!(server.introspect(&back_rs, &exchanged).await.json()["active"], false);
}

/// A FAPI 2.0 client as the conformance suite registers it: `private_key_jwt` with an EC key,
/// ES256 ID tokens, its own DPoP key; every call authenticated with a fresh assertion.
struct Fapi<'a> {
    server: &'a Server,
    key: ClientKey,
    client: TestClient,
    dpop: DpopKey,
}

impl<'a> Fapi<'a> {
    fn register(server: &'a Server, redirect_uri: &str) -> Fapi<'a> {
        let key = ClientKey::new();
        let jwks = key.jwks_file(server);
        let args =
            ["--redirect-uri", redirect_uri, "--first-party", "--profile", "fapi2", "--auth-method", "private_key_jwt"];
        let mut args = args.to_vec();
        args.extend(["--jwks", &jwks, "--id-token-alg", "ES256"]);
        let client = server.add_client("fapi", &args);
        Fapi { server, key, client, dpop: DpopKey::new() }
    }

    /// `p` with client authentication: an assertion for `aud` (the issuer by default).
    fn signed(&self, p: &[(&str, &str)], aud: Option<Value>) -> Vec<(String, String)> {
        let aud = aud.unwrap_or_else(|| json!(self.server.issuer));
        let mut p = owned(p);
        p.push(("client_assertion_type".into(), JWT_BEARER.into()));
        p.push(("client_assertion".into(), self.key.assertion(self.server, &self.client.id, aud)));
        p
    }

    /// The suite's PAR parameters, with `edit` applied (a value of "" removes a parameter).
    fn params(&self, pkce: &Pkce, state: &str, edit: &[(&'static str, &str)]) -> Vec<(String, String)> {
        let mut p = owned(&auth_params(&self.client, pkce, state));
        for (k, v) in edit {
            p.retain(|(name, _)| name != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.to_string()));
            }
        }
        p
    }

    async fn par(&self, p: &[(String, String)], proof: Option<&str>) -> Resp {
        post_owned(self.server, "/par", &self.signed(&borrowed(p), None), proof).await
    }

    /// PAR, then the browser signs in; the redirect back.
    async fn authorize(&self, p: &[(String, String)], query: &[(&str, &str)]) -> Outcome {
        let r = self.par(p, None).await;
        assert_eq!(r.status, 201, "{r:?}");
        let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
        let mut q = vec![("client_id", self.client.id.as_str()), ("request_uri", uri.as_str())];
        q.extend_from_slice(query);
        self.server.browser().authorize_and_complete(&q, Some((USER, PASSWORD)), Decision::Allow).await
    }

    /// The token request for `code` with this client's DPoP key.
    async fn redeem(&self, code: &str, verifier: Option<&str>) -> Resp {
        let mut p = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.client.redirect_uri.as_str()),
        ];
        if let Some(v) = verifier {
            p.push(("code_verifier", v));
        }
        let proof = self.dpop.proof(self.server, "POST", "/token", None);
        post_owned(self.server, "/token", &self.signed(&p, None), Some(&proof)).await
    }
}

/// The FAPI 2.0 Security Profile plan's authorization modules (fapi2.md §3), each by its row.
#[tokio::test]
async fn fapi2_plan_authorization_modules() {
    let server = Server::start();
    server.add_alice();
    let one = Fapi::register(&server, CALLBACK);
    let two = Fapi::register(&server, "https://rp2.example.com/callback?dummy1=lorem&dummy2=ipsum");
    let pkce = Pkce::new();

    // Row 2, happy-flow: client 2's long state, a redirect URI with its own query, the query
    // parameters repeated in another order.
    let long_state: String = std::iter::repeat_n('s', 128).collect();
    let o =
        two.authorize(&two.params(&pkce, &long_state, &[]), &[("scope", "openid"), ("response_type", "code")]).await;
    assert_eq!((o.param("dummy1"), o.param("dummy2")), (Some("lorem"), Some("ipsum")), "{o:?}");
    assert_eq!(o.param("state"), Some(long_state.as_str()));
    let r = two.redeem(&o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    // The token in the URL query is refused (§5.3.4-2); client 1's key with client 2's token too.
    let r = server.get(&format!("/userinfo?access_token={at}")).await;
    assert_eq!(r.status, 401, "{r:?}");
    let proof = one.dpop.proof(&server, "GET", "/userinfo", Some(&at));
    assert_eq!(
        get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &proof)]).await.status,
        401
    );
    // Row 10, check-dpop-proof-nbf-exp: extra nbf and exp in the proof are accepted.
    let claims = json!({ "jti": random_string(), "htm": "GET", "htu": server.url("/userinfo"), "iat": server.now(),
                         "nbf": server.now(), "exp": server.now() + 300, "ath": b64(&Sha256::digest(at.as_bytes())) });
    let proof = two.dpop.sign(&two.dpop.header(), &claims);
    let r = get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &proof)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("date").is_some(), "resource responses carry Date");

    // Row 4: no state; row 5: no nonce; row 6: a 64-character nonce; row 7: scopes reversed.
    let pkce = Pkce::new();
    let o = one.authorize(&one.params(&pkce, "", &[("state", ""), ("nonce", "")]), &[]).await;
    assert!(o.param("state").is_none(), "{o:?}");
    let r = one.redeem(&o.code(), Some(&pkce.verifier)).await;
    assert!(jwt_claims(r.json()["id_token"].as_str().unwrap()).get("nonce").is_none());
    let nonce64: String = std::iter::repeat_n('n', 64).collect();
    let nonce384: String = std::iter::repeat_n('m', 384).collect();
    for (nonce, scope) in [(&nonce64, "offline_access email openid"), (&nonce384, "openid")] {
        let (pkce, state) = (Pkce::new(), random_string());
        let o = one.authorize(&one.params(&pkce, &state, &[("nonce", nonce), ("scope", scope)]), &[]).await;
        let r = one.redeem(&o.code(), Some(&pkce.verifier)).await;
        assert_eq!(jwt_claims(r.json()["id_token"].as_str().unwrap())["nonce"], nonce.as_str(), "rows 6 and 21");
    }

    // Rows 19, 20, 23: a nonce or state only in (or different in) the query is not used.
    let (pkce, state) = (Pkce::new(), random_string());
    let o = one.authorize(&one.params(&pkce, &state, &[]), &[("state", "outside"), ("nonce", "outside")]).await;
    assert_eq!(o.param("state"), Some(state.as_str()));
    let r = one.redeem(&o.code(), Some(&pkce.verifier)).await;
    assert_eq!(jwt_claims(r.json()["id_token"].as_str().unwrap())["nonce"], "n-0S6_WzA2Mj");
    let pkce = Pkce::new();
    let o = one.authorize(&one.params(&pkce, "", &[("state", "")]), &[("state", "outside")]).await;
    assert!(o.param("state").is_none(), "row 23: {o:?}");
    // Row 22: a 1000-character state comes back whole.
    let (pkce, state) = (Pkce::new(), std::iter::repeat_n('t', 1000).collect::<String>());
    let o = one.authorize(&one.params(&pkce, &state, &[]), &[]).await;
    assert_eq!(o.param("state"), Some(state.as_str()));

    // Rows 24 and 28: no redirect_uri; row 26: an unregistered one; rows 29, 30: other
    // response types; row 56, 57: no or plain PKCE — all refused at PAR with 400.
    let pkce = Pkce::new();
    for (edit, error) in [
        (vec![("redirect_uri", "")], "invalid_request"),
        (vec![("redirect_uri", "https://rp.example.com/callback/elsewhere")], "invalid_request"),
        (vec![("response_type", "code id_token")], "unsupported_response_type"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
    ] {
        one.par(&one.params(&pkce, "s", &edit), None).await.assert_oauth_error(400, error);
    }

    // Rows 13, 15, 16, 17: DPoP and dpop_jkt at PAR.
    let k = DpopKey::new();
    let pkce = Pkce::new();
    let proof = k.proof(&server, "POST", "/par", None);
    let wrong = DpopKey::new().jkt();
    one.par(&one.params(&pkce, "s", &[("dpop_jkt", &wrong)]), Some(&proof))
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let o = one.authorize(&one.params(&pkce, "s", &[("dpop_jkt", &wrong)]), &[]).await;
    one.redeem(&o.code(), Some(&pkce.verifier)).await.assert_oauth_error(400, "invalid_grant");
    let jkt = one.dpop.jkt();
    let proof = one.dpop.proof(&server, "POST", "/par", None);
    let pkce = Pkce::new();
    let r = one.par(&one.params(&pkce, "s", &[("dpop_jkt", &jkt)]), Some(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
    let o = server
        .browser()
        .authorize_and_complete(
            &[("client_id", &one.client.id), ("request_uri", &uri)],
            Some((USER, PASSWORD)),
            Decision::Allow,
        )
        .await;
    assert_eq!(one.redeem(&o.code(), Some(&pkce.verifier)).await.status, 200, "rows 16 and 17");

    // Rows 45–49: PAR assertions — 8 s ahead accepted, 62 s ahead refused, the PAR endpoint or
    // token endpoint as audience refused.
    let pkce = Pkce::new();
    let p = one.params(&pkce, "s", &[]);
    let ahead = |secs: i64| {
        let now = server.now() + secs;
        let claims = json!({ "iss": one.client.id, "sub": one.client.id, "aud": server.issuer, "jti": random_string(),
                             "iat": now, "nbf": now, "exp": now + 60 });
        let jwt = one.key.sign(&claims);
        let mut p = p.clone();
        p.extend([("client_assertion_type".to_owned(), JWT_BEARER.to_owned()), ("client_assertion".to_owned(), jwt)]);
        p
    };
    assert_eq!(post_owned(&server, "/par", &ahead(8), None).await.status, 201, "row 45");
    post_owned(&server, "/par", &ahead(62), None).await.assert_invalid_client();
    let to = |aud: &str| one.signed(&borrowed(&p), Some(json!(server.url(aud))));
    post_owned(&server, "/par", &to("/par"), None).await.assert_invalid_client();
    post_owned(&server, "/par", &to("/token"), None).await.assert_invalid_client();
}

/// The FAPI 2.0 Security Profile plan's token-endpoint modules (fapi2.md §3), each by its row.
#[tokio::test]
async fn fapi2_plan_token_modules() {
    let server = Server::start();
    server.add_alice();
    let one = Fapi::register(&server, CALLBACK);
    let two = Fapi::register(&server, CALLBACK2);

    // Row 32: client 1's code, client 2's client_id, signed with client 1's key: invalid_client.
    let (pkce, state) = (Pkce::new(), random_string());
    let o = one.authorize(&one.params(&pkce, &state, &[]), &[]).await;
    let code = o.code();
    let p = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let forged = {
        let now = server.now();
        let claims = json!({ "iss": two.client.id, "sub": two.client.id, "aud": server.issuer, "jti": random_string(), "iat": now, "exp": now + 60 });
        one.key.sign(&claims)
    };
    let mut with_forged = owned(&p);
    with_forged.extend([("client_assertion_type".into(), JWT_BEARER.into()), ("client_assertion".into(), forged)]);
    let proof = two.dpop.proof(&server, "POST", "/token", None);
    post_owned(&server, "/token", &with_forged, Some(&proof)).await.assert_invalid_client();
    // Row 41: client_id and no assertion; rows 42–44: expired, another audience, no sub.
    let mut bare = owned(&p);
    bare.push(("client_id".into(), one.client.id.clone()));
    let proof = one.dpop.proof(&server, "POST", "/token", None);
    post_owned(&server, "/token", &bare, Some(&proof)).await.assert_invalid_client();
    let now = server.now();
    for claims in [
        json!({ "iss": one.client.id, "sub": one.client.id, "aud": server.issuer, "jti": random_string(), "iat": now - 360, "exp": now - 300 }),
        json!({ "iss": one.client.id, "sub": one.client.id, "aud": "https://elsewhere.example.com", "jti": random_string(), "iat": now, "exp": now + 60 }),
        json!({ "iss": one.client.id, "aud": server.issuer, "jti": random_string(), "iat": now, "exp": now + 60 }),
    ] {
        let jwt = one.key.sign(&claims);
        let mut q = owned(&p);
        q.extend([
            ("client_id".into(), one.client.id.clone()),
            ("client_assertion_type".into(), JWT_BEARER.into()),
            ("client_assertion".into(), jwt),
        ]);
        let proof = one.dpop.proof(&server, "POST", "/token", None);
        let r = post_owned(&server, "/token", &q, Some(&proof)).await;
        assert!(matches!(r.json()["error"].as_str(), Some("invalid_client" | "invalid_request")), "{r:?}");
    }
    // Row 34: client 2, with its own credentials, redeems client 1's code: invalid_grant.
    let proof = two.dpop.proof(&server, "POST", "/token", None);
    let r = post_owned(&server, "/token", &two.signed(&p, None), Some(&proof)).await;
    r.assert_oauth_error(400, "invalid_grant");

    // Row 37: no verifier; row 38: a wrong one — invalid_grant.
    for verifier in [None, Some(Pkce::new().verifier)] {
        let (pkce, state) = (Pkce::new(), random_string());
        let o = one.authorize(&one.params(&pkce, &state, &[]), &[]).await;
        one.redeem(&o.code(), verifier.as_deref()).await.assert_oauth_error(400, "invalid_grant");
    }
    // Row 36: the code's first use after 62 s.
    let (pkce, state) = (Pkce::new(), random_string());
    let o = one.authorize(&one.params(&pkce, &state, &[]), &[]).await;
    server.advance(62);
    one.redeem(&o.code(), Some(&pkce.verifier)).await.assert_oauth_error(400, "invalid_grant");
    // Row 35: the same code again after 1 s: invalid_grant, and the first token stops working.
    let (pkce, state) = (Pkce::new(), random_string());
    let o = one.authorize(&one.params(&pkce, &state, &[]), &[]).await;
    let code = o.code();
    let r = one.redeem(&code, Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let first = r.json();
    server.advance(1);
    one.redeem(&code, Some(&pkce.verifier)).await.assert_oauth_error(400, "invalid_grant");
    let at = first["access_token"].as_str().unwrap();
    let proof = one.dpop.proof(&server, "GET", "/userinfo", Some(at));
    assert_eq!(
        get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &proof)]).await.status,
        401
    );

    // Row 39, refresh-token: no-store; without client authentication, or without a proof:
    // refused; client 2's refresh token by client 1: invalid_grant.
    let (pkce, state) = (Pkce::new(), random_string());
    let o = one.authorize(&one.params(&pkce, &state, &[]), &[]).await;
    let r = one.redeem(&o.code(), Some(&pkce.verifier)).await;
    let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let p = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("scope", "openid email")];
    let proof = one.dpop.proof(&server, "POST", "/token", None);
    let mut unauthenticated = owned(&p);
    unauthenticated.push(("client_id".into(), one.client.id.clone()));
    let r = post_owned(&server, "/token", &unauthenticated, Some(&proof)).await;
    assert!(
        matches!(r.json()["error"].as_str(), Some("invalid_client" | "invalid_grant" | "invalid_request")),
        "{r:?}"
    );
    post_owned(&server, "/token", &one.signed(&p, None), None).await.assert_oauth_error(400, "invalid_dpop_proof");
    let proof = two.dpop.proof(&server, "POST", "/token", None);
    post_owned(&server, "/token", &two.signed(&p, None), Some(&proof)).await.assert_oauth_error(400, "invalid_grant");
    let proof = one.dpop.proof(&server, "POST", "/token", None);
    let r = post_owned(&server, "/token", &one.signed(&p, None), Some(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("cache-control").unwrap_or_default().contains("no-store"));
    assert_eq!(r.json()["token_type"], "DPoP");
    let id = jwt_claims(r.json()["id_token"].as_str().unwrap());
    assert_eq!((id["iss"].as_str(), id["aud"].as_str()), (Some(server.issuer.as_str()), Some(one.client.id.as_str())));
}

/// The FAPI 2.0 plan's rows 3, 8 and 40 (fapi2.md §3): the user cancels at the sign-in page
/// (`access_denied` with `state` and `iss`, client 2's own query kept), the `claims` parameter
/// pushed for every identity claim, and a PS256-registered RSA key's assertion signed RS256.
#[tokio::test]
async fn fapi2_plan_rejection_claims_and_rs256_modules() {
    let server = Server::start();
    server.add_alice();
    let one = Fapi::register(&server, CALLBACK);
    let two = Fapi::register(&server, "https://rp2.example.com/callback?dummy1=lorem&dummy2=ipsum");

    // Row 3, user-rejects-authentication: both clients; the sign-in page's Cancel, a form with
    // the flow's CSRF token (no script), answers the client.
    for client in [&one, &two] {
        let (pkce, state) = (Pkce::new(), random_string());
        let r = client.par(&client.params(&pkce, &state, &[]), None).await;
        assert_eq!(r.status, 201, "{r:?}");
        let uri = r.json()["request_uri"].as_str().unwrap().to_owned();
        let browser = server.browser();
        let page =
            browser.follow(&browser.authorize(&[("client_id", &client.client.id), ("request_uri", &uri)]).await).await;
        let cancel = switch_form(&page, "cancel").unwrap_or_else(|| panic!("a Cancel on the sign-in page: {page:?}"));
        // Without the flow's CSRF token: refused, nothing sent to the client.
        let forged = browser.submit(&cancel, &[("switch", "cancel"), ("csrf", "forged")]).await;
        assert!(matches!(forged.status, 400 | 403), "{forged:?}");
        assert!(forged.location().is_none(), "{forged:?}");
        let o =
            browser.complete(browser.submit(&cancel, &[("switch", "cancel")]).await, None, Decision::NotExpected).await;
        assert_eq!(o.target, client.client.redirect_uri.split('?').next().unwrap(), "{o:?}");
        assert_eq!(o.error(), "access_denied", "{o:?}");
        assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
        assert_eq!(o.param("iss"), Some(server.issuer.as_str()), "{o:?}");
        assert!(o.param("code").is_none(), "{o:?}");
        if client.client.redirect_uri.contains('?') {
            assert_eq!((o.param("dummy1"), o.param("dummy2")), (Some("lorem"), Some("ipsum")), "{o:?}");
        } else {
            check_authorization_error(&o, Some(&state), &server.issuer);
        }
        // The flow is over: its page is gone.
        let again = browser.get(&cancel.action).await;
        assert!(again.status >= 400 || again.is_redirect(), "{again:?}");
    }
    let cancelled = server.db_strings("SELECT kind FROM audit_events WHERE kind = 'login.cancelled'");
    assert_eq!(cancelled.len(), 2, "audited: {cancelled:?}");

    // Row 8, test-claims-parameter-identity-claims: every claim discovery lists, and an unknown
    // one, asked for in the ID token and at userinfo through PAR.
    let supported = server.discovery().await["claims_supported"].clone();
    let mut wanted: serde_json::Map<String, Value> =
        supported.as_array().unwrap().iter().map(|c| (c.as_str().unwrap().to_owned(), Value::Null)).collect();
    wanted.insert("not_a_claim_xyz".into(), Value::Null);
    let claims = json!({ "id_token": wanted, "userinfo": wanted }).to_string();
    let (pkce, state) = (Pkce::new(), random_string());
    let o = one.authorize(&one.params(&pkce, &state, &[("claims", &claims), ("scope", "openid")]), &[]).await;
    let r = one.redeem(&o.code(), Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = jwt_claims(r.json()["id_token"].as_str().unwrap());
    let identity = ["name", "given_name", "family_name", "birthdate", "email", "phone_number", "address"];
    for claim in identity {
        assert!(id.get(claim).is_some(), "{claim} in the ID token: {id}");
    }
    assert_eq!(id["name"], "Alice Liddell");
    assert!(id.get("not_a_claim_xyz").is_none(), "{id}");
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    let proof = one.dpop.proof(&server, "GET", "/userinfo", Some(&at));
    let r = get(&server, "/userinfo", &[("Authorization", &format!("DPoP {at}")), ("DPoP", &proof)]).await;
    assert_eq!((r.status, r.media_type()), (200, "application/json".to_owned()), "{r:?}");
    let info = r.json();
    assert_eq!(info["sub"], id["sub"]);
    for claim in identity {
        assert_eq!(info[claim], id[claim], "{claim}: {info}");
    }

    // Row 40, ensure-signed-client-assertion-with-RS256-fails: a client whose key is RSA and
    // registered for PS256; its assertion signed RS256 with that very key is refused, PS256
    // accepted.
    let rsa = RsaKeyPair::generate(2048).unwrap();
    let mut jwk = rsa.to_jwk_public_key();
    jwk.set_key_id("rsa1");
    let path = server.data_dir.join("jwks-rsa.json");
    std::fs::write(&path, json!({ "keys": [serde_json::to_value(jwk.as_ref()).unwrap()] }).to_string()).unwrap();
    let args = [
        "--redirect-uri",
        CALLBACK,
        "--first-party",
        "--profile",
        "fapi2",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        path.to_str().unwrap(),
        "--id-token-alg",
        "PS256",
        "--token-auth-alg",
        "PS256",
    ];
    let client = server.add_client("fapi rsa", &args);
    let assertion = |alg: &str| {
        let now = server.now();
        let claims = json!({ "iss": client.id, "sub": client.id, "aud": server.issuer, "jti": random_string(), "iat": now, "exp": now + 60 });
        let mut h = JwsHeader::new();
        h.set_key_id("rsa1");
        let payload = claims.to_string();
        match alg {
            "RS256" => josekit::jws::serialize_compact(
                payload.as_bytes(),
                &h,
                &RS256.signer_from_pem(rsa.to_pem_private_key()).unwrap(),
            ),
            _ => josekit::jws::serialize_compact(
                payload.as_bytes(),
                &h,
                &PS256.signer_from_jwk(&rsa.to_jwk_private_key()).unwrap(),
            ),
        }
        .unwrap()
    };
    let pkce = Pkce::new();
    let mut p = owned(&auth_params(&client, &pkce, "s"));
    p.push(("client_assertion_type".into(), JWT_BEARER.into()));
    let with = |alg: &str| {
        let mut p = p.clone();
        p.push(("client_assertion".into(), assertion(alg)));
        p
    };
    post_owned(&server, "/par", &with("RS256"), None).await.assert_invalid_client();
    let r = post_owned(&server, "/par", &with("PS256"), None).await;
    assert_eq!(r.status, 201, "the same key, PS256: {r:?}");
    // At the token endpoint too: RS256 is refused before the code is looked at.
    let mut t = owned(&[("grant_type", "authorization_code"), ("code", "whatever"), ("redirect_uri", CALLBACK)]);
    t.extend([("client_assertion_type".into(), JWT_BEARER.into()), ("client_assertion".into(), assertion("RS256"))]);
    let proof = DpopKey::new().proof(&server, "POST", "/token", None);
    post_owned(&server, "/token", &t, Some(&proof)).await.assert_invalid_client();
}
