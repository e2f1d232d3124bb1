//! `iai-server audit export --since ...`: the trail's rows as JSON lines, oldest first, read from the file
//! directly (the server may be running: WAL readers do not block its writer).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use super::{AUDIT_FILE, query};

/// A time given as RFC 3339 (`2026-11-25T00:00:00Z`) or unix seconds, in milliseconds.
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Ok(seconds * 1000);
    }
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .with_context(|| {
            format!("`{text}` is neither RFC 3339 (2026-11-25T00:00:00Z) nor unix seconds")
        })
}

/// Write the rows of `[since_ms, until_ms)` to `out`; returns how many.
pub fn export(
    data_dir: &Path,
    since_ms: i64,
    until_ms: Option<i64>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let path = data_dir.join(AUDIT_FILE);
    if !path.exists() {
        anyhow::bail!(
            "no audit trail at {} (is the data directory right?)",
            path.display()
        );
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM calls WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY time_ms, id",
        query::COLUMNS
    ))?;
    let rows = stmt.query_map([since_ms, until_ms.unwrap_or(i64::MAX)], query::record)?;
    let mut n = 0;
    for row in rows {
        let record = row?;
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}
