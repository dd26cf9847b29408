//! Authorization codes (RFC 6749 §4.1.2): 256-bit random, single use, short-lived, kept only in
//! the ephemeral store under their hash, and bound to the client, redirect_uri, PKCE challenge,
//! nonce and the grant id the exchange will create — so a reused code can revoke what it issued.

use super::request::AuthRequest;
use crate::crypto::{hash_secret, ordered_id, random_token};
use crate::domain::Session;
use crate::ephemeral::Taken;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The id the grant will have once the code is redeemed.
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub claims: Option<String>,
    pub user_id: String,
    pub session_id: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub issued_at: i64,
    /// The DPoP key the code is bound to (RFC 9449 §10.1).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// The resource server the tokens are for (RFC 8707).
    #[serde(default)]
    pub resource: Option<String>,
}

fn key(code: &str) -> String {
    format!("code:{}", hash_secret(code))
}

/// Issues a code for `req` on behalf of the session's user.
pub async fn issue(
    state: &AppState,
    req: &AuthRequest,
    session: &Session,
) -> Result<String, crate::ephemeral::Unavailable> {
    let code = random_token();
    let grant = CodeGrant {
        grant_id: ordered_id(state.clock.now_ms()),
        client_id: req.client_id.clone(),
        redirect_uri: req.target.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        scopes: req.scopes.clone(),
        claims: req.claims.clone(),
        user_id: session.user_id.clone(),
        session_id: session.id.clone(),
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: session.amr.clone(),
        issued_at: state.now(),
        dpop_jkt: req.dpop_jkt.clone(),
        resource: req.resource.clone(),
    };
    let ttl = Duration::from_secs(state.settings.tokens.code_ttl as u64);
    let json = serde_json::to_string(&grant).expect("a code grant serialises");
    state.ephemeral.put(&key(&code), &json, ttl).await?;
    Ok(code)
}

pub enum Redeemed {
    Fresh(CodeGrant),
    /// Used before: what the first redemption issued must be revoked.
    Reused(CodeGrant),
    Unknown,
}

/// Takes the code atomically: exactly one caller ever gets `Fresh`.
pub async fn redeem(state: &AppState, code: &str) -> Result<Redeemed, crate::ephemeral::Unavailable> {
    let parse = |s: String| serde_json::from_str::<CodeGrant>(&s).ok();
    Ok(match state.ephemeral.take(&key(code)).await? {
        Taken::Fresh(s) => parse(s).map_or(Redeemed::Unknown, Redeemed::Fresh),
        Taken::Consumed(s) => parse(s).map_or(Redeemed::Unknown, Redeemed::Reused),
        Taken::Missing => Redeemed::Unknown,
    })
}

fn reuse_key(grant_id: &str) -> String {
    format!("code-reused:{grant_id}")
}

/// Notes that the code of `grant_id` was presented again. A redemption racing on another node
/// may not have written its grant yet, so revoking it now could miss; it checks this note after
/// writing ([`reuse_seen`]) and revokes its own grant.
pub async fn mark_reused(state: &AppState, grant_id: &str) -> Result<(), crate::ephemeral::Unavailable> {
    let ttl = Duration::from_secs(state.settings.tokens.code_ttl as u64);
    state.ephemeral.put(&reuse_key(grant_id), "1", ttl).await
}

pub async fn reuse_seen(state: &AppState, grant_id: &str) -> Result<bool, crate::ephemeral::Unavailable> {
    Ok(state.ephemeral.get(&reuse_key(grant_id)).await?.is_some())
}
