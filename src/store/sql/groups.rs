//! Group rows. Business rules (id charset, lengths, limits) are the action layer's; this module keeps the
//! database consistent: unique ids and names, and persons that leave with their last group.

use super::{OptionalExtension, Row, Sql, params};

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub group_id: String,
    pub name: String,
    pub tag: String,
    pub ex_descriptions: Vec<String>,
    pub face_model_version: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub serving_model: String,
    /// Where the group is moving (`Target`), and what it served before its last upgrade.
    pub target: Option<Target>,
    pub previous: Option<(String, String)>,
}

pub struct NewGroup {
    pub group_id: String,
    pub name: String,
    pub tag: String,
    pub ex_descriptions: Vec<String>,
    pub face_model_version: String,
    /// The network the group's index holds embeddings of (a model file).
    pub serving_model: String,
}

/// A group's move to another version or network: it keeps serving what it serves until every face has an
/// embedding of `model`, then switches at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub version: String,
    pub model: String,
    /// The upgrade job behind the move; `None` when a version's network changed.
    pub job: Option<String>,
}

/// The values an update sets; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct GroupChange {
    pub name: Option<String>,
    pub tag: Option<String>,
    pub ex_descriptions: Option<Vec<String>>,
}

const COLUMNS: &str = "group_id, name, tag, ex_descriptions, face_model_version, created_ms, updated_ms, \
     serving_model, target_version, target_model, target_job, previous_version, previous_model";

fn from_row(row: &Row) -> super::Result<GroupRow> {
    let ex: String = row.get(3)?;
    Ok(GroupRow {
        group_id: row.get(0)?,
        name: row.get(1)?,
        tag: row.get(2)?,
        ex_descriptions: serde_json::from_str(&ex).unwrap_or_default(),
        face_model_version: row.get(4)?,
        created_ms: row.get(5)?,
        updated_ms: row.get(6)?,
        serving_model: row.get(7)?,
        target: match (
            row.get::<_, Option<String>>(8)?,
            row.get::<_, Option<String>>(9)?,
        ) {
            (Some(version), Some(model)) => Some(Target {
                version,
                model,
                job: row.get(10)?,
            }),
            _ => None,
        },
        previous: match (
            row.get::<_, Option<String>>(11)?,
            row.get::<_, Option<String>>(12)?,
        ) {
            (Some(version), Some(model)) => Some((version, model)),
            _ => None,
        },
    })
}

pub fn count(conn: &dyn Sql) -> Result<u64, StoreError> {
    Ok(
        conn.query_row("SELECT count(*) FROM groups", params![], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

fn name_taken(conn: &dyn Sql, name: &str, except_group: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM groups WHERE name = ?1 AND group_id <> ?2",
            params![name, except_group],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn insert(conn: &dyn Sql, group: &NewGroup, now_ms: i64) -> Result<GroupRow, StoreError> {
    if find(conn, &group.group_id)?.is_some() {
        return Err(StoreError::GroupIdTaken);
    }
    if name_taken(conn, &group.name, &group.group_id)? {
        return Err(StoreError::GroupNameTaken);
    }
    let ex = serde_json::to_string(&group.ex_descriptions).expect("strings serialize");
    conn.execute(
        "INSERT INTO groups (group_id, name, tag, ex_descriptions, face_model_version, created_ms, updated_ms,
         serving_model) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![
            group.group_id,
            group.name,
            group.tag,
            ex,
            group.face_model_version,
            now_ms,
            group.serving_model
        ],
    )?;
    get(conn, &group.group_id)
}

pub fn find(conn: &dyn Sql, group_id: &str) -> Result<Option<GroupRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM groups WHERE group_id = ?1"),
            [group_id],
            from_row,
        )
        .optional()?)
}

pub fn get(conn: &dyn Sql, group_id: &str) -> Result<GroupRow, StoreError> {
    find(conn, group_id)?.ok_or(StoreError::GroupNotFound)
}

/// Groups in creation order.
pub fn list(conn: &dyn Sql, offset: u64, limit: u64) -> Result<Vec<GroupRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM groups ORDER BY rowid LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map(params![limit as i64, offset as i64], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update(
    conn: &dyn Sql,
    group_id: &str,
    change: GroupChange,
    now_ms: i64,
) -> Result<GroupRow, StoreError> {
    let mut group = get(conn, group_id)?;
    if let Some(name) = change.name {
        if name_taken(conn, &name, group_id)? {
            return Err(StoreError::GroupNameTaken);
        }
        group.name = name;
    }
    if let Some(tag) = change.tag {
        group.tag = tag;
    }
    if let Some(ex) = change.ex_descriptions {
        group.ex_descriptions = ex;
    }
    group.updated_ms = now_ms;
    conn.execute(
        "UPDATE groups SET name = ?2, tag = ?3, ex_descriptions = ?4, updated_ms = ?5 WHERE group_id = ?1",
        params![
            group_id,
            group.name,
            group.tag,
            serde_json::to_string(&group.ex_descriptions).expect("strings serialize"),
            now_ms
        ],
    )?;
    Ok(group)
}

/// Start moving a group to `target` (it keeps serving what it serves meanwhile).
pub fn set_target(conn: &dyn Sql, group_id: &str, target: &Target) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE groups SET target_version = ?2, target_model = ?3, target_job = ?4 WHERE group_id = ?1",
        params![group_id, target.version, target.model, target.job],
    )?;
    Ok(())
}

