//! Issue #20, reliability: shutdown can no longer hang. After SIGTERM the node stops accepting at
//! once, lets in-flight requests finish, and exits by `http.shutdown_deadline_secs` even while a
//! client holds a half-sent request open.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(server: &Server) -> String {
    let port = server.base.rsplit(':').next().unwrap();
    format!("127.0.0.1:{port}")
}

#[tokio::test]
async fn sigterm_with_a_stuck_client_exits_by_the_deadline() {
    // A header timeout far beyond the deadline, so only the deadline can end the wait.
    let mut server =
        Server::start_with(&[("LATCHKEY_SHUTDOWN_DEADLINE_SECS", "1"), ("LATCHKEY_HEADER_READ_TIMEOUT_SECS", "60")]);
    assert_eq!(server.get("/healthz").await.status, 200);
    let mut stuck = TcpStream::connect(addr(&server)).unwrap();
    stuck.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let signalled = Instant::now();
    let kill = std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(kill.success());
    // No new connection is accepted once the signal is in.
    let refused_by = Instant::now() + Duration::from_millis(800);
    while TcpStream::connect(addr(&server)).is_ok() {
        assert!(Instant::now() < refused_by, "still accepting connections after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let exited = server.wait_exit(Duration::from_secs(5));
    assert!(exited.is_some(), "still running 5 s after SIGTERM with a stuck client");
    assert!(signalled.elapsed() < Duration::from_millis(2500), "exited after {:?}", signalled.elapsed());
    drop(stuck);
}
