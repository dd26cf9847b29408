//! The hot paths' writing connection, which commits the writes of requests that meet on it
//! together (group commit).
//!
//! A commit writes every page it changed to the log, and a code exchange changes pages of seven
//! B-trees (a grant, its four indexes, its refresh token and that token's index): nine pages,
//! 37 KB, per grant. Grants committed together share pages: those at the end of the grants'
//! table and of the expiry index, those of their session and user, and, as grant ids sort by
//! the time they were made (`crypto::ordered_id`), those at the end of the ids' index and of
//! the refresh tokens' index on them. Measured on a copy of a benchmark database (320 000
//! grants), a transaction of four grants writes 5.1 pages per grant, of eight 4.3, and SQLite's
//! time per grant falls with them. So a request that finds others waiting for the writer
//! leaves its writes uncommitted for the last of them to commit, up to [`MAX_BATCH`]; it
//! answers only once that commit is made, so no token is handed out before its grant is
//! written. A request that fails undoes its own writes and leaves the others' (see
//! [`Writer::write`]).

use rusqlite::{Connection, ffi};
use std::collections::VecDeque;

/// Requests' writes in one commit at most: the first of them waits for the others' statements
/// (tens of microseconds each) before its answer.
pub(super) const MAX_BATCH: usize = 16;

/// Failed batches remembered for their requests, which ask after them at once.
const FAILED_KEPT: usize = 16;

/// The writing connection and the batch it has open.
pub(super) struct Writer {
    pub(super) conn: Connection,
    /// The open batch's number, while a transaction is open.
    open: Option<u64>,
    /// Requests' writes in the open batch.
    size: usize,
    /// The number of the next batch.
    next: u64,
    /// The last batches whose commit failed, and why.
    failed: VecDeque<(u64, rusqlite::Error)>,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Self { conn, open: None, size: 0, next: 0, failed: VecDeque::new() }
    }

    /// Whether a batch is open: its writes are not committed yet.
    pub(super) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Whether the batch `batch` is still open.
    pub(super) fn holds(&self, batch: u64) -> bool {
        self.open == Some(batch)
    }

    /// Whether the open batch may take no more writes.
    pub(super) fn is_full(&self) -> bool {
        self.size >= MAX_BATCH
    }

    /// Runs `f`, a request's writes, in the open batch (begun here, taking the write lock up
    /// front, if none is open), undone if `f` fails or panics. The batch's number, and what `f`
    /// answered.
    ///
    /// The first request of a batch writes in the transaction itself: failing, it takes the
    /// transaction with it, which holds nothing else. Those after it write in a savepoint, which
    /// costs a copy of each page they change (SQLite's sub-journal).
    pub(super) fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<(u64, rusqlite::Result<T>)> {
        if self.conn.is_autocommit() {
            // None begun yet, or the last batch's one request failed and rolled it back.
            self.open = None;
        }
        let (batch, first) = match self.open {
            Some(batch) => (batch, false),
            None => {
                run(&self.conn, "BEGIN IMMEDIATE")?;
                let batch = self.next;
                (self.open, self.size, self.next) = (Some(batch), 0, batch + 1);
                (batch, true)
            }
        };
        self.size += 1;
        if !first {
            run(&self.conn, "SAVEPOINT request")?;
        }
        let mut undo = Undo { conn: Some(&self.conn), whole: first };
        let done =
            f(&self.conn).and_then(|t| if first { Ok(t) } else { run(&self.conn, "RELEASE request").map(|()| t) });
        if done.is_ok() {
            undo.conn = None;
        }
        drop(undo);
        if self.conn.is_autocommit() {
            // Rolled back: by the first request, failing, or by SQLite itself on an error that
            // ends the transaction (`RAISE(ROLLBACK)`, some I/O errors), which took the other
            // requests' writes with it: their batch failed.
            self.open = None;
            if let (false, Err(e)) = (first, &done) {
                self.failed(batch, copy(e));
            }
        }
        Ok((batch, done))
    }

    /// Commits the open batch, if one is. A commit that fails is rolled back, and remembered
    /// for the batch's requests (see [`Writer::outcome`]).
    pub(super) fn commit(&mut self) {
        let Some(batch) = self.open.take() else { return };
        if self.conn.is_autocommit() {
            // Rolled back by its one request, which failed.
            return;
        }
        if let Err(e) = run(&self.conn, "COMMIT") {
            if !self.conn.is_autocommit()
                && let Err(e) = run(&self.conn, "ROLLBACK")
            {
                tracing::warn!(error = %e, "could not roll back a SQLite transaction");
            }
            self.failed(batch, e);
        }
    }

    fn failed(&mut self, batch: u64, e: rusqlite::Error) {
        if self.failed.len() == FAILED_KEPT {
            self.failed.pop_front();
        }
        self.failed.push_back((batch, e));
    }

    /// Whether the batch `batch`, no longer open, was committed.
    pub(super) fn outcome(&self, batch: u64) -> rusqlite::Result<()> {
        match self.failed.iter().find(|(b, _)| *b == batch) {
            None => Ok(()),
            Some((_, e)) => Err(copy(e)),
        }
    }
}

/// The same error, for another request (rusqlite's errors are not `Clone`).
fn copy(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        e => rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(e.to_string())),
    }
}

/// A request's writes, undone when this goes while it holds the connection: its savepoint, or
/// the `whole` transaction when it is the first of its batch.
struct Undo<'c> {
    conn: Option<&'c Connection>,
    whole: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn else { return };
        if conn.is_autocommit() {
            // SQLite ended the transaction itself: nothing is left to undo.
            return;
        }
        let undone = if self.whole {
            run(conn, "ROLLBACK")
        } else {
            run(conn, "ROLLBACK TO request").and_then(|()| run(conn, "RELEASE request"))
        };
        if let Err(e) = undone {
            tracing::warn!(error = %e, "could not undo a request's writes");
        }
    }
}

/// Runs a statement that answers no rows, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(drop)
}
