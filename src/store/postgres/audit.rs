//! The audit trail in the shared PostgreSQL database (`audit_calls`, partitioned by day, and
//! `audit_stats`), so that the console's statistics and search log and `iai-server audit export` see the
//! calls of every replica. Each replica's writer thread records its batches here; a batch, and the hourly
//! purge, hold one advisory lock (`AUDIT_LOCK`), so that replicas merge their buckets' histograms one at a
//! time, make each day's partition once, and purge one at a time.
//!
//! The operations block (the writer is a thread of its own; readers run on the blocking pool): each waits
//! for its statements on the runtime that drives the connections (`Handle::block_on`).

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;

use super::Db;
use crate::store::StoreError;
use crate::store::audit::records::{
    BUCKET_MS, Candidate, Histogram, LogFilter, Record, SEARCH_ACTIONS, StatDelta, StatRow,
};

/// Held by a batch's transaction and by the purge.
const AUDIT_LOCK: i64 = 0x1a1_5e4e_0003;
const DAY_MS: i64 = 86_400_000;
/// Rows read per query while exporting (the trail can be far larger than memory).
const EXPORT_PAGE: i64 = 10_000;

const COLUMNS: &str = "time_ms, request_id, principal, secret_id, action, interface_group, groups, client, \
                       code, latency_us, face_num, candidates";

/// A handle on the shared trail; cheap to clone.
#[derive(Clone)]
pub struct PgAudit {
    db: Db,
    runtime: Handle,
    /// The replica whose calls this handle records.
    replica_id: String,
    /// The days whose partitions are known to exist (each made once; shared by this handle's clones).
    partitions: Arc<Mutex<HashSet<i64>>>,
}

fn partition(day: i64) -> String {
    format!("audit_calls_d{day}")
}

impl PgAudit {
    /// A handle on `db`'s trail, recording as `replica_id`. Needs a runtime (the caller's).
    pub fn new(db: Db, replica_id: String) -> Result<Self, StoreError> {
        let runtime = Handle::try_current()
            .map_err(|e| StoreError::Task(format!("the audit trail needs a runtime: {e}")))?;
        Ok(Self {
            db,
            runtime,
            replica_id,
            partitions: Arc::default(),
        })
    }

    pub fn describe(&self) -> String {
        format!("{} (audit_calls)", self.db.describe())
    }

    /// One transaction: each day's partition made if missing, the calls inserted (one statement), each
    /// delta merged into its bucket's row.
    pub fn record_batch(&self, calls: &[Record], stats: &[StatDelta]) -> Result<(), StoreError> {
        let recorded = self.try_record_batch(calls, stats);
        if recorded.is_err() {
            // A partition dropped behind this process's back (another replica's purge): look again.
            self.partitions.lock().clear();
        }
        recorded
    }

