//! Postgres on the hot paths, on connections of its own. sqlx's pool pings every connection it
//! gets back (sqlx-core 0.9 `return_to_pool`, unconditionally): one more round trip, and one
//! more wake-up of a Postgres backend, for every statement run on the pool. The statements the
//! code flow, refresh, userinfo and introspection run go through the connections here instead,
//! which are handed from request to request without a ping, and read rows as Postgres rows
//! (without the `Any` driver's copy of every value).
//!
//! A request that goes away mid-statement leaves its connection with an answer half read; the
//! next lease of that slot first waits for the connection to be ready again (as the pool's ping
//! does), and opens a new one if that fails, as it does after a statement that failed the way a
//! lost link fails. So a restarted Postgres costs each slot one failed statement (a 503), as it
//! costs each of the pool's connections.

use super::Result;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Error};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};

pub(super) struct PgDirect {
    options: PgConnectOptions,
    slots: Vec<Mutex<Slot>>,
    /// One permit per slot: a holder always finds a slot free.
    free: Semaphore,
    /// How long a request waits for a slot, and for a connection to open.
    wait: Duration,
}

impl PgDirect {
    /// `slots` connections to the database at `url`, opened when first used.
    pub(super) fn new(url: &str, slots: usize, wait: Duration) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        Ok(Self {
            // Plans made once per connection, whatever the values bound: these statements look
            // rows up by key, so the plan for one value suits every other, and Postgres never
            // weighs planning one anew for a run.
            options: options.options([("plan_cache_mode", "force_generic_plan")]).disable_statement_logging(),
            slots: (0..slots).map(|_| Mutex::default()).collect(),
            free: Semaphore::new(slots),
            wait,
        })
    }

    /// A connection for one request's statements, opened if its slot has none.
    pub(super) async fn lease(&self) -> Result<Lease<'_>> {
        let permit = tokio::time::timeout(self.wait, self.free.acquire()).await.map_err(|_| Error::PoolTimedOut)?;
        let permit = permit.map_err(|_| Error::PoolClosed)?;
        let mut slot = self.slots.iter().find_map(|s| s.try_lock().ok()).ok_or(Error::PoolTimedOut)?;
        if slot.interrupted
            && let Some(conn) = &mut slot.conn
            && conn.ping().await.is_err()
        {
            slot.conn = None;
        }
        slot.interrupted = false;
        if slot.conn.is_none() {
            let conn =
                tokio::time::timeout(self.wait, self.options.connect()).await.map_err(|_| Error::PoolTimedOut)??;
            slot.conn = Some(conn);
        }
        Ok(Lease { slot, _permit: permit })
    }
}

#[derive(Default)]
struct Slot {
    /// Open, or not yet (re)opened.
    conn: Option<PgConnection>,
    /// A statement on it was dropped before it ended.
    interrupted: bool,
}

/// A connection held for a statement, whose outcome goes to [`Lease::keep`].
pub(super) struct Lease<'a> {
    // Released before the permit (fields drop in order), so a permit always finds a free slot.
    slot: MutexGuard<'a, Slot>,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The connection, for one statement.
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        self.slot.interrupted = true;
        self.slot.conn.as_mut().expect("a lease holds an open connection")
    }

    /// Ends the lease with the statement's outcome: the connection stays unless the statement
    /// failed as a broken link does.
    pub(super) fn keep<T>(mut self, outcome: Result<T>) -> Result<T> {
        self.slot.interrupted = false;
        if matches!(&outcome, Err(Error::Io(_) | Error::Tls(_) | Error::Protocol(_) | Error::WorkerCrashed)) {
            self.slot.conn = None;
        }
        outcome
    }
}

/// Runs a statement on the store's Postgres connections when it has them, else on its pool:
/// `$body` is the same sqlx call for either, given the executor `$e`. `pooled!(changed …)`
/// answers how many rows an `execute` changed.
macro_rules! pooled {
    (changed $store:expr, |$e:ident| $body:expr) => {
        $crate::store::pg_direct::pooled!(@run $store, $e, $body.await.map(|done| done.rows_affected()))
    };
    ($store:expr, |$e:ident| $body:expr) => {
        $crate::store::pg_direct::pooled!(@run $store, $e, $body.await)
    };
    (@run $store:expr, $e:ident, $run:expr) => {
        match &$store.pg {
            Some(pg) => {
                let mut lease = pg.lease().await?;
                let outcome = {
                    let $e = lease.conn();
                    // Timed here: these connections report no statements to `tracing`.
                    $crate::metrics::time_query(async { $run }).await
                };
                lease.keep(outcome)
            }
            None => {
                let $e = &$store.pool;
                $run
            }
        }
    };
}
pub(super) use pooled;
