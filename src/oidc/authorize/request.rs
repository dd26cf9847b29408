//! The authorization request (OIDC Core §3.1.2.1), validated into a typed value by an ordered
//! list of checks. Until the client and redirect_uri are known to be good, every failure is a
//! page; after that, failures go back to the client (RFC 6749 §4.1.2.1).

use super::request_object;
pub use crate::domain::authorization::{AuthRequest, Prompt, ResponseMode, Target};
use crate::domain::claims::SCOPES_SUPPORTED;
use crate::domain::resource::Resource;
use crate::domain::{Client, GrantType, parse_scope};
use crate::http::{PageError, Params};
use crate::state::AppState;
use serde_json::Value;
use std::sync::Arc;

pub const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];
const DISPLAY_VALUES: [&str; 4] = ["page", "popup", "touch", "wap"];

/// A failure the client is told about at its redirect_uri.
#[derive(Debug)]
pub struct AuthzError {
    pub code: &'static str,
    pub description: String,
}

pub fn err(code: &'static str, description: impl Into<String>) -> AuthzError {
    AuthzError { code, description: description.into() }
}

pub enum Rejection {
    Page(PageError),
    Redirect(Target, AuthzError),
}

impl From<PageError> for Rejection {
    fn from(e: PageError) -> Self {
        Rejection::Page(e)
    }
}

/// The longest value each parameter may have: a request is kept in the login flow until the
/// user is signed in, so what a stranger can make the server hold is bounded.
const MAX_LEN: &[(&str, usize)] = &[
    ("state", 2048),
    ("nonce", 512),
    ("login_hint", 512),
    ("claims", 4096),
    ("acr_values", 512),
    ("scope", 1024),
    ("id_token_hint", 8192),
    ("ui_locales", 256),
    ("claims_locales", 256),
];

/// Runs the checks in order: client → request object → redirect_uri → sizes → response mode →
/// duplicates → response_type → grant → scope → PKCE → prompt → max_age → claims →
/// id_token_hint.
pub async fn validate(state: &AppState, query: &Params) -> Result<(Arc<Client>, AuthRequest), Rejection> {
    let client = check_client(state, query).await?;
    // The object's parameters win (OIDC Core §6.3.3); a refused object is reported once the
    // redirect_uri is known good, with the state it carried.
    let (p, refused) = match request_object::resolve(state, &client, query).await {
        Ok(p) => (p, None),
        Err(r) => (r.fallback, Some(r.error)),
    };
    let p = &p;
    let redirect_uri = check_redirect_uri(&client, p)?;
    // An oversized `state` is not sent back: the error is shown here.
    if let Some((name, max)) = MAX_LEN.iter().find(|(n, max)| p.get(n).is_some_and(|v| v.len() > *max)) {
        let message = format!("The {name} parameter is longer than {max} characters.");
        if *name == "state" {
            return Err(PageError::bad_request("invalid_request", "This sign-in request is not valid", message).into());
        }
        let target = Target { redirect_uri, response_mode: response_mode(p), state: p.get("state").map(str::to_owned) };
        return Err(Rejection::Redirect(target, err("invalid_request", format!("{name} is too long"))));
    }
    let target = Target { redirect_uri, response_mode: response_mode(p), state: p.get("state").map(str::to_owned) };
    if let Some(e) = refused {
        return Err(Rejection::Redirect(target, e));
    }
    // RFC 8707 §2: a resource indicator names a registered resource server, else invalid_target.
    let resource = match p.get("resource") {
        None => None,
        Some(uri) => match state.store.resource(uri).await.map_err(PageError::from)? {
            Some(r) => Some(r),
            None => {
                let e = err("invalid_target", "resource is not a resource server registered here");
                return Err(Rejection::Redirect(target, e));
            }
        },
    };
    match check_rest(state, &client, p, &target, resource.as_ref()) {
        Ok(req) => Ok((client.clone(), registered_defaults(state, &client, p, req).await?)),
        Err(e) => Err(Rejection::Redirect(target, e)),
    }
}

/// What the client registered for requests that do not say (OIDC Dynamic Registration §2):
/// its `default_max_age` when the request names no `max_age`; and, for a pairwise client, the
/// account its `id_token_hint` names by its pairwise `sub` (OIDC Core §8.1).
async fn registered_defaults(
    state: &AppState,
    client: &Client,
    p: &Params,
    mut req: AuthRequest,
) -> Result<AuthRequest, Rejection> {
    if req.max_age.is_none() {
        req.max_age = client.metadata.default_max_age;
    }
    let pairwise = client.metadata.subject_type() == crate::domain::client_metadata::SubjectType::Pairwise;
    if pairwise && let Some(hint) = p.get("id_token_hint").and_then(|h| super::super::id_token::verify_hint(state, h)) {
        let account = crate::oidc::subject::account_of(state, client, &hint.sub, hint.sid.as_deref()).await;
        req.hint_sub = Some(account.map_err(PageError::from)?);
    }
    Ok(req)
}

fn response_mode(p: &Params) -> ResponseMode {
    if p.get("response_mode") == Some("form_post") { ResponseMode::FormPost } else { ResponseMode::Query }
}

/// `client_id` REQUIRED (RFC 6749 §4.1.1), and the client must exist.
async fn check_client(state: &AppState, p: &Params) -> Result<Arc<Client>, Rejection> {
    let page = |m: &str| PageError::bad_request("invalid_request", "This sign-in request is not valid", m);
    if p.is_duplicated("client_id") {
        return Err(page("The client_id parameter appears more than once.").into());
    }
    let id = p
        .get("client_id")
        .ok_or_else(|| page("The request does not say which application it is for (client_id is missing)."))?;
    state.store.client(id).await.map_err(PageError::from)?.ok_or_else(|| {
        PageError::bad_request(
            "invalid_client",
            "Unknown application",
            "The application that sent you here is not registered with this provider.",
        )
        .into()
    })
}

