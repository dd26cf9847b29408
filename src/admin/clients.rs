//! Registered applications: add, list, show, update, remove, and a client's roles. `add` reads
//! the operator's input into the domain's `NewClient` and creates it through `crate::clients`,
//! the creation dynamic registration uses too; the secret is stored as a hash (and sealed for
//! `client_secret_jwt`, whose assertions it MACs) and answered once.

use super::{AdminError, Ops};
use crate::crypto::{hash_secret, random_token};
use crate::domain::claims::SCOPES_SUPPORTED;
use crate::domain::client::{
    AuthAlg, ClientKeys, ClientSecurity, FAPI2_ALGS, ObjectAlg, Profile, allowed_origins, is_fetchable, validate_jwks,
    validate_jwks_uri, validate_redirect_uri, validate_web_origin,
};
use crate::domain::client_metadata::{self, ClientMetadata};
use crate::domain::{AuthMethod, Client, GrantType, is_scope_token};
use crate::keys::Alg;
use crate::store::AuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The scope a client holds (among its client_credentials scopes) to call the admin API.
pub const ADMIN_SCOPE: &str = "latchkey:admin";

/// A client to register. Only `name` is required; the rest defaults as `clients add` does.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client: no secret, PKCE required.
    #[serde(default)]
    pub public: bool,
    /// `client_secret_basic` (default), `client_secret_post`, `client_secret_jwt`,
    /// `private_key_jwt` or `none`.
    pub auth_method: Option<String>,
    /// Trusted by the operator: no consent page.
    #[serde(default)]
    pub first_party: bool,
    /// `1` (default) or `2`: the least assurance every sign-in for this client must reach.
    pub min_acr: Option<String>,
    /// Default `authorization_code`, `refresh_token`; also `client_credentials`, `device_code`,
    /// `token_exchange`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Scopes the client may be granted for itself with client_credentials (`latchkey:admin`
    /// lets it call this API).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Algorithm of its ID tokens and access tokens (default RS256).
    pub id_token_alg: Option<String>,
    /// Origins whose scripts may call the token endpoints (CORS); `+` means those of the
    /// redirect URIs (the default).
    #[serde(default)]
    pub web_origins: Vec<String>,
    #[serde(default)]
    pub resource_server: bool,
    #[serde(default)]
    pub require_pkce: bool,
    /// Accept plain-http redirect URIs to any host (development only).
    #[serde(default)]
    pub allow_http: bool,
    #[serde(flatten)]
    #[schema(inline)]
    pub keys: KeyInput,
    #[serde(flatten)]
    #[schema(inline)]
    pub security: SecurityInput,
    /// Where logout tokens are POSTed when a session the client signed in with ends (OIDC
    /// Back-Channel Logout; https, http only on loopback).
    pub backchannel_logout_uri: Option<String>,
    /// Loaded in a frame of the signed-out page with `iss` and `sid` (OIDC Front-Channel Logout;
    /// https, http only on loopback).
    pub frontchannel_logout_uri: Option<String>,
}

/// A client's high-security options at registration (RFC 9126, RFC 9449, FAPI 2.0, RFC 8693).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SecurityInput {
    /// The client must push its authorization requests (RFC 9126).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// The client's token requests must carry a DPoP proof; its tokens are bound to the key
    /// (RFC 9449).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// `fapi2` holds the client to the FAPI 2.0 Security Profile (PAR, PKCE, private_key_jwt,
    /// DPoP, PS256/ES256/EdDSA).
    pub profile: Option<String>,
    /// Clients whose tokens this client may exchange for tokens of its own (RFC 8693; its own
    /// always; `*` for any).
    #[serde(default)]
    pub token_exchange_from: Vec<String>,
}

