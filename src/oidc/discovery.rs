//! OpenID Connect Discovery 1.0 §4 and the JWKS (RFC 7517). Both documents are bytes built once
//! and again only when the keys change (the signing algorithms on offer are those with an
//! active key), never per request.

use super::*;
use crate::domain::claims::{SCOPES_SUPPORTED, claims_supported};
use crate::domain::client::AuthAlg;
use crate::domain::{AuthMethod, GrantType};
use crate::keys::Alg;
use crate::login::policy::ACR_VALUES_SUPPORTED;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        .route(JWKS, get(jwks))
        .layer(crate::http::cors::public())
}

/// Introspection is for confidential clients only (see `oidc::introspect`).
const INTROSPECTION_AUTH_METHODS: [AuthMethod; 4] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretPost,
    AuthMethod::ClientSecretJwt,
    AuthMethod::PrivateKeyJwt,
];

/// Provider metadata (Discovery §3), derived from what this build really serves; `algs` are the
/// algorithms that have an active key; `require_par` is `tokens.require_par`; `mtls` says a
/// proxy passes client certificates (`mtls.trusted_proxies`, RFC 8705).
pub fn document(issuer: &str, algs: &[Alg], require_par: bool, mtls: bool) -> Value {
    // RFC 8705 §2: the mTLS methods where certificates can arrive, and none where they cannot.
    let methods = |list: &[AuthMethod]| -> Vec<&str> {
        let mut out: Vec<&str> = list.iter().filter(|m| !m.is_mtls()).map(|m| m.as_str()).collect();
        if mtls {
            out.extend(AuthMethod::MTLS.map(AuthMethod::as_str));
        }
        out
    };
    let algs: Vec<&str> = algs.iter().map(|a| a.as_str()).collect();
    let url = |p: &str| format!("{issuer}{p}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(AUTHORIZE),
        "token_endpoint": url(TOKEN),
        "userinfo_endpoint": url(USERINFO),
        "jwks_uri": url(JWKS),
        "revocation_endpoint": url(REVOKE),
        "introspection_endpoint": url(INTROSPECT),
        "end_session_endpoint": url(END_SESSION),
        "device_authorization_endpoint": url(device::AUTHORIZATION),
        "registration_endpoint": url(register::PATH),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": authorize::ResponseMode::SUPPORTED,
        "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
        "subject_types_supported": crate::domain::client_metadata::SubjectType::SUPPORTED,
        "id_token_signing_alg_values_supported": algs,
        // Signed userinfo (OIDC Core §5.3.2) for a client registered with an algorithm.
        "userinfo_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": methods(&AuthMethod::ALL),
        "revocation_endpoint_auth_methods_supported": methods(&AuthMethod::ALL),
        "introspection_endpoint_auth_methods_supported": methods(&INTROSPECTION_AUTH_METHODS),
        // Client assertions (OIDC Core §9): any signature we verify (private_key_jwt), any HMAC
        // (client_secret_jwt).
        "token_endpoint_auth_signing_alg_values_supported": AuthAlg::names(),
        "revocation_endpoint_auth_signing_alg_values_supported": AuthAlg::names(),
        "introspection_endpoint_auth_signing_alg_values_supported": AuthAlg::names(),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims_supported(),
        "claims_parameter_supported": true,
        // Request objects (OIDC Core §6): signed with the client's keys, or unsigned for a
        // client registered with request_object_signing_alg none; request_uri fetched without
        // prior registration.
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": false,
        "request_object_signing_alg_values_supported": authorize::request_object::algs_supported(),
        "acr_values_supported": ACR_VALUES_SUPPORTED,
        "prompt_values_supported": authorize::PROMPT_VALUES,
        "display_values_supported": ["page", "popup", "touch", "wap"],
        // The languages the pages are shipped in, as `ui_locales` may ask for them.
        "ui_locales_supported": crate::pages::i18n::shipped(),
        "claim_types_supported": ["normal"],
        "authorization_response_iss_parameter_supported": true,
        // Pushed authorization requests (RFC 9126 §5) and DPoP (RFC 9449 §5.1).
        "pushed_authorization_request_endpoint": url(authorize::par::PATH),
        "require_pushed_authorization_requests": require_par,
        "dpop_signing_alg_values_supported": dpop::ALGS.map(Alg::as_str),
        // Logout (OIDC Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3): both carry
        // the session's `sid`, so RPs can end just that session.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        // RFC 8705 §3.3: access tokens bound to the client certificate, for clients registered
        // for them. No `mtls_endpoint_aliases` (§5): the proxy asks for a certificate on the
        // issuer's own host names (optionally), so the endpoints above serve mTLS as they are.
        "tls_client_certificate_bound_access_tokens": mtls,
    })
}

async fn configuration(State(state): State<AppState>) -> impl IntoResponse {
    let require_par = state.settings.tokens.require_par;
    let mtls = state.settings.mtls.enabled();
    let doc =
        state.discovery.get(state.keys.algs(), |algs| document(&state.issuer, algs, require_par, mtls).to_string());
    json_bytes(doc, "public, max-age=3600".into())
}

/// The JWKS with `max-age = keys.jwks_max_age`: a client that refetches it that often has every
/// key before it signs (see `keys::lifecycle`).
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let cache = format!("public, max-age={}", state.settings.keys.jwks_max_age);
    json_bytes(state.keys.jwks().as_ref().clone(), cache)
}

fn json_bytes(body: String, cache: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CACHE_CONTROL, cache)], body)
}
