//! Key lifecycle: what `rotate`, `retire`, `revoke` and first start do to the key records, as
//! plans computed from the current rows and the time (no I/O), then applied in one transaction.
//!
//! ```text
//!   (created) ──► next ──rotate──► active ──rotate/retire──► retired ──retires_at──► (unpublished)
//!                   │                 │
//!                   └──── revoke ─────┴──────► revoked (unpublished at once)
//! ```
//!
//! Two timing rules keep every token verifiable by a client that caches the JWKS:
//! - a `next` key is activated only once it has been published for longer than the JWKS
//!   `max-age` plus the nodes' refresh interval ([`Policy::min_next_age`]);
//! - a retired key stays published until the longest-lived token it can have signed has expired
//!   ([`Policy::retire_after`]).

use super::alg::Alg;
use super::{KeyState, REFRESH};
use crate::clock::Timestamp;
use crate::config::Settings;
use crate::store::{KeyChange, SigningKeyRow};

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Seconds a `next` key must have been published before it may sign.
    pub min_next_age: i64,
    /// Seconds a retired key stays in the JWKS.
    pub retire_after: i64,
}

impl Policy {
    pub fn from_settings(s: &Settings) -> Self {
        let refresh = REFRESH.as_secs() as i64;
        Self {
            // A node serves a new key at most `refresh` after it is written; a client that
            // fetched the JWKS just before that keeps its copy for `max-age`.
            min_next_age: s.keys.jwks_max_age + refresh,
            // A node may go on signing with a key for up to `refresh` after its retirement.
            retire_after: s.tokens.id_token_ttl.max(s.tokens.access_token_ttl) + refresh,
        }
    }
}

/// What a plan does: state changes, and keys to create (generated when the plan is applied).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<KeyChange>,
    pub create: Vec<(Alg, KeyState)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.create.is_empty()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "the next {alg} key {kid} has been published for {age} s; clients that cache the JWKS may not have it until it is over {min} s old. Run again in {} s, or pass --force (tokens it signs may then fail for such clients)", .min + 1 - .age
    )]
    NextTooYoung { alg: Alg, kid: String, age: i64, min: i64 },
    #[error("no key {0}")]
    UnknownKey(String),
    #[error("key {0} is already {1}")]
    AlreadyDone(String, &'static str),
    #[error("key {0} has an algorithm this build does not support")]
    UnsupportedAlg(String),
}

fn state(row: &SigningKeyRow) -> KeyState {
    KeyState::parse(&row.state).unwrap_or(KeyState::Revoked)
}

fn find(rows: &[SigningKeyRow], alg: Alg, s: KeyState) -> Option<&SigningKeyRow> {
    rows.iter().find(|r| r.alg == alg.as_str() && state(r) == s)
}

fn change(row: &SigningKeyRow, to: KeyState, activated_at: Option<i64>, retires_at: Option<i64>) -> KeyChange {
    KeyChange { kid: row.kid.clone(), from: row.state.clone(), to: to.as_str().into(), activated_at, retires_at }
}

/// What is missing for `alg` to sign: an active key and a next one behind it. Empty when both
/// exist.
pub fn ensure(rows: &[SigningKeyRow], alg: Alg) -> Plan {
    let mut plan = Plan::default();
    if find(rows, alg, KeyState::Active).is_none() {
        plan.create.push((alg, KeyState::Active));
    }
    if find(rows, alg, KeyState::Next).is_none() {
        plan.create.push((alg, KeyState::Next));
    }
    plan
}

/// `keys rotate`: next → active, active → retired, a new next. When the algorithm lacks an
/// active or a next key, creates what is missing instead (and rotates nothing).
pub fn rotate(
    rows: &[SigningKeyRow],
    alg: Alg,
    now: Timestamp,
    policy: Policy,
    force: bool,
) -> Result<Plan, PlanError> {
    let (Some(active), Some(next)) = (find(rows, alg, KeyState::Active), find(rows, alg, KeyState::Next)) else {
        let plan = ensure(rows, alg);
        // A next key without an active one (only after manual edits): it activates now.
        return Ok(match find(rows, alg, KeyState::Next) {
            Some(next) if plan.create == [(alg, KeyState::Active)] => {
                promote(next, now, policy, force)?;
                Plan {
                    changes: vec![change(next, KeyState::Active, Some(now), None)],
                    create: vec![(alg, KeyState::Next)],
                }
            }
            _ => plan,
        });
    };
    promote(next, now, policy, force)?;
    Ok(Plan {
        changes: vec![
            change(active, KeyState::Retired, None, Some(now + policy.retire_after)),
            change(next, KeyState::Active, Some(now), None),
        ],
        create: vec![(alg, KeyState::Next)],
    })
}

/// Checks the pre-publication rule for a next key about to sign. Times are whole seconds, so
/// the age must exceed the minimum strictly.
fn promote(next: &SigningKeyRow, now: Timestamp, policy: Policy, force: bool) -> Result<(), PlanError> {
    let age = now - next.created_at;
    if age <= policy.min_next_age && !force {
        return Err(PlanError::NextTooYoung {
            alg: Alg::parse(&next.alg).unwrap_or(Alg::DEFAULT),
            kid: next.kid.clone(),
            age,
            min: policy.min_next_age,
        });
    }
    Ok(())
}

fn alg_of(row: &SigningKeyRow) -> Result<Alg, PlanError> {
    Alg::parse(&row.alg).ok_or_else(|| PlanError::UnsupportedAlg(row.kid.clone()))
}

