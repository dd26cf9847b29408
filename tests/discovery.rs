//! OpenID Connect Discovery 1.0 §3–4 and the JWKS (RFC 7517) as Latchkey publishes them.

mod common;

use std::collections::HashSet;

use common::*;
use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;
use serde_json::json;

#[tokio::test]
async fn discovery_issuer_is_base_url_and_every_endpoint_is_listed() {
    let server = Server::start();
    let r = server.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json", "{r:?}");
    let d = r.json();
    let base = &server.issuer;
    assert!(base.starts_with("http://localhost:"), "issuer {base}");
    assert_eq!(d["issuer"], base.as_str());
    for (member, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/logout"),
        ("device_authorization_endpoint", "/device_authorization"),
        ("registration_endpoint", "/register"),
    ] {
        assert_eq!(d[member], format!("{base}{path}"), "{member} in {d}");
    }
    let set = |m: &str| -> HashSet<String> {
        d[m].as_array()
            .unwrap_or_else(|| panic!("{m} must be an array: {d}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let of = |v: &[&str]| -> HashSet<String> { v.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        set("scopes_supported"),
        of(&["openid", "profile", "email", "address", "phone", "offline_access", "groups", "roles"])
    );
    assert_eq!(set("response_types_supported"), of(&["code"]));
    assert_eq!(set("response_modes_supported"), of(&["query", "form_post"]));
    assert_eq!(
        set("grant_types_supported"),
        of(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(set("code_challenge_methods_supported"), of(&["S256"]));
    assert_eq!(
        set("token_endpoint_auth_methods_supported"),
        of(&["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"])
    );
    let assertion_algs = of(&["RS256", "PS256", "ES256", "EdDSA", "HS256", "HS384", "HS512"]);
    for endpoint in ["token", "revocation", "introspection"] {
        assert_eq!(set(&format!("{endpoint}_endpoint_auth_signing_alg_values_supported")), assertion_algs);
    }
    // Every algorithm has an active key from the first start.
    assert_eq!(set("id_token_signing_alg_values_supported"), of(&["RS256", "PS256", "ES256", "EdDSA"]));
    assert_eq!(set("subject_types_supported"), of(&["public", "pairwise"]));
    assert_eq!(set("userinfo_signing_alg_values_supported"), of(&["RS256", "PS256", "ES256", "EdDSA"]));
    for logout in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(d[logout], json!(true), "{logout}");
    }
    let claims = set("claims_supported");
    for c in ["sub", "iss", "auth_time", "acr", "name", "email", "email_verified"] {
        assert!(claims.contains(c), "claims_supported lacks {c}: {claims:?}");
    }
    assert!(!set("acr_values_supported").is_empty(), "acr_values_supported");
    assert_eq!(d["authorization_response_iss_parameter_supported"], json!(true));
    assert_eq!(d["claims_parameter_supported"], json!(true));
    assert_eq!(d["request_parameter_supported"], json!(true));
    assert_eq!(d["request_uri_parameter_supported"], json!(true));
    assert_eq!(d["require_request_uri_registration"], json!(false));
    assert_eq!(set("request_object_signing_alg_values_supported"), of(&["none", "RS256", "PS256", "ES256", "EdDSA"]));
}

#[tokio::test]
async fn jwks_keys_have_unique_kids_and_no_private_parts() {
    let server = Server::start();
    let r = server.get("/jwks").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(matches!(r.media_type().as_str(), "application/json" | "application/jwk-set+json"), "{r:?}");
    let jwks = r.json();
    let keys = jwks["keys"].as_array().expect("keys array");
    assert!(!keys.is_empty(), "no keys: {jwks}");
    let mut kids = HashSet::new();
    for k in keys {
        let kid = k["kid"].as_str().unwrap_or_else(|| panic!("key without kid: {k}"));
        assert!(!kid.is_empty(), "empty kid");
        assert!(kids.insert(kid.to_string()), "duplicate kid {kid}: {jwks}");
        match k["alg"].as_str() {
            Some("RS256" | "PS256") => assert!(k["kty"] == "RSA" && k["n"].is_string() && k["e"].is_string(), "{k}"),
            Some("ES256") => assert!(k["kty"] == "EC" && k["crv"] == "P-256" && k["x"].is_string(), "{k}"),
            Some("EdDSA") => assert!(k["kty"] == "OKP" && k["crv"] == "Ed25519" && k["x"].is_string(), "{k}"),
            _ => panic!("every key names its alg: {k}"),
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(k.get(private).is_none(), "private member {private} in {k}");
        }
        if let Some(u) = k.get("use") {
            assert_eq!(u, "sig", "{k}");
        }
    }
    // The CLI sees the same key material: every published key is listed, and the ones that
    // sign (one per algorithm) are published.
    let listed = server.cli(&["keys", "list", "--json"]);
    let listed = listed.as_array().expect("keys list prints an array");
    let active: Vec<&str> =
        listed.iter().filter(|k| k["state"] == "active").map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(active.len(), 4, "one active key per algorithm: {listed:?}");
    for kid in &active {
        assert!(kids.contains(*kid), "active key {kid} not in JWKS");
    }
    for kid in &kids {
        assert!(listed.iter().any(|k| k["kid"] == kid.as_str()), "published kid {kid} not in `keys list`");
    }
}

#[tokio::test]
async fn openidconnect_rp_discovers_the_provider() {
    let server = Server::start();
    let http = server.rp_http();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
        .await
        .expect("openidconnect discovery (checks issuer and fetches the JWKS)");
    assert_eq!(metadata.issuer().as_str(), server.issuer);
    assert!(!metadata.jwks().keys().is_empty());
}

#[tokio::test]
async fn healthz_is_ok() {
    let server = Server::start();
    let r = server.get("/healthz").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn configured_issuer_is_used_everywhere() {
    let server = Server::start_with(&[("LATCHKEY_ISSUER", "https://login.example.test")]);
    assert_eq!(server.issuer, "https://login.example.test");
    let d = server.discovery().await;
    assert_eq!(d["issuer"], "https://login.example.test");
    assert_eq!(d["authorization_endpoint"], "https://login.example.test/authorize");
    assert_eq!(d["jwks_uri"], "https://login.example.test/jwks");
}
