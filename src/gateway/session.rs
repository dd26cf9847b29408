//! Gateway sessions: what the gateway cookie names. Each lives in the ephemeral store (on
//! Redis, shared by every node) under the hash of its cookie token, with an absolute lifetime
//! (`gateway.session_ttl`) and an idle timeout (`gateway.idle_timeout`, use noted at most once
//! a minute), and is listed per user (`gw-of:{user}`) so that sign-out ends them on every node
//! at once and the account pages can show them.
//!
//! A gateway session is bound to the provider session it was made from (`sid`): when that one
//! ends — logout, `users disable`, a password reset, "sign out" on the sessions page — the
//! gateway session ends with it, and the account must still be active.
//!
//! **The node's cache.** A check answered within `gateway.cache_secs` (default 1 s) of the
//! last verification of the same session on this node costs no store round trip; beyond it, a
//! check reads the ephemeral store once and the durable store's session, user and groups once.
//! So a logout made on one node reaches the others within `cache_secs`. When the stores cannot
//! be reached the check fails closed (503), unless `gateway.outage_grace_secs` lets a session
//! verified within that many seconds keep passing from the cache.

use crate::crypto::{hash_secret, random_token};
use crate::domain::session::TOUCH_EVERY;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Gateway sessions one user may hold; a sign-in past it ends their oldest.
const PER_USER: usize = 64;
/// Sessions this node's cache holds before it drops what it may no longer use.
const CACHE_CAP: usize = 100_000;

/// One gateway session, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GatewaySession {
    /// The provider session it was made from.
    pub sid: String,
    pub user_id: String,
    pub acr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The device fingerprint (`gateway::device`), a keyed hash: of the browser and the
    /// address nothing else is kept (the account pages show those of the provider session).
    pub device: String,
    /// The host it was made for.
    pub host: String,
}

/// Who a check lets through: what the identity headers say.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
    /// The `acr` the sign-in reached.
    pub acr: String,
}

/// A session verified against the stores.
#[derive(Debug)]
pub struct Verified {
    pub hash: String,
    pub session: GatewaySession,
    pub who: Identity,
}

/// The stores could not be reached.
#[derive(Debug)]
pub struct Down;

impl From<crate::ephemeral::Unavailable> for Down {
    fn from(e: crate::ephemeral::Unavailable) -> Self {
        tracing::warn!(error = %e, "gateway: the ephemeral store is unreachable");
        Down
    }
}

impl From<sqlx::Error> for Down {
    fn from(e: sqlx::Error) -> Self {
        tracing::warn!(error = %e, "gateway: the database is unreachable");
        Down
    }
}

fn key(hash: &str) -> String {
    format!("gw:{hash}")
}

fn index(user_id: &str) -> String {
    format!("gw-of:{user_id}")
}

/// This node's recent verifications, by session hash.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<String, Cached>>);

struct Cached {
    verified: Arc<Verified>,
    at: i64,
    /// A device mismatch was audited already (audit mode notes it once per session and node).
    mismatch_noted: bool,
}

impl Cache {
    fn fresh(&self, hash: &str, now: i64, within: i64) -> Option<Arc<Verified>> {
        let map = self.0.lock().unwrap();
        map.get(hash).filter(|c| now - c.at < within).map(|c| c.verified.clone())
    }

    fn put(&self, verified: Arc<Verified>, now: i64, keep: i64) {
        let mut map = self.0.lock().unwrap();
        if map.len() >= CACHE_CAP {
            map.retain(|_, c| now - c.at < keep);
            if map.len() >= CACHE_CAP {
                map.clear();
            }
        }
        let noted = map.get(&verified.hash).is_some_and(|c| c.mismatch_noted);
        map.insert(verified.hash.clone(), Cached { verified, at: now, mismatch_noted: noted });
    }

    pub fn forget(&self, hash: &str) {
        self.0.lock().unwrap().remove(hash);
    }

    /// Whether a device mismatch of this session is to be audited now (the first time).
    pub fn first_mismatch(&self, hash: &str) -> bool {
        let mut map = self.0.lock().unwrap();
        match map.get_mut(hash) {
            Some(c) if c.mismatch_noted => false,
            Some(c) => {
                c.mismatch_noted = true;
                true
            }
            None => true,
        }
    }
}

/// The live session the cookie token names: from this node's cache within
/// `gateway.cache_secs`, else from the stores; on an outage, from the cache within
/// `gateway.outage_grace_secs`, else [`Down`].
pub async fn verify(state: &AppState, cache: &Cache, token: &str) -> Result<Option<Arc<Verified>>, Down> {
    let g = &state.settings.gateway;
    let now = state.now();
    let hash = hash_secret(token);
    if g.cache_secs > 0
        && let Some(v) = cache.fresh(&hash, now, g.cache_secs)
    {
        return Ok(Some(v));
    }
    match load(state, &hash, now).await {
        Ok(Some(v)) => {
            let v = Arc::new(v);
            cache.put(v.clone(), now, g.cache_secs.max(g.outage_grace_secs));
            Ok(Some(v))
        }
        Ok(None) => {
            cache.forget(&hash);
            Ok(None)
        }
        Err(Down) if g.outage_grace_secs > 0 => match cache.fresh(&hash, now, g.outage_grace_secs + 1) {
            Some(v) => {
                tracing::warn!("gateway: a session passes from the cache while the stores are unreachable");
                Ok(Some(v))
            }
            None => Err(Down),
        },
        Err(Down) => Err(Down),
    }
}

