//! Registered clients (relying parties) and what each is allowed to do.

use crate::clock::Timestamp;
use crate::keys::Alg;
use crate::keys::mac::MacAlg;
use serde::{Deserialize, Serialize};

/// How a client proves its identity at the token endpoint (OIDC Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT MAC'd (HS256/384/512) with the client's secret (OIDC Core §9, RFC 7523 §2.2); the
    /// provider needs the secret itself, so it keeps it sealed (see `store::sealed`).
    ClientSecretJwt,
    /// A JWT signed with one of the client's own keys (OIDC Core §9, RFC 7523 §2.2).
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] =
        [Self::ClientSecretBasic, Self::ClientSecretPost, Self::ClientSecretJwt, Self::PrivateKeyJwt, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Whether the client holds a secret the provider issued.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt)
    }

    /// Whether the client authenticates with a JWT assertion (RFC 7523 §2.2).
    pub fn uses_assertion(self) -> bool {
        matches!(self, Self::ClientSecretJwt | Self::PrivateKeyJwt)
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
    /// Token exchange (RFC 8693): a service trades a token it was given for one to call
    /// another service, as the user (impersonation) or on their behalf (delegation).
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 5] =
        [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials, Self::DeviceCode, Self::TokenExchange];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The operator's short name: the grant type, or `device_code` and `token_exchange` for the
    /// URNs.
    pub fn parse_short(s: &str) -> Option<Self> {
        match s {
            "device_code" => Some(Self::DeviceCode),
            "token_exchange" => Some(Self::TokenExchange),
            _ => Self::parse(s),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// The secret itself, sealed under the KEK (`store::sealed`), of a `client_secret_jwt`
    /// client only: it is the key of its assertions' MAC. Other clients' secrets are kept only
    /// as hashes.
    #[serde(skip)]
    pub secret_sealed: Option<String>,
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
    /// A resource server may introspect tokens issued to other clients (RFC 7662 §2.2).
    pub resource_server: bool,
    /// PKCE is required of this client even when it is confidential (public ones always must).
    pub require_pkce: bool,
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub keys: ClientKeys,
    #[serde(flatten)]
    pub security: ClientSecurity,
    /// What the client said of itself at registration (dynamic registration, or the CLI).
    #[serde(flatten)]
    pub metadata: crate::domain::client_metadata::ClientMetadata,
}

/// What a high-security client is held to (issue #17): pushed authorization requests (RFC 9126
/// §5), DPoP-bound access tokens (RFC 9449 §5.2), and a security profile that implies both and
/// more.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientSecurity {
    /// `require_pushed_authorization_requests` (RFC 9126 §6).
    #[serde(rename = "require_pushed_authorization_requests")]
    pub require_par: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): every token request carries a DPoP proof.
    #[serde(rename = "dpop_bound_access_tokens")]
    pub dpop_bound: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Token exchange policy (RFC 8693): the clients whose tokens this client may exchange
    /// (its own always); `*` for any.
    pub token_exchange_from: Vec<String>,
}

/// A security profile a client is registered under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// FAPI 2.0 Security Profile (Final): PAR, PKCE S256, `private_key_jwt`, DPoP-bound tokens,
    /// PS256/ES256/EdDSA, codes of 60 s at most, refresh tokens that survive a retry.
    Fapi2,
}

impl Profile {
    pub const ALL: [Profile; 1] = [Self::Fapi2];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fapi2 => "fapi2",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The algorithms FAPI 2.0 allows (Security Profile §5.4.1): PS256, ES256, EdDSA.
pub const FAPI2_ALGS: [Alg; 3] = [Alg::Ps256, Alg::Es256, Alg::EdDsa];

/// The client's own public keys and what it signs with them (OIDC Dynamic Client Registration
/// 1.0 §2): request objects and `private_key_jwt` assertions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientKeys {
    /// A JWK Set, inline, as JSON. Exclusive with `jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Every request object of this client must use this algorithm; none registered means any
    /// signed one. Only this registration can allow unsigned (`none`) request objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<ObjectAlg>,
    /// Every `private_key_jwt` or `client_secret_jwt` assertion must use this algorithm; none
    /// registered means any that fits the method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<AuthAlg>,
}

impl ClientKeys {
    pub fn has_keys(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some()
    }

    /// `token_endpoint_auth_signing_alg` (Registration §2) must suit the method: a MAC for
    /// client_secret_jwt, a signature for private_key_jwt.
    pub fn check_auth_alg(&self, method: AuthMethod) -> Result<(), String> {
        match self.token_endpoint_auth_signing_alg {
            Some(alg) if method.uses_assertion() && !alg.fits(method) => Err(format!(
                "token_endpoint_auth_signing_alg {alg} does not fit {}: {}",
                method.as_str(),
                if method == AuthMethod::ClientSecretJwt {
                    "its assertions are MAC'd with HS256, HS384 or HS512"
                } else {
                    "its assertions are signed with RS256, PS256, ES256 or EdDSA"
                }
            )),
            _ => Ok(()),
        }
    }
}

/// A request object's algorithm: signed with one of ours, or `none` (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectAlg {
    None,
    Signed(Alg),
}

impl ObjectAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Signed(a) => a.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "none" { Some(Self::None) } else { Alg::parse(s).map(Self::Signed) }
    }
}

/// A client assertion's algorithm: signed with the client's key (`private_key_jwt`) or MAC'd
/// with its secret (`client_secret_jwt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthAlg {
    Key(Alg),
    Mac(MacAlg),
}

