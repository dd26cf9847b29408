//! Shared harness for the integration tests: it starts the real `latchkey` binary on port 0 with a
//! fresh data directory, runs its CLI against the same directory, and drives the HTTP endpoints as
//! a browser (cookies kept, redirects never followed) and as an RP would.
//!
//! Every request made through the harness records its status. When a `Server` is dropped at the
//! end of a passing test it asserts that no response had a 5xx status and that the server's
//! output (and the CLI's) never contained `panicked`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod authenticator;
pub mod keys;
pub mod mail;
pub mod upstream;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, PkceCodeChallenge};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

/// Registered redirect URIs. They are never contacted: the browser does not follow redirects
/// that leave the OP.
pub const CALLBACK: &str = "https://rp.example.com/callback";
pub const CALLBACK2: &str = "https://rp2.example.com/callback";
pub const POST_LOGOUT: &str = "https://rp.example.com/post_logout_redirect";
pub const POST_LOGOUT2: &str = "https://rp2.example.com/post_logout_redirect";

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Recording of statuses (for the "no 500" rule)
// ---------------------------------------------------------------------------------------------

/// Every (request, status) seen; the flag says 503 is expected (see `Server::expect_unavailable`).
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<(String, u16)>>>, Arc<std::sync::atomic::AtomicBool>);

impl Recorder {
    fn record(&self, what: String, status: u16) {
        self.0.lock().unwrap().push((what, status));
    }
    fn server_errors(&self) -> Vec<(String, u16)> {
        let tolerate_503 = self.1.load(std::sync::atomic::Ordering::SeqCst);
        self.0.lock().unwrap().iter().filter(|(_, s)| *s >= 500 && !(tolerate_503 && *s == 503)).cloned().collect()
    }
}

/// The HTTP client handed to the `openidconnect` RP. It never follows redirects and records
/// every status for the end-of-test check.
#[derive(Clone)]
pub struct RpHttp {
    client: reqwest::Client,
    rec: Recorder,
}

