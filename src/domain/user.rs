//! Local user accounts and their standard claims (OIDC Core §5.1).

use crate::clock::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Standard claims other than `sub`, `email` and `updated_at`.
    pub claims: Map<String, Value>,
    pub disabled: bool,
    /// Pending until its email is confirmed: an account someone created for themselves.
    pub status: Status,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Whether an account may finish a sign-in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created by the operator, or confirmed: signs in.
    #[default]
    Active,
    /// Created by sign-up and not yet confirmed by its email: signs in nowhere until it is.
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "pending" { Status::Pending } else { Status::Active }
    }
}

/// The one normalization of a username or email for lookups and uniqueness: `DEMO@Example.com `
/// and `demo@example.com` are one account. Trimmed and lower-cased (Unicode, not just ASCII), so
/// the keys are computed here and never by the database's `LOWER`, which differs by dialect.
/// An empty value has no key.
pub fn login_key(login: &str) -> Option<String> {
    let key = login.trim().to_lowercase();
    (!key.is_empty()).then_some(key)
}

/// Standard claims an operator may set, with the JSON type each must have.
pub const SETTABLE_CLAIMS: &[(&str, ClaimType)] = &[
    ("name", ClaimType::String),
    ("given_name", ClaimType::String),
    ("family_name", ClaimType::String),
    ("middle_name", ClaimType::String),
    ("nickname", ClaimType::String),
    ("preferred_username", ClaimType::String),
    ("profile", ClaimType::String),
    ("picture", ClaimType::String),
    ("website", ClaimType::String),
    ("gender", ClaimType::String),
    ("birthdate", ClaimType::String),
    ("zoneinfo", ClaimType::String),
    ("locale", ClaimType::String),
    ("email_verified", ClaimType::Bool),
    ("phone_number", ClaimType::String),
    ("phone_number_verified", ClaimType::Bool),
    ("address", ClaimType::Address),
];

#[derive(Clone, Copy, Debug)]
pub enum ClaimType {
    String,
    Bool,
    Address,
}

/// Parses `NAME=VALUE` as given on the command line into a typed claim.
pub fn parse_claim(arg: &str) -> Result<(String, Value), String> {
    let (name, value) = arg.split_once('=').ok_or_else(|| format!("'{arg}' is not NAME=VALUE"))?;
    let (_, ty) = SETTABLE_CLAIMS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("'{name}' is not a standard claim Latchkey stores"))?;
    let value = match ty {
        ClaimType::String if value.trim().is_empty() => return Err(format!("{name}: empty value")),
        ClaimType::String => Value::String(value.to_owned()),
        ClaimType::Bool => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{name}: must be true or false")),
        },
        ClaimType::Address => {
            let v: Value = serde_json::from_str(value).map_err(|e| format!("address: not JSON: {e}"))?;
            match &v {
                Value::Object(m) if m.values().all(Value::is_string) => v,
                _ => return Err("address: must be a JSON object of strings".into()),
            }
        }
    };
    if name == "birthdate" && !valid_birthdate(value.as_str().unwrap_or_default()) {
        return Err("birthdate: must be YYYY-MM-DD, 0000-MM-DD or YYYY".into());
    }
    Ok((name.to_owned(), value))
}

fn valid_birthdate(s: &str) -> bool {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    match s.split('-').collect::<Vec<_>>()[..] {
        [y] => digits(y, 4),
        [y, m, d] => digits(y, 4) && digits(m, 2) && digits(d, 2),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_key_whatever_the_case_and_spaces() {
        assert_eq!(super::login_key(" DEMO@Example.com "), Some("demo@example.com".into()));
        assert_eq!(super::login_key("ÉMILE"), Some("émile".into()));
        assert_eq!(super::login_key("  "), None);
    }
}
