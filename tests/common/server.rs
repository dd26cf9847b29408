//! The server process: `latchkey serve` started on port 0, its CLI run against the same data, the
//! HTTP helpers an RP uses against it, and the record of statuses behind the "no 5xx" rule.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Recording of statuses (for the "no 500" rule)
// ---------------------------------------------------------------------------------------------

/// Every (request, status) seen; the flag says 503 is expected (see `Server::expect_unavailable`).
#[derive(Clone, Default)]
pub struct Recorder(pub(super) Arc<Mutex<Vec<(String, u16)>>>, pub(super) Arc<std::sync::atomic::AtomicBool>);

impl Recorder {
    pub(super) fn record(&self, what: String, status: u16) {
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

/// The binary under test: `LATCHKEY_TEST_BIN` when set (a copy kept apart from a target
/// directory that other checkouts also build into), else the one Cargo built for this test.
pub fn bin() -> String {
    std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned())
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

    /// Moves the clock of this deployment (this node, its peers and the CLI) `secs` forward,
    /// instead of sleeping: codes, flows, tokens, sessions and keys age at once.
    pub fn advance(&self, secs: i64) {
        self.backends.advance(secs);
    }

    /// The time as the server sees it (the system time plus every [`Server::advance`]).
    pub fn now(&self) -> i64 {
        self.backends.now()
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

    /// A fresh browser that finds each of `hosts` (e.g. `app.localhost`, apps behind a proxy
    /// on this machine) at 127.0.0.1, whatever port the URL names.
    pub fn browser_resolving(&self, hosts: &[&str], user_agent: &str) -> Browser {
        let mut builder = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent.to_owned());
        for h in hosts {
            builder = builder.resolve(h, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        Browser {
            client: builder.build().unwrap(),
            base: self.base.clone(),
            issuer: self.issuer.clone(),
            rec: self.rec.clone(),
        }
    }

    /// A fresh browser whose every request says it was forwarded for `client` (as a load
    /// balancer in front of the server would write `X-Forwarded-For`).
    pub fn browser_behind_proxy(&self, client: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().unwrap());
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
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
