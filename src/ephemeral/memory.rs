//! The in-process ephemeral store: a map behind one lock, purged of expired entries by a
//! background task (the shape of mini-redis's `db.rs`). Expiry is a timestamp of the process's
//! [`Clock`], so a test that moves the clock expires codes, flows and counters at once. The map
//! is capped in bytes: past the cap the oldest entries go first, so a flood of unauthenticated
//! requests (each starting a login flow) costs a bounded amount of memory and only evicts flows
//! older than the newest ones.

use super::Taken;
use crate::clock::Clock;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Entry {
    value: String,
    /// Milliseconds since the epoch, by the store's clock.
    expires: i64,
    consumed: bool,
    /// Insertion order, the key of this entry in [`Map::order`].
    seq: u64,
}

/// What an entry costs beside its key and value: its slot in the map, its place in the order
/// index, the allocations' headers, and the value's rounding up to the allocator's size class
/// (up to an eighth). Measured with mimalloc as RSS per entry (a 55-byte key; values of 64 and
/// 400 bytes): 155–205 bytes beside key and value when the table is full, 304–353 just after it
/// doubled. The cap is a bound on memory, so this is the worst case.
const ENTRY_OVERHEAD: usize = 320;

fn cost(key: &str, value: &str) -> usize {
    key.len() + value.len() + value.len() / 8 + ENTRY_OVERHEAD
}

/// The entries, spread by key over tables that grow and shrink on their own. A table grows by
/// moving its entries to one twice its size, under the store's lock: one table of the 76 000
/// codes of a minute of code flows at 64 concurrent took 10–34 ms to double, every request
/// waiting (once a node's first peak, then at every peak once tables shrink after it); over
/// sixteen, the slowest insert or purge slice of that minute took 1.3–1.7 ms.
#[derive(Default)]
struct Shards {
    tables: [HashMap<Arc<str>, Entry>; SHARDS],
    hasher: RandomState,
}

const SHARDS: usize = 16;

/// A table this size stays whatever the load (all of them: half a megabyte).
const SHRINK_FLOOR: usize = 256;

impl Shards {
    fn shard(&self, key: &str) -> usize {
        self.hasher.hash_one(key) as usize % SHARDS
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        self.tables[self.shard(key)].get(key)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        let shard = self.shard(key);
        self.tables[shard].get_mut(key)
    }

    fn insert(&mut self, key: Arc<str>, entry: Entry) {
        let shard = self.shard(&key);
        self.tables[shard].insert(key, entry);
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let shard = self.shard(key);
        self.tables[shard].remove(key)
    }

    fn len(&self) -> usize {
        self.tables.iter().map(HashMap::len).sum()
    }

    /// Gives back the tables of a peak that has passed. A map keeps its largest table for good,
    /// resident because each removal writes its slot's marker: a minute of code flows at 64
    /// concurrent left 6 MB of empty slots. A table's entries move to one for twice as many,
    /// under the lock, once they are a thirty-second of its slots: moving 6 000 entries out of
    /// a table of 229 000 took 0.8–1.5 ms (`shrink_to` 2.2–2.5), and a table here holds a
    /// sixteenth of that.
    fn shrink_after_peak(&mut self) {
        for table in &mut self.tables {
            let len = table.len();
            if table.capacity() > SHRINK_FLOOR && len < table.capacity() / 32 {
                let old = std::mem::replace(table, HashMap::with_capacity((2 * len).max(SHRINK_FLOOR)));
                table.extend(old);
            }
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.tables.iter().map(HashMap::capacity).sum()
    }

    #[cfg(test)]
    fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.tables.iter().flat_map(HashMap::keys)
    }
}

#[derive(Default)]
struct Map {
    /// The key is shared with [`Map::order`], one allocation for both.
    entries: Shards,
    /// Keys by insertion order, oldest first: what goes when the store is over its cap.
    order: BTreeMap<u64, Arc<str>>,
    next_seq: u64,
    bytes: usize,
    /// Where the next slice of the purge starts (a `seq`).
    cursor: u64,
}

