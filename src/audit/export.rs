//! `iai-server audit export --since ...`: the trail's rows as JSON lines, oldest first, read from the file
//! directly (the server may be running: WAL readers do not block its writer), or from the shared
//! PostgreSQL database (`--database-url`: every replica's calls).

use std::io::Write;

use anyhow::Context;

use crate::store::audit::{AuditStore, Location};

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
    location: &Location,
    since_ms: i64,
    until_ms: Option<i64>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let trail = AuditStore::open_existing(location)?;
    let n = trail.export(since_ms, until_ms, |record| {
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
        Ok::<_, anyhow::Error>(())
    })?;
    out.flush()?;
    Ok(n)
}
