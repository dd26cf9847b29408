//! `/account/security`: the user's second factors. Shows whether an authenticator app is set
//! up and how many recovery codes are left; sets one up (QR code and key, confirmed by a first
//! valid code), turns two-step sign-in off, and makes a new set of recovery codes (shown once).
//! Lists the user's passkeys, adds one (see [`super::passkeys`]), renames and removes them.

use super::{Signed, fresh, passkeys, sign_in, signed_in};
use crate::app::AppState;
use crate::http::PageError;
use crate::http::form::page_form;
use crate::login::flow::see_other;
use crate::login::steps::{recovery_code, totp};
use crate::pages;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::net::SocketAddr;
use std::time::Duration;

pub const PAGE: &str = "/account/security";
/// How long a shown, unconfirmed authenticator key waits for its first code.
const ENROL_TTL: Duration = Duration::from_secs(10 * 60);

fn pending_key(session_id: &str) -> String {
    format!("totp-enrol:{session_id}")
}

pub(super) fn event(kind: &'static str, signed: &Signed, addr: &SocketAddr) -> AuditEvent {
    AuditEvent::new(kind)
        .user(&signed.session.user_id)
        .ip(Some(addr.ip().to_string()))
        .detail("sid", signed.session.id.clone())
}

pub(super) async fn render(state: &AppState, signed: &Signed, notice: Option<&str>) -> Result<Response, PageError> {
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let totp = state.store.totp_credential(&user.id).await?.is_some();
    let codes_left = state.store.recovery_codes_left(&user.id).await?;
    let passkeys = match state.webauthn {
        Some(_) => Some(passkeys::lines(state, &user.id).await?),
        None => None,
    };
    let page = pages::SecurityPage { username: &user.username, csrf: &signed.csrf, totp, codes_left, notice, passkeys };
    Ok(pages::render(StatusCode::OK, &page))
}

/// What a form on the page asks for (its `action` field).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Show a new authenticator key (first or replacement).
    BeginTotp,
    /// Turn it on with its first code.
    ConfirmTotp,
    /// Turn two-step sign-in off.
    RemoveTotp,
    /// A new set of recovery codes.
    RecoveryCodes,
    /// Start creating a passkey (the browser's ceremony follows).
    BeginPasskey,
    /// Store the passkey the browser created.
    FinishPasskey,
    RenamePasskey,
    RemovePasskey,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "totp-begin" => Some(Self::BeginTotp),
            "totp-confirm" => Some(Self::ConfirmTotp),
            "totp-remove" => Some(Self::RemoveTotp),
            "recovery-codes" => Some(Self::RecoveryCodes),
            "passkey-begin" => Some(Self::BeginPasskey),
            "passkey-finish" => Some(Self::FinishPasskey),
            "passkey-rename" => Some(Self::RenamePasskey),
            "passkey-remove" => Some(Self::RemovePasskey),
            _ => None,
        }
    }

    /// Confirming only finishes what a fresh begin started; a name changes no factor.
    fn needs_fresh_sign_in(self) -> bool {
        !matches!(self, Self::ConfirmTotp | Self::FinishPasskey | Self::RenamePasskey)
    }
}

/// GET /account/security
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    match signed_in(&state, &headers, PAGE).await? {
        Ok(signed) => render(&state, &signed, None).await,
        Err(resp) => Ok(resp),
    }
}

