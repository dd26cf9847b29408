//! `[[upstream]]`: the identity providers people may sign in with (issue #6). Google's and
//! Facebook's real endpoints are presets; every endpoint can be overridden (tests point them at
//! stand-ins). Secrets are redacted in `Debug`.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// OpenID Connect with `https://accounts.google.com` as the default issuer.
    Google,
    /// OAuth 2 and the Graph API.
    Facebook,
    /// Any OpenID Connect issuer, found by discovery.
    Oidc,
}

/// A client secret: kept out of logs and `Debug` output.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const FACEBOOK_AUTH_URL: &str = "https://www.facebook.com/v19.0/dialog/oauth";
pub const FACEBOOK_TOKEN_URL: &str = "https://graph.facebook.com/v19.0/oauth/access_token";
pub const FACEBOOK_GRAPH_URL: &str = "https://graph.facebook.com/v19.0";

/// Profile claims an upstream fills on the local account when they are empty there.
const DEFAULT_CLAIMS: &[&str] = &["name", "given_name", "family_name", "picture", "locale"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Names the provider in URLs (`/login/upstream/{id}/callback`) and in stored links:
    /// lower-case letters, digits, `-` and `_`. Changing it orphans the links made under it.
    pub id: String,
    pub kind: Kind,
    /// The button text is "Continue with {display_name}".
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// Default: `openid email profile` (OIDC), `email public_profile` (Facebook).
    pub scopes: Option<Vec<String>>,
    /// OIDC issuer, found by discovery. Required for `oidc`; Google's by default for `google`.
    pub issuer: Option<String>,
    /// Facebook's login dialog, token endpoint and Graph API base; real ones by default.
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub graph_url: Option<String>,
    /// Whether a first sign-in with no linked account creates one. Off by default: an
    /// operator opens registration explicitly.
    #[serde(default)]
    pub allow_registration: bool,
    /// Which upstream profile claims fill the same claims of the local account when empty.
    pub claims: Option<Vec<String>>,
}

impl Upstream {
    pub fn display_name(&self) -> &str {
        match (&self.display_name, self.kind) {
            (Some(n), _) => n,
            (None, Kind::Google) => "Google",
            (None, Kind::Facebook) => "Facebook",
            (None, Kind::Oidc) => &self.id,
        }
    }

    pub fn issuer(&self) -> Option<&str> {
        match (self.kind, &self.issuer) {
            (_, Some(i)) => Some(i),
            (Kind::Google, None) => Some(GOOGLE_ISSUER),
            _ => None,
        }
    }

    pub fn scopes(&self) -> Vec<String> {
        match (&self.scopes, self.kind) {
            (Some(s), _) => s.clone(),
            (None, Kind::Facebook) => vec!["email".into(), "public_profile".into()],
            (None, _) => vec!["openid".into(), "email".into(), "profile".into()],
        }
    }

    pub fn claims(&self) -> Vec<String> {
        self.claims.clone().unwrap_or_else(|| DEFAULT_CLAIMS.iter().map(|c| c.to_string()).collect())
    }

    pub fn authorization_url(&self) -> &str {
        self.authorization_url.as_deref().unwrap_or(FACEBOOK_AUTH_URL)
    }

    pub fn token_url(&self) -> &str {
        self.token_url.as_deref().unwrap_or(FACEBOOK_TOKEN_URL)
    }

    pub fn graph_url(&self) -> &str {
        self.graph_url.as_deref().unwrap_or(FACEBOOK_GRAPH_URL).trim_end_matches('/')
    }
}

/// One line per problem, as `latchkey config check` prints them.
pub fn problems(upstreams: &[Upstream]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, u) in upstreams.iter().enumerate() {
        let at = format!("upstream[{i}]");
        let valid_id = !u.id.is_empty()
            && u.id.len() <= 64
            && u.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_id {
            out.push(format!("{at}.id: '{}' must be 1-64 of a-z, 0-9, '-' and '_'", u.id));
        }
        if upstreams[..i].iter().any(|o| o.id == u.id) {
            out.push(format!("{at}.id: '{}' is used twice", u.id));
        }
        if u.client_id.trim().is_empty() {
            out.push(format!("{at}.client_id: must be set"));
        }
        if u.client_secret.0.trim().is_empty() {
            out.push(format!("{at}.client_secret: must be set"));
        }
        match u.kind {
            Kind::Oidc if u.issuer.is_none() => out.push(format!("{at}.issuer: must be set for kind = \"oidc\"")),
            Kind::Google | Kind::Oidc => {
                if u.authorization_url.is_some() || u.token_url.is_some() || u.graph_url.is_some() {
                    out.push(format!("{at}: authorization_url, token_url and graph_url are for Facebook; an OpenID provider is found by its issuer"));
                }
                if !u.scopes().iter().any(|s| s == "openid") {
                    out.push(format!("{at}.scopes: must include \"openid\""));
                }
            }
            Kind::Facebook if u.issuer.is_some() => {
                out.push(format!("{at}.issuer: Facebook has no issuer; set authorization_url, token_url, graph_url"))
            }
            Kind::Facebook => {}
        }
        let urls = [("issuer", u.issuer()), ("authorization_url", u.authorization_url.as_deref())]
            .into_iter()
            .chain([("token_url", u.token_url.as_deref()), ("graph_url", u.graph_url.as_deref())]);
        for (name, url) in urls {
            let Some(url) = url else { continue };
            match url::Url::parse(url) {
                Ok(p) if p.scheme() == "https" || (p.scheme() == "http" && super::is_loopback(&p)) => {}
                Ok(_) => out.push(format!("{at}.{name}: must be https (plain http only for localhost)")),
                Err(e) => out.push(format!("{at}.{name}: {e}")),
            }
        }
        for c in u.claims() {
            if !crate::domain::user::SETTABLE_CLAIMS.iter().any(|(n, _)| *n == c) || c == "email_verified" {
                out.push(format!("{at}.claims: '{c}' is not a profile claim Latchkey stores"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Vec<Upstream> {
        #[derive(Deserialize)]
        struct File {
            upstream: Vec<Upstream>,
        }
        toml::from_str::<File>(toml).unwrap().upstream
    }

    #[test]
    fn presets_and_problems() {
        let ok = parse(
            "[[upstream]]\nid = \"google\"\nkind = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [[upstream]]\nid = \"facebook\"\nkind = \"facebook\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        );
        assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));
        assert_eq!(ok[0].issuer(), Some(GOOGLE_ISSUER));
        assert_eq!(ok[1].graph_url(), FACEBOOK_GRAPH_URL);
        assert_eq!(ok[0].display_name(), "Google");
        assert!(!ok[0].allow_registration, "registration is opened explicitly");
        assert_eq!(format!("{:?}", ok[0].client_secret), "***");

        let bad = parse(
            "[[upstream]]\nid = \"a\"\nkind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [[upstream]]\nid = \"a\"\nkind = \"oidc\"\nissuer = \"http://idp.example\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\nscopes = [\"email\"]\nclaims = [\"password\"]\n",
        );
        let p = problems(&bad);
        for expected in [
            "upstream[0].issuer: must be set",
            "upstream[1].id: 'a' is used twice",
            "upstream[1].scopes: must include \"openid\"",
            "upstream[1].issuer: must be https",
            "upstream[1].claims: 'password'",
        ] {
            assert!(p.iter().any(|l| l.starts_with(expected)), "{expected} in {p:?}");
        }
    }
}
