//! Files kept in the database (`files`): jobs' result files and the link key, for replicas sharing one.

use super::{OptionalExtension, Sql, params};

use crate::store::StoreError;

pub fn put(conn: &dyn Sql, name: &str, body: &[u8], now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO files (name, body, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, created_ms = excluded.created_ms",
        params![name, body, now_ms],
    )?;
    Ok(())
}

/// Insert `body` under `name` unless a file has that name; the body kept either way.
pub fn put_once(
    conn: &dyn Sql,
    name: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    conn.execute(
        "INSERT INTO files (name, body, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        params![name, body, now_ms],
    )?;
    Ok(get(conn, name)?.unwrap_or_default())
}

pub fn get(conn: &dyn Sql, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT body FROM files WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn exists(conn: &dyn Sql, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM files WHERE name = ?1", params![name], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

pub fn delete(conn: &dyn Sql, name: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM files WHERE name = ?1", params![name])?;
    Ok(())
}

/// Delete the files created before `before_ms` whose names end with `suffix`; how many.
pub fn purge(conn: &dyn Sql, suffix: &str, before_ms: i64) -> Result<u64, StoreError> {
    Ok(conn.execute(
        "DELETE FROM files WHERE created_ms < ?1 AND substr(name, length(name) - length(?2) + 1) = ?2",
        params![before_ms, suffix],
    )? as u64)
}
