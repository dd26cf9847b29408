//! The Redis ephemeral store, shared by every node. Values carry a one-byte state prefix (`v`
//! live, `c` consumed) so that taking a single-use value is one Lua script: two nodes racing to
//! redeem one code run it one after the other inside Redis, and exactly one sees it live.
//! Counters carry `n`.
//!
//! Every value also carries its expiry by the process's [`Clock`] (`v{ms}|{value}`), and the
//! scripts are handed `now`, so that a value past its clock expiry is gone for `get`, `take`,
//! `count` and `incr` alike, atomically; moving the clock in a test expires it on every node.
//! Each key also has the real `PX` TTL as a backstop, so Redis frees it even if nobody reads it
//! again. The clock only runs ahead of real time (see `clock.rs`), so the backstop never drops a
//! value the clock still holds live.

use super::{Result, Taken, Unavailable};
use crate::clock::Clock;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Script, Value};
use std::sync::Arc;
use std::time::Duration;

const LIVE: char = 'v';
const CONSUMED: char = 'c';
const COUNTER: char = 'n';

/// Marks a live value consumed, keeping its remaining TTL; returns what was there before, or
/// nothing when its clock expiry (ARGV[1] is the caller's `now` in ms) has passed.
const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
local sep = string.find(v, '|', 1, true)
local expires = sep and tonumber(string.sub(v, 2, sep - 1))
if not expires or expires <= tonumber(ARGV[1]) then return false end
if string.sub(v, 1, 1) == 'v' then
  redis.call('SET', KEYS[1], 'c' .. string.sub(v, 2), 'KEEPTTL')
end
return v
";

/// Increments a counter whose window starts at the first increment: a counter past its clock
/// expiry (ARGV[1] is `now` in ms) starts again at 1 with a window of ARGV[2] ms. The value is
/// rewritten with the real TTL that is left, so Redis drops it no later than the clock does.
const INCR: &str = r"
local now = tonumber(ARGV[1])
local expires = now + tonumber(ARGV[2])
local n = 1
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  local e = sep and tonumber(string.sub(v, 2, sep - 1))
  if e and e > now then
    expires = e
    n = (tonumber(string.sub(v, sep + 1)) or 0) + 1
  end
end
redis.call('SET', KEYS[1], string.format('n%d|%d', expires, n), 'PX', math.max(expires - now, 1))
return n
";

/// Takes one back from a live counter (ARGV[1] is `now` in ms), never below 0, keeping its
/// window and TTL.
const DECR: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 1) ~= 'n' then return 0 end
local sep = string.find(v, '|', 1, true)
local e = sep and tonumber(string.sub(v, 2, sep - 1))
local n = sep and tonumber(string.sub(v, sep + 1))
if not e or not n or e <= tonumber(ARGV[1]) or n <= 0 then return 0 end
redis.call('SET', KEYS[1], string.format('n%d|%d', e, n - 1), 'KEEPTTL')
return n - 1
";

/// Appends ARGV[2] to the space-separated list at KEYS[1] (a live value; ARGV[1] is `now` in
/// ms), keeps its newest ARGV[3] members and gives it ARGV[4] ms to live; returns the members
/// pushed out, oldest first. One script, so two nodes adding to one list lose nothing.
const ENLIST: &str = r"
local now = tonumber(ARGV[1])
local members = {}
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'v' then
  local sep = string.find(v, '|', 1, true)
  local e = sep and tonumber(string.sub(v, 2, sep - 1))
  if e and e > now then
    for m in string.gmatch(string.sub(v, sep + 1), '%S+') do table.insert(members, m) end
  end
end
table.insert(members, ARGV[2])
local evicted = {}
while #members > tonumber(ARGV[3]) do table.insert(evicted, table.remove(members, 1)) end
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], string.format('v%d|%s', now + ttl, table.concat(members, ' ')), 'PX', ttl)
return evicted
";

/// A stored value: its state, its expiry by the clock (ms since the epoch) and its payload.
struct Stored<'a> {
    state: char,
    expires: i64,
    payload: &'a str,
}

