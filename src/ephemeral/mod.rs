//! Short-lived state, each entry with a TTL: authorization codes, login flows, failure counters.
//! In-process by default. Single-use values are taken atomically and leave a "consumed" marker
//! until they would have expired, so a second redemption is recognised as reuse.

mod memory;

pub use memory::MemoryStore;

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
}

impl Ephemeral {
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::start())
    }

    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        match self {
            Self::Memory(m) => m.put(key, value, ttl),
        }
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        match self {
            Self::Memory(m) => Ok(m.get(key)),
        }
    }

    pub async fn take(&self, key: &str) -> Result<Taken> {
        match self {
            Self::Memory(m) => Ok(m.take(key)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Self::Memory(m) => m.delete(key),
        }
        Ok(())
    }

    /// Adds one to a counter that expires `ttl` after its first increment; returns the new count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        match self {
            Self::Memory(m) => Ok(m.incr(key, ttl)),
        }
    }

    pub async fn ping(&self) -> bool {
        true
    }
}
