//! Where a login flow hands back (as node-oidc-provider resumes an interaction): the user is
//! signed in, so ask consent when it is needed, then answer the client with a code — or, when
//! the flow could not reach what the request required or the person cancelled, say so to the
//! client.

use super::consent;
use super::request::err;
use super::{code, response};
use crate::domain::{AuthRequest, Client, Session, Target};
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::login::flow::{self, Flow};
use crate::login::routes::see_other;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The resume route: `/consent/{flow}`.
pub const PATH: &str = "/consent";

/// The flow named in the path, handed back: its request, client and session. A flow still at
/// its steps is sent back to them.
async fn handed_back(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Result<(Flow, Arc<Client>, Session), Response>, PageError> {
    let (flow, client) = flow::load(state, headers, id).await?;
    let (Some(req), Some(client)) = (&flow.request, client) else { return Err(PageError::expired()) };
    if flow.unmet() {
        flow::end(state, &flow).await?;
        return Ok(Err(unmet(state, &req.target)));
    }
    // The person cancelled at the sign-in page: RFC 6749 §4.1.2.1 `access_denied` ("the
    // resource owner ... denied the request"), sent back as any error once the client and its
    // redirect URI are validated (they were, before the flow started).
    if flow.cancelled() {
        flow::end(state, &flow).await?;
        return Ok(Err(response::error(state, &req.target, &err("access_denied", "the user cancelled the sign-in"))));
    }
    let Some(session_id) = flow.session_id() else { return Ok(Err(see_other(&flow.location()))) };
    let session = state.store.session(session_id, state.now()).await?.ok_or_else(PageError::expired)?;
    if let Some(refusal) = outside_required_groups(state, &session, &client, &req.target).await? {
        flow::end(state, &flow).await?;
        return Ok(Err(refusal));
    }
    Ok(Ok((flow, client, session)))
}

/// The client's required groups: a signed-in user in none of them is refused. Client and
/// redirect URI are validated by now, so the client is told (RFC 6749 §4.1.2.1
/// `access_denied`), and the refusal is audited.
pub async fn outside_required_groups(
    state: &AppState,
    session: &Session,
    client: &Client,
    target: &Target,
) -> Result<Option<Response>, PageError> {
    if state.store.may_use_client(&session.user_id, &client.id).await? {
        return Ok(None);
    }
    Ok(Some(refuse_outside_required_groups(state, session, client, target).await))
}

/// The refusal of a user outside the groups the client requires: audited, and `access_denied`.
pub async fn refuse_outside_required_groups(
    state: &AppState,
    session: &Session,
    client: &Client,
    target: &Target,
) -> Response {
    let event = AuditEvent::new("login.refused_group").user(&session.user_id).client(&client.id);
    state.store.audit(event, state.now()).await;
    let e = err("access_denied", "the user is not in a group this application requires");
    response::error(state, target, &e)
}

fn request(flow: &Flow) -> &AuthRequest {
    flow.request.as_deref().expect("handed_back checked it")
}

/// GET /consent/{flow}: consent if needed, else the code.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (flow, client, session) = match handed_back(&state, &headers, &id).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let req = request(&flow);
    let consented = state.store.consented_scopes(&session.user_id, &client.id).await?;
    if !consent::needed(req, &client, &consented) {
        return complete(&state, &flow, &session).await;
    }
    let user = state.store.user(&session.user_id).await?.ok_or_else(PageError::expired)?;
    let action = format!("{PATH}/{}", flow.id);
    Ok(consent::page(&action, &flow.csrf, &client, &user.username, req).into_response())
}

/// POST /consent/{flow}: allow (remembered) or deny (`access_denied`, RFC 6749 §4.1.2.1).
pub async fn decide(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (flow, client, session) = match handed_back(&state, &headers, &id).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let req = request(&flow);
    let p = flow::form(&flow, &headers, &body)?;
    let now = state.now();
    let event = |kind| {
        AuditEvent::new(kind)
            .user(&session.user_id)
            .client(&client.id)
            .ip(Some(addr.to_string()))
            .detail("scope", consent::asked(req).join(" "))
    };
    match p.get("decision") {
        Some("allow") => {
            state.store.grant_consent(&session.user_id, &client.id, &consent::asked(req), now).await?;
            state.store.audit(event("consent.granted"), now).await;
            complete(&state, &flow, &session).await
        }
        Some("deny") => {
            flow::end(&state, &flow).await?;
            state.store.audit(event("consent.denied"), now).await;
            Ok(response::error(&state, &req.target, &err("access_denied", "the user denied the request")))
        }
        _ => Err(PageError::bad_request("invalid_request", "The form could not be read", "Choose Allow or Deny.")),
    }
}

/// The flow is done: forget it and answer the client with a code.
async fn complete(state: &AppState, flow: &Flow, session: &Session) -> Result<Response, PageError> {
    let req = request(flow);
    flow::end(state, flow).await?;
    issue(state, req, session).await
}

/// Answers the client with a code for `req` — unless it was pushed and its `request_uri` was
/// used meanwhile (RFC 9126 §4: one-time), which gets `invalid_request_uri`.
pub async fn issue(state: &AppState, req: &AuthRequest, session: &Session) -> Result<Response, PageError> {
    if !super::par::spend(state, req).await? {
        let e = err("invalid_request_uri", "the request_uri was already used");
        return Ok(response::error(state, &req.target, &e));
    }
    let code = code::issue(state, req, session).await?;
    Ok(response::code(state, &req.target, &code))
}

/// The answer when the required acr cannot be reached: `unmet_authentication_requirements`
/// (OpenID Connect Core Unmet Authentication Requirements 1.0 §1: SHALL for an essential `acr`,
/// MAY otherwise) rather than a weaker login.
pub fn unmet(state: &AppState, target: &Target) -> Response {
    let e = err(
        "unmet_authentication_requirements",
        "the requested authentication context needs a second factor the user has not set up",
    );
    response::error(state, target, &e)
}
