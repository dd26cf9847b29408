//! The conformance suite's Config OP plan (`oidcc-config-certification-test-plan`, plans.md
//! section 6): `oidcc-discovery-endpoint-verification` with the static-client rules of section 3.
//!
//! The suite requires an https issuer, so the server runs with
//! `LATCHKEY_ISSUER=https://login.example.test` and is reached on its listening address.

mod common;

use common::*;
use serde_json::Value;
use url::Url;

const ISSUER: &str = "https://login.example.test";

/// Known metadata members by JSON type (RFC 8414, OIDC Discovery, RFC 9207, logout specs and
/// the other registrations the suite's schema lists).
const URI_MEMBERS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "registration_endpoint",
    "service_documentation",
    "op_policy_uri",
    "op_tos_uri",
    "revocation_endpoint",
    "introspection_endpoint",
    "userinfo_endpoint",
    "end_session_endpoint",
    "check_session_iframe",
    "pushed_authorization_request_endpoint",
    "device_authorization_endpoint",
    "backchannel_authentication_endpoint",
];
const ARRAY_MEMBERS: &[&str] = &[
    "scopes_supported",
    "response_types_supported",
    "response_modes_supported",
    "grant_types_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "ui_locales_supported",
    "revocation_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_signing_alg_values_supported",
    "introspection_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_signing_alg_values_supported",
    "code_challenge_methods_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "id_token_encryption_alg_values_supported",
    "id_token_encryption_enc_values_supported",
    "userinfo_signing_alg_values_supported",
    "userinfo_encryption_alg_values_supported",
    "userinfo_encryption_enc_values_supported",
    "request_object_signing_alg_values_supported",
    "request_object_encryption_alg_values_supported",
    "request_object_encryption_enc_values_supported",
    "display_values_supported",
    "claim_types_supported",
    "claims_supported",
    "claims_locales_supported",
    "acr_values_supported",
    "dpop_signing_alg_values_supported",
    "authorization_details_types_supported",
    "prompt_values_supported",
    "authorization_signing_alg_values_supported",
];
const BOOL_MEMBERS: &[&str] = &[
    "claims_parameter_supported",
    "request_parameter_supported",
    "request_uri_parameter_supported",
    "require_request_uri_registration",
    "frontchannel_logout_supported",
    "frontchannel_logout_session_supported",
    "backchannel_logout_supported",
    "backchannel_logout_session_supported",
    "require_pushed_authorization_requests",
    "authorization_response_iss_parameter_supported",
    "tls_client_certificate_bound_access_tokens",
    "require_signed_request_object",
];

fn strings(d: &Value, m: &str) -> Vec<String> {
    d[m].as_array()
        .unwrap_or_else(|| panic!("{m} must be an array"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let server = Server::start_with(&[("LATCHKEY_ISSUER", ISSUER)]);
    assert_eq!(server.issuer, ISSUER);

    // 3.1 fetch and document.
    let r = server.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json", "{r:?}");
    let d = r.json();
    let obj = d.as_object().expect("a JSON object");
    for (k, v) in obj {
        if URI_MEMBERS.contains(&k.as_str()) {
            assert!(v.as_str().is_some_and(|s| Url::parse(s).is_ok()), "{k} must be a URI string: {v}");
        } else if ARRAY_MEMBERS.contains(&k.as_str()) {
            assert!(
                v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                "{k} must be an array of strings: {v}"
            );
        } else if BOOL_MEMBERS.contains(&k.as_str()) {
            assert!(v.is_boolean(), "{k} must be a boolean: {v}");
        } else {
            panic!("member {k} is not in the suite's metadata schema (WARN)");
        }
    }

    // Issuer: the discovery URL minus the well-known suffix; https, host, no query/fragment/userinfo.
    let discovery_url = format!("{ISSUER}/.well-known/openid-configuration");
    let issuer = d["issuer"].as_str().unwrap();
    assert_eq!(issuer.trim_end_matches('/'), discovery_url.strip_suffix("/.well-known/openid-configuration").unwrap());
    let iu = Url::parse(issuer).unwrap();
    assert_eq!(iu.scheme(), "https");
    assert!(iu.host_str().is_some());
    assert!(iu.query().is_none() && iu.fragment().is_none());
    assert!(iu.username().is_empty() && iu.password().is_none());

    // 3.2 endpoints: every *_endpoint (and jwks_uri) is https.
    for m in ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"] {
        assert!(d.get(m).is_some(), "{m} missing");
    }
    for (k, v) in obj {
        if k.ends_with("_endpoint") || k == "jwks_uri" {
            let u = Url::parse(v.as_str().unwrap()).unwrap();
            assert_eq!(u.scheme(), "https", "{k} must be https: {v}");
        }
    }
    // The JWKS behind jwks_uri (fetched on the listening address).
    let jwks_path = d["jwks_uri"].as_str().unwrap().strip_prefix(ISSUER).unwrap();
    let jr = server.get(jwks_path).await;
    assert_eq!(jr.status, 200, "{jr:?}");
    let jwks = jr.json();
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    for k in keys {
        for p in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(p).is_none(), "private member {p}");
        }
    }

    // 3.3 supported-value lists (static-client rules).
    assert!(strings(&d, "response_types_supported").iter().any(|r| r == "code"));
    let grants = strings(&d, "grant_types_supported");
    assert!(!grants.is_empty());
    assert!(grants.iter().any(|g| g == "refresh_token"), "refresh tokens are issued (WARN)");
    let subjects = strings(&d, "subject_types_supported");
    assert!(subjects.iter().any(|s| s == "public" || s == "pairwise"));
    assert!(strings(&d, "id_token_signing_alg_values_supported").iter().any(|a| a == "RS256"));
    let scopes = strings(&d, "scopes_supported");
    assert!(scopes.iter().any(|s| s == "openid"));
    for s in &scopes {
        assert!(
            !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)),
            "invalid scope token {s:?}"
        );
    }
    assert!(d["claims_supported"].is_array(), "claims_supported (WARN)");
    let pkce = strings(&d, "code_challenge_methods_supported");
    assert!(pkce.iter().any(|m| m == "S256" || m == "plain"));
    let auth = strings(&d, "token_endpoint_auth_methods_supported");
    assert!(auth.iter().any(|m| m == "client_secret_basic"));
    if d.get("request_object_signing_alg_values_supported").is_some() {
        let algs = strings(&d, "request_object_signing_alg_values_supported");
        assert!(algs.iter().any(|a| a == "RS256"), "RS256 for request objects (WARN)");
    }
    for m in ["ui_locales_supported", "claims_locales_supported"] {
        if d.get(m).is_some() {
            for tag in strings(&d, m) {
                assert!(
                    tag.split('-')
                        .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric())),
                    "{m}: {tag} is not a BCP 47 tag"
                );
            }
        }
    }
}
