//! Storage: groups, persons, faces, embeddings, CAM, jobs and the change log, behind one interface of named
//! operations (`store/<area>.rs`: create a person with its face, delete a person from a group, claim a job,
//! ...). Their statements are written once (`sql/`) and run on either backend: `sqlite/` (one file, the
//! default) or `postgres/` (several replicas on one database). Nothing of either is seen outside `store/`.
//!
//! Every write runs in one transaction, committed before the caller answers. A write that changes what a
//! server keeps in memory (a group's index, the CAM directory) appends its `Change`s to the change log in
//! the same transaction; the store then hands them, numbered in commit order, to every `Follower`
//! (`changes.rs`) before the write returns, so the writer reads its own write.
//!
//! The database holds sub-users' secret keys: the data directory is created 0700 and the database (with its
//! `-wal` and `-shm`, which SQLite creates with the database's mode) 0600; looser modes found at start are
//! tightened (`private_dir`, `private_file`, `private_database`).

pub mod audit;
pub mod cam;
pub mod changes;
pub mod embeddings;
pub mod files;
pub mod groups;
pub mod jobs;
pub mod listing;
pub mod persons;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

pub use changes::{Change, FaceVectors, Follower};
pub use sqlite::DB_FILE;

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("group not found")]
    GroupNotFound,
    #[error("group id already exists")]
    GroupIdTaken,
    #[error("group name already exists")]
    GroupNameTaken,
    #[error("too many groups")]
    GroupLimit,
    #[error("person not found")]
    PersonNotFound,
    #[error("person id already exists")]
    PersonIdTaken,
    /// A rule of persons and faces the writing transaction refused on what it read.
    #[error("{0}")]
    Person(persons::Refusal),
    /// A rule of groups the writing transaction refused on what it read.
    #[error("{0}")]
    Group(groups::Refusal),
    /// A rule of CAM (users, keys, policies) the writing transaction refused on what it read.
    #[error("{0}")]
    Cam(cam::Refusal),
    /// A rule of jobs the writing transaction refused on what it read.
    #[error("{0}")]
    Job(jobs::Refusal),
    #[error("database: {0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
    #[error("store task failed: {0}")]
    Task(String),
    /// This server cannot confirm that what it holds in memory is current (its database or change log
    /// cannot be reached, or it applies the log too slowly).
    #[error("{0}")]
    Stale(String),
}

/// The backend a store runs on: where its transactions run.
#[derive(Clone)]
enum Db {
    Sqlite(sqlite::Db),
    Postgres(Box<postgres::Db>),
}

impl Db {
    /// Run a read-only `f` on one consistent snapshot of the database.
    async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn sql::Sql) -> Result<T, E> + Send + 'static,
    {
        match self {
            Db::Sqlite(db) => db.read(f).await,
            Db::Postgres(db) => db.read(f).await,
        }
    }

    /// Run a write `f` in one transaction, one write at a time (across every replica).
    async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn sql::Sql) -> Result<T, E> + Send + 'static,
    {
        match self {
            Db::Sqlite(db) => db.write(f).await,
            Db::Postgres(db) => db.write(f).await,
        }
    }
}

/// The store: a backend and the followers of its change log. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    log: Arc<changes::Log>,
}

