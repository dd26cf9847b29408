//! ID tokens (OIDC Core §2) and access tokens, and reading them back. An access token is an
//! RFC 9068 JWT, or for a client registered with `--access-token-format opaque` 256 random bits
//! whose claims wait in the ephemeral store, under the token's SHA-256, until it expires: the same
//! claims, one signature less to issue, one keyed read to check.

use crate::crypto::hash_secret;
use crate::domain::claims::{Access, Target, release, requested_names};
use crate::domain::client::AccessTokenFormat;
use crate::domain::{Client, Grant, User};
use crate::http::{BearerError, OAuthError};
use crate::keys::Alg;
use crate::state::AppState;
use crate::store::LiveGrant;
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

/// Builds and signs the ID token for a grant, with the user's `groups` and `roles` when their
/// scopes were granted. Scope claims go to userinfo, not here (OIDC Core
/// §5.4: with an access token issued, claims are returned from userinfo); only claims asked
/// for by name in `claims.id_token` are added.
#[allow(clippy::too_many_arguments)] // each is a distinct input of OIDC Core §2 and §3.1.3.6
pub fn id_token(
    state: &AppState,
    grant: &Grant,
    user: &User,
    sub: &str,
    nonce: Option<&str>,
    access_token: &str,
    access: &Access,
    alg: Alg,
    now: i64,
) -> anyhow::Result<String> {
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.issuer));
    c.insert("sub".into(), json!(sub));
    c.insert("aud".into(), json!(grant.client_id));
    c.insert("exp".into(), json!(now + state.settings.tokens.id_token_ttl));
    c.insert("iat".into(), json!(now));
    c.insert("auth_time".into(), json!(grant.auth_time));
    if let Some(n) = nonce {
        c.insert("nonce".into(), json!(n));
    }
    c.insert("acr".into(), json!(grant.acr));
    c.insert("amr".into(), json!(grant.amr));
    c.insert("azp".into(), json!(grant.client_id));
    if let Some(sid) = &grant.session_id {
        c.insert("sid".into(), json!(sid));
    }
    c.insert("at_hash".into(), json!(alg.half_hash(access_token)));
    c.extend(access.claims());
    for (k, v) in release(user, &requested_names(grant.claims.as_deref(), Target::IdToken)) {
        c.entry(k).or_insert(v);
    }
    state.keys.sign(&c, None, alg)
}

/// What an access token carries and what its holder may do.
pub struct AccessToken {
    pub claims: Map<String, Value>,
    pub sub: String,
    pub client_id: String,
    /// None for client_credentials tokens, which act for the client itself.
    pub grant_id: Option<String>,
    /// The DPoP key the token is bound to (`cnf.jkt`, RFC 9449 §6.1).
    pub jkt: Option<String>,
    /// The client certificate the token is bound to (`cnf.x5t#S256`, RFC 8705 §3.1).
    pub x5t: Option<String>,
    pub exp: i64,
    /// How it was issued: an opaque one can also be forgotten (revocation).
    pub format: AccessTokenFormat,
}

/// What an access token is bound to besides its grant.
#[derive(Default, Clone, Copy)]
pub struct Binding<'a> {
    /// The DPoP key's thumbprint (`cnf.jkt`, RFC 9449 §6.1).
    pub dpop: Option<&'a str>,
    /// The client certificate's thumbprint (`cnf.x5t#S256`, RFC 8705 §3.1).
    pub x5t: Option<&'a str>,
    /// The resource server it is for (RFC 8707 §2): its `aud`, instead of the client.
    pub resource: Option<&'a str>,
    /// Who acts for the subject (`act`, RFC 8693 §4.1): set by a delegating token exchange.
    pub act: Option<&'a Value>,
}

