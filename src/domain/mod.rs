//! The things Latchkey keeps and the rules about them that hold whichever endpoint asks.

pub mod authorization;
pub mod claims;
pub mod client;
pub mod client_metadata;
pub mod credentials;
#[cfg(test)]
pub mod fixtures;
pub mod grant;
pub mod password_policy;
pub mod registration;
pub mod resource;
pub mod session;
pub mod user;
pub mod user_agent;

pub use authorization::{AuthRequest, Target};
pub use client::{AuthMethod, Client, GrantType};
pub use credentials::Credentials;
pub use grant::Grant;
pub use session::Session;
pub use user::User;

/// Space-separated scope strings, as OAuth carries them, parsed into a sorted unique list.
pub fn parse_scope(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect();
    v.sort();
    v.dedup();
    v
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

pub fn join_scope(scopes: &[String]) -> String {
    scopes.join(" ")
}
