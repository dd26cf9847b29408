//! Login steps. Each is one module with the same two parts: render its page, and judge what
//! the browser sent back. A step never decides what comes next; the policy does.

pub mod password;

use super::flow::Flow;
use crate::app::AppState;
use crate::domain::Client;
use crate::http::{PageError, Params};
use axum::response::Response;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Password,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
        }
    }
}

/// What a step is given for one request.
pub struct StepContext<'a> {
    pub state: &'a AppState,
    pub flow: &'a Flow,
    pub client: &'a Client,
    pub ip: Option<String>,
    pub now: i64,
}

/// What judging a submission found.
pub enum Outcome {
    /// The step proved who the user is, with these `amr` values (RFC 8176).
    Passed { user_id: String, amr: Vec<String> },
    /// Not proven: `message` is for the person, `reason` for the audit log.
    Failed { message: &'static str, reason: &'static str, user_id: Option<String> },
}

impl StepKind {
    pub fn render(self, ctx: &StepContext<'_>, error: Option<&str>, form: Option<&Params>) -> Response {
        match self {
            Self::Password => password::render(ctx, error, form),
        }
    }

    pub async fn submit(self, ctx: &StepContext<'_>, form: &Params) -> Result<Outcome, PageError> {
        match self {
            Self::Password => password::submit(ctx, form).await,
        }
    }
}
