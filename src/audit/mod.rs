//! The audit trail: every request, refused ones included (time, RequestId, principal and SecretId, action,
//! interface group, groups touched, client address, outcome code, latency; for searches and verifications
//! also FaceNum and the top candidates), in its own SQLite file `audit.sqlite3` beside the store's.
//!
//! Requests hand their record to a bounded queue and go on; one thread writes the queue in batches (one
//! transaction per batch) and keeps 5-minute aggregates (calls, errors, a latency histogram) per action for
//! the console's overview. The store's writer never waits for it. When the queue is full (the disk cannot
//! keep up) records are dropped and counted (`iai_audit_dropped_total`), never waited for. Rows older
//! than the retention are deleted hourly.
//!
//! `query` answers the console (statistics, the search log); `export` writes JSON lines for
//! `iai-server audit export`.

pub mod export;
pub mod histogram;
pub mod query;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use histogram::Histogram;

pub const AUDIT_FILE: &str = "audit.sqlite3";
/// Records waiting for the writer at most (about 1 KB each), and their bytes at most: whatever the records
/// hold, the queue holds no more than this.
const QUEUE: usize = 65_536;
const QUEUE_BYTES: u64 = 32 * 1024 * 1024;
/// Records per transaction at most, and how long the writer lets a partial batch wait.
const BATCH: usize = 1024;
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// Statistics buckets are 5 minutes, as Tencent's console reports.
pub const BUCKET_MS: i64 = 300_000;
/// Candidates kept per search (best first).
pub const TOP_CANDIDATES: usize = 5;

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
    -- latency histogram (histogram.rs), little-endian u32 counts
    latency     BLOB NOT NULL,
    PRIMARY KEY (bucket_ms, action)
);
";

/// One call, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub time_ms: i64,
    pub request_id: String,
    /// `main`, a sub-user's uin, or empty for a call refused before it was authenticated.
    pub principal: String,
    pub secret_id: Option<String>,
    pub action: Option<String>,
    pub interface_group: Option<String>,
    pub groups: Vec<String>,
    pub client: Option<String>,
    /// `OK` or the error code.
    pub code: String,
    pub latency_us: u64,
    pub face_num: Option<u64>,
    pub candidates: Option<Vec<Candidate>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    #[serde(rename = "PersonId")]
    pub person_id: String,
    #[serde(rename = "FaceId", default, skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    #[serde(rename = "Score")]
    pub score: f64,
}

pub struct Trail {
    /// Each record with its size (`Record::bytes`), so the writer takes off what was added.
    queue: SyncSender<(Record, u64)>,
    /// Bytes of the records in the queue (added here, taken off by the writer).
    queued_bytes: Arc<AtomicU64>,
    path: PathBuf,
}

impl Record {
    /// About what the record holds in memory.
    fn bytes(&self) -> u64 {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        (std::mem::size_of::<Self>()
            + self.request_id.len()
            + self.principal.len()
            + text(&self.secret_id)
            + text(&self.action)
            + text(&self.interface_group)
            + self.groups.iter().map(|g| g.len() + 24).sum::<usize>()
            + text(&self.client)
            + self.code.len()
            + self.candidates.as_ref().map_or(0, |c| {
                c.iter()
                    .map(|c| 64 + c.person_id.len() + c.face_id.as_ref().map_or(0, String::len))
                    .sum()
            })) as u64
    }
}

