//! Request objects (OIDC Core §6, RFC 9101): the authorization parameters as a JWT, by value
//! (`request`) or by reference (`request_uri`). The object is signed with one of the client's
//! registered keys, or unsigned (`alg: none`) only for a client registered with
//! `request_object_signing_alg: none`. Its parameters replace those of the query (OIDC Core
//! §6.3.3). Encrypted objects are not supported and are refused as such.
//!
//! When an object is refused, the error still goes back to the client with `state` whenever it
//! can be read: from the query, or else from the object's payload even though the object itself
//! is not accepted — its `redirect_uri` is only used if the client registered it.

use super::request::{AuthzError, err};
use crate::domain::Client;
use crate::domain::client::{ObjectAlg, is_fetchable};
use crate::http::Params;
use crate::keys::client_keys::MAX_JWKS_BYTES;
use crate::keys::{Alg, JsonObject, decode_part};
use crate::state::AppState;
use serde_json::Value;

/// The algorithms a request object may have (`request_object_signing_alg_values_supported`):
/// `none` (per client, by registration) and every algorithm we verify.
pub fn algs_supported() -> Vec<&'static str> {
    std::iter::once(ObjectAlg::None.as_str()).chain(Alg::ALL.map(Alg::as_str)).collect()
}

/// Claims of the object that are about the object, not authorization parameters; an object
/// naming another object is not followed (RFC 9101 §4).
const NOT_PARAMETERS: [&str; 8] = ["iss", "aud", "exp", "iat", "nbf", "jti", "request", "request_uri"];

/// The object was refused: the error, and the parameters an error response may use.
pub struct Refusal {
    pub error: AuthzError,
    pub fallback: Params,
}

