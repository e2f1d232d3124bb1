//! What the console reads from the trail: 5-minute statistics and the search log.

use rusqlite::{Connection, Row, params_from_iter, types::Value};

use super::histogram::Histogram;
use super::{Candidate, Record};

/// The actions whose rows make the search log (人脸搜索流水): searches and verifications.
pub const SEARCH_ACTIONS: &[&str] = &[
    "SearchFaces",
    "SearchFacesReturnsByGroup",
    "SearchPersons",
    "SearchPersonsReturnsByGroup",
    "ConsoleSearchFaces",
    "ConsoleSearchPersons",
    "VerifyFace",
    "VerifyPerson",
];

#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    pub bucket_ms: i64,
    pub action: String,
    pub interface_group: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Buckets starting in `[start_ms, end_ms)`, oldest first.
pub fn stats(conn: &Connection, start_ms: i64, end_ms: i64) -> rusqlite::Result<Vec<StatRow>> {
    let mut stmt = conn.prepare(
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
    rows.collect()
}

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub group_id: Option<String>,
    pub secret_id: Option<String>,
    /// `main` or a sub-user's uin.
    pub principal: Option<String>,
    pub code: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// The search log, newest first, and how many rows match.
pub fn search_log(conn: &Connection, filter: &LogFilter) -> rusqlite::Result<(Vec<Record>, u64)> {
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
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM calls WHERE {filter_sql}"),
        params_from_iter(values.iter()),
        |r| r.get(0),
    )?;
    values.push(Value::Integer(filter.limit as i64));
    values.push(Value::Integer(filter.offset as i64));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM calls WHERE {filter_sql} ORDER BY time_ms DESC, id DESC LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt.query_map(params_from_iter(values.iter()), record)?;
    Ok((rows.collect::<Result<_, _>>()?, total as u64))
}

pub const COLUMNS: &str = "time_ms, request_id, principal, secret_id, action, interface_group, groups, client, \
                           code, latency_us, face_num, candidates";

pub fn record(row: &Row) -> rusqlite::Result<Record> {
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
