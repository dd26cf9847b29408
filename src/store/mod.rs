//! Durable state over sqlx: SQLite by default, Postgres when `database.url` says so. One set of
//! portable SQL (`$n` placeholders, BIGINT times, TEXT ids) serves both through `sqlx::Any`.

/// The required-group rule as one BIGINT (1: may use): the client `$client` requires no group,
/// or the user `$user` is in one of those it requires.
macro_rules! may_use_client {
    ($client:literal, $user:literal) => {
        concat!(
            "CAST(CASE WHEN NOT EXISTS (SELECT 1 FROM client_required_groups WHERE client_id = ",
            $client,
            ")
                  OR EXISTS (SELECT 1 FROM client_required_groups r JOIN group_members m
                             ON m.group_name = r.group_name WHERE r.client_id = ",
            $client,
            " AND m.user_id = ",
            $user,
            ")
                THEN 1 ELSE 0 END AS BIGINT)"
        )
    };
}

mod access;
mod audit;
mod clients;
mod consents;
mod direct;
mod grants;
mod group_commit;
mod logouts;
mod passkeys;
mod password_history;
mod pg_direct;
mod phone_numbers;
#[cfg(test)]
mod plans;
pub mod purge;
mod registrations;
mod resources;
pub mod sealed;
mod second_factors;
mod sessions;
mod signing_keys;
mod upstream_identities;
mod users;

pub use access::{GroupRemoval, GroupRow};
pub use audit::{AuditEvent, AuditQuery, AuditRow};
pub use consents::ConsentRow;
pub use grants::{GrantWrite, LiveGrant, NewGrant, RefreshToken, RotateOutcome, Rotation};
pub use logouts::LogoutDelivery;
pub use passkeys::{NewPasskey, PasskeyRow};
pub use password_history::SignOut;
pub use phone_numbers::PhoneNumber;
pub use second_factors::TotpCredential;
pub use sessions::{SessionAtClient, SessionClient};
pub use signing_keys::{KeyChange, SigningKeyRow};
pub use upstream_identities::LinkedIdentity;
pub use users::KeyConflict;

