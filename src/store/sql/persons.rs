//! Persons, their group memberships (with custom field values) and their faces with embeddings. A person
//! is global; it lives while it is in at least one group. The rules are the named operations'
//! (`store/persons.rs`).

use super::vectors::decode;
use super::{OptionalExtension, Sql, params};

use crate::store::StoreError;

/// A person's custom field values in one group, by field index (None = unset).
pub type ExValues = Vec<Option<String>>;

/// The networks a person's faces need embeddings of: what each of its groups serves, and where each is
/// moving. `serving` lists only the former (a face without those would be missing from a live index).
pub struct NeededModels {
    pub serving: Vec<String>,
    pub all: Vec<String>,
}

/// A face to store: its id, box in the source image, loose crop and landmarks (for re-extraction), and
/// its embedding for the person's model version.
#[derive(Debug, Clone)]
pub struct NewFace {
    pub face_id: String,
    pub rect: [i64; 4],
    pub crop_png: Vec<u8>,
    pub landmarks: String,
    pub quality: Option<f64>,
    /// The face's embeddings, by network (model file): one for each network its person's groups serve or
    /// are moving to.
    pub vectors: Vec<(String, Vec<f32>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonRow {
    pub person_id: String,
    pub name: String,
    pub gender: i64,
    pub created_ms: i64,
}

pub fn find(conn: &dyn Sql, person_id: &str) -> Result<Option<PersonRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT person_id, name, gender, created_ms FROM persons WHERE person_id = ?1",
            [person_id],
            |r| {
                Ok(PersonRow {
                    person_id: r.get(0)?,
                    name: r.get(1)?,
                    gender: r.get(2)?,
                    created_ms: r.get(3)?,
                })
            },
        )
        .optional()?)
}

pub fn get(conn: &dyn Sql, person_id: &str) -> Result<PersonRow, StoreError> {
    find(conn, person_id)?.ok_or(StoreError::PersonNotFound)
}

pub fn insert(
    conn: &dyn Sql,
    person_id: &str,
    name: &str,
    gender: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    if find(conn, person_id)?.is_some() {
        return Err(StoreError::PersonIdTaken);
    }
    conn.execute(
        "INSERT INTO persons (person_id, name, gender, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![person_id, name, gender, now_ms],
    )?;
    Ok(())
}

pub fn update(
    conn: &dyn Sql,
    person_id: &str,
    name: Option<&str>,
    gender: Option<i64>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let person = get(conn, person_id)?;
    conn.execute(
        "UPDATE persons SET name = ?2, gender = ?3, updated_ms = ?4 WHERE person_id = ?1",
        params![
            person_id,
            name.unwrap_or(&person.name),
            gender.unwrap_or(person.gender),
            now_ms
        ],
    )?;
    Ok(())
}

/// Delete a person with its memberships, faces and embeddings.
pub fn delete(conn: &dyn Sql, person_id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM persons WHERE person_id = ?1", [person_id])?;
    Ok(())
}

pub fn add_member(
    conn: &dyn Sql,
    group_id: &str,
    person_id: &str,
    ex_values: &[Option<String>],
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO group_members (group_id, person_id, ex_values, joined_ms) VALUES (?1, ?2, ?3, ?4)",
        params![
            group_id,
            person_id,
            serde_json::to_string(ex_values).expect("strings serialize"),
            now_ms
        ],
    )?;
    Ok(())
}

pub fn remove_member(conn: &dyn Sql, group_id: &str, person_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM group_members WHERE group_id = ?1 AND person_id = ?2",
        params![group_id, person_id],
    )? > 0)
}

/// The custom field values of a person in a group (None when the person is not in the group).
pub fn member_values(
    conn: &dyn Sql,
    group_id: &str,
    person_id: &str,
) -> Result<Option<ExValues>, StoreError> {
    let text: Option<String> = conn
        .query_row(
            "SELECT ex_values FROM group_members WHERE group_id = ?1 AND person_id = ?2",
            params![group_id, person_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or_default()))
}

pub fn set_member_values(
    conn: &dyn Sql,
    group_id: &str,
    person_id: &str,
    values: &[Option<String>],
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE group_members SET ex_values = ?3 WHERE group_id = ?1 AND person_id = ?2",
        params![
            group_id,
            person_id,
            serde_json::to_string(values).expect("strings serialize")
        ],
    )?;
    Ok(())
}

