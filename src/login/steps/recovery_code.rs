//! The recovery-code step: one of the ten single-use codes shown when the authenticator was
//! set up, standing in for it. Codes are 16 characters of Crockford base32 (80 bits, no I, L,
//! O or U to misread), shown as `xxxx-xxxx-xxxx-xxxx`, and consumed by one conditional UPDATE,
//! so a code works once even when two nodes race.
//!
//! At rest a code is a SHA-256 salted with its user's id (and a label for its purpose): a
//! stolen table yields no code, precomputed tables do not apply, and one guess tests one
//! account. 80 random bits make guessing each hash out of reach, so a slow hash would add
//! nothing; a keyed hash (under the KEK) would add little and make `keys rewrap` void every
//! code. Codes of the earlier 10-character form (plain SHA-256) still work until the user makes
//! a new set.

use super::{THROTTLED, attempt, code_page, second_factor_user, succeeded};
use crate::crypto::{hash_secret, random_bytes};
use crate::http::{PageError, Params};
use crate::login::step::{Account, Ctx, Enrolment, Outcome, Passed, Role, Step};
use crate::pages::{self, CodeText, View};
use crate::store::AuditEvent;

/// How many codes a set has.
pub const SET_SIZE: usize = 10;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters in a code: 16 × 5 bits = 80 bits.
const LEN: usize = 16;
/// Characters per group as shown.
const GROUP: usize = 4;
/// The length of the codes made before 80-bit codes, stored as plain SHA-256.
const LEGACY_LEN: usize = 10;

/// A new set of codes, formatted for the person to write down.
pub fn generate() -> Vec<String> {
    (0..SET_SIZE)
        .map(|_| {
            let chars: Vec<char> = random_bytes(LEN).iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
            chars.chunks(GROUP).map(|g| g.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// A code as typed, normalised: case, spaces and dashes ignored, and the letters Crockford
/// base32 reads as digits (o → 0, i and l → 1) mapped.
fn normal(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect()
}

/// The stored form of `user_id`'s code as typed.
pub fn hash(user_id: &str, code: &str) -> String {
    hash_secret(&format!("latchkey recovery code\0{user_id}\0{}", normal(code)))
}

/// The stored form a typed code may match: the salted hash of an 80-bit code, or the plain
/// SHA-256 of an earlier 10-character one; none for anything else.
fn stored_form(user_id: &str, code: &str) -> Option<String> {
    let normal = normal(code);
    match normal.len() {
        LEN => Some(hash(user_id, code)),
        LEGACY_LEN => Some(hash_secret(&normal)),
        _ => None,
    }
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
    const STANDS_IN_FOR: &'static [&'static str] = &["totp", "email_otp", "sms", "whatsapp"];

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
        let stored = stored_form(&user_id, code);
        if let Some(stored) = stored
            && ctx.state.store.use_recovery_code(&user_id, &stored, ctx.now).await?
        {
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
    let hashes: Vec<String> = codes.iter().map(|c| hash(account.user_id, c)).collect();
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
            assert_eq!(c.len(), 19, "{c}");
            assert!(c.split('-').all(|g| g.len() == 4), "{c}");
            assert!(c.bytes().filter(|b| *b != b'-').all(|b| ALPHABET.contains(&b)), "{c}");
        }
        assert_eq!(hash("u", "ab0c-1def-ghjk-mnpq"), hash("u", " ABOCL DEFGHJKMNPQ "));
        assert_ne!(hash("u", "ab0c-1def-ghjk-mnpq"), hash("u", "ab0c-1def-ghjk-mnpr"));
        assert_ne!(hash("u", "ab0c-1def-ghjk-mnpq"), hash("v", "ab0c-1def-ghjk-mnpq"), "salted by the user");
        assert_eq!(stored_form("u", "ab0c1-defgh"), Some(hash_secret("ab0c1defgh")), "the earlier form");
        assert_eq!(stored_form("u", "ab0c1-defgh-x"), None);
    }
}
