//! The forward-auth gateway behind real reverse proxies: nginx (`auth_request`) and Caddy
//! (`forward_auth`) from the Debian packages, each run unprivileged on a free port with a
//! configuration written here, in front of a small backend inside the test that echoes the
//! identity headers it receives. Latchkey is their forward-auth service.
//!
//! Without nginx or Caddy installed these tests say so and pass, unless
//! `LATCHKEY_REQUIRE_PROXIES=1` (set by `.ci/run`), where a missing proxy fails them.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";
const CADDY: &str = "/usr/bin/caddy";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
/// The apps behind the proxy, all under the gateway's cookie domain `localhost`.
const HOSTS: &[&str] = &[
    "app.localhost",
    "other.localhost",
    "public.localhost",
    "admin.localhost",
    "secure.localhost",
    "evil.example.com",
];

/// The rules every test runs with.
const RULES: &str = r#"
[gateway]
enabled = true
cookie_domain = "localhost"

[[gateway.rules]]
hosts = ["public.localhost"]
policy = "bypass"

[[gateway.rules]]
hosts = ["*.localhost"]
paths = ["/blocked"]
policy = "deny"

[[gateway.rules]]
hosts = ["admin.localhost"]
policy = "one_factor"
groups = ["admins"]

[[gateway.rules]]
hosts = ["secure.localhost"]
policy = "two_factor"

[[gateway.rules]]
hosts = ["app.localhost", "other.localhost"]
policy = "one_factor"
"#;

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latchkey-{what}-{}", random_string()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The settings file (`LATCHKEY_CONFIG`) with the rules and `extra` lines under `[gateway]`.
fn config(extra: &str) -> PathBuf {
    let path = temp_dir("gateway-config").join("latchkey.toml");
    std::fs::write(
        &path,
        RULES.replace("cookie_domain = \"localhost\"\n", &format!("cookie_domain = \"localhost\"\n{extra}\n")),
    )
    .unwrap();
    path
}

/// A server with the rules, the proxies trusted, and alice.
fn server(extra: &str, env: &[(&str, &str)]) -> Server {
    let config = config(extra);
    let mut all = vec![
        ("LATCHKEY_CONFIG", config.to_str().unwrap()),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0"),
    ];
    all.extend_from_slice(env);
    let server = Server::start_with(&all);
    server.add_alice();
    server.cli(&["groups", "add", "admins", "--json"]);
    server
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The backend and the proxies
// ---------------------------------------------------------------------------------------------

/// The protected app: answers every request with the identity headers it received.
async fn backend() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        axum::Json(json!({
            "path": uri.to_string(),
            "host": h("host"),
            "user": h("remote-user"),
            "email": h("remote-email"),
            "name": h("remote-name"),
            "groups": h("remote-groups"),
        }))
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Nginx,
    Caddy,
}

/// A reverse proxy process in front of the backend, asking Latchkey about each request.
struct Proxy {
    child: Child,
    port: u16,
    dir: PathBuf,
    kind: Kind,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `bin` is installed; when it is not and proxies are required, the test fails.
fn installed(bin: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    if std::env::var("LATCHKEY_REQUIRE_PROXIES").is_ok_and(|v| v == "1") {
        panic!("{bin} is not installed and LATCHKEY_REQUIRE_PROXIES=1 (apt-get install nginx caddy)");
    }
    eprintln!("skipped: {bin} is not installed");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn nginx_conf(dir: &Path, port: u16, latchkey: u16, backend: u16) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        location = /internal/latchkey-auth {{
            internal;
            proxy_pass http://127.0.0.1:{latchkey}/gateway/auth/nginx;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
        location / {{
            auth_request /internal/latchkey-auth;
            auth_request_set $gw_user $upstream_http_remote_user;
            auth_request_set $gw_email $upstream_http_remote_email;
            auth_request_set $gw_name $upstream_http_remote_name;
            auth_request_set $gw_groups $upstream_http_remote_groups;
            auth_request_set $gw_location $upstream_http_location;
            error_page 401 = @latchkey_sign_in;
            proxy_set_header Host $http_host;
            proxy_set_header Remote-User $gw_user;
            proxy_set_header Remote-Email $gw_email;
            proxy_set_header Remote-Name $gw_name;
            proxy_set_header Remote-Groups $gw_groups;
            proxy_pass http://127.0.0.1:{backend};
        }}
        location @latchkey_sign_in {{
            if ($gw_location = "") {{ return 401; }}
            return 302 $gw_location;
        }}
    }}
}}
"#
    )
}

