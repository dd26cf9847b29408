//! The request a proxy asks about. Its method, scheme, host and URI come from the proxy's
//! headers — `X-Original-URL` and `X-Original-Method` (nginx), else `X-Forwarded-Method`,
//! `-Proto`, `-Host` and `-Uri` (Caddy, Traefik, HAProxy) — but only when the connection comes
//! from one of `rate_limit.trusted_proxies`. From anyone else those headers are ignored and the
//! check is of the request as it came, so a client cannot claim to be asking for a page a
//! `bypass` rule opens.

use axum::http::{HeaderMap, Method, Uri};
use ipnet::IpNet;
use std::net::IpAddr;

/// The original request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Original {
    pub method: String,
    pub scheme: String,
    /// Lower case, without port: what rules match.
    pub host: String,
    /// `host[:port]` as the browser wrote it.
    pub authority: String,
    /// Path and query.
    pub uri: String,
}

impl Original {
    pub fn path(&self) -> &str {
        self.uri.split(['?', '#']).next().unwrap_or("/")
    }

    /// The address the browser asked for, to return to after sign-in.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.uri)
    }
}

/// Why the original request cannot be told.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub &'static str);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The lower-case host of an authority (`Host:` value), without port.
pub fn host_of(authority: &str) -> Option<String> {
    let u = url::Url::parse(&format!("http://{authority}/")).ok()?;
    let host = u.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty() && u.path() == "/" && u.username().is_empty()).then_some(host)
}

/// The original request of a check that came from `peer`.
pub fn original(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    peer: Option<IpAddr>,
    trusted: &[IpNet],
) -> Result<Original, Unreadable> {
    let from_proxy = peer.is_some_and(|p| trusted.iter().any(|n| n.contains(&p)));
    if !from_proxy {
        let authority = header(headers, "host").ok_or(Unreadable("the request has no Host"))?;
        let host = host_of(authority).ok_or(Unreadable("the Host is not a host name"))?;
        let uri = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        return Ok(Original {
            method: method.as_str().to_owned(),
            scheme: "http".into(),
            host,
            authority: authority.into(),
            uri,
        });
    }
    let method = header(headers, "x-original-method")
        .or_else(|| header(headers, "x-forwarded-method"))
        .unwrap_or(method.as_str())
        .to_ascii_uppercase();
    if let Some(full) = header(headers, "x-original-url") {
        let u = url::Url::parse(full).map_err(|_| Unreadable("X-Original-URL is not an absolute URL"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Unreadable("X-Original-URL is not http or https"));
        }
        let host = u.host_str().ok_or(Unreadable("X-Original-URL has no host"))?.to_ascii_lowercase();
        let authority = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        };
        let uri = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        };
        return Ok(Original { method, scheme: u.scheme().into(), host, authority, uri });
    }
    let authority = header(headers, "x-forwarded-host").ok_or(Unreadable("the proxy sent no X-Forwarded-Host"))?;
    // A list when several proxies wrote it: the first is the browser's.
    let authority = authority.split(',').next().unwrap_or_default().trim();
    let host = host_of(authority).ok_or(Unreadable("X-Forwarded-Host is not a host name"))?;
    let scheme = match header(headers, "x-forwarded-proto").map(|p| p.split(',').next().unwrap_or_default().trim()) {
        Some("https") => "https",
        Some("http") | None => "http",
        Some(_) => return Err(Unreadable("X-Forwarded-Proto is not http or https")),
    };
    let uri = header(headers, "x-forwarded-uri").unwrap_or("/");
    if !uri.starts_with('/') {
        return Err(Unreadable("X-Forwarded-Uri is not a path"));
    }
    Ok(Original { method, scheme: scheme.into(), host, authority: authority.into(), uri: uri.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = [crate::http::client_ip::parse_net("10.0.0.1").unwrap()];
        let h = headers(&[
            ("host", "auth.example.com"),
            ("x-forwarded-method", "post"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "App.Example.com:8443"),
            ("x-forwarded-uri", "/a/b?c=d"),
        ]);
        let uri: Uri = "/gateway/auth".parse().unwrap();
        let proxied = original(&h, &Method::GET, &uri, Some("10.0.0.1".parse().unwrap()), &trusted).unwrap();
        assert_eq!(proxied.url(), "https://App.Example.com:8443/a/b?c=d");
        assert_eq!(
            (proxied.host.as_str(), proxied.path(), proxied.method.as_str()),
            ("app.example.com", "/a/b", "POST")
        );
        let direct = original(&h, &Method::GET, &uri, Some("203.0.113.5".parse().unwrap()), &trusted).unwrap();
        assert_eq!((direct.host.as_str(), direct.path()), ("auth.example.com", "/gateway/auth"));
        let nginx = headers(&[("x-original-url", "http://app.example.com/x?y"), ("x-original-method", "DELETE")]);
        let o = original(&nginx, &Method::GET, &uri, Some("10.0.0.1".parse().unwrap()), &trusted).unwrap();
        assert_eq!((o.url().as_str(), o.method.as_str()), ("http://app.example.com/x?y", "DELETE"));
        let bad = headers(&[("x-original-url", "javascript:alert(1)")]);
        assert!(original(&bad, &Method::GET, &uri, Some("10.0.0.1".parse().unwrap()), &trusted).is_err());
    }
}
