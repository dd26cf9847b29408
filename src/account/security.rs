//! `/account/security`: the user's second factors. Shows whether an authenticator app and
//! emailed codes are on, how many recovery codes are left and the passkeys, and carries out
//! what its forms ask through each step's enrolment (in the step's module). Removing a factor
//! asks the policy first: the account must keep a way in, and recovery codes go with the last
//! factor they stand in for.

use super::changed::{self, Change};
use super::{LAST_WAY_IN, Signed, fresh, keeps_a_way_in, sign_in, signed_in};
use crate::http::PageError;
use crate::http::client_ip::ClientAddr;
use crate::http::form::page_form;
use crate::login::flow;
use crate::login::routes::see_other;
use crate::login::step::{Account, Enrolment};
use crate::login::steps::{StepKind, email_otp, passkey, phone_code, recovery_code, totp};
use crate::pages;
use crate::phone::Channel;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

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
    let phone = phone_section(state, &user.id).await?;
    let mut page = pages::SecurityPage {
        username: &user.username,
        csrf: &signed.csrf,
        totp,
        email: email.as_deref(),
        codes_left,
        notice,
        passkeys,
        phone,
        has_second_factor: false,
    };
    page.has_second_factor = page.second_factor_on();
    Ok(pages::render(StatusCode::OK, &page))
}

/// The phone number section, when a channel sends codes here.
async fn phone_section(state: &AppState, user_id: &str) -> Result<Option<pages::PhoneSection>, PageError> {
    let offered: Vec<Channel> = Channel::ALL.into_iter().filter(|c| state.phone.offers(*c)).collect();
    if offered.is_empty() {
        return Ok(None);
    }
    let number = state.store.phone_number(user_id).await?;
    let channels = offered
        .into_iter()
        .map(|c| pages::PhoneChannel {
            name: c.name(),
            label: c.label(),
            on: number.as_ref().is_some_and(|n| n.codes(c)),
        })
        .collect();
    Ok(Some(pages::PhoneSection { number: number.map(|n| crate::phone::mask(&n.number)), channels }))
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
    /// Send a code to a typed number, to verify it.
    BeginPhone,
    /// Verify the number, or turn a channel's codes on, with that code.
    ConfirmPhone,
    /// Forget the number (and its codes).
    RemovePhone,
    /// Send a code by this channel to the verified number, to turn its codes on.
    BeginPhoneCodes(Channel),
    RemovePhoneCodes(Channel),
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
            "phone-begin" => Some(Self::BeginPhone),
            "phone-confirm" => Some(Self::ConfirmPhone),
            "phone-remove" => Some(Self::RemovePhone),
            _ => {
                let (channel, what) = s.split_once('-')?;
                let channel = Channel::parse(channel)?;
                match what {
                    "begin" => Some(Self::BeginPhoneCodes(channel)),
                    "remove" => Some(Self::RemovePhoneCodes(channel)),
                    _ => None,
                }
            }
        }
    }

    /// Confirming only finishes what a fresh begin started; a name changes no factor.
    fn needs_fresh_sign_in(self) -> bool {
        !matches!(
            self,
            Self::ConfirmTotp | Self::ConfirmEmail | Self::FinishPasskey | Self::RenamePasskey | Self::ConfirmPhone
        )
    }
}

/// GET /account/security
pub async fn show(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match signed_in(&state, &headers, addr, PAGE).await? {
        Ok(signed) => render(&state, &signed, None).await,
        Err(resp) => Ok(resp),
    }
}

