//! Browser SSO sessions: one per browser, shared by every client (OIDC Core §3.1.2.3).

use crate::clock::Timestamp;

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
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// OIDC Core §3.1.2.1 `max_age`: has more time than allowed passed since authentication?
    pub fn older_than(&self, max_age: i64, now: Timestamp) -> bool {
        now - self.auth_time > max_age
    }
}
