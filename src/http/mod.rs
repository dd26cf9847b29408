//! HTTP plumbing shared by every surface: strict form parsing, cookies, middleware, and the
//! mapping from errors to the response each surface must give.

/// The client address per-IP limits count, through trusted proxies.
pub mod client_ip;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod form;
pub mod middleware;
pub mod refusals;

pub use error::{BearerError, OAuthError, PageError};
pub use form::Params;
