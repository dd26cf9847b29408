//! Log lines: JSON objects with `LATCHKEY_LOG_FORMAT=json`, plain text without escape codes
//! when stderr is not a terminal, and the request id on every line written for a request.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Waits (up to 1 s) for the server's output to contain `needle`.
async fn output_with(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let out = server.output();
        if out.contains(needle) || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn json_lines_carry_the_request_id() {
    let server = Server::start_with(&[("LATCHKEY_LOG_FORMAT", "json"), ("RUST_LOG", "latchkey=debug")]);
    let r = server.get("/healthz").await;
    let id = r.header("x-request-id").expect("X-Request-Id").to_owned();
    let out = output_with(&server, &id).await;
    let line = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .find(|v| v["span"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no JSON line with span.id {id}:\n{out}"));
    assert_eq!(line["span"]["path"], "/healthz", "{line}");
    assert_eq!(line["fields"]["message"], "request done", "{line}");
    assert!(line["level"].is_string() && line["timestamp"].is_string(), "{line}");
}

#[tokio::test]
async fn text_lines_have_no_escape_codes_off_a_terminal() {
    let server = Server::start_with(&[("RUST_LOG", "latchkey=debug")]);
    let id = server.get("/healthz").await.header("x-request-id").unwrap().to_owned();
    let out = output_with(&server, &id).await;
    assert!(out.lines().any(|l| l.contains(&id) && l.contains("request done")), "{out}");
    assert!(!out.contains('\u{1b}'), "escape codes in piped output:\n{out}");
}

#[tokio::test]
async fn an_unknown_log_format_is_refused_at_start() {
    let server = Server::start();
    let (ok, stdout, stderr) = server.cli_raw(&["config", "check"], None);
    assert!(ok, "{stdout}{stderr}");
    let mut cmd = std::process::Command::new(bin());
    let out = cmd.args(["config", "check"]).env("LATCHKEY_LOG_FORMAT", "xml").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "latchkey: LATCHKEY_LOG_FORMAT: 'xml' is not text or json", "{err}");
}
