//! Short-lived state, each entry with a TTL: authorization codes, login flows, failure counters.
//! In-process by default; Redis when `ephemeral.url` says `redis://`, so that every node sees the
//! same codes, flows and counters. Single-use values are taken atomically and leave a "consumed"
//! marker until they would have expired, so a second redemption is recognised as reuse.
//!
//! Entries expire by the process's [`Clock`], so moving the clock (a test) expires them on both
//! backends. The in-process store is capped in bytes (oldest entries evicted first), and every
//! value is bounded in size, so neither the process nor Redis grows without bound under a flood.
//!
//! A node never falls back to its own memory when Redis is unreachable: every call fails with
//! [`Unavailable`] (503) until Redis answers again.

mod memory;
mod redis;

pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::clock::Clock;
use std::time::Duration;

/// What taking a single-use value found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// First use: the value is now consumed.
    Fresh(String),
    /// Already taken before: the value it held, so its consequences can be undone.
    Consumed(String),
    Missing,
}

/// The ephemeral store is unreachable; the request must fail with 503, never fall back.
#[derive(Debug, thiserror::Error)]
#[error("ephemeral store unavailable: {0}")]
pub struct Unavailable(pub String);

pub type Result<T> = std::result::Result<T, Unavailable>;

/// One type over the backends, so handlers hold a concrete type.
#[derive(Clone)]
pub struct Ephemeral {
    backend: Backend,
    /// The largest value `put` accepts, in bytes.
    max_value_bytes: usize,
}

#[derive(Clone)]
enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Ephemeral {
    /// An in-process store with the default limits.
    pub fn memory(clock: Clock) -> Self {
        let defaults = crate::config::Ephemeral::default();
        Self::in_memory(clock, &defaults)
    }

    fn in_memory(clock: Clock, settings: &crate::config::Ephemeral) -> Self {
        let backend = Backend::Memory(MemoryStore::start(clock, settings.max_bytes));
        Self { backend, max_value_bytes: settings.max_value_bytes }
    }

    /// The backend the settings name: Redis for a `redis://` (or `rediss://`) URL, else memory.
    /// Entries expire by `clock`.
    pub async fn open(settings: &crate::config::Ephemeral, clock: Clock) -> anyhow::Result<Self> {
        match &settings.url {
            Some(url) => {
                let backend = Backend::Redis(RedisStore::connect(url, &settings.prefix, clock).await?);
                Ok(Self { backend, max_value_bytes: settings.max_value_bytes })
            }
            None => Ok(Self::in_memory(clock, settings)),
        }
    }

    /// Stores `value` under `key` for `ttl`. A value over `ephemeral.max_value_bytes` is refused
    /// (as unavailable: no caller stores one unless something upstream let oversized input in).
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        if value.len() > self.max_value_bytes {
            tracing::warn!(key, bytes = value.len(), "ephemeral value over ephemeral.max_value_bytes refused");
            return Err(Unavailable(format!("a value of {} bytes is over ephemeral.max_value_bytes", value.len())));
        }
        match &self.backend {
            Backend::Memory(m) => {
                m.put(key, value, ttl);
                Ok(())
            }
            Backend::Redis(r) => r.put(key, value, ttl).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.get(key)),
            Backend::Redis(r) => r.get(key).await,
        }
    }

    pub async fn take(&self, key: &str) -> Result<Taken> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.take(key)),
            Backend::Redis(r) => r.take(key).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match &self.backend {
            Backend::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Backend::Redis(r) => r.delete(key).await,
        }
    }

    /// Adds one to a counter that expires `ttl` after its first increment; returns the new count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.incr(key, ttl)),
            Backend::Redis(r) => r.incr(key, ttl).await,
        }
    }

    /// Takes one back from a counter made by [`Ephemeral::incr`], never below 0 and keeping its
    /// window; nothing when there is none.
    pub async fn decr(&self, key: &str) -> Result<()> {
        match &self.backend {
            Backend::Memory(m) => {
                m.decr(key);
                Ok(())
            }
            Backend::Redis(r) => r.decr(key).await,
        }
    }

    /// Appends `member` (no spaces) to a bounded list: the list keeps its newest `cap` members
    /// and lives `ttl` from this call. Answers the members pushed out, oldest first, so the
    /// caller can drop what they named (e.g. the oldest login flows of one browser).
    pub async fn enlist(&self, key: &str, member: &str, cap: usize, ttl: Duration) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.enlist(key, member, cap, ttl)),
            Backend::Redis(r) => r.enlist(key, member, cap, ttl).await,
        }
    }

    /// The current value of a counter made by [`Ephemeral::incr`]; 0 when there is none.
    pub async fn count(&self, key: &str) -> Result<u64> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)),
            Backend::Redis(r) => r.count(key).await,
        }
    }

    /// Is the store answering? (`/readyz`)
    pub async fn ping(&self) -> bool {
        match &self.backend {
            Backend::Memory(_) => true,
            Backend::Redis(r) => r.ping().await,
        }
    }
}

