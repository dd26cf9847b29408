//! The admin REST API (`/admin/api/v1/...`): the operator's operations over HTTP, for a client
//! granted the `latchkey:admin` scope through client_credentials. Each handler authenticates
//! the caller ([`Admin`]), parses its input, calls the same operation the CLI calls, and answers
//! JSON; a refusal is a problem document (RFC 9457). Its OpenAPI 3.1 description is generated
//! from these handlers (`utoipa`) and served at `/admin/api/openapi.json`.

use super::{Actor, AdminError, Ops, audit, clients, groups, keys, sessions, users};
use crate::http::BearerError;
use crate::http::client_ip::ClientAddr;
use crate::oidc::id_token::read_access_token;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Where the API lives; its version is in the path.
pub const PREFIX: &str = "/admin/api/v1";
pub const OPENAPI_PATH: &str = "/admin/api/openapi.json";

pub fn router(state: &AppState) -> Router<AppState> {
    let doc = openapi_document(&state.issuer).to_json().unwrap_or_default();
    let v1 = Router::new()
        .route("/clients", get(list_clients).post(add_client))
        .route("/clients/{id}", get(show_client).patch(update_client).delete(remove_client))
        .route("/clients/{id}/roles", get(client_roles))
        .route("/initial-access-tokens", post(issue_initial_access_token))
        .route("/clients/{id}/roles/{role}", put(add_role).delete(remove_role))
        .route("/users", get(list_users).post(add_user))
        .route("/users/{user}", get(show_user).delete(remove_user))
        .route("/users/{user}/password", put(set_password))
        .route("/users/{user}/disable", post(disable_user))
        .route("/users/{user}/enable", post(enable_user))
        .route("/users/{user}/reset-factors", post(reset_factors))
        .route("/users/{user}/groups/{group}", put(add_to_group).delete(remove_from_group))
        .route("/users/{user}/roles/{client_id}/{role}", put(grant_role).delete(revoke_role))
        .route("/users/{user}/sessions", get(list_sessions).delete(end_sessions))
        .route("/users/{user}/sessions/{session}", axum::routing::delete(end_session))
        .route("/groups", get(list_groups).post(add_group))
        .route("/groups/{name}", axum::routing::delete(remove_group))
        .route("/keys", get(list_keys).post(import_key))
        .route("/keys/rotate", post(rotate_keys))
        .route("/keys/{kid}", get(export_key))
        .route("/keys/{kid}/retire", post(retire_key))
        .route("/keys/{kid}/revoke", post(revoke_key))
        .route("/audit", get(audit_events))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "There is no such admin API resource.")
        });
    Router::new()
        .nest(PREFIX, v1)
        .route(OPENAPI_PATH, get(move || async move { ([(header::CONTENT_TYPE, "application/json")], doc.clone()) }))
}

/// The document, with the issuer's address as its server and token URL.
pub fn openapi_document(issuer: &str) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(issuer)]);
    let scopes = Scopes::from_iter([(clients::ADMIN_SCOPE, "Manage this Latchkey")]);
    let flow = Flow::ClientCredentials(ClientCredentials::new(format!("{issuer}/token"), scopes));
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("admin", SecurityScheme::OAuth2(OAuth2::new([flow])));
    doc
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey admin API",
        description = "The operator's operations: clients, users, groups and roles, signing keys, sessions, \
                       the audit log. The same operations as the `latchkey` command line. Every call needs an \
                       access token from a client granted the `latchkey:admin` scope (client_credentials); \
                       refusals are problem documents (RFC 9457)."
    ),
    paths(
        list_clients, add_client, show_client, update_client, remove_client, client_roles, add_role, remove_role,
        issue_initial_access_token,
        list_users, add_user, show_user, remove_user, set_password, disable_user, enable_user, reset_factors,
        add_to_group, remove_from_group, grant_role, revoke_role, list_sessions, end_sessions, end_session,
        list_groups, add_group, remove_group,
        list_keys, import_key, rotate_keys, export_key, retire_key, revoke_key,
        audit_events,
    ),
    components(schemas(Problem)),
    security(("admin" = ["latchkey:admin"])),
    tags(
        (name = "clients", description = "Registered applications and their roles"),
        (name = "users", description = "User accounts, their groups and roles"),
        (name = "sessions", description = "A user's browser sessions"),
        (name = "groups", description = "Groups of users"),
        (name = "keys", description = "Signing keys"),
        (name = "audit", description = "The audit log"),
    )
)]
struct ApiDoc;

