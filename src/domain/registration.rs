//! The fields a person fills in about themselves — on the sign-up form, on the profile page and
//! in the JSON API — and the rule each must meet, with a message per rule that says what to
//! type. Pure: the operator's `[registration]` settings and today's date come in, a typed
//! account (or one message per field) goes out.
//!
//! Names take letters of any script, spaces, hyphens and apostrophes; a birth date is a real
//! past date (and old enough, where the operator sets `min_age`); a gender is one the operator
//! lists; a phone number is parsed with libphonenumber (the `phonenumber` crate), national
//! formats read in the operator's region, and stored as E.164; an email is an address, at a
//! domain the operator allows.

use crate::config::{Need, Registration};
use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The longest name, in characters.
const MAX_NAME: usize = 100;

/// A field a form may ask for: its claim, its label and its HTML `autocomplete` token.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub autocomplete: &'static str,
    /// The `type` of its `<input>`; `select` for a list of choices.
    pub input: &'static str,
    kind: Kind,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Name,
    Username,
    Birthdate,
    Gender,
    Phone,
    Email,
}

/// Every field an operator may ask for, in the order forms show them.
pub const FIELDS: &[Field] = &[
    Field { name: "given_name", label: "Given name", autocomplete: "given-name", input: "text", kind: Kind::Name },
    Field {
        name: "middle_name",
        label: "Middle name",
        autocomplete: "additional-name",
        input: "text",
        kind: Kind::Name,
    },
    Field { name: "family_name", label: "Family name", autocomplete: "family-name", input: "text", kind: Kind::Name },
    Field { name: "name", label: "Full name", autocomplete: "name", input: "text", kind: Kind::Name },
    Field { name: "nickname", label: "Nickname", autocomplete: "nickname", input: "text", kind: Kind::Name },
    Field { name: "username", label: "Username", autocomplete: "username", input: "text", kind: Kind::Username },
    Field { name: "birthdate", label: "Date of birth", autocomplete: "bday", input: "date", kind: Kind::Birthdate },
    Field { name: "gender", label: "Gender", autocomplete: "sex", input: "select", kind: Kind::Gender },
    Field { name: "phone_number", label: "Phone number", autocomplete: "tel", input: "tel", kind: Kind::Phone },
];

/// The email: always asked.
pub const EMAIL: Field =
    Field { name: "email", label: "Email", autocomplete: "email", input: "email", kind: Kind::Email };

pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().chain(std::iter::once(&EMAIL)).find(|f| f.name == name)
}

/// The fields the sign-up form asks for besides the email and password, with whether each is
/// required, in form order.
pub fn asked(rules: &Registration) -> Vec<(&'static Field, bool)> {
    FIELDS.iter().filter_map(|f| rules.fields.get(f.name).map(|need| (f, *need == Need::Required))).collect()
}

/// The fields the profile page lets a person change, in form order (the email among them when
/// the operator lists it, or lists nothing).
pub fn editable(rules: &Registration) -> Vec<&'static Field> {
    let listed = |f: &Field| match &rules.editable {
        Some(names) => names.iter().any(|n| n == f.name),
        None => f.kind == Kind::Email || rules.fields.contains_key(f.name),
    };
    FIELDS.iter().chain([&EMAIL]).filter(|f| f.kind != Kind::Username && listed(f)).collect()
}

/// A sign-up that passed every rule.
#[derive(Debug, PartialEq)]
pub struct Valid {
    /// None when the form did not ask for one (or left it out).
    pub username: Option<String>,
    pub email: String,
    /// The standard claims, typed as OIDC Core §5.1 says (the phone number as E.164).
    pub claims: Map<String, Value>,
}

/// A message per field that broke a rule, keyed by field name.
pub type Errors = BTreeMap<&'static str, String>;

