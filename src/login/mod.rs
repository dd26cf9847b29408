//! The login engine: a flow (a small state machine in the ephemeral store) that signs a person
//! in through steps and hands back to whoever started it — the authorization endpoint or the
//! account pages. [`step`] is the contract a step implements; [`steps`] registers them, once;
//! the [`policy`] decides what comes next; [`flow`] keeps the state and [`routes`] is the one
//! HTTP adapter. Nothing here imports the protocol endpoints (`crate::oidc`).

pub mod flow;
pub mod policy;
pub mod routes;
pub mod session;
pub mod step;
pub mod steps;

pub use routes::router;
