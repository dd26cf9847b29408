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
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