/// One behaviour for every backend: the same checks run on memory and, when
/// `LATCHKEY_TEST_REDIS` names a Redis, on Redis (under a key prefix of their own).
#[cfg(test)]
mod backend_tests {
    use super::*;

    /// Each backend with a clock of its own that the test moves (one clock per store: moving it
    /// must expire entries on that store alone).
    async fn backends() -> Vec<(Ephemeral, Clock)> {
        let clock = Clock::adjustable();
        let mut all = vec![(Ephemeral::memory(clock.clone()), clock)];
        if let Some(url) = std::env::var("LATCHKEY_TEST_REDIS").ok().filter(|v| !v.is_empty()) {
            let clock = Clock::adjustable();
            let settings = crate::config::Ephemeral {
                url: Some(url),
                prefix: format!("latchkey-unit-{}:", crate::crypto::random_id()),
                ..Default::default()
            };
            all.push((Ephemeral::open(&settings, clock.clone()).await.expect("LATCHKEY_TEST_REDIS"), clock));
        }
        all
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn single_use_values_are_taken_once_and_reuse_is_recognised() {
        for (e, _) in backends().await {
            e.put("code", "grant-1", MINUTE).await.unwrap();
            assert_eq!(e.get("code").await.unwrap().as_deref(), Some("grant-1"));
            assert_eq!(e.take("code").await.unwrap(), Taken::Fresh("grant-1".into()));
            assert_eq!(e.take("code").await.unwrap(), Taken::Consumed("grant-1".into()));
            assert_eq!(e.get("code").await.unwrap(), None, "a consumed value is not readable");
            assert_eq!(e.take("nothing").await.unwrap(), Taken::Missing);
        }
    }

    #[tokio::test]
    async fn racing_takes_yield_exactly_one_fresh() {
        for (e, _) in backends().await {
            e.put("raced", "v", MINUTE).await.unwrap();
            let takes = (0..16).map(|_| {
                let e = e.clone();
                tokio::spawn(async move { e.take("raced").await.unwrap() })
            });
            let mut fresh = 0;
            for t in takes {
                if matches!(t.await.unwrap(), Taken::Fresh(_)) {
                    fresh += 1;
                }
            }
            assert_eq!(fresh, 1);
        }
    }

    #[tokio::test]
    async fn values_expire_by_the_clock_and_can_be_deleted() {
        for (e, clock) in backends().await {
            e.put("short", "v", Duration::from_secs(5)).await.unwrap();
            e.put("taken", "v", Duration::from_secs(5)).await.unwrap();
            e.take("taken").await.unwrap();
            e.put("long", "v", MINUTE).await.unwrap();
            e.put("gone", "v", MINUTE).await.unwrap();
            e.delete("gone").await.unwrap();
            clock.advance(4);
            assert_eq!(e.get("short").await.unwrap().as_deref(), Some("v"), "not yet");
            clock.advance(2);
            assert_eq!(e.get("short").await.unwrap(), None);
            assert_eq!(e.take("short").await.unwrap(), Taken::Missing);
            assert_eq!(e.take("taken").await.unwrap(), Taken::Missing, "the consumed marker expires too");
            assert_eq!(e.get("long").await.unwrap().as_deref(), Some("v"));
            assert_eq!(e.get("gone").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn counters_count_within_their_window_and_reset_after_it() {
        for (e, clock) in backends().await {
            assert_eq!(e.count("c").await.unwrap(), 0);
            assert_eq!(e.incr("c", Duration::from_secs(10)).await.unwrap(), 1);
            clock.advance(6);
            assert_eq!(e.incr("c", Duration::from_secs(10)).await.unwrap(), 2, "the window is not moved");
            assert_eq!(e.count("c").await.unwrap(), 2);
            clock.advance(5);
            assert_eq!(e.count("c").await.unwrap(), 0, "10 s after the first increment");
            assert_eq!(e.incr("c", MINUTE).await.unwrap(), 1);
            e.delete("c").await.unwrap();
            assert_eq!(e.count("c").await.unwrap(), 0);
            assert!(e.ping().await);
        }
    }

    #[tokio::test]
    async fn bounded_lists_push_out_their_oldest_members() {
        for (e, clock) in backends().await {
            for m in ["a", "b", "c"] {
                assert!(e.enlist("l", m, 3, MINUTE).await.unwrap().is_empty());
            }
            assert_eq!(e.enlist("l", "d", 3, MINUTE).await.unwrap(), vec!["a".to_string()]);
            assert_eq!(e.get("l").await.unwrap().as_deref(), Some("b c d"));
            clock.advance(61);
            assert!(e.enlist("l", "e", 3, MINUTE).await.unwrap().is_empty(), "an expired list starts again");
            assert_eq!(e.get("l").await.unwrap().as_deref(), Some("e"));
        }
    }

    #[tokio::test]
    async fn oversized_values_are_refused() {
        for (e, _) in backends().await {
            let big = "x".repeat(crate::config::Ephemeral::default().max_value_bytes + 1);
            assert!(e.put("big", &big, MINUTE).await.is_err());
            assert_eq!(e.get("big").await.unwrap(), None);
        }
    }
}