// ---------------------------------------------------------------------------------------------
// Authentication: RFC 6750 bearer tokens carrying the admin scope.

/// A caller holding an access token with the admin scope, issued to a client that still exists
/// and still holds that scope (so removing the client, or the scope, stops its tokens at once).
pub struct Admin {
    client_id: String,
    ip: Option<String>,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let now = state.now();
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(Problem::unauthorized(None, "An access token with the latchkey:admin scope is required."));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty())
            .map(|(_, t)| t.trim().to_owned())
            .ok_or_else(|| {
                Problem::unauthorized(Some("invalid_request"), "The Authorization header must be Bearer.")
            })?;
        let at = read_access_token(state, &token, now).map_err(|e| match e {
            BearerError::Unavailable => Problem::unavailable(),
            BearerError::Internal => Problem::internal(),
            _ => Problem::unauthorized(Some("invalid_token"), "The access token is not valid."),
        })?;
        // client_credentials tokens name the client as their subject and no grant.
        if at.sub != at.client_id || at.grant_id.is_some() {
            return Err(Problem::forbidden(
                "The admin API takes tokens a client obtained for itself (client_credentials).",
            ));
        }
        let scopes: Vec<String> =
            at.claims.get("scope").and_then(Value::as_str).map(crate::domain::parse_scope).unwrap_or_default();
        if !scopes.iter().any(|s| s == clients::ADMIN_SCOPE) {
            return Err(Problem::forbidden("The access token does not carry the latchkey:admin scope."));
        }
        let client = state.store.client(&at.client_id).await.map_err(Problem::from_store)?;
        if !client.is_some_and(|c| c.scopes.iter().any(|s| s == clients::ADMIN_SCOPE)) {
            return Err(Problem::forbidden("The client of this token no longer holds the latchkey:admin scope."));
        }
        let ip = parts.extensions.get::<ClientAddr>().map(|ClientAddr(ip)| ip.to_string());
        Ok(Admin { client_id: at.client_id, ip })
    }
}

impl Admin {
    fn ops<'a>(&self, state: &'a AppState) -> Ops<'a> {
        Ops {
            store: &state.store,
            settings: &state.settings,
            passwords: &state.passwords,
            now: state.now(),
            actor: Actor::Api { client_id: self.client_id.clone(), ip: self.ip.clone() },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Problems (RFC 9457).

/// A refusal or failure: `application/problem+json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `title` is the HTTP status's phrase.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    /// What was wrong, for the operator.
    pub detail: String,
    /// A short code: `invalid_token`, `insufficient_scope`, `invalid_request`, `not_found`,
    /// `conflict`, `temporarily_unavailable`, `server_error`.
    pub error: &'static str,
    #[serde(skip)]
    challenge: Option<String>,
}

impl Problem {
    /// A refusal with `status`, its short `error` code and what was wrong (also for the layers
    /// that answer before a handler: a body too large, a caller over its rate limit).
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            error,
            challenge: None,
        }
    }

    /// 401 with the RFC 6750 §3 challenge.
    fn unauthorized(error: Option<&'static str>, detail: &str) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, error.unwrap_or("invalid_token"), detail);
        p.challenge = Some(match error {
            None => "Bearer realm=\"latchkey-admin\", scope=\"latchkey:admin\"".to_owned(),
            Some(e) => format!("Bearer realm=\"latchkey-admin\", error=\"{e}\", scope=\"latchkey:admin\""),
        });
        if error == Some("invalid_request") {
            p.status = StatusCode::BAD_REQUEST.as_u16();
            p.title = "Bad Request";
        }
        p
    }

    /// 403 `insufficient_scope` (RFC 6750 §3.1).
    fn forbidden(detail: &str) -> Self {
        let mut p = Self::new(StatusCode::FORBIDDEN, "insufficient_scope", detail);
        p.challenge =
            Some("Bearer realm=\"latchkey-admin\", error=\"insufficient_scope\", scope=\"latchkey:admin\"".to_owned());
        p
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "A backing store is unavailable; retry shortly.",
        )
    }

    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "The server failed; the log says why.")
    }

    fn from_store(e: sqlx::Error) -> Self {
        match crate::http::OAuthError::from(e).status {
            StatusCode::SERVICE_UNAVAILABLE => Self::unavailable(),
            _ => Self::internal(),
        }
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "not_found", m),
            AdminError::Invalid(m) => Self::new(StatusCode::BAD_REQUEST, "invalid_request", m),
            AdminError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AdminError::Store(e) => Self::from_store(e),
            AdminError::Internal(e) => {
                crate::metrics::backend_error("internal");
                tracing::error!(error = %format!("{e:#}"), "admin API failure");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let challenge = self.challenge.clone();
        let mut resp = (status, Json(&self)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}

/// A JSON request body, refused as a problem (not axum's plain text) when it is not the JSON the
/// operation takes.
pub struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", "Send application/json."));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "invalid_request", "The body could not be read."))?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            Problem::new(StatusCode::BAD_REQUEST, "invalid_request", format!("The body is not valid: {e}"))
        })
    }
}