/// POST /account/security: signed in, the CSRF token right and, for a change, a recent
/// sign-in — otherwise a (re-)authentication that returns here — then the form's action.
pub async fn change(
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
    let Some(action) = p.get("action").and_then(Action::parse) else {
        return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown action."));
    };
    let now = state.now();
    if action.needs_fresh_sign_in() && !fresh(&state, &signed.session, now).await? {
        return sign_in(&state, &headers, PAGE).await;
    }
    let user_id = &signed.session.user_id;
    match action {
        // A new secret, kept sealed in the ephemeral store until a first code proves the app
        // has it (RFC 6238 enrolment).
        Action::BeginTotp => {
            let secret = totp::new_secret();
            let sealed = totp::seal(&state.keys, user_id, &secret);
            state.ephemeral.put(&pending_key(&signed.session.id), &sealed, ENROL_TTL).await?;
            enrol_page(&state, &signed, &secret, None).await
        }
        // The first code turns the authenticator on; its step becomes the replay guard. With no
        // recovery codes left, a first set is made and shown.
        Action::ConfirmTotp => {
            let Some(sealed) = state.ephemeral.get(&pending_key(&signed.session.id)).await? else {
                return render(&state, &signed, Some("That setup expired. Start again.")).await;
            };
            let secret = totp::open(&state.keys, user_id, &sealed).map_err(PageError::from)?;
            let Some(step) = totp::check(&secret, p.get("code").unwrap_or_default(), now) else {
                state.store.audit(event("mfa.totp_enrol_failed", &signed, &addr), now).await;
                let error = "That code is not right. Enter the code your app shows now.";
                return enrol_page(&state, &signed, &secret, Some(error)).await;
            };
            state.store.set_totp_credential(user_id, &sealed, step, now).await?;
            state.ephemeral.delete(&pending_key(&signed.session.id)).await?;
            state.store.audit(event("mfa.totp_enrolled", &signed, &addr), now).await;
            if state.store.recovery_codes_left(user_id).await? == 0 {
                return issue_recovery_codes(&state, &signed, &addr, now).await;
            }
            render(&state, &signed, Some("Your authenticator app is set up.")).await
        }
        // Two-step sign-in off: the authenticator and the recovery codes that stand in for it.
        Action::RemoveTotp => {
            if state.store.remove_second_factors(user_id).await? {
                state.store.audit(event("mfa.totp_removed", &signed, &addr), now).await;
            }
            Ok(see_other(PAGE))
        }
        // Codes stand in for an authenticator, so there must be one.
        Action::RecoveryCodes => {
            if state.store.totp_credential(user_id).await?.is_none() {
                return render(&state, &signed, Some("Set up an authenticator app first.")).await;
            }
            issue_recovery_codes(&state, &signed, &addr, now).await
        }
        Action::BeginPasskey => passkeys::begin(&state, &signed, p.get("name")).await,
        Action::FinishPasskey => passkeys::finish(&state, &signed, &addr, p.get("credential"), now).await,
        Action::RenamePasskey => {
            let (Some(id), Some(name)) = (p.get("id"), p.get("name").and_then(passkeys::clean_name)) else {
                return render(&state, &signed, Some("Give the passkey a name.")).await;
            };
            state.store.rename_passkey(user_id, id, &name).await?;
            Ok(see_other(PAGE))
        }
        Action::RemovePasskey => {
            let id = p.get("id").unwrap_or_default();
            if state.store.remove_passkey(user_id, id).await? {
                state.store.audit(event("mfa.passkey_removed", &signed, &addr).detail("passkey", id), now).await;
            }
            Ok(see_other(PAGE))
        }
    }
}

async fn enrol_page(
    state: &AppState,
    signed: &Signed,
    secret: &[u8],
    error: Option<&str>,
) -> Result<Response, PageError> {
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let (key, qr) = totp::enrolment(secret, &user.username)
        .ok_or_else(|| PageError::from(anyhow::anyhow!("cannot draw the TOTP enrolment QR code")))?;
    let page = pages::TotpEnrolPage { csrf: &signed.csrf, secret: &key, qr: &qr, error };
    Ok(pages::render(StatusCode::OK, &page))
}

async fn issue_recovery_codes(
    state: &AppState,
    signed: &Signed,
    addr: &SocketAddr,
    now: i64,
) -> Result<Response, PageError> {
    let codes = recovery_code::generate();
    let hashes: Vec<String> = codes.iter().map(|c| recovery_code::hash(c)).collect();
    state.store.replace_recovery_codes(&signed.session.user_id, &hashes, now).await?;
    state.store.audit(event("mfa.recovery_codes_generated", signed, addr), now).await;
    Ok(pages::render(StatusCode::OK, &pages::RecoveryCodesPage { codes: &codes }))
}