/// The request's parameters with its request object's merged in, or why the object is refused.
/// A request without one is returned as it is.
pub async fn resolve(state: &AppState, client: &Client, query: &Params) -> Result<Params, Refusal> {
    let refuse = |error, payload: Option<&JsonObject>| Refusal { error, fallback: fallback(query, payload) };
    let jwt = match (query.get("request"), query.get("request_uri")) {
        (None, None) => return Ok(query.clone()),
        // RFC 9101 §5: one or the other.
        (Some(_), Some(_)) => {
            return Err(refuse(err("invalid_request", "use request or request_uri, not both"), None));
        }
        (Some(jwt), None) => jwt.to_owned(),
        (None, Some(uri)) => fetch(state, uri).await.map_err(|e| refuse(e, None))?,
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    // A JWE has five parts (RFC 7516 §7.1).
    if parts.len() == 5 {
        return Err(refuse(err("invalid_request_object", "encrypted request objects are not supported"), None));
    }
    let payload = (parts.len() == 3).then(|| decode_part(parts[1])).flatten();
    let Some(header) = decode_part(parts[0]).filter(|_| payload.is_some()) else {
        return Err(refuse(err("invalid_request_object", "the request object is not a JWT"), None));
    };
    let claims = match verify(state, client, &jwt, &header).await {
        Ok(claims) => claims,
        Err(e) => return Err(refuse(e, payload.as_ref())),
    };
    if let Err(e) = check_claims(state, client, query, &claims) {
        return Err(refuse(e, Some(&claims)));
    }
    let overrides = claims.into_iter().filter(|(k, _)| !NOT_PARAMETERS.contains(&k.as_str())).filter_map(|(k, v)| {
        let v = match v {
            Value::String(s) => s,
            Value::Null => return None,
            // `claims` is an object, `max_age` a number: as they would be in the query.
            other => other.to_string(),
        };
        Some((k, v))
    });
    Ok(query.merged(overrides, &["request", "request_uri"]))
}

/// The query, with `state`, `redirect_uri` and `response_mode` read from the (unaccepted)
/// payload where the query lacks them, so the error can reach the client with its `state`.
fn fallback(query: &Params, payload: Option<&JsonObject>) -> Params {
    let from_payload = payload.into_iter().flat_map(|claims| {
        ["state", "redirect_uri", "response_mode"]
            .into_iter()
            .filter(|n| !query.has(n))
            .filter_map(|n| claims.get(n).and_then(Value::as_str).map(|v| (n.to_owned(), v.to_owned())))
    });
    query.merged(from_payload.collect::<Vec<_>>(), &[])
}

/// `request_uri` (RFC 9101 §5.2): fetched over https (plain http only on loopback when this
/// provider itself runs there), with short timeouts, no redirects and a size limit.
async fn fetch(state: &AppState, uri: &str) -> Result<String, AuthzError> {
    let local = url::Url::parse(&state.issuer).is_ok_and(|u| u.scheme() == "http");
    let allowed = url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" || local) && is_fetchable(uri);
    if !allowed {
        return Err(err("invalid_request_uri", "request_uri must be an https URL"));
    }
    let body = crate::keys::client_keys::fetch(
        &state.upstream_http,
        uri,
        "application/oauth-authz-req+jwt, application/jwt",
        MAX_JWKS_BYTES,
    )
    .await
    .map_err(|e| {
        tracing::info!("request_uri not fetched: {e}");
        err("invalid_request_uri", "the request_uri could not be fetched")
    })?;
    String::from_utf8(body)
        .map(|s| s.trim().to_owned())
        .map_err(|_| err("invalid_request_uri", "the request_uri did not return a JWT"))
}

/// The object's signature, by the client's registered algorithm (OIDC Dynamic Client
/// Registration §2: objects not signed with it MUST be rejected) and keys.
async fn verify(state: &AppState, client: &Client, jwt: &str, header: &JsonObject) -> Result<JsonObject, AuthzError> {
    let registered = client.keys.request_object_signing_alg;
    let bad = |d: &str| err("invalid_request_object", d);
    if header.get("alg").and_then(Value::as_str) == Some("none") {
        if registered != Some(ObjectAlg::None) {
            return Err(bad("this client has not registered unsigned request objects"));
        }
        let (payload, signature) = jwt.split_once('.').and_then(|(_, rest)| rest.split_once('.')).unwrap_or_default();
        if !signature.is_empty() {
            return Err(bad("an unsigned request object has no signature"));
        }
        return decode_part(payload).ok_or_else(|| bad("the request object is not a JWT"));
    }
    let allowed = |alg| registered.is_none_or(|r| r == ObjectAlg::Signed(alg));
    match state.client_keys.verify(&state.upstream_http, &client.keys, jwt, allowed, state.now()).await {
        Ok((_, claims)) => Ok(claims),
        Err(e) => {
            tracing::info!(client = %client.id, "request object refused: {e}");
            Err(bad("the request object's signature is not accepted"))
        }
    }
}

/// The object's own claims (RFC 9101 §4, §6.3; OIDC Core §6.1): `iss` the client and `aud` this
/// issuer when present, not expired, and `client_id` and `response_type` as in the query.
fn check_claims(state: &AppState, client: &Client, query: &Params, claims: &JsonObject) -> Result<(), AuthzError> {
    let bad = |d: &str| err("invalid_request_object", d);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if claims.contains_key("iss") && text("iss") != Some(client.id.as_str()) {
        return Err(bad("the request object's iss is not the client"));
    }
    let aud_ok = match claims.get("aud") {
        None => true,
        Some(Value::String(a)) => *a == state.issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(state.issuer.as_str())),
        Some(_) => false,
    };
    if !aud_ok {
        return Err(bad("the request object's aud is not this issuer"));
    }
    let now = state.now();
    if claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp <= now) {
        return Err(bad("the request object has expired"));
    }
    if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now) {
        return Err(bad("the request object is not valid yet"));
    }
    // RFC 9101 §5: client_id inside MUST match; OIDC Core §6.1: so must response_type.
    for name in ["client_id", "response_type"] {
        if let (Some(inside), Some(outside)) = (text(name), query.get(name))
            && inside != outside
        {
            return Err(bad(&format!("{name} in the request object differs from the request's")));
        }
    }
    Ok(())
}
