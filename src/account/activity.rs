//! `/account/activity`: the user's own recent sign-ins (successful and failed) and security
//! changes, from the audit log, newest first and in words, with the time, the address and the
//! browser where the log knows them. Events that say nothing to the person (steps passed,
//! mails sent) are left out.

use super::{signed_in, when};
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::pages;
use crate::state::AppState;
use crate::store::{AuditQuery, AuditRow};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

pub const PAGE: &str = "/account/activity";

/// How many events are read, and how many of those the page shows.
const READ: i64 = 200;
const SHOWN: usize = 50;

/// What an event means to the person, if it is one they should see.
fn describe(e: &AuditRow, client: Option<&str>) -> Option<String> {
    let to = client.map(|c| format!(" to {c}")).unwrap_or_default();
    let by_operator = " by the administrator";
    Some(match e.kind.as_str() {
        "login.succeeded" => format!("Signed in{to}"),
        "login.failed" => match e.detail_str("reason") {
            Some(why) => format!("A sign-in{to} failed ({why})"),
            None => format!("A sign-in{to} failed"),
        },
        "logout" => "Signed out".into(),
        "login.refused_group" => format!("Signed in, but not let in{to}: not in a group it requires"),
        "session.ended" if e.detail_str("by").as_deref() == Some("user") => "Ended a session".into(),
        "session.ended" => "A session was ended".into(),
        "mfa.totp_enrolled" => "Turned on the authenticator app".into(),
        "mfa.totp_removed" => "Turned off the authenticator app".into(),
        "mfa.email_otp_enabled" => "Turned on codes by email".into(),
        "mfa.email_otp_disabled" => "Turned off codes by email".into(),
        "mfa.sms_enabled" => "Turned on codes by SMS".into(),
        "mfa.sms_disabled" => "Turned off codes by SMS".into(),
        "mfa.whatsapp_enabled" => "Turned on codes by WhatsApp".into(),
        "mfa.whatsapp_disabled" => "Turned off codes by WhatsApp".into(),
        "phone.verified" => "Verified a phone number".into(),
        "phone.removed" => "Removed the phone number".into(),
        "mfa.passkey_added" => "Added a passkey".into(),
        "mfa.passkey_removed" => "Removed a passkey".into(),
        "mfa.recovery_codes_generated" => "Made new recovery codes".into(),
        "mfa.recovery_code_used" => "Used a recovery code".into(),
        "upstream.linked" => format!("Linked an account at {}", e.detail_str("upstream").unwrap_or_default()),
        "upstream.unlinked" => format!("Unlinked the account at {}", e.detail_str("upstream").unwrap_or_default()),
        "consent.granted" => format!("Allowed access{to}"),
        "grant.revoked" => format!("Access{to} was revoked"),
        "admin.password_set" => format!("Password changed{by_operator}"),
        "admin.factors_reset" => format!("Second factors removed{by_operator}"),
        "admin.user_disabled" => format!("Account disabled{by_operator}"),
        "admin.user_enabled" => format!("Account enabled{by_operator}"),
        "admin.group_member_added" => {
            format!("Added to the group {}{by_operator}", e.detail_str("group").unwrap_or_default())
        }
        "admin.group_member_removed" => {
            format!("Removed from the group {}{by_operator}", e.detail_str("group").unwrap_or_default())
        }
        "admin.role_granted" => format!("Given the role {}{to}{by_operator}", e.detail_str("role").unwrap_or_default()),
        "admin.role_revoked" => {
            format!("The role {}{to} was taken away{by_operator}", e.detail_str("role").unwrap_or_default())
        }
        // Password and email changes, however they are made.
        k if k.starts_with("password.") || k.starts_with("email.") || k.starts_with("account.") => {
            let what = k.replace(['.', '_'], " ");
            let mut c = what.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        }
        _ => return None,
    })
}

/// GET /account/activity
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
    let q = AuditQuery { user_id: Some(user.id.clone()), limit: READ, ..Default::default() };
    let mut lines = Vec::new();
    for e in state.store.audit_events(&q).await? {
        let client = match &e.client_id {
            Some(id) => Some(state.store.client(id).await?.map_or_else(|| id.clone(), |c| c.name.clone())),
            None => None,
        };
        let Some(what) = describe(&e, client.as_deref()) else { continue };
        lines.push(pages::ActivityLine {
            failed: e.kind == "login.failed",
            what,
            at: when(e.at),
            ip: e.ip.clone(),
            browser: e.detail_str("browser"),
        });
        if lines.len() == SHOWN {
            break;
        }
    }
    let page = pages::ActivityPage { username: &user.username, events: lines };
    Ok(pages::render(StatusCode::OK, &page))
}
