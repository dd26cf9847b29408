//! `/account/profile`: the claims the operator lets people change (`registration.editable`),
//! checked by the sign-up rules (`domain::registration`). A new email address replaces the old
//! one only once confirmed — a link and a code go to the new address, and the old one is told
//! when it changes (`crate::signup`). Changes need a recent sign-in, like the security page.

use super::{Signed, fresh, sign_in, signed_in};
use crate::crypto::hash_secret;
use crate::domain::User;
use crate::domain::registration::{self, Errors};
use crate::domain::user::login_key;
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::http::{PageError, Params};
use crate::pages::FieldView;
use crate::signup::{self as core, Refused};
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub const PAGE: &str = "/account/profile";

/// Keys a pending address change of this session (its code and "send again").
fn change_flow(signed: &Signed) -> String {
    hash_secret(&format!("profile:{}", signed.session.id))
}

/// GET /account/profile
pub async fn show(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, client, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    render(&state, &signed, &user, StatusCode::OK, None, &Errors::new(), None, None).await
}

/// POST /account/profile: the fields, or the code of a new address, or "send again".
pub async fn change(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, client, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let form = page_form(&headers, &body, &signed.csrf)?;
    let now = state.now();
    if !fresh(&state, &signed.session, now).await? {
        return sign_in(&state, &headers, client, PAGE).await;
    }
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let ip = Some(client.to_string());
    let flow = change_flow(&signed);
    if form.get("resend").is_some() {
        let (notice, error) = match core::resend(&state, &flow, "your account").await? {
            Ok(_) => (Some("We sent a new link and code."), None),
            Err(r) => (None, Some(r.message())),
        };
        return render(&state, &signed, &user, StatusCode::OK, notice, &Errors::new(), None, error).await;
    }
    if let Some(code) = form.get("code") {
        return match core::confirm_code(&state, &flow, code, ip).await? {
            Ok(_) => {
                let user = state.store.user(&user.id).await?.ok_or_else(PageError::expired)?;
                let notice = format!("Your email address is now {}.", user.email);
                render(&state, &signed, &user, StatusCode::OK, Some(&notice), &Errors::new(), None, None).await
            }
            Err(r) => {
                render(&state, &signed, &user, StatusCode::BAD_REQUEST, None, &Errors::new(), None, Some(r.message()))
                    .await
            }
        };
    }
    save(&state, &signed, &user, &form, ip, now).await
}

/// The edited fields: checked, the claims saved, a new address sent its confirmation.
async fn save(
    state: &AppState,
    signed: &Signed,
    user: &User,
    form: &Params,
    ip: Option<String>,
    now: i64,
) -> Result<Response, PageError> {
    let rules = &state.settings.registration;
    let today = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().date_naive();
    let mut claims = user.claims.clone();
    let mut errors = Errors::new();
    let mut new_email = None;
    for f in registration::editable(rules) {
        let is_email = f.name == registration::EMAIL.name;
        // A field the form left out is left alone.
        let Some(raw) = form.get(f.name) else { continue };
        match registration::check(f, raw, is_email, rules, today) {
            Ok(Some(Value::String(email))) if is_email => {
                if login_key(&email) != login_key(&user.email) {
                    new_email = Some(email);
                }
            }
            Ok(Some(v)) => {
                claims.insert(f.name.to_owned(), v);
            }
            Ok(None) => {
                claims.remove(f.name);
            }
            Err(m) => {
                errors.insert(f.name, m);
            }
        }
    }
    if !errors.is_empty() {
        let error = Some("Some fields need another look: see the messages below.");
        return render(state, signed, user, StatusCode::BAD_REQUEST, None, &errors, Some(form), error).await;
    }
    if claims != user.claims {
        if claims.get("phone_number") != user.claims.get("phone_number") && claims.contains_key("phone_number") {
            claims.insert("phone_number_verified".into(), Value::Bool(false));
        }
        state.store.update_profile(&user.id, &user.email, &claims, now).await?;
        state.store.audit(AuditEvent::new("account.profile_updated").user(&user.id).ip(ip.clone()), now).await;
    }
    let user = state.store.user(&user.id).await?.ok_or_else(PageError::expired)?;
    let Some(email) = new_email else {
        return render(
            state,
            signed,
            &user,
            StatusCode::OK,
            Some("Your profile is saved."),
            &Errors::new(),
            None,
            None,
        )
        .await;
    };
    let notice = match core::change_email(state, &user, &email, &change_flow(signed)).await? {
        Ok(sent) => format!(
            "We sent a link and a code to {}: your email address changes once you confirm it there. Until then it stays {}.",
            sent.to, user.email
        ),
        Err(Refused::Throttled(_)) => Refused::Throttled(0).message().to_owned(),
        Err(r) => r.message().to_owned(),
    };
    state.store.audit(AuditEvent::new("account.email_change_asked").user(&user.id).ip(ip), now).await;
    render(state, signed, &user, StatusCode::OK, Some(&notice), &Errors::new(), None, None).await
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    signed: &Signed,
    user: &User,
    status: StatusCode,
    notice: Option<&str>,
    errors: &Errors,
    form: Option<&Params>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let rules = &state.settings.registration;
    let fields = registration::editable(rules)
        .into_iter()
        .map(|f| {
            let stored = match f.name {
                "email" => user.email.clone(),
                name => user.claims.get(name).and_then(Value::as_str).unwrap_or_default().to_owned(),
            };
            let value = form.and_then(|p| p.get(f.name)).map(str::to_owned).unwrap_or(stored);
            FieldView::new(f, f.name == "email", &value, errors.get(f.name).cloned(), &rules.genders)
        })
        .collect();
    let pending = core::sent(state, &change_flow(signed)).await?.map(|s| s.to);
    let page = ProfilePage {
        username: &user.username,
        csrf: &signed.csrf,
        fields,
        notice,
        error,
        pending: pending.as_deref(),
    };
    Ok(crate::pages::View::new(status, &page).into_response())
}

#[derive(serde::Serialize)]
struct ProfilePage<'a> {
    username: &'a str,
    csrf: &'a str,
    fields: Vec<FieldView>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// The new address waiting for its confirmation, masked.
    pending: Option<&'a str>,
}

crate::pages::template!(ProfilePage<'a>, "account_profile.html");
