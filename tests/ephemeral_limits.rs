//! The ephemeral store under a flood: unauthenticated `/authorize` requests each start a login
//! flow, and an attacker can send as many as they like. The in-process store is capped
//! (`ephemeral.max_bytes`), evicting the oldest flows first, so memory stays bounded and the
//! newest sign-ins still work.

mod common;

use common::*;

const FLOOD: usize = 600;

/// Resident memory of the process, in KiB (Linux), to report what the flood cost.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

#[tokio::test]
async fn a_flood_of_authorization_requests_evicts_the_oldest_flows_first() {
    // Room for a few dozen flows; no per-IP limit, so that all the requests reach the store.
    let server =
        Server::start_with(&[("LATCHKEY_EPHEMERAL_MAX_BYTES", "100000"), ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0")]);
    let c = server.first_party_client();
    let before = rss_kib(server.pid());
    let mut first = None;
    let mut last = None;
    for i in 0..FLOOD {
        let browser = server.browser();
        let state = format!("s{i}");
        let r = browser.authorize(&auth_params(&c, "openid", &state, "n")).await;
        assert!(r.is_redirect(), "a new flow is sent to sign in: {r:?}");
        let flow = (browser, r.location().unwrap().to_string());
        if i == 0 {
            first = Some(flow);
        } else {
            last = Some(flow);
        }
    }
    if let (Some(a), Some(b)) = (before, rss_kib(server.pid())) {
        eprintln!("{FLOOD} flows: resident memory {a} KiB -> {b} KiB");
    }

    let (browser, location) = last.unwrap();
    let page = browser.get(&location).await;
    assert!(login_form(&page).is_some(), "the newest flow still works: {page:?}");
    if server.backends().uses_redis() {
        eprintln!("skipped the eviction check: on Redis, keys expire by TTL and the cap is Redis's own");
        return;
    }
    let (browser, location) = first.unwrap();
    let page = browser.get(&location).await;
    assert_eq!(page.status, 400, "the earliest flow was evicted: {page:?}");
    assert!(page.body.contains("This sign-in has expired"), "{page:?}");
}
