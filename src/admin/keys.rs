//! Signing keys: list, rotate, retire, revoke, import, export the public part. Every change goes
//! through `keys::lifecycle` and one transaction, and is audited; running nodes pick it up
//! within `keys::REFRESH`. Private parts are never answered. (Re-sealing under a new
//! key-encryption key, `keys rewrap`, stays on the command line: it writes the operator's files.)

use super::{AdminError, Ops};
use crate::keys::kek::Kek;
use crate::keys::lifecycle::{self, Plan, Policy};
use crate::keys::{self, Alg, KeyState};
use crate::store::{KeyChange, SigningKeyRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A signing key's record (never its private part).
#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    pub kid: String,
    pub alg: String,
    /// `next` (published, not signing), `active`, `retired` (published, verifying) or `revoked`.
    pub state: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retires_at: Option<i64>,
}

impl From<SigningKeyRow> for Key {
    fn from(r: SigningKeyRow) -> Self {
        Self {
            kid: r.kid,
            alg: r.alg,
            state: r.state,
            created_at: r.created_at,
            activated_at: r.activated_at,
            retires_at: r.retires_at,
        }
    }
}

/// Which keys a rotation turns.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// One algorithm (default: every one).
    pub alg: Option<String>,
    /// Activate the next key even if clients may not have fetched it yet.
    #[serde(default)]
    pub force: bool,
}

/// An algorithm's keys after a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    pub alg: String,
    pub active: Option<String>,
    pub next: Option<String>,
    /// The key that stopped signing (none when the rotation only created what was missing).
    pub retired: Option<String>,
}

/// A key's new state.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyStatus {
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    pub state: String,
}

/// A private key to import as the next key of its algorithm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Import {
    /// The key: PEM text, or a JWK as JSON text.
    pub key: String,
    /// The algorithm (default: from the JWK's alg, else RS256 for RSA keys).
    pub alg: Option<String>,
}

/// A key's public part.
#[derive(Debug, Serialize, ToSchema)]
pub struct Exported {
    pub kid: String,
    pub alg: String,
    /// `jwk` or `pem`.
    pub format: String,
    /// The JWK (an object), or the PEM (a string).
    #[schema(value_type = Object)]
    pub key: Value,
}

fn parse_alg(alg: &str) -> Result<Alg, AdminError> {
    Alg::parse(alg)
        .ok_or_else(|| AdminError::Invalid(format!("alg {alg}: one of {}", Alg::ALL.map(Alg::as_str).join(", "))))
}

/// Keys of one algorithm in the order of their life: the one signing first.
fn state_rank(state: &str) -> u8 {
    match KeyState::parse(state) {
        Some(KeyState::Active) => 0,
        Some(KeyState::Next) => 1,
        Some(KeyState::Retired) => 2,
        Some(KeyState::Revoked) | None => 3,
    }
}

/// The keys sorted by algorithm, then state (active, next, retired, revoked), newest first.
pub async fn list(ops: &Ops<'_>) -> Result<Vec<Key>, AdminError> {
    let mut keys = ops.store.signing_keys().await?;
    keys.sort_by_key(|k| (k.alg.clone(), state_rank(&k.state), std::cmp::Reverse(k.created_at)));
    Ok(keys.into_iter().map(Key::from).collect())
}

/// next → active, active → retired, and a new next key, for every algorithm or one; every
/// algorithm in one transaction: all rotate, or (one next key too young) none.
pub async fn rotate(ops: &Ops<'_>, r: Rotate) -> Result<Vec<Rotated>, AdminError> {
    let algs = match r.alg {
        Some(a) => vec![parse_alg(&a)?],
        None => Alg::ALL.to_vec(),
    };
    let policy = Policy::from_settings(ops.settings);
    let rows = ops.store.signing_keys().await?;
    let mut plan = Plan::default();
    let mut retired = Vec::new();
    for alg in &algs {
        let p = lifecycle::rotate(&rows, *alg, ops.now, policy, r.force)?;
        retired.push(p.changes.iter().find(|c| c.to == "retired").map(|c| c.kid.clone()));
        plan.changes.extend(p.changes);
        plan.create.extend(p.create);
    }
    let after = run_plan(ops, &plan).await?;
    let kid = |alg: Alg, s: KeyState| {
        after.iter().find(|r| r.alg == alg.as_str() && r.state == s.as_str()).map(|r| r.kid.clone())
    };
    Ok(algs
        .iter()
        .zip(retired)
        .map(|(a, retired)| Rotated {
            alg: a.as_str().to_owned(),
            active: kid(*a, KeyState::Active),
            next: kid(*a, KeyState::Next),
            retired,
        })
        .collect())
}

