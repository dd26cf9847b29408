//! The in-process ephemeral store: a map behind one lock, purged of expired entries by a
//! background task (the shape of mini-redis's `db.rs`).

use super::Taken;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Entry {
    value: String,
    expires: Instant,
    consumed: bool,
}

/// A std mutex: every critical section is a map operation, never held across an await.
#[derive(Clone, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<HashMap<String, Entry>>>,
}

const PURGE_EVERY: Duration = Duration::from_secs(30);

impl MemoryStore {
    /// A store with its purge task running on the current runtime (if any).
    pub fn start() -> Self {
        let store = Self::default();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&store.map);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(PURGE_EVERY);
                loop {
                    tick.tick().await;
                    let Some(map) = weak.upgrade() else { break };
                    let now = Instant::now();
                    map.lock().unwrap().retain(|_, e| e.expires > now);
                }
            });
        }
        store
    }

    pub fn put(&self, key: &str, value: &str, ttl: Duration) {
        let entry = Entry { value: value.to_owned(), expires: Instant::now() + ttl, consumed: false };
        self.map.lock().unwrap().insert(key.to_owned(), entry);
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let map = self.map.lock().unwrap();
        map.get(key).filter(|e| e.expires > Instant::now() && !e.consumed).map(|e| e.value.clone())
    }

    pub fn take(&self, key: &str) -> Taken {
        let mut map = self.map.lock().unwrap();
        match map.get_mut(key) {
            Some(e) if e.expires <= Instant::now() => Taken::Missing,
            Some(e) if e.consumed => Taken::Consumed(e.value.clone()),
            Some(e) => {
                e.consumed = true;
                Taken::Fresh(e.value.clone())
            }
            None => Taken::Missing,
        }
    }

    pub fn delete(&self, key: &str) {
        self.map.lock().unwrap().remove(key);
    }

    pub fn incr(&self, key: &str, ttl: Duration) -> u64 {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap();
        let e = map.entry(key.to_owned()).or_insert_with(|| Entry {
            value: "0".into(),
            expires: now + ttl,
            consumed: false,
        });
        if e.expires <= now {
            *e = Entry { value: "0".into(), expires: now + ttl, consumed: false };
        }
        let n = e.value.parse::<u64>().unwrap_or(0) + 1;
        e.value = n.to_string();
        n
    }

    pub fn decr(&self, key: &str) {
        let mut map = self.map.lock().unwrap();
        if let Some(e) = map.get_mut(key).filter(|e| e.expires > Instant::now()) {
            let n = e.value.parse::<u64>().unwrap_or(0).saturating_sub(1);
            e.value = n.to_string();
        }
    }
}
