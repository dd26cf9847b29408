//! Dynamic client registration (RFC 7591, OIDC Dynamic Client Registration 1.0) and its
//! management protocol (RFC 7592).
//!
//! `POST /register` registers a client: with an initial access token from `latchkey clients
//! token` as Bearer, or with none where the operator opened registration
//! (`dynamic_registration.open`). Its answer holds a registration access token (kept only as a
//! hash) that reads (`GET`), replaces (`PUT`) and deletes (`DELETE`) that one registration at
//! `/register/{client_id}`. The metadata rules are `domain::client_metadata`'s; the creation is
//! the operator's (`crate::clients`).

use crate::crypto::{hash_secret, random_token, verify_secret};
use crate::domain::client_metadata::{self, NewClient, Offered, Refusal, SubjectType};
use crate::domain::{AuthMethod, Client};
use crate::http::{BearerError, OAuthError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub const PATH: &str = "/register";

/// Registration requests larger than this are refused before parsing.
const MAX_BODY: usize = 64 * 1024;
/// The sector identifier document is a short list of URIs.
const MAX_SECTOR_DOCUMENT: usize = 64 * 1024;

/// What a registration call can fail with: a Bearer error for the token (RFC 6750 §3.1), the
/// registration errors of RFC 7591 §3.2.2, or a token-style error (`invalid_request`, 503).
enum Error {
    Bearer(BearerError),
    Metadata(Refusal),
    OAuth(OAuthError),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Self::Bearer(e) => e.into_response(),
            Self::Metadata(r) => OAuthError::registration(r.code, r.description).into_response(),
            Self::OAuth(e) => e.into_response(),
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Self::Metadata(r)
    }
}

impl From<BearerError> for Error {
    fn from(e: BearerError) -> Self {
        Self::Bearer(e)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::OAuth(e.into())
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Self::OAuth(e.into())
    }
}

/// RFC 7591 §3.1: register a client.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    register(&state, &headers, &body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn register(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, Error> {
    let now = state.now();
    // §3: an initial access token, unless the operator opened registration to anyone.
    match bearer(headers)? {
        Some(token) => {
            if !state.store.initial_access_token_valid(&hash_secret(&token), now).await? {
                return Err(BearerError::InvalidToken("the initial access token is not valid").into());
            }
        }
        None if state.settings.dynamic_registration.open => {}
        None => return Err(BearerError::Missing.into()),
    }
    // §3.1: the metadata as a JSON object; each field checked (§2), the sector document fetched.
    let new = read_metadata(state, headers, body).await?;
    let token = random_token();
    let created =
        crate::clients::create(&state.store, new, Some(&hash_secret(&token)), now, |e| e.detail("by", "registration"))
            .await?;
    // §3.2.1: the client information response, with its secret and token shown only now.
    let mut out = answer(state, &created.client);
    if let Some(secret) = created.secret {
        out.insert("client_secret".into(), json!(secret));
        out.insert("client_secret_expires_at".into(), json!(0));
    }
    out.insert("registration_access_token".into(), json!(token));
    Ok(respond(StatusCode::CREATED, out))
}

/// RFC 7592 §2.1: read a registration.
pub async fn read(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let result = async {
        let client = authorized(&state, &id, &headers).await?;
        Ok::<_, Error>(respond(StatusCode::OK, answer(&state, &client)))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// RFC 7592 §2.2: replace a registration with the metadata sent, which is whole: what it leaves
/// out returns to its default.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    replace(&state, &id, &headers, &body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn replace(state: &AppState, id: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, Error> {
    let now = state.now();
    let old = authorized(state, id, headers).await?;
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // §2.2: client_id MUST be sent and match; the server's own fields MUST NOT be sent.
    if value.get("client_id").and_then(Value::as_str) != Some(id) {
        return Err(Error::OAuth(OAuthError::invalid_request("client_id must be sent and be this client's")));
    }
    for own in
        ["registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at"]
    {
        if value.get(own).is_some() {
            return Err(Error::OAuth(OAuthError::invalid_request(format!("{own} is the server's to set"))));
        }
    }
    // A client_secret sent must be the client's own (the server does not take secrets).
    if let Some(sent) = value.get("client_secret") {
        let matches = sent.as_str().zip(old.secret_hash.as_deref()).is_some_and(|(s, h)| verify_secret(s, h));
        if !matches {
            return Err(Error::OAuth(OAuthError::invalid_request("client_secret is not this client's secret")));
        }
    }
    let new = read_metadata(state, headers, body).await?;
    // A client that now authenticates with a secret keeps its own, or gets one. A client that
    // moves to client_secret_jwt gets one unless it had one sealed already: a hash cannot give
    // back the MAC key, and an older secret is too short for HS512.
    let method = new.auth_method;
    let keeps = match method {
        AuthMethod::ClientSecretJwt => old.secret_sealed.is_some(),
        _ => old.secret_hash.is_some(),
    };
    let secret = (method.uses_secret() && !keeps).then(|| crate::clients::new_secret(method));
    let secret_hash = match (&secret, method.uses_secret()) {
        (Some(s), _) => Some(hash_secret(s)),
        (None, true) => old.secret_hash.clone(),
        (None, false) => None,
    };
    // What only the operator sets (first party, assurance, flags, scopes) stays as it was.
    let mut client = Client {
        first_party: old.first_party,
        min_acr: old.min_acr,
        resource_server: old.resource_server,
        require_pkce: old.require_pkce,
        scopes: old.scopes.clone(),
        ..new.into_client(old.id.clone(), secret_hash, old.created_at)
    };
    client.secret_sealed = match secret.as_deref() {
        Some(s) => crate::clients::sealed_secret(&state.store, &client, Some(s)),
        None if method == AuthMethod::ClientSecretJwt => old.secret_sealed.clone(),
        None => None,
    };
    state.store.replace_registered_client(&client).await?;
    state.store.audit(crate::store::AuditEvent::new("client.registration_updated").client(id), now).await;
    let mut out = answer(state, &client);
    if let Some(s) = secret {
        out.insert("client_secret".into(), json!(s));
        out.insert("client_secret_expires_at".into(), json!(0));
    }
    Ok(respond(StatusCode::OK, out))
}

/// RFC 7592 §2.3: delete a registration, revoking everything the client holds.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let result = async {
        authorized(&state, &id, &headers).await?;
        let now = state.now();
        state.store.remove_client(&id, now).await?;
        state.store.audit(crate::store::AuditEvent::new("client.registration_deleted").client(&id), now).await;
        Ok::<_, Error>(no_store(StatusCode::NO_CONTENT.into_response()))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// The Bearer token of the request, if any (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Result<Option<String>, BearerError> {
    match crate::oidc::userinfo::bearer_header(headers)? {
        Some(p) if p.dpop => Err(BearerError::InvalidRequest("the registration access token is a Bearer token")),
        p => Ok(p.map(|p| p.token)),
    }
}

