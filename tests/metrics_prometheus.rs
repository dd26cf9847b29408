//! Prometheus metrics at `/metrics` (text exposition format 0.0.4): scraped before and after a
//! code flow, the counters have moved.

mod common;

use common::*;

/// The sum of the samples of `name` whose label set contains every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want))).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(server: &Server) -> String {
    let r = server.get("/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-type").unwrap_or_default().starts_with("text/plain"), "{r:?}");
    r.body
}

#[tokio::test]
async fn a_code_flow_moves_the_counters() {
    let server = Server::start_with(&[("LATCHKEY_METRICS_ENABLED", "true")]);
    server.add_alice();
    let client = server.confidential_client();
    let before = scrape(&server).await;

    let browser = server.browser();
    let tokens = server.code_flow(&browser, &client, "openid offline_access").await;
    server.refresh(&client, tokens.refresh_token()).await;
    assert_eq!(server.userinfo(&tokens.access_token).await.status, 200);
    // A wrong password: a failed sign-in.
    let failed = server.browser();
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = failed.authorize(&params).await;
    failed.login(&page, USER, "not the password").await;

    let after = scrape(&server).await;
    let moved = |name: &str, labels: &[&str]| sample(&after, name, labels) - sample(&before, name, labels);
    assert_eq!(moved("latchkey_tokens_issued_total", &["grant=\"authorization_code\""]), 1.0, "{after}");
    assert_eq!(moved("latchkey_tokens_issued_total", &["grant=\"refresh_token\""]), 1.0, "{after}");
    assert_eq!(moved("latchkey_sign_ins_total", &["outcome=\"succeeded\""]), 1.0, "{after}");
    assert_eq!(moved("latchkey_sign_ins_total", &["outcome=\"failed\""]), 1.0, "{after}");
    assert_eq!(moved("latchkey_http_requests_total", &["route=\"/userinfo\"", "status=\"200\""]), 1.0, "{after}");
    assert!(moved("latchkey_http_requests_total", &["route=\"/token\"", "status=\"200\""]) >= 2.0, "{after}");
    assert!(moved("latchkey_http_request_duration_seconds_count", &["route=\"/token\""]) >= 2.0, "{after}");
    assert!(after.contains("latchkey_http_request_duration_seconds_bucket{route=\"/token\",le=\"0.005\"}"), "{after}");
    // Series are by route template, never by raw path.
    assert!(!after.contains("route=\"/authorize?"), "{after}");
    assert!(sample(&after, "latchkey_signing_key_age_seconds", &["alg=\"RS256\"", "state=\"active\""]) >= 0.0);
    assert!(after.contains("latchkey_signing_key_age_seconds{"), "{after}");
    assert!(after.contains("latchkey_argon2_queue_depth"), "{after}");
}

/// The names of the server's threads.
fn threads(server: &Server) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("the server's threads");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// The recorder keeps each histogram sample until an upkeep folds it into its buckets; a node
/// nobody scrapes must run that itself or grow without end.
#[tokio::test]
async fn histograms_are_kept_up_without_a_scrape() {
    let on = Server::start_with(&[("LATCHKEY_METRICS_ENABLED", "true")]);
    assert!(threads(&on).iter().any(|t| t == "metrics-upkeep"), "{:?}", threads(&on));
    let off = Server::start();
    assert!(!threads(&off).iter().any(|t| t == "metrics-upkeep"), "{:?}", threads(&off));
}

#[tokio::test]
async fn rate_limit_refusals_are_counted() {
    let server = Server::start_with(&[
        ("LATCHKEY_METRICS_ENABLED", "true"),
        ("LATCHKEY_RATE_LIMIT_PER_SECOND", "1"),
        ("LATCHKEY_RATE_LIMIT_BURST", "1"),
    ]);
    server.get("/authorize").await;
    assert_eq!(server.get("/authorize").await.status, 429);
    assert_eq!(sample(&scrape(&server).await, "latchkey_rate_limited_total", &[]), 1.0);
}

#[tokio::test]
async fn metrics_are_off_unless_enabled() {
    let server = Server::start();
    assert_eq!(server.get("/metrics").await.status, 404);
}

#[tokio::test]
async fn store_statements_are_timed() {
    let server = Server::start_with(&[("LATCHKEY_METRICS_ENABLED", "true")]);
    server.add_alice();
    let client = server.first_party_client();
    let before = scrape(&server).await;
    server.code_flow(&server.browser(), &client, "openid").await;
    let after = scrape(&server).await;
    let name = "latchkey_store_query_duration_seconds_count";
    assert!(sample(&after, name, &[]) - sample(&before, name, &[]) >= 3.0, "{after}");
    assert!(after.contains("latchkey_store_query_duration_seconds_bucket{le=\"0.0001\"}"), "{after}");
    if server.backends().uses_redis() {
        let name = "latchkey_redis_command_duration_seconds_count";
        assert!(sample(&after, name, &[]) - sample(&before, name, &[]) >= 3.0, "{after}");
    }
}

#[tokio::test]
async fn redis_commands_are_timed_and_their_failures_counted() {
    // Nothing listens on port 1: every command fails at once, as with Redis down.
    let server = Server::start_on(
        Backends::with_redis(Some("redis://127.0.0.1:1".into())),
        &[("LATCHKEY_METRICS_ENABLED", "true")],
    );
    server.expect_unavailable();
    let before = scrape(&server).await;
    server.add_alice();
    let client = server.first_party_client();
    let r = server.browser().authorize(&auth_params(&client, "openid", "s", "n")).await;
    assert_eq!(r.status, 503, "{r:?}");
    let after = scrape(&server).await;
    let moved = |name: &str| sample(&after, name, &[]) - sample(&before, name, &[]);
    assert!(moved("latchkey_redis_errors_total") >= 1.0, "{after}");
    assert!(moved("latchkey_redis_command_duration_seconds_count") >= 1.0, "{after}");
    assert!(moved("latchkey_backend_errors_total") >= 1.0, "{after}");
}