/// A JSON body that may be left out (an empty body means the defaults), as for a rotation.
pub struct MaybeBody<T>(T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for MaybeBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return Body::from_request(req, state).await.map(|Body(t)| MaybeBody(t));
        }
        match Bytes::from_request(req, state).await {
            Ok(bytes) if bytes.is_empty() => Ok(MaybeBody(T::default())),
            _ => Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", "Send application/json.")),
        }
    }
}

/// Query parameters, refused as a problem when malformed.
pub struct Params<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Params(q))
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))
    }
}

type Answer<T> = Result<Json<T>, Problem>;

/// An operation's answer as JSON, its refusal as a problem.
fn answer<T>(r: Result<T, AdminError>) -> Answer<T> {
    r.map(Json).map_err(Problem::from)
}

/// 204 No Content once done.
fn done(r: Result<(), AdminError>) -> Result<StatusCode, Problem> {
    r.map(|()| StatusCode::NO_CONTENT).map_err(Problem::from)
}

// ---------------------------------------------------------------------------------------------
// Clients.

/// The registered clients.
#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients",
    responses((status = 200, body = [clients::ClientView]), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_clients(State(state): State<AppState>, admin: Admin) -> Answer<Vec<clients::ClientView>> {
    answer(clients::list(&admin.ops(&state)).await)
}

/// Registers a client; answers its id and (once) its secret.
#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", request_body = clients::NewClient,
    responses((status = 201, body = clients::Created), (status = 400, body = Problem)))]
async fn add_client(
    State(state): State<AppState>,
    admin: Admin,
    Body(new): Body<clients::NewClient>,
) -> Result<(StatusCode, Json<clients::Created>), Problem> {
    answer(clients::add(&admin.ops(&state), new).await).map(|j| (StatusCode::CREATED, j))
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 200, body = clients::ClientView), (status = 404, body = Problem)))]
async fn show_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Answer<clients::ClientView> {
    answer(clients::show(&admin.ops(&state), &id).await)
}

/// Changes a client: each field given replaces what it names.
#[utoipa::path(patch, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    request_body = clients::ClientUpdate,
    responses((status = 200, body = clients::Updated), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn update_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Body(change): Body<clients::ClientUpdate>,
) -> Answer<clients::Updated> {
    answer(clients::update(&admin.ops(&state), &id, change).await)
}

/// Removes a client and revokes everything it holds.
#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    done(clients::remove(&admin.ops(&state), &id).await)
}

/// How long an initial access token works.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewInitialAccessToken {
    /// Seconds (default 3600).
    expires_in: Option<i64>,
}

/// Issues an initial access token for the registration endpoint (RFC 7591 §3): whoever holds it
/// may register clients there until it expires. Shown only now, kept as a hash.
#[utoipa::path(post, path = "/admin/api/v1/initial-access-tokens", tag = "clients",
    request_body = NewInitialAccessToken,
    responses((status = 201, body = clients::InitialAccessToken), (status = 400, body = Problem)))]
async fn issue_initial_access_token(
    State(state): State<AppState>,
    admin: Admin,
    Body(new): Body<NewInitialAccessToken>,
) -> Result<(StatusCode, Json<clients::InitialAccessToken>), Problem> {
    let issued = clients::initial_access_token(&admin.ops(&state), new.expires_in.unwrap_or(3600)).await;
    answer(issued).map(|j| (StatusCode::CREATED, j))
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/roles", tag = "clients", params(("id" = String, Path)),
    responses((status = 200, body = clients::Roles), (status = 404, body = Problem)))]
