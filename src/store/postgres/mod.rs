//! The PostgreSQL backend, for several replicas on one database (`database_url = "postgres://..."`).
//!
//! - **Writes** take one transaction-scoped advisory lock (`WRITE_LOCK`) before their first statement, so
//!   writes commit one at a time across every replica: the checks a write makes on what it read (limits,
//!   ids, names) hold at its commit, as with SQLite's single writer, and the change-log numbers it appends
//!   follow commit order with no gaps.
//! - **The log** (`change_log`) notifies `iai_change_log` at commit. Each replica follows it on a
//!   connection of its own (`follow`): woken by NOTIFY, polling as a fallback, and catching up from the
//!   last number it applied after a disconnect. The replica that wrote answers once its own follower has
//!   applied the write (read your writes).
//! - **Migrations** are `migrations/postgres/NNNN_*.sql`, applied in order under an advisory lock by the
//!   first replica that finds them missing.
//!
//! Every wait is bounded: a pool checkout and a connection attempt give up after `CONNECT_TIMEOUT`, a
//! statement after `STATEMENT_TIMEOUT`, so a call that cannot reach the database gets an error, never hangs.

pub mod audit;
pub mod follow;
pub mod sql;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio_postgres::{IsolationLevel, NoTls};

use super::StoreError;
use super::sql::Sql;

/// The numbered schema files, in order. Add a file, never edit an applied one.
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    include_str!("../../../migrations/postgres/0001_schema.sql"),
)];

/// The advisory lock every write holds until it commits (and migrations while they run).
const WRITE_LOCK: i64 = 0x1a1_5e4e_0001;
const MIGRATION_LOCK: i64 = 0x1a1_5e4e_0002;

/// How long a call waits for a connection (from the pool, or a new one) before it fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement may run.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections in the pool at most.
const POOL_SIZE: usize = 16;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Db(Box::new(e))
    }
}

/// A pool of connections to one database, and how to open more (the follower's own connection).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Reads at once (each holds a pooled connection); beyond it reads wait their turn, as with SQLite.
    reading: std::sync::Arc<crate::admission::Gate>,
}

impl Db {
    /// A pool for `url`; no connection is made yet (`migrate` makes the first).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Db(Box::new(e)))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.options(format!(
            "-c statement_timeout={} -c lock_timeout={}",
            STATEMENT_TIMEOUT.as_millis(),
            STATEMENT_TIMEOUT.as_millis()
        ));
        config.application_name("iai-server");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Db(Box::new(e)))?;
        Ok(Self {
            pool,
            config,
            reading: crate::admission::Gate::calls("read", POOL_SIZE - 4),
        })
    }

    /// The database for operators' messages: host, port and name, never the password.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        format!(
            "postgres://{}:{}/{}",
            hosts.join(","),
            ports.join(","),
            self.config.get_dbname().unwrap_or("")
        )
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// A connection of its own, outside the pool (LISTEN), and the task that drives it.
    pub(super) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Bring the schema up to date: the files not yet recorded in `schema_migrations`, each in one
    /// transaction, under a lock so that replicas starting together apply each file once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .await?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM schema_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[version, &super::now_ms()],
            )
            .await?;
            tracing::info!(version, "applied a PostgreSQL migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Run `f` in one transaction of a pooled connection, on the blocking pool: `write` holds the write lock
/// (taken before its first statement), a read is one REPEATABLE READ snapshot. It commits when `f`
/// succeeds and rolls back otherwise.
async fn transaction<T, E, F>(db: &Db, write: bool, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&sql::Transaction) -> Result<T, E> + Send + 'static,
{
    let mut client = db.client().await?;
    let runtime = Handle::current();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let tx = runtime
            .block_on(
                client
                    .build_transaction()
                    .isolation_level(if write {
                        IsolationLevel::ReadCommitted
                    } else {
                        IsolationLevel::RepeatableRead
                    })
                    .read_only(!write)
                    .start(),
            )
            .map_err(StoreError::from)?;
        if write {
            runtime
                .block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]))
                .map_err(StoreError::from)?;
        }
        let out = f(&sql::Transaction {
            tx: &tx,
            runtime: runtime.clone(),
        })?;
        runtime.block_on(tx.commit()).map_err(StoreError::from)?;
        Ok(out)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?
}

impl Db {
    /// Run a read-only `f` on one consistent snapshot.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        self.snapshot(|tx| f(tx)).await
    }

    /// Run `f` on one consistent snapshot seen as a start view: the vectors stream in with binary COPY
    /// (a replica's start, `check-index`).
    pub async fn read_start<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn crate::store::changes::StartView) -> Result<T, E> + Send + 'static,
    {
        self.snapshot(|tx| f(&sql::StartSnapshot(tx))).await
    }

    /// A read transaction, once a reading ticket is free.
    async fn snapshot<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&sql::Transaction) -> Result<T, E> + Send + 'static,
    {
        let _ticket = self
            .reading
            .enter()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        transaction(self, false, f).await
    }

    /// Run a write `f` holding the write lock: writes of every replica commit one at a time.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        transaction(self, true, |tx| f(tx)).await
    }
}
