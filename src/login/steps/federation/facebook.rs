//! Facebook Login: the OAuth 2 code flow (RFC 6749 §4.1) with `state` and PKCE S256, the code
//! exchanged at the token endpoint, then the person read from the Graph API
//! (`/me?fields=id,name,email,first_name,last_name,picture`). Facebook gives no ID token, so
//! the app-scoped `id` is the subject, and its email is never taken as verified.

use super::{Failure, Identity, Started};
use crate::config::Upstream;
use crate::crypto::{b64url, random_token, sha256};
use crate::state::AppState;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The login dialog URL, with the `state` and PKCE verifier to keep (no nonce in OAuth 2).
pub fn authorization(state: &AppState, upstream: &Upstream) -> Started {
    let csrf = random_token();
    let verifier = random_token();
    let challenge = b64url(&sha256(verifier.as_bytes()));
    let mut url = url::Url::parse(upstream.authorization_url()).expect("checked at start-up");
    url.query_pairs_mut()
        .append_pair("client_id", &upstream.client_id)
        .append_pair("redirect_uri", &super::redirect_uri(state, upstream))
        .append_pair("response_type", "code")
        .append_pair("scope", &upstream.scopes().join(","))
        .append_pair("state", &csrf)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Started { url: url.to_string(), state: csrf, nonce: String::new(), pkce_verifier: verifier }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// Exchanges `code` and reads the person from the Graph API.
pub async fn identify(state: &AppState, upstream: &Upstream, code: &str, verifier: &str) -> Result<Identity, Failure> {
    let http = &state.upstream_http;
    let unreachable = |e: reqwest::Error| {
        tracing::warn!(upstream = %upstream.id, error = %e, "Facebook unreachable");
        Failure::unreachable(upstream)
    };
    let redirect_uri = super::redirect_uri(state, upstream);
    let form = [
        ("client_id", upstream.client_id.as_str()),
        ("client_secret", upstream.client_secret.0.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code", code),
        ("code_verifier", verifier),
    ];
    let resp = http.post(upstream.token_url()).form(&form).send().await.map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(Failure::invalid(upstream, "code refused"));
    }
    let token: TokenResponse = resp.json().await.map_err(|_| Failure::invalid(upstream, "bad token response"))?;
    let me = format!("{}/me", upstream.graph_url());
    let resp = http
        .get(me)
        .query(&[
            ("fields", "id,name,email,first_name,last_name,picture"),
            ("appsecret_proof", appsecret_proof(&upstream.client_secret.0, &token.access_token).as_str()),
        ])
        .bearer_auth(&token.access_token)
        .send()
        .await
        .map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(Failure::invalid(upstream, "graph refused"));
    }
    let me: Map<String, Value> = resp.json().await.map_err(|_| Failure::invalid(upstream, "bad graph response"))?;
    let subject = match me.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(Failure::invalid(upstream, "graph response without id")),
    };
    Ok(Identity {
        subject,
        email: me.get("email").and_then(Value::as_str).map(str::to_owned),
        email_verified: false,
        claims: super::profile_claims(upstream, &standard_claims(&me)),
        amr: Vec::new(),
    })
}

/// Graph fields under their OIDC names (`picture` is `{data: {url}}` in the Graph API).
fn standard_claims(me: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (graph, oidc) in [("name", "name"), ("first_name", "given_name"), ("last_name", "family_name")] {
        if let Some(v) = me.get(graph) {
            out.insert(oidc.into(), v.clone());
        }
    }
    if let Some(url) = me.get("picture").and_then(|p| p.pointer("/data/url")) {
        out.insert("picture".into(), url.clone());
    }
    out
}

/// `appsecret_proof`: HMAC-SHA256 of the access token under the app secret, in hex. With
/// "Require App Secret" on for the app, Facebook refuses Graph calls without it, so a token
/// stolen from elsewhere cannot be used against the app's Graph API.
fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    crate::crypto::hmac_sha256(app_secret.as_bytes(), access_token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
