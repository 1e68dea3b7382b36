//! The database facade: SQLite (embedded, the default) or PostgreSQL (several instances sharing
//! one queue), chosen by the URL scheme. Only this module knows SQL.
//!
//! Both backends run the same statements where the dialects agree (`$N` bind parameters work on
//! both); where they differ (claiming) each has its own text. Every write on SQLite runs in a
//! `BEGIN IMMEDIATE` transaction: a deferred transaction that reads and then writes bypasses
//! `busy_timeout` and fails with "database is locked" (THREATS fact 6). Writers of one process
//! also take turns on an async lock first (`WriterTurn`): SQLite's busy handler polls with
//! sleeps of up to 25 ms and more, so two writers of ours meeting at the lock would cost the
//! second one a sleep instead of the microseconds the first needs to finish; the busy handler
//! stays for other processes (the CLI) on the same file.

pub mod backup_leases;
pub mod backup_runs;
pub mod breakers;
pub mod dump;
pub mod housekeeping;
pub mod imports;
pub mod items;
pub mod jobs;
pub mod outcome;
pub mod people;
pub mod quota;
pub mod record;
pub mod recovery;
pub mod removal;
pub mod renditions;
pub mod search;
pub mod sessions;
pub mod storage_report;
pub mod telegram;
pub mod tokens;
pub mod twins;
pub mod usage_history;
pub mod user_fields;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};
use tokio::sync::OwnedMutexGuard;

use crate::settings::DatabaseSettings;

/// A pool on one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool, WriterTurn),
    Postgres(PgPool),
}

/// The order in which this process's SQLite writers begin: first come, first served, woken as
/// soon as the writer before them commits. Waiting longer than `busy_timeout` fails like
/// SQLite's own lock would.
#[derive(Clone, Debug)]
pub struct WriterTurn {
    lock: Arc<tokio::sync::Mutex<()>>,
    patience: Duration,
}

impl WriterTurn {
    fn new(patience: Duration) -> Self {
        Self {
            lock: Arc::new(tokio::sync::Mutex::new(())),
            patience,
        }
    }

    async fn wait(&self) -> Result<OwnedMutexGuard<()>, DbError> {
        tokio::time::timeout(self.patience, Arc::clone(&self.lock).lock_owned())
            .await
            .map_err(|_| DbError::Locked(self.patience))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A write transaction on either backend.
pub enum Tx {
    /// The transaction, and this process's writer turn, held until it ends.
    Sqlite(Transaction<'static, Sqlite>, OwnedMutexGuard<()>),
    Postgres(Transaction<'static, Postgres>),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database holds an invalid value: {0}")]
    Corrupt(String),
    #[error("the database stayed locked by other writers for {0:?}")]
    Locked(Duration),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
}

/// Runs `$body` with `$pool` bound to the concrete pool. The body is expanded once per
/// backend, so it may use any sqlx API generic over the database.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool, _) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx, _) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

/// How much of the SQLite file is read through a memory map (address space, not memory).
const SQLITE_MMAP_BYTES: u64 = 1 << 30;
/// Each SQLite connection's own page cache, in KiB when negative (SQLite's convention).
const SQLITE_CACHE_KIB: i64 = -512;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Opens a pool. SQLite connections get WAL, `busy_timeout`, foreign keys and full
    /// synchronous commits on their connect options, so every pooled connection has them.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let url = settings.url.expose();
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_millis(settings.busy_timeout_ms))
                .foreign_keys(true)
                // An acknowledged submission must survive a power cut, not just a crash.
                .synchronous(SqliteSynchronous::Full)
                // Pages are read through a memory map of the file (shared with the kernel's
                // page cache) instead of being copied into each connection's own cache, which
                // is kept small: the default 2 MiB per connection filled up as the database
                // grew, and private memory grew with it (bench/soak).
                .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
                .pragma("cache_size", SQLITE_CACHE_KIB.to_string());
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|source| DbError::Directory {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.get())
                .acquire_timeout(Duration::from_secs(30))
                // A ping before each use is a round trip to the connection's thread for a
                // file that cannot go away like a server: a broken connection still fails
                // its statement, and the pool then replaces it.
                .test_before_acquire(false)
                // Statements stay prepared between runs (see the function's comment).
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        match crate::sys::sqlite_stable_plans(handle.as_raw_handle(), Some(true)) {
                            Ok(true) => Ok(()),
                            outcome => Err(sqlx::Error::Configuration(
                                format!("cannot make SQLite's plans stable: {outcome:?}").into(),
                            )),
                        }
                    })
                })
                .connect_with(options)
                .await?;
            let turn = WriterTurn::new(Duration::from_millis(settings.busy_timeout_ms));
            Ok(Self::Sqlite(pool, turn))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.get())
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        }
    }

    /// Applies the backend's pending migrations (embedded in the binary).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(pool, _) => SQLITE_MIGRATOR.run(pool).await?,
            Self::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Applies the migrations up to and including `version` only (a restore loads a
    /// snapshot into the schema it was written with, then migrates the rest).
    pub async fn migrate_to(&self, version: i64) -> Result<(), DbError> {
        match self {
            Self::Sqlite(pool, _) => SQLITE_MIGRATOR.run_to(version, pool).await?,
            Self::Postgres(pool) => POSTGRES_MIGRATOR.run_to(version, pool).await?,
        }
        Ok(())
    }

    /// The newest schema version this binary knows (its last migration).
    pub fn latest_schema_version(&self) -> i64 {
        let migrator = match self {
            Self::Sqlite(..) => &SQLITE_MIGRATOR,
            Self::Postgres(_) => &POSTGRES_MIGRATOR,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The schema version the database is at (0 before any migration).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        if !dump::tables_with_migrations(self).await? {
            return Ok(0);
        }
        let version: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await)?;
        Ok(version)
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(..) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// A trivial round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// SQLite's own consistency check (`PRAGMA integrity_check`); always true on PostgreSQL.
    pub async fn integrity_ok(&self) -> Result<bool, DbError> {
        match self {
            Self::Sqlite(pool, _) => {
                let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_one(pool)
                    .await?;
                Ok(verdict == "ok")
            }
            Self::Postgres(_) => Ok(true),
        }
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite, a plain `BEGIN` on PostgreSQL.
    pub async fn begin_write(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Self::Sqlite(pool, turn) => {
                let turn = turn.wait().await?;
                Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx, turn) => {
                tx.commit().await?;
                drop(turn);
            }
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// Converts a stored integer that must fit the domain type.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::Corrupt(format!("{what} is negative: {value}")))
}

/// Converts a count or size for binding; values beyond i64 cannot occur for files we accept.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::Db;
    use crate::settings::DatabaseSettings;
    use crate::settings::Secret;

    #[tokio::test]
    async fn every_sqlite_connection_plans_statements_once() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: Secret::new(format!("sqlite://{}", dir.path().join("t.db").display())),
            max_connections: NonZeroU32::new(3).unwrap(),
            busy_timeout_ms: 1000,
        };
        let Db::Sqlite(pool, _) = Db::connect(&settings).await.unwrap() else {
            unreachable!("a sqlite URL opens SQLite");
        };
        // Held at once, so the pool has to open every one of its connections.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            let mut handle = conn.lock_handle().await.unwrap();
            let stable = crate::sys::sqlite_stable_plans(handle.as_raw_handle(), None);
            assert_eq!(stable, Ok(true));
        }
    }
}