impl<'c> openidconnect::AsyncHttpClient<'c> for RpHttp {
    type Error = openidconnect::HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, Self::Error>> + Send + Sync + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        let what = format!("{} {}", request.method(), request.uri());
        Box::pin(async move {
            let response = self.client.call(request).await?;
            self.rec.record(what, response.status().as_u16());
            Ok(response)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

pub struct Server {
    /// The issuer the server announced (`http://localhost:PORT` unless `LATCHKEY_ISSUER` is set).
    pub issuer: String,
    /// Where requests go: the issuer, or the listening address when the issuer is not local.
    pub base: String,
    pub data_dir: PathBuf,
    /// What this node shares with any other node started on the same backends.
    backends: Arc<Backends>,
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    rec: Recorder,
    http: reqwest::Client,
    /// The extra environment of `start_with`, given to the CLI too so both see one configuration.
    env: Vec<(String, String)>,
}

fn random_token() -> String {
    PkceCodeChallenge::new_random_sha256().1.secret().clone()
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The binary under test. `LATCHKEY_TEST_BIN` overrides cargo's path: several worktrees that
/// share one target directory overwrite each other's `target/debug/latchkey`, but not the
/// per-build copy under `target/debug/deps/`.
pub fn bin() -> String {
    std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned())
}

/// What the nodes of one deployment share: the data directory (SQLite file, key-encryption key)
/// and, when the suite runs against them, a Postgres database and a Redis key prefix of their
/// own. Dropped with the last node: the database is dropped, the directory removed.
pub struct Backends {
    pub data_dir: PathBuf,
    database: Option<TestDatabase>,
    /// `LATCHKEY_EPHEMERAL_URL` and `LATCHKEY_EPHEMERAL_PREFIX`, when the nodes use Redis.
    redis: Option<(String, String)>,
}

impl Backends {
    /// Fresh backends: Postgres when `LATCHKEY_TEST_POSTGRES` is set, Redis when
    /// `LATCHKEY_TEST_REDIS` is set, else SQLite and in-process state.
    pub fn fresh() -> Arc<Backends> {
        Backends::with_redis(std::env::var("LATCHKEY_TEST_REDIS").ok().filter(|v| !v.is_empty()))
    }

    /// Fresh backends on the Redis at `redis_url` (or in-process state for `None`).
    pub fn with_redis(redis_url: Option<String>) -> Arc<Backends> {
        let data_dir = std::env::temp_dir().join(format!("latchkey-test-{}", random_token()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let redis = redis_url.map(|url| (url, format!("latchkey-test-{}:", random_token())));
        Arc::new(Backends { data_dir, database: TestDatabase::create(), redis })
    }

    /// Fresh backends whose Postgres (`LATCHKEY_TEST_POSTGRES`) is reached through a
    /// [`Cuttable`] link; `None` when the suite does not run against Postgres.
    pub fn with_postgres_link() -> Option<(Arc<Backends>, Cuttable)> {
        let mut backends = Arc::into_inner(Backends::fresh()).unwrap();
        let db = backends.database.as_mut()?;
        let mut url = Url::parse(&db.url).unwrap();
        let target = url.socket_addrs(|| Some(5432)).unwrap()[0];
        let link = Cuttable::forward_to(target);
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(link.port)).unwrap();
        db.url = url.to_string();
        Some((Arc::new(backends), link))
    }

    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }

    pub fn uses_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The environment every process on these backends (server or CLI) runs with.
    fn apply(&self, cmd: &mut Command) {
        cmd.env("LATCHKEY_DATA_DIR", &self.data_dir)
            .env("LATCHKEY_KEYS_DIR", self.data_dir.join("keys"))
            .env_remove("LATCHKEY_ISSUER")
            .env_remove("LATCHKEY_DATABASE_URL")
            .env_remove("LATCHKEY_EPHEMERAL_URL")
            .env("RUST_LOG", "warn");
        if let Some(db) = &self.database {
            cmd.env("LATCHKEY_DATABASE_URL", &db.url);
        }
        if let Some((url, prefix)) = &self.redis {
            cmd.env("LATCHKEY_EPHEMERAL_URL", url).env("LATCHKEY_EPHEMERAL_PREFIX", prefix);
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Some(db) = self.database.take() {
            db.drop_database();
        }
        if std::thread::panicking() {
            eprintln!("--- test data kept in {} ---", self.data_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts `latchkey serve` with extra environment settings, e.g. `("LATCHKEY_CODE_TTL", "1")`.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::start_on(Backends::fresh(), env)
    }

    /// A second node of this deployment (same database, ephemeral store and key-encryption key)
    /// with the same settings, as behind a load balancer.
    pub fn start_peer(&self) -> Server {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_on(self.backends.clone(), &env)
    }

    pub fn backends(&self) -> &Arc<Backends> {
        &self.backends
    }

    /// Starts `latchkey serve` on `backends`, on a free port.
    pub fn start_on(backends: Arc<Backends>, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        backends.apply(&mut cmd);
        cmd.arg("serve")
            .env("LATCHKEY_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn latchkey serve");
        let output = Arc::new(Mutex::new(String::new()));

        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let out = output.clone();
        let stdout_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        out.lock().unwrap().push_str(&line);
                        let _ = tx.send(line.trim_end().to_string());
                    }
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let out = output.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });

        // Generous: a loaded CI machine can take seconds to create a Postgres database and migrate it.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut listening = None;
        let mut issuer = None;
        while issuer.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("Listening on ") {
                        listening = Some(addr.trim().trim_start_matches("http://").to_string());
                    } else if let Some(iss) = line.strip_prefix("Issuer: ") {
                        issuer = Some(iss.trim().to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("latchkey serve did not print `Issuer: ` within 60 s; output:\n{}", output.lock().unwrap());
                }
            }
        }
        let issuer = issuer.unwrap();
        let listening = listening.expect("`Listening on` line before `Issuer:`");
        // Requests go to the issuer when it is this very listener, else (a public issuer, or the
        // shared issuer of several nodes) straight to the listening address.
        let port = listening.rsplit(':').next().unwrap_or_default();
        let base =
            if issuer == format!("http://localhost:{port}") { issuer.clone() } else { format!("http://{listening}") };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Server {
            issuer,
            base,
            data_dir: backends.data_dir.clone(),
            backends,
            child,
            output,
            readers: vec![stdout_reader, stderr_reader],
            rec: Recorder::default(),
            http,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// From now on, 503 responses are expected (a backing store is being taken away) and do not
    /// fail the test at drop; any other 5xx still does.
    pub fn expect_unavailable(&self) {
        self.rec.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The process id of the server, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the server process to exit; `Some(success)` once it has.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<bool> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.success());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The first column of every row `sql` returns, read straight from this server's database
    /// (the SQLite file, or its Postgres database), on a thread of its own.
    pub fn db_strings(&self, sql: &str) -> Vec<String> {
        let url = match &self.backends.database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}/latchkey.db", self.data_dir.display()),
        };
        let sql = sql.to_owned();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let sql = sqlx::AssertSqlSafe(sql);
                if url.starts_with("sqlite:") {
                    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the SQLite file");
                    sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("query")
                } else {
                    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect to Postgres");
                    sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("query")
                }
            })
        })
        .join()
        .unwrap()
    }

    // --- CLI ----------------------------------------------------------------------------------

    /// Runs `latchkey ARGS` against this server's data directory; asserts success and returns
    /// stdout parsed as JSON (or `Value::Null` when stdout is empty).
    pub fn cli(&self, args: &[&str]) -> Value {
        self.cli_stdin(args, None)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let (ok, stdout, stderr) = self.cli_raw(args, stdin);
        assert!(ok, "latchkey {args:?} failed\nstdout: {stdout}\nstderr: {stderr}");
        if stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("latchkey {args:?} printed non-JSON ({e}): {stdout}"))
    }

    /// Runs a CLI command that prints text rather than JSON; asserts success and returns stdout.
    pub fn cli_text(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, stdout, stderr) = self.cli_raw(args, stdin);
        assert!(ok, "latchkey {args:?} failed\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    /// Runs the CLI and returns (success, stdout, stderr) without asserting.
    pub fn cli_raw(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut command = Command::new(bin());
        self.backends.apply(&mut command);
        let mut child = command
            .args(args)
            .env_remove("LATCHKEY_LISTEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn latchkey CLI");
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                let _ = input.write_all(format!("{s}\n").as_bytes());
            }
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        {
            let mut o = self.output.lock().unwrap();
            o.push_str(&format!("[cli {args:?}]\n{stdout}{stderr}"));
        }
        (out.status.success(), stdout, stderr)
    }

    /// `clients add --name NAME ARGS --json`.
    pub fn add_client(&self, name: &str, args: &[&str]) -> TestClient {
        let mut all = vec!["clients", "add", "--name", name];
        all.extend_from_slice(args);
        all.push("--json");
        let v = self.cli(&all);
        TestClient {
            id: v["client_id"].as_str().unwrap_or_else(|| panic!("no client_id in {v}")).to_string(),
            secret: v["client_secret"].as_str().map(str::to_string),
            redirect_uri: args
                .iter()
                .position(|a| *a == "--redirect-uri")
                .map(|i| args[i + 1].to_string())
                .unwrap_or_default(),
            post: args.windows(2).any(|w| w == ["--auth-method", "client_secret_post"]),
        }
    }

    /// A confidential (client_secret_basic) client registered with `CALLBACK` and `POST_LOGOUT`;
    /// consent is shown.
    pub fn confidential_client(&self) -> TestClient {
        self.add_client("rp", &["--redirect-uri", CALLBACK, "--post-logout-redirect-uri", POST_LOGOUT])
    }

    /// A first-party confidential client (never shows consent).
    pub fn first_party_client(&self) -> TestClient {
        self.add_client(
            "first-party rp",
            &["--redirect-uri", CALLBACK, "--post-logout-redirect-uri", POST_LOGOUT, "--first-party"],
        )
    }

    pub fn public_client(&self) -> TestClient {
        self.add_client("public rp", &["--redirect-uri", CALLBACK, "--public", "--first-party"])
    }

    /// `users add --username U --email U@example.com --password-stdin [--claim ...] --json`.
    pub fn add_user_with(&self, username: &str, password: &str, claims: &[&str]) -> Value {
        let email = format!("{username}@example.com");
        let mut args = vec!["users", "add", "--username", username, "--email", &email, "--password-stdin"];
        for c in claims {
            args.push("--claim");
            args.push(c);
        }
        args.push("--json");
        let v = self.cli_stdin(&args, Some(password));
        assert_eq!(v["username"], username, "users add printed {v}");
        v
    }

    pub fn add_user(&self, username: &str, password: &str) -> Value {
        self.add_user_with(username, password, &[])
    }

    /// The default user `alice` with every standard claim set.
    pub fn add_alice(&self) -> Value {
        self.add_user_with(USER, PASSWORD, FULL_CLAIMS)
    }

    // --- HTTP ---------------------------------------------------------------------------------

    /// A fresh browser: its own cookie jar, redirects not followed.
    pub fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
            issuer: self.issuer.clone(),
            rec: self.rec.clone(),
        }
    }

    /// HTTP client for the `openidconnect` RP library.
    pub fn rp_http(&self) -> RpHttp {
        RpHttp { client: self.http.clone(), rec: self.rec.clone() }
    }

    /// Sends a request built on a plain (cookie-less, redirect-less) client and records it.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        send_recorded(&self.rec, req).await
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(self.url(path))).await
    }

    /// POST an urlencoded form to PATH with the given client authentication.
    pub async fn post_form(&self, path: &str, auth: &Auth, params: &[(&str, &str)]) -> Resp {
        let mut params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut req = self.http.post(self.url(path));
        match auth {
            Auth::Basic(id, secret) => {
                req = req.header("Authorization", basic(id, secret));
            }
            Auth::Post(id, secret) => {
                params.push(("client_id".into(), id.clone()));
                params.push(("client_secret".into(), secret.clone()));
            }
            Auth::Public(id) => params.push(("client_id".into(), id.clone())),
            Auth::Nothing => {}
        }
        let body = encode_form(&params);
        self.send(req.header("Content-Type", "application/x-www-form-urlencoded").body(body)).await
    }

    pub async fn token(&self, auth: &Auth, params: &[(&str, &str)]) -> Resp {
        self.post_form("/token", auth, params).await
    }

    /// Redeems a code; `verifier` is sent as `code_verifier` when given.
    pub async fn redeem(&self, client: &TestClient, code: &str, verifier: Option<&str>) -> Resp {
        let mut p =
            vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", client.redirect_uri.as_str())];
        if let Some(v) = verifier {
            p.push(("code_verifier", v));
        }
        self.token(&client.auth(), &p).await
    }

    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> Resp {
        self.token(&client.auth(), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    pub async fn userinfo(&self, access_token: &str) -> Resp {
        self.send(self.http.get(self.url("/userinfo")).header("Authorization", format!("Bearer {access_token}"))).await
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> Resp {
        self.post_form("/introspect", &client.auth(), &[("token", token)]).await
    }

    pub async fn revoke(&self, client: &TestClient, token: &str) -> Resp {
        self.post_form("/revoke", &client.auth(), &[("token", token)]).await
    }

    pub async fn discovery(&self) -> Value {
        let r = self.get("/.well-known/openid-configuration").await;
        assert_eq!(r.status, 200, "discovery: {r:?}");
        r.json()
    }

    pub async fn jwks(&self) -> Value {
        let r = self.get("/jwks").await;
        assert_eq!(r.status, 200, "jwks: {r:?}");
        r.json()
    }

    /// Full code flow for `client` as `alice` (with PKCE S256 and a nonce), approving consent if
    /// asked, then the token exchange. Asserts success.
    pub async fn code_flow(&self, browser: &Browser, client: &TestClient, scope: &str) -> Tokens {
        self.code_flow_with(browser, client, scope, &[]).await
    }

    pub async fn code_flow_with(
        &self,
        browser: &Browser,
        client: &TestClient,
        scope: &str,
        extra: &[(&str, &str)],
    ) -> Tokens {
        let pkce = Pkce::new();
        let nonce = random_token();
        let state = random_token();
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", scope),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let outcome = browser.authorize_and_complete(&params, Some((USER, PASSWORD)), Decision::Allow).await;
        assert_eq!(outcome.param("state"), Some(state.as_str()), "{outcome:?}");
        let code = outcome.code();
        let r = self.redeem(client, &code, Some(&pkce.verifier)).await;
        assert_eq!(r.status, 200, "token exchange failed: {r:?}");
        let mut tokens = Tokens::from_json(r.json());
        tokens.nonce = nonce;
        tokens.outcome = Some(outcome);
        tokens
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let output = self.output();
        if std::thread::panicking() {
            eprintln!("--- latchkey output (data dir {}) ---\n{output}", self.data_dir.display());
            return;
        }
        assert!(!output.contains("panicked"), "the server or CLI panicked during the test:\n{output}");
        let errors = self.rec.server_errors();
        assert!(errors.is_empty(), "responses with status 5xx during the test: {errors:?}\nserver output:\n{output}");
    }
}

/// A Redis server of the test's own (`redis-server` on a free port, nothing on disk), which the
/// test may stop and start again on the same port. `None` when `redis-server` is not installed.
pub struct TestRedis {
    pub port: u16,
    child: Option<Child>,
}

impl TestRedis {
    pub fn start() -> Option<TestRedis> {
        let available = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status();
        if !available.is_ok_and(|s| s.success()) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = TestRedis { port, child: None };
        redis.resume();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server process (again) and waits until it accepts connections.
    pub fn resume(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server: everything it held is gone, as after a crash.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP forwarder between the server and a store, standing in for the network: the test can cut
/// it (open connections are reset, new ones closed at once, as when the store's host goes away)
/// and restore it.
pub struct Cuttable {
    pub port: u16,
    down: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Cuttable {
    pub fn forward_to(target: std::net::SocketAddr) -> Cuttable {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = std::net::TcpStream::connect(target) else { continue };
                let mut registry = o.lock().unwrap();
                registry.extend([client.try_clone().unwrap(), upstream.try_clone().unwrap()]);
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Cuttable { port, down, open }
    }

    pub fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// With `LATCHKEY_TEST_POSTGRES` set to a Postgres URL (e.g.
/// `postgres://postgres@127.0.0.1:5432/test`), every server gets a database of its own, created
/// there and dropped afterwards, so the whole suite runs against Postgres too.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn create() -> Option<TestDatabase> {
        let admin = std::env::var("LATCHKEY_TEST_POSTGRES").ok().filter(|v| !v.is_empty())?;
        let name = format!("latchkey_test_{}", random_token().to_lowercase().replace(['-', '_'], "")[..16].to_owned());
        let mut url = Url::parse(&admin).expect("LATCHKEY_TEST_POSTGRES is a URL");
        url.set_path(&name);
        let db = TestDatabase { admin, name, url: url.to_string() };
        db.admin_sql(&format!("CREATE DATABASE {}", db.name));
        // Tests need no durability across a crash of Postgres itself: commits that do not wait for
        // the disk keep a busy machine's suite fast. (Only this test database is affected.)
        db.admin_sql(&format!("ALTER DATABASE {} SET synchronous_commit = off", db.name));
        Some(db)
    }

    fn drop_database(&self) {
        self.admin_sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }

    /// Runs one statement on the admin database, on a thread of its own so that it works from
    /// inside a test's runtime.
    fn admin_sql(&self, sql: &str) {
        let (admin, sql) = (self.admin.clone(), sql.to_owned());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to LATCHKEY_TEST_POSTGRES");
                conn.execute(sqlx::AssertSqlSafe(sql)).await.expect("admin statement");
            })
        })
        .join()
        .unwrap();
    }
}

pub const FULL_CLAIMS: &[&str] = &[
    "given_name=Alice",
    "family_name=Liddell",
    "name=Alice Liddell",
    "middle_name=Pleasance",
    "nickname=Ally",
    "profile=https://example.com/alice",
    "picture=https://example.com/alice.png",
    "website=https://alice.example.com",
    "gender=female",
    "birthdate=1952-05-04",
    "zoneinfo=Europe/London",
    "locale=en-GB",
    "phone_number=+442079460958",
    "phone_number_verified=true",
    "email_verified=true",
    r#"address={"street_address":"1 Wonderland Way","locality":"Oxford","region":"Oxfordshire","postal_code":"OX1 1AA","country":"GB"}"#,
];

// ---------------------------------------------------------------------------------------------
// Clients, auth, tokens
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
    /// Registered with `--auth-method client_secret_post`.
    pub post: bool,
}