impl SecurityInput {
    fn read(self) -> Result<ClientSecurity, AdminError> {
        let profile = match self.profile.as_deref() {
            None => None,
            Some(p) => Some(Profile::parse(p).ok_or_else(|| {
                AdminError::Invalid(format!("profile {p}: one of {}", Profile::ALL.map(Profile::as_str).join(", ")))
            })?),
        };
        Ok(ClientSecurity {
            require_par: self.require_pushed_authorization_requests,
            dpop_bound: self.dpop_bound_access_tokens,
            profile,
            token_exchange_from: exchange_list(self.token_exchange_from),
        })
    }
}

/// The clients a client may exchange tokens of; `none` (the CLI's word for "only its own") is
/// the empty list.
fn exchange_list(from: Vec<String>) -> Vec<String> {
    from.into_iter().filter(|c| c != "none").collect()
}

/// What the FAPI 2.0 Security Profile asks of a client's registration, each refused with the
/// clause that asks it.
fn fapi2_registration(new: &client_metadata::NewClient, allow_http: bool) -> Result<(), AdminError> {
    let fapi_alg = |a: Alg| FAPI2_ALGS.contains(&a);
    if new.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(AdminError::Invalid(format!(
            "profile fapi2: the client authenticates with private_key_jwt (FAPI 2.0 §5.3.2.1-6), not {}",
            new.auth_method.as_str()
        )));
    }
    if !fapi_alg(new.id_token_signed_response_alg) {
        return Err(AdminError::Invalid(format!(
            "profile fapi2: id_token_alg (--id-token-alg) PS256, ES256 or EdDSA (FAPI 2.0 §5.4.1), not {}",
            new.id_token_signed_response_alg
        )));
    }
    if new.keys.token_endpoint_auth_signing_alg.is_some_and(|a| !matches!(a, AuthAlg::Key(k) if fapi_alg(k))) {
        return Err(AdminError::invalid(
            "profile fapi2: token_auth_alg (--token-auth-alg) PS256, ES256 or EdDSA (FAPI 2.0 §5.4.1)",
        ));
    }
    if allow_http {
        return Err(AdminError::invalid("profile fapi2: no plain-http redirect URIs (FAPI 2.0 §5.3.2.2-8)"));
    }
    Ok(())
}

/// A client's own keys and what it signs with them (request objects, private_key_jwt).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct KeyInput {
    /// Its public keys as a JWK Set. Exclusive with `jwks_uri`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Its public keys at this URL (https; http only on loopback).
    pub jwks_uri: Option<String>,
    /// The only algorithm accepted for its request objects; `none` allows unsigned ones.
    pub request_object_alg: Option<String>,
    /// The only algorithm accepted for its client assertions: RS256, PS256, ES256 or EdDSA for
    /// private_key_jwt, HS256, HS384 or HS512 for client_secret_jwt.
    pub token_auth_alg: Option<String>,
}

impl KeyInput {
    fn is_empty(&self) -> bool {
        self.jwks.is_none()
            && self.jwks_uri.is_none()
            && self.request_object_alg.is_none()
            && self.token_auth_alg.is_none()
    }

    /// Writes what was given over `keys`: a new JWK Set replaces the old, inline or by URL.
    fn apply(self, keys: &mut ClientKeys) -> Result<(), AdminError> {
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(AdminError::invalid("give jwks or jwks_uri, not both"));
        }
        if let Some(uri) = self.jwks_uri {
            validate_jwks_uri(&uri).map_err(AdminError::Invalid)?;
            (keys.jwks, keys.jwks_uri) = (None, Some(uri));
        }
        if let Some(set) = self.jwks {
            let json = set.to_string();
            validate_jwks(&json).map_err(|e| AdminError::Invalid(format!("jwks: {e}")))?;
            (keys.jwks, keys.jwks_uri) = (Some(json), None);
        }
        if let Some(alg) = self.request_object_alg {
            let parsed = ObjectAlg::parse(&alg).ok_or_else(|| {
                AdminError::Invalid(format!("request_object_alg {alg}: not an algorithm Latchkey verifies"))
            })?;
            keys.request_object_signing_alg = Some(parsed);
        }
        if let Some(alg) = self.token_auth_alg {
            let parsed = AuthAlg::parse(&alg).ok_or_else(|| {
                AdminError::Invalid(format!("token_auth_alg {alg}: one of {}", AuthAlg::names().join(", ")))
            })?;
            keys.token_endpoint_auth_signing_alg = Some(parsed);
        }
        Ok(())
    }
}