impl Map {
    fn insert(&mut self, key: &str, value: String, expires: i64, max_bytes: usize) {
        self.remove(key);
        self.next_seq += 1;
        let seq = self.next_seq;
        self.bytes += cost(key, &value);
        let key: Arc<str> = key.into();
        self.order.insert(seq, key.clone());
        self.entries.insert(key, Entry { value, expires, consumed: false, seq });
        while self.bytes > max_bytes && self.entries.len() > 1 {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= cost(&oldest, &e.value);
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.seq);
            self.bytes -= cost(key, &e.value);
        }
    }

    /// Removes the expired among the next `budget` entries in insertion order, going on from
    /// where the last call stopped and starting over at the end. A purge in slices holds the
    /// lock for microseconds; a scan of the whole map (hundreds of thousands of opaque tokens
    /// under load) held every request up for milliseconds.
    fn purge_some(&mut self, now: i64, budget: usize) {
        let mut expired = Vec::new();
        let mut last = None;
        for (seq, key) in self.order.range(self.cursor..).take(budget) {
            last = Some(*seq);
            if self.entries.get(key).is_some_and(|e| e.expires <= now) {
                expired.push(key.clone());
            }
        }
        self.cursor = match last {
            Some(seq) if self.order.range(seq + 1..).next().is_some() => seq + 1,
            _ => 0,
        };
        for key in expired {
            self.remove(&key);
        }
        self.entries.shrink_after_peak();
    }

    /// One slice's size: enough that a whole pass takes at most [`FULL_PASS_TICKS`] ticks.
    fn purge_budget(&self) -> usize {
        (self.entries.len() / FULL_PASS_TICKS).max(1024)
    }
}

/// A std mutex: every critical section is a map operation, never held across an await.
#[derive(Clone)]
pub struct MemoryStore {
    map: Arc<Mutex<Map>>,
    clock: Clock,
    max_bytes: usize,
}

/// The purge looks at a slice of the map this often…
const PURGE_EVERY: Duration = Duration::from_millis(100);
/// …so that it goes through all of it in at most this many slices (30 s).
const FULL_PASS_TICKS: usize = 300;

