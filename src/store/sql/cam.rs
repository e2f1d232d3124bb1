//! CAM rows: sub-users, access keys, custom policies and attachments (migration 0003). The rules live in
//! `store::cam` (what a write checks) and `cam::actions` (names, limits, who may do what); here only reads
//! and writes, inside the caller's transaction.

use std::collections::HashMap;

use super::{Backend, OptionalExtension, Row, Sql, params};

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    pub uin: u64,
    pub policy_id: u64,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub secret_id: String,
    pub secret_key: String,
    pub uin: u64,
    pub active: bool,
    pub description: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub policy_id: u64,
    pub name: String,
    pub description: String,
    pub document: String,
    /// `[{"Key": .., "Value": ..}]` as JSON text.
    pub tags: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Everything CAM evaluates requests with, read in one transaction.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub users: Vec<UserRow>,
    pub keys: Vec<KeyRow>,
    pub policies: Vec<PolicyRow>,
    pub attachments: Vec<AttachmentRow>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    pub uin: u64,
    pub uid: u64,
    pub name: String,
    pub remark: String,
    pub console_login: u64,
    pub phone_num: String,
    pub country_code: String,
    pub email: String,
    pub created_ms: i64,
}

/// Sub-users' uins start above this (the main account's uin is configured, 100000000001 by default).
const FIRST_USER_UIN: i64 = 200_000_000_000;
/// Custom policies' ids start above this; presets use small ids.
const FIRST_POLICY_ID: i64 = 100_000_000;

const USER_COLUMNS: &str =
    "uin, uid, name, remark, console_login, phone_num, country_code, email, created_ms";

fn user(row: &Row) -> super::Result<UserRow> {
    Ok(UserRow {
        uin: row.get::<_, i64>(0)? as u64,
        uid: row.get::<_, i64>(1)? as u64,
        name: row.get(2)?,
        remark: row.get(3)?,
        console_login: row.get::<_, i64>(4)? as u64,
        phone_num: row.get(5)?,
        country_code: row.get(6)?,
        email: row.get(7)?,
        created_ms: row.get(8)?,
    })
}

const KEY_COLUMNS: &str = "secret_id, secret_key, uin, active, description, created_ms";

fn key(row: &Row) -> super::Result<KeyRow> {
    Ok(KeyRow {
        secret_id: row.get(0)?,
        secret_key: row.get(1)?,
        uin: row.get::<_, i64>(2)? as u64,
        active: row.get::<_, i64>(3)? != 0,
        description: row.get(4)?,
        created_ms: row.get(5)?,
    })
}

const POLICY_COLUMNS: &str = "policy_id, name, description, document, tags, created_ms, updated_ms";

fn policy(row: &Row) -> super::Result<PolicyRow> {
    policy_at(row, 0)
}

/// The `POLICY_COLUMNS` from column `at` on.
fn policy_at(row: &Row, at: usize) -> super::Result<PolicyRow> {
    Ok(PolicyRow {
        policy_id: row.get::<_, i64>(at)? as u64,
        name: row.get(at + 1)?,
        description: row.get(at + 2)?,
        document: row.get(at + 3)?,
        tags: row.get(at + 4)?,
        created_ms: row.get(at + 5)?,
        updated_ms: row.get(at + 6)?,
    })
}

fn attachment(row: &Row) -> super::Result<AttachmentRow> {
    Ok(AttachmentRow {
        uin: row.get::<_, i64>(0)? as u64,
        policy_id: row.get::<_, i64>(1)? as u64,
        created_ms: row.get(2)?,
    })
}

fn all<T>(
    conn: &dyn Sql,
    sql: &str,
    f: fn(&Row) -> super::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![], f)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn snapshot(conn: &dyn Sql) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        users: users(conn)?,
        keys: all(
            conn,
            &format!("SELECT {KEY_COLUMNS} FROM cam_access_keys ORDER BY created_ms, secret_id"),
            key,
        )?,
        policies: policies(conn)?,
        attachments: attachments(conn)?,
    })
}