/// POST /account/security: signed in, the CSRF token right and, for a change, a recent
/// sign-in — otherwise a (re-)authentication that returns here — then the form's action.
pub async fn change(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let signed = match signed_in(&state, &headers, addr, PAGE).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let p = page_form(&headers, &body, &signed.csrf)?;
    let Some(action) = p.get("action").and_then(Action::parse) else {
        return Err(PageError::bad_request("invalid_request", "The form could not be read", "Unknown action."));
    };
    let now = state.now();
    if action.needs_fresh_sign_in() && !fresh(&state, &signed.session, now).await? {
        return sign_in(&state, &headers, addr, PAGE).await;
    }
    let user_id = &signed.session.user_id;
    let account = Account {
        state: &state,
        user_id,
        session_id: &signed.session.id,
        csrf: &signed.csrf,
        ip: Some(addr.to_string()),
        now,
    };
    let code = p.get("code").unwrap_or_default();
    // The channel a phone confirmation turns on, if that is what it confirms.
    let mut confirming = None;
    // Whether codes by phone were on before a confirmation: a new number turns them off.
    let mut codes_before = false;
    let done = match action {
        Action::BeginTotp => totp::begin(&account).await?,
        Action::ConfirmTotp => totp::confirm(&account, code).await?,
        Action::RemoveTotp => return remove(&account, &signed, Some(StepKind::Totp)).await,
        Action::BeginEmail => email_otp::begin(&account).await?,
        Action::ConfirmEmail => email_otp::confirm(&account, code).await?,
        Action::RemoveEmail => return remove(&account, &signed, Some(StepKind::EmailOtp)).await,
        // Codes stand in for a second factor, so there must be one.
        Action::RecoveryCodes => {
            if !flow::factors_of(&state, user_id).await?.keeps_fallbacks() {
                Enrolment::Notice("Turn on an authenticator app, emailed codes or codes by phone first.")
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
        Action::BeginPhone => {
            phone_code::begin_number(&account, p.get("phone").unwrap_or_default(), p.get("channel")).await?
        }
        Action::ConfirmPhone => {
            confirming = phone_code::confirming(&account).await?;
            codes_before = state.store.phone_number(user_id).await?.is_some_and(|n| n.sms_codes || n.whatsapp_codes);
            phone_code::confirm(&account, code).await?
        }
        Action::RemovePhone => return remove(&account, &signed, None).await,
        Action::BeginPhoneCodes(channel) => phone_code::begin_codes(&account, channel).await?,
        Action::RemovePhoneCodes(Channel::Sms) => return remove(&account, &signed, Some(StepKind::Sms)).await,
        Action::RemovePhoneCodes(Channel::Whatsapp) => {
            return remove(&account, &signed, Some(StepKind::Whatsapp)).await;
        }
    };
    // A factor on, or new recovery codes: other sessions end and the user is told.
    let change = match (action, &done) {
        (Action::ConfirmTotp, Enrolment::Enabled(_)) => Some(Change::TotpOn),
        (Action::ConfirmEmail, Enrolment::Enabled(_)) => Some(Change::EmailCodesOn),
        (Action::FinishPasskey, Enrolment::Enabled(_)) => Some(Change::PasskeyAdded),
        (Action::ConfirmPhone, Enrolment::Enabled(_)) => confirming.map(Change::PhoneCodesOn),
        (Action::RecoveryCodes, Enrolment::Show(_)) => Some(Change::RecoveryCodes),
        (Action::ConfirmPhone, Enrolment::Notice(_)) if codes_before => {
            let after = state.store.phone_number(user_id).await?;
            after.is_some_and(|n| !n.sms_codes && !n.whatsapp_codes).then_some(Change::PhoneChanged)
        }
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

/// Turns the factor `step` off — or, with none, the phone number and both its channels — if
/// the account keeps a way in; its fallbacks go with the last factor they stand in for.
async fn remove(account: &Account<'_>, signed: &Signed, step: Option<StepKind>) -> Result<Response, PageError> {
    let state = account.state;
    let removed = |c: &mut crate::domain::Credentials| match step {
        Some(StepKind::Totp) => c.totp = false,
        Some(StepKind::EmailOtp) => c.email_otp = false,
        Some(StepKind::Sms) => c.sms_codes = false,
        Some(StepKind::Whatsapp) => c.whatsapp_codes = false,
        _ => (c.sms_codes, c.whatsapp_codes, c.phone_number) = (false, false, false),
    };
    if !keeps_a_way_in(state, account.user_id, removed).await? {
        return render(state, signed, Some(LAST_WAY_IN)).await;
    }
    let gone: &[StepKind] = match &step {
        Some(step) => std::slice::from_ref(step),
        None => &[StepKind::Sms, StepKind::Whatsapp],
    };
    let left = gone.iter().fold(flow::factors_of(state, account.user_id).await?, |f, s| f.without(*s));
    let drop_fallbacks = !left.keeps_fallbacks();
    let change = match step {
        Some(StepKind::Totp) => {
            totp::remove(account, drop_fallbacks).await?;
            Change::TotpOff
        }
        Some(StepKind::EmailOtp) => {
            email_otp::remove(account, drop_fallbacks).await?;
            Change::EmailCodesOff
        }
        Some(StepKind::Sms) => {
            phone_code::remove_codes(account, Channel::Sms, drop_fallbacks).await?;
            Change::PhoneCodesOff(Channel::Sms)
        }
        Some(StepKind::Whatsapp) => {
            phone_code::remove_codes(account, Channel::Whatsapp, drop_fallbacks).await?;
            Change::PhoneCodesOff(Channel::Whatsapp)
        }
        _ => {
            phone_code::remove_number(account, drop_fallbacks).await?;
            Change::PhoneRemoved
        }
    };
    changed::methods_changed(state, account.user_id, Some(account.session_id), change, account.ip.clone()).await?;
    Ok(see_other(PAGE))
}