/// Complete a move: the group serves its target version and network; an upgrade (version change) keeps
/// what it served before for one revert.
pub fn switch_to_target(
    conn: &dyn Sql,
    group_id: &str,
    now_ms: i64,
) -> Result<GroupRow, StoreError> {
    let group = get(conn, group_id)?;
    let Some(target) = &group.target else {
        return Ok(group);
    };
    let upgrade = target.version != group.face_model_version;
    conn.execute(
        "UPDATE groups SET
             previous_version = CASE WHEN ?2 THEN face_model_version ELSE previous_version END,
             previous_model = CASE WHEN ?2 THEN serving_model ELSE previous_model END,
             face_model_version = target_version, serving_model = target_model,
             target_version = NULL, target_model = NULL, target_job = NULL, updated_ms = ?3
         WHERE group_id = ?1",
        params![group_id, upgrade, now_ms],
    )?;
    get(conn, group_id)
}

/// Give up a move (the upgrade failed): the group keeps serving what it serves.
pub fn clear_target(conn: &dyn Sql, group_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE groups SET target_version = NULL, target_model = NULL, target_job = NULL WHERE group_id = ?1",
        [group_id],
    )?;
    Ok(())
}

/// Go back to what the group served before its last upgrade (once: the record of it is cleared).
pub fn revert(conn: &dyn Sql, group_id: &str, now_ms: i64) -> Result<GroupRow, StoreError> {
    conn.execute(
        "UPDATE groups SET face_model_version = previous_version, serving_model = previous_model,
             previous_version = NULL, previous_model = NULL, updated_ms = ?2
         WHERE group_id = ?1 AND previous_version IS NOT NULL",
        params![group_id, now_ms],
    )?;
    get(conn, group_id)
}

/// Groups that are moving, oldest first.
pub fn moving(conn: &dyn Sql) -> Result<Vec<GroupRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM groups WHERE target_model IS NOT NULL ORDER BY rowid"
    ))?;
    let rows = stmt.query_map(params![], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Delete a group. Persons that were only in this group go with it (their faces and embeddings cascade);
/// persons also in other groups stay, losing only this group's custom field values.
pub fn delete(conn: &dyn Sql, group_id: &str) -> Result<(), StoreError> {
    get(conn, group_id)?;
    conn.execute(
        "DELETE FROM persons WHERE person_id IN (
             SELECT m.person_id FROM group_members m WHERE m.group_id = ?1
             AND NOT EXISTS (SELECT 1 FROM group_members o WHERE o.person_id = m.person_id AND o.group_id <> ?1))",
        [group_id],
    )?;
    conn.execute("DELETE FROM groups WHERE group_id = ?1", [group_id])?;
    // An upgrade of the group that was still running can no longer finish: it failed.
    conn.execute(
        "UPDATE jobs SET status = ?3, progress = 100, finished_ms = ?4
         WHERE kind = ?1 AND group_id = ?2 AND status = ?5",
        params![
            super::jobs::UPGRADE,
            group_id,
            super::jobs::UPGRADE_FAILED,
            crate::store::now_ms(),
            super::jobs::UPGRADING
        ],
    )?;
    Ok(())
}

/// (persons, faces) in a group; a face counts once for each group that holds its person.
pub fn counts(conn: &dyn Sql, group_id: &str) -> Result<(u64, u64), StoreError> {
    get(conn, group_id)?;
    let persons: i64 = conn.query_row(
        "SELECT count(*) FROM group_members WHERE group_id = ?1",
        [group_id],
        |r| r.get(0),
    )?;
    Ok((
        persons as u64,
        super::persons::group_face_count(conn, group_id)?,
    ))
}

/// Faces of every group (a face counts once for each group that holds its person): the counts the
/// triggers keep (migration 0006), not a scan of every face.
pub fn face_counts(conn: &dyn Sql) -> Result<std::collections::HashMap<String, u64>, StoreError> {
    let mut stmt = conn.prepare("SELECT group_id, face_count FROM groups")?;
    let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn group(id: &str, name: &str) -> NewGroup {
        NewGroup {
            group_id: id.into(),
            name: name.into(),
            tag: String::new(),
            ex_descriptions: vec!["a".into()],
            face_model_version: "3.0".into(),
            serving_model: "mobilefacenet_192.onnx".into(),
        }
    }

    #[test]
    fn delete_group_keeps_persons_of_other_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.sqlite().conn.lock();
        insert(&*conn, &group("g1", "one"), 1).unwrap();
        insert(&*conn, &group("g2", "two"), 1).unwrap();
        assert!(matches!(
            insert(&*conn, &group("g1", "x"), 1),
            Err(StoreError::GroupIdTaken)
        ));
        assert!(matches!(
            insert(&*conn, &group("g3", "two"), 1),
            Err(StoreError::GroupNameTaken)
        ));
        conn.execute_batch(
            "INSERT INTO persons VALUES ('only', 'A', 0, 1, 1), ('both', 'B', 0, 1, 1);
             INSERT INTO group_members VALUES ('g1', 'only', '[]', 1), ('g1', 'both', '[]', 1), ('g2', 'both', '[]', 1);
             INSERT INTO faces VALUES ('f1', 'only', 0, 0, 1, 1, NULL, x'00', '[]', 1), ('f2', 'both', 0, 0, 1, 1, NULL, x'00', '[]', 1);",
        )
        .unwrap();
        assert_eq!(counts(&*conn, "g1").unwrap(), (2, 2));
        assert_eq!(face_counts(&*conn).unwrap().get("g2"), Some(&1));
        delete(&*conn, "g1").unwrap();
        let persons: Vec<String> = conn
            .prepare("SELECT person_id FROM persons")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(persons, vec!["both".to_string()]);
        assert_eq!(counts(&*conn, "g2").unwrap(), (1, 1));
        assert!(matches!(get(&*conn, "g1"), Err(StoreError::GroupNotFound)));
    }
}
