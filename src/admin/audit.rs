//! The audit log, newest first, filtered by user, time and kind.

use super::{AdminError, Ops};
use crate::store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Which events to read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only this user's events (a username, an email or a user id).
    pub user: Option<String>,
    /// Only events since a date (2026-12-01, UTC) or a time ago (7d, 12h, 30m).
    pub since: Option<String>,
    /// Only kinds beginning with this (`login.`, `admin.`, `mfa.`).
    pub kind: Option<String>,
    /// At most this many events (default 100).
    pub limit: Option<i64>,
}

/// One recorded event.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// Unix time.
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

pub async fn events(ops: &Ops<'_>, filter: Filter) -> Result<Vec<Event>, AdminError> {
    let user_id = match &filter.user {
        // Removed users keep their events under their id.
        Some(u) => Some(ops.store.user_by_login(u).await?.map_or_else(|| u.clone(), |user| user.id)),
        None => None,
    };
    let limit = filter.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(AdminError::invalid("the limit must be from 1 to 10000"));
    }
    let q = AuditQuery {
        user_id,
        since: filter.since.as_deref().map(|s| since(s, ops.now)).transpose()?,
        kind_prefix: filter.kind,
        kinds: Vec::new(),
        limit,
    };
    let rows = ops.store.audit_events(&q).await?;
    Ok(rows
        .into_iter()
        .map(|e| Event {
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail.clone())),
            at: e.at,
            kind: e.kind,
            user_id: e.user_id,
            client_id: e.client_id,
            ip: e.ip,
        })
        .collect())
}

/// `2026-12-01` (midnight UTC) or `7d`/`12h`/`30m`/`90s` before `now`.
fn since(s: &str, now: i64) -> Result<i64, AdminError> {
    let s = s.trim();
    if let Ok(date) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp());
    }
    let unit = match s.chars().last() {
        Some('d') => 86_400,
        Some('h') => 3600,
        Some('m') => 60,
        Some('s') => 1,
        _ => return Err(AdminError::Invalid(format!("since {s}: a date (2026-12-01) or a time ago (7d, 12h, 30m)"))),
    };
    let n: i64 = s[..s.len() - 1]
        .parse()
        .map_err(|_| AdminError::Invalid(format!("since {s}: not a number of days, hours or minutes")))?;
    Ok(now - n * unit)
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
