//! The login flow: a small state machine in the ephemeral store that starts at `/authorize`
//! and ends with an authenticated browser session and an authorization response. Steps plug in
//! under [`steps`]; the [`policy`] decides what comes next.

pub mod flow;
pub mod policy;
pub mod session;
pub mod steps;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/{flow}", get(flow::show_step).post(flow::submit_step))
        .route("/login/{flow}/passkey", post(flow::passkey_challenge))
        .route("/consent/{flow}", get(flow::show_consent).post(flow::submit_consent))
        .route("/login/{flow}/upstream/{provider}", post(steps::federation::begin))
        .route("/login/upstream/{provider}/callback", get(steps::federation::callback))
}
