//! Issue #20, low: a half-sent request is closed within `http.header_read_timeout_secs`, and the
//! server holds at most `http.max_connections` connections at once.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(server: &Server) -> String {
    let port = server.base.rsplit(':').next().unwrap();
    format!("127.0.0.1:{port}")
}

/// Reads until the server closes the connection; returns what it sent and how long it took.
fn read_to_close(mut s: TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after {:?}: {e}", start.elapsed()),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[tokio::test]
async fn a_half_sent_request_is_closed_within_the_header_timeout() {
    let server = Server::start_with(&[("LATCHKEY_HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut slow = TcpStream::connect(addr(&server)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: a").unwrap();
    let (_, took) = read_to_close(slow, Duration::from_secs(4));
    assert!(took < Duration::from_millis(2500), "closed after {took:?}");
    // A well-behaved client is served as usual.
    assert_eq!(server.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = Server::start_with(&[("LATCHKEY_MAX_CONNECTIONS", "2"), ("LATCHKEY_HEADER_READ_TIMEOUT_SECS", "30")]);
    let hold: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(addr(&server)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(addr(&server)).unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut buf = [0u8; 64];
    assert!(third.read(&mut buf).is_err(), "a third connection was served beyond the cap of 2");
    drop(hold);
    let (answer, _) = read_to_close(third, Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