fn parse_alg(what: &str, alg: &str) -> Result<Alg, AdminError> {
    Alg::parse(alg)
        .ok_or_else(|| AdminError::Invalid(format!("{what} {alg}: one of {}", Alg::ALL.map(Alg::as_str).join(", "))))
}

/// A registered client's id and, for a confidential one, its secret: shown only now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// A registered client as the operator sees it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String)]
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    #[schema(value_type = Vec<String>)]
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub id_token_signed_response_alg: String,
    pub min_acr: u8,
    pub resource_server: bool,
    pub require_pkce: bool,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `require_pushed_authorization_requests` (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// The security profile the client is held to (`fapi2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The clients whose tokens this client may exchange (RFC 8693; its own always).
    pub token_exchange_from: Vec<String>,
    /// What the client said of itself at registration (logout URIs, names and links, subject
    /// type, ...).
    #[serde(flatten)]
    pub metadata: ClientMetadata,
    /// The web origins as registered (`+` stands for the redirect URIs' origins).
    pub web_origins: Vec<String>,
    /// The origins CORS answers for.
    pub allowed_origins: Vec<String>,
    /// A user in none of these groups is refused (none: anyone).
    pub required_groups: Vec<String>,
    pub roles: Vec<String>,
}

/// A change to a client: each field given replaces what it names.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    pub web_origins: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub resource_server: Option<bool>,
    pub require_pkce: Option<bool>,
    /// Accept plain-http redirect URIs to any host (development only).
    #[serde(default)]
    pub allow_http: bool,
    /// The groups the client requires; empty: any user.
    pub required_groups: Option<Vec<String>>,
    /// Whether the client must push its authorization requests (RFC 9126).
    pub require_pushed_authorization_requests: Option<bool>,
    /// Whether the client's token requests must carry a DPoP proof (RFC 9449).
    pub dpop_bound_access_tokens: Option<bool>,
    /// Replaces the clients whose tokens this client may exchange (RFC 8693; `*` for any; empty
    /// or `none` for only its own).
    pub token_exchange_from: Option<Vec<String>>,
    /// Another way to authenticate: `client_secret_basic`, `client_secret_post`,
    /// `client_secret_jwt` or `private_key_jwt` (a public client stays public, and the other way
    /// round). A client that has no secret of the kind the method needs is issued one, answered
    /// once as `client_secret`: `client_secret_jwt` needs one kept sealed, so a client moving to
    /// it from another method always gets a new one.
    pub auth_method: Option<String>,
    #[serde(flatten)]
    #[schema(inline)]
    pub keys: KeyInput,
}

/// What an update changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Updated {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub keys: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_server: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_exchange_from: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// A secret issued with the new method: shown only now, never audited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A client's roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct Roles {
    pub client_id: String,
    pub roles: Vec<String>,
}

/// Registers a client, creating the signing keys of its algorithm if it is the first to use it.
pub async fn add(ops: &Ops<'_>, new: NewClient) -> Result<Created, AdminError> {
    let (new, web_origins) = read_new(new)?;
    // The first client of an algorithm brings its keys into being.
    let plan = crate::keys::lifecycle::ensure(&ops.store.signing_keys().await?, new.id_token_signed_response_alg);
    if !plan.is_empty() {
        let kek = crate::keys::kek::Kek::load_or_create(&ops.settings.keys_dir)?;
        crate::keys::apply(ops.store, &kek, &plan, ops.now, &format!("{} clients add", ops.by())).await?;
    }
    let crate::clients::Created { client, secret } =
        crate::clients::create(ops.store, new, None, ops.now, |e| ops.stamp(e)).await?;
    if !web_origins.is_empty() {
        ops.store.set_client_web_origins(&client.id, &web_origins).await?;
    }
    Ok(Created { client_id: client.id, client_secret: secret })
}