    fn try_record_batch(&self, calls: &[Record], stats: &[StatDelta]) -> Result<(), StoreError> {
        self.runtime.block_on(async {
            let mut client = self.db.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                .await?;
            let days: HashSet<i64> = calls.iter().map(|c| c.time_ms.div_euclid(DAY_MS)).collect();
            let missing: Vec<i64> = {
                let known = self.partitions.lock();
                days.into_iter().filter(|d| !known.contains(d)).collect()
            };
            for day in &missing {
                // DDL takes no parameters: the name and bounds are integers formatted here.
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF audit_calls FOR VALUES FROM ({}) TO ({})",
                    partition(*day),
                    day * DAY_MS,
                    (day + 1) * DAY_MS
                ))
                .await?;
            }
            let column = |f: &dyn Fn(&Record) -> Option<String>| -> Vec<Option<String>> {
                calls.iter().map(f).collect()
            };
            let times: Vec<i64> = calls.iter().map(|c| c.time_ms).collect();
            let request_ids = column(&|c| Some(c.request_id.clone()));
            let principals = column(&|c| Some(c.principal.clone()));
            let secret_ids = column(&|c| c.secret_id.clone());
            let actions = column(&|c| c.action.clone());
            let interface_groups = column(&|c| c.interface_group.clone());
            let groups = column(&|c| {
                Some(serde_json::to_string(&c.groups).unwrap_or_else(|_| "[]".into()))
            });
            let clients = column(&|c| c.client.clone());
            let codes = column(&|c| Some(c.code.clone()));
            let latencies: Vec<i64> = calls.iter().map(|c| c.latency_us as i64).collect();
            let face_nums: Vec<Option<i64>> =
                calls.iter().map(|c| c.face_num.map(|n| n as i64)).collect();
            let candidates = column(&|c| {
                c.candidates
                    .as_ref()
                    .and_then(|c| serde_json::to_string(c).ok())
            });
            tx.execute(
                &format!(
                    "INSERT INTO audit_calls (replica_id, {COLUMNS})
                     SELECT $1, * FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                        $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::BIGINT[], $12::BIGINT[], $13::TEXT[])"
                ),
                &[
                    &self.replica_id,
                    &times,
                    &request_ids,
                    &principals,
                    &secret_ids,
                    &actions,
                    &interface_groups,
                    &groups,
                    &clients,
                    &codes,
                    &latencies,
                    &face_nums,
                    &candidates,
                ],
            )
            .await?;
            for delta in stats {
                let before = tx
                    .query_opt(
                        "SELECT calls, errors, latency FROM audit_stats WHERE bucket_ms = $1 AND action = $2",
                        &[&delta.bucket_ms, &delta.action],
                    )
                    .await?;
                let (mut calls, mut errors, mut latency) =
                    (delta.calls, delta.errors, delta.latency.clone());
                if let Some(row) = before {
                    calls += row.get::<_, i64>(0) as u64;
                    errors += row.get::<_, i64>(1) as u64;
                    latency.merge(&Histogram::from_bytes(row.get::<_, &[u8]>(2)));
                }
                tx.execute(
                    "INSERT INTO audit_stats (bucket_ms, action, interface_group, calls, errors, latency)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (bucket_ms, action) DO UPDATE
                     SET calls = excluded.calls, errors = excluded.errors, latency = excluded.latency",
                    &[
                        &delta.bucket_ms,
                        &delta.action,
                        &delta.interface_group,
                        &(calls as i64),
                        &(errors as i64),
                        &latency.to_bytes(),
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            self.partitions.lock().extend(missing);
            Ok(())
        })
    }

    /// Drop the days that ended by `cutoff_ms`, delete the older rows of the day it falls in and the
    /// buckets that ended by then; returns the rows deleted.
    pub fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.runtime.block_on(async {
            let mut client = self.db.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                .await?;
            let parts: Vec<String> = tx
                .query(
                    "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE i.inhparent = 'audit_calls'::regclass",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut deleted = 0u64;
            let mut dropped = Vec::new();
            for name in parts {
                let Some(day) = name
                    .strip_prefix("audit_calls_d")
                    .and_then(|d| d.parse::<i64>().ok())
                else {
                    continue;
                };
                if (day + 1) * DAY_MS <= cutoff_ms {
                    let n: i64 = tx
                        .query_one(&format!("SELECT count(*) FROM {}", partition(day)), &[])
                        .await?
                        .get(0);
                    tx.batch_execute(&format!("DROP TABLE {}", partition(day)))
                        .await?;
                    deleted += n as u64;
                    dropped.push(day);
                }
            }
            deleted += tx
                .execute("DELETE FROM audit_calls WHERE time_ms < $1", &[&cutoff_ms])
                .await?;
            deleted += tx
                .execute(
                    "DELETE FROM audit_stats WHERE bucket_ms + $2 <= $1",
                    &[&cutoff_ms, &BUCKET_MS],
                )
                .await?;
            tx.commit().await?;
            let mut known = self.partitions.lock();
            for day in dropped {
                known.remove(&day);
            }
            Ok(deleted)
        })
    }