async fn client_roles(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> Answer<clients::Roles> {
    answer(clients::roles(&admin.ops(&state), &id).await)
}

/// Defines a role of a client.
#[utoipa::path(put, path = "/admin/api/v1/clients/{id}/roles/{role}", tag = "clients",
    params(("id" = String, Path), ("role" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn add_role(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, role)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    done(clients::add_role(&admin.ops(&state), &id, &role).await)
}

/// Removes a role of a client, and takes it from every user who has it.
#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}/roles/{role}", tag = "clients",
    params(("id" = String, Path), ("role" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_role(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, role)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    done(clients::remove_role(&admin.ops(&state), &id, &role).await)
}

// ---------------------------------------------------------------------------------------------
// Users. `{user}` is a username, an email or a user id.

#[utoipa::path(get, path = "/admin/api/v1/users", tag = "users",
    responses((status = 200, body = [users::UserView])))]
async fn list_users(State(state): State<AppState>, admin: Admin) -> Answer<Vec<users::UserView>> {
    answer(users::list(&admin.ops(&state)).await)
}

/// Creates a user.
#[utoipa::path(post, path = "/admin/api/v1/users", tag = "users", request_body = users::NewUser,
    responses((status = 201, body = users::Created), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn add_user(
    State(state): State<AppState>,
    admin: Admin,
    Body(new): Body<users::NewUser>,
) -> Result<(StatusCode, Json<users::Created>), Problem> {
    answer(users::add(&admin.ops(&state), new).await).map(|j| (StatusCode::CREATED, j))
}

#[utoipa::path(get, path = "/admin/api/v1/users/{user}", tag = "users", params(("user" = String, Path)),
    responses((status = 200, body = users::UserView), (status = 404, body = Problem)))]
async fn show_user(State(state): State<AppState>, admin: Admin, Path(user): Path<String>) -> Answer<users::UserView> {
    answer(users::show(&admin.ops(&state), &user).await)
}

/// Removes a user and their credentials, sessions, grants and consents.
#[utoipa::path(delete, path = "/admin/api/v1/users/{user}", tag = "users", params(("user" = String, Path)),
    responses((status = 200, body = users::Created), (status = 404, body = Problem)))]
async fn remove_user(State(state): State<AppState>, admin: Admin, Path(user): Path<String>) -> Answer<users::Created> {
    answer(users::remove(&admin.ops(&state), &user).await)
}

/// A new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// Sets a user's password (policy and history checked); ends their sessions and revokes their
/// grants.
#[utoipa::path(put, path = "/admin/api/v1/users/{user}/password", tag = "users", params(("user" = String, Path)),
    request_body = NewPassword,
    responses((status = 200, body = users::Created), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    Path(user): Path<String>,
    Body(body): Body<NewPassword>,
) -> Answer<users::Created> {
    answer(users::set_password(&admin.ops(&state), &user, body.password).await)
}

/// Disables a user: ends their sessions and revokes their grants.
#[utoipa::path(post, path = "/admin/api/v1/users/{user}/disable", tag = "users", params(("user" = String, Path)),
    responses((status = 200, body = users::Changed), (status = 404, body = Problem)))]
async fn disable_user(State(state): State<AppState>, admin: Admin, Path(user): Path<String>) -> Answer<users::Changed> {
    answer(users::disable(&admin.ops(&state), &user).await)
}

#[utoipa::path(post, path = "/admin/api/v1/users/{user}/enable", tag = "users", params(("user" = String, Path)),
    responses((status = 200, body = users::Changed), (status = 404, body = Problem)))]
async fn enable_user(State(state): State<AppState>, admin: Admin, Path(user): Path<String>) -> Answer<users::Changed> {
    answer(users::enable(&admin.ops(&state), &user).await)
}

/// Removes every second factor and recovery code of a user locked out of them, ends their
/// sessions and revokes their grants.
#[utoipa::path(post, path = "/admin/api/v1/users/{user}/reset-factors", tag = "users", params(("user" = String, Path)),
    responses((status = 200, body = users::FactorsReset), (status = 404, body = Problem)))]
async fn reset_factors(
    State(state): State<AppState>,
    admin: Admin,
    Path(user): Path<String>,
) -> Answer<users::FactorsReset> {
    answer(users::reset_factors(&admin.ops(&state), &user).await)
}

/// Puts a user in a group.
#[utoipa::path(put, path = "/admin/api/v1/users/{user}/groups/{group}", tag = "users",
    params(("user" = String, Path), ("group" = String, Path)),
    responses((status = 200, body = users::Access), (status = 404, body = Problem)))]
