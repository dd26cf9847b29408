//! SQLite on the hot paths, called in place. sqlx runs each SQLite connection on a worker
//! thread: every statement is a message to that thread and a wake-up back, and every return of
//! the connection to the pool is one more (a ping). On two cores those thread switches were
//! the largest item in the code flow's profile. An indexed SQLite statement takes microseconds,
//! less than the switch, so the statements the code flow, refresh, userinfo and introspection
//! run go through connections of their own instead (readers and one writer), on the calling
//! task's thread.
//!
//! Reads need nothing more: in WAL mode a reader sees the last commit and never waits. Writes
//! here take turns on one connection, and those that meet there commit together
//! ([`super::group_commit`]); they and sqlx's (cold paths: sign-in, account pages,
//! the CLI) take SQLite's write lock in turn, sqlx's transactions up front (`BEGIN
//! IMMEDIATE`), so none sees the database change under it. A checkpointer thread keeps the
//! log's copying and syncing off the request path.
//!
//! The SQL is the portable SQL of the rest of the store: `$n` parameters are bound by their
//! number, as sqlx binds them, whatever order they appear in.

use super::Result;
use super::group_commit::Writer;
use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// A row type read from the SQLite connection here, column by column, by name (as
/// `sqlx::FromRow` reads it from sqlx's).
pub(super) trait FromSqlite: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A tuple is read by position, as sqlx reads one.
macro_rules! tuple_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: rusqlite::types::FromSql),+> FromSqlite for ($($t,)+) {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        }
    };
}
tuple_row!(A 0);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);

/// Reads a row's columns by name, one field after another. Looking a name up compares it with
/// each column's name in turn (and measures that name first), a few percent of a userinfo
/// call over a row of a dozen columns; a statement mostly selects the columns in the order of
/// the fields it is read into, so the column after the last one found is tried first. Only
/// while every field so far was where it was tried: from then on the answer is the one the
/// search would give (the first column of that name), since none before it had the name.
pub(super) struct ByName<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: Option<usize>,
}

impl<'r, 's> ByName<'r, 's> {
    pub(super) fn new(row: &'r rusqlite::Row<'s>) -> Self {
        Self { row, next: Some(0) }
    }

    pub(super) fn get<T: rusqlite::types::FromSql>(&mut self, name: &str) -> rusqlite::Result<T> {
        if let Some(at) = self.next {
            if self.row.as_ref().column_name(at).is_ok_and(|column| column == name) {
                self.next = Some(at + 1);
                return self.row.get(at);
            }
            self.next = None;
        }
        self.row.get(name)
    }
}

/// A row type read by position: its fields from the columns at `at`, `at + 1`, … in the order
/// they are declared. For a statement that joins two tables, whose column names clash (sqlx
/// reads a clashing name as its last column, rusqlite as its first).
pub(super) trait ColumnsAt: Sized {
    /// How many columns the type reads.
    const COLUMNS: usize;
    fn sqlite_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self>;
}

/// [`ColumnsAt`] for a row of sqlx's.
pub(super) trait SqlxColumnsAt<'r, R: sqlx::Row>: Sized {
    fn sqlx_at(row: &'r R, at: usize) -> std::result::Result<Self, sqlx::Error>;
}

/// One column, as a part of a joined row.
macro_rules! column_at {
    ($($ty:ty),*) => {$(
        impl ColumnsAt for $ty {
            const COLUMNS: usize = 1;
            fn sqlite_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
                row.get(at)
            }
        }

        impl<'r, R: sqlx::Row> SqlxColumnsAt<'r, R> for $ty
        where
            usize: sqlx::ColumnIndex<R>,
            $ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            fn sqlx_at(row: &'r R, at: usize) -> std::result::Result<Self, sqlx::Error> {
                row.try_get(at)
            }
        }
    )*};
}
column_at!(i64, Option<i64>);