impl TestClient {
    /// The client's registered authentication method.
    pub fn auth(&self) -> Auth {
        match (&self.secret, self.post) {
            (Some(s), false) => Auth::Basic(self.id.clone(), s.clone()),
            (Some(s), true) => Auth::Post(self.id.clone(), s.clone()),
            (None, _) => Auth::Public(self.id.clone()),
        }
    }
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("confidential client")
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    /// `client_secret_basic`, with RFC 6749 §2.3.1 form-encoding of id and secret.
    Basic(String, String),
    /// `client_secret_post`.
    Post(String, String),
    /// `none`: only `client_id` in the body.
    Public(String),
    /// No client authentication at all.
    Nothing,
}

pub fn basic(id: &str, secret: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn encode_form<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_token();
        let challenge = s256(&verifier);
        Pkce { verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn random_string() -> String {
    random_token()
}

#[derive(Debug, Default)]
pub struct Tokens {
    pub json: Value,
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub nonce: String,
    pub outcome: Option<Outcome>,
}

impl Tokens {
    pub fn from_json(json: Value) -> Tokens {
        Tokens {
            access_token: json["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no access_token in {json}"))
                .to_string(),
            id_token: json["id_token"].as_str().map(str::to_string),
            refresh_token: json["refresh_token"].as_str().map(str::to_string),
            json,
            nonce: String::new(),
            outcome: None,
        }
    }
    pub fn id_token(&self) -> &str {
        self.id_token.as_deref().expect("id_token in the token response")
    }
    pub fn id_claims(&self) -> Value {
        jwt_claims(self.id_token())
    }
    pub fn refresh_token(&self) -> &str {
        self.refresh_token.as_deref().unwrap_or_else(|| panic!("no refresh_token in {}", self.json))
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(3000).collect();
        write!(f, "\n[{}] -> {}\nheaders: {:?}\nbody: {}\n", self.what, self.status, self.headers, body)
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308) && self.location().is_some()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {self:?}"))
    }
    /// The media type of `Content-Type`, without parameters, lower-cased.
    pub fn media_type(&self) -> String {
        self.header("content-type").unwrap_or("").split(';').next().unwrap().trim().to_ascii_lowercase()
    }
    pub fn forms(&self) -> Vec<Form> {
        forms(&self.body)
    }
    /// Asserts a token-endpoint style error (RFC 6749 §5.2).
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "expected {status} {error}: {self:?}");
        assert_eq!(self.media_type(), "application/json", "error Content-Type: {self:?}");
        let cc = self.header("cache-control").unwrap_or("");
        assert!(cc.to_ascii_lowercase().contains("no-store"), "error without Cache-Control: no-store: {self:?}");
        let v = self.json();
        assert_eq!(v["error"], error, "wrong error code: {self:?}");
        check_error_chars(&v);
    }
    /// Asserts 401 `invalid_client` with a `WWW-Authenticate: Basic realm=...` challenge.
    pub fn assert_invalid_client(&self) {
        self.assert_oauth_error(401, "invalid_client");
        let wa = self
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("401 invalid_client without WWW-Authenticate: {self:?}"));
        assert!(
            wa.to_ascii_lowercase().starts_with("basic") && wa.contains("realm="),
            "WWW-Authenticate should be a Basic challenge with a realm: {wa}"
        );
    }
    /// Asserts an HTML error page: status 400, no `Location`.
    pub fn assert_error_page(&self) {
        assert_eq!(self.status, 400, "expected an error page: {self:?}");
        assert!(self.location().is_none(), "an error page must not redirect: {self:?}");
        assert_eq!(self.media_type(), "text/html", "error page: {self:?}");
    }
}