use crate::clock::Clock;
use crate::config::Settings;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clients: Arc<clients::Cache>,
    /// Seals and opens personal data, under the KEK (see [`sealed`]).
    pii: Arc<sealed::Pii>,
    /// SQLite's hot paths, without sqlx's worker thread (see [`direct`]); None on Postgres.
    direct: Option<Arc<direct::Direct>>,
    /// Postgres's hot paths, without the pool's ping (see [`pg_direct`]); None on SQLite.
    pg: Option<Arc<pg_direct::PgDirect>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens the pool. For SQLite, creates the data directory and sets WAL with
    /// `synchronous=NORMAL`: durable at checkpoints, without an fsync per commit. `clock` is the
    /// process's one clock, by which the client cache expires.
    pub async fn connect(settings: &Settings, clock: Clock) -> anyhow::Result<Self> {
        install_default_drivers();
        let url = settings.database_url();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite {
            std::fs::create_dir_all(&settings.data_dir)?;
        }
        let mut options = AnyPoolOptions::new()
            .max_connections(match backend {
                // One connection, so one writer: SQLite lets one writer in at a time and makes
                // the others sleep and retry (its busy handler: 1 ms, 2 ms, … 100 ms), which is
                // the token endpoint's long tail. Reads queue behind it for microseconds.
                Backend::Sqlite => 1,
                Backend::Postgres => settings.database.max_connections,
            })
            // No ping before every acquire: it is a round trip per statement (to Postgres, or to
            // SQLite's worker thread). A broken connection fails its statement (a 503) and is
            // closed when it goes back to the pool, which pings it then.
            .test_before_acquire(false)
            .acquire_timeout(std::time::Duration::from_secs(settings.database.acquire_timeout));
        if backend == Backend::Sqlite {
            // No checkpoints on commit (`wal_autocheckpoint = 0`), as on the hot writer's
            // connection: the log is always past SQLite's threshold of 1 000 pages (the
            // checkpointer restarts it only at 16 384), so each commit here, a sign-in's session
            // say, was followed by a checkpoint of the whole log with its syncs, milliseconds on
            // sqlx's one connection. The checkpointer thread does it beside them.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let cannot_open = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("cannot open the database at {}: {e}", crate::config::redacted(&url))
        };
        let pool = options.connect(&url).await.map_err(|e| cannot_open(&e))?;
        let (direct, pg) = match backend {
            Backend::Sqlite => (direct::Direct::open(&url).map_err(|e| cannot_open(&e))?.map(Arc::new), None),
            Backend::Postgres => {
                // Two per runtime thread: a request waits for a statement's round trip, not
                // for another request's.
                let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                let slots = (threads * 2).clamp(2, 16).min(settings.database.max_connections as usize);
                let wait = std::time::Duration::from_secs(settings.database.acquire_timeout);
                (None, Some(Arc::new(pg_direct::PgDirect::new(&url, slots, wait).map_err(|e| cannot_open(&e))?)))
            }
        };
        let kek = crate::keys::kek::Kek::load_or_create(&settings.keys_dir)?;
        Ok(Self {
            pool,
            backend,
            clients: Arc::new(clients::Cache::new(clock)),
            pii: Arc::new(sealed::Pii::new(kek)),
            direct,
            pg,
        })
    }

    /// Brings the schema up to date, seals the personal data still in clear (see [`sealed`]),
    /// then fills the accounts' lookup keys; answers the accounts that conflict by case (each
    /// also logged as a warning), which a migration never fails over.
    pub async fn migrate(&self) -> anyhow::Result<Vec<KeyConflict>> {
        Ok(self.migrate_sealing(sealed::BATCH, None).await?.0)
    }

    /// [`Store::migrate`], sealing in batches of `batch` rows and at most `batches` of them
    /// (`latchkey migrate --batches`); what is left is sealed by the next run or start.
    pub async fn migrate_sealing(
        &self,
        batch: u64,
        batches: Option<u64>,
    ) -> anyhow::Result<(Vec<KeyConflict>, sealed::Sealing)> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        let sealing = self.seal_plain_rows(batch, batches).await?;
        if sealing.rows > 0 {
            tracing::info!(rows = sealing.rows, more = sealing.more, "sealed personal data written in clear");
        }
        let conflicts = self.fill_login_keys().await?;
        for c in &conflicts {
            tracing::warn!(user = %c.user_id, holder = %c.holder, field = c.field, "{c}");
        }
        Ok((conflicts, sealing))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// the hot paths write through a second connection (see [`direct`]), and a transaction that
    /// read first and wrote after such a write would fail (`SQLITE_BUSY_SNAPSHOT`) rather than
    /// wait.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Runs `update` (`SET <sealed> = $1 WHERE <id> = $2 AND <sealed> = $3`) for each
    /// `(id, old, new)` in one transaction, for `keys rewrap`: a value changed meanwhile is left
    /// alone. Returns how many rows changed.
    async fn reseal(&self, update: &'static str, sealed: &[(String, String, String)]) -> Result<usize> {
        let mut tx = self.begin().await?;
        let mut n = 0;
        for (id, old, new) in sealed {
            let r = sqlx::query(update).bind(new).bind(id).bind(old).execute(&mut *tx).await?;
            n += r.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Is the database answering? (`/readyz`) A connection of the pool that the database
    /// dropped (a restart, a cut link) fails its first statement and is closed then; the hot
    /// paths, on connections of their own, may have sent the pool nothing since the database
    /// came back. So asked once more for each idle connection: the last time over a new one.
    pub async fn ping(&self) -> bool {
        for _ in 0..=self.pool.num_idle() {
            if sqlx::query("SELECT 1").execute(&self.pool).await.is_ok() {
                return true;
            }
        }
        false
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// sqlx's SQLite connection leaves checkpoints to the checkpointer, as the hot writer does.
    #[tokio::test]
    async fn sqlx_commits_do_not_checkpoint() {
        let dir = std::env::temp_dir().join(format!("latchkey-autocheckpoint-{}", crate::crypto::random_id()));
        let settings =
            crate::config::Settings { data_dir: dir.join("data"), keys_dir: dir.join("keys"), ..Default::default() };
        let store = super::Store::connect(&settings, crate::clock::Clock::system()).await.unwrap();
        let pages: (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint").fetch_one(&store.pool).await.unwrap();
        assert_eq!(pages.0, 0);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