/// Parses `{state}{expires}|{payload}`; anything else (a value written by an older version) is
/// treated as absent, which is what an expired value is.
fn parse(raw: &str) -> Option<Stored<'_>> {
    let state = raw.chars().next()?;
    let (expires, payload) = raw[state.len_utf8()..].split_once('|')?;
    Some(Stored { state, expires: expires.parse().ok()?, payload })
}

fn encode(state: char, expires: i64, payload: &str) -> String {
    format!("{state}{expires}|{payload}")
}

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
    enlist: Arc<Script>,
    clock: Clock,
}

impl RedisStore {
    /// Connects; the manager reconnects by itself after Redis restarts, and until then every
    /// command fails fast with [`Unavailable`]. Redis down at start is not fatal: the node starts,
    /// answers 503 where it needs Redis, and connects once Redis answers.
    pub async fn connect(url: &str, prefix: &str, clock: Clock) -> anyhow::Result<Self> {
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
            enlist: Arc::new(Script::new(ENLIST)),
            clock,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let ms = ttl.as_millis().max(1) as i64;
        let value = encode(LIVE, self.clock.now_ms() + ms, value);
        let mut conn = self.conn.clone();
        conn.pset_ex::<_, _, ()>(self.key(key), value, ms as u64).await.map_err(unavailable)
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.get(self.key(key)).await.map_err(unavailable)?;
        let now = self.clock.now_ms();
        let live = raw.as_deref().and_then(parse).filter(|v| v.state == LIVE && v.expires > now);
        Ok(live.map(|v| v.payload.to_owned()))
    }

    pub async fn take(&self, key: &str) -> Result<Taken> {
        let mut conn = self.conn.clone();
        let now = self.clock.now_ms();
        let raw: Option<String> =
            self.take.key(self.key(key)).arg(now).invoke_async(&mut conn).await.map_err(unavailable)?;
        Ok(match raw.as_deref().and_then(parse) {
            Some(v) if v.state == LIVE => Taken::Fresh(v.payload.to_owned()),
            Some(v) if v.state == CONSUMED => Taken::Consumed(v.payload.to_owned()),
            _ => Taken::Missing,
        })
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(unavailable)
    }

    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        let mut conn = self.conn.clone();
        let ms = ttl.as_millis().max(1) as i64;
        let now = self.clock.now_ms();
        self.incr.key(self.key(key)).arg(now).arg(ms).invoke_async(&mut conn).await.map_err(unavailable)
    }

    pub async fn decr(&self, key: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let now = self.clock.now_ms();
        self.decr.key(self.key(key)).arg(now).invoke_async::<i64>(&mut conn).await.map(|_| ()).map_err(unavailable)
    }

    pub async fn enlist(&self, key: &str, member: &str, cap: usize, ttl: Duration) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let ms = ttl.as_millis().max(1) as i64;
        let now = self.clock.now_ms();
        let mut invocation = self.enlist.key(self.key(key));
        invocation.arg(now).arg(member).arg(cap.max(1)).arg(ms);
        invocation.invoke_async(&mut conn).await.map_err(unavailable)
    }

    pub async fn count(&self, key: &str) -> Result<u64> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.get(self.key(key)).await.map_err(unavailable)?;
        let now = self.clock.now_ms();
        let live = raw.as_deref().and_then(parse).filter(|v| v.state == COUNTER && v.expires > now);
        Ok(live.and_then(|v| v.payload.parse().ok()).unwrap_or(0))
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
        Box::pin(async move {
            let started = std::time::Instant::now();
            let answer = async { self.manager().await?.req_packed_command(cmd).await }.await;
            crate::metrics::redis_command(started.elapsed(), answer.is_ok());
            answer
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let answer = async { self.manager().await?.req_packed_commands(pipeline, offset, count).await }.await;
            crate::metrics::redis_command(started.elapsed(), answer.is_ok());
            answer
        })
    }

    fn get_db(&self) -> i64 {
        self.manager.get().map_or(0, ConnectionLike::get_db)
    }
}
