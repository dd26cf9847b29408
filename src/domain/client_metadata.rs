//! Client metadata (RFC 7591 §2, OIDC Dynamic Client Registration 1.0 §2): what a client says of
//! itself, read from a registration request field by field, each with the spec's error, and
//! written back as the registration response. One [`NewClient`] comes out, the same value the
//! operator's `clients add` builds, so both go through one creation (`crate::clients`).

use crate::domain::client::{
    AccessTokenFormat, AuthAlg, ClientKeys, ClientSecurity, ObjectAlg, TlsSubject, is_fetchable, validate_jwks,
    validate_jwks_uri, validate_redirect_uri,
};
use crate::domain::{AuthMethod, Client, GrantType};
use crate::keys::Alg;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How the `sub` of a user is shown to a client (OIDC Core §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// The same `sub` for every client.
    #[default]
    Public,
    /// A `sub` of its own for each sector (the host of the client's redirect URIs, or its
    /// `sector_identifier_uri`), so that clients of different sectors cannot correlate users.
    Pairwise,
}

impl SubjectType {
    pub const SUPPORTED: [&str; 2] = ["public", "pairwise"];
}

/// What a client registered beyond the columns every client has: names and links shown to
/// people, and how its tokens are made. Kept as one JSON value; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ClientMetadata {
    /// `web` (the default) or `native`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Shown on the sign-in and consent pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// `public` or `pairwise`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub subject_type: Option<SubjectType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// Userinfo answers as a JWT signed with this algorithm (OIDC Core §5.3.2); none: plain JSON.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_alg")]
    #[schema(value_type = Option<String>)]
    pub userinfo_signed_response_alg: Option<Alg>,
    /// Every ID token carries `auth_time`, asked for or not (Latchkey always sends it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_auth_time: bool,
    /// The `max_age` of an authorization request that names none (OIDC Core §3.1.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_max_age: Option<i64>,
    /// Where a third party sends the browser to make the client start a sign-in (OIDC Core §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
    /// Where logout tokens are POSTed when a session this client signed in with ends
    /// (OIDC Back-Channel Logout 1.0 §2.2). They always carry `sid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backchannel_logout_session_required: bool,
    /// Loaded in a frame of the signed-out page, with `iss` and `sid` (OIDC Front-Channel
    /// Logout 1.0 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub frontchannel_logout_session_required: bool,
}

mod opt_alg {
    use crate::keys::Alg;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(alg: &Option<Alg>, s: S) -> Result<S::Ok, S::Error> {
        match alg {
            Some(a) => s.serialize_str(a.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Alg>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.as_deref().and_then(Alg::parse))
    }
}

impl ClientMetadata {
    pub fn subject_type(&self) -> SubjectType {
        self.subject_type.unwrap_or_default()
    }