pub fn users(conn: &dyn Sql) -> Result<Vec<UserRow>, StoreError> {
    all(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM cam_users ORDER BY uin"),
        user,
    )
}

pub fn policies(conn: &dyn Sql) -> Result<Vec<PolicyRow>, StoreError> {
    all(
        conn,
        &format!("SELECT {POLICY_COLUMNS} FROM cam_policies ORDER BY policy_id"),
        policy,
    )
}

pub fn attachments(conn: &dyn Sql) -> Result<Vec<AttachmentRow>, StoreError> {
    all(
        conn,
        "SELECT uin, policy_id, created_ms FROM cam_attachments ORDER BY uin, created_ms, policy_id",
        attachment,
    )
}

// ---- users

pub fn user_by_name(conn: &dyn Sql, name: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM cam_users WHERE name = ?1"),
            [name],
            user,
        )
        .optional()?)
}

pub fn user_by_uin(conn: &dyn Sql, uin: u64) -> Result<Option<UserRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM cam_users WHERE uin = ?1"),
            [uin as i64],
            user,
        )
        .optional()?)
}

pub fn count_users(conn: &dyn Sql) -> Result<u64, StoreError> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM cam_users", params![], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

/// The next identifier of sequence `name` (`cam_sequences`, migration 0004): one more than any it handed
/// out before and than any in `column` of `table` (rows inserted otherwise), never one given before, even
/// when its row was deleted since. Inside the caller's transaction: a rolled-back insert gives its
/// identifier back.
fn next_id(
    conn: &dyn Sql,
    name: &str,
    table: &str,
    column: &str,
    first: i64,
) -> Result<i64, StoreError> {
    // The larger of two values: SQLite's two-argument MAX, PostgreSQL's GREATEST.
    let larger = match conn.backend() {
        Backend::Sqlite => "MAX",
        Backend::Postgres => "GREATEST",
    };
    Ok(conn.query_row(
        &format!(
            "INSERT INTO cam_sequences (name, last)
                 VALUES (?1, {larger}((SELECT COALESCE(MAX({column}), 0) FROM {table}), ?2) + 1)
             ON CONFLICT (name) DO UPDATE
                 SET last = {larger}(cam_sequences.last, (SELECT COALESCE(MAX({column}), 0) FROM {table})) + 1
             RETURNING last"
        ),
        params![name, first],
        |r| r.get(0),
    )?)
}

/// Insert a user with the next uin and uid (never those of a deleted user); returns (uin, uid).
pub fn insert_user(conn: &dyn Sql, row: &UserRow) -> Result<(u64, u64), StoreError> {
    let uin = next_id(conn, "user_uin", "cam_users", "uin", FIRST_USER_UIN)?;
    let uid = (uin - FIRST_USER_UIN) as u64;
    conn.execute(
        "INSERT INTO cam_users (uin, uid, name, remark, console_login, phone_num, country_code, email, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            uin,
            uid as i64,
            row.name,
            row.remark,
            row.console_login as i64,
            row.phone_num,
            row.country_code,
            row.email,
            row.created_ms
        ],
    )?;
    Ok((uin as u64, uid))
}

/// Delete a user, its keys and its attachments.
pub fn delete_user(conn: &dyn Sql, uin: u64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cam_access_keys WHERE uin = ?1", [uin as i64])?;
    conn.execute("DELETE FROM cam_users WHERE uin = ?1", [uin as i64])?;
    Ok(())
}

// ---- keys

pub fn keys_of(conn: &dyn Sql, uin: u64) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {KEY_COLUMNS} FROM cam_access_keys WHERE uin = ?1 ORDER BY created_ms, secret_id"
    ))?;
    let rows = stmt.query_map([uin as i64], key)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn key_by_id(conn: &dyn Sql, secret_id: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {KEY_COLUMNS} FROM cam_access_keys WHERE secret_id = ?1"),
            [secret_id],
            key,
        )
        .optional()?)
}