async fn add_to_group(
    State(state): State<AppState>,
    admin: Admin,
    Path((user, group)): Path<(String, String)>,
) -> Answer<users::Access> {
    answer(users::add_to_group(&admin.ops(&state), &user, &group).await)
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{user}/groups/{group}", tag = "users",
    params(("user" = String, Path), ("group" = String, Path)),
    responses((status = 200, body = users::Access), (status = 404, body = Problem)))]
async fn remove_from_group(
    State(state): State<AppState>,
    admin: Admin,
    Path((user, group)): Path<(String, String)>,
) -> Answer<users::Access> {
    answer(users::remove_from_group(&admin.ops(&state), &user, &group).await)
}

/// Gives a user one of a client's roles.
#[utoipa::path(put, path = "/admin/api/v1/users/{user}/roles/{client_id}/{role}", tag = "users",
    params(("user" = String, Path), ("client_id" = String, Path), ("role" = String, Path)),
    responses((status = 200, body = users::Access), (status = 404, body = Problem)))]
async fn grant_role(
    State(state): State<AppState>,
    admin: Admin,
    Path((user, client_id, role)): Path<(String, String, String)>,
) -> Answer<users::Access> {
    answer(users::grant_role(&admin.ops(&state), &user, &client_id, &role).await)
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{user}/roles/{client_id}/{role}", tag = "users",
    params(("user" = String, Path), ("client_id" = String, Path), ("role" = String, Path)),
    responses((status = 200, body = users::Access), (status = 404, body = Problem)))]
async fn revoke_role(
    State(state): State<AppState>,
    admin: Admin,
    Path((user, client_id, role)): Path<(String, String, String)>,
) -> Answer<users::Access> {
    answer(users::revoke_role(&admin.ops(&state), &user, &client_id, &role).await)
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// A user's live browser sessions, the most recently used first.
#[utoipa::path(get, path = "/admin/api/v1/users/{user}/sessions", tag = "sessions", params(("user" = String, Path)),
    responses((status = 200, body = [sessions::SessionView]), (status = 404, body = Problem)))]
async fn list_sessions(
    State(state): State<AppState>,
    admin: Admin,
    Path(user): Path<String>,
) -> Answer<Vec<sessions::SessionView>> {
    answer(sessions::list(&admin.ops(&state), &user).await)
}

/// Ends every session of a user and revokes the grants obtained in them.
#[utoipa::path(delete, path = "/admin/api/v1/users/{user}/sessions", tag = "sessions", params(("user" = String, Path)),
    responses((status = 200, body = sessions::Ended), (status = 404, body = Problem)))]
async fn end_sessions(
    State(state): State<AppState>,
    admin: Admin,
    Path(user): Path<String>,
) -> Answer<sessions::Ended> {
    answer(sessions::end_all(&admin.ops(&state), &user).await)
}

/// Ends one session of a user and revokes the grants obtained in it.
#[utoipa::path(delete, path = "/admin/api/v1/users/{user}/sessions/{session}", tag = "sessions",
    params(("user" = String, Path), ("session" = String, Path)),
    responses((status = 200, body = sessions::Ended), (status = 404, body = Problem)))]
async fn end_session(
    State(state): State<AppState>,
    admin: Admin,
    Path((user, session)): Path<(String, String)>,
) -> Answer<sessions::Ended> {
    answer(sessions::end(&admin.ops(&state), &user, &session).await)
}

// ---------------------------------------------------------------------------------------------
// Groups.

#[utoipa::path(get, path = "/admin/api/v1/groups", tag = "groups", responses((status = 200, body = [groups::Group])))]
async fn list_groups(State(state): State<AppState>, admin: Admin) -> Answer<Vec<groups::Group>> {
    answer(groups::list(&admin.ops(&state)).await)
}

/// A group to define.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// 1 to 64 letters, digits and - _ . : /
    name: String,
}

#[utoipa::path(post, path = "/admin/api/v1/groups", tag = "groups", request_body = NewGroup,
    responses((status = 201), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn add_group(
    State(state): State<AppState>,
    admin: Admin,
    Body(g): Body<NewGroup>,
) -> Result<StatusCode, Problem> {
    groups::add(&admin.ops(&state), &g.name).await.map(|()| StatusCode::CREATED).map_err(Problem::from)
}

/// Removes a group and its memberships; refused (409) while a client requires it.
#[utoipa::path(delete, path = "/admin/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_group(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    done(groups::remove(&admin.ops(&state), &name).await)
}

// ---------------------------------------------------------------------------------------------
// Signing keys. A change is picked up by this node at once and by the others within
// `keys::REFRESH`.