/// Declares a row struct made of parts that are read by position ([`ColumnsAt`]), each from
/// the columns after the one before: a row of one table, then another's, or single columns.
macro_rules! joined_row {
    ($(#[$m:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        struct $name { $($field: $ty),* }

        impl $crate::store::direct::ColumnsAt for $name {
            const COLUMNS: usize = 0 $(+ <$ty as $crate::store::direct::ColumnsAt>::COLUMNS)*;
            #[allow(unused_assignments)]
            fn sqlite_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
                let mut i = at;
                Ok(Self {$($field: {
                    let v = <$ty as $crate::store::direct::ColumnsAt>::sqlite_at(row, i)?;
                    i += <$ty as $crate::store::direct::ColumnsAt>::COLUMNS;
                    v
                }),*})
            }
        }

        impl<'r, R: sqlx::Row> $crate::store::direct::SqlxColumnsAt<'r, R> for $name
        where
            $($ty: $crate::store::direct::SqlxColumnsAt<'r, R>,)*
        {
            #[allow(unused_assignments)]
            fn sqlx_at(row: &'r R, at: usize) -> std::result::Result<Self, sqlx::Error> {
                let mut i = at;
                Ok(Self {$($field: {
                    let v = <$ty as $crate::store::direct::SqlxColumnsAt<'r, R>>::sqlx_at(row, i)?;
                    i += <$ty as $crate::store::direct::ColumnsAt>::COLUMNS;
                    v
                }),*})
            }
        }

        impl $crate::store::direct::FromSqlite for $name {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                <Self as $crate::store::direct::ColumnsAt>::sqlite_at(row, 0)
            }
        }

        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $name
        where
            $name: $crate::store::direct::SqlxColumnsAt<'r, R>,
        {
            fn from_row(row: &'r R) -> std::result::Result<Self, sqlx::Error> {
                <Self as $crate::store::direct::SqlxColumnsAt<'r, R>>::sqlx_at(row, 0)
            }
        }
    };
}
pub(super) use joined_row;

/// Declares a row struct that both sqlx (`#[derive(sqlx::FromRow)]`, given among its
/// attributes) and the connection here can read, from one list of fields: by name, and by
/// position ([`ColumnsAt`]).
macro_rules! sqlite_row {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$m])*
        $vis struct $name { $($(#[$fm])* $field: $ty,)* }

        impl $crate::store::direct::FromSqlite for $name {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let mut columns = $crate::store::direct::ByName::new(row);
                Ok(Self { $($field: columns.get(stringify!($field))?,)* })
            }
        }

        impl $crate::store::direct::ColumnsAt for $name {
            const COLUMNS: usize = [$(stringify!($field)),*].len();
            fn sqlite_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
                let mut i = at..;
                Ok(Self { $($field: row.get(i.next().unwrap_or(at))?,)* })
            }
        }

        impl<'r, R: sqlx::Row> $crate::store::direct::SqlxColumnsAt<'r, R> for $name
        where
            usize: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn sqlx_at(row: &'r R, at: usize) -> std::result::Result<Self, sqlx::Error> {
                let mut i = at..;
                Ok(Self { $($field: row.try_get(i.next().unwrap_or(at))?,)* })
            }
        }
    };
}
pub(super) use sqlite_row;

/// A bound value; `Sync` so that a request's future holding one stays `Send`.
pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

pub(super) struct Direct {
    /// Readers, one per runtime thread as a rule: in WAL mode they never wait for the writer,
    /// so reading for one request does not wait for another's commit.
    readers: Vec<Mutex<Connection>>,
    /// Writes take turns here. A request waiting its turn yields its runtime thread to other
    /// requests (an async lock) rather than parking the thread on a futex: on two cores that
    /// stood half the runtime still, and cost a tenth of an ES256 code flow.
    /// Shared with the checkpointer, which takes this turn while it makes the log start over
    /// and stops when the connection is gone.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    /// Requests waiting for their turn to write: while there are some, a request leaves its
    /// writes for the last of them to commit (see [`super::group_commit`]).
    waiting: AtomicUsize,
}

/// How often the checkpointer copies the log into the database (see [`checkpoint`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Frames in the log (64 MiB of 4 KiB pages) past which the checkpointer makes it start over:
/// a restart holds writers back while it copies what the last passive checkpoint could not,
/// and syncs, so it is kept to once every second or so at the most the hot paths can write.
const RESTART_AT: i64 = 16_384;
/// What the log's file is cut back to when it starts over, if it grew past it: above the size
/// it reaches between restarts ([`RESTART_AT`] frames of 4 KiB and what is written while the
/// restart waits), so that in steady use the file is neither cut nor grown. Each cut freed
/// its blocks (a discard on an SSD) and the frames past it allocated them again, on the
/// runtime thread of the request that was committing.
const LOG_SIZE_LIMIT: i64 = 128 << 20;