impl AuthAlg {
    /// Every algorithm an assertion may use (`token_endpoint_auth_signing_alg_values_supported`).
    pub fn all() -> impl Iterator<Item = AuthAlg> {
        Alg::ALL.into_iter().map(Self::Key).chain(MacAlg::ALL.into_iter().map(Self::Mac))
    }

    pub fn names() -> Vec<&'static str> {
        Self::all().map(Self::as_str).collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key(a) => a.as_str(),
            Self::Mac(a) => a.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::all().find(|a| a.as_str() == s)
    }

    /// Whether a client authenticating with `method` can use this algorithm.
    pub fn fits(self, method: AuthMethod) -> bool {
        match self {
            Self::Key(_) => method == AuthMethod::PrivateKeyJwt,
            Self::Mac(_) => method == AuthMethod::ClientSecretJwt,
        }
    }
}

impl std::fmt::Display for AuthAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuthAlg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for ObjectAlg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Checks a JWK Set offered at registration: JSON with a `keys` array of public keys this
/// provider can verify with, none of them private or symmetric.
pub fn validate_jwks(json: &str) -> Result<(), String> {
    let set: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("the JWK Set is not JSON: {e}"))?;
    let keys = set["keys"].as_array().ok_or("the JWK Set has no \"keys\" array")?;
    if keys.is_empty() {
        return Err("the JWK Set has no keys".into());
    }
    for k in keys {
        if k.get("d").is_some() || k["kty"] == "oct" {
            return Err("the JWK Set holds private or symmetric key material; register public keys only".into());
        }
        if !matches!(k["kty"].as_str(), Some("RSA" | "EC" | "OKP")) {
            return Err(format!("key type {} is not supported (RSA, EC or OKP)", k["kty"]));
        }
    }
    Ok(())
}

/// Checks a `jwks_uri` offered at registration: https, or http on a loopback host (tests and
/// development).
pub fn validate_jwks_uri(uri: &str) -> Result<(), String> {
    if is_fetchable(uri) { Ok(()) } else { Err(format!("'{uri}' must be an https URL (http only on loopback)")) }
}

/// Whether the provider may fetch `uri` (a client's keys, a request object): https, or http on
/// a loopback host.
pub fn is_fetchable(uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else { return false };
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    u.username().is_empty() && u.password().is_none() && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
}

impl Client {
    /// A public client has no secret and must use PKCE (RFC 7636, RFC 9700 §2.1.1).
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn is_fapi2(&self) -> bool {
        self.security.profile == Some(Profile::Fapi2)
    }

    /// Must this client push its authorization requests (RFC 9126 §5)?
    pub fn requires_par(&self) -> bool {
        self.security.require_par || self.is_fapi2()
    }

    /// Must this client's token requests carry a DPoP proof (RFC 9449 §5.2)?
    pub fn requires_dpop(&self) -> bool {
        self.security.dpop_bound || self.is_fapi2()
    }

    /// May this client sign (assertions, request objects) with `alg`? Any of ours, except
    /// under FAPI 2.0 (§5.4.1: PS256, ES256 or EdDSA only).
    pub fn may_sign_with(&self, alg: Alg) -> bool {
        !self.is_fapi2() || FAPI2_ALGS.contains(&alg)
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

/// Schemes a browser would run or read locally rather than send anywhere: never a place to send
/// a code.
const DANGEROUS_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "about", "blob", "filesystem"];

/// Checks a redirect URI offered at registration: absolute, no fragment (RFC 6749 §3.1.2), no
/// user name or password, and one of
/// - `https` with a host (RFC 9700 §2.6),
/// - `http` to a loopback address (`localhost`, `127.0.0.0/8`, `[::1]`: a native app's own
///   listener, RFC 8252 §7.3), or to any host only when `allow_http` (development),
/// - a private-use scheme in reverse-domain form such as `com.example.app:/callback`, for a
///   native app (RFC 8252 §7.1).
pub fn validate_redirect_uri(uri: &str, allow_http: bool) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URI: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("'{uri}' must not contain a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("'{uri}' must not contain a user name or password"));
    }
    match u.scheme() {
        s if DANGEROUS_SCHEMES.contains(&s) => Err(format!("'{uri}': a {s}: URI cannot receive a response")),
        "https" | "http" if u.host_str().is_none_or(str::is_empty) => Err(format!("'{uri}' has no host")),
        "https" => Ok(()),
        "http" if allow_http || is_loopback_host(&u) => Ok(()),
        "http" => Err(format!(
            "'{uri}': plain http only to a loopback address (localhost, 127.0.0.1, [::1]); use https, \
             or --allow-http for development"
        )),
        s if s.contains('.') => Ok(()),
        s => Err(format!(
            "'{uri}': the scheme {s}: is not https, loopback http, or a private-use scheme in reverse-domain \
             form such as com.example.app:/callback (RFC 8252 §7.1)"
        )),
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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
    fn redirect_uris_are_https_loopback_http_or_private_use_schemes() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8400/cb",
            "http://[::1]:8400/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(validate_redirect_uri(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript://x/%0aalert(1)",
            "data:text/html,<script>x</script>",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb#",
            "https://user:pw@app.example.com/cb",
            "myapp:/cb",
            "ftp://files.example.com/cb",
            "/relative/cb",
        ] {
            assert!(validate_redirect_uri(bad, false).is_err(), "{bad}");
        }
        assert_eq!(validate_redirect_uri("http://app.example.com/cb", true), Ok(()), "development");
        assert!(validate_redirect_uri("javascript:alert(1)", true).is_err());
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