/// Issues an access token for `sub` with RFC 9068's claims, pointing at its grant when there is
/// one, with what `bound` names: signed with the client's algorithm, or kept as an opaque
/// token's claims for the token's lifetime.
#[allow(clippy::too_many_arguments)] // each is a distinct claim source of RFC 9068 §2.2
pub async fn access_token(
    state: &AppState,
    sub: &str,
    client: &Client,
    scope: &[String],
    grant: Option<&Grant>,
    access: &Access,
    bound: Binding<'_>,
    now: i64,
) -> Result<String, OAuthError> {
    let client_id = client.id.as_str();
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.issuer));
    c.insert("sub".into(), json!(sub));
    c.insert("aud".into(), json!(bound.resource.unwrap_or(client_id)));
    c.insert("client_id".into(), json!(client_id));
    c.insert("exp".into(), json!(now + state.settings.tokens.access_token_ttl));
    c.insert("iat".into(), json!(now));
    c.insert("jti".into(), json!(crate::crypto::random_id()));
    c.insert("scope".into(), json!(scope.join(" ")));
    if let Some(g) = grant {
        c.insert("gid".into(), json!(g.id));
        c.insert("auth_time".into(), json!(g.auth_time));
        c.insert("acr".into(), json!(g.acr));
        if let Some(sid) = &g.session_id {
            c.insert("sid".into(), json!(sid));
        }
    }
    c.extend(access.claims());
    let mut cnf = Map::new();
    if let Some(jkt) = bound.dpop {
        cnf.insert("jkt".into(), json!(jkt));
    }
    if let Some(x5t) = bound.x5t {
        cnf.insert(X5T.into(), json!(x5t));
    }
    if !cnf.is_empty() {
        c.insert("cnf".into(), Value::Object(cnf));
    }
    if let Some(act) = bound.act {
        c.insert("act".into(), act.clone());
    }
    match client.access_token_format {
        AccessTokenFormat::Jwt => Ok(state.keys.sign(&c, Some("at+jwt"), client.id_token_signed_response_alg)?),
        AccessTokenFormat::Opaque => {
            let token = crate::crypto::random_token();
            let ttl = std::time::Duration::from_secs(state.settings.tokens.access_token_ttl.max(1) as u64);
            let claims = serde_json::to_string(&c).map_err(anyhow::Error::from)?;
            state.ephemeral.put(&opaque_key(&token), &claims, ttl).await?;
            Ok(token)
        }
    }
}

/// Where an opaque access token's claims wait: under its hash, never the token itself.
fn opaque_key(token: &str) -> String {
    format!("at:{}", hash_secret(token))
}

/// Forgets an opaque access token before it expires (revocation); a JWT cannot be forgotten,
/// only its grant revoked.
pub async fn forget(state: &AppState, token: &str, at: &AccessToken) -> Result<(), BearerError> {
    if at.format == AccessTokenFormat::Opaque {
        state.ephemeral.delete(&opaque_key(token)).await?;
    }
    Ok(())
}

