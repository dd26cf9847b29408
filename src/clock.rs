//! The one place that reads the wall clock. Protocol code takes `now` as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Source of the current time, held in the application state so tests could move it.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: i64,
}

impl Clock {
    /// A clock that reads the system time.
    pub fn system() -> Self {
        Self { offset: 0 }
    }

    /// A clock shifted by `secs` from the system time.
    pub fn shifted(secs: i64) -> Self {
        Self { offset: secs }
    }

    pub fn now(&self) -> Timestamp {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        secs + self.offset
    }
}
