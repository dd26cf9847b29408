//! `/device`: where a person approves a device (RFC 8628 §3.3). Signed in (or sent to sign in
//! and back, with the code kept in the address), they enter the code the device shows — or
//! arrive with it from `verification_uri_complete` — compare it, and allow or deny. The device
//! polls the token endpoint meanwhile (`oidc/device.rs`).
//!
//! Codes are short, so wrong ones are counted per person: past [`MAX_WRONG`] in a quarter of an
//! hour, no code is looked up until the window passes.

use super::{Signed, signed_in};
use crate::domain::Client;
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::login::policy;
use crate::oidc::device::{self, Decision, DeviceRequest};
use crate::pages::{self, ScopeLine};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::time::Duration;

pub const PAGE: &str = device::VERIFY;

const MAX_WRONG: u64 = 10;
const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(serde::Serialize)]
struct CodePage<'a> {
    csrf: &'a str,
    username: &'a str,
    typed: &'a str,
    error: Option<&'a str>,
}

crate::pages::template!(CodePage<'a>, "device_code.html");

#[derive(serde::Serialize)]
struct ApprovePage<'a> {
    csrf: &'a str,
    username: &'a str,
    client_name: &'a str,
    user_code: &'a str,
    scopes: Vec<ScopeLine>,
}

crate::pages::template!(ApprovePage<'a>, "device_approve.html");

#[derive(serde::Serialize)]
struct DonePage<'a> {
    client_name: &'a str,
    allowed: bool,
}

crate::pages::template!(DonePage<'a>, "device_done.html");

/// GET /device[?user_code=…]
pub async fn show(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let typed = q.get("user_code").map(String::as_str).unwrap_or_default();
    // Sent to sign in, the person comes back to the same address, code and all.
    let here = match device::normalize(typed) {
        Some(code) => format!("{PAGE}?user_code={code}"),
        None => PAGE.to_owned(),
    };
    let signed = match signed_in(&state, &headers, client, &here).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    if typed.is_empty() {
        return code_page(&state, &signed, "", None).await;
    }
    look_up(&state, &signed, typed).await
}

/// POST /device: a code to look up, or (with `decision`) the answer for the code shown.
pub async fn answer(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, client, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let p = page_form(&headers, &body, &signed.csrf)?;
    let typed = p.get("user_code").unwrap_or_default();
    let Some(decision) = p.get("decision") else { return look_up(&state, &signed, typed).await };
    let found = match device::normalize(typed) {
        Some(code) => device::by_user_code(&state, &code).await?,
        None => None,
    };
    // Answered already, or expired while the page was open.
    let Some((key, request)) = found else {
        let gone = "That code is no longer waiting: it was answered or it expired. Start again on the device.";
        return code_page(&state, &signed, "", Some(gone)).await;
    };
    let client = state.store.client(&request.client_id).await?.ok_or_else(PageError::expired)?;
    let session = &signed.session;
    let now = state.now();
    let allowed = decision == "allow";
    if allowed {
        admitted(&state, &signed, &client).await?;
    }
    let outcome = if allowed {
        Decision::Approved {
            user_id: session.user_id.clone(),
            auth_time: session.auth_time,
            acr: session.acr.clone(),
            amr: session.amr.clone(),
        }
    } else {
        Decision::Denied
    };
    device::decide(&state, &key, request, outcome).await?;
    let kind = if allowed { "device.approved" } else { "device.denied" };
    state.store.audit(AuditEvent::new(kind).user(&session.user_id).client(&client.id), now).await;
    Ok(pages::render(StatusCode::OK, &DonePage { client_name: &client.name, allowed }))
}

/// Finds the request a typed code names and asks about it, or asks for the code again.
async fn look_up(state: &AppState, signed: &Signed, typed: &str) -> Result<Response, PageError> {
    let user_id = &signed.session.user_id;
    let wrong_key = format!("device-wrong:{user_id}");
    if state.ephemeral.count(&wrong_key).await? >= MAX_WRONG {
        let wait = "Too many wrong codes. Wait a quarter of an hour, then try again.";
        return code_page(state, signed, typed, Some(wait)).await;
    }
    let found = match device::normalize(typed) {
        Some(code) => device::by_user_code(state, &code).await?,
        None => None,
    };
    let Some((_, request)) = found else {
        state.ephemeral.incr(&wrong_key, WINDOW).await?;
        let wrong = "That code is not waiting for approval. Check it on the device (it is 8 letters) and try again.";
        return code_page(state, signed, typed, Some(wrong)).await;
    };
    approve_page(state, signed, &request).await
}

async fn approve_page(state: &AppState, signed: &Signed, request: &DeviceRequest) -> Result<Response, PageError> {
    let client = state.store.client(&request.client_id).await?.ok_or_else(PageError::expired)?;
    // The client's minimum assurance holds here as at the authorization endpoint.
    if policy::acr_level(&signed.session.acr).unwrap_or(0) < client.min_acr {
        return Err(PageError::forbidden(format!(
            "{} asks for two-step sign-in. Set up a second factor on your account security page, \
             sign in again, then enter the code once more.",
            client.name
        )));
    }
    admitted(state, signed, &client).await?;
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let page = ApprovePage {
        csrf: &signed.csrf,
        username: &user.username,
        client_name: &client.name,
        user_code: &request.user_code,
        scopes: crate::oidc::authorize::consent::lines(&request.scopes),
    };
    Ok(pages::render(StatusCode::OK, &page))
}

/// The client's required groups hold here as at the authorization endpoint: a person in none of
/// them cannot let the device in (and the refusal is audited).
async fn admitted(state: &AppState, signed: &Signed, client: &Client) -> Result<(), PageError> {
    if state.store.may_use_client(&signed.session.user_id, &client.id).await? {
        return Ok(());
    }
    let event = AuditEvent::new("login.refused_group").user(&signed.session.user_id).client(&client.id);
    state.store.audit(event, state.now()).await;
    Err(PageError::forbidden(format!("Your account is not in a group that {} requires.", client.name)))
}

async fn code_page(state: &AppState, signed: &Signed, typed: &str, error: Option<&str>) -> Result<Response, PageError> {
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let page = CodePage { csrf: &signed.csrf, username: &user.username, typed, error };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(pages::render(status, &page))
}