pub fn insert_key(conn: &dyn Sql, row: &KeyRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cam_access_keys (secret_id, secret_key, uin, active, description, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            row.secret_id,
            row.secret_key,
            row.uin as i64,
            row.active as i64,
            row.description,
            row.created_ms
        ],
    )?;
    Ok(())
}

pub fn set_key_active(conn: &dyn Sql, secret_id: &str, active: bool) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE cam_access_keys SET active = ?2 WHERE secret_id = ?1",
        params![secret_id, active as i64],
    )?;
    Ok(())
}

pub fn delete_key(conn: &dyn Sql, secret_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM cam_access_keys WHERE secret_id = ?1",
        [secret_id],
    )?;
    Ok(())
}

// ---- policies

pub fn policy_by_id(conn: &dyn Sql, policy_id: u64) -> Result<Option<PolicyRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {POLICY_COLUMNS} FROM cam_policies WHERE policy_id = ?1"),
            [policy_id as i64],
            policy,
        )
        .optional()?)
}

pub fn policy_by_name(conn: &dyn Sql, name: &str) -> Result<Option<PolicyRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {POLICY_COLUMNS} FROM cam_policies WHERE name = ?1"),
            [name],
            policy,
        )
        .optional()?)
}

pub fn count_policies(conn: &dyn Sql) -> Result<u64, StoreError> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM cam_policies", params![], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

/// Insert a custom policy with the next id (never that of a deleted policy); returns it.
pub fn insert_policy(conn: &dyn Sql, row: &PolicyRow) -> Result<u64, StoreError> {
    let id = next_id(
        conn,
        "policy_id",
        "cam_policies",
        "policy_id",
        FIRST_POLICY_ID,
    )?;
    conn.execute(
        "INSERT INTO cam_policies (policy_id, name, description, document, tags, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            row.name,
            row.description,
            row.document,
            row.tags,
            row.created_ms,
            row.updated_ms
        ],
    )?;
    Ok(id as u64)
}

pub fn update_policy(conn: &dyn Sql, row: &PolicyRow) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE cam_policies SET description = ?2, document = ?3, updated_ms = ?4 WHERE policy_id = ?1",
        params![
            row.policy_id as i64,
            row.description,
            row.document,
            row.updated_ms
        ],
    )?;
    Ok(())
}

/// Delete a custom policy and its attachments.
pub fn delete_policy(conn: &dyn Sql, policy_id: u64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM cam_attachments WHERE policy_id = ?1",
        [policy_id as i64],
    )?;
    conn.execute(
        "DELETE FROM cam_policies WHERE policy_id = ?1",
        [policy_id as i64],
    )?;
    Ok(())
}

// ---- attachments

pub fn attachments_of(conn: &dyn Sql, uin: u64) -> Result<Vec<AttachmentRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT uin, policy_id, created_ms FROM cam_attachments WHERE uin = ?1 ORDER BY created_ms, policy_id",
    )?;
    let rows = stmt.query_map([uin as i64], attachment)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many users each policy id is attached to.
