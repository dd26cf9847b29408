//! The conformance modules that need a client's own keys (plans.md 4.6 rows 33, 7.2 row 10, 7.3
//! rows 18–20 and 23): request objects by value and by `request_uri` (OIDC Core §6, RFC 9101)
//! and `private_key_jwt` client authentication (OIDC Core §9, RFC 7523), one test per module,
//! named after it, with the clients registered through the CLI as an operator would. Then the
//! refusals: a reused `jti`, another audience, an expired assertion, a request object signed
//! with another key, unsigned for a client that did not opt in, encrypted. And
//! `client_secret_jwt` (OIDC Core §9): assertions MAC'd with the client's secret, the same
//! checks and refusals, and the secret sealed at rest and re-sealed by `keys rewrap`.
//!
//! The relying party's side is a small server inside the test ([`Rp`]): its `jwks_uri` and the
//! request objects it serves by reference.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::relying_party::*;
use common::*;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{HS256, HS384, HS512, JwsHeader, JwsSigner};
use serde_json::{Value, json};

/// One module's world: the OP with alice, the RP's server, and the OP's discovery and JWKS.
struct World {
    server: Server,
    rp: Rp,
    discovery: Value,
    jwks: Value,
}

async fn world() -> World {
    world_with(&[]).await
}

async fn world_with(env: &[(&str, &str)]) -> World {
    let server = Server::start_with(env);
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

// ---- client_secret_jwt (OIDC Core §9, RFC 7523 §2.2) ----

/// `claims` MAC'd under `alg` with `secret`'s octets, as a client_secret_jwt client (and the
/// conformance suite, plans.md 2.1) makes its assertions: no kid.
fn mac(alg: &str, secret: &str, claims: &Value) -> String {
    let mut h = JwsHeader::new();
    h.set_token_type("JWT");
    let signer: Box<dyn JwsSigner> = match alg {
        "HS256" => Box::new(HS256.signer_from_bytes(secret.as_bytes()).unwrap()),
        "HS384" => Box::new(HS384.signer_from_bytes(secret.as_bytes()).unwrap()),
        "HS512" => Box::new(HS512.signer_from_bytes(secret.as_bytes()).unwrap()),
        other => panic!("{other} is not an HMAC"),
    };
    josekit::jws::serialize_compact(claims.to_string().as_bytes(), &h, signer.as_ref()).unwrap()
}

impl World {
    /// A client_secret_jwt client registered through the CLI, plus `args`.
    fn secret_jwt_client(&self, args: &[&str]) -> TestClient {
        let mut all = vec!["--redirect-uri", CALLBACK, "--auth-method", "client_secret_jwt"];
        all.extend_from_slice(args);
        let client = self.server.add_client("secret jwt rp", &all);
        // An HMAC key as long as HS512's hash (RFC 7518 §3.2): 64 octets or more.
        assert!(client.secret().len() >= 64, "{client:?}");
        client
    }

    /// The claims of a fresh assertion (RFC 7523 §3) for `client` with `aud`, as plans.md 2.1
    /// sends them.
    fn assertion_claims(&self, client: &TestClient, aud: &str) -> Value {
        let now = self.server.now();
        json!({ "iss": client.id, "sub": client.id, "aud": aud, "jti": random_string(), "iat": now, "nbf": now, "exp": now + 60 })
    }

    /// A fresh assertion for `client`, MAC'd under `alg` with its secret.
    fn mac_assertion(&self, client: &TestClient, alg: &str, aud: &str) -> String {
        mac(alg, client.secret(), &self.assertion_claims(client, aud))
    }
}

#[tokio::test]
async fn oidcc_server_with_client_secret_jwt() {
    let w = world().await;
    let methods = w.discovery["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "client_secret_jwt"), "{methods:?}");
    for endpoint in ["token", "revocation", "introspection"] {
        let algs = w.discovery[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")].as_array().unwrap();
        assert!(["HS256", "HS384", "HS512"].iter().all(|a| algs.iter().any(|x| x == a)), "{endpoint}: {algs:?}");
    }
    let client = w.secret_jwt_client(&[]);
    // The suite's way: HS256, aud the token endpoint, no client_id.
    let (state, nonce) = (alnum10(), alnum10());
    let o = w.authorize(&auth_params(&client, "openid", &state, &nonce)).await;
    assert_eq!(o.param("state"), Some(state.as_str()), "{o:?}");
    let t = w.redeem(&client, &o.code(), Some(&nonce), &w.mac_assertion(&client, "HS256", &w.token_endpoint())).await;
    check_userinfo(&w.server.userinfo(&t.access_token).await);
    // ensure-client-assertion-with-iss-aud-succeeds: aud the issuer; and, with no algorithm
    // registered, HS384 and HS512 as well.
    for alg in ["HS384", "HS512"] {
        let code = code_for(&w, &client).await;
        let r = w.post_with("/token", &w.mac_assertion(&client, alg, &w.server.issuer), &exchange(&code)).await;
        assert_eq!(r.status, 200, "{alg}: {r:?}");
    }
    // At introspection and revocation too, with client_id in the body as well.
    let introspect = w.server.url("/introspect");
    let p = [("token", t.access_token.as_str()), ("client_id", client.id.as_str())];
    let r = w.post_with("/introspect", &w.mac_assertion(&client, "HS256", &introspect), &p).await;
    assert_eq!(r.json()["active"], json!(true), "{r:?}");
    let r = w.post_with("/revoke", &w.mac_assertion(&client, "HS256", &w.token_endpoint()), &p).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = w.post_with("/introspect", &w.mac_assertion(&client, "HS256", &introspect), &p).await;
    assert_eq!(r.json()["active"], json!(false), "revoked: {r:?}");
}

#[tokio::test]
async fn client_secret_jwt_refuses_a_wrong_secret_replay_audience_none_rs256_and_another_hmac() {
    let w = world().await;
    let client = w.secret_jwt_client(&["--token-auth-alg", "HS256"]);
    let shown = w.server.cli(&["clients", "show", &client.id, "--json"]);
    assert_eq!(
        (shown["auth_method"].as_str(), shown["token_endpoint_auth_signing_alg"].as_str()),
        (Some("client_secret_jwt"), Some("HS256")),
        "{shown}"
    );
    let code = code_for(&w, &client).await;
    let claims = || w.assertion_claims(&client, &w.token_endpoint());
    // Another secret (the length of the real one, so only the MAC differs).
    let wrong = "x".repeat(client.secret().len());
    assert_invalid_client(&w.post_with("/token", &mac("HS256", &wrong, &claims()), &exchange(&code)).await);
    // Another audience.
    let other = w.mac_assertion(&client, "HS256", "https://other.example.com/token");
    assert_invalid_client(&w.post_with("/token", &other, &exchange(&code)).await);
    // alg none: no MAC at all.
    assert_invalid_client(&w.post_with("/token", &unsigned(&claims()), &exchange(&code)).await);
    // RS256, with a key the RP publishes: a client_secret_jwt client has no keys to verify with.
    assert_invalid_client(&w.post_with("/token", &w.rp.sign(&claims(), false), &exchange(&code)).await);
    // HS512 with the right secret, where HS256 is registered.
    assert_invalid_client(
        &w.post_with("/token", &w.mac_assertion(&client, "HS512", &w.server.issuer), &exchange(&code)).await,
    );
    // The secret itself, sent as client_secret_basic or client_secret_post: not its method.
    let basic = Auth::Basic(client.id.clone(), client.secret().to_owned());
    assert_invalid_client(&w.server.post_form("/token", &basic, &exchange(&code)).await);
    let post = Auth::Post(client.id.clone(), client.secret().to_owned());
    assert_invalid_client(&w.server.post_form("/token", &post, &exchange(&code)).await);
    // The right one works, once: its jti again, for another code, is refused.
    let good = w.mac_assertion(&client, "HS256", &w.token_endpoint());
    let r = w.post_with("/token", &good, &exchange(&code)).await;
    assert_eq!(r.status, 200, "the code was not spent by the refusals: {r:?}");
    let code = code_for(&w, &client).await;
    assert_invalid_client(&w.post_with("/token", &good, &exchange(&code)).await);
    // A signature algorithm cannot be registered for it, at add or at update.
    let (ok, _, err) = w.server.cli_raw(
        &[
            "clients",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            CALLBACK,
            "--auth-method",
            "client_secret_jwt",
            "--token-auth-alg",
            "RS256",
        ],
        None,
    );
    assert!(!ok && err.contains("HS256"), "{err}");
    let (ok, _, err) = w.server.cli_raw(&["clients", "update", &client.id, "--token-auth-alg", "PS256"], None);
    assert!(!ok && err.contains("HS256"), "{err}");
    // Nor an HMAC for a private_key_jwt client.
    let uri = w.rp.jwks_uri();
    let (ok, _, err) = w.server.cli_raw(
        &[
            "clients",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            CALLBACK,
            "--auth-method",
            "private_key_jwt",
            "--jwks-uri",
            &uri,
            "--token-auth-alg",
            "HS256",
        ],
        None,
    );
    assert!(!ok && err.contains("RS256"), "{err}");
}

/// The database as text: the SQLite file and its write-ahead log, or every row of `clients` in
/// Postgres.
fn raw_clients(server: &Server) -> String {
    if server.backends().uses_postgres() {
        server.db_strings("SELECT CAST(t AS TEXT) FROM clients t").join("\n")
    } else {
        let mut bytes = Vec::new();
        for file in ["latchkey.db", "latchkey.db-wal"] {
            if let Ok(b) = std::fs::read(server.data_dir.join(file)) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[tokio::test]
async fn a_client_secret_jwt_secret_is_sealed_at_rest_and_rewrap_keeps_it_working() {
    // Two nodes of one deployment share the issuer (as behind a load balancer).
    let w = world_with(&[("LATCHKEY_ISSUER", "http://localhost:9")]).await;
    let client = w.secret_jwt_client(&[]);
    // (Not used at the server before the update below: a node reads a changed client within its
    // client cache's two seconds, and this test does not wait for that.)
    let basic = w.server.confidential_client();
    let sealed = |id: &str| {
        w.server
            .db_strings(&format!("SELECT secret_sealed FROM clients WHERE id = '{id}' AND secret_sealed IS NOT NULL"))
    };
    // Sealed for the client_secret_jwt client; only the hash for the client_secret_basic one.
    let before = sealed(&client.id);
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(sealed(&basic.id).is_empty());
    let raw = raw_clients(&w.server);
    assert!(raw.contains(&client.id), "the database was read");
    for secret in [client.secret(), basic.secret()] {
        assert!(!raw.contains(secret), "a client secret in clear in the database");
    }
    let t = w.code_flow_mac(&client).await;
    // `clients update --auth-method client_secret_jwt` moves the other client over with a new
    // secret (its old one is only a hash), printed once and sealed.
    let moved = w.server.cli(&["clients", "update", &basic.id, "--auth-method", "client_secret_jwt", "--json"]);
    assert_eq!(moved["auth_method"], "client_secret_jwt", "{moved}");
    let secret = moved["client_secret"].as_str().unwrap_or_else(|| panic!("a new secret: {moved}")).to_owned();
    assert!(secret.len() >= 64 && secret != basic.secret());
    let moved = TestClient { secret: Some(secret), ..basic.clone() };
    assert_eq!(sealed(&moved.id).len(), 1);
    assert!(!raw_clients(&w.server).contains(moved.secret()));
    let audit = w.server.db_strings("SELECT detail FROM audit_events WHERE kind = 'admin.client_updated'");
    assert!(audit.iter().all(|d| !d.contains(moved.secret())), "the secret is not audited: {audit:?}");

    let out = w.server.cli(&["keys", "rewrap", "--json"]);
    assert!(out["personal_data_rows"].as_u64().unwrap_or_else(|| panic!("{out}")) >= 1, "{out}");
    let after = sealed(&client.id);
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "re-sealed under the new KEK");
    std::fs::remove_file(w.server.data_dir.join("keys/kek.previous")).unwrap();
    assert!(!raw_clients(&w.server).contains(client.secret()));

    // A node started now knows only the new KEK and reads the client afresh: the re-sealed
    // secret verifies the client's assertions there; and on the running node, which follows.
    let peer = w.server.start_peer();
    let assertion = w.mac_assertion(&client, "HS256", &w.server.issuer);
    let p = [
        ("token", t.access_token.as_str()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let r = peer.post_form("/introspect", &Auth::Nothing, &p).await;
    assert_eq!((r.status, &r.json()["active"]), (200, &json!(true)), "{r:?}");
    w.code_flow_mac(&client).await;
    w.code_flow_mac(&moved).await;
}

impl World {
    /// A whole code flow for a client_secret_jwt client, HS256, aud the token endpoint.
    async fn code_flow_mac(&self, client: &TestClient) -> Tokens {
        let (state, nonce) = (alnum10(), alnum10());
        let o = self.authorize(&auth_params(client, "openid", &state, &nonce)).await;
        self.redeem(client, &o.code(), Some(&nonce), &self.mac_assertion(client, "HS256", &self.token_endpoint())).await
    }
}
