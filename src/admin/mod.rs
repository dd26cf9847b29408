//! The operator's operations — clients, users, groups and roles, signing keys, sessions, the
//! audit log — written once and called by both of the operator's interfaces: the command line
//! (`cli/`) and the admin REST API (`admin/api.rs`, under `/admin/api/v1`). Each operation
//! takes typed input and an [`Ops`] (the store, the settings, the time, who acts), checks it,
//! changes the store, records the audit event, and answers a typed value both interfaces print
//! as JSON. Neither interface holds a rule of its own.

pub mod api;
pub mod audit;
pub mod clients;
pub mod groups;
pub mod keys;
pub mod sessions;
pub mod users;

use crate::config::Settings;
use crate::passwords::Passwords;
use crate::store::{AuditEvent, Store};

/// Who performs an operation, as the audit log records it.
#[derive(Clone, Debug)]
pub enum Actor {
    /// The command line, on the operator's own machine.
    Cli,
    /// The admin API, for the client whose access token carried the admin scope, from an address.
    Api { client_id: String, ip: Option<String> },
}

/// What every operation needs: the durable store, the settings, the password pool, the time and
/// who is acting.
pub struct Ops<'a> {
    pub store: &'a Store,
    pub settings: &'a Settings,
    pub passwords: &'a Passwords,
    pub now: i64,
    pub actor: Actor,
}

impl Ops<'_> {
    /// Records an operator's change, stamped with who made it.
    pub async fn audit(&self, event: AuditEvent) {
        self.store.audit(self.stamp(event), self.now).await;
    }

    /// An event stamped with who acts: `by` (`cli` or `api`), and the admin client and its
    /// address for the API.
    pub fn stamp(&self, event: AuditEvent) -> AuditEvent {
        match &self.actor {
            Actor::Cli => event.detail("by", "cli"),
            Actor::Api { client_id, ip } => {
                event.detail("by", "api").detail("admin_client", client_id.as_str()).ip(ip.clone())
            }
        }
    }

    /// The `by` word key changes are recorded with.
    fn by(&self) -> &'static str {
        match self.actor {
            Actor::Cli => "cli",
            Actor::Api { .. } => "api",
        }
    }

    pub(crate) async fn user(&self, login: &str) -> Result<crate::domain::User, AdminError> {
        match self.store.user_by_login(login).await? {
            Some(u) => Ok(u),
            // The API names users by id as well.
            None => self.store.user(login).await?.ok_or_else(|| AdminError::NotFound(format!("no user {login}"))),
        }
    }

    pub(crate) async fn client(&self, id: &str) -> Result<std::sync::Arc<crate::domain::Client>, AdminError> {
        self.store.client(id).await?.ok_or_else(|| AdminError::NotFound(format!("no client {id}")))
    }
}

/// Why an operation was refused or failed. The message of the first three is for the operator
/// and says what to do; store and internal failures are logged, never shown in detail.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// What the operation names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// The input clashes with what exists (409).
    #[error("{0}")]
    Conflict(String),
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AdminError {
    fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

impl From<crate::keys::lifecycle::PlanError> for AdminError {
    fn from(e: crate::keys::lifecycle::PlanError) -> Self {
        use crate::keys::lifecycle::PlanError;
        match e {
            PlanError::UnknownKey(_) => Self::NotFound(e.to_string()),
            PlanError::NextTooYoung { .. } | PlanError::AlreadyDone(..) => Self::Conflict(e.to_string()),
            PlanError::UnsupportedAlg(_) => Self::Invalid(e.to_string()),
        }
    }
}

/// Group and role names: what a token claim can carry plainly, and a shell can type.
pub fn check_name(what: &str, name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if !ok {
        return Err(AdminError::invalid(format!("{what} '{name}': 1 to 64 letters, digits and - _ . : /")));
    }
    Ok(())
}
