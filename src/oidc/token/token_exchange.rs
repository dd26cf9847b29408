//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a confidential
//! client trades a token it was given (an access token or an ID token issued here) for an access
//! token of its own for a registered resource server — as the subject (impersonation), or, with
//! an `actor_token` of its own, on the subject's behalf (delegation, the `act` claim, §4.1).
//!
//! Policy per client (`clients add --exchange-from`): a client exchanges its own tokens and
//! those of the clients it names. The result is always audience-restricted to one registered
//! resource (`resource` or `audience`, RFC 8707), with no more scope than the subject token had
//! and the resource takes.

use super::{Sender, TokenResponse};
use crate::domain::{Client, Grant, GrantType, parse_scope};
use crate::http::{BearerError, OAuthError, Params};
use crate::oidc::id_token::{self, Binding, active_grant, read_access_token};
use crate::state::AppState;
use crate::store::AuditEvent;
use serde_json::{Value, json};

/// Token type identifiers (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The subject token, read and found valid.
struct Subject {
    sub: String,
    /// The client it was issued to.
    client_id: String,
    /// What it may do; none for an ID token (it proves a sign-in, not access).
    scopes: Option<Vec<String>>,
    grant: Option<Grant>,
    /// An earlier delegation's `act`, nested under the new one (§4.1).
    act: Option<Value>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    sender: Sender<'_>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() || !client.allows(GrantType::TokenExchange) {
        return Err(OAuthError::unauthorized_client("this client may not use token exchange"));
    }
    let now = state.now();
    // §2.1: subject_token and subject_token_type are REQUIRED.
    let (Some(token), Some(kind)) = (p.get("subject_token"), p.get("subject_token_type")) else {
        return Err(OAuthError::invalid_request("subject_token and subject_token_type are required"));
    };
    let subject = read_subject(state, token, kind, sender, now).await?;
    // §2.2.2: a subject token unacceptable by policy is invalid_request.
    let allowed = |from: &String| from == "*" || *from == subject.client_id;
    if subject.client_id != client.id && !client.security.token_exchange_from.iter().any(allowed) {
        return Err(OAuthError::invalid_request("this client may not exchange tokens issued to that client"));
    }
    // Only access tokens are issued.
    if p.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request("only access tokens are issued by token exchange"));
    }
    let act = actor(state, client, p, &subject, now).await?;
    // §2.1 resource / audience: one registered resource server, the token's aud.
    let uri = p.get("resource").or(p.get("audience")).ok_or_else(|| {
        OAuthError::invalid_target("name the resource server the token is for (resource or audience)")
    })?;
    if p.get("resource").zip(p.get("audience")).is_some_and(|(r, a)| r != a) {
        return Err(OAuthError::invalid_target("resource and audience name different resource servers"));
    }
    let resource = state
        .store
        .resource(uri)
        .await?
        .ok_or_else(|| OAuthError::invalid_target("the resource is not a resource server registered here"))?;
    // No more than the subject token had (an ID token: what the resource takes), and only what
    // the resource takes.
    let available: Vec<String> =
        resource.scopes.iter().filter(|s| subject.scopes.as_ref().is_none_or(|had| had.contains(s))).cloned().collect();
    let scopes = match p.get("scope") {
        None => available,
        Some(asked) => {
            let asked = parse_scope(asked);
            if let Some(s) = asked.iter().find(|s| !available.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {s} is beyond the subject token or the resource"
                )));
            }
            asked
        }
    };
    let bound = Binding { dpop: sender.dpop, x5t: sender.x5t, resource: Some(&resource.uri), act: act.as_ref() };
    let access_token = id_token::access_token(
        state,
        &subject.sub,
        client,
        &scopes,
        subject.grant.as_ref(),
        &Default::default(),
        bound,
        now,
    )
    .await?;
    let event = AuditEvent::new("token.exchanged")
        .client(&client.id)
        .detail("subject_client", subject.client_id.clone())
        .detail("sub", subject.sub.clone())
        .detail("resource", resource.uri.clone())
        .detail("delegation", act.is_some());
    state.store.audit(event, now).await;
    Ok(TokenResponse {
        access_token,
        token_type: super::token_type(sender.dpop),
        expires_in: state.settings.tokens.access_token_ttl,
        scope: scopes.join(" "),
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// The subject token (§2.1): an access token issued here and still live (its grant active; a
/// DPoP-bound one only with a proof by its key), or an ID token issued here, unexpired, of a user
/// still active.
async fn read_subject(
    state: &AppState,
    token: &str,
    kind: &str,
    sender: Sender<'_>,
    now: i64,
) -> Result<Subject, OAuthError> {
    let bad = || OAuthError::invalid_request("subject_token is not a valid token of that type");
    match kind {
        ACCESS_TOKEN_TYPE => {
            let at = read_access_token(state, token, now).await.map_err(|e| unavailable_or(e, bad()))?;
            if at.jkt.is_some() && at.jkt.as_deref() != sender.dpop {
                return Err(OAuthError::invalid_request("the subject_token is DPoP-bound: prove its key"));
            }
            // RFC 8705 §3: a certificate-bound one only with its certificate.
            if at.x5t.is_some() && at.x5t.as_deref() != sender.x5t {
                return Err(OAuthError::invalid_request("the subject_token is bound to another certificate"));
            }
            let grant = match &at.grant_id {
                Some(_) => Some(active_grant(state, &at, now).await?.ok_or_else(bad)?),
                None => None,
            };
            let scopes = at.claims.get("scope").and_then(Value::as_str).map(parse_scope).unwrap_or_default();
            let act = at.claims.get("act").cloned();
            Ok(Subject { sub: at.sub, client_id: at.client_id, scopes: Some(scopes), grant, act })
        }
        ID_TOKEN_TYPE => {
            let (header, claims) = state.keys.verify(token).map_err(|_| bad())?;
            let text = |k: &str| claims.get(k).and_then(Value::as_str);
            let live = !header.contains_key("typ")
                && text("iss") == Some(state.issuer.as_str())
                && claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp > now);
            let client_id = text("azp").or_else(|| match claims.get("aud") {
                Some(Value::String(a)) => Some(a.as_str()),
                Some(Value::Array(list)) => list.first().and_then(Value::as_str),
                _ => None,
            });
            let (Some(sub), Some(client_id), true) = (text("sub"), client_id, live) else { return Err(bad()) };
            let user = super::live_user(state, sub).await.map_err(|_| bad())?;
            Ok(Subject { sub: user.id, client_id: client_id.to_owned(), scopes: None, grant: None, act: None })
        }
        _ => Err(OAuthError::invalid_request("subject_token_type must be an access token or an ID token")),
    }
}

/// Delegation (§1.1, §4.1): an `actor_token` — an access token issued to this client, naming
/// the party that acts — makes the result carry `act`, with any earlier `act` nested in it.
async fn actor(
    state: &AppState,
    client: &Client,
    p: &Params,
    subject: &Subject,
    now: i64,
) -> Result<Option<Value>, OAuthError> {
    match (p.get("actor_token"), p.get("actor_token_type")) {
        (None, None) => Ok(None),
        (Some(token), Some(ACCESS_TOKEN_TYPE)) => {
            let at = read_access_token(state, token, now).await.map_err(|e| {
                unavailable_or(e, OAuthError::invalid_request("actor_token is not a valid access token"))
            })?;
            if at.client_id != client.id {
                return Err(OAuthError::invalid_request("the actor_token was not issued to this client"));
            }
            let mut act = json!({ "sub": at.sub });
            if let Some(prior) = &subject.act {
                act["act"] = prior.clone();
            }
            Ok(Some(act))
        }
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("actor_token_type must be an access token")),
        _ => Err(OAuthError::invalid_request("actor_token and actor_token_type go together")),
    }
}

/// A token that cannot be read is the request's fault, unless the store it is kept in is
/// out of reach (an opaque token): then 503, not a verdict on the token.
fn unavailable_or(e: BearerError, refusal: OAuthError) -> OAuthError {
    match e {
        BearerError::Unavailable => OAuthError::temporarily_unavailable(),
        _ => refusal,
    }
}