impl Direct {
    /// Opens connections to the database file of a `sqlite:` URL, set up as sqlx's are. None
    /// for an in-memory database, which other connections would not share.
    pub(super) fn open(url: &str) -> anyhow::Result<Option<Self>> {
        let Some(file) = crate::config::sqlite_file(url) else { return Ok(None) };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
        let readers = (0..threads).map(|_| connect(file).map(Mutex::new)).collect::<rusqlite::Result<_>>()?;
        let writer = connect(file)?;
        // Writes here never checkpoint: a checkpoint copies the log into the database and
        // syncs it, milliseconds that would stall the request (and the runtime thread) that
        // happened to commit past the threshold. The checkpointer does it beside them.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
        let writer = Arc::new(tokio::sync::Mutex::new(Writer::new(writer)));
        checkpoint(connect(file)?, Arc::downgrade(&writer))?;
        Ok(Some(Self { readers, writer, waiting: AtomicUsize::new(0) }))
    }

    /// Runs reads: on the writer if it is free, else on a reader that is free, else on the
    /// first. A lock is held for the statements `f` runs, microseconds, never across an await.
    ///
    /// The writer first, because its page cache outlives its own commits, where a reader drops
    /// all of its cache whenever another connection has committed and reads every page again
    /// (a system call each): on the code flow that was a dozen reads of the file per flow. Not
    /// while it holds a batch's writes, which are not committed yet.
    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        if let Ok(writer) = self.writer.try_lock()
            && !writer.is_open()
        {
            return f(&writer.conn).map_err(to_sqlx);
        }
        let conn = self.readers.iter().find_map(|r| r.try_lock().ok()).unwrap_or_else(|| lock(&self.readers[0]));
        f(&conn).map_err(to_sqlx)
    }

    /// Runs writes (and the reads they depend on) in one transaction on the writing connection,
    /// which takes the write lock up front (`BEGIN IMMEDIATE`): committed when `f` returns
    /// `Ok`, undone when it fails. Committed with those of the requests that were waiting for
    /// the writer meanwhile, if any were (see [`super::group_commit`]); this returns once the
    /// commit is made. `BEGIN` and `COMMIT` are statements prepared once, as the others are (a
    /// rusqlite `Transaction` parses both again every time).
    pub(super) async fn transaction<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut writer = {
            let _waiting = Waiting::count(&self.waiting);
            self.writer.lock().await
        };
        let written = writer.write(f);
        // The last request of the batch commits: the one that finds none waiting behind it.
        if self.waiting.load(Ordering::SeqCst) == 0 || writer.is_full() {
            writer.commit();
        }
        let (batch, done) = written.map_err(to_sqlx)?;
        let committed = match &done {
            Ok(_) if writer.holds(batch) => {
                // Behind the requests now waiting (the lock is fair): when this one's turn comes
                // again, the last of them has committed, or it commits itself, were they gone.
                drop(writer);
                let mut writer = self.writer.lock().await;
                if writer.holds(batch) {
                    writer.commit();
                }
                writer.outcome(batch)
            }
            Ok(_) => writer.outcome(batch),
            Err(_) => Ok(()),
        };
        // The next writer, woken as the lock was released, waits in this runtime thread's
        // next-task slot, which no other thread may take from: let it run now, not after the
        // rest of this request (with RS256, two signatures: half a millisecond, while the
        // other thread ran out of work; a third of the RS256 refreshes per second were lost).
        tokio::task::yield_now().await;
        committed.and(done).map_err(to_sqlx)
    }
}

/// A request counted among those waiting for the writer until this goes: when it has its
/// turn, or has given up waiting.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection set up as sqlx's: WAL (already the database's mode), `synchronous=NORMAL`,
/// foreign keys on. sqlx's own writes, and other processes' (the CLI), may hold the write lock
/// for a moment: a writer here waits for it in steps of 50 µs, up to 5 s.
fn connect(file: &Path) -> rusqlite::Result<Connection> {
    let mut conn =
        Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(32);
    // Plans that do not depend on the values bound: otherwise SQLite re-plans a statement whose
    // bound value may change its plan (`expires_at > $2`) on every run, parsing it again.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

fn wait_for_lock(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(50));
    attempt < 100_000
}