/// `keys retire KID`: an active key retires through a rotation of its algorithm; a next key
/// never signed anything and leaves the JWKS at once, replaced by a new next key.
pub fn retire(
    rows: &[SigningKeyRow],
    kid: &str,
    now: Timestamp,
    policy: Policy,
    force: bool,
) -> Result<Plan, PlanError> {
    let row = rows.iter().find(|r| r.kid == kid).ok_or_else(|| PlanError::UnknownKey(kid.into()))?;
    let alg = alg_of(row)?;
    match state(row) {
        KeyState::Active => rotate(rows, alg, now, policy, force),
        KeyState::Next => Ok(Plan {
            changes: vec![change(row, KeyState::Retired, None, Some(now))],
            create: vec![(alg, KeyState::Next)],
        }),
        s => Err(PlanError::AlreadyDone(kid.into(), s.as_str())),
    }
}

/// `keys revoke KID` (emergency): the key leaves the JWKS at once and nothing it signed verifies
/// any more. A revoked active key is replaced by its next key at once, whatever its age: a
/// client that has not yet seen that key refetches the JWKS on the unknown `kid`, which is
/// better than signing on with a compromised key.
pub fn revoke(rows: &[SigningKeyRow], kid: &str, now: Timestamp) -> Result<Plan, PlanError> {
    let row = rows.iter().find(|r| r.kid == kid).ok_or_else(|| PlanError::UnknownKey(kid.into()))?;
    let alg = alg_of(row)?;
    let mut plan = Plan { changes: vec![change(row, KeyState::Revoked, None, row.retires_at)], create: vec![] };
    match state(row) {
        KeyState::Revoked => return Err(PlanError::AlreadyDone(kid.into(), "revoked")),
        KeyState::Retired => {}
        KeyState::Next => plan.create.push((alg, KeyState::Next)),
        KeyState::Active => match find(rows, alg, KeyState::Next) {
            Some(next) => {
                plan.changes.push(change(next, KeyState::Active, Some(now), None));
                plan.create.push((alg, KeyState::Next));
            }
            None => plan.create.extend([(alg, KeyState::Active), (alg, KeyState::Next)]),
        },
    }
    Ok(plan)
}

/// Automatic rotation (`keys.rotate_every`): every algorithm whose active key has signed for
/// `every` seconds and whose next key is old enough. Algorithms not due are left out.
pub fn due(rows: &[SigningKeyRow], now: Timestamp, policy: Policy, every: i64) -> Vec<Plan> {
    Alg::ALL
        .into_iter()
        .filter(|alg| {
            find(rows, *alg, KeyState::Active).is_some_and(|a| now - a.activated_at.unwrap_or(a.created_at) >= every)
        })
        .filter_map(|alg| rotate(rows, alg, now, policy, false).ok())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kid: &str, alg: Alg, s: KeyState, created_at: i64) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.into(),
            alg: alg.as_str().into(),
            state: s.as_str().into(),
            public_jwk: String::new(),
            private_enc: String::new(),
            created_at,
            activated_at: (s == KeyState::Active).then_some(created_at),
            retires_at: None,
        }
    }

    const POLICY: Policy = Policy { min_next_age: 10, retire_after: 100 };

    #[test]
    fn first_rotation_on_an_empty_store_creates_active_and_next() {
        let plan = rotate(&[], Alg::Es256, 0, POLICY, false).unwrap();
        assert_eq!(plan.create, vec![(Alg::Es256, KeyState::Active), (Alg::Es256, KeyState::Next)]);
        assert!(plan.changes.is_empty());
    }

    #[test]
    fn rotation_waits_for_the_next_key_to_be_published_long_enough() {
        let rows = [row("a", Alg::Rs256, KeyState::Active, 0), row("n", Alg::Rs256, KeyState::Next, 0)];
        assert!(matches!(rotate(&rows, Alg::Rs256, 10, POLICY, false), Err(PlanError::NextTooYoung { .. })));
        assert!(rotate(&rows, Alg::Rs256, 10, POLICY, true).is_ok());
        let plan = rotate(&rows, Alg::Rs256, 11, POLICY, false).unwrap();
        assert_eq!(plan.changes[0].retires_at, Some(111));
        assert_eq!((plan.changes[1].kid.as_str(), plan.changes[1].to.as_str()), ("n", "active"));
        assert_eq!(plan.create, vec![(Alg::Rs256, KeyState::Next)]);
    }

    #[test]
    fn revoking_the_active_key_promotes_next_at_once() {
        let rows = [row("a", Alg::EdDsa, KeyState::Active, 0), row("n", Alg::EdDsa, KeyState::Next, 5)];
        let plan = revoke(&rows, "a", 7).unwrap();
        assert_eq!(plan.changes.len(), 2);
        assert_eq!(plan.changes[0].to, "revoked");
        assert_eq!(plan.changes[1].to, "active");
        assert_eq!(
            revoke(&[row("r", Alg::EdDsa, KeyState::Revoked, 0)], "r", 7),
            Err(PlanError::AlreadyDone("r".into(), "revoked"))
        );
    }

    #[test]
    fn due_only_when_the_active_key_is_old_enough() {
        let rows = [row("a", Alg::Rs256, KeyState::Active, 0), row("n", Alg::Rs256, KeyState::Next, 0)];
        assert!(due(&rows, 50, POLICY, 60).is_empty());
        assert_eq!(due(&rows, 60, POLICY, 60).len(), 1);
    }
}
