//! Strict parsing of `application/x-www-form-urlencoded` requests and query strings.
//!
//! OAuth parameters "MUST NOT be included more than once" (RFC 6749 §3.1, §3.2), so duplicates
//! are recorded rather than silently merged, and an empty value counts as absent (§3.1).

use axum::http::{HeaderMap, header};
use std::collections::HashMap;

/// Bodies larger than this are refused before parsing.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct Params {
    map: HashMap<String, String>,
    duplicates: Vec<String>,
}

impl Params {
    /// Parses urlencoded bytes; fails on invalid UTF-8.
    pub fn parse(bytes: &[u8]) -> Result<Self, &'static str> {
        if std::str::from_utf8(bytes).is_err() {
            return Err("The request is not valid UTF-8.");
        }
        let mut p = Params::default();
        for (k, v) in form_urlencoded::parse(bytes) {
            if v.is_empty() {
                continue;
            }
            if p.map.contains_key(k.as_ref()) {
                if !p.duplicates.iter().any(|d| d == k.as_ref()) {
                    p.duplicates.push(k.into_owned());
                }
                continue;
            }
            p.map.insert(k.into_owned(), v.into_owned());
        }
        Ok(p)
    }

    /// Parses a form body, checking its media type first.
    pub fn from_form(headers: &HeaderMap, body: &[u8]) -> Result<Self, &'static str> {
        if !is_form(headers) {
            return Err("The request body must be application/x-www-form-urlencoded.");
        }
        if body.len() > MAX_FORM_BYTES {
            return Err("The request body is too large.");
        }
        Self::parse(body)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The first parameter that appeared more than once, if any.
    pub fn duplicate(&self) -> Option<&str> {
        self.duplicates.first().map(String::as_str)
    }

    pub fn is_duplicated(&self, name: &str) -> bool {
        self.duplicates.iter().any(|d| d == name)
    }

    /// These parameters with `overrides` replacing or adding values (empty ones ignored, as in
    /// parsing) and the names in `drop` removed; duplicates found in parsing stay recorded.
    pub fn merged(&self, overrides: impl IntoIterator<Item = (String, String)>, drop: &[&str]) -> Params {
        let mut p = self.clone();
        for (k, v) in overrides {
            if !v.is_empty() {
                p.map.insert(k, v);
            }
        }
        p.map.retain(|k, _| !drop.contains(&k.as_str()));
        p
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Parses the form a page posted and checks its CSRF token against `expected`, in constant
/// time: every state-changing page form carries one.
pub fn page_form(headers: &HeaderMap, body: &[u8], expected: &str) -> Result<Params, super::PageError> {
    let p = Params::from_form(headers, body)
        .map_err(|m| super::PageError::bad_request("invalid_request", "The form could not be read", m))?;
    match p.get("csrf") {
        Some(t) if crate::crypto::constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(p),
        _ => Err(super::PageError::forbidden(
            "The form was not sent by this page (CSRF check failed). Reload the page and try again.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_recorded_and_empty_values_ignored() {
        let p = Params::parse(b"a=1&b=&a=2&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.duplicate(), Some("a"));
        assert!(!p.has("b"));
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Params::parse(&[0x61, 0x3d, 0xff]).is_err());
    }
}