/// Reads a session from the stores; one over its lifetime, idle too long, whose provider
/// session has ended or whose account is disabled, is deleted and none.
async fn load(state: &AppState, hash: &str, now: i64) -> Result<Option<Verified>, Down> {
    let g = &state.settings.gateway;
    let Some(json) = state.ephemeral.get(&key(hash)).await? else { return Ok(None) };
    let Ok(mut session) = serde_json::from_str::<GatewaySession>(&json) else { return Ok(None) };
    let over = now >= session.created_at + g.session_ttl || now - session.last_seen_at > g.idle_timeout;
    let provider = if over { None } else { state.store.session(&session.sid, now).await? };
    let user = match provider {
        Some(p) if p.user_id == session.user_id => state.store.user(&session.user_id).await?.filter(|u| !u.disabled),
        _ => None,
    };
    let Some(user) = user else {
        state.ephemeral.delete(&key(hash)).await?;
        return Ok(None);
    };
    let groups = state.store.user_groups(&user.id).await?;
    if now - session.last_seen_at >= TOUCH_EVERY {
        session.last_seen_at = now;
        save(state, hash, &session, now).await?;
    }
    let name = user.claims.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let who = Identity {
        user_id: user.id,
        username: user.username,
        email: user.email,
        name,
        groups,
        acr: session.acr.clone(),
    };
    Ok(Some(Verified { hash: hash.to_owned(), session, who }))
}

/// Writes a session for what is left of its life: the idle timeout, or less when its absolute
/// end comes first.
async fn save(state: &AppState, hash: &str, s: &GatewaySession, now: i64) -> crate::ephemeral::Result<()> {
    let g = &state.settings.gateway;
    let left = (s.created_at + g.session_ttl - now).min(g.idle_timeout).max(1);
    let json = serde_json::to_string(s).expect("a session serializes");
    state.ephemeral.put(&key(hash), &json, Duration::from_secs(left as u64)).await
}

/// Starts a gateway session; answers its cookie token. A user's oldest sessions past
/// [`PER_USER`] end.
pub async fn create(state: &AppState, session: &GatewaySession) -> crate::ephemeral::Result<String> {
    let token = random_token();
    let hash = hash_secret(&token);
    save(state, &hash, session, session.created_at).await?;
    let ttl = Duration::from_secs(state.settings.gateway.session_ttl as u64);
    for oldest in state.ephemeral.enlist(&index(&session.user_id), &hash, PER_USER, ttl).await? {
        state.ephemeral.delete(&key(&oldest)).await?;
    }
    Ok(token)
}

/// Ends the session the cookie token names.
pub async fn end(state: &AppState, cache: &Cache, token: &str) -> crate::ephemeral::Result<()> {
    let hash = hash_secret(token);
    cache.forget(&hash);
    state.ephemeral.delete(&key(&hash)).await
}

/// Ends a session by its hash (a device mismatch in enforce mode).
pub async fn end_hash(state: &AppState, cache: &Cache, hash: &str) -> crate::ephemeral::Result<()> {
    cache.forget(hash);
    state.ephemeral.delete(&key(hash)).await
}

/// A user's live gateway sessions (with their hashes), the most recent first.
pub async fn of_user(state: &AppState, user_id: &str) -> crate::ephemeral::Result<Vec<(String, GatewaySession)>> {
    let list = state.ephemeral.get(&index(user_id)).await?.unwrap_or_default();
    let mut out = Vec::new();
    for hash in list.split(' ').filter(|h| !h.is_empty()).rev() {
        if let Some(s) = state.ephemeral.get(&key(hash)).await?.and_then(|j| serde_json::from_str(&j).ok()) {
            out.push((hash.to_owned(), s));
        }
    }
    Ok(out)
}

/// Ends a user's gateway sessions made from provider session `sid` (all of them when none):
/// at once in the ephemeral store, so every node's next verification finds nothing. Answers
/// their hashes, for the caller's node to forget them from its cache at once too.
pub async fn end_for(state: &AppState, user_id: &str, sid: Option<&str>) -> crate::ephemeral::Result<Vec<String>> {
    let mut ended = Vec::new();
    for (hash, s) in of_user(state, user_id).await? {
        if sid.is_none_or(|sid| s.sid == sid) {
            state.ephemeral.delete(&key(&hash)).await?;
            ended.push(hash);
        }
    }
    Ok(ended)
}
