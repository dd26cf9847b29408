//! What happens when a backing store goes away mid-traffic, under a steady stream of sign-ins:
//! the ephemeral store (a Redis the test runs itself) is killed and started again; the link to
//! Postgres (when the suite runs on it) is cut and restored. While a store is away every answer is
//! a clean 503 (`temporarily_unavailable` or an error page), never a 500 or a panic; once it is
//! back, sign-ins succeed again within 5 seconds by themselves; and nothing durable (users,
//! clients, refresh tokens) is lost or duplicated. Each test says it skipped where its store is
//! not to be had (`redis-server` not installed; `LATCHKEY_TEST_POSTGRES` unset).

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one pass of the sign-in stream ended.
#[derive(Debug, PartialEq)]
enum Pass {
    /// Code flow completed and the code redeemed for tokens: the access token.
    SignedIn(String),
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
    // Signed in, the flow hands back to the authorization endpoint, which answers with the code.
    let back = browser.follow(&done).await;
    match back.status {
        503 => return Pass::Unavailable,
        400 => return Pass::Lost,
        303 | 302 => {}
        _ => panic!("resume: {back:?}"),
    }
    let target = browser.resolve(back.location().unwrap());
    assert!(target.starts_with(CALLBACK), "a first-party client goes straight back: {target}");
    let code = url::Url::parse(&target)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no code in {target}"));
    let tokens = server.redeem(client, &code, Some(&pkce.verifier)).await;
    match tokens.status {
        200 => Pass::SignedIn(tokens.json()["access_token"].as_str().unwrap().to_owned()),
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

/// Sign-ins back to back on a task of their own, each outcome kept with its time, until stopped.
struct Stream {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(Instant, Pass)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream {
    /// Starts the stream and waits until sign-ins flow.
    async fn running(server: &Arc<Server>, client: &TestClient) -> Stream {
        let stream = Stream::start(server, client);
        let start = Instant::now();
        wait_until(Duration::from_secs(20), || stream.signed_in_since(start) >= 3).await;
        stream
    }

    /// Takes a store away with `stop` and waits to see the outage.
    async fn outage(&self, server: &Server, stop: impl FnOnce()) {
        server.expect_unavailable();
        let down = Instant::now();
        stop();
        self.see_outage(server, down).await;
    }

    /// Brings the store back with `resume`; sign-ins must succeed again within 5 seconds.
    /// Returns every access token the stream got.
    async fn recover(self, server: &Server, resume: impl FnOnce()) -> Vec<String> {
        resume();
        let back = Instant::now();
        wait_until(Duration::from_secs(5), || self.signed_in_since(back) >= 1).await;
        assert_eq!(server.get("/readyz").await.status, 200);
        self.finish().await
    }

    fn start(server: &Arc<Server>, client: &TestClient) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<Vec<(Instant, Pass)>>> = Arc::default();
        let (server, client, stop2, log2) = (server.clone(), client.clone(), stop.clone(), log.clone());
        let task = tokio::spawn(async move {
            while !stop2.load(Ordering::SeqCst) {
                let pass = sign_in(&server, &client).await;
                if pass == Pass::Unavailable {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                log2.lock().unwrap().push((Instant::now(), pass));
            }
        });
        Stream { stop, log, task }
    }

    fn count_since(&self, t: Instant, what: impl Fn(&Pass) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|(at, p)| *at > t && what(p)).count()
    }

    fn signed_in_since(&self, t: Instant) -> usize {
        self.count_since(t, |p| matches!(p, Pass::SignedIn(_)))
    }

    /// Waits until the store is seen to be away: 503s, and no sign-in completes.
    async fn see_outage(&self, server: &Server, since: Instant) {
        wait_until(Duration::from_secs(15), || self.count_since(since, |p| *p == Pass::Unavailable) >= 2).await;
        let settled = Instant::now();
        wait_until(Duration::from_secs(15), || self.count_since(settled, |p| *p == Pass::Unavailable) >= 2).await;
        assert_eq!(self.signed_in_since(settled), 0, "a sign-in succeeded while the store was away");
        let ready = server.get("/readyz").await;
        assert_eq!(ready.status, 503, "readyz while a store is away: {ready:?}");
        assert_eq!(server.get("/healthz").await.status, 200, "the process itself is alive");
    }

    /// Stops the stream; returns every access token it got.
    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the sign-in stream ended cleanly");
        let log = self.log.lock().unwrap();
        log.iter()
            .filter_map(|(_, p)| match p {
                Pass::SignedIn(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Durable state before an outage, to compare with afterwards.
struct Before {
    tokens: Tokens,
    users: serde_json::Value,
    clients: serde_json::Value,
}

impl Before {
    async fn take(server: &Server, client: &TestClient) -> Before {
        Before {
            tokens: server.code_flow(&server.browser(), client, "openid offline_access").await,
            users: server.cli(&["users", "list", "--json"]),
            clients: server.cli(&["clients", "list", "--json"]),
        }
    }

    /// Nothing durable was lost or duplicated, and what was issued during the run still works.
    async fn check(&self, server: &Server, client: &TestClient, issued: &[String]) {
        assert_eq!(server.cli(&["users", "list", "--json"]), self.users);
        assert_eq!(server.cli(&["clients", "list", "--json"]), self.clients);
        let r = server.refresh(client, self.tokens.refresh_token()).await;
        assert_eq!(r.status, 200, "the refresh token from before the outage: {r:?}");
        assert_eq!(server.userinfo(&self.tokens.access_token).await.status, 200);
        for token in issued {
            let r = server.userinfo(token).await;
            assert_eq!(r.status, 200, "a token issued around the outage: {r:?}");
        }
    }
}

async fn outage_server(backends: Arc<Backends>) -> (Arc<Server>, TestClient) {
    let server = Arc::new(Server::start_on(backends, &[("LATCHKEY_RATE_LIMIT_PER_SECOND", "0")]));
    server.add_alice();
    let client = server.first_party_client();
    (server, client)
}

#[tokio::test]
async fn redis_killed_and_restarted_under_steady_sign_ins() {
    let Some(mut redis) = TestRedis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let (server, client) = outage_server(Backends::with_redis(Some(redis.url()))).await;
    let before = Before::take(&server, &client).await;
    let stream = Stream::running(&server, &client).await;
    stream.outage(&server, || redis.stop()).await;
    let issued = stream.recover(&server, || redis.resume()).await;
    // Redis restarted empty: sessions live in the durable store, so tokens issued before still work.
    before.check(&server, &client, &issued).await;
}

#[tokio::test]
async fn postgres_cut_off_and_restored_under_steady_sign_ins() {
    let Some((backends, link)) = Backends::with_postgres_link() else {
        eprintln!("skipped: LATCHKEY_TEST_POSTGRES is not set");
        return;
    };
    let (server, client) = outage_server(backends).await;
    let before = Before::take(&server, &client).await;
    let stream = Stream::running(&server, &client).await;
    stream.outage(&server, || link.cut()).await;
    // Token requests that need the database answer 503 temporarily_unavailable.
    let r = server.refresh(&client, before.tokens.refresh_token()).await;
    r.assert_oauth_error(503, "temporarily_unavailable");
    let issued = stream.recover(&server, || link.restore()).await;
    before.check(&server, &client, &issued).await;
    // One grant per token exchange that succeeded (and the one from before). At most one more: an
    // exchange whose COMMIT reached Postgres just as the link was cut, so its answer was lost.
    let grants: usize = server.db_strings("SELECT CAST(COUNT(*) AS TEXT) FROM grants")[0].parse().unwrap();
    let expected = issued.len() + 1;
    assert!((expected..=expected + 1).contains(&grants), "{grants} grants for {expected} successful exchanges");
}

/// SIGTERM: requests in flight finish, then the process exits cleanly.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    // Six sign-ins of one account at once: over the default per-account limit, which counts
    // attempts before checking them.
    let mut server =
        Server::start_with(&[("LATCHKEY_RATE_LIMIT_PER_SECOND", "0"), ("LATCHKEY_LOGIN_MAX_FAILURES", "10")]);
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
        // Finished: signed in and handed back to the authorization endpoint's resume route,
        // which answers with the code.
        let back = r.location().filter(|l| l.starts_with("/consent/"));
        assert!(back.is_some() && r.headers.contains_key("set-cookie"), "an in-flight sign-in was cut off: {r:?}");
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

/// A node that cannot reach its Redis at start says so, without printing the Redis password,
/// and starts anyway (never falling back to state of its own): it answers 503 where it needs
/// Redis until Redis answers (`tests/redis_down_start.rs` follows it to recovery).
#[test]
fn a_node_that_cannot_reach_redis_at_start_says_so() {
    use std::io::{BufRead, BufReader};
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = std::env::temp_dir().join(format!("latchkey-test-noredis-{closed}"));
    let mut child = std::process::Command::new(common::bin())
        .arg("serve")
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env("LATCHKEY_DATA_DIR", &data)
        .env("LATCHKEY_KEYS_DIR", data.join("keys"))
        .env_remove("LATCHKEY_DATABASE_URL")
        .env("LATCHKEY_EPHEMERAL_URL", format!("redis://:hunter2@127.0.0.1:{closed}/0"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains("cannot reach Redis") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push_str(&format!("{line}\n")),
            Err(_) => break,
        }
    }
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    assert!(seen.contains("cannot reach Redis"), "{seen}");
    assert!(exited.is_none(), "it serves rather than exit: {seen}");
    assert!(!seen.contains("hunter2") && !seen.contains("panicked"), "{seen}");
}
