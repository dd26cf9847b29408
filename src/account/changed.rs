//! After the user changes their own sign-in methods (a password, an authenticator app, emailed
//! codes, a passkey, recovery codes, a linked account), whoever signed in elsewhere is out and
//! the user hears of it (issue #20, medium 6): every other session ends, with the grants
//! obtained in it; this browser stays signed in; a mail says what changed and what to do if it
//! was not them. One helper, called by every change on the account pages.

use super::mail;
use crate::http::PageError;
use crate::phone::Channel;
use crate::state::AppState;
use crate::store::AuditEvent;

/// What changed, as the mail says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Password,
    TotpOn,
    TotpOff,
    EmailCodesOn,
    EmailCodesOff,
    PasskeyAdded,
    PasskeyRemoved,
    RecoveryCodes,
    Unlinked,
    PhoneCodesOn(crate::phone::Channel),
    PhoneCodesOff(crate::phone::Channel),
    PhoneRemoved,
}

/// The sentence of a reset by link (no session stays, so it is not a [`Change`]).
pub const RESET_SENTENCE: &str = "Your password was changed with a reset link.";

impl Change {
    fn sentence(self) -> &'static str {
        match self {
            Change::Password => "Your password was changed.",
            Change::TotpOn => "An authenticator app was set up for your account.",
            Change::TotpOff => "The authenticator app of your account was turned off.",
            Change::EmailCodesOn => "Sign-in codes by email were turned on for your account.",
            Change::EmailCodesOff => "Sign-in codes by email were turned off for your account.",
            Change::PasskeyAdded => "A passkey was added to your account.",
            Change::PasskeyRemoved => "A passkey was removed from your account.",
            Change::RecoveryCodes => "New recovery codes were made for your account; the old ones no longer work.",
            Change::Unlinked => "An account at another provider was unlinked from your account.",
            Change::PhoneCodesOn(Channel::Sms) => "Sign-in codes by SMS were turned on for your account.",
            Change::PhoneCodesOn(Channel::Whatsapp) => "Sign-in codes by WhatsApp were turned on for your account.",
            Change::PhoneCodesOff(Channel::Sms) => "Sign-in codes by SMS were turned off for your account.",
            Change::PhoneCodesOff(Channel::Whatsapp) => "Sign-in codes by WhatsApp were turned off for your account.",
            Change::PhoneRemoved => "The phone number of your account was removed.",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Change::Password => "password",
            Change::TotpOn => "totp_on",
            Change::TotpOff => "totp_off",
            Change::EmailCodesOn => "email_codes_on",
            Change::EmailCodesOff => "email_codes_off",
            Change::PasskeyAdded => "passkey_added",
            Change::PasskeyRemoved => "passkey_removed",
            Change::RecoveryCodes => "recovery_codes",
            Change::Unlinked => "unlinked",
            Change::PhoneCodesOn(Channel::Sms) => "sms_codes_on",
            Change::PhoneCodesOn(Channel::Whatsapp) => "whatsapp_codes_on",
            Change::PhoneCodesOff(Channel::Sms) => "sms_codes_off",
            Change::PhoneCodesOff(Channel::Whatsapp) => "whatsapp_codes_off",
            Change::PhoneRemoved => "phone_removed",
        }
    }
}

/// Ends the user's sessions other than `keep` (and their grants), records it, and mails the
/// user about `change`.
pub async fn methods_changed(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
    change: Change,
    ip: Option<String>,
) -> Result<(), PageError> {
    let now = state.now();
    state.store.end_other_sessions(user_id, keep, now).await?;
    let event = AuditEvent::new("account.methods_changed").user(user_id).ip(ip).detail("change", change.name());
    state.store.audit(event, now).await;
    if let Some(user) = state.store.user(user_id).await? {
        let signed_out = "Any other browser or device signed in to your account was signed out.";
        state.send_later(mail::methods_changed(state, &user.email, &user.username, change.sentence(), signed_out));
    }
    Ok(())
}
