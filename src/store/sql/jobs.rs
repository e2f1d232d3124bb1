//! Job rows: group upgrades (`upgrade_group`) and the legacy duplicate-person checks
//! (`check_similar_person`). Their state lives here so that a restart resumes them.

use super::{OptionalExtension, Row, Sql, params};

use crate::store::StoreError;

pub const UPGRADE: &str = "upgrade_group";
pub const SIMILAR: &str = "check_similar_person";

/// Upgrade job status, as Tencent numbers it: 0 running, 1 done, 2 rolled back, 3 failed.
pub const UPGRADING: i64 = 0;
pub const UPGRADED: i64 = 1;
pub const ROLLED_BACK: i64 = 2;
pub const UPGRADE_FAILED: i64 = 3;
/// Duplicate-check status, as Tencent numbers it: 0 done, 1 running, 2 failed.
pub const CHECK_DONE: i64 = 0;
pub const CHECK_RUNNING: i64 = 1;
pub const CHECK_FAILED: i64 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: String,
    pub kind: String,
    pub group_id: Option<String>,
    pub params: serde_json::Value,
    pub status: i64,
    pub progress: f64,
    pub result: Option<serde_json::Value>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
}
// The SQL of groups fails a deleted group's running upgrade.

const COLUMNS: &str =
    "job_id, kind, group_id, params, status, progress, result, started_ms, finished_ms";

fn from_row(row: &Row) -> super::Result<JobRow> {
    let params: String = row.get(3)?;
    let result: Option<String> = row.get(6)?;
    Ok(JobRow {
        job_id: row.get(0)?,
        kind: row.get(1)?,
        group_id: row.get(2)?,
        params: serde_json::from_str(&params).unwrap_or_default(),
        status: row.get(4)?,
        progress: row.get(5)?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        started_ms: row.get(7)?,
        finished_ms: row.get(8)?,
    })
}

pub fn insert(conn: &dyn Sql, job: &JobRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO jobs (job_id, kind, group_id, params, status, progress, result, started_ms, finished_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            job.job_id,
            job.kind,
            job.group_id,
            job.params.to_string(),
            job.status,
            job.progress,
            job.result.as_ref().map(|r| r.to_string()),
            job.started_ms,
            job.finished_ms
        ],
    )?;
    Ok(())
}

pub fn find(conn: &dyn Sql, job_id: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"),
            [job_id],
            from_row,
        )
        .optional()?)
}

/// Jobs of a kind, newest first.
pub fn list(
    conn: &dyn Sql,
    kind: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<JobRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 ORDER BY started_ms DESC, rowid DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![kind, limit as i64, offset as i64], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count(conn: &dyn Sql, kind: &str) -> Result<u64, StoreError> {
    Ok(
        conn.query_row("SELECT count(*) FROM jobs WHERE kind = ?1", [kind], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

/// Jobs of a kind in a status (the running ones, at start).
pub fn with_status(conn: &dyn Sql, kind: &str, status: i64) -> Result<Vec<JobRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND status = ?2 ORDER BY started_ms, rowid"
    ))?;
    let rows = stmt.query_map(params![kind, status], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The oldest job of a kind in a status (the next duplicate check to run).
pub fn oldest_with_status(
    conn: &dyn Sql,
    kind: &str,
    status: i64,
) -> Result<Option<JobRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND status = ?2 ORDER BY started_ms, rowid LIMIT 1"
            ),
            params![kind, status],
            from_row,
        )
        .optional()?)
}

/// Upgrade jobs of a group, newest first.
pub fn of_group(conn: &dyn Sql, group_id: &str) -> Result<Vec<JobRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND group_id = ?2 ORDER BY started_ms DESC, rowid DESC"
    ))?;
    let rows = stmt.query_map(params![UPGRADE, group_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The progress of a running job (a finished one keeps its 100: a revert reuses its upgrade's row).
pub fn set_progress(conn: &dyn Sql, job_id: &str, progress: f64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET progress = ?2 WHERE job_id = ?1 AND finished_ms IS NULL",
        params![job_id, progress],
    )?;
    Ok(())
}

pub fn set_params(
    conn: &dyn Sql,
    job_id: &str,
    params: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET params = ?2 WHERE job_id = ?1",
        params![job_id, params.to_string()],
    )?;
    Ok(())
}

pub fn finish(
    conn: &dyn Sql,
    job_id: &str,
    status: i64,
    result: Option<&serde_json::Value>,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET status = ?2, progress = 100, result = ?3, finished_ms = ?4 WHERE job_id = ?1",
        params![job_id, status, result.map(|r| r.to_string()), now_ms],
    )?;
    Ok(())
}

/// Set a finished job's status (a rollback), keeping its result.
pub fn set_status(conn: &dyn Sql, job_id: &str, status: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET status = ?2 WHERE job_id = ?1",
        params![job_id, status],
    )?;
    Ok(())
}

/// A duplicate check that could not complete: failed (status 2), keeping the progress it reached (its
/// result is never 100 % done) and why in `result`.
pub fn fail(
    conn: &dyn Sql,
    job_id: &str,
    result: &serde_json::Value,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET status = ?2, result = ?3, finished_ms = ?4 WHERE job_id = ?1",
        params![job_id, CHECK_FAILED, result.to_string(), now_ms],
    )?;
    Ok(())
}

/// Forget jobs of a kind that finished before `before_ms` (the duplicate checks keep a year of history).
pub fn delete_finished_before(
    conn: &dyn Sql,
    kind: &str,
    before_ms: i64,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM jobs WHERE kind = ?1 AND finished_ms IS NOT NULL AND finished_ms < ?2",
        params![kind, before_ms],
    )?)
}

/// A person's name, if the person exists (the names in a duplicate check's result).
pub fn person_name(conn: &dyn Sql, person_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name FROM persons WHERE person_id = ?1",
            [person_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Take or renew the lease `name` for `owner` until `until_ms`: granted when nobody holds it, when its
/// holder let it run out before `now_ms`, or when `owner` holds it already.
pub fn take_lease(
    conn: &dyn Sql,
    name: &str,
    owner: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "INSERT INTO leases (name, owner, until_ms) VALUES (?1, ?2, ?4)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
                 WHERE leases.owner = excluded.owner OR leases.until_ms < ?3
             RETURNING owner",
            params![name, owner, now_ms, until_ms],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