    /// The JSON kept in the store; none when the client said nothing beyond the defaults.
    pub fn to_stored(&self) -> Option<String> {
        (*self != Self::default()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    pub fn from_stored(s: Option<&str>) -> Self {
        s.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
    }
}

/// A client about to be created, by the operator (`clients add`) or at the registration
/// endpoint: everything but its id, secret and time of creation.
#[derive(Clone, Debug)]
pub struct NewClient {
    pub name: String,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub min_acr: u8,
    pub resource_server: bool,
    pub require_pkce: bool,
    pub access_token_format: AccessTokenFormat,
    pub id_token_signed_response_alg: Alg,
    pub keys: ClientKeys,
    /// What a high-security client is held to (PAR, DPoP, profile, token exchange).
    pub security: ClientSecurity,
    pub metadata: ClientMetadata,
}

impl NewClient {
    /// The rules that hold between the fields, whoever registers the client.
    pub fn check(&self) -> Result<(), String> {
        if self.grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err("a client using authorization_code needs at least one redirect URI (--redirect-uri)".into());
        }
        if self.auth_method == AuthMethod::PrivateKeyJwt && !self.keys.has_keys() {
            return Err(
                "a private_key_jwt client needs its keys: jwks_uri or jwks (the CLI's --jwks-uri or --jwks)".into()
            );
        }
        // RFC 8705 §2.1.2: a tls_client_auth client registers exactly one subject; §2.2: a
        // self-signed certificate is known by the client's keys.
        match (self.auth_method, &self.security.tls_subject) {
            (AuthMethod::TlsClientAuth, None) => {
                return Err("a tls_client_auth client needs its certificate subject: tls_client_auth_subject_dn \
                            or one tls_client_auth_san_* (the CLI's --tls-subject-dn or --tls-san-*)"
                    .into());
            }
            (AuthMethod::TlsClientAuth, Some(_)) | (_, None) => {}
            (m, Some(_)) => {
                return Err(format!("a certificate subject is for tls_client_auth clients, not {}", m.as_str()));
            }
        }
        if self.auth_method == AuthMethod::SelfSignedTlsClientAuth && !self.keys.has_keys() {
            return Err("a self_signed_tls_client_auth client needs its keys: jwks_uri or jwks (the CLI's \
                        --jwks-uri or --jwks), one of them the certificate's"
                .into());
        }
        self.keys.check_auth_alg(self.auth_method)?;
        if self.auth_method == AuthMethod::None && self.grant_types.contains(&GrantType::ClientCredentials) {
            return Err("a public client cannot use client_credentials".into());
        }
        if self.auth_method == AuthMethod::None && self.grant_types.contains(&GrantType::TokenExchange) {
            return Err("a public client cannot use token_exchange".into());
        }
        Ok(())
    }

    pub fn into_client(self, id: String, secret_hash: Option<String>, created_at: i64) -> Client {
        Client {
            id,
            name: self.name,
            secret_hash,
            secret_sealed: None,
            auth_method: self.auth_method,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scopes: self.scopes,
            first_party: self.first_party,
            min_acr: self.min_acr,
            resource_server: self.resource_server,
            require_pkce: self.require_pkce,
            access_token_format: self.access_token_format,
            created_at,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            keys: self.keys,
            security: self.security,
            metadata: self.metadata,
        }
    }
}

/// A registration refused (RFC 7591 §3.2.2): `invalid_redirect_uri` or `invalid_client_metadata`.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub description: String,
}

fn bad(d: impl Into<String>) -> Refusal {
    Refusal { code: "invalid_client_metadata", description: d.into() }
}

fn bad_redirect(d: impl Into<String>) -> Refusal {
    Refusal { code: "invalid_redirect_uri", description: d.into() }
}

/// What the provider offers, for the checks that depend on it.
pub struct Offered<'a> {
    /// Algorithms with an active signing key.
    pub signing_algs: &'a [Alg],
    /// Algorithms accepted for request objects (`none` among them).
    pub request_object_algs: &'a [&'a str],
    /// Whether URLs the provider fetches or sends to may be loopback ones: only where the
    /// provider itself is a local development one (a plain-http issuer). Elsewhere a registering
    /// client must not make the provider call its own host.
    pub loopback: bool,
}

impl Offered<'_> {
    /// A URL the provider will call (keys, sector document, logout tokens): https, or http on a
    /// loopback host in development; never a loopback host in production.
    fn callable(&self, uri: &str) -> bool {
        let Ok(u) = url::Url::parse(uri) else { return false };
        let loopback = match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
            None => true,
        };
        is_fetchable(uri) && (self.loopback || (u.scheme() == "https" && !loopback))
    }
}

