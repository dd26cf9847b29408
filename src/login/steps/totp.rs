//! The authenticator-app step (RFC 6238 TOTP): 6 digits, 30-second steps, HMAC-SHA-1 — what
//! authenticator apps implement — with one step of clock drift either way. A code is accepted
//! once (RFC 6238 §5.2): the last accepted step is kept per user and only moved forward by a
//! compare-and-set, so a replayed or raced code fails. Secrets are sealed with the KEK under
//! `totp:<user id>`, so a sealed secret cannot be moved onto another account. Setting an app up
//! on the account security page is here too ([`begin`], [`confirm`], [`remove`]).

use super::{THROTTLED, attempt, code_page, second_factor_user, succeeded};
use crate::domain::Credentials;
use crate::http::{PageError, Params};
use crate::keys::KeyRing;
use crate::login::step::{Account, Ctx, Enrolment, Outcome, Role, Step};
use crate::pages::{self, CodeText, View};
use crate::state::AppState;
use totp_rs::{Algorithm, Builder, Secret, Totp as Generator};

const DIGITS: u8 = 6;
const STEP_SECS: u64 = 30;
/// Steps of drift accepted either side of now.
const SKEW: u16 = 1;
/// RFC 4226 §4 asks for 160-bit secrets.
const SECRET_BYTES: usize = 20;
/// Shown by authenticator apps beside the account name.
const ISSUER: &str = "Latchkey";

fn totp(secret: &[u8], account: &str) -> Option<Generator> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        // The otpauth label may not contain ':'.
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    crate::crypto::random_bytes(SECRET_BYTES)
}

/// The time step `code` is valid for at `now` (± [`SKEW`]), if any. Spaces are ignored.
pub fn check(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret, "")?.check(&code, u64::try_from(now).ok()?)?;
    i64::try_from(step).ok()
}

/// What the enrolment page shows: the secret in base32 and an otpauth:// QR code as a PNG
/// data: URL, drawn here so the secret never leaves the server.
pub fn enrolment(secret: &[u8], account: &str) -> Option<(String, String)> {
    let t = totp(secret, account)?;
    let qr = t.to_qr_base64().ok()?;
    Some((Secret::from(secret.to_vec()).to_base32(), format!("data:image/png;base64,{qr}")))
}

/// What a TOTP secret is sealed to (the KEK's associated data).
pub fn aad(user_id: &str) -> String {
    format!("totp:{user_id}")
}

pub fn seal(keys: &KeyRing, user_id: &str, secret: &[u8]) -> String {
    keys.seal_secret(&aad(user_id), secret)
}

pub fn open(keys: &KeyRing, user_id: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
    keys.open_secret(&aad(user_id), sealed)
}

pub const PAGE: CodeText = CodeText {
    title: "Authenticator code",
    heading: "Enter your code",
    intro: "the 6-digit code your authenticator app shows now.",
    label: "Authenticator code",
    numeric: true,
    resend: false,
};

pub struct Totp;

impl Step for Totp {
    const NAME: &'static str = "totp";
    const ROLE: Role = Role::Second;
    const PROVES: &'static [&'static str] = &["otp"];
    const SWITCH_LABEL: &'static str = "Use my authenticator app instead";
    const PREFERENCE: u8 = 1;

    fn enrolled(_state: &AppState, c: &Credentials) -> bool {
        c.totp
    }

    async fn render(ctx: &Ctx<'_>, error: Option<&str>, _form: Option<&Params>) -> Result<View, PageError> {
        Ok(code_page(ctx, error, None, &PAGE))
    }

    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        let Some((user_id, key)) = second_factor_user(ctx).await? else {
            return Ok(Outcome::failed(NOT_ENROLLED, "no user for a second factor", None));
        };
        let failed = |message, reason| Outcome::failed(message, reason, Some(user_id.clone()));
        if !attempt(ctx, &key).await? {
            return Ok(failed(THROTTLED, "account throttled"));
        }
        let Some(credential) = ctx.state.store.totp_credential(&user_id).await? else {
            return Ok(failed(NOT_ENROLLED, "no authenticator enrolled"));
        };
        let secret = open(&ctx.state.keys, &user_id, &credential.secret_enc).map_err(PageError::from)?;
        Ok(match check(&secret, form.get("code").unwrap_or_default(), ctx.now) {
            Some(step) if ctx.state.store.advance_totp_step(&user_id, step).await? => {
                succeeded(ctx, &key).await?;
                Outcome::passed(user_id, vec!["otp".into()])
            }
            Some(_) => failed("That code was already used. Wait for the next one.", "totp code replayed"),
            None => {
                failed("That code is not right. Enter the current code from your authenticator app.", "wrong totp code")
            }
        })
    }
}

