//! Registered clients (relying parties) and what each is allowed to do.

use crate::clock::Timestamp;
use crate::keys::Alg;
use serde::{Deserialize, Serialize};

/// How a client proves its identity at the token endpoint (OIDC Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [Self::ClientSecretBasic, Self::ClientSecretPost, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// The device authorization grant (RFC 8628): TVs, consoles, command-line tools.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 4] =
        [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials, Self::DeviceCode];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The operator's short name: the grant type, or `device_code` for the device grant's URN.
    pub fn parse_short(s: &str) -> Option<Self> {
        if s == "device_code" { Some(Self::DeviceCode) } else { Self::parse(s) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may be granted for itself (client_credentials).
    pub scopes: Vec<String>,
    /// First-party clients are trusted by the operator: no consent page.
    pub first_party: bool,
    /// Signs this client's ID tokens and access tokens (OIDC Dynamic Client Registration §2).
    pub id_token_signed_response_alg: Alg,
    /// The assurance level (`acr`, see `login::policy`) every sign-in for this client must reach.
    pub min_acr: u8,
    pub created_at: Timestamp,
}

impl Client {
    /// A public client has no secret and must use PKCE (RFC 7636, RFC 9700 §2.1.1).
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Exact match against a registered redirect URI (RFC 9700 §4.1.3), with the one exception
    /// of RFC 8252 §7.3: for a loopback IP literal the port may vary.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri || loopback_match(r, uri))
    }

    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }
}

/// The web origin entry that stands for the origins of the redirect URIs, as in Keycloak.
pub const WEB_ORIGINS_OF_REDIRECTS: &str = "+";

/// The origins whose scripts may call the token, userinfo and revocation endpoints (CORS):
/// the client's web origins, `+` expanded to the origins of its redirect URIs. URIs with no
/// tuple origin (custom schemes of native apps) contribute none.
///
/// Kept beside [`Client`] rather than in it: only CORS and the operator read them.
pub fn allowed_origins(web_origins: &[String], redirect_uris: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for o in web_origins {
        if o == WEB_ORIGINS_OF_REDIRECTS {
            out.extend(redirect_uris.iter().filter_map(|u| origin_of(u)));
        } else {
            out.push(o.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The ASCII serialisation of a URL's origin (RFC 6454 §6.2), none for an opaque origin.
fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Checks a web origin offered at registration: `+`, or `scheme://host[:port]` exactly as a
/// browser sends it in `Origin` (no path, no trailing slash). Never `*`: the endpoints answer
/// with the one origin that asked.
pub fn validate_web_origin(origin: &str) -> Result<(), String> {
    if origin == WEB_ORIGINS_OF_REDIRECTS {
        return Ok(());
    }
    match origin_of(origin) {
        Some(o) if o == origin => Ok(()),
        Some(o) => Err(format!("--web-origin '{origin}' is not an origin; did you mean '{o}'?")),
        None => Err(format!("--web-origin '{origin}' is not an origin such as https://app.example.com")),
    }
}

fn loopback_match(registered: &str, presented: &str) -> bool {
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    loopback(&r)
        && loopback(&p)
        && r.host_str() == p.host_str()
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && p.username().is_empty()
        && p.password().is_none()
}

/// Checks a redirect URI offered at registration: absolute, no fragment (RFC 6749 §3.1.2),
/// https or a loopback/native scheme.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URI: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("'{uri}' must not contain a fragment"));
    }
    if u.scheme() == "http" && u.host_str().is_none() {
        return Err(format!("'{uri}' has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_stands_for_the_origins_of_the_redirect_uris() {
        let redirects = vec!["https://app.example.com:8443/cb".into(), "com.example.app:/cb".into()];
        let origins = allowed_origins(&["+".into(), "https://spa.example.com".into()], &redirects);
        assert_eq!(origins, ["https://app.example.com:8443", "https://spa.example.com"]);
        assert!(allowed_origins(&[], &redirects).is_empty());
    }

    #[test]
    fn a_web_origin_is_an_exact_origin() {
        assert!(validate_web_origin("+").is_ok());
        assert!(validate_web_origin("https://spa.example.com").is_ok());
        assert!(validate_web_origin("http://localhost:5173").is_ok());
        assert!(validate_web_origin("https://spa.example.com/").is_err());
        assert!(validate_web_origin("https://spa.example.com/app").is_err());
        assert!(validate_web_origin("*").is_err());
        assert!(validate_web_origin("https://example.com:443").is_err(), "browsers omit the default port");
    }
}