/// Reads an access token: a JWT's signature, type, issuer and expiry, or an opaque token's
/// claims by its hash. Whether its grant is still active is the caller's next question
/// ([`active_grant`]).
pub async fn read_access_token(state: &AppState, token: &str, now: i64) -> Result<AccessToken, BearerError> {
    let (format, claims) = if token.contains('.') {
        (AccessTokenFormat::Jwt, verify_jwt(state, token)?)
    } else {
        (AccessTokenFormat::Opaque, opaque_claims(state, token).await?)
    };
    if claims.get("iss").and_then(Value::as_str) != Some(state.issuer.as_str()) {
        return Err(BearerError::InvalidToken("the access token was not issued here"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp <= now {
        return Err(BearerError::InvalidToken("the access token has expired"));
    }
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(sub), Some(client_id)) = (s("sub"), s("client_id")) else {
        return Err(BearerError::InvalidToken("the access token is not valid"));
    };
    let cnf = |k: &str| claims.get("cnf").and_then(|c| c.get(k)).and_then(Value::as_str).map(str::to_owned);
    let (jkt, x5t) = (cnf("jkt"), cnf(X5T));
    Ok(AccessToken { sub, client_id, grant_id: s("gid"), jkt, x5t, exp, format, claims })
}

/// A JWT access token's claims, once its signature and type (RFC 9068 §4: `at+jwt`) check.
fn verify_jwt(state: &AppState, token: &str) -> Result<Map<String, Value>, BearerError> {
    let (header, claims) =
        state.keys.verify(token).map_err(|_| BearerError::InvalidToken("the access token is not valid"))?;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or_default();
    if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(BearerError::InvalidToken("the token is not an access token"));
    }
    Ok(claims)
}

/// An opaque access token's claims, while the ephemeral store keeps them.
async fn opaque_claims(state: &AppState, token: &str) -> Result<Map<String, Value>, BearerError> {
    const INVALID: BearerError = BearerError::InvalidToken("the access token is not valid");
    // Ours are 43 characters; anything much longer is not worth hashing.
    if token.is_empty() || token.len() > 128 {
        return Err(INVALID);
    }
    let Some(stored) = state.ephemeral.get(&opaque_key(token)).await? else { return Err(INVALID) };
    serde_json::from_str(&stored).map_err(|_| INVALID)
}

/// An access token presented as a Bearer token (RFC 6750): read as [`read_access_token`] does,
/// except that a DPoP-bound one is refused (RFC 9449 §7.2: without its proof it is no bearer
/// token), and a certificate-bound one without its certificate (RFC 8705 §3).
pub async fn read_bearer_token(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    now: i64,
) -> Result<AccessToken, BearerError> {
    let at = read_access_token(state, token, now).await?;
    if at.jkt.is_some() {
        return Err(BearerError::DpopBound);
    }
    check_certificate(state, headers, &at)?;
    Ok(at)
}

/// The `cnf` member of a certificate-bound token (RFC 8705 §3.1).
pub const X5T: &str = "x5t#S256";

/// RFC 8705 §3: a certificate-bound token is accepted only with the certificate it is bound
/// to, passed by the proxy with this request; `invalid_token` otherwise (§3.1).
pub fn check_certificate(state: &AppState, headers: &HeaderMap, at: &AccessToken) -> Result<(), BearerError> {
    let Some(bound) = &at.x5t else { return Ok(()) };
    match crate::oidc::mtls::thumbprint(state, headers) {
        Some(x5t) if crate::crypto::constant_time_eq(x5t.as_bytes(), bound.as_bytes()) => Ok(()),
        Some(_) => Err(BearerError::InvalidToken("the access token is bound to another client certificate")),
        None => Err(BearerError::InvalidToken("the access token is bound to a client certificate; none came")),
    }
}

/// The grant behind a user access token, if it is still active. A grant that lives only as
/// long as its browser session (not `offline_access`) ends with it: a session idle past
/// `login.idle_timeout` is ended here if its browser has not come back to end it (revoking its
/// grants as a logout does), so its tokens stop whether or not the browser returns.
pub async fn active_grant(state: &AppState, token: &AccessToken, now: i64) -> Result<Option<Grant>, BearerError> {
    let Some(gid) = &token.grant_id else { return Ok(None) };
    let live = state.store.live_grant(gid, now).await?;
    still_active(state, token, live, now).await
}

/// [`active_grant`] with its user, enabled or not, read in the same statement.
pub async fn active_grant_and_user(
    state: &AppState,
    token: &AccessToken,
    now: i64,
) -> Result<Option<(Grant, User)>, BearerError> {
    let Some(gid) = &token.grant_id else { return Ok(None) };
    let Some((live, user)) = state.store.live_grant_and_user(gid, now).await? else { return Ok(None) };
    Ok(still_active(state, token, Some(live), now).await?.map(|grant| (grant, user)))
}

/// The grant, as read, if it is active at `now`, the token's, and its session lives.
async fn still_active(
    state: &AppState,
    token: &AccessToken,
    live: Option<LiveGrant>,
    now: i64,
) -> Result<Option<Grant>, BearerError> {
    let Some(LiveGrant { grant, session_seen }) =
        live.filter(|g| g.grant.is_active(now) && g.grant.user_id == token.sub)
    else {
        return Ok(None);
    };
    // A grant that is not `offline_access` lives as long as its browser session.
    if let Some(sid) = grant.session_id.as_deref().filter(|_| !grant.offline) {
        let Some(seen) = session_seen else { return Ok(None) };
        if crate::login::session::ended_idle(state, sid, seen, now).await? {
            return Ok(None);
        }
    }
    Ok(Some(grant))
}

/// The parts of an `id_token_hint` (OIDC Core §3.1.2.1) that matter: who, for which client, in
/// which session. Expired hints are accepted; the signature and issuer must be ours.
pub struct Hint {
    pub sub: String,
    pub aud: Vec<String>,
    pub sid: Option<String>,
}

pub fn verify_hint(state: &AppState, token: &str) -> Option<Hint> {
    let (header, claims) = state.keys.verify(token).ok()?;
    if header.contains_key("typ") {
        return None; // access tokens carry typ at+jwt; ID tokens carry none
    }
    if claims.get("iss").and_then(Value::as_str) != Some(state.issuer.as_str()) {
        return None;
    }
    let aud = match claims.get("aud")? {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => return None,
    };
    Some(Hint {
        sub: claims.get("sub")?.as_str()?.to_owned(),
        aud,
        sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
    })
}
