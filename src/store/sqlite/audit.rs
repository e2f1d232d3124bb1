//! The audit trail's SQL: its own SQLite file `audit.sqlite3` beside the database (WAL, 0600), so that its
//! writes never wait for the store's writer nor it for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Row, params, params_from_iter, types::Value};

use crate::store::StoreError;
use crate::store::audit::records::{
    BUCKET_MS, Candidate, Histogram, LogFilter, Record, SEARCH_ACTIONS, StatDelta, StatRow,
};

pub const AUDIT_FILE: &str = "audit.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id          INTEGER PRIMARY KEY,
    time_ms     INTEGER NOT NULL,
    request_id  TEXT NOT NULL,
    principal   TEXT NOT NULL,
    secret_id   TEXT,
    action      TEXT,
    interface_group TEXT,
    -- JSON array of the GroupIds the call named
    groups      TEXT NOT NULL DEFAULT '[]',
    client      TEXT,
    code        TEXT NOT NULL,
    latency_us  INTEGER NOT NULL,
    face_num    INTEGER,
    -- JSON array of {PersonId, FaceId, Score}, searches and verifications only
    candidates  TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (time_ms);
CREATE TABLE IF NOT EXISTS stats (
    bucket_ms   INTEGER NOT NULL,
    action      TEXT NOT NULL,
    interface_group TEXT NOT NULL,
    calls       INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    -- latency histogram (store::audit::Histogram), little-endian u32 counts
    latency     BLOB NOT NULL,
    PRIMARY KEY (bucket_ms, action)
);
";

const COLUMNS: &str = "time_ms, request_id, principal, secret_id, action, interface_group, groups, client, \
                       code, latency_us, face_num, candidates";

pub struct AuditDb {
    conn: Connection,
    path: PathBuf,
}