fn caddyfile(port: u16, latchkey: u16, backend: u16) -> String {
    format!(
        r#"{{
    admin off
    auto_https off
}}
http://:{port} {{
    route {{
        request_header -Remote-User
        request_header -Remote-Email
        request_header -Remote-Name
        request_header -Remote-Groups
        forward_auth 127.0.0.1:{latchkey} {{
            uri /gateway/auth
            copy_headers Remote-User Remote-Email Remote-Name Remote-Groups
        }}
        reverse_proxy 127.0.0.1:{backend}
    }}
}}
"#
    )
}

impl Proxy {
    /// Starts `kind` in front of `backend` with `server` as its forward-auth service; none when
    /// the proxy is not installed (and not required).
    fn start(kind: Kind, server: &Server, backend: u16) -> Option<Proxy> {
        let bin = match kind {
            Kind::Nginx => NGINX,
            Kind::Caddy => CADDY,
        };
        if !installed(bin) {
            return None;
        }
        let dir = temp_dir("proxy");
        let port = free_port();
        let latchkey = port_of(&server.base);
        let log = std::fs::File::create(dir.join("output.log")).unwrap();
        let mut cmd = Command::new(bin);
        match kind {
            Kind::Nginx => {
                std::fs::write(dir.join("nginx.conf"), nginx_conf(&dir, port, latchkey, backend)).unwrap();
                cmd.arg("-p").arg(&dir).arg("-c").arg(dir.join("nginx.conf"));
            }
            Kind::Caddy => {
                std::fs::write(dir.join("Caddyfile"), caddyfile(port, latchkey, backend)).unwrap();
                cmd.args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(dir.join("Caddyfile"))
                    .env("HOME", &dir)
                    .env("XDG_DATA_HOME", &dir)
                    .env("XDG_CONFIG_HOME", &dir);
            }
        }
        let child = cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawn proxy");
        let proxy = Proxy { child, port, dir, kind };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{:?} did not listen on {port}: {}", proxy.kind, proxy.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(proxy)
    }

    fn output(&self) -> String {
        let mut out = std::fs::read_to_string(self.dir.join("output.log")).unwrap_or_default();
        out.push_str(&std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default());
        out
    }