/// RFC 7592 §2: the registration access token must be the one issued for this client. An
/// unknown client and a wrong token answer alike, so that client ids cannot be probed.
async fn authorized(state: &AppState, id: &str, headers: &HeaderMap) -> Result<Client, Error> {
    let token = bearer(headers)?.ok_or(BearerError::Missing)?;
    let refused = || Error::Bearer(BearerError::InvalidToken("the registration access token is not valid"));
    let hash = state.store.registration_token_hash(id).await?.ok_or_else(refused)?;
    if !verify_secret(&token, &hash) {
        return Err(refused());
    }
    let client = state.store.client(id).await?.ok_or_else(refused)?;
    Ok((*client).clone())
}

/// Reads the JSON body into a new client, with the checks that need the provider: its signing
/// keys, and the sector identifier document fetched from the client's `sector_identifier_uri`.
async fn read_metadata(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<NewClient, Error> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !json || body.len() > MAX_BODY {
        return Err(Error::OAuth(OAuthError::invalid_request(
            "the registration request must be an application/json body of at most 64 KiB",
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal { code: "invalid_client_metadata", description: "the body is not JSON".into() })?;
    let algs = state.keys.algs();
    let request_object_algs = crate::oidc::authorize::request_object::algs_supported();
    // A development provider (plain http) may call its own host: the clients there are too.
    let loopback = state.issuer.starts_with("http://");
    let offered = Offered { signing_algs: &algs, request_object_algs: &request_object_algs, loopback };
    let new = client_metadata::read(&value, &offered)?;
    check_sector(state, &new).await?;
    Ok(new)
}

/// OIDC Core §8.1 and Dynamic Registration §5: a pairwise client has one sector, and a
/// `sector_identifier_uri` must list every redirect URI of the client.
async fn check_sector(state: &AppState, new: &NewClient) -> Result<(), Refusal> {
    let meta = &new.metadata;
    let refuse = |d: String| Refusal { code: "invalid_client_metadata", description: d };
    if let Some(uri) = &meta.sector_identifier_uri {
        let body = crate::keys::client_keys::fetch(&state.upstream_http, uri, "application/json", MAX_SECTOR_DOCUMENT)
            .await
            .map_err(|e| refuse(format!("the sector_identifier_uri could not be read: {e}")))?;
        client_metadata::check_sector_document(&body, &new.redirect_uris)?;
    }
    if meta.subject_type() == SubjectType::Pairwise
        && client_metadata::sector_of(&new.redirect_uris, meta.sector_identifier_uri.as_deref()).is_none()
    {
        return Err(refuse("pairwise redirect URIs on several hosts need a sector_identifier_uri".into()));
    }
    Ok(())
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3) without secrets.
fn answer(state: &AppState, client: &Client) -> Map<String, Value> {
    let mut out = client_metadata::to_json(client);
    out.insert("registration_client_uri".into(), json!(state.url(&format!("{PATH}/{}", client.id))));
    out
}

fn respond(status: StatusCode, body: Map<String, Value>) -> Response {
    no_store((status, axum::Json(Value::Object(body))).into_response())
}

/// RFC 7591 §3.2.1: responses carrying credentials are not cached.
fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
