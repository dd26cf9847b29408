//! `/account/security`: the user's second factors. Shows whether an authenticator app and
//! emailed codes are on and how many recovery codes are left; sets an app up (QR code and key,
//! confirmed by a first valid code), turns emailed codes on (confirmed by a first code sent to
//! the account's address), turns either off, and makes a new set of recovery codes (shown once).
//! Lists the user's passkeys, adds one (see [`super::passkeys`]), renames and removes them.

use super::{LAST_WAY_IN, Signed, fresh, keeps_a_way_in, passkeys, sign_in, signed_in};
use crate::crypto::random_token;
use crate::http::PageError;
use crate::http::form::page_form;
use crate::login::flow;
use crate::login::routes::see_other;
use crate::login::steps::{StepKind, account_key, email_otp, recovery_code, totp};
use crate::pages;
use crate::state::AppState;
use crate::store::AuditEvent;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

pub const PAGE: &str = "/account/security";
/// How long a shown, unconfirmed authenticator key waits for its first code.
const ENROL_TTL: Duration = Duration::from_secs(10 * 60);

fn pending_key(session_id: &str) -> String {
    format!("totp-enrol:{session_id}")
}

fn email_pending_key(session_id: &str) -> String {
    format!("email-enrol:{session_id}")
}

/// An emailed code waiting to confirm the address codes will go to.
#[derive(Serialize, Deserialize)]
struct EmailEnrolment {
    email: String,
    salt: String,
    hash: String,
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
    let email = state.store.email_otp_address(&user.id).await?.map(|a| email_otp::mask(&a));
    let codes_left = state.store.recovery_codes_left(&user.id).await?;
    let passkeys = match state.webauthn {
        Some(_) => Some(passkeys::lines(state, &user.id).await?),
        None => None,
    };
    let page = pages::SecurityPage {
        username: &user.username,
        csrf: &signed.csrf,
        totp,
        email: email.as_deref(),
        codes_left,
        notice,
        passkeys,
    };
    Ok(pages::render(StatusCode::OK, &page))
}