/// Checks a sign-up form: the email and the fields the operator asks for. `get` reads a field.
pub fn validate<'a>(
    rules: &Registration,
    get: impl Fn(&str) -> Option<&'a str>,
    today: NaiveDate,
) -> Result<Valid, Errors> {
    let mut errors = Errors::new();
    let mut claims = Map::new();
    let mut username = None;
    let email = match check(&EMAIL, get(EMAIL.name).unwrap_or_default(), true, rules, today) {
        Ok(Some(Value::String(e))) => e,
        Ok(_) => String::new(),
        Err(m) => {
            errors.insert(EMAIL.name, m);
            String::new()
        }
    };
    for (f, required) in asked(rules) {
        match check(f, get(f.name).unwrap_or_default(), required, rules, today) {
            Ok(None) => {}
            Ok(Some(Value::String(u))) if f.kind == Kind::Username => username = Some(u),
            Ok(Some(v)) => {
                claims.insert(f.name.to_owned(), v);
            }
            Err(m) => {
                errors.insert(f.name, m);
            }
        }
    }
    if errors.is_empty() { Ok(Valid { username, email, claims }) } else { Err(errors) }
}

/// One field's value against its rule: None when it is empty and optional.
pub fn check(
    f: &Field,
    raw: &str,
    required: bool,
    rules: &Registration,
    today: NaiveDate,
) -> Result<Option<Value>, String> {
    let value = raw.trim();
    if value.is_empty() {
        return match required {
            true => Err(format!("Enter your {}.", f.label.to_lowercase())),
            false => Ok(None),
        };
    }
    let checked = match f.kind {
        Kind::Name => name(f, value),
        Kind::Username => username(value),
        Kind::Birthdate => birthdate(value, rules.min_age, today),
        Kind::Gender => gender(value, &rules.genders),
        Kind::Phone => phone(value, rules.phone_region.as_deref(), rules.mobile_only),
        Kind::Email => email(value, &rules.email_domains_allowed, &rules.email_domains_denied),
    };
    checked.map(|v| Some(Value::String(v)))
}

/// Letters of any script, spaces, hyphens and apostrophes (straight or curly), 1–100 characters,
/// at least one letter. Combining marks count as letters (Devanagari vowel signs, Arabic harakat).
fn name(f: &Field, v: &str) -> Result<String, String> {
    if v.chars().count() > MAX_NAME {
        return Err(format!("{} can be at most {MAX_NAME} characters.", f.label));
    }
    let allowed = |c: char| c.is_alphabetic() || is_mark(c) || matches!(c, ' ' | '-' | '\'' | '’');
    if !v.chars().all(allowed) || !v.chars().any(char::is_alphabetic) {
        return Err(format!("{} can contain only letters, spaces, hyphens and apostrophes.", f.label));
    }
    Ok(v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The combining-mark blocks names in common scripts use that `is_alphabetic` leaves out.
fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x0610..=0x061A | 0x064B..=0x065F | 0x0900..=0x0DFF | 0x200C | 0x200D)
}

/// 3–64 of letters, digits, dots, hyphens and underscores: no `@`, so a sign-in name with an
/// `@` is always an email.
fn username(v: &str) -> Result<String, String> {
    let ok =
        (3..=64).contains(&v.chars().count()) && v.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err("A username is 3 to 64 letters, digits, dots, hyphens or underscores.".into())
    }
}

/// YYYY-MM-DD, a date that exists, in the past, and at least `min_age` years ago.
fn birthdate(v: &str, min_age: Option<u32>, today: NaiveDate) -> Result<String, String> {
    let parts: Vec<&str> = v.split('-').collect();
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let date = match parts[..] {
        [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
            NaiveDate::from_ymd_opt(y.parse().unwrap_or(0), m.parse().unwrap_or(0), d.parse().unwrap_or(0))
        }
        _ => return Err("Enter your date of birth as YYYY-MM-DD, e.g. 1990-04-23.".into()),
    };
    let Some(date) = date else { return Err("This date does not exist: check the month and the day.".into()) };
    if date >= today || date.year() < 1900 {
        return Err("Enter your date of birth: a date in the past.".into());
    }
    if let Some(min) = min_age
        && today.years_since(date).unwrap_or(0) < min
    {
        return Err(format!("You must be at least {min} years old to sign up."));
    }
    Ok(date.format("%Y-%m-%d").to_string())
}

