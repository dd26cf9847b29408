//! What happens when a backing store goes away mid-traffic: the ephemeral store (a Redis the test
//! runs itself) is killed under a steady stream of sign-ins and started again. While it is down
//! every answer is a clean 503 (`temporarily_unavailable` or an error page), never a 500 or a
//! panic; once it is back, sign-ins succeed again within 5 seconds by themselves; and nothing
//! durable (users, clients, refresh tokens) is lost or duplicated. Skipped where `redis-server`
//! is not installed.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one pass of the sign-in stream ended.
#[derive(Debug, PartialEq)]
enum Pass {
    /// Code flow completed and the code redeemed for tokens.
    SignedIn,
    /// A store was unreachable: 503 somewhere along the way.
    Unavailable,
    /// The flow or code was lost with the store's contents (it restarted empty): a 400 page or
    /// `invalid_grant`, as for any expired flow.
    Lost,
}

/// One sign-in as a fresh browser: authorize, login page, password, code, token exchange. Any
/// answer other than success, 503, or a lost flow fails the test.
async fn sign_in(server: &Server, client: &TestClient) -> Pass {
    let browser = server.browser();
    let pkce = Pkce::new();
    let mut params = auth_params(client, "openid", "s", "n");
    params.extend([("code_challenge", pkce.challenge.as_str()), ("code_challenge_method", "S256")]);
    let r = browser.authorize(&params).await;
    match r.status {
        503 => return Pass::Unavailable,
        303 | 302 => {}
        _ => panic!("authorize: {r:?}"),
    }
    let page = browser.follow(&r).await;
    match page.status {
        503 => return Pass::Unavailable,
        400 => return Pass::Lost,
        200 => {}
        _ => panic!("login page: {page:?}"),
    }
    let form = login_form(&page).unwrap_or_else(|| panic!("no login form: {page:?}"));
    let done = browser.submit(&form, &[("username", USER), ("password", PASSWORD)]).await;
    match done.status {
        503 => return Pass::Unavailable,
        400 => return Pass::Lost,
        303 | 302 => {}
        _ => panic!("login: {done:?}"),
    }
    let target = browser.resolve(done.location().unwrap());
    assert!(target.starts_with(CALLBACK), "a first-party client goes straight back: {target}");
    let code = url::Url::parse(&target)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no code in {target}"));
    let tokens = server.redeem(client, &code, Some(&pkce.verifier)).await;
    match tokens.status {
        200 => Pass::SignedIn,
        503 => {
            tokens.assert_oauth_error(503, "temporarily_unavailable");
            Pass::Unavailable
        }
        400 => {
            tokens.assert_oauth_error(400, "invalid_grant");
            Pass::Lost
        }
        _ => panic!("token: {tokens:?}"),
    }
}

#[tokio::test]
async fn redis_killed_and_restarted_under_steady_sign_ins() {
    let Some(mut redis) = TestRedis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let server =
        Arc::new(Server::start_on(Backends::with_redis(Some(redis.url())), &[("LATCHKEY_RATE_LIMIT_PER_SECOND", "0")]));
    server.add_alice();
    let client = server.first_party_client();
    // Durable state from before the outage.
    let before = server.code_flow(&server.browser(), &client, "openid offline_access").await;
    let users = server.cli(&["users", "list", "--json"]);
    let clients = server.cli(&["clients", "list", "--json"]);

    // The steady stream: sign-ins back to back, each outcome kept with its time.
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<(Instant, Pass)>>> = Arc::default();
    let stream = {
        let (server, client, stop, log) = (server.clone(), client.clone(), stop.clone(), log.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let pass = sign_in(&server, &client).await;
                if pass == Pass::Unavailable {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                log.lock().unwrap().push((Instant::now(), pass));
            }
        })
    };
    let signed_in_since =
        |t: Instant| log.lock().unwrap().iter().filter(|(at, p)| *at > t && *p == Pass::SignedIn).count();
    let start = Instant::now();
    wait_until(Duration::from_secs(20), || signed_in_since(start) >= 3).await;

    // Down.
    server.expect_unavailable();
    redis.stop();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 503, "readyz with Redis down: {ready:?}");
    assert_eq!(server.get("/healthz").await.status, 200, "the process itself is alive");
    let unavailable = AtomicUsize::new(0);
    for (at, pass) in log.lock().unwrap().iter().filter(|(at, _)| *at > down + Duration::from_millis(500)) {
        assert_ne!(*pass, Pass::SignedIn, "a sign-in succeeded {:?} after Redis died", *at - down);
        if *pass == Pass::Unavailable {
            unavailable.fetch_add(1, Ordering::SeqCst);
        }
    }
    assert!(unavailable.load(Ordering::SeqCst) > 0, "no 503 seen while Redis was down");

    // Back: service resumes by itself within 5 seconds.
    redis.resume();
    let back = Instant::now();
    wait_until(Duration::from_secs(5), || signed_in_since(back) >= 1).await;
    assert_eq!(server.get("/readyz").await.status, 200);
    stop.store(true, Ordering::SeqCst);
    stream.await.expect("the sign-in stream ended cleanly");

    // Nothing durable was lost or duplicated.
    assert_eq!(server.cli(&["users", "list", "--json"]), users);
    assert_eq!(server.cli(&["clients", "list", "--json"]), clients);
    let r = server.refresh(&client, before.refresh_token()).await;
    assert_eq!(r.status, 200, "the refresh token from before the outage: {r:?}");
    assert_eq!(server.userinfo(&before.access_token).await.status, 200);
}

/// SIGTERM: requests in flight finish, then the process exits cleanly.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut server = Server::start_with(&[("LATCHKEY_RATE_LIMIT_PER_SECOND", "0")]);
    server.add_alice();
    let client = server.first_party_client();
    // Sign-ins hash a password on a bounded pool: several at once are in flight for a while.
    let mut submits = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let browser = server.browser();
        let pkce = Pkce::new();
        let mut params = auth_params(&client, "openid", "s", "n");
        params.extend([("code_challenge", pkce.challenge.as_str()), ("code_challenge_method", "S256")]);
        let page = browser.follow(&browser.authorize(&params).await).await;
        let form = login_form(&page).unwrap_or_else(|| panic!("{page:?}"));
        submits.spawn(async move { browser.submit(&form, &[("username", USER), ("password", PASSWORD)]).await });
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let signalled = std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(signalled.success());
    while let Some(r) = submits.join_next().await {
        let r = r.expect("the request task");
        let back = r.location().filter(|l| l.starts_with(CALLBACK) && l.contains("code="));
        assert!(back.is_some(), "an in-flight sign-in was cut off: {r:?}");
    }
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(true), "exit after SIGTERM");
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