/// The groups of a person, in the order it joined them, with its values there.
pub fn groups_of(conn: &dyn Sql, person_id: &str) -> Result<Vec<(String, ExValues)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT group_id, ex_values FROM group_members WHERE person_id = ?1 ORDER BY joined_ms, rowid",
    )?;
    let rows = stmt.query_map([person_id], |r| {
        let text: String = r.get(1)?;
        Ok((r.get(0)?, serde_json::from_str(&text).unwrap_or_default()))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The ids of a person's groups, in the order it joined them.
pub fn group_ids(conn: &dyn Sql, person_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(groups_of(conn, person_id)?
        .into_iter()
        .map(|(g, _)| g)
        .collect())
}

/// A person's model version: that of its groups (they all share one); None for a person without groups.
pub fn model_version(conn: &dyn Sql, person_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT g.face_model_version FROM group_members m JOIN groups g ON g.group_id = m.group_id
             WHERE m.person_id = ?1 LIMIT 1",
            [person_id],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn needed_models(conn: &dyn Sql, person_id: &str) -> Result<NeededModels, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT g.serving_model, g.target_model FROM group_members m JOIN groups g ON g.group_id = m.group_id
         WHERE m.person_id = ?1",
    )?;
    let rows = stmt.query_map([person_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    let (mut serving, mut all) = (Vec::new(), Vec::new());
    for row in rows {
        let (model, target) = row?;
        for m in std::iter::once(&model).chain(target.as_ref()) {
            if !all.contains(m) {
                all.push(m.clone());
            }
        }
        if !serving.contains(&model) {
            serving.push(model);
        }
    }
    Ok(NeededModels { serving, all })
}

/// The version and network of the person's first group (groups of one person agree, unless one of them was
/// upgraded), for comparisons with the person's stored faces; None for a person without groups.
pub fn serving(conn: &dyn Sql, person_id: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT g.face_model_version, g.serving_model FROM group_members m
             JOIN groups g ON g.group_id = m.group_id WHERE m.person_id = ?1 ORDER BY m.rowid LIMIT 1",
            [person_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Stored crops of the person's faces without an embedding by `model`.
pub fn crops_missing(
    conn: &dyn Sql,
    person_id: &str,
    model: &str,
) -> Result<Vec<super::vectors::StoredCrop>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT f.face_id, f.person_id, f.crop_png, f.landmarks FROM faces f WHERE f.person_id = ?1
           AND NOT EXISTS (SELECT 1 FROM face_vectors v WHERE v.face_id = f.face_id AND v.model = ?2)
           AND NOT EXISTS (SELECT 1 FROM face_vector_failures x WHERE x.face_id = f.face_id AND x.model = ?2)",
    )?;
    let rows = stmt.query_map(params![person_id, model], |r| {
        Ok(super::vectors::StoredCrop {
            face_id: r.get(0)?,
            person_id: r.get(1)?,
            crop_png: r.get(2)?,
            landmarks: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Persons of a group in the order they joined, with their values there.
pub fn members(
    conn: &dyn Sql,
    group_id: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<(PersonRow, ExValues)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT p.person_id, p.name, p.gender, p.created_ms, m.ex_values FROM group_members m
         JOIN persons p ON p.person_id = m.person_id WHERE m.group_id = ?1
         ORDER BY m.joined_ms, m.rowid LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![group_id, limit as i64, offset as i64], |r| {
        let text: String = r.get(4)?;
        Ok((
            PersonRow {
                person_id: r.get(0)?,
                name: r.get(1)?,
                gender: r.get(2)?,
                created_ms: r.get(3)?,
            },
            serde_json::from_str(&text).unwrap_or_default(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Faces in a group: a face counts once for each group that holds its person.
pub fn group_face_count(conn: &dyn Sql, group_id: &str) -> Result<u64, StoreError> {
    // Kept by triggers (migration 0006): no scan of the group.
    Ok(conn.query_row(
        "SELECT face_count FROM groups WHERE group_id = ?1",
        [group_id],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

pub fn insert_face(
    conn: &dyn Sql,
    person_id: &str,
    face: &NewFace,
    now_ms: i64,
) -> Result<(), StoreError> {
    let [x, y, w, h] = face.rect;
    conn.execute(
        "INSERT INTO faces (face_id, person_id, rect_x, rect_y, rect_width, rect_height, quality, crop_png,
         landmarks, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            face.face_id,
            person_id,
            x,
            y,
            w,
            h,
            face.quality,
            face.crop_png,
            face.landmarks,
            now_ms
        ],
    )?;
    for (model, vector) in &face.vectors {
        super::vectors::insert(conn, &face.face_id, model, vector, now_ms)?;
    }
    Ok(())
}

pub fn delete_face(conn: &dyn Sql, person_id: &str, face_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM faces WHERE face_id = ?1 AND person_id = ?2",
        params![face_id, person_id],
    )? > 0)
}

/// A face's stored crop (PNG), if the face exists.
pub fn crop(conn: &dyn Sql, face_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT crop_png FROM faces WHERE face_id = ?1",
            [face_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Face ids of a person in the order they were added.
pub fn face_ids(conn: &dyn Sql, person_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT face_id FROM faces WHERE person_id = ?1 ORDER BY created_ms, rowid")?;
    let rows = stmt.query_map([person_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (face id, embedding) of a person's faces by one network (faces without one are left out).
pub fn embeddings(
    conn: &dyn Sql,
    person_id: &str,
    model: &str,
) -> Result<Vec<(String, Vec<f32>)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT f.face_id, e.embedding FROM faces f JOIN face_vectors e ON e.face_id = f.face_id
         WHERE f.person_id = ?1 AND e.model = ?2 ORDER BY f.created_ms, f.rowid",
    )?;
    let rows = stmt.query_map(params![person_id, model], |r| {
        let blob: Vec<u8> = r.get(1)?;
        Ok((r.get(0)?, decode(&blob)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every (group, person, face id, embedding) by the network each group serves, in no order (the loader
/// sorts nothing; PostgreSQL reads it with binary COPY, `postgres::sql::StartSnapshot`, where an ORDER BY
/// would sort a million vectors on disk).
pub const INDEXED_FACES: &str =
    "SELECT m.group_id, f.person_id, f.face_id, e.embedding FROM group_members m
     JOIN groups g ON g.group_id = m.group_id
     JOIN faces f ON f.person_id = m.person_id
     JOIN face_vectors e ON e.face_id = f.face_id AND e.model = g.serving_model";

/// Every (group, person, face id, embedding) by the network each group serves, for the start-up rebuild;
/// streamed to `each` so that a million faces are not held twice.
pub fn for_each_indexed_face(
    conn: &dyn Sql,
    mut each: impl FnMut(&str, &str, &str, Vec<f32>),
) -> Result<(), StoreError> {
    // SQLite walks group_members by its key: one group after another at no cost.
    let mut stmt = conn.prepare(&format!("{INDEXED_FACES} ORDER BY m.group_id"))?;
    stmt.for_each(params![], |row| {
        let group: String = row.get(0)?;
        let person: String = row.get(1)?;
        let face: String = row.get(2)?;
        let blob: Vec<u8> = row.get(3)?;
        each(&group, &person, &face, decode(&blob));
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::groups::NewGroup;
    use crate::store::sql::groups;

    /// An empty group `id` serving the network "m".
    fn new_group(conn: &dyn Sql, id: &str) {
        groups::insert(
            conn,
            &NewGroup {
                group_id: id.into(),
                name: id.into(),
                tag: String::new(),
                ex_descriptions: vec![],
                face_model_version: "3.0".into(),
                serving_model: "m".into(),
            },
            1,
        )
        .unwrap();
    }

    #[test]
    fn persons_leave_with_their_last_group_and_faces_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.sqlite().conn.lock();
        for id in ["g1", "g2"] {
            new_group(&*conn, id);
        }
        insert(&*conn, "p", "P", 1, 1).unwrap();
        assert!(matches!(
            insert(&*conn, "p", "P", 1, 1),
            Err(StoreError::PersonIdTaken)
        ));
        add_member(&*conn, "g1", "p", &[Some("v".into())], 1).unwrap();
        add_member(&*conn, "g2", "p", &[], 2).unwrap();
        let face = NewFace {
            face_id: "42".into(),
            rect: [1, 2, 3, 4],
            crop_png: vec![0],
            landmarks: "[]".into(),
            quality: None,
            vectors: vec![("m".into(), vec![0.5, -0.25]), ("n".into(), vec![1.0])],
        };
        insert_face(&*conn, "p", &face, 1).unwrap();
        assert_eq!(
            embeddings(&*conn, "p", "m").unwrap(),
            vec![("42".to_string(), vec![0.5, -0.25])]
        );
        assert_eq!(
            needed_models(&*conn, "p").unwrap().all,
            vec!["m".to_string()]
        );
        let mut seen = Vec::new();
        for_each_indexed_face(&*conn, |g, p, f, _| seen.push(format!("{g}/{p}/{f}"))).unwrap();
        assert_eq!(seen, vec!["g1/p/42", "g2/p/42"]);
        groups::delete(&*conn, "g1").unwrap();
        assert!(find(&*conn, "p").unwrap().is_some());
        assert_eq!(group_ids(&*conn, "p").unwrap(), vec!["g2".to_string()]);
        assert_eq!(model_version(&*conn, "p").unwrap().as_deref(), Some("3.0"));
        groups::delete(&*conn, "g2").unwrap();
        assert!(find(&*conn, "p").unwrap().is_none());
        assert!(face_ids(&*conn, "p").unwrap().is_empty());
    }

    /// The trigger-kept face count of every group equals a count of its members' faces, through adding,
    /// copying, deleting faces, removing members and deleting persons and groups (cascades included).
    #[test]
    fn group_face_counts_follow_every_kind_of_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.sqlite().conn.lock();
        // The ground truth: the members' faces counted by a join, not the trigger-kept column.
        let check = |conn: &dyn Sql| {
            let counted: std::collections::HashMap<String, u64> = conn
                .prepare(
                    "SELECT m.group_id, count(*) FROM group_members m
                     JOIN faces f ON f.person_id = m.person_id GROUP BY m.group_id",
                )
                .unwrap()
                .query_map(params![], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for id in ["g1", "g2", "g3"] {
                if groups::find(conn, id).unwrap().is_some() {
                    assert_eq!(
                        group_face_count(conn, id).unwrap(),
                        counted.get(id).copied().unwrap_or(0),
                        "group {id}"
                    );
                }
            }
        };
        for id in ["g1", "g2", "g3"] {
            new_group(&*conn, id);
        }
        let face = |id: &str| NewFace {
            face_id: id.into(),
            rect: [1, 2, 3, 4],
            crop_png: vec![0],
            landmarks: "[]".into(),
            quality: None,
            vectors: vec![("m".into(), vec![1.0])],
        };
        for (person, faces) in [
            ("p", ["1", "2", "3"].as_slice()),
            ("q", &["4"]),
            ("r", &["5", "6"]),
        ] {
            insert(&*conn, person, person, 0, 1).unwrap();
            add_member(&*conn, "g1", person, &[], 1).unwrap();
            for f in faces {
                insert_face(&*conn, person, &face(f), 1).unwrap();
            }
        }
        check(&*conn);
        assert_eq!(group_face_count(&*conn, "g1").unwrap(), 6);
        add_member(&*conn, "g2", "p", &[], 2).unwrap();
        add_member(&*conn, "g3", "p", &[], 2).unwrap();
        add_member(&*conn, "g2", "r", &[], 2).unwrap();
        check(&*conn);
        assert_eq!(group_face_count(&*conn, "g2").unwrap(), 5);
        delete_face(&*conn, "p", "2").unwrap();
        insert_face(&*conn, "q", &face("7"), 3).unwrap();
        check(&*conn);
        remove_member(&*conn, "g2", "r").unwrap();
        check(&*conn);
        delete(&*conn, "p").unwrap();
        check(&*conn);
        assert_eq!(group_face_count(&*conn, "g3").unwrap(), 0);
        groups::delete(&*conn, "g1").unwrap();
        check(&*conn);
        assert_eq!(group_face_count(&*conn, "g2").unwrap(), 0);
    }
}
