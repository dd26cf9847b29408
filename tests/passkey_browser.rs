//! A real browser registers a passkey and signs in with it alone: headless Chromium driven
//! through chromedriver (W3C WebDriver, plain JSON over HTTP), with a virtual authenticator
//! from the WebDriver extension of WebAuthn Level 2 §11 (CTAP2, internal transport, resident
//! keys, user verification). It checks what the other tests cannot: that `webauthn.js` speaks to
//! a browser's WebAuthn API, under the page's CSP, and that webauthn-rs accepts what it sends.
//!
//! Needs /usr/bin/chromedriver and /usr/bin/chromium (Debian `chromium`, `chromium-driver`).
//! Without them the test says so and passes, unless LATCHKEY_REQUIRE_BROWSER=1 (as in CI).

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process with one browser session; both end with the test.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    profile: PathBuf,
}

impl Driver {
    /// Starts chromedriver and a headless Chromium session, or None (skipped) when they are not
    /// installed and not required.
    async fn start() -> Option<(Driver, String)> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            let required = std::env::var("LATCHKEY_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            assert!(!required, "LATCHKEY_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing");
            eprintln!(
                "SKIPPED passkey_browser: {CHROMEDRIVER} or {CHROMIUM} is not installed \
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
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver.call(method, &format!("/session/{}{path}", self.id), body).await
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Waits for an element matching `css` that is displayed; returns its reference.
    async fn element(&self, css: &str) -> String {
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

    async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/value"), Some(json!({"text": text}))).await;
    }

    async fn text(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await;
        let body = self.script("return document.body ? document.body.innerText : ''").await;
        format!("{url}: {body}")
    }

    /// Waits until the page's URL satisfies `done`; returns it.
    async fn wait_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
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

    async fn wait_text(&self, needle: &str) {
        let started = Instant::now();
        while !self.text().await.contains(needle) {
            assert!(started.elapsed() < WAIT, "waiting for {needle:?}; now at {}", self.text().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn chromium_registers_a_passkey_and_signs_in_with_it_alone() {
    let Some((driver, id)) = Driver::start().await else { return };
    let browser = Session { driver: &driver, id };
    let server = Server::start();
    server.add_alice();
    // The client comes back to the OP's own origin, so the browser can load the callback URL.
    let callback = format!("{}/rp-callback", server.issuer);
    let c = server.add_client("browser rp", &["--redirect-uri", &callback, "--first-party"]);

    // A platform authenticator that holds discoverable credentials and verifies its user.
    let authenticator = browser
        .call(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            Some(json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                        "hasUserVerification": true, "isUserVerified": true,
                        "automaticPresenceSimulation": true})),
        )
        .await;
    let authenticator = authenticator.as_str().expect("authenticator id").to_owned();

    // Sign in with the password and add a passkey on the security page.
    browser.goto(&server.url("/account/security")).await;
    browser.type_into("#username", USER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#submit").await;
    browser.wait_text("Account security").await;
    browser.type_into("#passkey-name", "Chromium").await;
    browser.click("#passkey-add button").await;
    browser.click("#passkey-create-button").await;
    browser.wait_text("Your passkey is added.").await;
    let path = format!("/webauthn/authenticator/{authenticator}/credentials");
    let creds = browser.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(creds.as_array().map(Vec::len), Some(1), "{creds}");
    assert_eq!(creds[0]["isResidentCredential"], true, "a discoverable credential: {creds}");
    assert_eq!(creds[0]["rpId"], "localhost", "{creds}");

    // Signed out (cookies gone), a new authorization: sign in with the passkey alone.
    browser.call(reqwest::Method::DELETE, "/cookie", None).await;
    let pkce = Pkce::new();
    let mut p = auth_params(&c, "openid", "st", "nonce-browser");
    p.push(("code_challenge", &pkce.challenge));
    p.push(("code_challenge_method", "S256"));
    browser.goto(&format!("{}/authorize?{}", server.issuer, encode_form(&p))).await;
    // The page's conditional request (autofill) may already be answered by the virtual
    // authenticator, which simulates the user's touch; otherwise press the passkey button.
    // Up to 2 s for that, polled: the browser is another process.
    let asked = Instant::now();
    while asked.elapsed() < Duration::from_secs(2) {
        let url = browser.call(reqwest::Method::GET, "/url", None).await;
        if url.as_str().is_some_and(|u| u.starts_with(&callback)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let script = "var b = document.getElementById('passkey-button'); \
                  if (b && !b.closest('form').hidden) { b.click(); return true } return false";
    let clicked = browser.script(script).await;
    eprintln!("signed in by {}", if clicked == json!(true) { "the passkey button" } else { "autofill" });
    let landed = browser.wait_url("the client's callback", |u| u.starts_with(&callback)).await;
    let landed = url::Url::parse(&landed).unwrap();
    let code = landed.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
    let code = code.unwrap_or_else(|| panic!("no code in {landed}"));
    let r = server.redeem(&c, &code, Some(&pkce.verifier)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tokens = Tokens::from_json(r.json());
    let claims = check_id_token(
        tokens.id_token(),
        &server.issuer,
        &c.id,
        Some("nonce-browser"),
        Some(&tokens.access_token),
        &server.jwks().await,
    );
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]), "{claims}");

    browser.call(reqwest::Method::DELETE, "", None).await;
}
