//! The conformance modules that need a client's own keys (plans.md 4.6 rows 33, 7.2 row 10, 7.3
//! rows 18–20 and 23): request objects by value and by `request_uri` (OIDC Core §6, RFC 9101)
//! and `private_key_jwt` client authentication (OIDC Core §9, RFC 7523), one test per module,
//! named after it, with the clients registered through the CLI as an operator would. Then the
//! refusals: a reused `jti`, another audience, an expired assertion, a request object signed
//! with another key, unsigned for a client that did not opt in, encrypted.
//!
//! The relying party's side is a small server inside the test ([`Rp`]): its `jwks_uri` and the
//! request objects it serves by reference.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::relying_party::*;
use common::*;
use josekit::jwk::alg::rsa::RsaKeyPair;
use serde_json::{Value, json};

/// One module's world: the OP with alice, the RP's server, and the OP's discovery and JWKS.
struct World {
    server: Server,
    rp: Rp,
    discovery: Value,
    jwks: Value,
}

async fn world() -> World {
    let server = Server::start();
    server.add_alice();
    let rp = Rp::start().await;
    let discovery = server.discovery().await;
    let jwks = server.jwks().await;
    World { server, rp, discovery, jwks }
}

impl World {
    /// A `private_key_jwt` client whose keys are at the RP's `jwks_uri`, plus `args`.
    fn key_client(&self, args: &[&str]) -> TestClient {
        let uri = self.rp.jwks_uri();
        let mut all = vec!["--redirect-uri", CALLBACK, "--auth-method", "private_key_jwt", "--jwks-uri", &uri];
        all.extend_from_slice(args);
        self.server.add_client("keyed rp", &all)
    }

    /// A client assertion (RFC 7523 §3) for `client` with `aud`, living `ttl` seconds.
    fn assertion(&self, client: &TestClient, aud: &str, ttl: i64) -> String {
        let now = self.server.now();
        self.rp.sign(
            &json!({ "iss": client.id, "sub": client.id, "aud": aud, "jti": random_string(), "iat": now, "exp": now + ttl }),
            true,
        )
    }

    fn token_endpoint(&self) -> String {
        self.discovery["token_endpoint"].as_str().unwrap().to_owned()
    }

    /// POSTs `params` to `path` authenticated by `assertion` (no client_id, as the suite does).
    async fn post_with(&self, path: &str, assertion: &str, params: &[(&str, &str)]) -> Resp {
        let mut p = params.to_vec();
        p.push(("client_assertion_type", JWT_BEARER));
        p.push(("client_assertion", assertion));
        self.server.post_form(path, &Auth::Nothing, &p).await
    }

    /// Signs in through `params` and returns where the browser came back to.
    async fn authorize(&self, params: &[(&str, &str)]) -> Outcome {
        self.server.browser().authorize_and_complete(params, Some((USER, PASSWORD)), Decision::Allow).await
    }

    /// The code exchange with a client assertion, and the ID token checks (plans.md 2.4–2.6).
    async fn redeem(&self, client: &TestClient, code: &str, nonce: Option<&str>, assertion: &str) -> Tokens {
        let p = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)];
        let r = self.post_with("/token", assertion, &p).await;
        assert_eq!(r.status, 200, "token endpoint: {r:?}");
        let t = Tokens::from_json(r.json());
        check_id_token(t.id_token(), &self.server.issuer, &client.id, nonce, Some(&t.access_token), &self.jwks);
        t
    }

    /// A whole code flow for a private_key_jwt client; the assertion's `aud` is `aud`.
    async fn code_flow(&self, client: &TestClient, scope: &str, aud: &str) -> Tokens {
        let (state, nonce) = (alnum10(), alnum10());
        let o = self.authorize(&auth_params(client, scope, &state, &nonce)).await;
        assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
        self.redeem(client, &o.code(), Some(&nonce), &self.assertion(client, aud, 60)).await
    }
}

