//! Pushed authorization requests (RFC 9126): the client posts its authorization request to
//! [`PATH`] first, authenticated as at the token endpoint, and gets a `request_uri` that stands
//! for it at the authorization endpoint — single use, and short-lived (`tokens.par_ttl`).
//!
//! The pushed parameters are validated as the authorization endpoint would (§2.1), then kept in
//! the ephemeral store under the reference's hash. At the authorization endpoint [`resolve`]
//! puts them in place of the query's; the reference is spent only when a code is issued for it
//! ([`spend`]), so a page loaded and left does not use it up (FAPI 2.0 §5.3.2.2 note 3).

use super::request::{self, Rejection};
use crate::crypto::{hash_secret, random_token};
use crate::domain::AuthRequest;
use crate::http::{OAuthError, PageError, Params};
use crate::oidc::dpop;
use crate::oidc::token::client_auth;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// `pushed_authorization_request_endpoint`.
pub const PATH: &str = "/par";

/// The `request_uri` scheme of a pushed request (RFC 9126 §2.2).
pub const URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Client authentication parameters: they authenticate the push and are not kept with it.
const CLIENT_AUTH: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// What is kept for a `request_uri`: whose it is and the authorization parameters.
#[derive(Serialize, Deserialize)]
struct Pushed {
    client_id: String,
    /// The parameters, form-encoded, as the authorization endpoint reads them.
    params: String,
}

fn key(hash: &str) -> String {
    format!("par:{hash}")
}

fn used_key(hash: &str) -> String {
    format!("par-used:{hash}")
}

/// POST /par (RFC 9126 §2): 201 with `request_uri` and `expires_in`, or a 400 JSON error.
pub async fn push(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match pushed(&state, &headers, &body).await {
        Ok((request_uri, expires_in)) => {
            let body = json!({ "request_uri": request_uri, "expires_in": expires_in });
            let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn pushed(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(String, i64), OAuthError> {
    let p = Params::from_form(headers, body).map_err(OAuthError::invalid_request)?;
    // §2.1: request_uri MUST NOT be pushed.
    if p.has("request_uri") {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed; send the parameters or a request"));
    }
    if let Some(name) = p.duplicate() {
        return Err(OAuthError::invalid_request(format!("the {name} parameter appears more than once")));
    }
    // RFC 9449 §10.1: a proof sent here binds the code to its key; dpop_jkt, when also sent,
    // must name that key. Checked first, so that a `use_dpop_nonce` answer spends no assertion.
    let proof = dpop::verify(state, headers, "POST", PATH, None).await?;
    // §2: the client authenticates exactly as at the token endpoint.
    let client = client_auth::authenticate(state, headers, &p).await?;
    let dpop_jkt = match (p.get("dpop_jkt"), &proof) {
        (Some(sent), Some(proof)) if sent != proof.jkt => {
            return Err(OAuthError::invalid_dpop_proof("dpop_jkt is not the thumbprint of the proof's key"));
        }
        (Some(sent), _) => Some(sent.to_owned()),
        (None, Some(proof)) => Some(proof.jkt.clone()),
        (None, None) => None,
    };
    // The parameters as the authorization endpoint will read them: the authenticated client's
    // id, no credentials.
    let params = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in p.iter().filter(|(k, _)| !CLIENT_AUTH.contains(k) && !["client_id", "dpop_jkt"].contains(k)) {
            form.append_pair(k, v);
        }
        form.append_pair("client_id", &client.id);
        if let Some(jkt) = &dpop_jkt {
            form.append_pair("dpop_jkt", jkt);
        }
        form.finish()
    };
    // §2.1: validated as the authorization endpoint would, errors as at the token endpoint.
    let stored = Params::parse(params.as_bytes()).map_err(OAuthError::invalid_request)?;
    if let Err(r) = request::validate(state, &stored).await {
        return Err(match r {
            Rejection::Page(e) => OAuthError::bad_request(e.code.unwrap_or("invalid_request"), e.message),
            Rejection::Redirect(_, e) => OAuthError::bad_request(e.code, e.description),
        });
    }
    // §2.2: the reference is a one-time, unguessable value (256 bits).
    let reference = random_token();
    let ttl = state.settings.tokens.par_ttl;
    let value = serde_json::to_string(&Pushed { client_id: client.id.clone(), params }).expect("serialises");
    state.ephemeral.put(&key(&hash_secret(&reference)), &value, Duration::from_secs(ttl as u64)).await?;
    Ok((format!("{URN_PREFIX}{reference}"), ttl))
}

/// At the authorization endpoint: when the request names a pushed request, its parameters in
/// place of the query's (only `client_id` and `request_uri` are read from the query, FAPI 2.0
/// uses the pushed values alone), and the hash that [`spend`] will use up. A request without
/// one is returned as it came.
pub async fn resolve(state: &AppState, query: Params) -> Result<(Params, Option<String>), PageError> {
    let Some(reference) = query.get("request_uri").and_then(|u| u.strip_prefix(URN_PREFIX)) else {
        return Ok((query, None));
    };
    let refuse = |m: &str| PageError::bad_request("invalid_request_uri", "This sign-in request is not valid", m);
    let hash = hash_secret(reference);
    // §4: the request_uri is one-time: once a code was issued for it, it is spent.
    if state.ephemeral.count(&used_key(&hash)).await? > 0 {
        return Err(refuse("This sign-in request was already used. Go back to the application and start again."));
    }
    let pushed = state.ephemeral.get(&key(&hash)).await?.and_then(|v| serde_json::from_str::<Pushed>(&v).ok());
    let Some(pushed) = pushed else {
        return Err(refuse("This sign-in request has expired. Go back to the application and start again."));
    };
    // §4: the request_uri is bound to the client that pushed it.
    if query.get("client_id") != Some(pushed.client_id.as_str()) {
        return Err(PageError::bad_request(
            "invalid_request",
            "This sign-in request is not valid",
            "The request_uri was issued to another application.",
        ));
    }
    let params = Params::parse(pushed.params.as_bytes()).map_err(|_| PageError::internal())?;
    Ok((params, Some(hash)))
}

/// Uses up the pushed request behind `req`, if any, as a code is issued for it: false when it
/// was already used (on any node).
pub async fn spend(state: &AppState, req: &AuthRequest) -> Result<bool, crate::ephemeral::Unavailable> {
    let Some(hash) = &req.pushed else { return Ok(true) };
    // Kept as long as a flow started from the request could still come back to issue a code.
    let ttl = state.settings.tokens.par_ttl + state.settings.tokens.login_flow_ttl;
    Ok(state.ephemeral.incr(&used_key(hash), Duration::from_secs(ttl as u64)).await? == 1)
}

/// Must this request have been pushed? Per client, or for every client (`tokens.require_par`).
pub fn required(state: &AppState, client: &crate::domain::Client) -> bool {
    client.requires_par() || state.settings.tokens.require_par
}