/// How long a replica's writer waits for its own follower to apply its write (read your writes).
const OWN_WRITE_VISIBLE: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Open (creating if needed) the database in `data_dir` and bring its schema up to date.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let db = sqlite::Db::open(data_dir)?;
        let last = db.last_change()?;
        Ok(Self {
            db: Db::Sqlite(db),
            log: Arc::new(changes::Log::in_process(last)),
        })
    }

    /// Connect to the PostgreSQL database at `url`, bring its schema up to date, and follow its change log
    /// from its head as `replica` (the followers then join from their own snapshots).
    pub async fn connect(url: &str, replica: postgres::follow::Replica) -> anyhow::Result<Self> {
        let db = postgres::Db::new(url)?;
        db.migrate().await?;
        let last = db.read(|conn| sql::changes::last(conn)).await?;
        let log = Arc::new(changes::Log::shared(last));
        tokio::spawn(postgres::follow::run(db.clone(), log.clone(), replica));
        Ok(Self {
            db: Db::Postgres(Box::new(db)),
            log,
        })
    }

    /// This server is stopping: with a shared database, it leaves the live replicas (tools stop
    /// looking for it, and the log is no longer kept for it).
    pub async fn leave(&self, replica_id: &str) {
        self.log.leave();
        if let Db::Postgres(db) = &self.db
            && let Err(e) = postgres::follow::leave(db, replica_id).await
        {
            tracing::warn!(error = %e, "cannot remove this replica from the live replicas");
        }
    }

    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &sqlite::Db {
        match &self.db {
            Db::Sqlite(db) => db,
            Db::Postgres(_) => panic!("a SQLite store was expected"),
        }
    }

    /// How many replicas share the database now (seen within the last 5 s, this one included; 1 with
    /// SQLite): each enforces its share of the QPS limits.
    pub fn sharing_replicas(&self) -> u32 {
        self.log.live_replicas()
    }

    /// Whether other servers may share this store's database (PostgreSQL): then leases decide which one runs
    /// background work, and files every replica serves are kept in the database.
    pub fn is_shared(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Where the audit trail lives: its own file in `data_dir` with SQLite, the shared database with
    /// PostgreSQL (this replica's calls recorded as `replica_id`'s).
    pub fn audit_location(
        &self,
        data_dir: &Path,
        replica_id: &str,
    ) -> Result<audit::Location, StoreError> {
        Ok(match &self.db {
            Db::Sqlite(_) => audit::Location::File(data_dir.to_owned()),
            Db::Postgres(db) => audit::Location::Database(Box::new(postgres::audit::PgAudit::new(
                (**db).clone(),
                replica_id.to_owned(),
            )?)),
        })
    }

    /// The database file (an embedded backend's), for sizes and operators' tools.
    pub fn database_file(&self) -> Option<&Path> {
        match &self.db {
            Db::Sqlite(db) => Some(db.path()),
            Db::Postgres(_) => None,
        }
    }

    /// Where the data lives, for operators' messages.
    pub fn location(&self) -> String {
        match &self.db {
            Db::Sqlite(db) => db.path().display().to_string(),
            Db::Postgres(db) => db.describe(),
        }
    }

    /// Whether the database answers a query (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|conn| Ok(conn.query_row("SELECT 1", [0; 0], |_| Ok(()))?))
            .await
    }

    /// Whether what this server holds in memory is known to be within `max` of the database: `Stale`
    /// otherwise (searches refuse to answer from it, `/ready` reports 503). Always so with SQLite, whose
    /// log is applied before each write returns.
    pub fn ensure_current(&self, max: std::time::Duration) -> Result<(), StoreError> {
        match self.log.staleness() {
            Some(behind) if behind <= max => Ok(()),
            Some(behind) => Err(StoreError::Stale(format!(
                "the change log was last confirmed current {} ms ago (at most {} ms allowed)",
                behind.as_millis(),
                max.as_millis()
            ))),
            None => Err(StoreError::Stale(
                "the change log cannot be read (the database is unreachable)".into(),
            )),
        }
    }

    /// The time since this server last confirmed it applied the change log to its head (`None`: it
    /// cannot confirm, the database being unreachable).
    pub fn log_lag(&self) -> Option<std::time::Duration> {
        self.log.staleness()
    }

    /// The last change-log position every follower has applied.
    pub fn applied(&self) -> u64 {
        self.log.applied()
    }

    /// Start a follower at the state `load` reads, then hand it every later change in commit order. `load`
    /// reads one consistent snapshot while writes go on (a large index loads while CAM calls are served);
    /// then the follower gets what the log gained since and joins the others. When the log no longer holds
    /// that stretch (trimmed during a very long load), `load` runs again.
    pub async fn follow<T, L>(&self, load: L) -> Result<Arc<T>, StoreError>
    where
        T: Follower + 'static,
        L: Fn(&dyn changes::StartView) -> Result<T, StoreError> + Send + Sync + 'static,
    {
        let load = Arc::new(load);
        match &self.db {
            Db::Sqlite(db) => Self::follow_in_process(db, &self.log, load).await,
            Db::Postgres(db) => loop {
                let (follower, from) = {
                    let load = load.clone();
                    db.read_start(move |view| {
                        let from = view.last_change()?;
                        let follower = load(view)?;
                        Ok::<_, StoreError>((Arc::new(follower), from))
                    })
                    .await?
                };
                // What the log's follower task applied meanwhile, this follower gets here; what the
                // snapshot held already, it skips when the task applies it.
                loop {
                    let missed = db
                        .read(move |conn| {
                            sql::changes::since(conn, from)?
                                .map(|missed| {
                                    changes::hydrate_all(missed, &sql::changes::View(conn))
                                })
                                .transpose()
                        })
                        .await?;
                    let Some(missed) = missed else {
                        tracing::warn!(
                            from,
                            "the change log was trimmed during the load: loading again"
                        );
                        break;
                    };
                    if self.log.join(follower.clone(), from, &missed) {
                        return Ok(follower);
                    }
                }
            },
        }
    }

    /// `follow` for a log applied in process: the missed stretch is applied while no write can commit.
    async fn follow_in_process<T, L>(
        db: &sqlite::Db,
        log: &Arc<changes::Log>,
        load: Arc<L>,
    ) -> Result<Arc<T>, StoreError>
    where
        T: Follower + 'static,
        L: Fn(&dyn changes::StartView) -> Result<T, StoreError> + Send + Sync + 'static,
    {
        let (follower, from) = {
            let load = load.clone();
            db.read(move |conn| {
                let from = sql::changes::last(conn)?;
                let follower = load(&sql::changes::View(conn))?;
                Ok::<_, StoreError>((Arc::new(follower), from))
            })
            .await?
        };
        let log = log.clone();
        db.exclusive(move |conn| {
            let view = sql::changes::View(conn);
            let follower = match sql::changes::since(conn, from)? {
                Some(missed) => {
                    for (seq, change) in changes::hydrate_all(missed, &view)? {
                        follower.apply(seq, &change);
                    }
                    follower
                }
                None => {
                    tracing::warn!(
                        from,
                        "the change log was trimmed during the load: loading again"
                    );
                    Arc::new(load(&view)?)
                }
            };
            log.add(follower.clone());
            Ok(follower)
        })
        .await?
    }

    /// Run a write `f` that returns what it changed: its changes are appended to the change log in the same
    /// transaction, and every follower applies them in order before this returns (SQLite: after the commit,
    /// still under the write lock; PostgreSQL: this replica's log follower, which this waits for).
    pub(crate) async fn write_logged<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn sql::Sql) -> Result<(T, Vec<Change>), E> + Send + 'static,
    {
        match &self.db {
            Db::Sqlite(db) => {
                let log = self.log.clone();
                let (out, _) = db
                    .write_then(
                        move |tx| {
                            let (out, changes) = f(tx)?;
                            let first = sql::changes::append(tx, &changes)?;
                            Ok::<_, E>((out, (first, changes)))
                        },
                        move |(_, (first, changes))| log.apply(*first, changes),
                    )
                    .await?;
                Ok(out)
            }
            Db::Postgres(db) => {
                let (out, last) = db
                    .write(move |tx| {
                        let (out, changes) = f(tx)?;
                        let first = sql::changes::append(tx, &changes)?;
                        Ok::<_, E>((out, first + changes.len() as u64 - 1))
                    })
                    .await?;
                self.log.wait_applied(last, OWN_WRITE_VISIBLE).await?;
                Ok(out)
            }
        }
    }

    /// Run `f` while no write can commit (on any replica) and after this server has applied every
    /// committed change: a consistent view of the database and of what follows it (the search index).
    async fn exclusive<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn sql::Sql) -> T + Send + 'static,
    {
        match &self.db {
            Db::Sqlite(db) => db.exclusive(f).await,
            Db::Postgres(db) => {
                let log = self.log.clone();
                let runtime = tokio::runtime::Handle::current();
                db.write(move |conn| {
                    let head = sql::changes::last(conn)?;
                    runtime.block_on(log.wait_applied(head, OWN_WRITE_VISIBLE))?;
                    Ok::<_, StoreError>(f(conn))
                })
                .await
            }
        }
    }
}

