//! The one place that reads the wall clock. Protocol code takes `now` as an argument; the server
//! and the CLI build one [`Clock`] at start and hand it to everything that needs the time (the
//! state, the ephemeral store, the key refresh loop, the mail outbox).
//!
//! Tests run the real binary as a child process, so they move its time from outside: when
//! `LATCHKEY_TEST_CLOCK_FILE` names a file, its content is an offset in seconds added to the
//! system time. Every process started on one set of backends (each node and each CLI run) reads
//! the same file, so one write moves them all together. Why a file read on every call rather than
//! a signal, an admin endpoint or a cached value: it needs no extra surface in production, works
//! for the short-lived CLI as well as the server, and the file is re-read each time because
//! mtimes are too coarse to notice two writes in a row; the cost (a small read) is paid only
//! in tests. The offset may only grow: everything that expires by this clock also expires by the
//! real one (Redis TTLs are a backstop), which is sound only while test time runs ahead.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// The environment variable that names the test clock's offset file. Test use only.
pub const TEST_CLOCK_FILE: &str = "LATCHKEY_TEST_CLOCK_FILE";

/// Source of the current time, held in the application state so tests can move it.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Offset,
}

#[derive(Clone, Debug, Default)]
enum Offset {
    /// Production: the system time as it is.
    #[default]
    None,
    /// Another process moves this one's time by writing seconds into the file.
    File(Arc<Path>),
    /// Unit tests move the time of a clock they hold.
    Shared(Arc<AtomicI64>),
}

impl Clock {
    /// A clock that reads the system time.
    pub fn system() -> Self {
        Self { offset: Offset::None }
    }

    /// The system clock, or the test clock when `LATCHKEY_TEST_CLOCK_FILE` is set (the server
    /// then warns loudly at start-up: see [`Clock::warning`]).
    pub fn from_env() -> Self {
        match std::env::var_os(TEST_CLOCK_FILE).filter(|v| !v.is_empty()) {
            Some(path) => Self { offset: Offset::File(PathBuf::from(path).into()) },
            None => Self::system(),
        }
    }

    /// What to print at start-up when this clock can be moved from outside: a server whose time
    /// a file decides must never run in production.
    pub fn warning(&self) -> Option<String> {
        let Offset::File(path) = &self.offset else { return None };
        Some(format!(
            "WARNING: {TEST_CLOCK_FILE} is set ({}): this server's clock is moved by that file. \
             For tests only; never set it in production.",
            path.display()
        ))
    }

    /// A clock that unit tests move with [`Clock::advance`].
    pub fn adjustable() -> Self {
        Self { offset: Offset::Shared(Arc::default()) }
    }

    /// Moves an [`adjustable`](Clock::adjustable) clock (and its clones) forward by `secs`; other
    /// clocks are not moved.
    pub fn advance(&self, secs: i64) {
        if let Offset::Shared(o) = &self.offset {
            o.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> Timestamp {
        self.now_ms().div_euclid(1000)
    }

    /// Milliseconds since the epoch, for expiries finer than a second (the ephemeral store).
    pub fn now_ms(&self) -> i64 {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        ms + self.offset_secs() * 1000
    }

    /// Whether another process may move this clock (and so [`Clock::moved`] can ever finish).
    pub fn is_movable(&self) -> bool {
        matches!(self.offset, Offset::File(_))
    }

    /// Finishes when the offset differs from `seen`; never, unless the clock is moved from
    /// outside. Lets periodic work (the key refresh) react at once when a test moves time.
    pub async fn moved(&self, seen: i64) -> i64 {
        if !self.is_movable() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(POLL).await;
            let now = self.offset_secs();
            if now != seen {
                return now;
            }
        }
    }

    /// The current offset in seconds (0 for the system clock, or when the file is missing or
    /// not a number: a test that has not moved time yet has not written it).
    pub fn offset_secs(&self) -> i64 {
        match &self.offset {
            Offset::None => 0,
            Offset::File(path) => std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0),
            Offset::Shared(o) => o.load(Ordering::SeqCst),
        }
    }
}

/// How often [`Clock::moved`] looks at the test clock's file.
const POLL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_moves_the_clock_forward() {
        let path = std::env::temp_dir().join(format!("latchkey-clock-{}", crate::crypto::random_id()));
        let clock = Clock { offset: Offset::File(path.as_path().into()) };
        let before = Clock::system().now();
        assert!((clock.now() - before).abs() <= 1, "no file: the system time");
        std::fs::write(&path, "3600\n").unwrap();
        assert!((clock.now() - before - 3600).abs() <= 1, "an hour later");
        std::fs::write(&path, "not a number").unwrap();
        assert_eq!(clock.offset_secs(), 0);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_adjustable_clock_and_its_clones_move_together() {
        let clock = Clock::adjustable();
        let copy = clock.clone();
        let before = copy.now_ms();
        clock.advance(10);
        assert!(copy.now_ms() - before >= 10_000);
        Clock::system().advance(10);
        assert_eq!(Clock::system().offset_secs(), 0, "the system clock does not move");
    }
}
