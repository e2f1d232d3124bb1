//! The change log's table, and the start view followers load from.

use std::collections::HashMap;

use super::{Sql, params};

use crate::store::StoreError;
use crate::store::cam::Snapshot as CamSnapshot;
use crate::store::changes::{Change, StartView};
use crate::store::groups::GroupRow;

/// Entries kept after the newest: every follower of a SQLite store is in this process and has applied
/// every entry by the time the next write starts, so the log is kept only for inspection.
const KEEP: i64 = 10_000;

/// The last number committed (0 for an empty log).
pub fn last(conn: &dyn Sql) -> Result<u64, StoreError> {
    let last: i64 = conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM change_log",
        params![],
        |r| r.get(0),
    )?;
    Ok(last as u64)
}

/// Append `changes` in the writing transaction; returns the number of the first (or of the next entry
/// when there is none).
pub fn append(conn: &dyn Sql, changes: &[Change]) -> Result<u64, StoreError> {
    let last = last(conn)? as i64;
    let now = crate::store::now_ms();
    let mut insert = conn.prepare("INSERT INTO change_log (seq, at_ms, body) VALUES (?, ?, ?)")?;
    for (n, change) in changes.iter().enumerate() {
        insert.execute(params![last + 1 + n as i64, now, change.encode()?])?;
    }
    if !changes.is_empty() && (last + changes.len() as i64) % 1000 < changes.len() as i64 {
        conn.execute(
            "DELETE FROM change_log WHERE seq <= ?",
            [last + changes.len() as i64 - KEEP],
        )?;
    }
    Ok(last as u64 + 1)
}

/// The entries after `from`, in order; `None` when the log no longer holds all of them (trimmed).
pub fn since(conn: &dyn Sql, from: u64) -> Result<Option<Vec<(u64, Change)>>, StoreError> {
    let mut stmt = conn.prepare("SELECT seq, body FROM change_log WHERE seq > ?1 ORDER BY seq")?;
    let rows = stmt.query_map([from as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row?;
        if seq != from + 1 + out.len() as u64 {
            return Ok(None);
        }
        out.push((seq, Change::decode(&body)?));
    }
    Ok(Some(out))
}

/// The database as one connection sees it.
pub struct View<'a>(pub &'a dyn Sql);

impl StartView for View<'_> {
    fn last_change(&self) -> Result<u64, StoreError> {
        last(self.0)
    }

    fn groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        super::groups::list(self.0, 0, i64::MAX as u64)
    }

    fn face_counts(&self) -> Result<HashMap<String, u64>, StoreError> {
        super::groups::face_counts(self.0)
    }

    fn for_each_indexed_face(
        &self,
        each: &mut dyn FnMut(&str, &str, &str, Vec<f32>),
    ) -> Result<(), StoreError> {
        super::persons::for_each_indexed_face(self.0, each)
    }

    fn group_vectors(
        &self,
        group_id: &str,
        model: &str,
    ) -> Result<Vec<(String, u64, Vec<f32>)>, StoreError> {
        Ok(super::vectors::of_group(self.0, group_id, model)?
            .into_iter()
            .filter_map(|(person, face, vector)| Some((person, face.parse().ok()?, vector)))
            .collect())
    }

    fn cam(&self) -> Result<CamSnapshot, StoreError> {
        super::cam::snapshot(self.0)
    }
}
