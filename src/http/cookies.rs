//! Cookies: `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` unless the issuer is plain-http
//! localhost. Over https every name carries the `__Host-` prefix (RFC 6265bis §4.1.3.2), so the
//! browser refuses the cookie unless it is `Secure`, host-only and for the whole site: a sibling
//! subdomain cannot plant or overwrite it. Plain http cannot use the prefix; there the bare
//! name stays.

use axum::http::{HeaderMap, HeaderValue, header};
use std::borrow::Cow;

pub const SESSION: &str = "latchkey_session";

/// The name a cookie goes by: `__Host-{base}` when cookies are `Secure`.
pub fn name(base: &str, secure: bool) -> Cow<'_, str> {
    if secure { Cow::Owned(format!("__Host-{base}")) } else { Cow::Borrowed(base) }
}

/// The value of cookie `base` (under its prefixed name when `secure`) in the request.
pub fn get<'a>(headers: &'a HeaderMap, base: &str, secure: bool) -> Option<&'a str> {
    let name = name(base, secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A cookie that lives `max_age` seconds, or until the browser closes when `max_age` is none.
pub fn set(base: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let name = name(base, secure);
    let lifetime = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{lifetime}{secure}"))
        .expect("cookie values are base64url")
}

pub fn clear(base: &str, secure: bool) -> HeaderValue {
    set(base, "", Some(0), secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_carry_the_host_prefix_and_http_ones_do_not() {
        let c = set(SESSION, "v", Some(60), true);
        assert_eq!(c, "__Host-latchkey_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure");
        assert_eq!(set(SESSION, "v", None, false), "latchkey_session=v; Path=/; HttpOnly; SameSite=Lax");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("latchkey_session=a; __Host-latchkey_session=b"));
        assert_eq!(get(&h, SESSION, true), Some("b"));
        assert_eq!(get(&h, SESSION, false), Some("a"));
    }
}
