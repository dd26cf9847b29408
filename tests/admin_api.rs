//! The admin REST API (`/admin/api/v1`): each resource driven over HTTP with an access token a
//! client obtained for itself (RFC 6749 §4.4) with the `latchkey:admin` scope; refusals as
//! RFC 6750 §3 challenges and RFC 9457 problem documents; the OpenAPI 3.1 document parsed
//! strictly and checked against the routes the server really answers.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const API: &str = "/admin/api/v1";

/// A client holding the admin scope, and a token it obtained for itself.
fn admin_client(server: &Server) -> TestClient {
    server.add_client("operator", &["--grant-type", "client_credentials", "--scope", "latchkey:admin"])
}

async fn token_for(server: &Server, client: &TestClient, scope: Option<&str>) -> String {
    let mut p = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        p.push(("scope", s));
    }
    let r = server.token(&client.auth(), &p).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// One call: `body` is sent as JSON when given.
async fn call(server: &Server, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Resp {
    let mut req = server.request(method, &format!("{API}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b.to_string());
    }
    server.send(req).await
}

/// A refusal is a problem document with its code.
fn assert_problem(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.media_type(), "application/problem+json", "{r:?}");
    let p = r.json();
    assert_eq!(p["status"], status, "{p}");
    assert_eq!(p["error"], error, "{p}");
    assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
}

#[tokio::test]
async fn no_token_is_401_and_a_token_without_the_admin_scope_is_403() {
    let server = Server::start();
    // RFC 6750 §3.1: no credentials, a bare challenge.
    let r = call(&server, None, Method::GET, "/clients", None).await;
    assert_problem(&r, 401, "invalid_token");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer ")), "{r:?}");
    let r = call(&server, Some("not-a-token"), Method::GET, "/users", None).await;
    assert_problem(&r, 401, "invalid_token");
    assert!(r.header("www-authenticate").is_some_and(|h| h.contains("error=\"invalid_token\"")), "{r:?}");

    // A service client without the scope: a valid token, the wrong scope.
    let service = server.add_client("service", &["--grant-type", "client_credentials", "--scope", "reports:read"]);
    let token = token_for(&server, &service, None).await;
    let r = call(&server, Some(&token), Method::GET, "/clients", None).await;
    assert_problem(&r, 403, "insufficient_scope");
    assert!(r.header("www-authenticate").is_some_and(|h| h.contains("error=\"insufficient_scope\"")), "{r:?}");

    // The admin client asking for less than it holds gets a token without the scope.
    let admin = admin_client(&server);
    let r = server.token(&admin.auth(), &[("grant_type", "client_credentials"), ("scope", "reports:read")]).await;
    assert_eq!(r.json()["error"], "invalid_scope", "{r:?}");
    let token = token_for(&server, &admin, None).await;
    assert_eq!(call(&server, Some(&token), Method::GET, "/clients", None).await.status, 200);

    // A user's access token is refused even when the user is signed in to an admin client.
    server.add_alice();
    let rp = server.first_party_client();
    let user_token = server.code_flow(&server.browser(), &rp, "openid").await.access_token;
    let r = call(&server, Some(&user_token), Method::GET, "/clients", None).await;
    assert_problem(&r, 403, "insufficient_scope");

    // Removing the admin client (here through the API itself) stops its tokens at once.
    let r = call(&server, Some(&token), Method::DELETE, &format!("/clients/{}", admin.id), None).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = call(&server, Some(&token), Method::GET, "/clients", None).await;
    assert_problem(&r, 403, "insufficient_scope");
}

/// The admin API is under the per-address rate limit like the protocol endpoints: a caller
/// over it gets 429 as a problem document, with a `Retry-After` of at least a second.
#[tokio::test]
async fn callers_over_the_rate_limit_get_429_with_retry_after() {
    let server = Server::start_with(&[("LATCHKEY_RATE_LIMIT_PER_SECOND", "1"), ("LATCHKEY_RATE_LIMIT_BURST", "2")]);
    // Sent at once, and many more than the burst: the allowance cannot refill as fast.
    let answers = futures::future::join_all((0..12).map(|_| call(&server, None, Method::GET, "/users", None))).await;
    let limited: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(!limited.is_empty(), "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in limited {
        assert_problem(r, 429, "temporarily_unavailable");
        let wait = r.header("retry-after").and_then(|v| v.parse::<u64>().ok());
        assert!(wait.is_some_and(|w| w >= 1), "{r:?}");
    }
    assert!(answers.iter().all(|r| matches!(r.status, 401 | 429)), "the others answered as usual");
}

#[tokio::test]
async fn clients_and_their_roles() {
    let server = Server::start();
    let admin = admin_client(&server);
    let token = token_for(&server, &admin, Some("latchkey:admin")).await;
    let t = Some(token.as_str());

    // Bad input: problems, never 500.
    let r =
        call(&server, t, Method::POST, "/clients", Some(json!({ "name": "x", "redirect_uris": ["not a uri"] }))).await;
    assert_problem(&r, 400, "invalid_request");
    let r = call(&server, t, Method::POST, "/clients", Some(json!({ "name": "x", "colour": "blue" }))).await;
    assert_problem(&r, 400, "invalid_request");
    let r = server.send(server.request(Method::POST, &format!("{API}/clients")).bearer_auth(&token).body("{")).await;
    assert_problem(&r, 415, "invalid_request");

    let r = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(json!({
            "name": "reports",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "client_credentials"],
            "scopes": ["reports:read"],
        })),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let created = r.json();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    // The secret answered once works at the token endpoint.
    let r = server.token(&Auth::Basic(id.clone(), secret), &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status, 200, "{r:?}");

    let list = call(&server, t, Method::GET, "/clients", None).await.json();
    assert!(list.as_array().unwrap().iter().any(|c| c["id"] == id.as_str()), "{list}");
    let shown = call(&server, t, Method::GET, &format!("/clients/{id}"), None).await;
    assert_eq!(shown.status, 200, "{shown:?}");
    let shown = shown.json();
    assert_eq!(shown["name"], "reports");
    assert!(shown.get("secret_hash").is_none() && shown.get("client_secret").is_none(), "{shown}");
    // One implementation: the CLI shows the same client the same way.
    assert_eq!(server.cli(&["clients", "show", &id, "--json"]), shown);

    let r = call(
        &server,
        t,
        Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({ "web_origins": ["https://app.example.com"], "resource_server": true })),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let shown = call(&server, t, Method::GET, &format!("/clients/{id}"), None).await.json();
    assert_eq!(shown["web_origins"], json!(["https://app.example.com"]));
    assert_eq!(shown["resource_server"], true);
    let r = call(&server, t, Method::PATCH, &format!("/clients/{id}"), Some(json!({}))).await;
    assert_problem(&r, 400, "invalid_request");

    // Roles.
    assert_eq!(call(&server, t, Method::PUT, &format!("/clients/{id}/roles/viewer"), None).await.status, 204);
    let r = call(&server, t, Method::PUT, &format!("/clients/{id}/roles/viewer"), None).await;
    assert_problem(&r, 409, "conflict");
    let roles = call(&server, t, Method::GET, &format!("/clients/{id}/roles"), None).await.json();
    assert_eq!(roles["roles"], json!(["viewer"]));
    assert_eq!(call(&server, t, Method::DELETE, &format!("/clients/{id}/roles/viewer"), None).await.status, 204);

    assert_eq!(call(&server, t, Method::DELETE, &format!("/clients/{id}"), None).await.status, 204);
    assert_problem(&call(&server, t, Method::GET, &format!("/clients/{id}"), None).await, 404, "not_found");
    assert_problem(&call(&server, t, Method::DELETE, &format!("/clients/{id}"), None).await, 404, "not_found");

    // Every change is in the audit log, naming the admin client that made it.
    let events = call(&server, t, Method::GET, "/audit?kind=admin.client&limit=50", None).await.json();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["admin.client_added", "admin.client_updated", "admin.client_role_added", "admin.client_removed"] {
        let e = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind && e["client_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{kind}: {kinds:?}"));
        assert_eq!(e["detail"]["by"], "api", "{e}");
        assert_eq!(e["detail"]["admin_client"], admin.id.as_str(), "{e}");
    }
}

