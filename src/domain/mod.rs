//! The things Latchkey keeps and the rules about them that hold whichever endpoint asks.

pub mod claims;
pub mod client;
pub mod grant;
pub mod session;
pub mod user;

pub use client::{AuthMethod, Client, GrantType};
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

pub fn join_scope(scopes: &[String]) -> String {
    scopes.join(" ")
}