pub fn attachment_counts(conn: &dyn Sql) -> Result<HashMap<u64, u64>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT policy_id, COUNT(*) FROM cam_attachments GROUP BY policy_id")?;
    let rows = stmt.query_map(params![], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The attachments of `uin`, oldest first, each with its custom policy (`None` when the id is no stored
/// policy's: a preset's).
pub fn attached_policies(
    conn: &dyn Sql,
    uin: u64,
) -> Result<Vec<(AttachmentRow, Option<PolicyRow>)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT a.uin, a.policy_id, a.created_ms,
                p.policy_id, p.name, p.description, p.document, p.tags, p.created_ms, p.updated_ms
         FROM cam_attachments a LEFT JOIN cam_policies p ON p.policy_id = a.policy_id
         WHERE a.uin = ?1 ORDER BY a.created_ms, a.policy_id",
    )?;
    let rows = stmt.query_map([uin as i64], |r| {
        let policy = match r.get::<_, Option<i64>>(3)? {
            Some(_) => Some(policy_at(r, 3)?),
            None => None,
        };
        Ok((attachment(r)?, policy))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Attach; returns false when it already was.
pub fn attach(conn: &dyn Sql, row: &AttachmentRow) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO cam_attachments (uin, policy_id, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![row.uin as i64, row.policy_id as i64, row.created_ms],
    )?;
    Ok(n > 0)
}

/// Detach; returns false when it was not attached.
pub fn detach(conn: &dyn Sql, uin: u64, policy_id: u64) -> Result<bool, StoreError> {
    let n = conn.execute(
        "DELETE FROM cam_attachments WHERE uin = ?1 AND policy_id = ?2",
        params![uin as i64, policy_id as i64],
    )?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserRow {
        UserRow {
            name: name.into(),
            ..Default::default()
        }
    }

    fn policy(name: &str) -> PolicyRow {
        PolicyRow {
            policy_id: 0,
            name: name.into(),
            description: String::new(),
            document: "{}".into(),
            tags: "[]".into(),
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn deleted_users_and_policies_leave_their_identifiers_unused() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let conn = rusqlite::Connection::open(store.database_file().unwrap()).unwrap();
        let (a, uid_a) = insert_user(&conn, &user("a")).unwrap();
        assert_eq!((a, uid_a), (FIRST_USER_UIN as u64 + 1, 1));
        let (b, _) = insert_user(&conn, &user("b")).unwrap();
        delete_user(&conn, b).unwrap();
        let (c, uid_c) = insert_user(&conn, &user("c")).unwrap();
        assert_eq!((c, uid_c), (b + 1, 3), "b's uin is not given again");
        delete_user(&conn, a).unwrap();
        delete_user(&conn, c).unwrap();
        let (d, _) = insert_user(&conn, &user("d")).unwrap();
        assert_eq!(d, c + 1, "not even when no user is left");

        let p = insert_policy(&conn, &policy("p")).unwrap();
        delete_policy(&conn, p).unwrap();
        assert_eq!(insert_policy(&conn, &policy("q")).unwrap(), p + 1);
    }

    #[test]
    fn the_sequence_follows_rows_inserted_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let mut conn = rusqlite::Connection::open(store.database_file().unwrap()).unwrap();
        {
            let tx = conn.transaction().unwrap();
            insert_user(&*tx, &user("gone")).unwrap();
        }
        // A row inserted past the sequence (as a database from before migration 0004 had them).
        conn.execute(
            "INSERT INTO cam_users (uin, uid, name, created_ms) VALUES (200000000050, 50, 'old', 0)",
            [],
        )
        .unwrap();
        assert_eq!(insert_user(&conn, &user("new")).unwrap().0, 200_000_000_051);
    }

    #[test]
    fn migration_4_starts_above_the_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn =
                rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
            rusqlite_migration::Migrations::new(
                crate::store::sqlite::MIGRATIONS[..3]
                    .iter()
                    .map(|sql| rusqlite_migration::M::up(sql))
                    .collect(),
            )
            .to_latest(&mut conn)
            .unwrap();
            conn.execute_batch(
                "INSERT INTO cam_users (uin, uid, name, created_ms) VALUES (200000000007, 7, 'u', 0);
                 INSERT INTO cam_policies (policy_id, name, document, created_ms, updated_ms)
                     VALUES (100000000009, 'p', '{}', 0, 0);",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(dir.path()).unwrap();
        let conn = rusqlite::Connection::open(store.database_file().unwrap()).unwrap();
        let last: Vec<(String, i64)> = conn
            .prepare("SELECT name, last FROM cam_sequences ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            last,
            [
                ("policy_id".to_owned(), 100_000_000_009),
                ("user_uin".to_owned(), 200_000_000_007)
            ]
        );
        delete_user(&conn, 200_000_000_007).unwrap();
        assert_eq!(insert_user(&conn, &user("v")).unwrap().0, 200_000_000_008);
    }
}