#[tokio::test]
async fn high_security_options_logout_uris_and_initial_access_tokens_as_the_cli_sets_them() {
    let server = Server::start();
    let admin = admin_client(&server);
    let t = token_for(&server, &admin, Some("latchkey:admin")).await;
    let t = Some(t.as_str());

    // The FAPI 2.0 profile's registration rules hold here as on the command line.
    let fapi = json!({ "name": "bank", "redirect_uris": [CALLBACK], "profile": "fapi2" });
    let r = call(&server, t, Method::POST, "/clients", Some(fapi)).await;
    assert_problem(&r, 400, "invalid_request");
    assert!(r.json()["detail"].as_str().unwrap().contains("private_key_jwt"), "{r:?}");
    let r = call(&server, t, Method::POST, "/clients", Some(json!({ "name": "x", "profile": "fapi9" }))).await;
    assert_problem(&r, 400, "invalid_request");
    let plain_logout =
        json!({ "name": "x", "redirect_uris": [CALLBACK], "backchannel_logout_uri": "http://rp.example.com/bc" });
    assert_problem(&call(&server, t, Method::POST, "/clients", Some(plain_logout)).await, 400, "invalid_request");
    // A public client cannot exchange tokens (NewClient::check, shared with registration).
    let public = json!({ "name": "x", "redirect_uris": [CALLBACK], "public": true, "grant_types": ["authorization_code", "token_exchange"] });
    assert_problem(&call(&server, t, Method::POST, "/clients", Some(public)).await, 400, "invalid_request");

    let body = json!({
        "name": "api gateway",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "token_exchange"],
        "require_pushed_authorization_requests": true,
        "dpop_bound_access_tokens": true,
        "token_exchange_from": ["*"],
        "backchannel_logout_uri": "https://rp.example.com/backchannel",
        "frontchannel_logout_uri": "https://rp.example.com/frontchannel",
    });
    let r = call(&server, t, Method::POST, "/clients", Some(body)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.json()["client_id"].as_str().unwrap().to_owned();
    let shown = call(&server, t, Method::GET, &format!("/clients/{id}"), None).await.json();
    assert_eq!(shown["require_pushed_authorization_requests"], true, "{shown}");
    assert_eq!(shown["dpop_bound_access_tokens"], true, "{shown}");
    assert_eq!(shown["token_exchange_from"], json!(["*"]), "{shown}");
    assert_eq!(shown["backchannel_logout_uri"], "https://rp.example.com/backchannel", "{shown}");
    assert_eq!(shown["backchannel_logout_session_required"], true, "{shown}");
    assert_eq!(shown["frontchannel_logout_uri"], "https://rp.example.com/frontchannel", "{shown}");
    assert_eq!(server.cli(&["clients", "show", &id, "--json"]), shown);

    let change = json!({ "dpop_bound_access_tokens": false, "token_exchange_from": ["none"] });
    let r = call(&server, t, Method::PATCH, &format!("/clients/{id}"), Some(change)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["dpop_bound_access_tokens"], false, "{r:?}");
    assert_eq!(r.json()["token_exchange_from"], json!([]), "{r:?}");
    let updated = server.cli(&["clients", "update", &id, "--require-par", "false", "--json"]);
    assert_eq!(updated["require_pushed_authorization_requests"], false, "{updated}");
    let shown = call(&server, t, Method::GET, &format!("/clients/{id}"), None).await.json();
    assert_eq!(
        (&shown["require_pushed_authorization_requests"], &shown["dpop_bound_access_tokens"]),
        (&json!(false), &json!(false)),
        "{shown}"
    );

    // An initial access token for the registration endpoint (RFC 7591 §3), shown once.
    let r = call(&server, t, Method::POST, "/initial-access-tokens", Some(json!({ "expires_in": 0 }))).await;
    assert_problem(&r, 400, "invalid_request");
    let r = call(&server, t, Method::POST, "/initial-access-tokens", Some(json!({ "expires_in": 600 }))).await;
    assert_eq!(r.status, 201, "{r:?}");
    let issued = r.json();
    let token = issued["initial_access_token"].as_str().unwrap().to_owned();
    assert!(issued["expires_at"].as_i64().is_some(), "{issued}");
    let endpoint =
        server.discovery().await["registration_endpoint"].as_str().expect("registration_endpoint").to_owned();
    let path = endpoint.strip_prefix(server.issuer.as_str()).unwrap_or(&endpoint).to_owned();
    let registration = json!({ "redirect_uris": [CALLBACK], "client_name": "registered" });
    let register = |bearer: String| {
        server
            .request(Method::POST, &path)
            .header("Content-Type", "application/json")
            .bearer_auth(bearer)
            .body(registration.to_string())
    };
    assert_eq!(server.send(register(token)).await.status, 201);
    assert_eq!(server.send(register("not-issued".into())).await.status, 401);
    let events = call(&server, t, Method::GET, "/audit?kind=admin.initial_access_token", None).await.json();
    assert_eq!(events[0]["detail"]["admin_client"], admin.id.as_str(), "{events}");
}

