//! The SQLite backend: one file (WAL, `synchronous=FULL`) under the data directory. The schema lives in
//! `migrations/`, applied in order at start; an existing database is upgraded in place, never rebuilt.
//!
//! One writer connection (writes take turns, in commit order) and a pool of read-only connections: with WAL,
//! readers see the last commit and never wait for a writer. Every call runs on the blocking pool and inside
//! one transaction, committed before the caller answers.
//!
//! Nothing outside `store/` sees this module's types: the store's named operations (`store/<area>.rs`) run
//! the shared statements of `store/sql/` on its connections, through `Sql`.

pub mod audit;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::StoreError;
use super::sql::{self, Backend, Row, Sql, SqlError, Value};

/// The numbered schema files, in order. Add a file, never edit an applied one.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_embedding_models.sql"),
    include_str!("../../../migrations/0003_cam.sql"),
    include_str!("../../../migrations/0004_cam_sequences.sql"),
    include_str!("../../../migrations/0005_change_log.sql"),
    include_str!("../../../migrations/0006_group_face_count.sql"),
    include_str!("../../../migrations/0007_leases_and_files.sql"),
];

pub const DB_FILE: &str = "iai.sqlite3";

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}

#[derive(Clone)]
pub struct Db {
    pub(super) conn: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Reads at once (each on its own connection); beyond it reads wait their turn.
    reading: Arc<crate::admission::Gate>,
    path: PathBuf,
}

/// Prepared statements kept per connection (the shared statements are prepared once each).
const STATEMENT_CACHE: usize = 256;
/// Idle read connections kept open.
const IDLE_READERS: usize = 8;
/// Read connections open at once at most.
const MAX_READERS: usize = 32;

impl Db {
    /// Open (creating if needed) the database in `data_dir` and bring its schema up to date.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        super::private_dir(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let path = data_dir.join(DB_FILE);
        super::private_database(&path)
            .with_context(|| format!("cannot create the database {}", path.display()))?;
        let mut conn = Connection::open(&path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a write is on disk before it is answered, even if the machine loses power.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
        migrations
            .to_latest(&mut conn)
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(Vec::new())),
            reading: crate::admission::Gate::calls("read", MAX_READERS),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in a transaction on the blocking pool; the transaction commits when `f` succeeds and is
    /// rolled back otherwise. Then run `after` on the result while the write lock is still held, so that
    /// what `after` updates (whatever follows the change log) changes in the same order as the database.
    pub async fn write_then<T, E, F, A>(&self, f: F, after: A) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
    {
        let conn = self.conn.clone();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = conn.lock();
            let tx = conn.transaction().map_err(StoreError::from)?;
            let out = f(&*tx)?;
            tx.commit().map_err(StoreError::from)?;
            after(&out);
            Ok(out)
        });
        task.await.map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// `write_then` with nothing after.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        self.write_then(f, |_| {}).await
    }

    /// Run a read-only `f` on the blocking pool, on a read connection, in one read transaction (every
    /// statement of `f` sees the same commit, the last one before it started).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        let ticket = self
            .reading
            .enter()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _ticket = ticket;
            let _entered = span.enter();
            let pooled = readers.lock().pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let out = match conn.unchecked_transaction() {
                Ok(snapshot) => f(&*snapshot),
                Err(e) => Err(StoreError::from(e).into()),
            };
            let mut idle = readers.lock();
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            out
        });
        task.await.map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Run `f` with the writer connection while no write can happen (a consistent view of both the
    /// database and whatever follows its commits, such as the search index).
    pub async fn exclusive<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> T + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&*conn.lock()))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))
    }

    /// The last change-log number committed.
    pub fn last_change(&self) -> Result<u64, StoreError> {
        sql::changes::last(&*self.conn.lock())
    }

    /// Open an existing database read-only (operator tools beside a running server).
    pub fn open_read_only(data_dir: &Path) -> anyhow::Result<Connection> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            anyhow::bail!("no database at {}", path.display());
        }
        open_reader(&path).with_context(|| format!("cannot open {}", path.display()))
    }
}

/// SQLite's own checks of the file: page structure and foreign keys.
pub fn integrity_problems(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if lines != ["ok"] {
        problems.extend(lines);
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let broken: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "a row of {} points at a missing {} row",
                r.get::<_, String>(0)?,
                r.get::<_, String>(2)?
            ))
        })?
        .collect::<Result<_, _>>()?;
    problems.extend(broken);
    Ok(problems)
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => SqlError::NoRows,
            e => SqlError::Db(Box::new(e)),
        }
    }
}