impl MemoryStore {
    /// A store capped at `max_bytes`, with its purge task running on the current runtime (if any).
    pub fn start(clock: Clock, max_bytes: usize) -> Self {
        let store = Self { map: Arc::default(), clock, max_bytes };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&store.map);
            let clock = store.clock.clone();
            rt.spawn(async move {
                let mut tick = tokio::time::interval(PURGE_EVERY);
                loop {
                    tick.tick().await;
                    let Some(map) = weak.upgrade() else { break };
                    let mut map = map.lock().unwrap();
                    let budget = map.purge_budget();
                    map.purge_some(clock.now_ms(), budget);
                }
            });
        }
        store
    }

    fn expiry(&self, ttl: Duration) -> i64 {
        self.clock.now_ms() + ttl.as_millis() as i64
    }

    pub fn put(&self, key: &str, value: &str, ttl: Duration) {
        let expires = self.expiry(ttl);
        self.map.lock().unwrap().insert(key, value.to_owned(), expires, self.max_bytes);
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let now = self.clock.now_ms();
        let map = self.map.lock().unwrap();
        map.entries.get(key).filter(|e| e.expires > now && !e.consumed).map(|e| e.value.clone())
    }

    pub fn take(&self, key: &str) -> Taken {
        let now = self.clock.now_ms();
        let mut map = self.map.lock().unwrap();
        match map.entries.get_mut(key) {
            Some(e) if e.expires <= now => Taken::Missing,
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

    /// Adds one to the counter at `key`; its window starts at the first increment.
    pub fn incr(&self, key: &str, ttl: Duration) -> u64 {
        let now = self.clock.now_ms();
        let mut map = self.map.lock().unwrap();
        let (n, expires) = match map.entries.get(key) {
            Some(e) if e.expires > now => (e.value.parse::<u64>().unwrap_or(0) + 1, e.expires),
            _ => (1, now + ttl.as_millis() as i64),
        };
        map.insert(key, n.to_string(), expires, self.max_bytes);
        n
    }

    /// Takes one back from the counter at `key`, never below 0, keeping its window.
    pub fn decr(&self, key: &str) {
        let now = self.clock.now_ms();
        let mut map = self.map.lock().unwrap();
        if let Some((n, expires)) =
            map.entries.get(key).filter(|e| e.expires > now).map(|e| (e.value.parse::<u64>().unwrap_or(0), e.expires))
        {
            map.insert(key, n.saturating_sub(1).to_string(), expires, self.max_bytes);
        }
    }

    /// Appends `member` to the list at `key`, keeping its newest `cap` members; the list lives
    /// `ttl` from now. Answers the members pushed out, oldest first.
    pub fn enlist(&self, key: &str, member: &str, cap: usize, ttl: Duration) -> Vec<String> {
        let now = self.clock.now_ms();
        let mut map = self.map.lock().unwrap();
        let mut members: Vec<String> = match map.entries.get(key) {
            Some(e) if e.expires > now => e.value.split(' ').filter(|m| !m.is_empty()).map(Into::into).collect(),
            _ => Vec::new(),
        };
        members.push(member.to_owned());
        let out = members.len().saturating_sub(cap.max(1));
        let evicted = members.drain(..out).collect();
        map.insert(key, members.join(" "), now + ttl.as_millis() as i64, self.max_bytes);
        evicted
    }

    /// The bytes the store counts against its cap (for tests).
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.map.lock().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn over_the_cap_the_oldest_entries_go_first() {
        let one = cost("flow:000", &"x".repeat(100));
        let store = MemoryStore::start(Clock::system(), one * 10);
        for i in 0..25 {
            store.put(&format!("flow:{i:03}"), &"x".repeat(100), MINUTE);
        }
        assert!(store.bytes() <= one * 10, "{} bytes", store.bytes());
        assert_eq!(store.get("flow:000"), None, "the earliest is gone");
        assert_eq!(store.get("flow:014"), None);
        assert!(store.get("flow:015").is_some() && store.get("flow:024").is_some(), "the newest ten stay");
        store.delete("flow:024");
        store.put("flow:024", "y", MINUTE);
        assert_eq!(store.get("flow:024").as_deref(), Some("y"), "a rewrite replaces, not adds");
        assert!(store.get("flow:015").is_some(), "nothing else was evicted for it");
    }

    #[test]
    fn the_purge_goes_through_the_map_in_slices_and_starts_over() {
        let mut map = Map::default();
        for i in 0..10 {
            let expires = if i % 2 == 0 { 100 } else { 1_000 };
            map.insert(&format!("k{i}"), "v".into(), expires, usize::MAX);
        }
        map.purge_some(500, 4);
        assert_eq!(map.entries.len(), 8, "the first slice held two expired entries");
        map.purge_some(500, 4);
        map.purge_some(500, 4);
        assert_eq!(map.entries.len(), 5, "every expired entry went in one pass");
        assert!(map.entries.keys().all(|k| k.trim_start_matches('k').parse::<u32>().unwrap() % 2 == 1));
        map.insert("k10", "v".into(), 100, usize::MAX);
        map.purge_some(500, 4);
        map.purge_some(500, 4);
        assert!(map.entries.get("k10").is_none(), "the pass started over and reached the new entry");
        assert_eq!(map.bytes, (1..10).step_by(2).map(|i| cost(&format!("k{i}"), "v")).sum::<usize>());
    }

    #[test]
    fn the_table_of_a_passed_peak_is_given_back() {
        let mut map = Map::default();
        for i in 0..200_000 {
            map.insert(&format!("code:{i}"), "v".into(), 100, usize::MAX);
        }
        map.insert("session:1", "v".into(), 1_000, usize::MAX);
        let peak = map.entries.capacity();
        while map.entries.len() > 1 {
            let budget = map.purge_budget();
            map.purge_some(500, budget);
        }
        assert!(
            map.entries.capacity() <= SHRINK_FLOOR * 2 * SHARDS,
            "{} slots of {peak} kept for one entry",
            map.entries.capacity()
        );
        assert_eq!(map.entries.get("session:1").map(|e| e.value.as_str()), Some("v"), "what was left is kept");
    }
}