/// Starts a thread that checkpoints the write-ahead log every [`CHECKPOINT_EVERY`] on a
/// connection of its own, `PASSIVE`ly (it waits for no reader or writer), until `open` is gone.
///
/// A passive checkpoint copies the log into the database but never starts the log over: under
/// steady traffic some reader always holds a snapshot in it, so it grew without end (2 GB in a
/// 10-minute run, every read searching a larger index of it). Past [`RESTART_AT`] frames the
/// checkpointer therefore also `RESTART`s it: it waits (at most 100 ms) for the readers of the
/// log to finish, which takes microseconds, new readers reading the database itself, and holds
/// writers back meanwhile; the next commit then writes the log from its start. It holds them
/// back by taking the hot writer's turn first: a writer that found SQLite's write lock taken
/// instead would wait in its busy handler, sleeping the runtime thread it runs on (and every
/// request queued on it) for the restart's two syncs, ten milliseconds and more, where one
/// waiting for its turn yields the thread to requests that read.
fn checkpoint(mut conn: Connection, writer: Weak<tokio::sync::Mutex<Writer>>) -> anyhow::Result<()> {
    conn.busy_handler(Some(|attempt| {
        std::thread::sleep(Duration::from_micros(50));
        attempt < 2_000
    }))?;
    std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            let Some(writer) = writer.upgrade() else { break };
            // A batch left open by requests that all went away before committing it.
            if let Ok(mut writer) = writer.try_lock() {
                writer.commit();
            }
            let turn = || {
                let mut writer = writer.blocking_lock();
                writer.commit();
                tokio::sync::MutexGuard::map(writer, |w| &mut w.conn)
            };
            if let Err(e) = checkpoint_once(&conn, RESTART_AT, turn) {
                tracing::warn!(error = %e, "could not checkpoint the SQLite log");
            }
        }
    })?;
    Ok(())
}

/// One checkpoint, which restarts the log if it has `restart_at` frames or more, holding
/// the hot writer's turn (what `turn` takes) meanwhile, and then starts the new log on the
/// hot writer.
fn checkpoint_once<W: std::ops::Deref<Target = Connection>>(
    conn: &Connection,
    restart_at: i64,
    turn: impl FnOnce() -> W,
) -> rusqlite::Result<()> {
    if log_frames(conn, "PASSIVE")? >= restart_at {
        // Once more without the turn: the first copy (a tenth of a second of commits, and
        // their sync) took milliseconds, and what was committed meanwhile is what the restart
        // would otherwise copy and sync with every writer held back.
        log_frames(conn, "PASSIVE")?;
        let writer = turn();
        log_frames(conn, "RESTART")?;
        start_log(&writer)?;
    }
    Ok(())
}

/// Starts the log over with a commit of one frame (the database header's user version, written
/// as it is). The first commit after a restart writes the log's new header and syncs it, a
/// flush of the disk's cache: made here, on the checkpointer's thread, instead of by the next
/// request's commit on a runtime thread, which stood still for it (with every request queued
/// on it) for milliseconds.
fn start_log(writer: &Connection) -> rusqlite::Result<()> {
    let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    writer.pragma_update(None, "user_version", version)
}

/// Checkpoints in `mode`; the frames in the log.
fn log_frames(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}

/// Prepares `sql` (from the connection's statement cache) and binds `params`, `$n` to
/// `params[n - 1]`.
fn prepare<'c>(conn: &'c Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql)?;
    for i in 1..=stmt.parameter_count() {
        let n = stmt.parameter_name(i).and_then(|name| name.strip_prefix('$')).and_then(|n| n.parse::<usize>().ok());
        let value = n
            .and_then(|n| params.get(n.wrapping_sub(1)))
            .ok_or(rusqlite::Error::InvalidParameterCount(i, params.len()))?;
        stmt.raw_bind_parameter(i, value)?;
    }
    Ok(stmt)
}