// Enrolment, for the account security page (RFC 6238 enrolment: a new secret, kept sealed in
// the ephemeral store until a first code proves the app has it).

/// How long a shown, unconfirmed key waits for its first code.
const ENROL_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn enrol_key(session_id: &str) -> String {
    format!("totp-enrol:{session_id}")
}

/// A new key (first or replacement), shown as a QR code and in base32.
pub async fn begin(account: &Account<'_>) -> Result<Enrolment, PageError> {
    let secret = new_secret();
    let sealed = seal(&account.state.keys, account.user_id, &secret);
    account.state.ephemeral.put(&enrol_key(account.session_id), &sealed, ENROL_TTL).await?;
    enrol_page(account, &secret, None).await
}

/// The first code turns the authenticator on; its step becomes the replay guard.
pub async fn confirm(account: &Account<'_>, code: &str) -> Result<Enrolment, PageError> {
    let (state, user_id, now) = (account.state, account.user_id, account.now);
    let Some(sealed) = state.ephemeral.get(&enrol_key(account.session_id)).await? else {
        return Ok(Enrolment::Notice("That setup expired. Start again."));
    };
    let secret = open(&state.keys, user_id, &sealed).map_err(PageError::from)?;
    let Some(step) = check(&secret, code, now) else {
        state.store.audit(account.event("mfa.totp_enrol_failed"), now).await;
        return enrol_page(account, &secret, Some("That code is not right. Enter the code your app shows now.")).await;
    };
    state.store.set_totp_credential(user_id, &sealed, step, now).await?;
    state.ephemeral.delete(&enrol_key(account.session_id)).await?;
    state.store.audit(account.event("mfa.totp_enrolled"), now).await;
    Ok(Enrolment::Enabled("Your authenticator app is set up."))
}

/// The app off; the fallbacks go too when `drop_fallbacks` (no second factor is left for them).
pub async fn remove(account: &Account<'_>, drop_fallbacks: bool) -> Result<(), PageError> {
    if account.state.store.remove_totp(account.user_id, drop_fallbacks).await? {
        account.state.store.audit(account.event("mfa.totp_removed"), account.now).await;
    }
    Ok(())
}

async fn enrol_page(account: &Account<'_>, secret: &[u8], error: Option<&str>) -> Result<Enrolment, PageError> {
    let user = account.state.store.user(account.user_id).await?.ok_or_else(PageError::expired)?;
    let (key, qr) = enrolment(secret, &user.username)
        .ok_or_else(|| PageError::from(anyhow::anyhow!("cannot draw the TOTP enrolment QR code")))?;
    Ok(Enrolment::Show(View::ok(&pages::TotpEnrolPage { csrf: account.csrf, secret: &key, qr: &qr, error })))
}

const NOT_ENROLLED: &str = "This sign-in cannot continue. Go back to the application and start again.";

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 digits are the 6-digit code).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"), (1234567890, "005924")] {
            assert_eq!(check(secret, code, t), Some(t / 30), "t={t}");
        }
        assert_eq!(check(secret, "287082", 59 + 30), Some(1), "one step of drift is accepted");
        assert_eq!(check(secret, "287082", 59 + 60), None, "two steps are not");
        assert_eq!(check(secret, "28708", 59), None);
        assert_eq!(check(secret, "28 70 82", 59), Some(1));
    }
}
