//! Passkeys on the account security page: the list, and the registration ceremony (WebAuthn Level 3
//! §7.1). `begin` makes the creation options — a discoverable credential (resident key) with
//! user verification, so the passkey can sign in alone — and keeps webauthn-rs's registration
//! state in the ephemeral store for the session; `finish` takes that state once and stores the
//! credential, refusing a credential id registered before (to anyone).

use crate::crypto::b64url;
use crate::ephemeral::Taken;
use crate::http::PageError;
use crate::login::step::{Account, Enrolment};
use crate::pages::{self, View};
use crate::state::AppState;
use crate::store::NewPasskey;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use webauthn_rs::prelude::{Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid};

/// How long the browser has to create the passkey.
const ENROL_TTL: Duration = Duration::from_secs(10 * 60);
const MAX_NAME: usize = 64;

fn pending_key(session_id: &str) -> String {
    format!("passkey-enrol:{session_id}")
}

/// What a started registration keeps until the browser answers.
#[derive(Serialize, Deserialize)]
struct Pending {
    name: String,
    state: PasskeyRegistration,
}

/// A name as given: trimmed, control characters dropped, at most [`MAX_NAME`] characters.
pub fn clean_name(name: &str) -> Option<String> {
    let name: String = name.chars().filter(|c| !c.is_control()).take(MAX_NAME).collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

pub async fn lines(state: &AppState, user_id: &str) -> Result<Vec<pages::PasskeyLine>, PageError> {
    Ok(state
        .store
        .passkeys(user_id)
        .await?
        .into_iter()
        .map(|p| pages::PasskeyLine {
            synced: p.backup_eligible(),
            id: p.id,
            name: p.name,
            created: date(p.created_at),
            last_used: p.last_used_at.map(date),
        })
        .collect())
}

/// The creation options for a new passkey named `name`, shown on a page whose script runs
/// `navigator.credentials.create`.
pub async fn begin(account: &Account<'_>, name: Option<&str>) -> Result<Enrolment, PageError> {
    let state = account.state;
    let Some(webauthn) = &state.webauthn else { return Ok(Enrolment::Notice(UNAVAILABLE)) };
    let name = name.and_then(clean_name).unwrap_or_else(|| "Passkey".to_owned());
    let user = state.store.user(account.user_id).await?.ok_or_else(PageError::expired)?;
    let handle = state.store.webauthn_handle(&user.id, &Uuid::new_v4().to_string()).await?;
    let handle = Uuid::parse_str(&handle).map_err(anyhow::Error::from)?;
    // Each authenticator holds one credential per account: offer the registered ones to exclude.
    let existing = state.store.passkeys(&user.id).await?;
    let exclude = existing.iter().filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok());
    let exclude = exclude.map(|p| p.cred_id().clone()).collect();
    let (ccr, reg) = webauthn
        .start_passkey_registration(handle, &user.username, &user.username, Some(exclude))
        .map_err(|e| PageError::from(anyhow::anyhow!("webauthn: {e}")))?;
    let pending = serde_json::to_string(&Pending { name: name.clone(), state: reg }).map_err(anyhow::Error::from)?;
    state.ephemeral.put(&pending_key(account.session_id), &pending, ENROL_TTL).await?;
    let options = require_resident_key(serde_json::to_value(ccr).map_err(anyhow::Error::from)?);
    let page = pages::PasskeyEnrolPage { csrf: account.csrf, name: &name, options: &options.to_string() };
    Ok(Enrolment::Show(View::scripted(StatusCode::OK, &page)))
}

/// webauthn-rs asks for a resident key only as a preference; a passkey that signs in alone
/// must be discoverable, so require it (WebAuthn §5.4.4 `residentKey`).
fn require_resident_key(mut options: Value) -> Value {
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    options
}

/// Stores the passkey the browser created, if it answers the pending registration.
pub async fn finish(account: &Account<'_>, credential: Option<&str>) -> Result<Enrolment, PageError> {
    let (state, now) = (account.state, account.now);
    let Some(webauthn) = &state.webauthn else { return Ok(Enrolment::Notice(UNAVAILABLE)) };
    let pending = match state.ephemeral.take(&pending_key(account.session_id)).await? {
        Taken::Fresh(json) => serde_json::from_str::<Pending>(&json).ok(),
        Taken::Consumed(_) | Taken::Missing => None,
    };
    let Some(pending) = pending else {
        return Ok(Enrolment::Notice("That passkey setup expired or was already used. Start again."));
    };
    let credential: Option<RegisterPublicKeyCredential> = credential.and_then(|j| serde_json::from_str(j).ok());
    let passkey = credential.and_then(|c| webauthn.finish_passkey_registration(&c, &pending.state).ok());
    let Some(passkey) = passkey else {
        state.store.audit(account.event("mfa.passkey_add_failed"), now).await;
        return Ok(Enrolment::Notice("The passkey could not be created. Try again."));
    };
    let json = serde_json::to_string(&passkey).map_err(anyhow::Error::from)?;
    let new = NewPasskey {
        user_id: account.user_id,
        credential_id: &b64url(passkey.cred_id()),
        passkey: &json,
        name: &pending.name,
        sign_count: counter(&json),
        backup_eligible: backup_eligible(&json),
    };
    if !state.store.insert_passkey(&new, now).await? {
        state.store.audit(account.event("mfa.passkey_add_failed").detail("reason", "duplicate"), now).await;
        return Ok(Enrolment::Notice("That passkey is registered already."));
    }
    state.store.audit(account.event("mfa.passkey_added").detail("name", pending.name.clone()), now).await;
    Ok(Enrolment::Enabled("Your passkey is added."))
}

const UNAVAILABLE: &str = "Passkeys are not available on this server.";

/// webauthn-rs keeps the counter and the backup-eligible flag inside the credential and shows
/// them only through its serialised form.
fn credential_field<'a>(json: &'a Value, name: &str) -> Option<&'a Value> {
    json.get("cred").and_then(|c| c.get(name))
}

fn counter(json: &str) -> i64 {
    let v: Value = serde_json::from_str(json).unwrap_or_default();
    credential_field(&v, "counter").and_then(Value::as_i64).unwrap_or(0)
}

fn backup_eligible(json: &str) -> bool {
    let v: Value = serde_json::from_str(json).unwrap_or_default();
    credential_field(&v, "backup_eligible").and_then(Value::as_bool).unwrap_or(false)
}

/// A Unix time as a UTC calendar date, YYYY-MM-DD (H. Hinnant's civil_from_days).
fn date(t: i64) -> String {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_names() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_798_761_599), "2026-12-31");
        assert_eq!(clean_name("  My\u{7} laptop "), Some("My laptop".into()));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name(&"x".repeat(100)).map(|n| n.len()), Some(MAX_NAME));
    }

    #[test]
    fn resident_key_is_required() {
        let o = serde_json::json!({"publicKey": {"authenticatorSelection": {"residentKey": "discouraged"}}});
        let o = require_resident_key(o);
        assert_eq!(o["publicKey"]["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(o["publicKey"]["authenticatorSelection"]["requireResidentKey"], true);
    }
}
