//! The store's named operations on the audit trail (recording call batches, purging, the statistics and
//! search-log queries, export), backend-neutral, and the plain rows they take and return. With SQLite the
//! trail is a file of its own beside the database (`AUDIT_FILE`, 0600); with PostgreSQL it is in the shared
//! database, partitioned by day, so that every replica's calls are read together.
//!
//! What a call's record holds, how a batch is aggregated and when rows expire is the audit trail's
//! (`crate::audit`); this layer only keeps and reads them.

pub mod records;

use std::path::{Path, PathBuf};

use super::StoreError;
use super::postgres::audit::PgAudit;
use super::sqlite::audit::AuditDb;

pub use super::sqlite::audit::AUDIT_FILE;
pub use records::{
    BUCKET_MS, Candidate, Histogram, LogFilter, Record, SEARCH_ACTIONS, StatDelta, StatRow,
};

/// Where a trail lives: a file in a data directory (SQLite), or the shared database.
#[derive(Clone)]
pub enum Location {
    /// The data directory holding `AUDIT_FILE`.
    File(PathBuf),
    Database(Box<PgAudit>),
}

impl Location {
    /// The trail of the PostgreSQL database at `url` (operators' tools). Needs a runtime.
    pub fn database(url: &str) -> anyhow::Result<Self> {
        let db = super::postgres::Db::new(url)?;
        Ok(Self::Database(Box::new(PgAudit::new(db, String::new())?)))
    }
}

/// A handle on the trail. Its operations block: run them off the async runtime.
pub struct AuditStore {
    db: Backend,
}

enum Backend {
    Sqlite(AuditDb),
    Postgres(PgAudit),
}

impl AuditStore {
    /// Open (creating, 0600) the trail for writing, its schema created if missing.
    pub fn open(location: &Location) -> anyhow::Result<Self> {
        Self::at(location, AuditDb::open)
    }

    /// A read-only handle for the console's queries.
    pub fn open_reader(location: &Location) -> anyhow::Result<Self> {
        Self::at(location, AuditDb::open_reader)
    }

    /// A read-only handle on a trail that must already exist (operators' tools beside a running server).
    pub fn open_existing(location: &Location) -> anyhow::Result<Self> {
        Self::at(location, AuditDb::open_existing)
    }