/// The operator's input as the domain's new client (checked as dynamic registration's is, by
/// `NewClient::check`), and its web origins.
fn read_new(new: NewClient) -> Result<(client_metadata::NewClient, Vec<String>), AdminError> {
    let NewClient {
        name,
        redirect_uris,
        post_logout_redirect_uris,
        public,
        auth_method,
        first_party,
        min_acr,
        grant_types,
        scopes,
        id_token_alg,
        web_origins,
        resource_server,
        require_pkce,
        allow_http,
        keys: key_input,
        security,
        backchannel_logout_uri,
        frontchannel_logout_uri,
    } = new;
    if name.trim().is_empty() {
        return Err(AdminError::invalid("a client needs a name"));
    }
    for (what, uri) in
        [("backchannel_logout_uri", &backchannel_logout_uri), ("frontchannel_logout_uri", &frontchannel_logout_uri)]
    {
        if let Some(u) = uri
            && !is_fetchable(u)
        {
            return Err(AdminError::Invalid(format!("{what} '{u}' must be an https URL (http only on loopback)")));
        }
    }
    let mut keys = ClientKeys::default();
    key_input.apply(&mut keys)?;
    let security = security.read()?;
    for uri in redirect_uris.iter().chain(&post_logout_redirect_uris) {
        validate_redirect_uri(uri, allow_http).map_err(AdminError::Invalid)?;
    }
    for o in &web_origins {
        validate_web_origin(o).map_err(AdminError::Invalid)?;
    }
    let auth_method = match (public, auth_method.as_deref()) {
        (true, None | Some("none")) => AuthMethod::None,
        (true, Some(m)) => return Err(AdminError::Invalid(format!("public clients authenticate with none, not {m}"))),
        (false, Some(m)) => AuthMethod::parse(m).ok_or_else(|| {
            AdminError::Invalid(format!(
                "auth method {m}: one of {}",
                AuthMethod::ALL.map(AuthMethod::as_str).join(", ")
            ))
        })?,
        (false, None) => AuthMethod::ClientSecretBasic,
    };
    let grant_types: Vec<GrantType> = if grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        grant_types
            .iter()
            .map(|g| {
                GrantType::parse_short(g)
                    .ok_or_else(|| AdminError::Invalid(format!("grant type {g}: not one Latchkey offers")))
            })
            .collect::<Result<_, _>>()?
    };
    let scopes = crate::domain::parse_scope(&scopes.join(" "));
    if let Some(s) = scopes.iter().find(|s| !is_scope_token(s) || SCOPES_SUPPORTED.contains(&s.as_str())) {
        return Err(AdminError::Invalid(format!("scope {s}: not a scope a client can hold for itself")));
    }
    let min_acr = min_acr.as_deref().unwrap_or("1");
    let min_acr = crate::login::policy::acr_level(min_acr)
        .ok_or_else(|| AdminError::Invalid(format!("min_acr {min_acr}: 1 or 2")))?;
    let alg = parse_alg("id_token_alg", id_token_alg.as_deref().unwrap_or("RS256"))?;
    let new = client_metadata::NewClient {
        name,
        auth_method,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes,
        first_party,
        min_acr,
        resource_server,
        require_pkce,
        id_token_signed_response_alg: alg,
        keys,
        security,
        metadata: ClientMetadata {
            backchannel_logout_session_required: backchannel_logout_uri.is_some(),
            backchannel_logout_uri,
            frontchannel_logout_session_required: frontchannel_logout_uri.is_some(),
            frontchannel_logout_uri,
            ..Default::default()
        },
    };
    if new.security.profile == Some(Profile::Fapi2) {
        fapi2_registration(&new, allow_http)?;
    }
    // The rules between the fields, before any key is made for the client.
    new.check().map_err(AdminError::Invalid)?;
    Ok((new, web_origins))
}

