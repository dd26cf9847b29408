//! Browser SSO sessions: one per browser, shared by every client (OIDC Core §3.1.2.3).

use crate::clock::Timestamp;

/// How often at most "last used" is written: often enough for the sessions page and the idle
/// timeout, rarely enough that browsing never turns every request into a database write.
pub const TOUCH_EVERY: i64 = 60;

#[derive(Clone, Debug)]
pub struct Session {
    /// The public session id, the `sid` claim (OIDC Front-/Back-Channel Logout).
    pub id: String,
    pub user_id: String,
    /// When the user last actively authenticated (`auth_time`).
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    /// When the browser last used it (within [`TOUCH_EVERY`]).
    pub last_seen_at: Timestamp,
    /// The `User-Agent` and client address of the sign-in.
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// "Remember me": the cookie outlives the browser.
    pub persistent: bool,
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// OIDC Core §3.1.2.1 `max_age`: has more time than allowed passed since authentication?
    pub fn older_than(&self, max_age: i64, now: Timestamp) -> bool {
        now - self.auth_time > max_age
    }

    /// Unused for longer than `idle` seconds (0: no idle timeout)?
    pub fn idle(&self, idle: i64, now: Timestamp) -> bool {
        idle_since(self.last_seen_at, idle, now)
    }

    /// Is "last used" old enough to be written again?
    pub fn due_touch(&self, now: Timestamp) -> bool {
        now - self.last_seen_at >= TOUCH_EVERY
    }
}

/// Is a session last used at `last_seen_at` unused for longer than `idle` seconds (0: no idle
/// timeout)?
pub fn idle_since(last_seen_at: Timestamp, idle: i64, now: Timestamp) -> bool {
    idle > 0 && now - last_seen_at > idle
}
