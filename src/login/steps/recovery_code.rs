//! The recovery-code step: one of the ten single-use codes shown when the authenticator was
//! set up, standing in for it. Codes are 10 characters of Crockford base32 (50 bits, no I, L,
//! O or U to misread), shown as `xxxxx-xxxxx`, stored as SHA-256 and consumed by one
//! conditional UPDATE, so a code works once even when two nodes race.

use super::{THROTTLED, attempt, code_page, second_factor_user, succeeded};
use crate::crypto::{hash_secret, random_bytes};
use crate::http::{PageError, Params};
use crate::login::step::{Account, Ctx, Enrolment, Outcome, Passed, Role, Step};
use crate::pages::{self, CodeText, View};
use crate::store::AuditEvent;

/// How many codes a set has.
pub const SET_SIZE: usize = 10;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const LEN: usize = 10;

/// A new set of codes, formatted for the person to write down.
pub fn generate() -> Vec<String> {
    (0..SET_SIZE)
        .map(|_| {
            let chars: String = random_bytes(LEN).iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
            format!("{}-{}", &chars[..LEN / 2], &chars[LEN / 2..])
        })
        .collect()
}

/// The stored form of a code as typed: case, spaces and dashes ignored, and the letters
/// Crockford base32 reads as digits (o → 0, i and l → 1) mapped, then hashed.
pub fn hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    hash_secret(&normal)
}

pub const PAGE: CodeText = CodeText {
    title: "Recovery code",
    heading: "Enter a recovery code",
    intro: "one of the codes you saved when you set up two-step sign-in. Each works once.",
    label: "Recovery code",
    numeric: false,
    resend: false,
};

pub struct RecoveryCode;

impl Step for RecoveryCode {
    const NAME: &'static str = "recovery_code";
    const ROLE: Role = Role::Fallback;
    const PROVES: &'static [&'static str] = &["otp"];
    const SWITCH_LABEL: &'static str = "Use a recovery code instead";
    /// Codes are made when the app or emailed codes are turned on, and go when both are off.
    const STANDS_IN_FOR: &'static [&'static str] = &["totp", "email_otp"];

    async fn render(ctx: &Ctx<'_>, error: Option<&str>, _form: Option<&Params>) -> Result<View, PageError> {
        Ok(code_page(ctx, error, None, &PAGE))
    }

    async fn submit(ctx: &Ctx<'_>, form: &Params) -> Result<Outcome, PageError> {
        let Some((user_id, key)) = second_factor_user(ctx).await? else {
            return Ok(Outcome::failed(
                "This sign-in cannot continue. Go back to the application and start again.",
                "no user for a second factor",
                None,
            ));
        };
        if !attempt(ctx, &key).await? {
            return Ok(Outcome::failed(THROTTLED, "account throttled", Some(user_id)));
        }
        let code = form.get("code").unwrap_or_default();
        if !code.trim().is_empty() && ctx.state.store.use_recovery_code(&user_id, &hash(code), ctx.now).await? {
            succeeded(ctx, &key).await?;
            let left = ctx.state.store.recovery_codes_left(&user_id).await?;
            let event =
                AuditEvent::new("mfa.recovery_code_used").user(&user_id).ip(ctx.ip.clone()).detail("left", left);
            ctx.state.store.audit(event, ctx.now).await;
            // Once signed in: how many are left, and where to set up a new factor.
            let action = ctx.action();
            let then = View::ok(&pages::RecoveryNoticePage { action: &action, csrf: ctx.csrf, left });
            return Ok(Outcome::Passed(Passed { user_id, amr: vec!["otp".into()], then: Some(then) }));
        }
        Ok(Outcome::failed(
            "That recovery code is not valid, or it was already used.",
            "wrong or used recovery code",
            Some(user_id),
        ))
    }
}

/// A new set of codes for the account (replacing any), shown once.
pub async fn issue(account: &Account<'_>) -> Result<Enrolment, PageError> {
    let codes = generate();
    let hashes: Vec<String> = codes.iter().map(|c| hash(c)).collect();
    account.state.store.replace_recovery_codes(account.user_id, &hashes, account.now).await?;
    account.state.store.audit(account.event("mfa.recovery_codes_generated"), account.now).await;
    Ok(Enrolment::Show(View::ok(&pages::RecoveryCodesPage { codes: &codes })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_typing_variants_hash_alike() {
        let set = generate();
        assert_eq!(set.len(), SET_SIZE);
        for c in &set {
            assert_eq!(c.len(), 11);
            assert_eq!(&c[5..6], "-");
            assert!(c.bytes().filter(|b| *b != b'-').all(|b| ALPHABET.contains(&b)), "{c}");
        }
        assert_eq!(hash("ab0c1-defgh"), hash(" ABOCL DEFGH "));
        assert_ne!(hash("ab0c1-defgh"), hash("ab0c1-defgj"));
    }
}