fn gender(v: &str, genders: &[String]) -> Result<String, String> {
    match genders.iter().find(|g| g.eq_ignore_ascii_case(v)) {
        Some(g) => Ok(g.clone()),
        None => Err(format!("Choose one of: {}.", genders.join(", "))),
    }
}

/// Parsed in `region` when typed without a country code; stored as E.164.
pub(crate) fn phone(v: &str, region: Option<&str>, mobile_only: bool) -> Result<String, String> {
    let region = region.and_then(|r| r.to_ascii_uppercase().parse::<phonenumber::country::Id>().ok());
    let Ok(number) = phonenumber::parse(region, v) else {
        return Err(match region {
            Some(_) => "Enter a phone number (digits, with + and the country code if it is from abroad).".into(),
            None => "Enter a phone number with + and its country code, e.g. +44 7911 123456.".into(),
        });
    };
    if !number.is_valid() {
        return Err("This is not a valid phone number: check the digits and the country code.".into());
    }
    if mobile_only {
        use phonenumber::Type;
        let kind = number.number_type(&phonenumber::metadata::DATABASE);
        if !matches!(kind, Type::Mobile | Type::FixedLineOrMobile) {
            return Err("Enter a mobile phone number.".into());
        }
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// An address (RFC 5322 `addr-spec`, as the mailer parses it), at an allowed domain.
fn email(v: &str, allowed: &[String], denied: &[String]) -> Result<String, String> {
    let valid = v.len() <= 254 && v.parse::<lettre::Address>().is_ok_and(|a| a.domain().contains('.'));
    if !valid {
        return Err("Enter an email address, like name@example.com.".into());
    }
    let domain = v.rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
    let under = |listed: &String| {
        let listed = listed.trim_start_matches('@').to_lowercase();
        domain == listed || domain.ends_with(&format!(".{listed}"))
    };
    if !allowed.is_empty() && !allowed.iter().any(under) {
        return Err(format!("Sign-up is open to addresses at {} only.", allowed.join(", ")));
    }
    if denied.iter().any(under) {
        return Err(format!("Addresses at {domain} cannot be used here. Use another address."));
    }
    Ok(v.to_owned())
}

/// What is wrong with the `[registration]` settings, one line each (`config check`).
pub fn problems(r: &Registration) -> Vec<String> {
    let mut out = Vec::new();
    for name in r.fields.keys() {
        if !FIELDS.iter().any(|f| f.name == name) {
            let names: Vec<_> = FIELDS.iter().map(|f| f.name).collect();
            out.push(format!("registration.fields: '{name}' is not one of {}", names.join(", ")));
        }
    }
    for name in r.editable.iter().flatten() {
        if field(name).is_none_or(|f| f.kind == Kind::Username) {
            out.push(format!("registration.editable: '{name}' is not a claim the profile can change"));
        }
    }
    if r.fields.contains_key("gender") && r.genders.is_empty() {
        out.push("registration.genders: the gender field needs at least one value".into());
    }
    if let Some(region) = &r.phone_region
        && region.to_ascii_uppercase().parse::<phonenumber::country::Id>().is_err()
    {
        out.push(format!("registration.phone_region: '{region}' is not an ISO 3166 region code such as BD or GB"));
    }
    if r.verify_ttl <= 0 {
        out.push("registration.verify_ttl: must be positive".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
    }

    fn rules(fields: &[(&str, Need)]) -> Registration {
        Registration { fields: fields.iter().map(|(n, need)| (n.to_string(), *need)).collect(), ..Default::default() }
    }

    fn one(name: &str, value: &str, r: &Registration) -> Result<Option<Value>, String> {
        check(field(name).unwrap(), value, true, r, today())
    }

    #[test]
    fn names_in_any_script() {
        let r = rules(&[]);
        for ok in ["Anne-Marie", "O'Brien", "José", "Влади́мир", "محمد", "राहुल", "山田", "Zoë  Ann"]
        {
            assert!(one("given_name", ok, &r).is_ok(), "{ok}");
        }
        assert_eq!(one("given_name", "Zoë  Ann", &r).unwrap(), Some(Value::String("Zoë Ann".into())));
        for bad in ["R2D2", "a_b", "--", "<b>", &"a".repeat(101)] {
            assert!(one("given_name", bad, &r).is_err(), "{bad}");
        }
    }

    #[test]
    fn birthdates_are_real_past_dates_old_enough() {
        let mut r = rules(&[]);
        assert!(one("birthdate", "1990-04-23", &r).is_ok());
        assert!(one("birthdate", "1990-02-30", &r).unwrap_err().contains("does not exist"));
        assert!(one("birthdate", "23/04/1990", &r).unwrap_err().contains("YYYY-MM-DD"));
        assert!(one("birthdate", "2027-01-01", &r).unwrap_err().contains("past"));
        r.min_age = Some(13);
        assert!(one("birthdate", "2013-12-05", &r).is_ok(), "13 today");
        assert!(one("birthdate", "2013-12-06", &r).unwrap_err().contains("at least 13"));
    }

    #[test]
    fn phones_become_e164_in_the_default_region() {
        let mut r = rules(&[]);
        r.phone_region = Some("BD".into());
        assert_eq!(one("phone_number", "01712345678", &r).unwrap(), Some(Value::String("+8801712345678".into())));
        assert_eq!(one("phone_number", "+44 7911 123456", &r).unwrap(), Some(Value::String("+447911123456".into())));
        assert!(one("phone_number", "12", &r).is_err());
        r.mobile_only = true;
        r.phone_region = Some("GB".into());
        assert!(one("phone_number", "020 7946 0018", &r).unwrap_err().contains("mobile"));
        assert!(one("phone_number", "07911 123456", &r).is_ok());
    }

    #[test]
    fn emails_by_syntax_and_domain_lists() {
        let mut r = rules(&[]);
        assert!(one("email", "a@example.com", &r).is_ok());
        for bad in ["a", "a@", "@example.com", "a b@example.com", "a@localhost"] {
            assert!(one("email", bad, &r).is_err(), "{bad}");
        }
        r.email_domains_denied = vec!["mailinator.com".into()];
        assert!(one("email", "x@mailinator.com", &r).is_err());
        r.email_domains_allowed = vec!["example.org".into()];
        assert!(one("email", "x@staff.example.org", &r).is_ok());
        assert!(one("email", "x@example.com", &r).unwrap_err().contains("example.org only"));
    }

    #[test]
    fn a_form_gets_one_message_per_field() {
        let r = rules(&[("given_name", Need::Required), ("nickname", Need::Optional), ("gender", Need::Required)]);
        let form = |n: &str| match n {
            "email" => Some("bad"),
            "given_name" => Some(""),
            "gender" => Some("female"),
            _ => None,
        };
        let errors = validate(&r, form, today()).unwrap_err();
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), vec!["email", "given_name"]);
        assert_eq!(errors["given_name"], "Enter your given name.");
        let ok = |n: &str| match n {
            "email" => Some("ann@example.com"),
            "given_name" => Some("Ann"),
            "gender" => Some("Female"),
            _ => None,
        };
        let valid = validate(&r, ok, today()).unwrap();
        assert_eq!(valid.claims["gender"], "female");
        assert!(!valid.claims.contains_key("nickname"));
    }
}
