//! Mail as the tests see it: the development outbox the server writes into, and a small real
//! SMTP server standing in for a mail relay.

use super::Server;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One message: its raw RFC 5322 text.
#[derive(Clone, Debug)]
pub struct Received {
    pub raw: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        let head = self.raw.split("\r\n\r\n").next()?;
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The 6-digit code after "is:" in the text part.
    pub fn code(&self) -> String {
        let plain =
            self.raw.split("Content-Type: text/plain").nth(1).unwrap_or_else(|| panic!("no text part: {self:?}"));
        let after = plain.split("is:").nth(1).unwrap_or_else(|| panic!("no code: {self:?}"));
        let code: String = after.trim_start().chars().take_while(char::is_ascii_digit).collect();
        assert_eq!(code.len(), 6, "a 6-digit code: {self:?}");
        code
    }

    pub fn has_html_part(&self) -> bool {
        self.raw.contains("Content-Type: text/html")
    }
}

impl Server {
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Every message in the development outbox, oldest first.
    pub fn outbox(&self) -> Vec<Received> {
        let Ok(dir) = std::fs::read_dir(self.outbox_dir()) else { return Vec::new() };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap(), e.path()))
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| Received { raw: std::fs::read_to_string(p).unwrap() }).collect()
    }

    /// The messages to `to` in the outbox, oldest first.
    pub fn mail_to(&self, to: &str) -> Vec<Received> {
        self.outbox().into_iter().filter(|m| m.header("To").is_some_and(|t| t.contains(to))).collect()
    }

    /// The messages to `to` once there are at least `n`, waiting up to 5 s: mail that must not
    /// tell by its timing whether it was sent goes out after the answer.
    pub fn await_mail_to(&self, to: &str, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            let got = self.mail_to(to);
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {n} message(s) to {to} in the outbox");
    }

    /// The sign-in codes sent to `to`, oldest first (not the notices a change of sign-in
    /// methods also mails, which go out off the request path).
    pub fn codes_to(&self, to: &str) -> Vec<Received> {
        self.mail_to(to).into_iter().filter(|m| m.header("Subject") == Some("Your sign-in code")).collect()
    }

    /// The code in the newest sign-in code sent to `to` (waiting up to 5 s for a first one: a
    /// code of email-first sign-in goes out after the answer).
    pub fn latest_code(&self, to: &str) -> String {
        for _ in 0..100 {
            if let Some(last) = self.codes_to(to).pop() {
                return last.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no code mailed to {to}")
    }
}

/// A minimal SMTP server (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT) on 127.0.0.1:0 that keeps
/// what it is sent.
pub struct SmtpServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Whether connections are greeted yet: a held relay waits for [`SmtpServer::release`].
    gate: Arc<(Mutex<bool>, Condvar)>,
}

/// How long a held relay keeps a connection waiting at most, so that a test never hangs on it.
const HOLD_LIMIT: Duration = Duration::from_secs(30);

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::with_gate(true)
    }

    /// A relay that greets no connection until [`SmtpServer::release`] (or 30 s): a slow or
    /// distant relay, whose mail a test knows is not accepted before it says so.
    pub fn held() -> SmtpServer {
        SmtpServer::with_gate(false)
    }

    fn with_gate(open: bool) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new((Mutex::new(open), Condvar::new()));
        let (store, held) = (received.clone(), gate.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (store, held) = (store.clone(), held.clone());
                std::thread::spawn(move || {
                    let (open, opened) = &*held;
                    drop(opened.wait_timeout_while(open.lock().unwrap(), HOLD_LIMIT, |open| !*open).unwrap());
                    let _ = serve(stream, &store);
                });
            }
        });
        SmtpServer { port, received, gate }
    }

    /// Lets a held relay greet its waiting and future connections.
    pub fn release(&self) {
        let (open, opened) = &*self.gate;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Waits up to 5 s for the `n`th message.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the SMTP server did not receive {n} message(s)");
    }
}

fn serve(stream: std::net::TcpStream, store: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 test-relay ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.trim_end().to_ascii_uppercase();
        if verb.starts_with("EHLO") {
            out.write_all(b"250-test-relay\r\n250 8BITMIME\r\n")?;
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut raw = String::new();
            loop {
                line.clear();
                lines.read_line(&mut line)?;
                if line == ".\r\n" || line.is_empty() {
                    break;
                }
                raw.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            store.lock().unwrap().push(Received { raw });
            out.write_all(b"250 queued\r\n")?;
        } else if verb.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}