/// The first row `sql` answers, if any.
pub(super) fn query_opt<T: FromSqlite>(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
) -> rusqlite::Result<Option<T>> {
    crate::metrics::time_statement(|| {
        let mut stmt = prepare(conn, sql, params)?;
        let mut rows = stmt.raw_query();
        rows.next()?.map(T::from_sqlite).transpose()
    })
}

/// Every row `sql` answers.
pub(super) fn query_all<T: FromSqlite>(conn: &Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<Vec<T>> {
    crate::metrics::time_statement(|| {
        let mut stmt = prepare(conn, sql, params)?;
        let mut rows = stmt.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            all.push(T::from_sqlite(row)?);
        }
        Ok(all)
    })
}

/// Whether `sql` answers any row.
pub(super) fn exists(conn: &Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<bool> {
    crate::metrics::time_statement(|| {
        let mut stmt = prepare(conn, sql, params)?;
        let mut rows = stmt.raw_query();
        Ok(rows.next()?.is_some())
    })
}

/// Runs a statement that answers no rows; how many rows it changed.
pub(super) fn execute(conn: &Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<usize> {
    crate::metrics::time_statement(|| prepare(conn, sql, params)?.raw_execute())
}

/// rusqlite's errors as the store's: a busy or locked database, or one that cannot be read, is
/// "unavailable" (a 503), as sqlx's I/O errors are; anything else is a bug in a statement.
fn to_sqlx(e: rusqlite::Error) -> sqlx::Error {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen) =>
        {
            sqlx::Error::Io(std::io::Error::other(e))
        }
        _ => sqlx::Error::Decode(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A database of its own in WAL mode with a table `t`, a connection that set it up, a
    /// writer that never checkpoints, and a checkpointer.
    struct Log {
        dir: PathBuf,
        file: PathBuf,
        setup: Connection,
        writer: Connection,
        checkpointer: Connection,
    }

    impl Log {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("latchkey-wal-{}", crate::crypto::random_id()));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("wal.db");
            let setup = Connection::open(&file).unwrap();
            setup.pragma_update(None, "journal_mode", "WAL").unwrap();
            setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)", []).unwrap();
            let writer = connect(&file).unwrap();
            writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
            let checkpointer = connect(&file).unwrap();
            Self { dir, file, setup, writer, checkpointer }
        }
    }

    sqlite_row! {
        #[derive(sqlx::FromRow, Debug, PartialEq)]
        struct Pair {
            k: String,
            v: String,
        }
    }

    /// Columns are read by name whatever the order a statement selects them in, and a name
    /// that two columns have is read from the first of them, as a search by name does.
    #[test]
    fn rows_are_read_by_name_in_any_order() {
        let conn = Connection::open_in_memory().unwrap();
        let pair = |k: &str, v: &str| Pair { k: k.into(), v: v.into() };
        let read = |sql: &str| query_opt::<Pair>(&conn, sql, &[]).unwrap().unwrap();
        assert_eq!(read("SELECT 'a' AS k, 'b' AS v"), pair("a", "b"));
        assert_eq!(read("SELECT 'b' AS v, 'a' AS k"), pair("a", "b"));
        assert_eq!(read("SELECT 'x' AS other, 'a' AS k, 'b' AS v"), pair("a", "b"));
        assert_eq!(read("SELECT 'a' AS k, 'b' AS K, 'c' AS v"), pair("a", "c"));
        assert_eq!(read("SELECT 'b' AS v, 'a' AS k, 'c' AS k"), pair("a", "b"));
        assert_eq!(read("SELECT 'a' AS K, 'b' AS V"), pair("a", "b"));
        assert!(query_opt::<Pair>(&conn, "SELECT 'a' AS k", &[]).is_err(), "a missing column is an error");
    }

    #[test]
    fn under_steady_reads_the_log_starts_over_instead_of_growing() {
        let Log { dir, file, setup, writer, checkpointer } = Log::new();

        // A reader that nearly always holds a snapshot, as steady traffic does.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (file, stop) = (file.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&file).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let tx = conn.transaction().unwrap();
                    tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                    tx.commit().unwrap();
                }
            })
        };
        for i in 0..600 {
            let key = crate::crypto::random_id();
            writer.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (&key, "x".repeat(300))).unwrap();
            if i % 20 == 19 {
                checkpoint_once(&checkpointer, 64, || &writer).unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();

        // Without the restart the log holds every frame of the 600 commits (over a thousand).
        let frames = log_frames(&checkpointer, "PASSIVE").unwrap();
        assert!(frames < 64 + 20 * 8, "the log has {frames} frames");
        drop((setup, writer, checkpointer));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_checkpointer_starts_the_new_log_itself() {
        let Log { dir, setup, writer, checkpointer, .. } = Log::new();
        setup.pragma_update(None, "user_version", 7).unwrap();
        for _ in 0..100 {
            writer.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [crate::crypto::random_id()]).unwrap();
        }
        checkpoint_once(&checkpointer, 64, || &writer).unwrap();

        // The log holds the one frame of the checkpointer's commit, not the 100 commits' (a
        // restart alone leaves them there until the next commit starts the log over), and the
        // user version is as it was.
        assert_eq!(log_frames(&checkpointer, "PASSIVE").unwrap(), 1);
        let version: i64 = checkpointer.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 7);
        assert_eq!(checkpointer.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 100);
        drop((setup, writer, checkpointer));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Requests that each write the keys of one of `requests` on a `Direct` over `log`'s
    /// database, all waiting for the writer when it becomes free; what each answered.
    async fn queued_writes(log: &Log, requests: &[&'static [&'static str]]) -> Vec<Result<()>> {
        let direct = Arc::new(Direct::open(&format!("sqlite://{}", log.file.display())).unwrap().unwrap());
        let turn = direct.writer.lock().await;
        let tasks: Vec<_> = requests
            .iter()
            .map(|&keys| {
                let direct = direct.clone();
                tokio::spawn(async move {
                    direct
                        .transaction(|c| {
                            for k in keys {
                                c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])?;
                            }
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        while direct.waiting.load(Ordering::SeqCst) < requests.len() {
            tokio::task::yield_now().await;
        }
        drop(turn);
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        done
    }

    fn keys(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|k| k.unwrap()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn requests_that_wait_for_the_writer_commit_together() {
        let log = Log::new();
        // A reader's snapshot in the log, so that no commit starts it over: the frames after
        // the requests' commits are those before and theirs.
        let mut reader = connect(&log.file).unwrap();
        let snapshot = reader.transaction().unwrap();
        assert!(keys(&snapshot).is_empty());
        let before = log_frames(&log.checkpointer, "PASSIVE").unwrap();
        let done = queued_writes(&log, &[&["a"], &["b"], &["c"], &["d"]]).await;
        assert!(done.iter().all(Result::is_ok), "{done:?}");
        // One commit writes the table's page and its key's once each; four commits, four times.
        assert_eq!(log_frames(&log.checkpointer, "PASSIVE").unwrap(), before + 2);
        drop(snapshot);
        assert_eq!(keys(&log.setup), ["a", "b", "c", "d"]);
        std::fs::remove_dir_all(&log.dir).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_that_fails_undoes_its_own_writes_only() {
        let log = Log::new();
        // The first fails alone in its batch; the third writes "e", then fails on "b", which the
        // second wrote in the batch they share.
        let done = queued_writes(&log, &[&["a", "a"], &["b"], &["e", "b"], &["c"]]).await;
        assert!(done[0].is_err() && done[1].is_ok() && done[2].is_err() && done[3].is_ok(), "{done:?}");
        assert_eq!(keys(&log.setup), ["b", "c"]);
        std::fs::remove_dir_all(&log.dir).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_that_sqlite_rolls_back_fails_for_every_request_in_it() {
        let log = Log::new();
        log.setup
            .execute_batch(
                "CREATE TRIGGER t_doomed BEFORE INSERT ON t WHEN NEW.k = 'doomed'
                 BEGIN SELECT RAISE(ROLLBACK, 'doomed'); END",
            )
            .unwrap();
        // The second ends the transaction the first wrote in; the third begins another.
        let done = queued_writes(&log, &[&["a"], &["doomed"], &["c"]]).await;
        assert!(done[0].is_err() && done[1].is_err() && done[2].is_ok(), "{done:?}");
        assert_eq!(keys(&log.setup), ["c"]);
        std::fs::remove_dir_all(&log.dir).unwrap();
    }
}