    pub fn stats(&self, start_ms: i64, end_ms: i64) -> Result<Vec<StatRow>, StoreError> {
        self.runtime.block_on(async {
            let rows = self
                .db
                .client()
                .await?
                .query(
                    "SELECT bucket_ms, action, interface_group, calls, errors, latency FROM audit_stats
                     WHERE bucket_ms >= $1 AND bucket_ms < $2 ORDER BY bucket_ms, action",
                    &[&start_ms, &end_ms],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    let latency = Histogram::from_bytes(row.get::<_, &[u8]>(5));
                    StatRow {
                        bucket_ms: row.get(0),
                        action: row.get(1),
                        interface_group: row.get(2),
                        calls: row.get::<_, i64>(3) as u64,
                        errors: row.get::<_, i64>(4) as u64,
                        p50_ms: latency.quantile_ms(0.5),
                        p99_ms: latency.quantile_ms(0.99),
                    }
                })
                .collect())
        })
    }

    pub fn search_log(&self, filter: &LogFilter) -> Result<(Vec<Record>, u64), StoreError> {
        let actions: Vec<String> = SEARCH_ACTIONS.iter().map(|a| (*a).to_owned()).collect();
        let mut clauses = vec!["action = ANY($1)".to_owned()];
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(actions)];
        let mut add = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            values.push(value);
            clauses.push(clause.replace('?', &format!("${}", values.len())));
        };
        if let Some(start) = filter.start_ms {
            add("time_ms >= ?", Box::new(start));
        }
        if let Some(end) = filter.end_ms {
            add("time_ms < ?", Box::new(end));
        }
        if let Some(group) = &filter.group_id {
            add(
                "EXISTS (SELECT 1 FROM json_array_elements_text(groups::JSON) g WHERE g = ?)",
                Box::new(group.clone()),
            );
        }
        if let Some(id) = &filter.secret_id {
            add("secret_id = ?", Box::new(id.clone()));
        }
        if let Some(principal) = &filter.principal {
            add("principal = ?", Box::new(principal.clone()));
        }
        if let Some(code) = &filter.code {
            add("code = ?", Box::new(code.clone()));
        }
        let filter_sql = clauses.join(" AND ");
        let n = values.len();
        self.runtime.block_on(async {
            let client = self.db.client().await?;
            let args: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let total: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM audit_calls WHERE {filter_sql}"),
                    &args,
                )
                .await?
                .get(0);
            let (limit, offset) = (filter.limit as i64, filter.offset as i64);
            let mut page_args = args.clone();
            page_args.push(&limit);
            page_args.push(&offset);
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM audit_calls WHERE {filter_sql}
                         ORDER BY time_ms DESC, id DESC LIMIT ${} OFFSET ${}",
                        n + 1,
                        n + 2
                    ),
                    &page_args,
                )
                .await?;
            Ok((rows.iter().map(record).collect(), total as u64))
        })
    }

    /// Rows of `[since_ms, until_ms)` in recording order, a page at a time.
    pub fn export<E: From<StoreError>>(
        &self,
        since_ms: i64,
        until_ms: i64,
        mut each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut after: (i64, i64) = (since_ms, i64::MIN);
        let mut n = 0;
        loop {
            let rows = self
                .runtime
                .block_on(async {
                    self.db
                        .client()
                        .await?
                        .query(
                            &format!(
                                "SELECT {COLUMNS}, id FROM audit_calls
                                 WHERE (time_ms, id) > ($1, $2) AND time_ms >= $1 AND time_ms < $3
                                 ORDER BY time_ms, id LIMIT $4"
                            ),
                            &[&after.0, &after.1, &until_ms, &EXPORT_PAGE],
                        )
                        .await
                        .map_err(StoreError::from)
                })
                .map_err(E::from)?;
            for row in &rows {
                after = (row.get(0), row.get(12));
                each(record(row))?;
                n += 1;
            }
            if (rows.len() as i64) < EXPORT_PAGE {
                return Ok(n);
            }
        }
    }
}

fn record(row: &tokio_postgres::Row) -> Record {
    let groups: String = row.get(6);
    let candidates: Option<String> = row.get(11);
    Record {
        time_ms: row.get(0),
        request_id: row.get(1),
        principal: row.get(2),
        secret_id: row.get(3),
        action: row.get(4),
        interface_group: row.get(5),
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        client: row.get(7),
        code: row.get(8),
        latency_us: row.get::<_, i64>(9) as u64,
        face_num: row.get::<_, Option<i64>>(10).map(|n| n as u64),
        candidates: candidates.and_then(|c| serde_json::from_str::<Vec<Candidate>>(&c).ok()),
    }
}
