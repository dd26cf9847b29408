//! `/account/security`: the user's second factors. Shows whether an authenticator app and
//! emailed codes are on, how many recovery codes are left and the passkeys, and carries out
//! what its forms ask through each step's enrolment (in the step's module). Removing a factor
//! asks the policy first: the account must keep a way in, and recovery codes go with the last
//! factor they stand in for.

use super::changed::{self, Change};
use super::{LAST_WAY_IN, Signed, fresh, keeps_a_way_in, sign_in, signed_in};
use crate::http::PageError;
use crate::http::form::page_form;
use crate::login::flow;
use crate::login::routes::see_other;
use crate::login::step::{Account, Enrolment};
use crate::login::steps::{StepKind, email_otp, passkey, recovery_code, totp};
use crate::pages;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub const PAGE: &str = "/account/security";

pub(super) async fn render(state: &AppState, signed: &Signed, notice: Option<&str>) -> Result<Response, PageError> {
    let user = state.store.user(&signed.session.user_id).await?.ok_or_else(PageError::expired)?;
    let totp = state.store.totp_credential(&user.id).await?.is_some();
    let email = state.store.email_otp_address(&user.id).await?.map(|a| email_otp::mask(&a));
    let codes_left = state.store.recovery_codes_left(&user.id).await?;
    let passkeys = match state.webauthn {
        Some(_) => Some(passkey::enrol::lines(state, &user.id).await?),
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
    let account = Account {
        state: &state,
        user_id,
        session_id: &signed.session.id,
        csrf: &signed.csrf,
        ip: Some(state.ip_of(&addr, &headers)),
        now,
    };
    let code = p.get("code").unwrap_or_default();
    let done = match action {
        Action::BeginTotp => totp::begin(&account).await?,
        Action::ConfirmTotp => totp::confirm(&account, code).await?,
        Action::RemoveTotp => return remove(&account, &signed, StepKind::Totp).await,
        Action::BeginEmail => email_otp::begin(&account).await?,
        Action::ConfirmEmail => email_otp::confirm(&account, code).await?,
        Action::RemoveEmail => return remove(&account, &signed, StepKind::EmailOtp).await,
        // Codes stand in for a second factor, so there must be one.
        Action::RecoveryCodes => {
            if !flow::factors_of(&state, user_id).await?.keeps_fallbacks() {
                Enrolment::Notice("Turn on an authenticator app or emailed codes first.")
            } else {
                recovery_code::issue(&account).await?
            }
        }
        Action::BeginPasskey => passkey::enrol::begin(&account, p.get("name")).await?,
        Action::FinishPasskey => passkey::enrol::finish(&account, p.get("credential")).await?,
        Action::RenamePasskey => {
            let (Some(id), Some(name)) = (p.get("id"), p.get("name").and_then(passkey::enrol::clean_name)) else {
                return render(&state, &signed, Some("Give the passkey a name.")).await;
            };
            state.store.rename_passkey(user_id, id, &name).await?;
            return Ok(see_other(PAGE));
        }
        Action::RemovePasskey => {
            let id = p.get("id").unwrap_or_default();
            if !keeps_a_way_in(&state, user_id, |c| c.passkeys = c.passkeys.saturating_sub(1)).await? {
                return render(&state, &signed, Some(LAST_WAY_IN)).await;
            }
            if state.store.remove_passkey(user_id, id).await? {
                state.store.audit(account.event("mfa.passkey_removed").detail("passkey", id), now).await;
                let ip = account.ip.clone();
                changed::methods_changed(&state, user_id, Some(&signed.session.id), Change::PasskeyRemoved, ip).await?;
            }
            return Ok(see_other(PAGE));
        }
    };
    // A factor on, or new recovery codes: other sessions end and the user is told.
    let change = match (action, &done) {
        (Action::ConfirmTotp, Enrolment::Enabled(_)) => Some(Change::TotpOn),
        (Action::ConfirmEmail, Enrolment::Enabled(_)) => Some(Change::EmailCodesOn),
        (Action::FinishPasskey, Enrolment::Enabled(_)) => Some(Change::PasskeyAdded),
        (Action::RecoveryCodes, Enrolment::Show(_)) => Some(Change::RecoveryCodes),
        _ => None,
    };
    if let Some(change) = change {
        changed::methods_changed(&state, user_id, Some(&signed.session.id), change, account.ip.clone()).await?;
    }
    match done {
        Enrolment::Show(view) => Ok(view.into_response()),
        Enrolment::Notice(notice) => render(&state, &signed, Some(notice)).await,
        // A first factor that fallbacks stand in for: with none left, a first set is made and shown.
        Enrolment::Enabled(notice) => {
            let factors = flow::factors_of(&state, user_id).await?;
            if factors.keeps_fallbacks()
                && state.store.recovery_codes_left(user_id).await? == 0
                && let Enrolment::Show(view) = recovery_code::issue(&account).await?
            {
                return Ok(view.into_response());
            }
            render(&state, &signed, Some(notice)).await
        }
    }
}

/// Turns the factor `step` off, if the account keeps a way in; its fallbacks go with the last
/// factor they stand in for.
async fn remove(account: &Account<'_>, signed: &Signed, step: StepKind) -> Result<Response, PageError> {
    let state = account.state;
    let removed = |c: &mut crate::domain::Credentials| match step {
        StepKind::Totp => c.totp = false,
        _ => c.email_otp = false,
    };
    if !keeps_a_way_in(state, account.user_id, removed).await? {
        return render(state, signed, Some(LAST_WAY_IN)).await;
    }
    let drop_fallbacks = !flow::factors_of(state, account.user_id).await?.without(step).keeps_fallbacks();
    let change = match step {
        StepKind::Totp => {
            totp::remove(account, drop_fallbacks).await?;
            Change::TotpOff
        }
        _ => {
            email_otp::remove(account, drop_fallbacks).await?;
            Change::EmailCodesOff
        }
    };
    changed::methods_changed(state, account.user_id, Some(account.session_id), change, account.ip.clone()).await?;
    Ok(see_other(PAGE))
}