/// RFC 6749 §5.2 character rules on `error`, `error_description` and `error_uri` (plans.md 2.9).
pub fn check_error_chars(v: &Value) {
    let error = v["error"].as_str().expect("error is a string");
    assert!(
        error.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "bad characters in error: {error:?}"
    );
    if let Some(d) = v.get("error_description") {
        check_description(d.as_str().expect("error_description is a string"));
    }
    if let Some(u) = v.get("error_uri") {
        let u = u.as_str().expect("error_uri is a string");
        assert!(Url::parse(u).is_ok() && !u.contains(['"', '\\', ' ']), "bad error_uri {u:?}");
    }
}

pub fn check_description(d: &str) {
    assert!(
        d.bytes().all(|b| matches!(
            b,
            0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e
        )),
        "error_description has characters outside %x20-21 / %x23-5B / %x5D-7E \
         (or CR, LF, TAB): {d:?}"
    );
}

pub async fn send_recorded(rec: &Recorder, req: reqwest::RequestBuilder) -> Resp {
    let (client, req) = req.build_split();
    let req = req.expect("request builds");
    let what = format!("{} {}", req.method(), req.url());
    let response = client.execute(req).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    rec.record(what.clone(), status);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("response body");
    Resp { what, status, headers, body: String::from_utf8_lossy(&bytes).to_string() }
}

