//! The rules a new password must meet, in one place: sign-up, reset, change and the CLI all ask
//! here. Length first (NIST SP 800-63B §5.1.1.2: at least 8, at least 64 allowed), then a
//! strength estimate (zxcvbn), then the character classes an operator may insist on, then
//! "not your username or email". Whether it repeats a recent password needs the stored history
//! and argon2, so the account code checks that and reports it as [`Refusal::Reused`].

use crate::config::PasswordPolicy;
use std::fmt;

/// Why a new password was refused, worded for the person choosing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    TooShort(usize),
    TooLong(usize),
    /// zxcvbn's estimate is under the operator's minimum; its advice, when it has one.
    TooWeak(Option<String>),
    TooFewClasses(u8),
    /// The password is the username or email (or contains it).
    LikeIdentifier,
    /// One of the last `n` passwords of this account.
    Reused(usize),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooShort(n) => write!(f, "Use at least {n} characters."),
            Refusal::TooLong(n) => write!(f, "Use at most {n} characters."),
            Refusal::TooWeak(Some(advice)) => write!(f, "This password is too easy to guess. {advice}"),
            Refusal::TooWeak(None) => {
                write!(f, "This password is too easy to guess. Add another word or two; uncommon words are better.")
            }
            Refusal::TooFewClasses(n) => {
                write!(f, "Use characters of at least {n} kinds: lower-case letters, capitals, digits, symbols.")
            }
            Refusal::LikeIdentifier => write!(f, "Do not use your username or email address in your password."),
            Refusal::Reused(n) => {
                write!(f, "Choose a password you have not used for this account before (the last {n} are remembered).")
            }
        }
    }
}

/// Checks `password` against the policy. `identifiers` are the account's username and email
/// (whichever exist); the password may neither be one nor contain one.
pub fn check(policy: &PasswordPolicy, password: &str, identifiers: &[&str]) -> Result<(), Refusal> {
    let length = password.chars().count();
    if length < policy.min_length {
        return Err(Refusal::TooShort(policy.min_length));
    }
    if length > policy.max_length {
        return Err(Refusal::TooLong(policy.max_length));
    }
    let lower = password.to_lowercase();
    let identifiers: Vec<String> =
        identifiers.iter().map(|i| i.trim().to_lowercase()).filter(|i| !i.is_empty()).collect();
    let within = |part: &str| part.chars().count() >= CONTAINED && lower.contains(part);
    if identifiers.iter().any(|i| lower == *i || within(i) || i.split_once('@').is_some_and(|(local, _)| within(local)))
    {
        return Err(Refusal::LikeIdentifier);
    }
    if classes(password) < policy.min_classes {
        return Err(Refusal::TooFewClasses(policy.min_classes));
    }
    if policy.min_score > 0 {
        let inputs: Vec<&str> = identifiers.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        if u8::from(estimate.score()) < policy.min_score {
            let advice = estimate.feedback().and_then(|f| {
                f.warning().map(|w| w.to_string()).or_else(|| f.suggestions().first().map(|s| s.to_string()))
            });
            return Err(Refusal::TooWeak(advice));
        }
    }
    Ok(())
}

/// An identifier this long or longer may not appear inside the password either; a shorter
/// one ("bob") would refuse too many honest passwords ("bobsled…").
const CONTAINED: usize = 4;

/// How many of lower-case, upper-case, digits and other characters the password uses.
fn classes(password: &str) -> u8 {
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c)) as u8;
    has(|c| c.is_lowercase()) + has(|c| c.is_uppercase()) + has(|c| c.is_numeric()) + has(|c| !c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::default()
    }

    #[test]
    fn length_is_counted_in_characters_within_the_bounds() {
        assert_eq!(check(&policy(), "Tr0ub4!", &[]), Err(Refusal::TooShort(8)));
        assert_eq!(check(&policy(), &"ж".repeat(129), &[]), Err(Refusal::TooLong(128)));
        // Eight letters of Cyrillic are sixteen bytes but eight characters.
        assert_ne!(check(&policy(), "жёлтыйко", &[]), Err(Refusal::TooShort(8)));
    }

    #[test]
    fn guessable_passwords_are_refused_and_passphrases_accepted() {
        assert!(matches!(check(&policy(), "password1", &[]), Err(Refusal::TooWeak(_))));
        assert!(matches!(check(&policy(), "qwertyuiop", &[]), Err(Refusal::TooWeak(_))));
        assert_eq!(check(&policy(), "correct horse battery staple", &[]), Ok(()));
        assert_eq!(check(&policy(), "latchkey-demo", &[]), Ok(()));
    }

    #[test]
    fn the_username_or_email_is_no_password() {
        let ids = ["Margarethe", "margarethe.k@example.com"];
        assert_eq!(check(&policy(), "margarethe-2024!", &ids), Err(Refusal::LikeIdentifier));
        assert_eq!(check(&policy(), "MARGARETHE.K rules the world", &ids), Err(Refusal::LikeIdentifier));
        assert_eq!(check(&policy(), "tangerine orbit saxophone", &ids), Ok(()));
        assert_eq!(check(&policy(), "bob's long password", &["bob", "bob@example.com"]), Ok(()));
        assert_eq!(check(&policy(), "BOBBY@example.com", &["bobby@example.com"]), Err(Refusal::LikeIdentifier));
    }

    #[test]
    fn character_classes_only_when_the_operator_asks() {
        let strict = PasswordPolicy { min_classes: 3, ..policy() };
        assert_eq!(check(&strict, "tangerine orbit saxophone", &[]), Err(Refusal::TooFewClasses(3)));
        assert_eq!(check(&strict, "Tangerine orbit saxophone 7", &[]), Ok(()));
    }
}
