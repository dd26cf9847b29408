//! Signatures already checked. The header and claims of our own JWTs that verified, by the
//! token's SHA-256: an access token is presented on every call a client makes with it, and a
//! second presentation costs a hash and a lookup instead of an RSA or ECDSA verification.
//!
//! Verification is a function of the token and the key set alone, so the cache belongs to a
//! [`super::KeySet`]: a change of keys (a key revoked or retired) builds a new set, and the
//! cache goes with the old one. What is checked after the signature (expiry, the grant, the
//! audience) is checked on every presentation by the caller.

use super::JsonObject;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries per generation: at most twice as many tokens are kept, about 1.5 KiB each.
const GENERATION: usize = 512;

/// A JWT's header and claims, as verified.
pub(super) type Checked = Arc<(JsonObject, JsonObject)>;

/// A bounded cache in two generations: entries go into the young one; when it is full it
/// becomes the old one and the old one is dropped. A hit in the old generation moves the entry
/// back into the young one, so tokens in use stay and the rest age out.
#[derive(Default)]
pub(super) struct Verified {
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<[u8; 32], Checked>,
    old: HashMap<[u8; 32], Checked>,
}

impl Verified {
    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<Checked> {
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = g.young.get(digest) {
            return Some(hit.clone());
        }
        let hit = g.old.remove(digest)?;
        g.insert(*digest, hit.clone());
        Some(hit)
    }

    pub(super) fn insert(&self, digest: [u8; 32], checked: Checked) {
        self.generations.lock().unwrap_or_else(|p| p.into_inner()).insert(digest, checked);
    }
}

impl Generations {
    fn insert(&mut self, digest: [u8; 32], checked: Checked) {
        if self.young.len() >= GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(digest, checked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(n: usize) -> Checked {
        let mut claims = JsonObject::new();
        claims.insert("n".into(), n.into());
        Arc::new((JsonObject::new(), claims))
    }

    fn digest(n: usize) -> [u8; 32] {
        crate::crypto::sha256(&n.to_le_bytes())
    }

    #[test]
    fn keeps_what_is_used_and_forgets_the_rest_within_its_bound() {
        let cache = Verified::default();
        for n in 0..GENERATION {
            cache.insert(digest(n), checked(n));
        }
        // A full young generation ages into the old one; token 0, used again, comes back.
        cache.insert(digest(GENERATION), checked(GENERATION));
        assert_eq!(cache.get(&digest(0)).unwrap().1["n"], 0);
        for n in GENERATION + 1..2 * GENERATION + 1 {
            cache.insert(digest(n), checked(n));
        }
        assert!(cache.get(&digest(0)).is_some(), "a token in use stays");
        assert!(cache.get(&digest(1)).is_none(), "one not presented again is forgotten");
        let g = cache.generations.lock().unwrap();
        assert!(g.young.len() + g.old.len() <= 2 * GENERATION);
    }
}