#[tokio::test]
async fn users_groups_and_sessions() {
    let server = Server::start();
    let admin = admin_client(&server);
    let t = token_for(&server, &admin, None).await;
    let t = Some(t.as_str());

    let weak = json!({ "username": USER, "email": "alice@example.com", "password": "short" });
    assert_problem(&call(&server, t, Method::POST, "/users", Some(weak)).await, 400, "invalid_request");
    let alice = json!({
        "username": USER, "email": "alice@example.com", "password": PASSWORD, "claims": { "given_name": "Alice" },
    });
    let r = call(&server, t, Method::POST, "/users", Some(alice.clone())).await;
    assert_eq!(r.status, 201, "{r:?}");
    let user_id = r.json()["id"].as_str().unwrap().to_owned();
    assert_problem(&call(&server, t, Method::POST, "/users", Some(alice)).await, 409, "conflict");
    let users = call(&server, t, Method::GET, "/users", None).await.json();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    assert!(users[0].get("password_hash").is_none(), "{users}");

    // Groups and memberships.
    assert_eq!(call(&server, t, Method::POST, "/groups", Some(json!({ "name": "staff" }))).await.status, 201);
    assert_problem(&call(&server, t, Method::POST, "/groups", Some(json!({ "name": "staff" }))).await, 409, "conflict");
    assert_problem(
        &call(&server, t, Method::POST, "/groups", Some(json!({ "name": "a b" }))).await,
        400,
        "invalid_request",
    );
    let r = call(&server, t, Method::PUT, "/users/alice/groups/staff", None).await;
    assert_eq!(r.json()["changed"], true, "{r:?}");
    let shown = call(&server, t, Method::GET, &format!("/users/{user_id}"), None).await.json();
    assert_eq!(shown["groups"], json!(["staff"]), "{shown}");
    assert_eq!(shown["claims"]["given_name"], "Alice", "{shown}");
    let groups = call(&server, t, Method::GET, "/groups", None).await.json();
    assert_eq!(groups[0]["members"], 1, "{groups}");

    // A user's roles at a client.
    let rp = server.first_party_client();
    server.cli(&["clients", "roles", "add", &rp.id, "editor", "--json"]);
    let r = call(&server, t, Method::PUT, &format!("/users/alice/roles/{}/editor", rp.id), None).await;
    assert_eq!(r.json()["changed"], true, "{r:?}");
    let r = call(&server, t, Method::PUT, &format!("/users/alice/roles/{}/owner", rp.id), None).await;
    assert_problem(&r, 404, "not_found");
    assert_eq!(
        call(&server, t, Method::DELETE, &format!("/users/alice/roles/{}/editor", rp.id), None).await.status,
        200
    );

    // Sessions: the user the API created signs in; the operator sees and ends the session.
    let tokens = server.code_flow(&server.browser(), &rp, "openid offline_access").await;
    let sessions = call(&server, t, Method::GET, "/users/alice/sessions", None).await.json();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions[0]["clients"], json!([rp.id]), "{sessions}");
    let sid = sessions[0]["id"].as_str().unwrap();
    assert_problem(&call(&server, t, Method::DELETE, "/users/alice/sessions/nope", None).await, 404, "not_found");
    let r = call(&server, t, Method::DELETE, &format!("/users/alice/sessions/{sid}"), None).await;
    assert_eq!(r.json()["ended"], json!([sid]), "{r:?}");
    assert_eq!(server.refresh(&rp, tokens.refresh_token()).await.json()["error"], "invalid_grant");
    assert_eq!(call(&server, t, Method::GET, "/users/alice/sessions", None).await.json(), json!([]));
    server.code_flow(&server.browser(), &rp, "openid").await;
    let r = call(&server, t, Method::DELETE, "/users/alice/sessions", None).await;
    assert_eq!(r.json()["ended"].as_array().unwrap().len(), 1, "{r:?}");

    // Password, disable, enable, factors.
    let r = call(&server, t, Method::PUT, "/users/alice/password", Some(json!({ "password": PASSWORD }))).await;
    assert_problem(&r, 400, "invalid_request"); // the current one is in the history
    let r = call(
        &server,
        t,
        Method::PUT,
        "/users/alice/password",
        Some(json!({ "password": "a whole new passphrase 42" })),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(call(&server, t, Method::POST, "/users/alice/disable", None).await.json()["disabled"], true);
    assert_eq!(call(&server, t, Method::POST, "/users/alice/enable", None).await.json()["disabled"], false);
    assert_eq!(call(&server, t, Method::POST, "/users/alice/reset-factors", None).await.json()["factors_removed"], 0);

    assert_eq!(call(&server, t, Method::DELETE, "/users/alice/groups/staff", None).await.status, 200);
    assert_eq!(call(&server, t, Method::DELETE, "/groups/staff", None).await.status, 204);
    assert_problem(&call(&server, t, Method::DELETE, "/groups/staff", None).await, 404, "not_found");
    assert_eq!(call(&server, t, Method::DELETE, "/users/alice", None).await.status, 200);
    assert_problem(&call(&server, t, Method::GET, "/users/alice", None).await, 404, "not_found");

    // The audit log, filtered as the CLI filters it.
    let events = call(&server, t, Method::GET, &format!("/audit?user={user_id}&kind=admin."), None).await.json();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "admin.user_added",
        "admin.group_member_added",
        "admin.role_granted",
        "admin.session_ended",
        "admin.sessions_ended",
        "admin.password_set",
        "admin.user_disabled",
        "admin.user_enabled",
        "admin.factors_reset",
        "admin.user_removed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_problem(&call(&server, t, Method::GET, "/audit?since=yesterday", None).await, 400, "invalid_request");
    assert_problem(&call(&server, t, Method::GET, "/audit?limit=many", None).await, 400, "invalid_request");
}

