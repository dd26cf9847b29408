//! `/account/export`: the user downloads what Latchkey holds about them, as JSON: the profile
//! (username, email, claims), linked providers, enrolled sign-in methods (never their
//! secrets), the applications they allowed, and their recent audit events. Like any security
//! change it takes a fresh sign-in.

use super::{fresh, sign_in, signed_in};
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::state::AppState;
use crate::store::AuditQuery;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const PAGE: &str = "/account/export";

/// How many recent audit events the export lists.
const EVENTS: i64 = 200;

/// GET /account/export
pub async fn download(
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
    let data = export(&state, &signed.session.user_id).await?;
    let mut resp = axum::Json(data).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"latchkey-account.json\""));
    Ok(resp)
}

/// The user's data as one JSON document.
pub async fn export(state: &AppState, user_id: &str) -> Result<Value, PageError> {
    let store = &state.store;
    let user = store.user(user_id).await?.ok_or_else(PageError::expired)?;
    let linked: Vec<Value> = store
        .linked_identities(user_id)
        .await?
        .into_iter()
        .map(|l| json!({ "provider": l.provider, "subject": l.subject, "email": l.email, "linked_at": l.created_at }))
        .collect();
    let passkeys: Vec<Value> = store
        .passkeys(user_id)
        .await?
        .into_iter()
        .map(|p| {
            json!({ "name": p.name, "synced": p.backup_eligible(), "created_at": p.created_at, "last_used_at": p.last_used_at })
        })
        .collect();
    let totp = store.totp_credential(user_id).await?.is_some();
    let mut applications = Vec::new();
    for c in store.consents_of(user_id).await? {
        let name = store.client(&c.client_id).await?.map(|client| client.name.clone());
        applications.push(json!({
            "client_id": c.client_id, "name": name, "scopes": crate::domain::parse_scope(&c.scopes), "granted_at": c.granted_at,
        }));
    }
    let events: Vec<Value> = store
        .audit_events(&AuditQuery { user_id: Some(user_id.to_owned()), limit: EVENTS, ..Default::default() })
        .await?
        .into_iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
            json!({ "at": e.at, "kind": e.kind, "client_id": e.client_id, "ip": e.ip, "detail": detail })
        })
        .collect();
    Ok(json!({
        "exported_at": state.now(),
        "issuer": state.issuer,
        "profile": {
            "sub": user.id,
            "username": user.username,
            "email": user.email,
            "claims": user.claims,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        },
        "linked_providers": linked,
        "sign_in_methods": {
            "password": user.password_hash.is_some(),
            "authenticator_app": totp,
            "email_codes": store.email_otp_address(user_id).await?,
            "phone_codes": store.phone_number(user_id).await?.map(|n| serde_json::json!({
                "number": n.number, "sms": n.sms_codes, "whatsapp": n.whatsapp_codes,
            })),
            "passkeys": passkeys,
            "recovery_codes_left": store.recovery_codes_left(user_id).await?,
        },
        "applications": applications,
        "recent_events": events,
    }))
}