#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys", responses((status = 200, body = [keys::Key])))]
async fn list_keys(State(state): State<AppState>, admin: Admin) -> Answer<Vec<keys::Key>> {
    answer(keys::list(&admin.ops(&state)).await)
}

/// Re-reads the keys on this node after a change, so its JWKS and signing follow at once.
async fn refreshed<T>(state: &AppState, r: Answer<T>) -> Answer<T> {
    if r.is_ok()
        && let Err(e) = state.keys.refresh(state.now()).await
    {
        tracing::warn!(error = %format!("{e:#}"), "keys changed; this node reads them on its next refresh");
    }
    r
}

/// next → active, active → retired, and a new next key, for one algorithm or every one.
#[utoipa::path(post, path = "/admin/api/v1/keys/rotate", tag = "keys",
    request_body(content = keys::Rotate, description = "Optional: without a body every algorithm rotates"),
    responses((status = 200, body = [keys::Rotated]), (status = 409, body = Problem)))]
async fn rotate_keys(
    State(state): State<AppState>,
    admin: Admin,
    MaybeBody(r): MaybeBody<keys::Rotate>,
) -> Answer<Vec<keys::Rotated>> {
    let result = answer(keys::rotate(&admin.ops(&state), r).await);
    refreshed(&state, result).await
}

/// Imports a private key (PEM or JWK) as the next key of its algorithm.
#[utoipa::path(post, path = "/admin/api/v1/keys", tag = "keys", request_body = keys::Import,
    responses((status = 201, body = keys::KeyStatus), (status = 400, body = Problem)))]
async fn import_key(
    State(state): State<AppState>,
    admin: Admin,
    Body(i): Body<keys::Import>,
) -> Result<(StatusCode, Json<keys::KeyStatus>), Problem> {
    let result = answer(keys::import(&admin.ops(&state), i.key.as_bytes(), i.alg.as_deref()).await);
    refreshed(&state, result).await.map(|j| (StatusCode::CREATED, j))
}

/// How to export a key.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// `jwk` (default) or `pem`.
    format: Option<String>,
}

/// A key's public part (never its private part).
#[utoipa::path(get, path = "/admin/api/v1/keys/{kid}", tag = "keys", params(("kid" = String, Path), ExportFormat),
    responses((status = 200, body = keys::Exported), (status = 404, body = Problem)))]
async fn export_key(
    State(state): State<AppState>,
    admin: Admin,
    Path(kid): Path<String>,
    Params(f): Params<ExportFormat>,
) -> Answer<keys::Exported> {
    answer(keys::export(&admin.ops(&state), &kid, f.format.as_deref().unwrap_or("jwk")).await)
}

/// Whether to act even if clients may not have fetched the next key yet.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Force {
    #[serde(default)]
    force: bool,
}

/// Retires a key: an active key through a rotation of its algorithm, a next key at once.
#[utoipa::path(post, path = "/admin/api/v1/keys/{kid}/retire", tag = "keys", params(("kid" = String, Path)),
    request_body(content = Force, description = "Optional"),
    responses((status = 200, body = keys::KeyStatus), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn retire_key(
    State(state): State<AppState>,
    admin: Admin,
    Path(kid): Path<String>,
    MaybeBody(f): MaybeBody<Force>,
) -> Answer<keys::KeyStatus> {
    let result = answer(keys::retire(&admin.ops(&state), &kid, f.force).await);
    refreshed(&state, result).await
}

/// Emergency: unpublishes a key at once; tokens it signed stop verifying.
#[utoipa::path(post, path = "/admin/api/v1/keys/{kid}/revoke", tag = "keys", params(("kid" = String, Path)),
    responses((status = 200, body = keys::KeyStatus), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn revoke_key(State(state): State<AppState>, admin: Admin, Path(kid): Path<String>) -> Answer<keys::KeyStatus> {
    let result = answer(keys::revoke(&admin.ops(&state), &kid).await);
    refreshed(&state, result).await
}

// ---------------------------------------------------------------------------------------------
// Audit.

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/api/v1/audit", tag = "audit", params(audit::Filter),
    responses((status = 200, body = [audit::Event]), (status = 400, body = Problem)))]
async fn audit_events(
    State(state): State<AppState>,
    admin: Admin,
    Params(filter): Params<audit::Filter>,
) -> Answer<Vec<audit::Event>> {
    answer(audit::events(&admin.ops(&state), filter).await)
}
