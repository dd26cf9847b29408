//! Latchkey: an OpenID Connect provider and OAuth 2.0 authorization server.
//!
//! The crate is laid out as `docs/ARCHITECTURE.md` (the map: layers, storage, tokens and keys, the
//! login engine and how to add a step, the rules that hold everywhere) draws it, from the wire
//! inwards:
//!
//! - [`http`]: middleware, strict extractors, and the one mapping from errors to responses.
//! - [`oidc`]: the protocol endpoints, one module each (discovery, jwks, authorize, token, …).
//! - [`login`]: the login engine: the flow, the step contract, the registered steps and the
//!   policy that picks them; it hands back to whoever started it.
//! - [`account`]: self-service pages for the signed-in user (second factors, profile) and the
//!   account JSON API; [`signup`]: sign-up and email verification, shared by both surfaces.
//! - [`domain`]: clients, users, sessions, grants and the claims they release.
//! - [`keys`]: signing keys, their encryption at rest, JWS signing and verification.
//! - [`store`]: durable state over sqlx (SQLite by default, Postgres in production).
//! - [`ephemeral`]: short-lived state with TTLs (codes, flows, counters).
//!
//! [`state`] is what every handler shares; [`app`] assembles the routers; [`server`] binds and
//! runs them; [`cli`] is the operator's interface to the same state, and [`admin`] the operations it
//! shares with the admin REST API (`/admin/api/v1`).

// The discovery document is one `json!` literal, deeper than the macro's default limit.
#![recursion_limit = "256"]

/// Self-service pages for the signed-in user: account security (second factors), linked accounts.
pub mod account;
/// The operator's operations, one implementation behind the CLI and the admin REST API.
pub mod admin;
/// Router assembly only.
pub mod app;
/// The operator's command line: serve, migrate, clients, users, keys.
pub mod cli;
/// Creating a client: one implementation behind `clients add` and dynamic registration.
pub mod clients;
/// Time as an input, so logic never reads the wall clock itself.
pub mod clock;
/// One typed settings value: defaults < latchkey.toml < LATCHKEY_* environment.
pub mod config;
/// Random tokens, hashes at rest and constant-time comparison.
pub mod crypto;
/// The `serve --demo` user, client and callback page.
pub mod demo;
/// The directories `serve` writes to, checked before it starts.
pub mod dirs;
/// Clients, users, sessions, grants and the claims they release.
pub mod domain;
/// Short-lived state: authorization codes, login flows, counters.
pub mod ephemeral;
/// Forward-auth for apps behind a reverse proxy: rules, the check, gateway sessions, devices.
pub mod gateway;
/// HTTP plumbing: middleware, extractors, error responses, cookies.
pub mod http;
/// Signing keys: generation, encryption at rest, JWKS, JWS sign and verify.
pub mod keys;
/// Log lines: text or JSON on stderr, with the request id.
pub mod logging;
/// The login engine: flow, step contract, steps, policy.
pub mod login;
/// Outbound mail: SMTP or the development outbox.
pub mod mail;
/// Prometheus metrics: what is counted, and `/metrics`.
pub mod metrics;
/// Protocol endpoints.
pub mod oidc;
/// Askama page templates.
pub mod pages;
/// Argon2id password hashing on a bounded blocking pool.
pub mod passwords;
/// Sign-in codes by SMS and WhatsApp: numbers' rules, providers, the development outbox.
pub mod phone;
/// Binding, serving and graceful shutdown.
pub mod server;
/// Sign-up and email verification, shared by the sign-up step and the account JSON API.
pub mod signup;
/// The state every handler shares (stores, keys, settings, clock, caches).
pub mod state;
/// Durable repositories over sqlx.
pub mod store;
/// The WebAuthn relying party for passkeys, derived from the issuer.
pub mod webauthn;
