//! Storage: groups, persons, faces, embeddings, CAM, jobs and the change log, behind one interface of named
//! operations (`store/<area>.rs`: create a person with its face, delete a person from a group, claim a job,
//! ...). The backends live in their own modules (`sqlite/`; PostgreSQL next) and nothing of theirs is
//! seen outside `store/`.
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
pub mod groups;
pub mod jobs;
pub mod listing;
pub mod persons;
pub mod postgres;
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

/// The store: a backend and the followers of its change log. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sqlite::Db,
    log: Arc<changes::Log>,
}

impl Store {
    /// Open (creating if needed) the database in `data_dir` and bring its schema up to date.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let db = sqlite::Db::open(data_dir)?;
        let last = db.last_change()?;
        Ok(Self {
            db,
            log: Arc::new(changes::Log::in_process(last)),
        })
    }

    /// The database file (an embedded backend's), for sizes and operators' tools.
    pub fn database_file(&self) -> Option<&Path> {
        Some(self.db.path())
    }

    /// Where the data lives, for operators' messages.
    pub fn location(&self) -> String {
        self.db.path().display().to_string()
    }

    /// Whether the database answers a query (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
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

    /// The last change-log position every follower has applied.
    pub fn applied(&self) -> u64 {
        self.log.applied()
    }

    /// Start a follower at the state `load` reads, then hand it every later change in commit order. `load`
    /// reads one consistent snapshot while writes go on (a large index loads while CAM calls are served);
    /// then, while no write can commit, the follower gets what the log gained since and joins the others.
    /// When the log no longer holds that stretch (trimmed during a very long load), `load` runs again with
    /// writes held.
    pub async fn follow<T, L>(&self, load: L) -> Result<Arc<T>, StoreError>
    where
        T: Follower + 'static,
        L: Fn(&dyn changes::StartView) -> Result<T, StoreError> + Send + Sync + 'static,
    {
        let load = Arc::new(load);
        let (follower, from) = {
            let load = load.clone();
            self.db
                .read(move |conn| {
                    let snapshot = conn.unchecked_transaction()?;
                    let from = sqlite::changes::last(&snapshot)?;
                    let follower = load(&sqlite::changes::View(&snapshot))?;
                    Ok::<_, StoreError>((Arc::new(follower), from))
                })
                .await?
        };
        let log = self.log.clone();
        self.db
            .exclusive(move |conn| {
                let view = sqlite::changes::View(conn);
                let follower = match sqlite::changes::since(conn, from)? {
                    Some(missed) => {
                        for (seq, change) in missed {
                            follower.apply(seq, &changes::hydrate(change, &view)?);
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
    /// transaction, and after the commit, still under the write lock, applied by every follower in order.
    pub(crate) async fn write_logged<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction) -> Result<(T, Vec<Change>), E> + Send + 'static,
    {
        let log = self.log.clone();
        let (out, _) = self
            .db
            .write_then(
                move |tx| {
                    let (out, changes) = f(tx)?;
                    let first = sqlite::changes::append(tx, &changes)?;
                    Ok::<_, E>((out, (first, changes)))
                },
                move |(_, (first, changes))| log.apply(*first, changes),
            )
            .await?;
        Ok(out)
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
    f(&sqlite::changes::View(&snapshot))
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
