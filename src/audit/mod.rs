//! The audit trail: every request, refused ones included (time, RequestId, principal and SecretId, action,
//! interface group, groups touched, client address, outcome code, latency; for searches and verifications
//! also FaceNum and the top candidates), kept by the store's audit operations (`store::audit`; with SQLite
//! its own file `audit.sqlite3` beside the database, with PostgreSQL the shared database, where every
//! replica's calls are read together).
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
pub mod query;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::store::audit::{AuditStore, Histogram, Location, StatDelta};

// The rows live with the store (the lower layer); they are the trail's vocabulary too.
pub use crate::store::audit::{AUDIT_FILE, BUCKET_MS, Candidate, Record};

/// Records waiting for the writer at most (about 1 KB each), and their bytes at most: whatever the records
/// hold, the queue holds no more than this.
const QUEUE: usize = 65_536;
const QUEUE_BYTES: u64 = 32 * 1024 * 1024;
/// Records per transaction at most, and how long the writer lets a partial batch wait.
const BATCH: usize = 1024;
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// Candidates kept per search (best first).
pub const TOP_CANDIDATES: usize = 5;

pub struct Trail {
    /// Each record with its size (`Record::bytes`), so the writer takes off what was added.
    queue: SyncSender<(Record, u64)>,
    /// Bytes of the records in the queue (added here, taken off by the writer).
    queued_bytes: Arc<AtomicU64>,
    /// Where the readers open the trail.
    location: Location,
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
    /// Open (creating) the trail at `location` and start its writer thread.
    pub fn open(location: Location, retention_days: u32) -> anyhow::Result<Arc<Self>> {
        let store = AuditStore::open(&location)?;
        let (queue, records) = std::sync::mpsc::sync_channel(QUEUE);
        let retention = Duration::from_secs(u64::from(retention_days.max(1)) * 86_400);
        let queued_bytes = Arc::new(AtomicU64::new(0));
        let writer_bytes = queued_bytes.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(store, records, retention, writer_bytes))
            .context("cannot start the audit writer")?;
        Ok(Arc::new(Self {
            queue,
            queued_bytes,
            location,
        }))
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

    /// A read-only handle for queries (run them off the async runtime).
    pub fn reader(&self) -> anyhow::Result<AuditStore> {
        AuditStore::open_reader(&self.location)
    }
}

fn known_action(name: &str) -> bool {
    crate::api::find_action(name).is_some() || crate::api::cam::find_action(name).is_some()
}

fn write_loop(
    mut store: AuditStore,
    records: Receiver<(Record, u64)>,
    retention: Duration,
    queued_bytes: Arc<AtomicU64>,
) {
    let mut last_purge = Instant::now() - Duration::from_secs(3600);
    loop {
        let first = match records.recv_timeout(Duration::from_secs(60)) {
            Ok(sized) => sized,
            Err(RecvTimeoutError::Timeout) => {
                purge_if_due(&store, retention, &mut last_purge);
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
        if let Err(e) = store.record_batch(&batch, &aggregate(&batch)) {
            tracing::error!(error = %e, records = batch.len(), "cannot write to the audit trail");
            metrics::counter!("iai_audit_dropped_total").increment(batch.len() as u64);
        }
        purge_if_due(&store, retention, &mut last_purge);
    }
}

/// The batch's aggregates per bucket and action, for the store to add to what the buckets already hold.
fn aggregate(batch: &[Record]) -> Vec<StatDelta> {
    let mut buckets: BTreeMap<(i64, String), StatDelta> = BTreeMap::new();
    for r in batch {
        // Statistics are kept by known action only: whatever a refused call claims goes under one key.
        let action = match r.action.as_deref() {
            None => "(none)".to_owned(),
            Some(a) if known_action(a) => a.to_owned(),
            Some(_) => "(unknown)".to_owned(),
        };
        let bucket_ms = r.time_ms - r.time_ms.rem_euclid(BUCKET_MS);
        let entry = buckets
            .entry((bucket_ms, action.clone()))
            .or_insert_with(|| StatDelta {
                bucket_ms,
                action,
                interface_group: r.interface_group.clone().unwrap_or_default(),
                calls: 0,
                errors: 0,
                latency: Histogram::default(),
            });
        entry.calls += 1;
        entry.errors += u64::from(r.code != "OK");
        entry.latency.add(r.latency_us);
    }
    buckets.into_values().collect()
}

fn purge_if_due(store: &AuditStore, retention: Duration, last: &mut Instant) {
    if last.elapsed() < Duration::from_secs(3600) {
        return;
    }
    *last = Instant::now();
    let cutoff = chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64;
    match store.purge_before(cutoff) {
        Ok(n) if n > 0 => tracing::info!(rows = n, "audit trail: rows past the retention deleted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "audit trail: cannot delete old rows"),
    }
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
        let trail = Trail::open(Location::File(dir.path().into()), 30).unwrap();
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
        let all = query::LogFilter::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = query::search_log(&trail.reader().unwrap(), &all).map_or(0, |(_, n)| n);
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
    }

    #[test]
    fn statistics_are_kept_by_known_action_only() {
        let t0 = 1_800_000_000_000;
        let mut refused = record(t0 + 1, "NoSuchAction", "X", 10);
        refused.interface_group = None;
        let mut unnamed = record(t0 + 2, "", "X", 10);
        unnamed.action = None;
        let deltas = aggregate(&[
            record(t0, "SearchFaces", "OK", 10),
            refused,
            unnamed,
            record(t0 + BUCKET_MS + 1, "SearchFaces", "OK", 10),
        ]);
        let keys: Vec<_> = deltas
            .iter()
            .map(|d| (d.bucket_ms, d.action.as_str(), d.calls, d.errors))
            .collect();
        assert_eq!(
            keys,
            [
                (t0, "(none)", 1, 1),
                (t0, "(unknown)", 1, 1),
                (t0, "SearchFaces", 1, 0),
                (t0 + BUCKET_MS, "SearchFaces", 1, 0),
            ]
        );
    }
}