pub async fn list(ops: &Ops<'_>) -> Result<Vec<ClientView>, AdminError> {
    let mut out = Vec::new();
    for c in ops.store.list_clients().await? {
        out.push(view(ops, &c).await?);
    }
    Ok(out)
}

pub async fn show(ops: &Ops<'_>, id: &str) -> Result<ClientView, AdminError> {
    let c = ops.client(id).await?;
    view(ops, &c).await
}

async fn view(ops: &Ops<'_>, c: &Client) -> Result<ClientView, AdminError> {
    let web_origins = ops.store.client_web_origins(&c.id).await?.unwrap_or_default();
    Ok(ClientView {
        id: c.id.clone(),
        name: c.name.clone(),
        auth_method: c.auth_method,
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        grant_types: c.grant_types.clone(),
        scopes: c.scopes.clone(),
        first_party: c.first_party,
        id_token_signed_response_alg: c.id_token_signed_response_alg.as_str().to_owned(),
        min_acr: c.min_acr,
        resource_server: c.resource_server,
        require_pkce: c.require_pkce,
        created_at: c.created_at,
        jwks: c.keys.jwks.clone(),
        jwks_uri: c.keys.jwks_uri.clone(),
        request_object_signing_alg: c.keys.request_object_signing_alg.map(|a| a.as_str().to_owned()),
        token_endpoint_auth_signing_alg: c.keys.token_endpoint_auth_signing_alg.map(|a| a.as_str().to_owned()),
        require_pushed_authorization_requests: c.security.require_par,
        dpop_bound_access_tokens: c.security.dpop_bound,
        profile: c.security.profile.map(|p| p.as_str().to_owned()),
        token_exchange_from: c.security.token_exchange_from.clone(),
        metadata: c.metadata.clone(),
        allowed_origins: allowed_origins(&web_origins, &c.redirect_uris),
        web_origins,
        required_groups: ops.store.required_groups(&c.id).await?,
        roles: ops.store.client_roles(&c.id).await?,
    })
}

