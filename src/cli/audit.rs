//! `latchkey audit`: the operator reads the audit log, newest first, filtered by user, time and
//! kind.

use super::{Json, print};
use crate::admin::audit::Filter;
use crate::admin::{AdminError, Ops};
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct AuditArgs {
    /// Only this user's events (a username, an email or a user id)
    #[arg(long)]
    user: Option<String>,
    /// Only events since a date (2026-12-01, UTC) or a time ago (7d, 12h, 30m)
    #[arg(long)]
    since: Option<String>,
    /// Only kinds beginning with this (login., login.failed, mfa.)
    #[arg(long)]
    kind: Option<String>,
    /// At most this many events
    #[arg(long, default_value_t = 100)]
    limit: i64,
    #[command(flatten)]
    json: Json,
}

pub async fn run(ops: &Ops<'_>, args: AuditArgs) -> anyhow::Result<()> {
    if args.limit < 1 {
        anyhow::bail!("--limit must be at least 1");
    }
    let filter = Filter { user: args.user, since: args.since, kind: args.kind, limit: Some(args.limit) };
    let events = match crate::admin::audit::events(ops, filter).await {
        // The only input the operation can refuse here is the time: name the flag.
        Err(AdminError::Invalid(message)) => anyhow::bail!("--{message}"),
        answer => answer?,
    };
    print(args.json.json, json!(events), || {
        events
            .iter()
            .map(|e| {
                let at = chrono::DateTime::from_timestamp(e.at, 0)
                    .map_or_else(|| e.at.to_string(), |d| d.format("%Y-%m-%d %H:%M:%SZ").to_string());
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                format!(
                    "{at}  {}  user={}  client={}  ip={}  {}",
                    e.kind,
                    dash(&e.user_id),
                    dash(&e.client_id),
                    dash(&e.ip),
                    e.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
