//! `latchkey audit`: the operator reads the audit log, newest first, filtered by user, time and
//! kind.

use super::{Json, now, print};
use crate::store::{AuditQuery, Store};
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

/// `2026-12-01` (midnight UTC) or `7d`/`12h`/`30m`/`90s` before `now`.
fn since(s: &str, now: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(date) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp());
    }
    let unit = match s.chars().last() {
        Some('d') => 86_400,
        Some('h') => 3600,
        Some('m') => 60,
        Some('s') => 1,
        _ => anyhow::bail!("--since {s}: a date (2026-12-01) or a time ago (7d, 12h, 30m)"),
    };
    let n: i64 =
        s[..s.len() - 1].parse().map_err(|_| anyhow::anyhow!("--since {s}: not a number of days, hours or minutes"))?;
    Ok(now - n * unit)
}

pub async fn run(store: &Store, args: AuditArgs) -> anyhow::Result<()> {
    let user_id = match &args.user {
        Some(u) => Some(match store.user_by_login(u).await? {
            Some(user) => user.id,
            None if store.user(u).await?.is_some() => u.clone(),
            // Removed users keep their events under their id.
            None => u.clone(),
        }),
        None => None,
    };
    if args.limit < 1 {
        anyhow::bail!("--limit must be at least 1");
    }
    let q = AuditQuery {
        user_id,
        since: args.since.as_deref().map(|s| since(s, now())).transpose()?,
        kind_prefix: args.kind.clone(),
        kinds: Vec::new(),
        limit: args.limit,
    };
    let events = store.audit_events(&q).await?;
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

#[cfg(test)]
mod tests {
    use super::since;

    #[test]
    fn since_reads_dates_and_spans() {
        assert_eq!(since("2026-12-01", 0).unwrap(), 1_796_083_200);
        assert_eq!(since("7d", 1_000_000).unwrap(), 1_000_000 - 7 * 86_400);
        assert_eq!(since("30m", 10_000).unwrap(), 10_000 - 1800);
        assert!(since("yesterday", 0).is_err());
        assert!(since("xd", 0).is_err());
    }
}