// ---------------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------------

/// A user agent: keeps cookies, never follows redirects, records statuses.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub issuer: String,
    rec: Recorder,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    Allow,
    Deny,
    /// A consent page is a test failure.
    NotExpected,
}

impl Browser {
    /// The same browser (same cookie jar) talking to another node of the deployment.
    pub fn on(&self, server: &Server) -> Browser {
        Browser {
            client: self.client.clone(),
            base: server.base.clone(),
            issuer: server.issuer.clone(),
            rec: self.rec.clone(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        send_recorded(&self.rec, req).await
    }

    /// Resolves a (possibly relative) URL against the OP's base URL.
    pub fn resolve(&self, url: &str) -> String {
        Url::parse(&self.base).unwrap().join(url).unwrap_or_else(|e| panic!("bad URL {url:?}: {e}")).to_string()
    }

    /// Whether URL belongs to the OP (as opposed to a client's redirect URI).
    pub fn is_internal(&self, url: &str) -> bool {
        let u = Url::parse(url).unwrap();
        let b = Url::parse(&self.base).unwrap();
        let i = Url::parse(&self.issuer).unwrap();
        u.origin() == b.origin() || u.origin() == i.origin()
    }

    pub async fn get(&self, url: &str) -> Resp {
        let url = self.resolve(url);
        self.send(self.client.get(url)).await
    }

    pub async fn post_form<K: AsRef<str>, V: AsRef<str>>(&self, url: &str, params: &[(K, V)]) -> Resp {
        let url = self.resolve(url);
        self.send(
            self.client.post(url).header("Content-Type", "application/x-www-form-urlencoded").body(encode_form(params)),
        )
        .await
    }

    pub fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        format!("{}/authorize?{}", self.base, encode_form(params))
    }

    /// GET /authorize with the parameters in the given order.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Resp {
        let url = self.authorize_url(params);
        self.send(self.client.get(url)).await
    }

    /// POST /authorize with a form body (OIDC Core §3.1.2.1).
    pub async fn authorize_post(&self, params: &[(&str, &str)]) -> Resp {
        self.post_form("/authorize", params).await
    }

    /// Follows the `Location` of RESP, which must point into the OP.
    pub async fn follow(&self, resp: &Resp) -> Resp {
        let loc = resp.location().unwrap_or_else(|| panic!("expected a redirect: {resp:?}"));
        let target = self.resolve(loc);
        assert!(self.is_internal(&target), "redirect leaves the OP: {resp:?}");
        self.get(&target).await
    }

    /// Submits FORM with all its named inputs, overriding/adding FIELDS.
    pub async fn submit(&self, form: &Form, fields: &[(&str, &str)]) -> Resp {
        assert_eq!(form.method, "post", "form method: {form:?}");
        let mut params: Vec<(String, String)> = form
            .inputs
            .iter()
            .filter(|i| !matches!(i.kind.as_str(), "submit" | "button" | "image" | "reset"))
            .filter(|i| !fields.iter().any(|(k, _)| *k == i.name))
            .map(|i| (i.name.clone(), i.value.clone()))
            .collect();
        for (k, v) in fields {
            params.push((k.to_string(), v.to_string()));
        }
        self.post_form(&form.action, &params).await
    }

    /// Fills in the login page PAGE (a 200 HTML page with a password form) and posts it.
    pub async fn login(&self, page: &Resp, user: &str, password: &str) -> Resp {
        let page = if page.is_redirect() { self.follow(page).await } else { page.clone() };
        let form = login_form(&page).unwrap_or_else(|| panic!("not a login page: {page:?}"));
        self.submit(&form, &[("username", user), ("password", password)]).await
    }

    /// Answers the consent page PAGE (or the redirect to it).
    pub async fn consent(&self, page: &Resp, allow: bool) -> Resp {
        let page = if page.is_redirect() { self.follow(page).await } else { page.clone() };
        let form = consent_form(&page).unwrap_or_else(|| panic!("not a consent page: {page:?}"));
        self.submit(&form, &[("decision", if allow { "allow" } else { "deny" })]).await
    }

    /// Drives the interaction from RESP (the answer of /authorize or of a login/consent POST)
    /// until the browser is sent back to the client, by redirect or by form_post.
    pub async fn complete(&self, resp: Resp, creds: Option<(&str, &str)>, decision: Decision) -> Outcome {
        let mut resp = resp;
        let mut logins = 0;
        let mut consents = 0;
        for _ in 0..12 {
            if resp.is_redirect() {
                let target = self.resolve(resp.location().unwrap());
                if self.is_internal(&target) {
                    resp = self.get(&target).await;
                    continue;
                }
                return Outcome::from_redirect(&target, logins, consents);
            }
            if resp.status == 200 {
                if let Some(form) = login_form(&resp) {
                    let (u, p) = creds.unwrap_or_else(|| panic!("unexpected login page: {resp:?}"));
                    logins += 1;
                    resp = self.submit(&form, &[("username", u), ("password", p)]).await;
                    continue;
                }
                if let Some(form) = consent_form(&resp) {
                    let value = match decision {
                        Decision::Allow => "allow",
                        Decision::Deny => "deny",
                        Decision::NotExpected => panic!("unexpected consent page: {resp:?}"),
                    };
                    consents += 1;
                    resp = self.submit(&form, &[("decision", value)]).await;
                    continue;
                }
                if let Some(form) =
                    resp.forms().into_iter().find(|f| f.method == "post" && !self.is_internal(&self.resolve(&f.action)))
                {
                    return Outcome::from_form_post(&resp, &form, logins, consents);
                }
            }
            panic!("unexpected response in the authorization flow: {resp:?}");
        }
        panic!("too many steps in the authorization flow");
    }

    pub async fn authorize_and_complete(
        &self,
        params: &[(&str, &str)],
        creds: Option<(&str, &str)>,
        decision: Decision,
    ) -> Outcome {
        let resp = self.authorize(params).await;
        self.complete(resp, creds, decision).await
    }
}

/// Where the browser was sent back to the client, and with what.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The callback URL without its query (redirect) or the form's action (form_post).
    pub target: String,
    /// The full callback URL (redirect only).
    pub url: Option<Url>,
    pub params: Vec<(String, String)>,
    pub form_post: bool,
    /// How many login and consent pages were shown and answered.
    pub logins: u32,
    pub consents: u32,
    /// For form_post: the page that carried the form.
    pub page: Option<Resp>,
}