/// The database's own consistency checks, read beside a running server (operator tools): one line per
/// problem, none when sound.
pub fn database_problems(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    sqlite::integrity_problems(&sqlite::Db::open_read_only(data_dir)?)
}

/// Run `f` on one consistent read of the database beside a running server (operator tools).
pub fn read_beside<T>(
    data_dir: &Path,
    f: impl FnOnce(&dyn changes::StartView) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let conn = sqlite::Db::open_read_only(data_dir)?;
    // One read transaction: every query sees the same commit.
    let snapshot = conn.unchecked_transaction()?;
    f(&sql::changes::View(&*snapshot))
}

/// Run `f` on one consistent read of the shared PostgreSQL database at `url` (operator tools).
pub async fn read_shared<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&dyn changes::StartView) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    postgres::Db::new(url)?.read_start(f).await
}

/// The file `name` of the shared database at `url` (the link key, for operator tools).
pub async fn shared_file(url: &str, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let name = name.to_owned();
    Ok(postgres::Db::new(url)?
        .read(move |conn| sql::files::get(conn, &name))
        .await?)
}

/// (id, address) of the replicas of the shared database at `url` seen in the last minute.
pub async fn live_replicas(url: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(postgres::follow::live_replicas(&postgres::Db::new(url)?).await?)
}

/// Create `dir` (and its missing parents) readable by this user only (0700); an existing one with group or
/// other permissions is tightened to its owner's (a failure to is logged: the directory may belong to
/// someone else, as a mounted volume can).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    tighten(dir);
    Ok(())
}

/// Create `path` empty if missing, readable and writable by this user only (0600), or tighten an existing
/// one to its owner's permissions. Its content is left alone.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    tighten(path);
    Ok(())
}

/// `private_file` for a SQLite database, and tighten its `-wal`, `-shm` and `-journal` when they exist (a
/// database whose mode was looser left them as loose).
pub fn private_database(path: &Path) -> std::io::Result<()> {
    private_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        tighten(Path::new(&side));
    }
    Ok(())
}

/// Remove group and other permissions from `path` when it exists and has any.
fn tighten(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return;
        }
        let private = mode & 0o700;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                from = format!("{mode:o}"),
                to = format!("{private:o}"),
                "tightened the permissions of a data file (it holds secrets)"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                error = %e,
                "cannot tighten the permissions of a data file: other users may read it"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
