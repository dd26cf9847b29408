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
