//! Headless Chromium driven through chromedriver (W3C WebDriver, plain JSON over HTTP), for the
//! tests that need a real browser: its WebAuthn API, its CORS checks, its page scripts.
//!
//! Needs /usr/bin/chromedriver and /usr/bin/chromium (Debian `chromium`, `chromium-driver`).
//! Without them a test says so and passes, unless LATCHKEY_REQUIRE_BROWSER=1 (as in CI).

use super::random_string;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process with one browser session; both end with the test.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    profile: PathBuf,
}

impl Driver {
    /// Starts chromedriver and a headless Chromium session, or None (skipped) when they are not
    /// installed and not required.
    pub async fn start(test: &str) -> Option<(Driver, String)> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            let required = std::env::var("LATCHKEY_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            assert!(!required, "LATCHKEY_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing");
            eprintln!(
                "SKIPPED {test}: {CHROMEDRIVER} or {CHROMIUM} is not installed \
                 (apt-get install chromium chromium-driver; .ci/run does)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = std::env::temp_dir().join(format!("latchkey-chromium-{}", random_string()));
        let driver = Driver { child, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), profile };
        let started = Instant::now();
        while driver.http.get(format!("{}/status", driver.base)).send().await.is_err() {
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", driver.profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let session = driver.call(reqwest::Method::POST, "/session", Some(caps)).await;
        let id = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_owned();
        Some((driver, id))
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("chromedriver {path}: {e}"));
        let v: Value = resp.json().await.unwrap_or_else(|e| panic!("chromedriver {path}: {e}"));
        assert!(v["value"].get("error").is_none(), "chromedriver {path}: {v}");
        v["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The session's commands.
pub struct Session<'a> {
    pub driver: &'a Driver,
    pub id: String,
}

impl Session<'_> {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver.call(method, &format!("/session/{}{path}", self.id), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Waits for an element matching `css` that is displayed; returns its reference.
    pub async fn element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .driver
                .http
                .post(format!("{}/session/{}/element", self.driver.base, self.id))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            // A web element reference is an object with one member (WebDriver §12.1); an error
            // ("no such element", while the page loads) has several.
            let reference = found["value"].as_object().filter(|o| o.len() == 1 && !o.contains_key("error"));
            if let Some(id) = reference.and_then(|o| o.values().next()).and_then(Value::as_str) {
                let shown = self.call(reqwest::Method::GET, &format!("/element/{id}/displayed"), None).await;
                if shown == json!(true) {
                    return id.to_owned();
                }
            }
            assert!(started.elapsed() < WAIT, "no element {css} on {}", self.text().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/value"), Some(json!({"text": text}))).await;
    }

    pub async fn text(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await;
        let body = self.script("return document.body ? document.body.innerText : ''").await;
        format!("{url}: {body}")
    }

    /// Waits until the page's URL satisfies `done`; returns it.
    pub async fn wait_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let url = self.call(reqwest::Method::GET, "/url", None).await;
            if url.as_str().is_some_and(&done) {
                return url.as_str().unwrap().to_owned();
            }
            assert!(started.elapsed() < WAIT, "waiting for {what}; now at {}", self.text().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_text(&self, needle: &str) {
        let started = Instant::now();
        while !self.text().await.contains(needle) {
            assert!(started.elapsed() < WAIT, "waiting for {needle:?}; now at {}", self.text().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