impl Trail {
    /// Open (creating) the trail in `data_dir` and start its writer thread.
    pub fn open(data_dir: &Path, retention_days: u32) -> anyhow::Result<Arc<Self>> {
        let path = data_dir.join(AUDIT_FILE);
        let conn = open_connection(&path)?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot create the audit trail {}", path.display()))?;
        let (queue, records) = std::sync::mpsc::sync_channel(QUEUE);
        let retention = Duration::from_secs(u64::from(retention_days.max(1)) * 86_400);
        let queued_bytes = Arc::new(AtomicU64::new(0));
        let writer_bytes = queued_bytes.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(conn, records, retention, writer_bytes))
            .context("cannot start the audit writer")?;
        Ok(Arc::new(Self {
            queue,
            queued_bytes,
            path,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queue a record; never waits (a full queue drops it, counted).
    pub fn record(&self, record: Record) {
        let bytes = record.bytes();
        if self.queued_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            metrics::counter!("iai_audit_dropped_total").increment(1);
            return;
        }
        match self.queue.try_send((record, bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                metrics::counter!("iai_audit_dropped_total").increment(1)
            }
        }
    }

    /// A read-only connection for queries (run them off the async runtime).
    pub fn reader(&self) -> anyhow::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    }
}

fn known_action(name: &str) -> bool {
    crate::api::schema::find_action(name).is_some() || crate::cam::find_action(name).is_some()
}

/// FaceNum and the top candidates of a search or verification answer, for the search log; `(None, None)`
/// for other actions. `person_id` is a verification's PersonId.
pub fn outcome(
    action: &str,
    answer: &serde_json::Value,
    person_id: Option<&str>,
) -> (Option<u64>, Option<Vec<Candidate>>) {
    let candidate = |c: &serde_json::Value| {
        Some(Candidate {
            person_id: c.get("PersonId")?.as_str()?.to_owned(),
            face_id: c
                .get("FaceId")
                .and_then(|f| f.as_str())
                .filter(|f| !f.is_empty())
                .map(str::to_owned),
            score: c.get("Score")?.as_f64()?,
        })
    };
    // SearchPersons answers no FaceNum: one result per face searched.
    let face_num = answer.get("FaceNum").and_then(|n| n.as_u64()).or_else(|| {
        ["Results", "ResultsReturnsByGroup"].iter().find_map(|k| {
            answer
                .get(*k)
                .and_then(|r| r.as_array())
                .map(|r| r.len() as u64)
        })
    });
    let first = |results: &str| answer.get(results).and_then(|r| r.get(0)).cloned();
    let mut candidates: Vec<Candidate> = match action {
        "SearchFaces" | "SearchPersons" | "ConsoleSearchFaces" | "ConsoleSearchPersons" => {
            first("Results")
                .and_then(|r| r.get("Candidates").and_then(|c| c.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(candidate)
                .collect()
        }
        "SearchFacesReturnsByGroup" | "SearchPersonsReturnsByGroup" => {
            first("ResultsReturnsByGroup")
                .and_then(|r| r.get("GroupCandidates").and_then(|g| g.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|g| g.get("Candidates").and_then(|c| c.as_array()))
                .flatten()
                .filter_map(candidate)
                .collect()
        }
        "VerifyFace" | "VerifyPerson" => {
            let score = answer.get("Score").and_then(|s| s.as_f64());
            return (
                Some(1),
                score.zip(person_id).map(|(score, p)| {
                    vec![Candidate {
                        person_id: p.to_owned(),
                        face_id: None,
                        score,
                    }]
                }),
            );
        }
        _ => return (None, None),
    };
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(TOP_CANDIDATES);
    (face_num, Some(candidates))
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    // 0600 (what callers sent, with their SecretIds), tightened when found looser.
    crate::store::private_database(path)
        .with_context(|| format!("cannot create the audit trail {}", path.display()))?;
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open the audit trail {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // The trail is an operator's record, not acknowledged data: NORMAL keeps it consistent through a crash
    // (WAL) and spares a sync per batch.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn write_loop(
    mut conn: Connection,
    records: Receiver<(Record, u64)>,
    retention: Duration,
    queued_bytes: Arc<AtomicU64>,
) {
    let mut last_purge = Instant::now() - Duration::from_secs(3600);
    loop {
        let first = match records.recv_timeout(Duration::from_secs(60)) {
            Ok(sized) => sized,
            Err(RecvTimeoutError::Timeout) => {
                purge_if_due(&conn, retention, &mut last_purge);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let (first, mut bytes) = first;
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            match records.recv_timeout(left) {
                Ok((record, size)) => {
                    batch.push(record);
                    bytes += size;
                }
                Err(_) => break,
            }
        }
        queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        if let Err(e) = write_batch(&mut conn, &batch) {
            tracing::error!(error = %e, records = batch.len(), "cannot write to the audit trail");
            metrics::counter!("iai_audit_dropped_total").increment(batch.len() as u64);
        }
        purge_if_due(&conn, retention, &mut last_purge);
    }
}

fn write_batch(conn: &mut Connection, batch: &[Record]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO calls (time_ms, request_id, principal, secret_id, action, interface_group, groups,
                                client, code, latency_us, face_num, candidates)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for r in batch {
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
        // The batch's aggregates, merged into what the buckets already hold.
        let mut buckets: std::collections::BTreeMap<(i64, String), (String, u64, u64, Histogram)> =
            Default::default();
        for r in batch {
            // Statistics are kept by known action only: whatever a refused call claims goes under one key.
            let action = match r.action.as_deref() {
                None => "(none)".to_owned(),
                Some(a) if known_action(a) => a.to_owned(),
                Some(_) => "(unknown)".to_owned(),
            };
            let entry = buckets
                .entry((r.time_ms - r.time_ms.rem_euclid(BUCKET_MS), action))
                .or_insert_with(|| {
                    (
                        r.interface_group.clone().unwrap_or_default(),
                        0,
                        0,
                        Histogram::default(),
                    )
                });
            entry.1 += 1;
            entry.2 += u64::from(r.code != "OK");
            entry.3.add(r.latency_us);
        }
        let mut read = tx.prepare_cached(
            "SELECT calls, errors, latency FROM stats WHERE bucket_ms = ?1 AND action = ?2",
        )?;
        let mut upsert = tx.prepare_cached(
            "INSERT OR REPLACE INTO stats (bucket_ms, action, interface_group, calls, errors, latency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for ((bucket, action), (group, mut calls, mut errors, mut latency)) in buckets {
            let before: Option<(i64, i64, Vec<u8>)> = read
                .query_row(params![bucket, action], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .ok();
            if let Some((c, e, h)) = before {
                calls += c as u64;
                errors += e as u64;
                latency.merge(&Histogram::from_bytes(&h));
            }
            upsert.execute(params![
                bucket,
                action,
                group,
                calls as i64,
                errors as i64,
                latency.to_bytes()
            ])?;
        }
    }
    tx.commit()
}

fn purge_if_due(conn: &Connection, retention: Duration, last: &mut Instant) {
    if last.elapsed() < Duration::from_secs(3600) {
        return;
    }
    *last = Instant::now();
    let cutoff = chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64;
    match purge(conn, cutoff) {
        Ok(n) if n > 0 => tracing::info!(rows = n, "audit trail: rows past the retention deleted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "audit trail: cannot delete old rows"),
    }
}

/// Delete calls and statistics older than `cutoff_ms`; returns the rows deleted.
fn purge(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    let calls = conn.execute("DELETE FROM calls WHERE time_ms < ?1", [cutoff_ms])?;
    let stats = conn.execute(
        "DELETE FROM stats WHERE bucket_ms + ?2 <= ?1",
        [cutoff_ms, BUCKET_MS],
    )?;
    Ok(calls + stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time_ms: i64, action: &str, code: &str, latency_us: u64) -> Record {
        Record {
            time_ms,
            request_id: format!("r{time_ms}"),
            principal: "main".into(),
            action: Some(action.into()),
            interface_group: Some("search".into()),
            code: code.into(),
            latency_us,
            ..Default::default()
        }
    }

    #[test]
    fn batches_are_written_and_aggregated_per_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let trail = Trail::open(dir.path(), 30).unwrap();
        let t0 = 1_800_000_000_000;
        for i in 0..10 {
            trail.record(record(
                t0 + i,
                "SearchFaces",
                if i == 3 { "X" } else { "OK" },
                1000 * (i as u64 + 1),
            ));
        }
        trail.record(record(t0 + BUCKET_MS, "SearchFaces", "OK", 5000));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let conn = trail.reader().unwrap();
            let n: i64 = conn
                .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
                .unwrap_or(0);
            if n == 11 {
                break;
            }
            assert!(Instant::now() < deadline, "only {n} rows");
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats =
            query::stats(&trail.reader().unwrap(), t0 - BUCKET_MS, t0 + 2 * BUCKET_MS).unwrap();
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].calls, stats[0].errors), (10, 1));
        assert!(
            (4.0..=7.0).contains(&stats[0].p50_ms),
            "{}",
            stats[0].p50_ms
        );
        assert!(stats[0].p99_ms >= 9.0, "{}", stats[0].p99_ms);
        assert_eq!(stats[1].calls, 1);

        // Retention: what ended before the cutoff goes, the rest stays.
        let mut conn = open_connection(trail.path()).unwrap();
        assert_eq!(purge(&conn, t0 + BUCKET_MS).unwrap(), 10 + 1);
        let left: i64 = conn
            .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
        write_batch(
            &mut conn,
            &[record(t0 + BUCKET_MS + 1, "SearchFaces", "OK", 1)],
        )
        .unwrap();
        let stats = query::stats(&conn, t0 - BUCKET_MS, t0 + 2 * BUCKET_MS).unwrap();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].calls, 2, "the kept bucket's aggregate grows");
    }
}