#[tokio::test]
async fn signing_keys_rotate_export_and_revoke() {
    let server = Server::start();
    let admin = admin_client(&server);
    let old_token = token_for(&server, &admin, None).await;
    let t = Some(old_token.as_str());

    let keys = call(&server, t, Method::GET, "/keys", None).await.json();
    let rs = |keys: &Value, state: &str| {
        keys.as_array().unwrap().iter().find(|k| k["alg"] == "RS256" && k["state"] == state).map(|k| k["kid"].clone())
    };
    let (active, next) = (rs(&keys, "active").unwrap(), rs(&keys, "next").unwrap());
    assert!(keys[0].get("private_enc").is_none(), "{keys}");

    let pem =
        call(&server, t, Method::GET, &format!("/keys/{}?format=pem", active.as_str().unwrap()), None).await.json();
    assert!(pem["key"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let jwk = call(&server, t, Method::GET, &format!("/keys/{}", active.as_str().unwrap()), None).await.json();
    assert_eq!(jwk["key"]["kid"], active, "{jwk}");
    assert!(jwk["key"].get("d").is_none(), "only the public part: {jwk}");
    assert_problem(&call(&server, t, Method::GET, "/keys/nope", None).await, 404, "not_found");
    // Without a body a rotation turns every algorithm (refused here: the next keys are new).
    assert_problem(&call(&server, t, Method::POST, "/keys/rotate", None).await, 409, "conflict");

    // A next key younger than clients' JWKS caches is refused unless forced.
    let r = call(&server, t, Method::POST, "/keys/rotate", Some(json!({ "alg": "RS256" }))).await;
    assert_problem(&r, 409, "conflict");
    let r = call(&server, t, Method::POST, "/keys/rotate", Some(json!({ "alg": "RS256", "force": true }))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report[0]["active"], next, "{report}");
    assert_eq!(report[0]["retired"], active, "{report}");

    // Tokens are signed with the new key at once on this node; the old token still verifies
    // (its key is retired, published) until the old key is revoked.
    let new_token = token_for(&server, &admin, None).await;
    assert_eq!(jwt_header(&new_token)["kid"], next);
    assert_eq!(call(&server, t, Method::GET, "/keys", None).await.status, 200);
    let r = call(&server, Some(&new_token), Method::POST, &format!("/keys/{}/revoke", active.as_str().unwrap()), None)
        .await;
    assert_eq!(r.json()["state"], "revoked", "{r:?}");
    assert_problem(&call(&server, t, Method::GET, "/keys", None).await, 401, "invalid_token");
    let keys = call(&server, Some(&new_token), Method::GET, "/keys", None).await.json();
    assert_eq!(rs(&keys, "revoked"), Some(active));
    let audit = call(&server, Some(&new_token), Method::GET, "/audit?kind=key.&limit=20", None).await.json();
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["kind"] == "key.revoked" && e["detail"]["by"] == "api"),
        "{audit}"
    );
}

