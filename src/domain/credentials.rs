//! What a user has to sign in with, as the store answers it in one query: the login policy
//! and the account pages reason about it; the store only counts.

/// A user's credentials, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub password: bool,
    /// An authenticator app (RFC 6238).
    pub totp: bool,
    /// Emailed one-time codes, to an address confirmed for them.
    pub email_otp: bool,
    /// Codes by SMS / by WhatsApp, to the verified phone number.
    pub sms_codes: bool,
    pub whatsapp_codes: bool,
    /// A verified phone number: with `phone.first_factor`, a way in on its own, whether or not
    /// its codes are on as a second factor.
    pub phone_number: bool,
    pub passkeys: u32,
    /// Identities at upstream providers linked to the account.
    pub upstream: u32,
    /// Unused recovery codes.
    pub recovery_codes: u32,
}
