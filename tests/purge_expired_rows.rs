//! Issue #20, reliability: nothing was ever deleted. The background purge removes expired and
//! revoked grants with their refresh tokens, refresh tokens rotated over a day ago, ended and
//! expired sessions, expired initial access tokens, and audit events past
//! `audit.retention_days`, in small batches, and leaves everything still in use alone.

mod common;

use common::*;
use std::time::{Duration, Instant};

const DAY: i64 = 24 * 3600;

fn ids(server: &Server, sql: &str) -> Vec<String> {
    server.db_strings(sql)
}

#[tokio::test]
async fn expired_rows_are_purged_in_batches_and_live_ones_kept() {
    // Batches of 2, so every kind below needs several statements.
    let server = Server::start_with(&[("LATCHKEY_PURGE_INTERVAL_SECS", "1"), ("LATCHKEY_PURGE_BATCH_SIZE", "2")]);
    let alice = server.add_alice();
    let alice = alice["id"].as_str().unwrap();
    let client = server.first_party_client();
    let live = server.code_flow(&server.browser(), &client, "openid offline_access").await;
    let live_grants = ids(&server, "SELECT id FROM grants");
    let live_sessions = ids(&server, "SELECT id FROM sessions");
    assert_eq!((live_grants.len(), live_sessions.len()), (1, 1));
    let live_grant = &live_grants[0];

    // What the purge must take: dead grants with tokens, long-used tokens of the live grant,
    // ended and expired sessions, audit events older than the retention (365 days).
    let t = now();
    let grant = |id: &str, expires: i64, revoked: &str| {
        format!(
            "INSERT INTO grants (id, client_id, user_id, scopes, auth_time, acr, amr, offline, created_at, expires_at, revoked_at)
             VALUES ('{id}', '{}', '{alice}', 'openid', {t}, '1', '[]', 1, {t}, {expires}, {revoked})",
            client.id
        )
    };
    for i in 0..3 {
        // Each grant is written live, given its tokens, and only then made dead: the purge runs
        // every second and would otherwise take a dead grant before its tokens are written.
        for (g, expires, revoked) in [
            (format!("expired-{i}"), t - 10, "NULL".to_string()),
            (format!("revoked-{i}"), t + DAY, (t - 5).to_string()),
        ] {
            ids(&server, &grant(&g, t + DAY, "NULL"));
            for j in 0..2 {
                ids(
                    &server,
                    &format!(
                        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ('{g}-{j}', '{g}', {t})"
                    ),
                );
            }
            ids(&server, &format!("UPDATE grants SET expires_at = {expires}, revoked_at = {revoked} WHERE id = '{g}'"));
        }
        ids(
            &server,
            &format!(
                "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, used_at) VALUES ('old-used-{i}', '{live_grant}', {}, {})",
                t - 3 * DAY,
                t - 2 * DAY
            ),
        );
        for (sid, expires, ended) in
            [(format!("ended-{i}"), t + DAY, (t - 1).to_string()), (format!("expired-{i}"), t - 1, "NULL".into())]
        {
            ids(
                &server,
                &format!(
                    "INSERT INTO sessions (id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at, ended_at)
                     VALUES ('{sid}', 'h-{sid}', '{alice}', {t}, '[]', '1', {t}, {expires}, {ended})"
                ),
            );
        }
        ids(
            &server,
            &format!(
                "INSERT INTO audit_events (id, at, kind, detail) VALUES ('old-{i}', {}, 'login', '{{}}')",
                t - 400 * DAY
            ),
        );
        ids(
            &server,
            &format!(
                "INSERT INTO initial_access_tokens (token_hash, created_at, expires_at) VALUES ('iat-{i}', {}, {})",
                t - DAY,
                t - 1
            ),
        );
    }
    // An initial access token still valid (`clients token`) stays.
    server.cli(&["clients", "token", "--expires", "1h", "--json"]);
    let live_initial = ids(&server, "SELECT token_hash FROM initial_access_tokens WHERE token_hash NOT LIKE 'iat-%'");
    assert_eq!(live_initial.len(), 1);
    let recent_audit = ids(&server, "SELECT id FROM audit_events WHERE id NOT LIKE 'old-%'");
    assert!(!recent_audit.is_empty());

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let grants = ids(&server, "SELECT id FROM grants");
        let sessions = ids(&server, "SELECT id FROM sessions");
        let tokens = ids(&server, "SELECT token_hash FROM refresh_tokens");
        let audit = ids(&server, "SELECT id FROM audit_events WHERE id LIKE 'old-%'");
        let initial = ids(&server, "SELECT token_hash FROM initial_access_tokens");
        if grants == live_grants
            && sessions == live_sessions
            && tokens.len() == 1
            && audit.is_empty()
            && initial == live_initial
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not purged: grants {grants:?}, sessions {sessions:?}, tokens {tokens:?}, audit {audit:?}, initial access tokens {initial:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // What is still in use works, and recent audit events stay.
    let r = server.refresh(&client, live.refresh_token()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let kept = ids(&server, "SELECT id FROM audit_events");
    assert!(recent_audit.iter().all(|id| kept.contains(id)), "recent audit events are kept");
}