/// Changes a client: each field given replaces what it names.
pub async fn update(ops: &Ops<'_>, id: &str, change: ClientUpdate) -> Result<Updated, AdminError> {
    let ClientUpdate {
        web_origins,
        redirect_uris,
        resource_server,
        require_pkce,
        allow_http,
        required_groups,
        require_pushed_authorization_requests: require_par,
        dpop_bound_access_tokens: dpop_bound,
        token_exchange_from,
        auth_method,
        keys,
    } = change;
    let flags = [resource_server, require_pkce, require_par, dpop_bound];
    let nothing = web_origins.is_none()
        && redirect_uris.is_none()
        && flags.iter().all(Option::is_none)
        && token_exchange_from.is_none()
        && required_groups.is_none()
        && auth_method.is_none()
        && keys.is_empty();
    if nothing {
        return Err(AdminError::invalid(
            "nothing to change: give web origins, redirect URIs, resource_server, require_pkce, \
             require_pushed_authorization_requests, dpop_bound_access_tokens, token_exchange_from, \
             required groups, auth_method or keys (--web-origin, --redirect-uri, --resource-server, \
             --require-pkce, --require-par, --dpop-bound, --exchange-from, --require-group, --any-group, \
             --auth-method, --jwks-uri, --jwks, --request-object-alg or --token-auth-alg)",
        ));
    }
    let client = ops.client(id).await?;
    for o in web_origins.iter().flatten() {
        validate_web_origin(o).map_err(AdminError::Invalid)?;
    }
    if redirect_uris.as_ref().is_some_and(Vec::is_empty) {
        return Err(AdminError::invalid("a client keeps at least one redirect URI"));
    }
    for uri in redirect_uris.iter().flatten() {
        validate_redirect_uri(uri, allow_http).map_err(AdminError::Invalid)?;
    }
    for g in required_groups.iter().flatten() {
        if !ops.store.group_exists(g).await? {
            return Err(AdminError::Invalid(format!("required group {g}: no such group (add it first)")));
        }
    }
    let mut changed = Updated {
        client_id: id.to_owned(),
        keys: None,
        web_origins: None,
        required_groups: None,
        redirect_uris: None,
        resource_server: None,
        require_pkce: None,
        require_pushed_authorization_requests: None,
        dpop_bound_access_tokens: None,
        token_exchange_from: None,
        auth_method: None,
        client_secret: None,
    };
    let method = match auth_method.as_deref() {
        None => client.auth_method,
        Some(m) => parse_auth_method(m, &client)?,
    };
    let keys_given = !keys.is_empty();
    let mut new_keys = client.keys.clone();
    keys.apply(&mut new_keys)?;
    new_keys.check_auth_alg(method).map_err(AdminError::Invalid)?;
    if method == AuthMethod::PrivateKeyJwt && !new_keys.has_keys() {
        return Err(AdminError::invalid("a private_key_jwt client needs its keys: --jwks-uri or --jwks"));
    }
    if keys_given {
        ops.store.set_client_keys(id, &new_keys).await?;
        changed.keys = Some(serde_json::to_value(&new_keys).map_err(anyhow::Error::from)?);
    }
    if method != client.auth_method {
        changed.client_secret = change_auth_method(ops, &client, method).await?;
        changed.auth_method = Some(method.as_str().to_owned());
    }
    if let Some(origins) = web_origins.filter(|o| !o.is_empty()) {
        ops.store.set_client_web_origins(id, &origins).await?;
        changed.web_origins = Some(origins);
    }
    if let Some(groups) = required_groups {
        ops.store.set_required_groups(id, &groups).await?;
        changed.required_groups = Some(groups);
    }
    if redirect_uris.is_some() || flags.iter().any(Option::is_some) || token_exchange_from.is_some() {
        let mut c = (*client).clone();
        if let Some(uris) = redirect_uris {
            c.redirect_uris = uris.clone();
            changed.redirect_uris = Some(uris);
        }
        if let Some(flag) = resource_server {
            c.resource_server = flag;
            changed.resource_server = Some(flag);
        }
        if let Some(flag) = require_pkce {
            c.require_pkce = flag;
            changed.require_pkce = Some(flag);
        }
        if let Some(flag) = require_par {
            c.security.require_par = flag;
            changed.require_pushed_authorization_requests = Some(flag);
        }
        if let Some(flag) = dpop_bound {
            c.security.dpop_bound = flag;
            changed.dpop_bound_access_tokens = Some(flag);
        }
        if let Some(from) = token_exchange_from {
            c.security.token_exchange_from = exchange_list(from);
            changed.token_exchange_from = Some(c.security.token_exchange_from.clone());
        }
        ops.store.update_client(&c).await?;
    }
    let mut event = AuditEvent::new("admin.client_updated").client(id);
    if let Value::Object(fields) = serde_json::to_value(&changed).map_err(anyhow::Error::from)? {
        for (key, v) in fields.into_iter().filter(|(k, _)| k != "client_id" && k != "client_secret") {
            event = event.detail(&key, v);
        }
    }
    ops.audit(event).await;
    Ok(changed)
}

/// The method a client moves to: any but `none`, and not from `none` (a public client and a
/// confidential one are different kinds of client); a FAPI 2.0 client keeps `private_key_jwt`.
fn parse_auth_method(m: &str, client: &Client) -> Result<AuthMethod, AdminError> {
    let method = AuthMethod::parse(m).ok_or_else(|| {
        AdminError::Invalid(format!("auth method {m}: one of {}", AuthMethod::ALL.map(AuthMethod::as_str).join(", ")))
    })?;
    if (method == AuthMethod::None) != client.is_public() {
        return Err(AdminError::invalid(
            "a public client stays public and a confidential one confidential: add a new client instead",
        ));
    }
    if client.is_fapi2() && method != AuthMethod::PrivateKeyJwt {
        return Err(AdminError::invalid(
            "profile fapi2: the client authenticates with private_key_jwt (FAPI 2.0 §5.3.2.1-6)",
        ));
    }
    Ok(method)
}