fn value(v: rusqlite::types::ValueRef<'_>) -> Result<Value, SqlError> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => {
            Value::Text(String::from_utf8(t.to_vec()).map_err(|e| SqlError::Db(Box::new(e)))?)
        }
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

/// The shared statements on a SQLite connection (a transaction's, through `Deref`: `&*tx`).
impl Sql for Connection {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn run(&self, sql: &str, args: &[Value]) -> sql::Result<u64> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
    }

    fn each_row(
        &self,
        sql: &str,
        args: &[Value],
        each: &mut dyn FnMut(&Row) -> sql::Result<()>,
    ) -> sql::Result<()> {
        let mut stmt = self.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            let values = (0..columns)
                .map(|i| value(row.get_ref(i)?))
                .collect::<sql::Result<Vec<_>>>()?;
            each(&Row::new(values))?;
        }
        Ok(())
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sql::groups;
    use rusqlite::Connection;

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let conn = store.sqlite().conn.lock();
            conn.execute(
                "INSERT INTO groups (group_id, name, face_model_version, created_ms, updated_ms) VALUES ('g', 'n', '3.0', 1, 1)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let conn = store.sqlite().conn.lock();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM groups", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// A data directory from before migration 0002: its embeddings are labelled with the networks that made
    /// them (3.0 was dlib's, 2.0 MobileFace-256), each group serves them, and at start the groups are set
    /// moving to their version's current network.
    #[tokio::test]
    async fn a_schema_1_database_keeps_its_embeddings_and_is_set_to_move() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            Migrations::new(vec![M::up(MIGRATIONS[0])])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO groups (group_id, name, face_model_version, created_ms, updated_ms)
                     VALUES ('g3', 'g3', '3.0', 1, 1), ('g2', 'g2', '2.0', 1, 1);
                 INSERT INTO persons (person_id, name, created_ms, updated_ms) VALUES ('p', 'p', 1, 1);
                 INSERT INTO group_members (group_id, person_id, joined_ms) VALUES ('g3', 'p', 1), ('g2', 'p', 1);
                 INSERT INTO faces (face_id, person_id, rect_x, rect_y, rect_width, rect_height, crop_png,
                                    landmarks, created_ms) VALUES ('1', 'p', 0, 0, 9, 9, x'00', '[]', 1);
                 INSERT INTO face_embeddings (face_id, face_model_version, embedding)
                     VALUES ('1', '3.0', x'0000803f'), ('1', '2.0', x'00000040');",
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        {
            let conn = store.sqlite().conn.lock();
            let vectors: Vec<(String, Vec<u8>)> = conn
                .prepare("SELECT model, embedding FROM face_vectors ORDER BY model")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                vectors,
                vec![
                    (
                        "faceapi_recognition_128.onnx".into(),
                        vec![0, 0, 0x80, 0x3f]
                    ),
                    ("mobileface_recognition.onnx".into(), vec![0, 0, 0, 0x40]),
                ]
            );
            let g3 = groups::get(&*conn, "g3").unwrap();
            assert_eq!(g3.serving_model, "faceapi_recognition_128.onnx");
            assert_eq!(
                groups::get(&*conn, "g2").unwrap().serving_model,
                "mobileface_recognition.onnx"
            );
        }
        let mut retired = crate::jobs::plan_network_changes(&store).await.unwrap();
        retired.sort();
        assert_eq!(
            retired,
            [
                "faceapi_recognition_128.onnx",
                "mobileface_recognition.onnx"
            ]
        );
        let conn = store.sqlite().conn.lock();
        let target = |id: &str| groups::get(&*conn, id).unwrap().target.unwrap();
        assert_eq!(target("g3").model, "mobilefacenet_192.onnx");
        assert_eq!(target("g2").model, "faceapi_recognition_128.onnx");
        assert!(target("g2").job.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn the_data_directory_and_database_are_private_and_loose_modes_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/data");
        {
            let store = Store::open(&dir).unwrap();
            // A write, so that the -wal and -shm exist.
            store
                .sqlite()
                .conn
                .lock()
                .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
            assert_eq!(mode(&dir.join(format!("{DB_FILE}-wal"))), 0o600);
            assert_eq!(mode(&dir.join(format!("{DB_FILE}-shm"))), 0o600);
        }
        let loose = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        loose(&dir, 0o755);
        loose(&dir.join(DB_FILE), 0o644);
        let store = Store::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
        let n: i64 = store
            .sqlite()
            .conn
            .lock()
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "tightening leaves the content alone");
    }

    #[test]
    fn migrations_are_valid() {
        let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
        migrations.validate().unwrap();
    }
}
