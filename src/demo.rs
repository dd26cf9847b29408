//! `latchkey serve --demo`: a demo user and a demo public client, and a callback page that shows
//! what the client received, so a newcomer can try a sign-in in a browser at once.

use crate::crypto::{b64url, sha256};
use crate::domain::{AuthMethod, Client, GrantType, User};
use crate::pages;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use std::collections::HashMap;

pub const USERNAME: &str = "demo";
pub const PASSWORD: &str = "latchkey-demo";
pub const CLIENT_ID: &str = "demo";
/// A fixed PKCE verifier: the demo's printed URL must work when pasted, and the demo client is
/// public, so nothing secret rides on it.
const VERIFIER: &str = "latchkey-demo-pkce-verifier-not-for-production-use";

fn callback(state: &AppState) -> String {
    state.url("/demo/callback")
}

/// Creates the demo user (if absent) and (re)creates the demo client for the current issuer.
/// Returns what to print.
pub async fn ensure(state: &AppState) -> anyhow::Result<String> {
    let now = state.now();
    if state.store.user_by_login(USERNAME).await?.is_none() {
        let hash = state.passwords.hash(PASSWORD.into()).await?;
        let claims = json!({
            "name": "Demo User", "given_name": "Demo", "family_name": "User", "email_verified": true,
            "locale": "en", "zoneinfo": "Europe/London"
        });
        let user = User {
            id: crate::crypto::random_id(),
            username: USERNAME.into(),
            email: "demo@example.com".into(),
            password_hash: Some(hash),
            claims: claims.as_object().cloned().unwrap_or_default(),
            disabled: false,
            status: Default::default(),
            created_at: now,
            updated_at: now,
        };
        state.store.insert_user(&user).await?;
    }
    state.store.remove_client(CLIENT_ID, now).await?;
    let client = Client {
        id: CLIENT_ID.into(),
        name: "Latchkey demo app".into(),
        secret_hash: None,
        secret_sealed: None,
        auth_method: AuthMethod::None,
        redirect_uris: vec![callback(state)],
        post_logout_redirect_uris: vec![state.url("/")],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Vec::new(),
        first_party: false,
        min_acr: 1,
        resource_server: false,
        require_pkce: false,
        access_token_format: Default::default(),
        created_at: now,
        id_token_signed_response_alg: crate::keys::Alg::DEFAULT,
        keys: Default::default(),
        security: Default::default(),
        metadata: Default::default(),
    };
    state.store.insert_client(&client).await?;
    let mut url = url::Url::parse(&state.url("/authorize"))?;
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("redirect_uri", &callback(state))
        .append_pair("state", "demo-state")
        .append_pair("nonce", "demo-nonce")
        .append_pair("code_challenge", &b64url(&sha256(VERIFIER.as_bytes())))
        .append_pair("code_challenge_method", "S256");
    Ok(format!(
        "\nDemo mode. Open this address in a browser and sign in as '{USERNAME}' with password '{PASSWORD}':\n\n  {url}\n"
    ))
}

#[derive(serde::Serialize)]
struct CallbackPage<'a> {
    params: Vec<(&'a str, &'a str)>,
    curl: Option<String>,
}

crate::pages::template!(CallbackPage<'a>, "demo_callback.html");

pub fn router(state: AppState) -> Router {
    Router::new().route("/demo/callback", get(show)).with_state(state)
}

async fn show(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let curl = q.get("code").map(|code| {
        format!(
            "curl -s {token} -d grant_type=authorization_code -d client_id={CLIENT_ID} -d code={code} \\\n  -d redirect_uri={cb} -d code_verifier={VERIFIER}",
            token = state.url("/token"),
            cb = callback(&state),
        )
    });
    let mut params: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    params.sort();
    pages::render(StatusCode::OK, &CallbackPage { params, curl })
}