/// The request of plans.md 4.6 row 33 / 7.3 row 19: `request_uri` with response_type,
/// client_id, scope and redirect_uri duplicated outside, and state and nonce only inside.
async fn request_uri_unsigned(w: &World) {
    let client = w.server.add_client("rp", &["--redirect-uri", CALLBACK, "--request-object-alg", "none"]);
    assert_eq!(w.discovery["request_uri_parameter_supported"], json!(true));
    let algs = w.discovery["request_object_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.iter().any(|a| a == "none"), "{algs:?}");
    let (state, nonce) = (alnum10(), alnum10());
    let object = unsigned(&json!({
        "client_id": client.id, "redirect_uri": CALLBACK, "response_type": "code", "scope": "openid",
        "state": state, "nonce": nonce,
    }));
    let uri = w.rp.serve(&object);
    let p = [
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("request_uri", uri.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let o = w.authorize(&p).await;
    assert_eq!(o.target, CALLBACK, "{o:?}");
    assert_eq!(o.param("state"), Some(state.as_str()), "state from the object: {o:?}");
    let r = w.server.redeem(&client, &o.code(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = Tokens::from_json(r.json());
    check_id_token(t.id_token(), &w.server.issuer, &client.id, Some(&nonce), Some(&t.access_token), &w.jwks);
}

#[tokio::test]
async fn oidcc_request_uri_unsigned() {
    request_uri_unsigned(&world().await).await;
}

#[tokio::test]
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported() {
    // Supported: the same request, processed.
    request_uri_unsigned(&world().await).await;
}

#[tokio::test]
async fn oidcc_request_uri_signed_rs256() {
    let w = world().await;
    let algs = w.discovery["request_object_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.iter().any(|a| a == "RS256"), "{algs:?}");
    let client = w.key_client(&["--request-object-alg", "RS256"]);
    let (state, nonce) = (alnum10(), alnum10());
    // RS256 with the registered key and no kid, iss = client_id, aud = issuer.
    let object = w.rp.sign(
        &json!({
            "iss": client.id, "aud": w.server.issuer, "client_id": client.id, "redirect_uri": CALLBACK,
            "response_type": "code", "scope": "openid", "state": state, "nonce": nonce,
        }),
        false,
    );
    let uri = w.rp.serve(&object);
    let p = [
        ("client_id", client.id.as_str()),
        ("request_uri", uri.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let o = w.authorize(&p).await;
    assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
    w.redeem(&client, &o.code(), Some(&nonce), &w.assertion(&client, &w.token_endpoint(), 60)).await;
}

#[tokio::test]
async fn oidcc_server_with_private_key_jwt() {
    let w = world().await;
    let methods = w.discovery["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "private_key_jwt"), "{methods:?}");
    let client = w.key_client(&[]);
    let t = w.code_flow(&client, "openid", &w.token_endpoint()).await;
    check_userinfo(&w.server.userinfo(&t.access_token).await);
}

#[tokio::test]
async fn oidcc_ensure_client_assertion_with_iss_aud_succeeds() {
    let w = world().await;
    let client = w.key_client(&[]);
    // aud is the issuer rather than the token endpoint: accepted (the preferred outcome).
    let issuer = w.server.issuer.clone();
    let t = w.code_flow(&client, "openid", &issuer).await;
    check_userinfo(&w.server.userinfo(&t.access_token).await);
}

#[tokio::test]
async fn oidcc_refresh_token_rp_key_rotation() {
    let w = world().await;
    let client = w.key_client(&["--grant-type", "authorization_code", "--grant-type", "refresh_token"]);
    let grants = w.discovery["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == "refresh_token"));
    let (state, nonce) = (alnum10(), alnum10());
    let mut p = auth_params(&client, "openid offline_access", &state, &nonce);
    p.push(("prompt", "consent"));
    let o = w.authorize(&p).await;
    let t = w.redeem(&client, &o.code(), Some(&nonce), &w.assertion(&client, &w.token_endpoint(), 60)).await;
    let reads = w.rp.jwks_reads();
    assert!(reads >= 1, "the OP read the RP's jwks_uri");
    // The RP replaces its key with a new kid, waits its refresh delay, and refreshes.
    w.rp.rotate("key-2");
    w.server.advance(61);
    let assertion = w.assertion(&client, &w.token_endpoint(), 60);
    let r = w
        .post_with("/token", &assertion, &[("grant_type", "refresh_token"), ("refresh_token", t.refresh_token())])
        .await;
    assert_eq!(r.status, 200, "refresh with the rotated key: {r:?}");
    assert_eq!(w.rp.jwks_reads(), reads + 1, "the unknown kid made the OP read the keys again, once");
    let n = Tokens::from_json(r.json());
    check_userinfo(&w.server.userinfo(&n.access_token).await);
}

/// private_key_jwt works at the revocation and introspection endpoints too.
#[tokio::test]
async fn private_key_jwt_at_revocation_and_introspection() {
    let w = world().await;
    let client = w.key_client(&[]);
    let t = w.code_flow(&client, "openid", &w.token_endpoint()).await;
    let introspect = w.server.url("/introspect");
    let r = w.post_with("/introspect", &w.assertion(&client, &introspect, 60), &[("token", &t.access_token)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["active"], json!(true), "{r:?}");
    let r = w.post_with("/revoke", &w.assertion(&client, &w.token_endpoint(), 60), &[("token", &t.access_token)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = w.post_with("/introspect", &w.assertion(&client, &introspect, 60), &[("token", &t.access_token)]).await;
    assert_eq!(r.json()["active"], json!(false), "revoked: {r:?}");
}

/// A code for `client`, and the parameters of its exchange.
async fn code_for(w: &World, client: &TestClient) -> String {
    let (state, nonce) = (alnum10(), alnum10());
    w.authorize(&auth_params(client, "openid", &state, &nonce)).await.code()
}

fn exchange(code: &str) -> [(&str, &str); 3] {
    [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)]
}

/// plans.md 2.9: 400 or 401 with `invalid_client`.
fn assert_invalid_client(r: &Resp) {
    assert!(matches!(r.status, 400 | 401), "{r:?}");
    assert_eq!(r.json()["error"], "invalid_client", "{r:?}");
    check_error_chars(&r.json());
}

#[tokio::test]
async fn a_client_assertion_is_single_use() {
    let w = world().await;
    let client = w.key_client(&[]);
    let assertion = w.assertion(&client, &w.token_endpoint(), 60);
    let code = code_for(&w, &client).await;
    let r = w.post_with("/token", &assertion, &exchange(&code)).await;
    assert_eq!(r.status, 200, "{r:?}");
    // The same jti again, here for another code: refused.
    let code = code_for(&w, &client).await;
    assert_invalid_client(&w.post_with("/token", &assertion, &exchange(&code)).await);
    // A fresh one works for that code.
    let r = w.post_with("/token", &w.assertion(&client, &w.token_endpoint(), 60), &exchange(&code)).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_client_assertion_for_another_audience_is_refused() {
    let w = world().await;
    let client = w.key_client(&[]);
    let code = code_for(&w, &client).await;
    for aud in ["https://other.example.com/token", "https://other.example.com"] {
        assert_invalid_client(&w.post_with("/token", &w.assertion(&client, aud, 60), &exchange(&code)).await);
    }
    let r = w.post_with("/token", &w.assertion(&client, &w.token_endpoint(), 60), &exchange(&code)).await;
    assert_eq!(r.status, 200, "the code was not spent by the refusals: {r:?}");
}

#[tokio::test]
async fn an_expired_or_far_off_client_assertion_is_refused() {
    let w = world().await;
    let client = w.key_client(&[]);
    let code = code_for(&w, &client).await;
    let expired = w.assertion(&client, &w.token_endpoint(), 30);
    w.server.advance(31);
    assert_invalid_client(&w.post_with("/token", &expired, &exchange(&code)).await);
    // exp a day ahead: its jti would have to be remembered as long.
    let far = w.assertion(&client, &w.token_endpoint(), 86_400);
    assert_invalid_client(&w.post_with("/token", &far, &exchange(&code)).await);
    // No exp at all.
    let now = w.server.now();
    let no_exp = w.rp.sign(
        &json!({ "iss": client.id, "sub": client.id, "aud": w.token_endpoint(), "jti": random_string(), "iat": now }),
        true,
    );
    assert_invalid_client(&w.post_with("/token", &no_exp, &exchange(&code)).await);
}

#[tokio::test]
async fn a_client_assertion_signed_with_another_key_or_by_a_secret_client_is_refused() {
    let w = world().await;
    let client = w.key_client(&[]);
    let code = code_for(&w, &client).await;
    let now = w.server.now();
    let claims = json!({ "iss": client.id, "sub": client.id, "aud": w.token_endpoint(), "jti": random_string(), "exp": now + 60 });
    let stranger = RsaKeyPair::generate(2048).unwrap();
    assert_invalid_client(
        &w.post_with("/token", &sign_with(&stranger, Some("key-1"), &claims), &exchange(&code)).await,
    );
    // A client_secret_basic client cannot switch to an assertion.
    let secret_client = w.server.confidential_client();
    let claims = json!({ "iss": secret_client.id, "sub": secret_client.id, "aud": w.token_endpoint(), "jti": random_string(), "exp": now + 60 });
    assert_invalid_client(&w.post_with("/token", &w.rp.sign(&claims, true), &exchange(&code)).await);
}

/// An error sent back for a refused request object: the expected error, and `state` kept.
async fn object_error(w: &World, params: &[(&str, &str)], state: &str) -> String {
    let b = w.server.browser();
    let o = b.complete(b.authorize(params).await, None, Decision::NotExpected).await;
    assert_eq!(o.target, CALLBACK, "{o:?}");
    check_authorization_error(&o, Some(state), &w.server.issuer)
}

#[tokio::test]
async fn a_request_object_signed_with_another_key_is_refused_with_its_state() {
    let w = world().await;
    let client = w.key_client(&["--request-object-alg", "RS256"]);
    let state = alnum10();
    let claims = json!({
        "iss": client.id, "aud": w.server.issuer, "client_id": client.id, "redirect_uri": CALLBACK,
        "response_type": "code", "scope": "openid", "state": state,
    });
    let forged = sign_with(&RsaKeyPair::generate(2048).unwrap(), None, &claims);
    // state only inside the object: read from it although the object is refused.
    let p = [
        ("client_id", client.id.as_str()),
        ("request", forged.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    assert_eq!(object_error(&w, &p, &state).await, "invalid_request_object");
    // The registered key signs it, but for another issuer.
    let mut other = claims.clone();
    other["aud"] = json!("https://other.example.com");
    let wrong_aud = w.rp.sign(&other, false);
    let p = [
        ("client_id", client.id.as_str()),
        ("request", wrong_aud.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    assert_eq!(object_error(&w, &p, &state).await, "invalid_request_object");
    // Or naming another client inside.
    let mut other = claims.clone();
    other["client_id"] = json!("someone-else");
    let wrong_client = w.rp.sign(&other, false);
    let p = [
        ("client_id", client.id.as_str()),
        ("request", wrong_client.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    assert_eq!(object_error(&w, &p, &state).await, "invalid_request_object");
    // The same object, properly signed, is accepted.
    let good = w.rp.sign(&claims, false);
    let p =
        [("client_id", client.id.as_str()), ("request", good.as_str()), ("response_type", "code"), ("scope", "openid")];
    let o = w.authorize(&p).await;
    assert_eq!(o.param("state"), Some(state.as_str()));
    o.code();
}

#[tokio::test]
async fn an_unsigned_request_object_needs_the_client_to_opt_in() {
    let w = world().await;
    for client in [w.server.confidential_client(), w.key_client(&["--request-object-alg", "RS256"]), w.key_client(&[])]
    {
        let state = alnum10();
        let object = unsigned(&json!({
            "client_id": client.id, "redirect_uri": CALLBACK, "response_type": "code", "scope": "openid", "state": state,
        }));
        let p = [
            ("client_id", client.id.as_str()),
            ("request", object.as_str()),
            ("response_type", "code"),
            ("scope", "openid"),
        ];
        assert_eq!(object_error(&w, &p, &state).await, "invalid_request_object");
    }
    // And a client registered for none gets no signed objects either (Registration §2).
    let client = w.key_client(&["--request-object-alg", "none"]);
    let state = alnum10();
    let signed = w.rp.sign(&json!({ "client_id": client.id, "redirect_uri": CALLBACK, "state": state }), true);
    let p = [
        ("client_id", client.id.as_str()),
        ("request", signed.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    assert_eq!(object_error(&w, &p, &state).await, "invalid_request_object");
}

#[tokio::test]
async fn an_encrypted_request_object_is_refused() {
    let w = world().await;
    let client = w.key_client(&[]);
    // A JWE's five parts (RFC 7516 §7.1); the state in the query still goes back.
    let jwe = format!("{}.a.b.c.d", URL_SAFE_NO_PAD.encode(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#));
    let mut p = auth_params(&client, "openid", "jwe-state", "n");
    p.push(("request", &jwe));
    assert_eq!(object_error(&w, &p, "jwe-state").await, "invalid_request_object");
}

#[tokio::test]
async fn the_cli_checks_client_keys() {
    let w = world().await;
    // private_key_jwt without keys, a jwks_uri over plain http to another host, private keys.
    let (ok, _, err) = w.server.cli_raw(
        &["clients", "add", "--name", "x", "--redirect-uri", CALLBACK, "--auth-method", "private_key_jwt"],
        None,
    );
    assert!(!ok && err.contains("--jwks-uri"), "{err}");
    let (ok, _, err) = w.server.cli_raw(
        &["clients", "add", "--name", "x", "--redirect-uri", CALLBACK, "--jwks-uri", "http://keys.example.com/jwks"],
        None,
    );
    assert!(!ok && err.contains("https"), "{err}");
    let dir = std::env::temp_dir().join(format!("latchkey-jwks-{}", alnum10()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.json");
    std::fs::write(&private, json!({ "keys": [w.rp.key().1.to_jwk_private_key().as_ref()] }).to_string()).unwrap();
    let (ok, _, err) = w.server.cli_raw(
        &["clients", "add", "--name", "x", "--redirect-uri", CALLBACK, "--jwks", private.to_str().unwrap()],
        None,
    );
    assert!(!ok && err.contains("private"), "{err}");
    // An inline JWK Set, then `clients update` moving the client to its jwks_uri.
    let public = dir.join("public.json");
    let mut jwk = w.rp.key().1.to_jwk_public_key();
    jwk.set_key_id("key-1");
    std::fs::write(&public, json!({ "keys": [jwk.as_ref()] }).to_string()).unwrap();
    let client = w.server.add_client(
        "inline rp",
        &["--redirect-uri", CALLBACK, "--auth-method", "private_key_jwt", "--jwks", public.to_str().unwrap()],
    );
    w.code_flow(&client, "openid", &w.token_endpoint()).await;
    let reads = w.rp.jwks_reads();
    w.server.cli(&["clients", "update", &client.id, "--jwks-uri", &w.rp.jwks_uri(), "--json"]);
    let shown = w.server.cli(&["clients", "show", &client.id, "--json"]);
    assert_eq!(shown["jwks_uri"], json!(w.rp.jwks_uri()), "{shown}");
    assert!(shown.get("jwks").is_none(), "{shown}");
    // The server reads a changed client again once its client cache's two seconds are over.
    w.server.advance(3);
    w.code_flow(&client, "openid", &w.token_endpoint()).await;
    assert!(w.rp.jwks_reads() > reads, "keys now come from the jwks_uri");
    std::fs::remove_dir_all(&dir).ok();
}