/// Retires a key: an active key through a rotation of its algorithm, a next key at once.
pub async fn retire(ops: &Ops<'_>, kid: &str, force: bool) -> Result<KeyStatus, AdminError> {
    let policy = Policy::from_settings(ops.settings);
    let plan = lifecycle::retire(&ops.store.signing_keys().await?, kid, ops.now, policy, force)?;
    run_plan(ops, &plan).await?;
    Ok(KeyStatus { kid: kid.to_owned(), alg: None, state: "retired".into() })
}

/// Emergency: unpublishes a key at once; tokens it signed stop verifying.
pub async fn revoke(ops: &Ops<'_>, kid: &str) -> Result<KeyStatus, AdminError> {
    let plan = lifecycle::revoke(&ops.store.signing_keys().await?, kid, ops.now)?;
    run_plan(ops, &plan).await?;
    Ok(KeyStatus { kid: kid.to_owned(), alg: None, state: "revoked".into() })
}

/// Imports a private key (PEM or JWK) as the next key of its algorithm, in place of the current
/// next key, which never signed.
pub async fn import(ops: &Ops<'_>, input: &[u8], alg: Option<&str>) -> Result<KeyStatus, AdminError> {
    let alg = match alg {
        Some(a) => parse_alg(a)?,
        None => Alg::of_key(input).ok_or_else(|| {
            AdminError::invalid("not a key Latchkey can sign with (RSA, P-256 or Ed25519 private key, PEM or JWK)")
        })?,
    };
    let (pem, jwk) = alg.import(input).map_err(|e| AdminError::Invalid(format!("{e:#}")))?;
    let kek = Kek::load_or_create(&ops.settings.keys_dir)?;
    let row = keys::record(&kek, alg, &pem, jwk, KeyState::Next, ops.now)?;
    let changes: Vec<KeyChange> = ops
        .store
        .signing_keys()
        .await?
        .iter()
        .filter(|r| r.alg == alg.as_str() && r.state == KeyState::Next.as_str())
        .map(|r| KeyChange {
            kid: r.kid.clone(),
            from: r.state.clone(),
            to: KeyState::Retired.as_str().into(),
            activated_at: None,
            retires_at: Some(ops.now),
        })
        .collect();
    let by = format!("{} import", ops.by());
    if !keys::commit(ops.store, &changes, std::slice::from_ref(&row), ops.now, &by).await? {
        return Err(AdminError::Conflict("the keys changed while importing; try again".into()));
    }
    Ok(KeyStatus { kid: row.kid, alg: Some(alg.as_str().to_owned()), state: "next".into() })
}

/// A key's public part, as a JWK or a PEM.
pub async fn export(ops: &Ops<'_>, kid: &str, format: &str) -> Result<Exported, AdminError> {
    let row = ops
        .store
        .signing_keys()
        .await?
        .into_iter()
        .find(|r| r.kid == kid)
        .ok_or_else(|| AdminError::NotFound(format!("no key {kid}")))?;
    let key: Value = match format {
        "jwk" => serde_json::from_str(&row.public_jwk).map_err(anyhow::Error::from)?,
        "pem" => {
            let alg =
                Alg::parse(&row.alg).ok_or_else(|| AdminError::Invalid(format!("key {kid}: unknown algorithm")))?;
            let kek = Kek::load_or_create(&ops.settings.keys_dir)?;
            let pem = alg.public_pem(&kek.open(&row.kid, &row.private_enc)?)?;
            Value::String(String::from_utf8(pem).map_err(anyhow::Error::from)?)
        }
        other => return Err(AdminError::Invalid(format!("format {other}: jwk or pem"))),
    };
    Ok(Exported { kid: row.kid, alg: row.alg, format: format.to_owned(), key })
}

/// Applies a plan and returns the keys as they are afterwards.
async fn run_plan(ops: &Ops<'_>, plan: &Plan) -> Result<Vec<SigningKeyRow>, AdminError> {
    let kek = Kek::load_or_create(&ops.settings.keys_dir)?;
    if !keys::apply(ops.store, &kek, plan, ops.now, ops.by()).await? {
        return Err(AdminError::Conflict(
            "the keys changed while this ran (another node or command); try again".into(),
        ));
    }
    Ok(ops.store.signing_keys().await?)
}
