//! `/account/delete`: the user deletes their account. It takes a fresh sign-in (within
//! `login.reauth_secs`, with the second factor when there is one) and typing the username.
//! Everything that is the account's own goes in one transaction (`Store::remove_user`:
//! profile, credentials, password history, sessions, grants and refresh tokens, consents,
//! linked accounts); audit events stay, with the user id only. A last mail says so.

use super::{fresh, sign_in, signed_in};
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::http::{PageError, cookies};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

pub const PAGE: &str = "/account/delete";

#[derive(serde::Serialize)]
struct DeletePage<'a> {
    username: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
}

crate::pages::template!(DeletePage<'a>, "account_delete.html");

/// GET /account/delete: after a fresh sign-in, the confirmation form.
pub async fn show(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, client, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    if !fresh(&state, &signed.session, state.now()).await? {
        return sign_in(&state, &headers, client, PAGE).await;
    }
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let page = DeletePage { username: &user.username, csrf: &signed.csrf, error: None };
    Ok(crate::pages::render(StatusCode::OK, &page))
}

/// POST /account/delete: a fresh sign-in and the username typed, then the account is gone.
pub async fn submit(
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
    let now = state.now();
    if !fresh(&state, &signed.session, now).await? {
        return sign_in(&state, &headers, client, PAGE).await;
    }
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    if p.get("confirm").map(str::trim) != Some(user.username.as_str()) {
        let error = Some("Type your username exactly as shown to confirm.");
        let page = DeletePage { username: &user.username, csrf: &signed.csrf, error };
        return Ok(crate::pages::render(StatusCode::BAD_REQUEST, &page));
    }
    state.store.remove_user(&user.id).await?;
    // Recorded after the removal, which strips earlier events of everything but the id.
    state.store.audit(AuditEvent::new("account.deleted").user(&user.id), now).await;
    state.send_later(super::mail::account_deleted(&state, &user.email, &user.username));
    let page = super::forgot::NoticePage {
        title: "Your account was deleted",
        message: "Your profile, sign-in methods, sessions and the applications you allowed are gone. \
                  Applications you signed in to can no longer use your sign-in.",
        link: "/",
        link_label: "Go to the start page",
    };
    let mut resp = crate::pages::render(StatusCode::OK, &page);
    resp.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::SESSION, state.secure_cookies));
    Ok(resp)
}