/// Every `$ref` in the document points at something in it.
fn dangling_refs(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, doc: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let found = r.strip_prefix('#').and_then(|p| doc.pointer(p)).is_some();
                    if !found {
                        out.push(r.clone());
                    }
                }
                m.values().for_each(|v| walk(v, doc, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, doc, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, doc, &mut out);
    out
}

/// Parses the document strictly as OpenAPI 3.1 and resolves its references.
fn validate(text: &str) -> Result<(), String> {
    let spec = oas3::from_json(text).map_err(|e| format!("not an OpenAPI document: {e}"))?;
    let version = spec.validate_version().map_err(|e| format!("version: {e}"))?;
    if (version.major, version.minor) != (3, 1) {
        return Err(format!("OpenAPI {version}, not 3.1"));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let dangling = dangling_refs(&doc);
    if !dangling.is_empty() {
        return Err(format!("references to nothing: {dangling:?}"));
    }
    for (path, item) in spec.paths.iter().flatten() {
        for (method, op) in item.methods() {
            if op.responses.as_ref().is_none_or(|r| r.is_empty()) {
                return Err(format!("{method} {path}: no responses"));
            }
            for p in &op.parameters {
                p.resolve(&spec).map_err(|e| format!("{method} {path}: parameter: {e}"))?;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_describes_the_routes_served() {
    let server = Server::start();
    let r = server.get("/admin/api/openapi.json").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.media_type(), "application/json");
    validate(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body));
    let doc = r.json();
    assert_eq!(doc["servers"][0]["url"], server.issuer.as_str());
    let flow = &doc["components"]["securitySchemes"]["admin"]["flows"]["clientCredentials"];
    assert_eq!(flow["tokenUrl"], format!("{}/token", server.issuer), "{doc}");

    // The validator is real: broken copies fail it.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(validate(&broken.to_string()).is_err(), "a document without info passed");
    let mut broken = doc.clone();
    broken["openapi"] = json!("2.0");
    assert!(validate(&broken.to_string()).is_err(), "a Swagger 2.0 version passed");
    let mut broken = doc.clone();
    let first = broken["paths"].as_object().unwrap().keys().next().unwrap().clone();
    broken["paths"][&first]["get"]["responses"]["200"] = json!({ "$ref": "#/components/responses/Nothing" });
    assert!(validate(&broken.to_string()).is_err(), "a dangling $ref passed");

    // Every operation described is one the server routes: without a token it answers 401,
    // never 404 or 405; and each resource of the API is described.
    let mut described = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with(API), "{path}");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete =
                path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
            let r = server.send(server.request(m, &concrete)).await;
            assert_eq!(r.status, 401, "{method} {path}: {r:?}");
            described += 1;
        }
    }
    assert!(described >= 30, "{described} operations");
    for resource in ["/clients", "/users", "/groups", "/keys", "/audit", "/users/{user}/sessions"] {
        assert!(doc["paths"].get(format!("{API}{resource}")).is_some(), "{resource} is not described");
    }
}
