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

/// With the `otlp` feature and `OTEL_EXPORTER_OTLP_ENDPOINT`, request spans reach a collector
/// over OTLP/HTTP: here a small collector inside the test that keeps what is posted to
/// `/v1/traces`. (`cargo test --features otlp --test logs`.)
#[cfg(feature = "otlp")]
#[tokio::test]
async fn request_spans_are_exported_over_otlp() {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let posted: Arc<Mutex<Vec<(String, Vec<u8>)>>> = Arc::default();
    let kept = posted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 16384];
                // Reads the head, then as many body bytes as Content-Length says.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&request[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        let body = request[end + 4..end + 4 + length].to_vec();
                        kept.lock().unwrap().push((head, body));
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                        return;
                    }
                }
            });
        }
    });
    let server = Server::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "latchkey-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    assert_eq!(server.get("/healthz").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (head, body) = loop {
        if let Some(p) = posted.lock().unwrap().iter().find(|(h, _)| h.starts_with("POST /v1/traces ")).cloned() {
            break p;
        }
        assert!(Instant::now() < deadline, "no spans exported in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(head.to_ascii_lowercase().contains("content-type: application/x-protobuf"), "{head}");
    // Protobuf keeps strings as they are: the service name and the request span's name and path.
    let has = |s: &str| body.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(has("latchkey-under-test") && has("request") && has("/healthz"), "{body:?}");
}