    /// The trail at `location`: a SQLite file opened by `open_file`, or a handle on the shared database
    /// (one handle serves writing and reading alike).
    fn at(
        location: &Location,
        open_file: impl FnOnce(&Path) -> anyhow::Result<AuditDb>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            db: match location {
                Location::File(dir) => Backend::Sqlite(open_file(dir)?),
                Location::Database(pg) => Backend::Postgres((**pg).clone()),
            },
        })
    }

    /// Where the trail lives, for operators' messages.
    pub fn location(&self) -> String {
        match &self.db {
            Backend::Sqlite(db) => db.path().display().to_string(),
            Backend::Postgres(db) => db.describe(),
        }
    }

    /// Keep `calls` and add `stats` to their buckets, all or nothing.
    pub fn record_batch(
        &mut self,
        calls: &[Record],
        stats: &[StatDelta],
    ) -> Result<(), StoreError> {
        match &mut self.db {
            Backend::Sqlite(db) => db.record_batch(calls, stats),
            Backend::Postgres(db) => db.record_batch(calls, stats),
        }
    }

    /// Delete the calls before `cutoff_ms` and the buckets that ended by then; returns the rows deleted.
    pub fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        match &self.db {
            Backend::Sqlite(db) => db.purge_before(cutoff_ms),
            Backend::Postgres(db) => db.purge_before(cutoff_ms),
        }
    }

    /// Buckets starting in `[start_ms, end_ms)`, oldest first (by action within a bucket).
    pub fn stats(&self, start_ms: i64, end_ms: i64) -> Result<Vec<StatRow>, StoreError> {
        match &self.db {
            Backend::Sqlite(db) => db.stats(start_ms, end_ms),
            Backend::Postgres(db) => db.stats(start_ms, end_ms),
        }
    }

    /// The page of the search log (`SEARCH_ACTIONS`' calls) that `filter` asks, newest first, and how many
    /// calls match.
    pub fn search_log(&self, filter: &LogFilter) -> Result<(Vec<Record>, u64), StoreError> {
        match &self.db {
            Backend::Sqlite(db) => db.search_log(filter),
            Backend::Postgres(db) => db.search_log(filter),
        }
    }

    /// Hand every call of `[since_ms, until_ms)` to `each`, oldest first, streaming (the trail can be far
    /// larger than memory); stops at `each`'s first error. Returns how many were handed.
    pub fn export<E: From<StoreError>>(
        &self,
        since_ms: i64,
        until_ms: Option<i64>,
        each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<u64, E> {
        let until_ms = until_ms.unwrap_or(i64::MAX);
        match &self.db {
            Backend::Sqlite(db) => db.export(since_ms, until_ms, each),
            Backend::Postgres(db) => db.export(since_ms, until_ms, each),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(time_ms: i64, action: &str, code: &str, groups: &[&str]) -> Record {
        Record {
            time_ms,
            request_id: format!("r{time_ms}"),
            principal: "main".into(),
            action: Some(action.into()),
            interface_group: Some("search".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            code: code.into(),
            latency_us: 1000,
            ..Default::default()
        }
    }

    fn delta(bucket_ms: i64, calls: u64, errors: u64, latency_us: &[u64]) -> StatDelta {
        let mut latency = Histogram::default();
        latency_us.iter().for_each(|&us| latency.add(us));
        StatDelta {
            bucket_ms,
            action: "SearchFaces".into(),
            interface_group: "search".into(),
            calls,
            errors,
            latency,
        }
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.add(us * 100);
        }
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((50.0 * 0.85..=50.0 * 1.15).contains(&p50), "{p50}");
        assert!((99.0 * 0.85..=99.0 * 1.15).contains(&p99), "{p99}");
        let round = Histogram::from_bytes(&h.to_bytes());
        assert_eq!(round, h);
        let mut twice = h.clone();
        twice.merge(&h);
        assert!((twice.quantile_ms(0.5) - p50).abs() < 1e-9);
        assert_eq!(Histogram::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn stats_merge_into_their_buckets_and_expire_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = AuditStore::open(&Location::File(dir.path().into())).unwrap();
        let t0 = 1_800_000_000_000;
        store
            .record_batch(
                &[call(t0, "SearchFaces", "OK", &[])],
                &[delta(t0, 1, 0, &[1000])],
            )
            .unwrap();
        store
            .record_batch(
                &[
                    call(t0 + 1, "SearchFaces", "X", &[]),
                    call(t0 + BUCKET_MS, "SearchFaces", "OK", &[]),
                ],
                &[
                    delta(t0, 1, 1, &[100_000]),
                    delta(t0 + BUCKET_MS, 1, 0, &[1000]),
                ],
            )
            .unwrap();
        let reader = AuditStore::open_reader(&Location::File(dir.path().into())).unwrap();
        let stats = reader.stats(t0, t0 + 2 * BUCKET_MS).unwrap();
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].calls, stats[0].errors), (2, 1), "merged");
        assert!(stats[0].p99_ms >= 90.0, "{}", stats[0].p99_ms);
        assert_eq!(reader.stats(t0 + 1, t0 + BUCKET_MS).unwrap().len(), 0);

        // Calls before the cutoff and the bucket that ended by then go.
        assert_eq!(store.purge_before(t0 + BUCKET_MS).unwrap(), 2 + 1);
        let stats = reader.stats(t0, t0 + 2 * BUCKET_MS).unwrap();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].bucket_ms, t0 + BUCKET_MS);
    }

    #[test]
    fn the_search_log_filters_pages_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = AuditStore::open(&Location::File(dir.path().into())).unwrap();
        let t0 = 1_800_000_000_000;
        let mut verify = call(t0 + 3, "VerifyFace", "OK", &["b"]);
        verify.candidates = Some(vec![Candidate {
            person_id: "p".into(),
            face_id: None,
            score: 91.5,
        }]);
        verify.face_num = Some(1);
        let calls = [
            call(t0, "SearchFaces", "OK", &["a", "b"]),
            call(t0 + 1, "CreatePerson", "OK", &["b"]),
            call(t0 + 2, "SearchPersons", "X", &["a"]),
            verify.clone(),
        ];
        store.record_batch(&calls, &[]).unwrap();
        let log = |filter: LogFilter| store.search_log(&filter).unwrap();
        let all = LogFilter {
            limit: 10,
            ..Default::default()
        };
        let (rows, total) = log(all.clone());
        assert_eq!(total, 3, "searches and verifications only");
        assert_eq!(rows[0], verify, "newest first, as recorded");
        let (rows, total) = log(LogFilter {
            group_id: Some("b".into()),
            ..all.clone()
        });
        assert_eq!(total, 2);
        assert_eq!(rows[1].request_id, format!("r{t0}"));
        let (rows, total) = log(LogFilter {
            code: Some("X".into()),
            start_ms: Some(t0 + 1),
            ..all.clone()
        });
        assert_eq!((rows.len(), total), (1, 1));
        let (rows, total) = log(LogFilter {
            offset: 1,
            limit: 1,
            ..all
        });
        assert_eq!((rows.len(), total), (1, 3));
        assert_eq!(rows[0].time_ms, t0 + 2);

        let mut exported = Vec::new();
        let n = AuditStore::open_existing(&Location::File(dir.path().into()))
            .unwrap()
            .export(t0 + 1, None, |r| {
                exported.push(r.time_ms);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            exported,
            [t0 + 1, t0 + 2, t0 + 3],
            "oldest first, every action"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_trail_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        AuditStore::open(&Location::File(dir.path().into())).unwrap();
        let mode = std::fs::metadata(dir.path().join(AUDIT_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(AuditStore::open_existing(&Location::File(dir.path().join("elsewhere"))).is_err());
    }
}