/// What a form on the page asks for (its `action` field).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Show a new authenticator key (first or replacement).
    BeginTotp,
    /// Turn it on with its first code.
    ConfirmTotp,
    /// Turn the authenticator app off.
    RemoveTotp,
    /// Email a code to the account's address.
    BeginEmail,
    /// Turn emailed codes on with that code.
    ConfirmEmail,
    /// Turn emailed codes off.
    RemoveEmail,
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
            "email-begin" => Some(Self::BeginEmail),
            "email-confirm" => Some(Self::ConfirmEmail),
            "email-remove" => Some(Self::RemoveEmail),
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
        !matches!(self, Self::ConfirmTotp | Self::ConfirmEmail | Self::FinishPasskey | Self::RenamePasskey)
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
        // The app off; the recovery codes go too when no second factor is left.
        Action::RemoveTotp => {
            if !keeps_a_way_in(&state, user_id, |c| c.totp = false).await? {
                return render(&state, &signed, Some(LAST_WAY_IN)).await;
            }
            let left = flow::factors_of(&state, user_id).await?.without(StepKind::Totp);
            if state.store.remove_totp(user_id, !left.keeps_fallbacks()).await? {
                state.store.audit(event("mfa.totp_removed", &signed, &addr), now).await;
            }
            Ok(see_other(PAGE))
        }
        Action::BeginEmail => begin_email(&state, &signed).await,
        // The code proves the address reaches this person; codes go to it from now on.
        Action::ConfirmEmail => {
            let key = email_pending_key(&signed.session.id);
            let Some(pending) =
                state.ephemeral.get(&key).await?.and_then(|j| serde_json::from_str::<EmailEnrolment>(&j).ok())
            else {
                return render(&state, &signed, Some("That code expired. Start again.")).await;
            };
            let tries = state.ephemeral.incr(&format!("{key}:tries"), email_otp::ttl(&state)).await?;
            if tries > email_otp::MAX_TRIES
                || !email_otp::matches(p.get("code").unwrap_or_default(), &pending.salt, &pending.hash)
            {
                state.store.audit(event("mfa.email_otp_enrol_failed", &signed, &addr), now).await;
                if tries >= email_otp::MAX_TRIES {
                    state.ephemeral.delete(&key).await?;
                    return render(&state, &signed, Some("Too many wrong codes. Start again.")).await;
                }
                let error = "That code is not right. Enter the code from the email we just sent.";
                return Ok(email_enrol_page(&signed, &pending.email, Some(error)));
            }
            state.ephemeral.delete(&key).await?;
            state.store.enable_email_otp(user_id, &pending.email, now).await?;
            state.store.audit(event("mfa.email_otp_enabled", &signed, &addr), now).await;
            if state.store.recovery_codes_left(user_id).await? == 0 {
                return issue_recovery_codes(&state, &signed, &addr, now).await;
            }
            render(&state, &signed, Some("Emailed codes are on.")).await
        }
        Action::RemoveEmail => {
            if !keeps_a_way_in(&state, user_id, |c| c.email_otp = false).await? {
                return render(&state, &signed, Some(LAST_WAY_IN)).await;
            }
            let left = flow::factors_of(&state, user_id).await?.without(StepKind::EmailOtp);
            if state.store.disable_email_otp(user_id, !left.keeps_fallbacks()).await? {
                state.store.audit(event("mfa.email_otp_disabled", &signed, &addr), now).await;
            }
            Ok(see_other(PAGE))
        }
        // Codes stand in for a second factor, so there must be one.
        Action::RecoveryCodes => {
            if !flow::factors_of(&state, user_id).await?.keeps_fallbacks() {
                return render(&state, &signed, Some("Turn on an authenticator app or emailed codes first.")).await;
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
            if !keeps_a_way_in(&state, user_id, |c| c.passkeys = c.passkeys.saturating_sub(1)).await? {
                return render(&state, &signed, Some(LAST_WAY_IN)).await;
            }
            if state.store.remove_passkey(user_id, id).await? {
                state.store.audit(event("mfa.passkey_removed", &signed, &addr).detail("passkey", id), now).await;
            }
            Ok(see_other(PAGE))
        }
    }
}

/// Emails a code to the account's address, within the same limits as sign-in codes.
async fn begin_email(state: &AppState, signed: &Signed) -> Result<Response, PageError> {
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let ttl = email_otp::ttl(state);
    let sends = state.ephemeral.incr(&email_otp::sends_key(&account_key(&user.id)), ttl).await?;
    if sends > email_otp::MAX_SENDS {
        return render(state, signed, Some("Too many codes were sent. Wait a few minutes and try again.")).await;
    }
    let code = email_otp::new_code();
    let salt = random_token();
    let pending = EmailEnrolment { email: user.email.clone(), hash: email_otp::digest(&salt, &code), salt };
    if let Err(e) = state.mail.send(email_otp::mail(state, &user.email, &code, "your account")).await {
        tracing::warn!(user = %user.id, error = %format!("{e:#}"), "could not send an enrolment code");
        return render(state, signed, Some("We could not send the email just now. Try again in a moment.")).await;
    }
    let key = email_pending_key(&signed.session.id);
    state.ephemeral.put(&key, &serde_json::to_string(&pending).map_err(anyhow::Error::from)?, ttl).await?;
    state.ephemeral.delete(&format!("{key}:tries")).await?;
    Ok(email_enrol_page(signed, &user.email, None))
}

fn email_enrol_page(signed: &Signed, email: &str, error: Option<&str>) -> Response {
    let to = email_otp::mask(email);
    pages::render(StatusCode::OK, &pages::EmailEnrolPage { csrf: &signed.csrf, to: &to, error })
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