/// Reads a registration request (or an RFC 7592 update, which replaces every field) into a new
/// client. Each field is checked against its definition; a field the provider does not know is
/// ignored (RFC 7591 §2).
pub fn read(body: &Value, offered: &Offered) -> Result<NewClient, Refusal> {
    let m = body.as_object().ok_or_else(|| bad("the request body must be a JSON object"))?;
    let str_of = |k: &str| -> Result<Option<String>, Refusal> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{k} must be a string"))),
        }
    };
    let list_of = |k: &str| -> Result<Option<Vec<String>>, Refusal> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(format!("{k} must be an array of strings"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad(format!("{k} must be an array of strings"))),
        }
    };
    let url_of = |k: &str| -> Result<Option<String>, Refusal> {
        let Some(u) = str_of(k)? else { return Ok(None) };
        match url::Url::parse(&u) {
            Ok(p) if matches!(p.scheme(), "https" | "http") && p.fragment().is_none() => Ok(Some(u)),
            _ => Err(bad(format!("{k} must be an http or https URL without a fragment"))),
        }
    };

    // redirect_uris (OIDC Dynamic Registration §2: REQUIRED for the code flow): each absolute,
    // without a fragment, https or loopback http or a private-use scheme.
    let redirect_uris = list_of("redirect_uris").map_err(|r| bad_redirect(r.description))?.unwrap_or_default();
    for uri in &redirect_uris {
        validate_redirect_uri(uri, false).map_err(bad_redirect)?;
    }
    // application_type: web or native.
    let application_type = str_of("application_type")?;
    if let Some(t) = &application_type
        && t != "web"
        && t != "native"
    {
        return Err(bad("application_type must be web or native"));
    }
    // response_types: only code is offered, and it needs the authorization_code grant.
    let response_types = list_of("response_types")?.unwrap_or_else(|| vec!["code".into()]);
    if let Some(rt) = response_types.iter().find(|t| *t != "code") {
        return Err(bad(format!("response_type {rt} is not supported; only code is")));
    }
    let grant_names = list_of("grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    let mut grant_types = Vec::new();
    for g in &grant_names {
        let grant = GrantType::parse(g).ok_or_else(|| bad(format!("grant_type {g} is not supported")))?;
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    if !response_types.is_empty() && !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(bad("response_type code needs the authorization_code grant type"));
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(bad_redirect("redirect_uris is required"));
    }
    // token_endpoint_auth_method: default client_secret_basic (RFC 7591 §2).
    let auth_method = match str_of("token_endpoint_auth_method")? {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => {
            AuthMethod::parse(&m).ok_or_else(|| bad(format!("token_endpoint_auth_method {m} is not supported")))?
        }
    };
    // jwks and jwks_uri: one or the other (RFC 7591 §2), public keys only.
    let mut keys = ClientKeys::default();
    match (m.get("jwks").filter(|v| !v.is_null()), str_of("jwks_uri")?) {
        (Some(_), Some(_)) => return Err(bad("jwks and jwks_uri must not both be given")),
        (Some(set), None) => {
            let json = set.to_string();
            validate_jwks(&json).map_err(bad)?;
            keys.jwks = Some(json);
        }
        (None, Some(uri)) => {
            validate_jwks_uri(&uri).map_err(bad)?;
            if !offered.callable(&uri) {
                return Err(bad("jwks_uri must be an https URL of another host"));
            }
            keys.jwks_uri = Some(uri);
        }
        (None, None) => {}
    }
    let signing_alg = |k: &str| -> Result<Option<Alg>, Refusal> {
        let Some(a) = str_of(k)? else { return Ok(None) };
        match Alg::parse(&a) {
            Some(alg) if offered.signing_algs.contains(&alg) => Ok(Some(alg)),
            _ if a == "none" => Err(bad(format!("{k} none is not allowed: every token is signed"))),
            _ => Err(bad(format!("{k} {a} is not one this provider signs with"))),
        }
    };
    let id_token_signed_response_alg = signing_alg("id_token_signed_response_alg")?.unwrap_or(Alg::DEFAULT);
    let userinfo_signed_response_alg = signing_alg("userinfo_signed_response_alg")?;
    if let Some(a) = str_of("request_object_signing_alg")? {
        if !offered.request_object_algs.contains(&a.as_str()) {
            return Err(bad(format!("request_object_signing_alg {a} is not supported")));
        }
        keys.request_object_signing_alg = ObjectAlg::parse(&a);
    }
    if let Some(a) = str_of("token_endpoint_auth_signing_alg")? {
        keys.token_endpoint_auth_signing_alg = Some(
            AuthAlg::parse(&a).ok_or_else(|| bad(format!("token_endpoint_auth_signing_alg {a} is not supported")))?,
        );
    }
    // subject_type and sector_identifier_uri (OIDC Core §8.1): the sector document is fetched
    // and checked by the caller.
    let subject_type = match str_of("subject_type")?.as_deref() {
        None => None,
        Some("public") => Some(SubjectType::Public),
        Some("pairwise") => Some(SubjectType::Pairwise),
        Some(t) => return Err(bad(format!("subject_type {t} is not supported"))),
    };
    let sector_identifier_uri = str_of("sector_identifier_uri")?;
    if let Some(u) = &sector_identifier_uri
        && !offered.callable(u)
    {
        return Err(bad("sector_identifier_uri must be an https URL"));
    }
    let default_max_age = match m.get("default_max_age") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(|| bad("default_max_age must be a number of seconds"))?)
        }
    };
    // initiate_login_uri (OIDC Dynamic Registration §2): https.
    let initiate_login_uri = url_of("initiate_login_uri")?;
    if initiate_login_uri.as_deref().is_some_and(|u| !is_fetchable(u)) {
        return Err(bad("initiate_login_uri must be an https URL"));
    }
    // Logout URIs (Back-Channel Logout §2.2, Front-Channel Logout §2): absolute, no fragment,
    // https (http only on loopback, where the provider itself runs in development).
    let logout_uri = |k: &str| -> Result<Option<String>, Refusal> {
        let uri = url_of(k)?;
        match uri {
            Some(u) if !offered.callable(&u) => Err(bad(format!("{k} must be an https URL"))),
            u => Ok(u),
        }
    };
    let flag = |k: &str| -> Result<bool, Refusal> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("{k} must be true or false"))),
        }
    };
    let backchannel_logout_uri = logout_uri("backchannel_logout_uri")?;
    let frontchannel_logout_uri = logout_uri("frontchannel_logout_uri")?;
    let post_logout_redirect_uris = list_of("post_logout_redirect_uris")?.unwrap_or_default();
    for uri in &post_logout_redirect_uris {
        validate_redirect_uri(uri, false).map_err(|e| bad(format!("post_logout_redirect_uris: {e}")))?;
    }
    let name = str_of("client_name")?.filter(|n| !n.trim().is_empty());
    let new = NewClient {
        name: name.unwrap_or_else(|| "Registered client".into()),
        auth_method,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes: Vec::new(),
        first_party: false,
        min_acr: 1,
        resource_server: false,
        require_pkce: false,
        access_token_format: AccessTokenFormat::Jwt,
        id_token_signed_response_alg,
        keys,
        // RFC 9126 §6, RFC 9449 §5.2 and RFC 8705 §2.1.2, §3.4 registration metadata.
        security: ClientSecurity {
            require_par: flag("require_pushed_authorization_requests")?,
            dpop_bound: flag("dpop_bound_access_tokens")?,
            tls_subject: {
                let mut given = Vec::new();
                for f in TlsSubject::FIELDS {
                    given.push((f, str_of(f)?));
                }
                TlsSubject::one_of(given.iter().map(|(f, v)| (*f, v.as_deref()))).map_err(bad)?
            },
            cert_bound: flag("tls_client_certificate_bound_access_tokens")?,
            ..Default::default()
        },
        metadata: ClientMetadata {
            application_type,
            client_uri: url_of("client_uri")?,
            logo_uri: url_of("logo_uri")?,
            policy_uri: url_of("policy_uri")?,
            tos_uri: url_of("tos_uri")?,
            contacts: list_of("contacts")?.unwrap_or_default(),
            subject_type,
            sector_identifier_uri,
            userinfo_signed_response_alg,
            require_auth_time: flag("require_auth_time")?,
            default_max_age,
            initiate_login_uri,
            backchannel_logout_session_required: flag("backchannel_logout_session_required")?,
            backchannel_logout_uri,
            frontchannel_logout_session_required: flag("frontchannel_logout_session_required")?,
            frontchannel_logout_uri,
        },
    };
    new.check().map_err(bad)?;
    Ok(new)
}

