//! `/account/linked`: the upstream identities (Google, Facebook, any OpenID provider) linked to
//! the account, each with an Unlink button. Unlinking needs a recent sign-in and is refused
//! when it would leave the account with no way in (no password, no other linked identity).

use super::changed::{self, Change};
use super::{fresh, keeps_a_way_in, sign_in, signed_in};
use crate::http::PageError;
use crate::http::form::page_form;
use crate::pages;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::net::SocketAddr;

pub const PAGE: &str = "/account/linked";

async fn render(state: &AppState, signed: &super::Signed, notice: Option<&str>) -> Result<Response, PageError> {
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let links = state
        .store
        .linked_identities(&user.id)
        .await?
        .into_iter()
        .map(|l| pages::LinkedLine {
            label: state
                .settings
                .upstream
                .iter()
                .find(|u| u.id == l.provider)
                .map_or_else(|| l.provider.clone(), |u| u.display_name().to_owned()),
            provider: l.provider,
            subject: l.subject,
            email: l.email.unwrap_or_default(),
        })
        .collect();
    let page = pages::LinkedPage { username: &user.username, csrf: &signed.csrf, links, notice };
    Ok(pages::render(StatusCode::OK, &page))
}

/// GET /account/linked
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    match signed_in(&state, &headers, PAGE).await? {
        Ok(signed) => render(&state, &signed, None).await,
        Err(resp) => Ok(resp),
    }
}

/// POST /account/linked: unlink one identity, after a recent sign-in.
pub async fn unlink(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let p = page_form(&headers, &body, &signed.csrf)?;
    let (Some(provider), Some(subject)) = (p.get("provider"), p.get("subject")) else {
        return Err(PageError::bad_request("invalid_request", "The form could not be read", "Choose an account."));
    };
    let now = state.now();
    if !fresh(&state, &signed.session, now).await? {
        return sign_in(&state, &headers, PAGE).await;
    }
    let user_id = &signed.session.user_id;
    let notice = if !keeps_a_way_in(&state, user_id, |c| c.upstream = c.upstream.saturating_sub(1)).await? {
        "This is the only way to sign in to your account, so it stays linked."
    } else if state.store.unlink_identity(user_id, provider, subject).await? {
        let ip = Some(state.ip_of(&addr, &headers));
        let event = AuditEvent::new("upstream.unlinked").user(user_id).ip(ip.clone()).detail("upstream", provider);
        state.store.audit(event, now).await;
        changed::methods_changed(&state, user_id, Some(&signed.session.id), Change::Unlinked, ip).await?;
        "The account was unlinked."
    } else {
        "That account is not linked."
    };
    render(&state, &signed, Some(notice)).await
}