    /// The address of `path` on the app `host` behind this proxy.
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

// ---------------------------------------------------------------------------------------------
// The browser through the proxy
// ---------------------------------------------------------------------------------------------

async fn get_html(b: &Browser, url: &str) -> Resp {
    b.send(b.client.get(url).header("Accept", "text/html,application/xhtml+xml")).await
}

async fn get_api(b: &Browser, url: &str) -> Resp {
    b.send(b.client.get(url).header("Accept", "application/json")).await
}

/// Opens `url` as a browser and follows where it is sent, signing in (password, then the TOTP
/// code of `totp` when asked) until the app answers; returns every response on the way.
async fn visit(b: &Browser, url: &str, creds: (&str, &str), totp: Option<(&Server, &str)>) -> Vec<Resp> {
    let mut at = url::Url::parse(url).unwrap();
    let mut r = get_html(b, url).await;
    let mut seen = vec![r.clone()];
    for _ in 0..12 {
        if r.is_redirect() {
            at = at.join(r.location().unwrap()).unwrap();
            r = get_html(b, at.as_str()).await;
        } else if let Some(form) = login_form(&r) {
            r = b.submit(&form, &[("username", creds.0), ("password", creds.1)]).await;
        } else if let (Some(form), Some((server, secret))) = (code_form(&r), totp) {
            let code = totp_code(secret, server.now() / 30);
            r = b.submit(&form, &[("code", &code)]).await;
        } else {
            seen.push(r);
            return seen;
        }
        seen.push(r.clone());
    }
    panic!("no end to the redirects: {seen:?}");
}

/// The app's answer at the end of a visit: the headers the backend received.
fn app_saw(seen: &[Resp]) -> Value {
    let last = seen.last().unwrap();
    assert_eq!(last.status, 200, "the app did not answer: {seen:?}");
    last.json()
}

fn gateway_set_cookie(seen: &[Resp]) -> String {
    seen.iter()
        .flat_map(|r| r.headers.get_all("set-cookie").iter())
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("latchkey_gateway=") && !c.starts_with("latchkey_gateway=;"))
        .unwrap_or_else(|| panic!("no gateway cookie was set: {seen:?}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nginx_signs_a_browser_in_and_applies_the_rules() {
    let server = server("", &[]);
    let backend = backend().await;
    let Some(nginx) = Proxy::start(Kind::Nginx, &server, backend) else { return };
    let b = server.browser_resolving(HOSTS, FIREFOX);

    // An API request without a session: 401 with a Bearer challenge.
    let r = get_api(&b, &nginx.url("app.localhost", "/api/items")).await;
    assert_eq!(r.status, 401, "{r:?}\n{}", nginx.output());

    // A browser: to the sign-in page carrying the original URL, through the login flow, and back.
    let seen = visit(&b, &nginx.url("app.localhost", "/hello?x=1"), (USER, PASSWORD), None).await;
    let first = &seen[0];
    assert_eq!(first.status, 302, "{first:?}");
    let to = first.location().unwrap();
    let rd = nginx.url("app.localhost", "/hello?x=1");
    assert_eq!(
        to,
        format!(
            "{}/gateway/sign-in?rd={}",
            server.issuer,
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )
    );
    let saw = app_saw(&seen);
    assert_eq!(saw["user"], USER, "{saw}");
    assert_eq!(saw["email"], "alice@example.com", "{saw}");
    assert_eq!(saw["path"], "/hello?x=1", "back to the original URL: {saw}");
    let cookie = gateway_set_cookie(&seen);
    for attr in ["Domain=localhost", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains(&server.issuer), "{cookie}");

    // One sign-in for every app under the cookie domain.
    let saw = app_saw(&visit(&b, &nginx.url("other.localhost", "/"), (USER, PASSWORD), None).await);
    assert_eq!(saw["user"], USER);

    // bypass: no sign-in, and a client's own identity header never reaches the app.
    let fresh = server.browser_resolving(HOSTS, FIREFOX);
    let r = fresh.send(fresh.client.get(nginx.url("public.localhost", "/")).header("Remote-User", "mallory")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["user"], "", "{r:?}");

    // deny, for everyone.
    assert_eq!(get_html(&b, &nginx.url("app.localhost", "/blocked/x")).await.status, 403);

    // A rule for the admins group: 403 until alice is in it.
    let r = get_html(&b, &nginx.url("admin.localhost", "/")).await;
    assert_eq!(r.status, 403, "{r:?}");
    server.cli(&["users", "add-to-group", USER, "admins", "--json"]);
    server.advance(2);
    let r = get_html(&b, &nginx.url("admin.localhost", "/")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["groups"], "admins");

    // A client's own X-Original-URL does not make a protected address a bypassed one.
    let r = fresh
        .send(
            fresh
                .client
                .get(nginx.url("app.localhost", "/secret"))
                .header("Accept", "text/html")
                .header("X-Original-URL", "http://public.localhost/")
                .header("X-Forwarded-For", "10.0.0.1"),
        )
        .await;
    assert_eq!(r.status, 302, "{r:?}");

    // The sign-in page returns only to hosts the rules cover.
    for foreign in ["http://evil.example.com/", "https://localhost.evil.example.com/", "javascript:alert(1)"] {
        let url =
            format!("/gateway/sign-in?rd={}", form_urlencoded::byte_serialize(foreign.as_bytes()).collect::<String>());
        let r = b.get(&url).await;
        assert_eq!(r.status, 400, "{foreign}: {r:?}");
        assert!(r.location().is_none());
    }

    // A Latchkey access token passes instead of a session; an expired one does not.
    let client = server.first_party_client();
    let api = server.browser_resolving(HOSTS, FIREFOX);
    let tokens = server.code_flow(&api, &client, "openid").await;
    let bearer = |token: &str| {
        api.client.get(nginx.url("app.localhost", "/api/items")).header("Authorization", format!("Bearer {token}"))
    };
    let r = api.send(bearer(&tokens.access_token)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["user"], USER);
    assert_eq!(api.send(bearer("not-a-token")).await.status, 401);

    // The account's sessions page lists the gateway sessions with their device.
    let sessions = b.get("/account/sessions").await;
    assert_eq!(sessions.status, 200, "{sessions:?}");
    assert!(sessions.body.contains("app.localhost — device "), "{sessions:?}");

    // Sign-out on one subdomain's link ends access on every other.
    let page = b.get(&format!("/gateway/sign-out?rd={}", nginx.url("app.localhost", "/"))).await;
    assert_eq!(page.status, 200, "{page:?}");
    let form = page.forms().into_iter().find(|f| f.action == "/gateway/sign-out").expect("a sign-out form");
    assert!(form.value("csrf").is_some_and(|c| !c.is_empty()));
    let forged = b.post_form("/gateway/sign-out", &[("csrf", "forged"), ("confirm", "yes")]).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    let out = b.submit(&form, &[]).await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.location(), Some(nginx.url("app.localhost", "/").as_str()));
    let r = get_html(&b, &nginx.url("other.localhost", "/")).await;
    assert_eq!(r.status, 302, "signed out everywhere: {r:?}");

    server.advance(301);
    assert_eq!(api.send(bearer(&tokens.access_token)).await.status, 401, "an expired token");
}

#[tokio::test]
async fn caddy_steps_up_to_two_factors_and_ends_a_session_on_another_device() {
    let server = server("device_binding = \"enforce\"", &[]);
    let backend = backend().await;
    let Some(caddy) = Proxy::start(Kind::Caddy, &server, backend) else { return };
    let b = server.browser_resolving(HOSTS, FIREFOX);
    // alice signs in with her password and sets up an authenticator: a one-factor session.
    let enrolled = b.enrol_totp(&b.security_page((USER, PASSWORD)).await).await;

    // A one_factor app passes on that session without asking anything.
    let seen = visit(&b, &caddy.url("app.localhost", "/"), (USER, PASSWORD), None).await;
    assert!(seen.iter().all(|r| login_form(r).is_none() && code_form(r).is_none()), "{seen:?}");
    assert_eq!(app_saw(&seen)["user"], USER, "{}", caddy.output());

    // The two_factor app asks for the second factor, then lets her in.
    server.advance(31);
    let seen =
        visit(&b, &caddy.url("secure.localhost", "/admin"), (USER, PASSWORD), Some((&server, &enrolled.secret))).await;
    assert!(seen.iter().any(|r| code_form(r).is_some()), "a step-up: {seen:?}");
    assert!(seen.iter().all(|r| login_form(r).is_none()), "no password again: {seen:?}");
    assert_eq!(app_saw(&seen)["user"], USER);

    // The same cookie from another device: in enforce mode the session ends.
    let other_device = b
        .send(b.client.get(caddy.url("app.localhost", "/")).header("Accept", "text/html").header("User-Agent", CHROME))
        .await;
    assert_eq!(other_device.status, 302, "{other_device:?}");
    let r = get_html(&b, &caddy.url("app.localhost", "/")).await;
    assert_eq!(r.status, 302, "the session is over for its own device too: {r:?}");
    let kinds = server.db_strings("SELECT kind FROM audit_events WHERE kind LIKE 'gateway.%' ORDER BY at");
    for kind in ["gateway.sign_in", "gateway.new_device", "gateway.device_mismatch"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_client_are_ignored() {
    // 127.0.0.1 is no trusted proxy here, so what it says about the original request is not read.
    let server = server("", &[("LATCHKEY_TRUSTED_PROXIES", "10.9.9.9")]);
    let check = |headers: &[(&str, &str)]| {
        let mut req = server.request(reqwest::Method::GET, "/gateway/auth").header("Accept", "text/html");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req
    };
    let forged = [("X-Forwarded-Host", "public.localhost"), ("X-Forwarded-Uri", "/"), ("X-Forwarded-Proto", "http")];
    let r = server.send(check(&forged)).await;
    assert_eq!(r.status, 403, "the check is of the request as it came (no rule: denied): {r:?}");
    let r = server.send(check(&[("X-Original-URL", "http://public.localhost/"), ("X-Original-Method", "GET")])).await;
    assert_eq!(r.status, 403, "{r:?}");
    // The same from a trusted proxy is read.
    let trusting = Server::start_with(&[
        ("LATCHKEY_CONFIG", config("").to_str().unwrap()),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.0/8"),
    ]);
    let req = trusting.request(reqwest::Method::GET, "/gateway/auth");
    let r = trusting.send(forged.iter().fold(req, |req, (k, v)| req.header(*k, *v))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Signs in at `browser`'s node's `/gateway/sign-in` (as a check would send it there) and
/// answers the gateway cookie, `name=value`.
async fn sign_in_directly(browser: &Browser) -> String {
    let rd = "http://app.localhost/";
    let url = format!("/gateway/sign-in?rd={}", form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>());
    let mut r = browser.get(&url).await;
    let mut seen = vec![r.clone()];
    while r.location() != Some(rd) {
        r = if r.is_redirect() { browser.follow(&r).await } else { browser.login(&r, USER, PASSWORD).await };
        seen.push(r.clone());
        assert!(seen.len() < 10, "{seen:?}");
    }
    gateway_set_cookie(&seen).split(';').next().unwrap().to_owned()
}

/// What a proxy asks `node` about a browser's request for `http://app.localhost/`.
fn proxied_check(node: &Server, cookie: &str) -> reqwest::RequestBuilder {
    node.request(reqwest::Method::GET, "/gateway/auth")
        .header("Accept", "text/html")
        .header("User-Agent", FIREFOX)
        .header("Cookie", cookie)
        .header("X-Forwarded-Host", "app.localhost")
        .header("X-Forwarded-Proto", "http")
        .header("X-Forwarded-Uri", "/")
}

/// Backends with a Redis: the machine's (`LATCHKEY_TEST_REDIS`) or one of the test's own.
fn with_redis() -> Option<(std::sync::Arc<Backends>, Option<TestRedis>)> {
    match std::env::var("LATCHKEY_TEST_REDIS").ok().filter(|v| !v.is_empty()) {
        Some(_) => Some((Backends::fresh(), None)),
        None => {
            let Some(redis) = TestRedis::start() else {
                eprintln!("skipped: neither LATCHKEY_TEST_REDIS nor redis-server is available");
                return None;
            };
            Some((Backends::with_redis(Some(redis.url())), Some(redis)))
        }
    }
}

#[tokio::test]
async fn a_session_made_on_one_node_passes_on_another_and_logout_reaches_it_within_the_cache_window() {
    let Some((backends, _redis)) = with_redis() else { return };
    let config = config("cache_secs = 1");
    let env = [
        ("LATCHKEY_ISSUER", "http://localhost:9"),
        ("LATCHKEY_CONFIG", config.to_str().unwrap()),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_RATE_LIMIT_PER_SECOND", "0"),
    ];
    let a = Server::start_on(backends.clone(), &env);
    let b = Server::start_on(backends, &env);
    a.add_alice();
    let browser = a.browser_resolving(HOSTS, FIREFOX);
    let cookie = sign_in_directly(&browser).await;

    let r = b.send(proxied_check(&b, &cookie)).await;
    assert_eq!(r.status, 200, "made on A, passes on B: {r:?}");
    assert_eq!(r.header("remote-user"), Some(USER));
    assert_eq!(a.send(proxied_check(&a, &cookie)).await.status, 200);

    // Sign-out on node B.
    let on_b = browser.on(&b);
    let page = on_b.get("/gateway/sign-out").await;
    let form = page.forms().into_iter().find(|f| f.action == "/gateway/sign-out").expect("a sign-out form");
    assert_eq!(on_b.submit(&form, &[]).await.status, 200);
    assert_eq!(b.send(proxied_check(&b, &cookie)).await.status, 302, "at once on B");
    // A may answer from its cache for gateway.cache_secs, not longer.
    a.advance(1);
    let r = a.send(proxied_check(&a, &cookie)).await;
    assert_eq!(r.status, 302, "enforced on A after the cache window: {r:?}");
}

/// A gateway session in the ephemeral store keeps neither the browser nor the address in
/// clear: only the device fingerprint, a keyed hash (not a SHA-256 anyone can recompute from
/// the few browser families and platforms).
#[tokio::test]
async fn gateway_sessions_keep_no_address_or_browser_in_clear() {
    use sha2::{Digest, Sha256};
    let Some((backends, _redis)) = with_redis() else { return };
    let config = config("");
    let env = [("LATCHKEY_CONFIG", config.to_str().unwrap()), ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")];
    let server = Server::start_on(backends.clone(), &env);
    server.add_alice();
    let browser = server.browser_resolving(HOSTS, FIREFOX);
    let cookie = sign_in_directly(&browser).await;
    assert_eq!(server.send(proxied_check(&server, &cookie)).await.status, 200);
    let stored = backends.redis_values("gw:*").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let unkeyed: String = Sha256::digest(b"Firefox on Linux").iter().map(|b| format!("{b:02x}")).collect();
    for clear in ["127.0.0.1", "Firefox", "Linux", "Mozilla", unkeyed.as_str()] {
        assert!(!stored[0].contains(clear), "{clear} in {}", stored[0]);
    }
    for seen in backends.redis_values("gw-devices:*").await {
        assert!(!seen.contains(&unkeyed), "{seen}");
    }
}

#[tokio::test]
async fn an_unreachable_store_fails_closed_after_the_outage_grace() {
    // A Redis of the test's own, to take away.
    let Some(mut redis) = TestRedis::start() else {
        eprintln!("skipped: redis-server is not available");
        return;
    };
    let config = config("outage_grace_secs = 30");
    let env = [("LATCHKEY_CONFIG", config.to_str().unwrap()), ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")];
    let server = Server::start_on(Backends::with_redis(Some(redis.url())), &env);
    server.add_alice();
    let cookie = sign_in_directly(&server.browser_resolving(HOSTS, FIREFOX)).await;
    assert_eq!(server.send(proxied_check(&server, &cookie)).await.status, 200);

    redis.stop();
    server.expect_unavailable();
    server.advance(5);
    let r = server.send(proxied_check(&server, &cookie)).await;
    assert_eq!(r.status, 200, "verified 5 s ago, within gateway.outage_grace_secs: {r:?}");
    let stranger = proxied_check(&server, "latchkey_gateway=never-issued");
    assert_eq!(server.send(stranger).await.status, 503, "nothing to vouch for it: fail closed");
    server.advance(30);
    let r = server.send(proxied_check(&server, &cookie)).await;
    assert_eq!(r.status, 503, "past the grace: fail closed: {r:?}");
    redis.resume();
}

#[test]
fn config_check_reports_each_bad_rule_on_a_line_of_its_own() {
    let dir = temp_dir("gateway-check");
    let path = dir.join("latchkey.toml");
    std::fs::write(
        &path,
        r#"
[gateway]
enabled = true
cookie_domain = "example.com"

[[gateway.rules]]
hosts = ["app.example.com"]
path_regex = "(unclosed"
networks = ["10.0.0.0/33"]
policy = "one_factor"

[[gateway.rules]]
hosts = ["elsewhere.org"]
policy = "bypass"
groups = ["admins"]
"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["config", "check", "--json"])
        .env("LATCHKEY_CONFIG", &path)
        .env("LATCHKEY_ISSUER", "https://login.example.com")
        .env("LATCHKEY_DATA_DIR", dir.join("data"))
        .env("LATCHKEY_KEYS_DIR", dir.join("keys"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<&str> = report["problems"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for expected in [
        "gateway.rules[0]: path_regex",
        "gateway.rules[0]: networks: '10.0.0.0/33'",
        "gateway.rules[1]: host 'elsewhere.org' is outside gateway.cookie_domain",
        "gateway.rules[1]: groups and users apply only to one_factor and two_factor rules",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected} in {problems:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
