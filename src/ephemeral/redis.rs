//! The Redis ephemeral store, shared by every node. Values carry a one-byte state prefix (`v`
//! live, `c` consumed) so that taking a single-use value is one Lua script: two nodes racing to
//! redeem one code run it one after the other inside Redis, and exactly one sees it live.
//! Counters are plain integers (`INCR`), so they have no prefix.

use super::{Result, Taken, Unavailable};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Script, Value};
use std::sync::Arc;
use std::time::Duration;

const LIVE: char = 'v';
const CONSUMED: char = 'c';

/// Marks a live value consumed, keeping its remaining TTL; returns what was there before.
const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'v' then
  redis.call('SET', KEYS[1], 'c' .. string.sub(v, 2), 'KEEPTTL')
end
return v
";

/// Increments a counter and starts its window on the first increment.
const INCR: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Takes one back from a counter, never below 0, keeping its TTL.
const DECR: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
";

/// How long one command may take before the request fails with 503 rather than hang.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    /// Put before every key, so deployments (and test runs) can share one Redis.
    prefix: Arc<str>,
    take: Arc<Script>,
    incr: Arc<Script>,
    decr: Arc<Script>,
}

impl RedisStore {
    /// Connects; the manager reconnects by itself after Redis restarts, and until then every
    /// command fails fast with [`Unavailable`]. Redis down at start is not fatal: the node starts,
    /// answers 503 where it needs Redis, and connects once Redis answers.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let shown = crate::config::redacted(url);
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("ephemeral.url {shown}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = Connection { target: Arc::new((client, config)), manager: Arc::default() };
        if let Err(e) = conn.manager().await {
            tracing::warn!("cannot reach Redis at {shown} ({e}); answering 503 where it is needed until it can");
        }
        Ok(Self {
            conn,
            prefix: prefix.into(),
            take: Arc::new(Script::new(TAKE)),
            incr: Arc::new(Script::new(INCR)),
            decr: Arc::new(Script::new(DECR)),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let ms = ttl.as_millis().max(1) as u64;
        let mut conn = self.conn.clone();
        conn.pset_ex::<_, _, ()>(self.key(key), format!("{LIVE}{value}"), ms).await.map_err(unavailable)
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let v: Option<String> = conn.get(self.key(key)).await.map_err(unavailable)?;
        Ok(v.and_then(|v| v.strip_prefix(LIVE).map(str::to_owned)))
    }

    pub async fn take(&self, key: &str) -> Result<Taken> {
        let mut conn = self.conn.clone();
        let v: Option<String> = self.take.key(self.key(key)).invoke_async(&mut conn).await.map_err(unavailable)?;
        Ok(match v {
            Some(v) if v.starts_with(LIVE) => Taken::Fresh(v[1..].to_owned()),
            Some(v) if v.starts_with(CONSUMED) => Taken::Consumed(v[1..].to_owned()),
            _ => Taken::Missing,
        })
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(unavailable)
    }

    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        let mut conn = self.conn.clone();
        let ms = ttl.as_millis().max(1) as u64;
        self.incr.key(self.key(key)).arg(ms).invoke_async(&mut conn).await.map_err(unavailable)
    }

    pub async fn decr(&self, key: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        self.decr.key(self.key(key)).invoke_async::<i64>(&mut conn).await.map(|_| ()).map_err(unavailable)
    }

    pub async fn count(&self, key: &str) -> Result<u64> {
        let mut conn = self.conn.clone();
        let v: Option<u64> = conn.get(self.key(key)).await.map_err(unavailable)?;
        Ok(v.unwrap_or(0))
    }

    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
    }
}

fn unavailable(e: redis::RedisError) -> Unavailable {
    Unavailable(e.to_string())
}

/// A connection manager made on first successful use, so that a node can start while Redis is
/// down. Every command first gets the manager (one connection attempt while there is none), then
/// goes through it; the manager itself reconnects after Redis restarts.
#[derive(Clone)]
struct Connection {
    /// Where and how to connect; behind an `Arc` so the store stays small to clone.
    target: Arc<(redis::Client, ConnectionManagerConfig)>,
    manager: Arc<tokio::sync::OnceCell<ConnectionManager>>,
}

impl Connection {
    async fn manager(&self) -> redis::RedisResult<ConnectionManager> {
        let make = || ConnectionManager::new_with_config(self.target.0.clone(), self.target.1.clone());
        self.manager.get_or_try_init(make).await.cloned()
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.manager().await?.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move { self.manager().await?.req_packed_commands(pipeline, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        self.manager.get().map_or(0, ConnectionLike::get_db)
    }
}