/// `redirect_uri` REQUIRED in OIDC (Core §3.1.2.1) and compared exactly (RFC 9700 §4.1.3).
fn check_redirect_uri(client: &Client, p: &Params) -> Result<String, Rejection> {
    let page = |m: &str| PageError::bad_request("invalid_request", "This sign-in request is not valid", m);
    if p.is_duplicated("redirect_uri") {
        return Err(page("The redirect_uri parameter appears more than once.").into());
    }
    let uri = p
        .get("redirect_uri")
        .ok_or_else(|| page("The request does not say where to return (redirect_uri is missing)."))?;
    if !client.has_redirect_uri(uri) {
        return Err(page("The address to return to (redirect_uri) is not registered for this application.").into());
    }
    Ok(uri.to_owned())
}

fn check_rest(
    state: &AppState,
    client: &Client,
    p: &Params,
    target: &Target,
    resource: Option<&Resource>,
) -> Result<AuthRequest, AuthzError> {
    // Response mode (OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode).
    if let Some(mode) = p.get("response_mode")
        && !ResponseMode::SUPPORTED.contains(&mode)
    {
        return Err(err("invalid_request", format!("response_mode {mode} is not supported")));
    }
    // Parameters MUST NOT be included more than once (RFC 6749 §3.1).
    if let Some(name) = p.duplicate() {
        return Err(err("invalid_request", format!("the {name} parameter appears more than once")));
    }
    // response_type REQUIRED; only the code flow is offered.
    match p.get("response_type") {
        None => return Err(err("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(other) => return Err(err("unsupported_response_type", format!("response_type {other} is not supported"))),
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(err("unauthorized_client", "this client may not use the authorization code grant"));
    }
    // Scope: unknown values are ignored (RFC 6749 §3.3 lets the server narrow it), the
    // resource's own scopes are known when one is named; offline_access only for clients that
    // may hold refresh tokens.
    let scopes: Vec<String> = parse_scope(p.get("scope").unwrap_or_default())
        .into_iter()
        .filter(|s| SCOPES_SUPPORTED.contains(&s.as_str()) || resource.is_some_and(|r| r.scopes.contains(s)))
        .filter(|s| s != "offline_access" || client.allows(GrantType::RefreshToken))
        .collect();
    // PKCE (RFC 7636 §4.3): S256 only; required for public clients (RFC 9700 §2.1.1).
    if let Some(method) = p.get("code_challenge_method")
        && method != "S256"
    {
        return Err(err("invalid_request", format!("code_challenge_method {method} is not supported; use S256")));
    }
    let code_challenge = p.get("code_challenge").map(str::to_owned);
    if let Some(c) = &code_challenge {
        if p.get("code_challenge_method").is_none() {
            return Err(err("invalid_request", "code_challenge_method is required; use S256"));
        }
        if !is_pkce_value(c) {
            return Err(err("invalid_request", "code_challenge is malformed"));
        }
    } else if client.is_public() {
        return Err(err("invalid_request", "public clients must use PKCE (code_challenge with S256)"));
    } else if client.require_pkce || state.settings.tokens.require_pkce || client.is_fapi2() {
        // RFC 9700 §2.1.1: confidential clients SHOULD use PKCE too; the operator may insist,
        // and FAPI 2.0 does (§5.3.2.2-5).
        return Err(err("invalid_request", "this client must use PKCE (code_challenge with S256)"));
    }
    // prompt (OIDC Core §3.1.2.1): none may not be combined with other values.
    let mut prompt = Prompt::default();
    let values: Vec<&str> = p.get("prompt").unwrap_or_default().split(' ').filter(|v| !v.is_empty()).collect();
    for v in &values {
        match *v {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => return Err(err("invalid_request", format!("prompt value {other} is not supported"))),
        }
    }
    if prompt.none && values.len() > 1 {
        return Err(err("invalid_request", "prompt=none cannot be combined with other values"));
    }
    let max_age = match p.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| err("invalid_request", "max_age must be a non-negative integer"))?,
        ),
    };
    if let Some(d) = p.get("display")
        && !DISPLAY_VALUES.contains(&d)
    {
        return Err(err("invalid_request", format!("display value {d} is not supported")));
    }
    let claims = match p.get("claims") {
        None => None,
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(v @ Value::Object(_)) => Some(v.to_string()),
            _ => return Err(err("invalid_request", "claims must be a JSON object")),
        },
    };
    // RFC 9449 §10: dpop_jkt binds the code to a DPoP key; it is a JWK thumbprint.
    let dpop_jkt = p.get("dpop_jkt").map(str::to_owned);
    if dpop_jkt.as_deref().is_some_and(|j| !crate::oidc::dpop::is_thumbprint(j)) {
        return Err(err("invalid_request", "dpop_jkt is not a JWK SHA-256 thumbprint"));
    }
    let hint_sub = match p.get("id_token_hint") {
        None => None,
        Some(hint) => Some(
            super::super::id_token::verify_hint(state, hint)
                .ok_or_else(|| err("invalid_request", "id_token_hint is not an ID token issued here"))?
                .sub,
        ),
    };
    Ok(AuthRequest {
        client_id: client.id.clone(),
        target: target.clone(),
        scopes,
        nonce: p.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.get("login_hint").map(str::to_owned),
        hint_sub,
        acr_values: p
            .get("acr_values")
            .map(|v| v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        claims,
        dpop_jkt,
        pushed: None,
        resource: resource.map(|r| r.uri.clone()),
        ui_locales: p.get("ui_locales").map(str::to_owned),
    })
}

/// RFC 7636 §4.1/§4.2: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}