/// The sector of a pairwise client (OIDC Core §8.1): the host of its `sector_identifier_uri`,
/// else the one host of its redirect URIs. None when the redirect URIs span several hosts and no
/// sector identifier names their sector.
pub fn sector_of(redirect_uris: &[String], sector_identifier_uri: Option<&str>) -> Option<String> {
    let host = |u: &str| url::Url::parse(u).ok().and_then(|u| u.host_str().map(str::to_owned));
    if let Some(s) = sector_identifier_uri {
        return host(s);
    }
    let mut hosts: Vec<String> = redirect_uris.iter().filter_map(|u| host(u)).collect();
    hosts.sort();
    hosts.dedup();
    match hosts.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Checks a sector identifier document (OIDC Dynamic Registration §5): a JSON array of URIs that
/// holds every redirect URI of the client.
pub fn check_sector_document(body: &[u8], redirect_uris: &[String]) -> Result<(), Refusal> {
    let listed: Vec<String> = serde_json::from_slice(body)
        .map_err(|_| bad("the sector_identifier_uri document is not a JSON array of URIs"))?;
    match redirect_uris.iter().find(|r| !listed.contains(r)) {
        Some(r) => Err(bad(format!("the sector_identifier_uri document does not list the redirect URI {r}"))),
        None => Ok(()),
    }
}

/// The client's metadata as the registration endpoint answers it (RFC 7591 §3.2.1).
pub fn to_json(c: &Client) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("client_id".into(), json!(c.id));
    out.insert("client_id_issued_at".into(), json!(c.created_at));
    out.insert("client_name".into(), json!(c.name));
    out.insert("redirect_uris".into(), json!(c.redirect_uris));
    if !c.post_logout_redirect_uris.is_empty() {
        out.insert("post_logout_redirect_uris".into(), json!(c.post_logout_redirect_uris));
    }
    out.insert("grant_types".into(), json!(c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()));
    let code = c.allows(GrantType::AuthorizationCode);
    out.insert("response_types".into(), json!(if code { vec!["code"] } else { vec![] }));
    out.insert("token_endpoint_auth_method".into(), json!(c.auth_method.as_str()));
    out.insert("id_token_signed_response_alg".into(), json!(c.id_token_signed_response_alg.as_str()));
    if let Some(subject) = &c.security.tls_subject {
        out.insert(subject.field().into(), json!(subject.value()));
    }
    if c.security.cert_bound {
        out.insert("tls_client_certificate_bound_access_tokens".into(), json!(true));
    }
    out.insert("subject_type".into(), json!(c.metadata.subject_type()));
    out.insert("application_type".into(), json!(c.metadata.application_type.as_deref().unwrap_or("web")));
    if let Ok(Value::Object(keys)) = serde_json::to_value(&c.keys) {
        for (k, v) in keys {
            // The stored JWK Set is its JSON text; answer it as the object it was sent as.
            let v = match (k.as_str(), &v) {
                ("jwks", Value::String(s)) => serde_json::from_str(s).unwrap_or(v),
                _ => v,
            };
            out.insert(k, v);
        }
    }
    if let Ok(Value::Object(meta)) = serde_json::to_value(&c.metadata) {
        out.extend(meta);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALGS: &[Alg] = &[Alg::Rs256];
    const OFFERED: Offered = Offered { signing_algs: ALGS, request_object_algs: &["RS256", "none"], loopback: false };

    fn code(body: Value) -> &'static str {
        read(&body, &OFFERED).unwrap_err().code
    }

    #[test]
    fn a_minimal_registration_is_a_confidential_code_client() {
        let c = read(&json!({ "redirect_uris": ["https://rp.example.com/cb"] }), &OFFERED).unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(c.id_token_signed_response_alg, Alg::Rs256);
        assert_eq!(c.metadata, ClientMetadata::default());
    }

    #[test]
    fn each_field_is_refused_with_its_error() {
        assert_eq!(code(json!({ "redirect_uris": ["https://rp.example.com/cb#x"] })), "invalid_redirect_uri");
        assert_eq!(code(json!({ "redirect_uris": [] })), "invalid_redirect_uri");
        assert_eq!(code(json!({})), "invalid_redirect_uri");
        let cb = json!(["https://rp.example.com/cb"]);
        for (field, value) in [
            ("response_types", json!(["token"])),
            ("grant_types", json!(["implicit"])),
            ("token_endpoint_auth_method", json!("client_secret_jwt_x")),
            ("token_endpoint_auth_signing_alg", json!("none")),
            ("id_token_signed_response_alg", json!("none")),
            ("id_token_signed_response_alg", json!("ES256")),
            ("userinfo_signed_response_alg", json!("HS256")),
            ("request_object_signing_alg", json!("HS256")),
            ("subject_type", json!("anonymous")),
            ("sector_identifier_uri", json!("http://sector.example.com/s.json")),
            ("default_max_age", json!(-1)),
            ("require_auth_time", json!("yes")),
            ("initiate_login_uri", json!("http://rp.example.com/login")),
            ("logo_uri", json!("javascript:alert(1)")),
            ("jwks", json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] })),
            ("jwks_uri", json!("ftp://rp.example.com/jwks")),
            ("contacts", json!("admin@example.com")),
            ("application_type", json!("desktop")),
            ("post_logout_redirect_uris", json!(["https://rp.example.com/out#x"])),
            ("backchannel_logout_uri", json!("http://rp.example.com/bc")),
            ("backchannel_logout_uri", json!("https://rp.example.com/bc#x")),
            ("frontchannel_logout_uri", json!("http://rp.example.com/fc")),
            ("backchannel_logout_session_required", json!("yes")),
        ] {
            let body = json!({ "redirect_uris": cb, field: value });
            assert_eq!(code(body), "invalid_client_metadata", "{field}: {value}");
        }
        let both = json!({ "redirect_uris": cb, "jwks_uri": "https://rp.example.com/jwks", "jwks": { "keys": [] } });
        assert_eq!(code(both), "invalid_client_metadata");
        let no_keys = json!({ "redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt" });
        assert_eq!(code(no_keys), "invalid_client_metadata");
    }

    #[test]
    fn a_production_provider_calls_no_loopback_url() {
        let cb = json!(["https://rp.example.com/cb"]);
        for (k, v) in [
            ("jwks_uri", "https://127.0.0.1/jwks"),
            ("jwks_uri", "http://localhost:8080/jwks"),
            ("backchannel_logout_uri", "https://localhost/bc"),
            ("sector_identifier_uri", "https://[::1]/s.json"),
        ] {
            assert_eq!(code(json!({ "redirect_uris": cb, k: v })), "invalid_client_metadata", "{k}: {v}");
            let dev = Offered { loopback: true, ..OFFERED };
            assert!(read(&json!({ "redirect_uris": cb, k: v }), &dev).is_ok(), "development: {k}: {v}");
        }
    }

    #[test]
    fn the_sector_is_the_sector_uri_host_or_the_one_redirect_host() {
        let one = vec!["https://a.example.com/cb".to_owned(), "https://a.example.com/cb2".to_owned()];
        assert_eq!(sector_of(&one, None).as_deref(), Some("a.example.com"));
        let two = vec!["https://a.example.com/cb".to_owned(), "https://b.example.com/cb".to_owned()];
        assert_eq!(sector_of(&two, None), None);
        assert_eq!(sector_of(&two, Some("https://s.example.com/x.json")).as_deref(), Some("s.example.com"));
        assert!(check_sector_document(br#"["https://a.example.com/cb","https://a.example.com/cb2"]"#, &one).is_ok());
        assert!(check_sector_document(br#"["https://example.com/op"]"#, &one).is_err());
        assert!(check_sector_document(b"{}", &one).is_err());
    }
}
