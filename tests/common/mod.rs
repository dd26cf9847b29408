//! Shared harness for the integration tests: it starts the real `latchkey` binary on port 0 with a
//! fresh data directory, runs its CLI against the same directory, and drives the HTTP endpoints as
//! a browser (cookies kept, redirects never followed) and as an RP would.
//!
//! Every request made through the harness records its status. When a `Server` is dropped at the
//! end of a passing test it asserts that no response had a 5xx status and that the server's
//! output (and the CLI's) never contained `panicked`.

#![allow(dead_code)]

//! Where each part lives (every name is re-exported here, so tests `use common::*`):
//! `server` (the process, its CLI, HTTP helpers, the test clock), `backends` (what nodes share,
//! stores a test can take away), `client` (RP side: clients, auth, PKCE, tokens), `browser`
//! (responses, the browser, outcomes), `html` (forms and text, parsed with `scraper`), `checks`
//! (JWT and conformance checks), `factors` (TOTP, account security and second-factor forms);
//! `authenticator`, `chromium`, `keys`, `mail`, `relying_party` (an RP's own server: keys, request
//! objects, documents) and `upstream` are named by their module.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod authenticator;
mod backends;
mod browser;
mod checks;
pub mod chromium;
mod client;
mod factors;
mod html;
pub mod keys;
pub mod mail;
pub mod relying_party;
mod server;
pub mod upstream;

#[allow(unused_imports)]
pub use backends::*;
#[allow(unused_imports)]
pub use browser::*;
#[allow(unused_imports)]
pub use checks::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use factors::*;
#[allow(unused_imports)]
pub use html::*;
#[allow(unused_imports)]
pub use server::*;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, PkceCodeChallenge};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

/// Registered redirect URIs. They are never contacted: the browser does not follow redirects
/// that leave the OP.
pub const CALLBACK: &str = "https://rp.example.com/callback";
pub const CALLBACK2: &str = "https://rp2.example.com/callback";
pub const POST_LOGOUT: &str = "https://rp.example.com/post_logout_redirect";
pub const POST_LOGOUT2: &str = "https://rp2.example.com/post_logout_redirect";

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn random_token() -> String {
    PkceCodeChallenge::new_random_sha256().1.secret().clone()
}