impl Outcome {
    fn from_redirect(target: &str, logins: u32, consents: u32) -> Outcome {
        let url = Url::parse(target).unwrap();
        let mut bare = url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        Outcome {
            target: bare.to_string(),
            params: url.query_pairs().into_owned().collect(),
            url: Some(url),
            form_post: false,
            logins,
            consents,
            page: None,
        }
    }

    fn from_form_post(page: &Resp, form: &Form, logins: u32, consents: u32) -> Outcome {
        Outcome {
            target: form.action.clone(),
            url: None,
            params: form
                .inputs
                .iter()
                .filter(|i| !i.name.is_empty())
                .map(|i| (i.name.clone(), i.value.clone()))
                .collect(),
            form_post: true,
            logins,
            consents,
            page: Some(page.clone()),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.params.iter().filter(|(k, _)| k == name).count()
    }

    /// The `code`, asserting there is exactly one and no `error`.
    pub fn code(&self) -> String {
        assert!(self.param("error").is_none(), "authorization failed: {self:?}");
        assert_eq!(self.count("code"), 1, "one code expected: {self:?}");
        self.param("code").unwrap().to_string()
    }

    /// The `error`, asserting there is no `code`.
    pub fn error(&self) -> &str {
        assert!(self.param("code").is_none(), "code in an error response: {self:?}");
        if let Some(url) = &self.url {
            assert!(!url.fragment().unwrap_or("").contains("code="), "code in the fragment: {self:?}");
        }
        self.param("error").unwrap_or_else(|| panic!("no error in the response: {self:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// HTML scraping
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Input {
    /// `input` or `button`.
    pub tag: String,
    /// The `type` attribute, lower-cased (`text` when absent on an input, `submit` on a button).
    pub kind: String,
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub method: String,
    pub enctype: Option<String>,
    pub inputs: Vec<Input>,
}

impl Form {
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.input(name).map(|i| i.value.as_str())
    }
    pub fn has_button(&self, name: &str, value: &str) -> bool {
        self.inputs.iter().any(|i| i.name == name && i.value == value && matches!(i.kind.as_str(), "submit" | "button"))
    }
}

pub fn login_form(page: &Resp) -> Option<Form> {
    page.forms().into_iter().find(|f| f.inputs.iter().any(|i| i.kind == "password") && f.input("username").is_some())
}

pub fn consent_form(page: &Resp) -> Option<Form> {
    page.forms().into_iter().find(|f| f.has_button("decision", "allow") || f.has_button("decision", "deny"))
}

pub fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let Some(end) = end else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses the attributes of a tag starting right after its name; returns them and the index
/// just past the closing `>`.
fn parse_attrs(s: &str) -> (HashMap<String, String>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut attrs = HashMap::new();
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'>' {
            return (attrs, i + 1);
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                i += 1;
                let vs = i;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = unescape_html(&s[vs..i]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = unescape_html(&s[vs..i]);
            }
        }
        if !name.is_empty() {
            attrs.entry(name).or_insert(value);
        }
    }
    (attrs, b.len())
}

/// All `<TAG ...>` start tags in HTML with their attributes and byte offsets.
pub fn tags(html: &str, tag: &str) -> Vec<(usize, HashMap<String, String>)> {
    let lower = html.to_ascii_lowercase();
    let needle = format!("<{tag}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let at = from + pos;
        let after = at + needle.len();
        let next = lower.as_bytes().get(after).copied().unwrap_or(b'>');
        if next.is_ascii_whitespace() || next == b'>' || next == b'/' {
            let (attrs, len) = parse_attrs(&html[after..]);
            out.push((at, attrs));
            from = after + len;
        } else {
            from = after;
        }
    }
    out
}

pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let inputs: Vec<(usize, Input)> = tags(html, "input")
        .into_iter()
        .map(|(at, a)| {
            (
                at,
                Input {
                    tag: "input".into(),
                    kind: a.get("type").map(|t| t.to_ascii_lowercase()).unwrap_or("text".into()),
                    name: a.get("name").cloned().unwrap_or_default(),
                    value: a.get("value").cloned().unwrap_or_default(),
                },
            )
        })
        .chain(tags(html, "button").into_iter().map(|(at, a)| {
            (
                at,
                Input {
                    tag: "button".into(),
                    kind: a.get("type").map(|t| t.to_ascii_lowercase()).unwrap_or("submit".into()),
                    name: a.get("name").cloned().unwrap_or_default(),
                    value: a.get("value").cloned().unwrap_or_default(),
                },
            )
        }))
        .collect();
    tags(html, "form")
        .into_iter()
        .map(|(at, a)| {
            let end = lower[at..].find("</form").map(|e| at + e).unwrap_or(html.len());
            Form {
                action: a.get("action").cloned().unwrap_or_default(),
                method: a.get("method").map(|m| m.to_ascii_lowercase()).unwrap_or("get".into()),
                enctype: a.get("enctype").cloned(),
                inputs: inputs.iter().filter(|(p, _)| *p > at && *p < end).map(|(_, i)| i.clone()).collect(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// JWTs and the checks the conformance suite makes on them
// ---------------------------------------------------------------------------------------------

pub fn b64url_json(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_else(|e| panic!("not base64url ({e}): {part}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {part}"))
}

pub fn jwt_header(jwt: &str) -> Value {
    b64url_json(jwt.split('.').next().unwrap())
}

pub fn jwt_claims(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS compact serialization: {jwt}");
    b64url_json(parts[1])
}

/// Verifies an RS256 JWS against the JWKS as plans.md 2.6 "Signature" asks: the header has a
/// `kid`, exactly one key in the set has that kid with kty RSA, its `alg`/`use` are absent or
/// match, and the signature verifies. Returns the header.
pub fn verify_rs256(jwt: &str, jwks: &Value) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS: {jwt}");
    let header = b64url_json(parts[0]);
    assert_eq!(header["alg"], "RS256", "JWS alg: {header}");
    let kid = header["kid"].as_str().unwrap_or_else(|| panic!("JWS header without kid: {header}"));
    let keys: Vec<&Value> = jwks["keys"].as_array().expect("keys array").iter().filter(|k| k["kid"] == kid).collect();
    assert_eq!(keys.len(), 1, "exactly one JWKS key with kid {kid}: {jwks}");
    let key = keys[0];
    assert_eq!(key["kty"], "RSA", "kty of {kid}");
    if let Some(alg) = key.get("alg") {
        assert_eq!(alg, "RS256", "alg of key {kid}");
    }
    if let Some(u) = key.get("use") {
        assert_eq!(u, "sig", "use of key {kid}");
    }
    let jwk: CoreJsonWebKey = serde_json::from_value(key.clone()).expect("parse JWK");
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature base64url");
    let message = format!("{}.{}", parts[0], parts[1]);
    jwk.verify_signature(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, message.as_bytes(), &sig)
        .unwrap_or_else(|e| panic!("signature does not verify with {kid}: {e:?}"));
    header
}

/// `at_hash` / `c_hash` for RS256: base64url of the left half of SHA-256.
pub fn half_hash(value: &str) -> String {
    let d = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

/// The ID token checks of plans.md 2.6 (PerformStandardIdTokenChecks). `nonce`, when given,
/// must match. Returns the claims.
pub fn check_id_token(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    access_token: Option<&str>,
    jwks: &Value,
) -> Value {
    verify_rs256(id_token, jwks);
    let c = jwt_claims(id_token);
    let now = now();
    assert_eq!(c["iss"], issuer, "iss: {c}");
    match &c["aud"] {
        Value::String(a) => assert_eq!(a, client_id, "aud: {c}"),
        Value::Array(a) => assert!(a.iter().any(|x| x == client_id), "aud: {c}"),
        _ => panic!("aud missing: {c}"),
    }
    let exp = c["exp"].as_i64().unwrap_or_else(|| panic!("exp: {c}"));
    assert!(exp > now - 300, "expired: {c}");
    assert!(exp < now + 50 * 365 * 86400, "exp too far: {c}");
    let iat = c["iat"].as_i64().unwrap_or_else(|| panic!("iat: {c}"));
    assert!(iat <= now + 300 && iat >= now - 300, "iat not near now ({now}): {c}");
    if let Some(at) = c.get("auth_time") {
        let at = at.as_i64().unwrap_or_else(|| panic!("auth_time not a number: {c}"));
        assert!(at <= now + 5 && at > now - 365 * 86400, "auth_time: {c}");
    }
    if let Some(acr) = c.get("acr") {
        assert!(acr.as_str().is_some_and(|a| !a.is_empty()), "acr must be a non-empty string: {c}");
    }
    check_claim_types(&c);
    if let Some(n) = nonce {
        assert_eq!(c["nonce"], n, "nonce: {c}");
    }
    let sub = c["sub"].as_str().unwrap_or_else(|| panic!("sub: {c}"));
    assert!(
        !sub.is_empty() && sub.len() <= 255 && sub.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "sub must be 1-255 printable ASCII: {sub:?}"
    );
    if let (Some(h), Some(at)) = (c.get("at_hash"), access_token) {
        assert_eq!(h.as_str().unwrap(), half_hash(at), "at_hash: {c}");
    }
    c
}

const STRING_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
];

/// Standard claim types (plans.md 2.6 "Standard claim types").
pub fn check_claim_types(c: &Value) {
    for name in STRING_CLAIMS {
        if let Some(v) = c.get(*name) {
            let s = v.as_str().unwrap_or_else(|| panic!("{name} must be a string: {c}"));
            assert!(!s.trim().is_empty() && s != "null", "{name} must be non-blank: {c}");
        }
    }
    for name in ["email_verified", "phone_number_verified"] {
        if let Some(v) = c.get(name) {
            assert!(v.is_boolean(), "{name} must be a boolean: {c}");
        }
    }
    if let Some(a) = c.get("address") {
        let a = a.as_object().unwrap_or_else(|| panic!("address must be an object: {c}"));
        assert!(a.values().all(Value::is_string), "address members: {c}");
    }
    if let Some(u) = c.get("updated_at") {
        let u = u.as_i64().unwrap_or_else(|| panic!("updated_at must be a number: {c}"));
        assert!((631152000..=now() + 5).contains(&u), "updated_at: {c}");
    }
    if let Some(b) = c.get("birthdate") {
        let b = b.as_str().unwrap();
        let ok = match b.len() {
            4 => b.parse::<i64>().is_ok_and(|y| (1850..=2100).contains(&y)),
            10 => {
                let y = &b[..4];
                b.as_bytes()[4] == b'-'
                    && b.as_bytes()[7] == b'-'
                    && (y == "0000" || y.parse::<i64>().is_ok_and(|y| (1850..=2100).contains(&y)))
                    && b[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
                    && b[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
            }
            _ => false,
        };
        assert!(ok, "birthdate format: {b}");
    }
}

/// The userinfo checks of plans.md 4.1 row 5. Returns the claims.
pub fn check_userinfo(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "userinfo: {r:?}");
    assert_eq!(r.media_type(), "application/json", "userinfo: {r:?}");
    let v = r.json();
    assert!(v.is_object(), "userinfo must be a JSON object: {v}");
    check_claim_types(&v);
    assert!(v["sub"].as_str().is_some_and(|s| !s.is_empty()), "sub: {v}");
    assert_eq!(v.get("_claim_names").is_some(), v.get("_claim_sources").is_some(), "_claim_names/_claim_sources: {v}");
    v
}

/// The suite's code/token strength estimate: Shannon entropy of the characters times length.
pub fn entropy_bits(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    for ch in s.chars() {
        *counts.entry(ch).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    let h: f64 = counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    h * n
}

/// The generic checks on an error sent back from the authorization endpoint (plans.md 2.8):
/// state echoed exactly, `iss` equal to the issuer, an `error`, no `code`, only the allowed
/// parameters, and `error_description` within the allowed characters. Returns the error.
pub fn check_authorization_error(o: &Outcome, state: Option<&str>, issuer: &str) -> String {
    let error = o.error().to_string();
    assert_eq!(o.param("state"), state, "state must be echoed exactly: {o:?}");
    assert_eq!(o.param("iss"), Some(issuer), "iss (RFC 9207): {o:?}");
    for (k, _) in &o.params {
        assert!(
            matches!(k.as_str(), "error" | "error_description" | "error_uri" | "state" | "session_state" | "iss"),
            "unexpected parameter {k} in an error response: {o:?}"
        );
    }
    for k in ["error", "state", "iss", "error_description"] {
        assert!(o.count(k) <= 1, "{k} repeated: {o:?}");
    }
    assert!(
        error.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "bad characters in error {error:?}"
    );
    if let Some(d) = o.param("error_description") {
        check_description(d);
    }
    if let Some(u) = o.param("error_uri") {
        assert!(Url::parse(u).is_ok() && !u.contains(['"', '\\', ' ']), "error_uri {u:?}");
    }
    error
}

/// The standard parameters of an authorization request for CLIENT (no PKCE).
pub fn auth_params<'a>(
    client: &'a TestClient,
    scope: &'a str,
    state: &'a str,
    nonce: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client.id.as_str()),
        ("nonce", nonce),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", scope),
        ("state", state),
    ]
}

// ---------------------------------------------------------------------------------------------
// Second factors: TOTP computed independently of the server, the account security page
// ---------------------------------------------------------------------------------------------

/// The RFC 6238 code (6 digits, 30 s, HMAC-SHA-1) of the base32 `secret` for time step `step`.
pub fn totp_code(secret: &str, step: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap_or_else(|e| panic!("base32 {secret}: {e:?}"));
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(bytes.as_bytes().to_vec())
        .build()
        .unwrap();
    totp.generate(step as u64 * 30).to_string()
}

/// The RFC 6238 time step now.
pub fn totp_step() -> i64 {
    now() / 30
}

/// The text of the first element with `id="ID"` (no nested tags).
pub fn element_text(page: &Resp, id: &str) -> Option<String> {
    let at = page.body.find(&format!("id=\"{id}\""))?;
    let rest = &page.body[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(unescape_html(rest[start..start + end].trim()))
}

/// The recovery codes listed on a "Your recovery codes" page.
pub fn recovery_codes(page: &Resp) -> Vec<String> {
    let at = page.body.find("id=\"recovery-codes\"").unwrap_or_else(|| panic!("no recovery codes: {page:?}"));
    let list = &page.body[at..page.body[at..].find("</ul>").map_or(page.body.len(), |e| at + e)];
    list.split("<code>").skip(1).filter_map(|p| p.split("</code>").next()).map(str::to_string).collect()
}

/// The form whose action ends with `suffix` (or, for "/login/", is a login-flow form) and
/// that has an input named `field`.
pub fn form_with(page: &Resp, action: &str, field: &str) -> Option<Form> {
    page.forms().into_iter().find(|f| f.action.contains(action) && f.input(field).is_some())
}

/// The form on an account page that posts `action` (each carries it in a hidden field).
pub fn account_form(page: &Resp, action: &str) -> Form {
    page.forms()
        .into_iter()
        .find(|f| f.action == "/account/security" && f.value("action") == Some(action))
        .unwrap_or_else(|| panic!("no {action} form: {page:?}"))
}

/// A second-factor page of a login flow: a POST form to /login/ with a `code` field.
pub fn code_form(page: &Resp) -> Option<Form> {
    form_with(page, "/login/", "code")
}

/// The form on PAGE that switches to the step `to` ("Use a recovery code instead").
pub fn switch_form(page: &Resp, to: &str) -> Option<Form> {
    page.forms().into_iter().find(|f| f.has_button("switch", to))
}

/// The enrolment result: the key shown (base32), the step of the code that confirmed it, and
/// the recovery codes shown once.
pub struct Enrolled {
    pub secret: String,
    pub step: i64,
    pub recovery_codes: Vec<String>,
}

/// A server (with `env`) that has alice, a first-party client, and alice's authenticator set
/// up on the account page by the returned browser (whose session is still password-only).
pub async fn with_totp(env: &[(&str, &str)]) -> (Server, TestClient, Browser, Enrolled) {
    let server = Server::start_with(env);
    server.add_alice();
    let c = server.first_party_client();
    let owner = server.browser();
    let e = owner.enrol_totp(&owner.security_page((USER, PASSWORD)).await).await;
    (server, c, owner, e)
}

impl Browser {
    /// Presses "use … instead" on a second-factor page: switches the flow to step `to` and
    /// returns that step's page.
    pub async fn switch_to(&self, page: &Resp, to: &str) -> Resp {
        let form = switch_form(page, to).unwrap_or_else(|| panic!("no switch to {to}: {page:?}"));
        let r = self.submit(&form, &[("switch", to)]).await;
        assert_eq!(r.status, 303, "{r:?}");
        self.follow(&r).await
    }

    /// Opens /account/security, signing in with USER/PASSWORD (and, when asked, the code of
    /// `totp`) on the way if the browser has no session; returns the page.
    pub async fn security_page(&self, creds: (&str, &str)) -> Resp {
        let mut r = self.get("/account/security").await;
        for _ in 0..6 {
            if !r.is_redirect() {
                break;
            }
            r = self.follow(&r).await;
            if let Some(form) = login_form(&r) {
                r = self.submit(&form, &[("username", creds.0), ("password", creds.1)]).await;
            }
        }
        assert_eq!(r.status, 200, "account security page: {r:?}");
        assert!(r.body.contains("Account security"), "{r:?}");
        r
    }

    /// Sets up an authenticator from the account security page PAGE (already signed in and
    /// fresh): reads the key, checks the QR code, confirms with the current code.
    pub async fn enrol_totp(&self, page: &Resp) -> Enrolled {
        let form = account_form(page, "totp-begin");
        assert!(form.value("csrf").is_some_and(|v| !v.is_empty()), "{form:?}");
        let enrol = self.submit(&form, &[]).await;
        assert_eq!(enrol.status, 200, "{enrol:?}");
        assert!(!enrol.body.contains("<script"), "works without JavaScript: {enrol:?}");
        let secret = element_text(&enrol, "totp-secret").unwrap_or_else(|| panic!("no key: {enrol:?}"));
        let qr = enrol.body.split("src=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
        let png = qr.strip_prefix("data:image/png;base64,").unwrap_or_else(|| panic!("inline PNG QR: {enrol:?}"));
        let png = STANDARD.decode(png).expect("base64 PNG");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG image");
        let confirm = account_form(&enrol, "totp-confirm");
        let step = totp_step();
        let r = self.submit(&confirm, &[("code", &totp_code(&secret, step))]).await;
        assert_eq!(r.status, 200, "{r:?}");
        let recovery_codes = recovery_codes(&r);
        assert_eq!(recovery_codes.len(), 10, "{r:?}");
        Enrolled { secret, step, recovery_codes }
    }
}
