//! What the nodes of one deployment share (data directory, Postgres database, Redis prefix,
//! test clock), and the stores a test can take away: its own Redis, a cuttable link to Postgres.

use super::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the nodes of one deployment share: the data directory (SQLite file, key-encryption key)
/// and, when the suite runs against them, a Postgres database and a Redis key prefix of their
/// own. Dropped with the last node: the database is dropped, the directory removed.
pub struct Backends {
    pub data_dir: PathBuf,
    pub(super) database: Option<TestDatabase>,
    /// `LATCHKEY_EPHEMERAL_URL` and `LATCHKEY_EPHEMERAL_PREFIX`, when the nodes use Redis.
    pub(super) redis: Option<(String, String)>,
    /// Seconds this deployment's clock runs ahead of the system's, as written to its
    /// `LATCHKEY_TEST_CLOCK_FILE` (read by every node and every CLI run).
    offset: Mutex<i64>,
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
        Arc::new(Backends { data_dir, database: TestDatabase::create(), redis, offset: Mutex::new(0) })
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

    /// The values of the ephemeral store's keys matching `pattern` (a Redis glob, without the
    /// deployment's prefix), as the Redis holds them; empty without Redis.
    pub async fn redis_values(&self, pattern: &str) -> Vec<String> {
        let Some((url, prefix)) = &self.redis else { return Vec::new() };
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}{pattern}")).query_async(&mut conn).await.unwrap();
        let mut values = Vec::new();
        for key in keys {
            let v: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
            values.push(String::from_utf8_lossy(&v).into_owned());
        }
        values
    }

    pub fn uses_postgres(&self) -> bool {
        self.database.is_some()
    }

    fn clock_file(&self) -> PathBuf {
        self.data_dir.join("test-clock")
    }

    /// Moves the time of every process on these backends `secs` forward: the servers see it at
    /// their next clock read (their key refresh within 50 ms), later CLI runs at start.
    pub fn advance(&self, secs: i64) {
        assert!(secs >= 0, "the test clock only moves forward");
        let mut offset = self.offset.lock().unwrap();
        *offset += secs;
        // Written whole and renamed into place, so a reader never sees half a number.
        let tmp = self.data_dir.join("test-clock.tmp");
        std::fs::write(&tmp, offset.to_string()).unwrap();
        std::fs::rename(&tmp, self.clock_file()).unwrap();
    }

    /// The deployment's time now: the system time plus what the test moved it by.
    pub fn now(&self) -> i64 {
        now() + *self.offset.lock().unwrap()
    }

    /// The environment every process on these backends (server or CLI) runs with.
    pub(super) fn apply(&self, cmd: &mut Command) {
        cmd.env("LATCHKEY_DATA_DIR", &self.data_dir)
            .env("LATCHKEY_TEST_CLOCK_FILE", self.clock_file())
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
pub(super) struct TestDatabase {
    admin: String,
    name: String,
    pub(super) url: String,
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