impl AuditDb {
    /// The writer's connection, the file and schema created if missing.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(AUDIT_FILE);
        // 0600 (what callers sent, with their SecretIds), tightened when found looser.
        crate::store::private_database(&path)
            .with_context(|| format!("cannot create the audit trail {}", path.display()))?;
        let conn = Connection::open(&path)
            .with_context(|| format!("cannot open the audit trail {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The trail is an operator's record, not acknowledged data: NORMAL keeps it consistent through a
        // crash (WAL) and spares a sync per batch.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot create the audit trail {}", path.display()))?;
        Ok(Self { conn, path })
    }

    /// A read-only connection; with WAL it never blocks the writer.
    pub fn open_reader(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(AUDIT_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Self { conn, path })
    }

    /// A read-only connection on a trail that exists.
    pub fn open_existing(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(AUDIT_FILE);
        if !path.exists() {
            anyhow::bail!(
                "no audit trail at {} (is the data directory right?)",
                path.display()
            );
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One transaction: the calls inserted, each delta merged into its bucket's row.
    pub fn record_batch(
        &mut self,
        calls: &[Record],
        stats: &[StatDelta],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO calls ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ))?;
            for r in calls {
                insert.execute(params![
                    r.time_ms,
                    r.request_id,
                    r.principal,
                    r.secret_id,
                    r.action,
                    r.interface_group,
                    serde_json::to_string(&r.groups).unwrap_or_else(|_| "[]".into()),
                    r.client,
                    r.code,
                    r.latency_us as i64,
                    r.face_num.map(|n| n as i64),
                    r.candidates
                        .as_ref()
                        .and_then(|c| serde_json::to_string(c).ok()),
                ])?;
            }
            let mut read = tx.prepare_cached(
                "SELECT calls, errors, latency FROM stats WHERE bucket_ms = ?1 AND action = ?2",
            )?;
            let mut upsert = tx.prepare_cached(
                "INSERT OR REPLACE INTO stats (bucket_ms, action, interface_group, calls, errors, latency)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for delta in stats {
                let (mut calls, mut errors, mut latency) =
                    (delta.calls, delta.errors, delta.latency.clone());
                let before: Option<(i64, i64, Vec<u8>)> = read
                    .query_row(params![delta.bucket_ms, delta.action], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .ok();
                if let Some((c, e, h)) = before {
                    calls += c as u64;
                    errors += e as u64;
                    latency.merge(&Histogram::from_bytes(&h));
                }
                upsert.execute(params![
                    delta.bucket_ms,
                    delta.action,
                    delta.interface_group,
                    calls as i64,
                    errors as i64,
                    latency.to_bytes()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let calls = self
            .conn
            .execute("DELETE FROM calls WHERE time_ms < ?1", [cutoff_ms])?;
        let stats = self.conn.execute(
            "DELETE FROM stats WHERE bucket_ms + ?2 <= ?1",
            [cutoff_ms, BUCKET_MS],
        )?;
        Ok((calls + stats) as u64)
    }

    pub fn stats(&self, start_ms: i64, end_ms: i64) -> Result<Vec<StatRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT bucket_ms, action, interface_group, calls, errors, latency FROM stats
             WHERE bucket_ms >= ?1 AND bucket_ms < ?2 ORDER BY bucket_ms, action",
        )?;
        let rows = stmt.query_map([start_ms, end_ms], |row| {
            let latency = Histogram::from_bytes(&row.get::<_, Vec<u8>>(5)?);
            Ok(StatRow {
                bucket_ms: row.get(0)?,
                action: row.get(1)?,
                interface_group: row.get(2)?,
                calls: row.get::<_, i64>(3)? as u64,
                errors: row.get::<_, i64>(4)? as u64,
                p50_ms: latency.quantile_ms(0.5),
                p99_ms: latency.quantile_ms(0.99),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn search_log(&self, filter: &LogFilter) -> Result<(Vec<Record>, u64), StoreError> {
        // The action names are the server's own constants, safe to inline.
        let mut clauses = vec![format!(
            "action IN ({})",
            SEARCH_ACTIONS
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        let mut values: Vec<Value> = Vec::new();
        if let Some(start) = filter.start_ms {
            clauses.push("time_ms >= ?".into());
            values.push(Value::Integer(start));
        }
        if let Some(end) = filter.end_ms {
            clauses.push("time_ms < ?".into());
            values.push(Value::Integer(end));
        }
        if let Some(group) = &filter.group_id {
            clauses.push(
                "EXISTS (SELECT 1 FROM json_each(calls.groups) WHERE json_each.value = ?)".into(),
            );
            values.push(Value::Text(group.clone()));
        }
        if let Some(id) = &filter.secret_id {
            clauses.push("secret_id = ?".into());
            values.push(Value::Text(id.clone()));
        }
        if let Some(principal) = &filter.principal {
            clauses.push("principal = ?".into());
            values.push(Value::Text(principal.clone()));
        }
        if let Some(code) = &filter.code {
            clauses.push("code = ?".into());
            values.push(Value::Text(code.clone()));
        }
        let filter_sql = clauses.join(" AND ");
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM calls WHERE {filter_sql}"),
            params_from_iter(values.iter()),
            |r| r.get(0),
        )?;
        values.push(Value::Integer(filter.limit as i64));
        values.push(Value::Integer(filter.offset as i64));
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM calls WHERE {filter_sql} ORDER BY time_ms DESC, id DESC LIMIT ? OFFSET ?"
        ))?;
        let rows = stmt.query_map(params_from_iter(values.iter()), record)?;
        Ok((rows.collect::<Result<_, _>>()?, total as u64))
    }

    /// Rows of `[since_ms, until_ms)` in recording order, one at a time.
    pub fn export<E: From<StoreError>>(
        &self,
        since_ms: i64,
        until_ms: i64,
        mut each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM calls WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY time_ms, id"
            ))
            .map_err(StoreError::from)?;
        let rows = stmt
            .query_map([since_ms, until_ms], record)
            .map_err(StoreError::from)?;
        let mut n = 0;
        for row in rows {
            each(row.map_err(StoreError::from)?)?;
            n += 1;
        }
        Ok(n)
    }
}

fn record(row: &Row) -> rusqlite::Result<Record> {
    let groups: String = row.get(6)?;
    let candidates: Option<String> = row.get(11)?;
    Ok(Record {
        time_ms: row.get(0)?,
        request_id: row.get(1)?,
        principal: row.get(2)?,
        secret_id: row.get(3)?,
        action: row.get(4)?,
        interface_group: row.get(5)?,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        client: row.get(7)?,
        code: row.get(8)?,
        latency_us: row.get::<_, i64>(9)? as u64,
        face_num: row.get::<_, Option<i64>>(10)?.map(|n| n as u64),
        candidates: candidates.and_then(|c| serde_json::from_str::<Vec<Candidate>>(&c).ok()),
    })
}