/// Stores `client`'s new method with the secret it needs: the one it has where that will do
/// (its hash for `client_secret_basic`/`_post`, its sealed copy for `client_secret_jwt`), else a
/// new one, returned to be shown once; none for `private_key_jwt`.
async fn change_auth_method(ops: &Ops<'_>, client: &Client, method: AuthMethod) -> Result<Option<String>, AdminError> {
    let keeps = match method {
        AuthMethod::ClientSecretJwt => client.secret_sealed.is_some(),
        _ => client.secret_hash.is_some(),
    };
    let secret = (method.uses_secret() && !keeps).then(|| crate::clients::new_secret(method));
    let mut c = client.clone();
    c.auth_method = method;
    c.secret_hash = match &secret {
        Some(s) => Some(hash_secret(s)),
        None if method.uses_secret() => client.secret_hash.clone(),
        None => None,
    };
    c.secret_sealed = match &secret {
        Some(_) => crate::clients::sealed_secret(ops.store, &c, secret.as_deref()),
        None if method == AuthMethod::ClientSecretJwt => client.secret_sealed.clone(),
        None => None,
    };
    ops.store.set_client_auth(&c).await?;
    Ok(secret)
}

/// An initial access token for the registration endpoint (RFC 7591 §3): shown only now, kept as
/// a hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct InitialAccessToken {
    pub initial_access_token: String,
    pub expires_at: i64,
}

/// Issues an initial access token that lets whoever holds it register clients at the
/// registration endpoint for `expires_in` seconds.
pub async fn initial_access_token(ops: &Ops<'_>, expires_in: i64) -> Result<InitialAccessToken, AdminError> {
    if expires_in <= 0 {
        return Err(AdminError::invalid("an initial access token lasts a positive number of seconds"));
    }
    let token = random_token();
    let expires_at = ops.now.saturating_add(expires_in);
    ops.store.insert_initial_access_token(&hash_secret(&token), ops.now, expires_at).await?;
    ops.audit(AuditEvent::new("admin.initial_access_token").detail("expires_at", expires_at)).await;
    Ok(InitialAccessToken { initial_access_token: token, expires_at })
}

/// Removes a client and revokes everything it holds.
pub async fn remove(ops: &Ops<'_>, id: &str) -> Result<(), AdminError> {
    if !ops.store.remove_client(id, ops.now).await? {
        return Err(AdminError::NotFound(format!("no client {id}")));
    }
    ops.audit(AuditEvent::new("admin.client_removed").client(id)).await;
    Ok(())
}

pub async fn roles(ops: &Ops<'_>, client_id: &str) -> Result<Roles, AdminError> {
    ops.client(client_id).await?;
    Ok(Roles { client_id: client_id.to_owned(), roles: ops.store.client_roles(client_id).await? })
}

/// Defines a role of a client (released as the `roles` claim to the users who have it).
pub async fn add_role(ops: &Ops<'_>, client_id: &str, role: &str) -> Result<(), AdminError> {
    super::check_name("role", role)?;
    ops.client(client_id).await?;
    if !ops.store.add_client_role(client_id, role).await? {
        return Err(AdminError::Conflict(format!("client {client_id} has a role {role} already")));
    }
    ops.audit(AuditEvent::new("admin.client_role_added").client(client_id).detail("role", role)).await;
    Ok(())
}

/// Removes a role of a client, and takes it from every user who has it.
pub async fn remove_role(ops: &Ops<'_>, client_id: &str, role: &str) -> Result<(), AdminError> {
    if !ops.store.remove_client_role(client_id, role).await? {
        return Err(AdminError::NotFound(format!("client {client_id} has no role {role}")));
    }
    ops.audit(AuditEvent::new("admin.client_role_removed").client(client_id).detail("role", role)).await;
    Ok(())
}
