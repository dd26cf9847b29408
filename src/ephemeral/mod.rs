//! Short-lived state, each entry with a TTL: authorization codes, login flows, failure counters.
//! In-process by default; Redis when `ephemeral.url` says `redis://`, so that every node sees the
//! same codes, flows and counters. Single-use values are taken atomically and leave a "consumed"
//! marker until they would have expired, so a second redemption is recognised as reuse.
//!
//! A node never falls back to its own memory when Redis is unreachable: every call fails with
//! [`Unavailable`] (503) until Redis answers again.

mod memory;
mod redis;

pub use memory::MemoryStore;
pub use redis::RedisStore;

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

/// One enum over the backends, so handlers hold a concrete type.
#[derive(Clone)]
pub enum Ephemeral {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Ephemeral {
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::start())
    }

    /// The backend the settings name: Redis for a `redis://` (or `rediss://`) URL, else memory.
    pub async fn open(settings: &crate::config::Ephemeral) -> anyhow::Result<Self> {
        match &settings.url {
            Some(url) => Ok(Self::Redis(RedisStore::connect(url, &settings.prefix).await?)),
            None => Ok(Self::memory()),
        }
    }

    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.put(key, value, ttl);
                Ok(())
            }
            Self::Redis(r) => r.put(key, value, ttl).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        match self {
            Self::Memory(m) => Ok(m.get(key)),
            Self::Redis(r) => r.get(key).await,
        }
    }

    pub async fn take(&self, key: &str) -> Result<Taken> {
        match self {
            Self::Memory(m) => Ok(m.take(key)),
            Self::Redis(r) => r.take(key).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Self::Redis(r) => r.delete(key).await,
        }
    }

    /// Adds one to a counter that expires `ttl` after its first increment; returns the new count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        match self {
            Self::Memory(m) => Ok(m.incr(key, ttl)),
            Self::Redis(r) => r.incr(key, ttl).await,
        }
    }

    /// Takes one back from a counter made by [`Ephemeral::incr`], never below 0 and keeping its
    /// window; nothing when there is none.
    pub async fn decr(&self, key: &str) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.decr(key);
                Ok(())
            }
            Self::Redis(r) => r.decr(key).await,
        }
    }

    /// The current value of a counter made by [`Ephemeral::incr`]; 0 when there is none.
    pub async fn count(&self, key: &str) -> Result<u64> {
        match self {
            Self::Memory(m) => Ok(m.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)),
            Self::Redis(r) => r.count(key).await,
        }
    }

    /// Is the store answering? (`/readyz`)
    pub async fn ping(&self) -> bool {
        match self {
            Self::Memory(_) => true,
            Self::Redis(r) => r.ping().await,
        }
    }
}

/// One behaviour for every backend: the same checks run on memory and, when
/// `LATCHKEY_TEST_REDIS` names a Redis, on Redis (under a key prefix of their own).
#[cfg(test)]
mod backend_tests {
    use super::*;

    async fn backends() -> Vec<Ephemeral> {
        let mut all = vec![Ephemeral::memory()];
        if let Some(url) = std::env::var("LATCHKEY_TEST_REDIS").ok().filter(|v| !v.is_empty()) {
            let prefix = format!("latchkey-unit-{}:", crate::crypto::random_id());
            all.push(Ephemeral::Redis(RedisStore::connect(&url, &prefix).await.expect("LATCHKEY_TEST_REDIS")));
        }
        all
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn single_use_values_are_taken_once_and_reuse_is_recognised() {
        for e in backends().await {
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
        for e in backends().await {
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
    async fn values_expire_and_can_be_deleted() {
        for e in backends().await {
            e.put("short", "v", Duration::from_millis(50)).await.unwrap();
            e.put("gone", "v", MINUTE).await.unwrap();
            e.delete("gone").await.unwrap();
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert_eq!(e.get("short").await.unwrap(), None);
            assert_eq!(e.take("short").await.unwrap(), Taken::Missing);
            assert_eq!(e.get("gone").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn counters_count_within_their_window_and_reset_after_it() {
        for e in backends().await {
            assert_eq!(e.count("c").await.unwrap(), 0);
            assert_eq!(e.incr("c", Duration::from_millis(100)).await.unwrap(), 1);
            assert_eq!(e.incr("c", Duration::from_millis(100)).await.unwrap(), 2);
            assert_eq!(e.count("c").await.unwrap(), 2);
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert_eq!(e.count("c").await.unwrap(), 0);
            assert_eq!(e.incr("c", MINUTE).await.unwrap(), 1);
            e.delete("c").await.unwrap();
            assert_eq!(e.count("c").await.unwrap(), 0);
            assert!(e.ping().await);
        }
    }
}
