//! Face embeddings by network (`face_vectors`), and what a group's move to another network needs: the faces
//! still without an embedding of it, their stored crops, and the faces that could not be embedded.

use super::{OptionalExtension, Sql, params};

use crate::store::StoreError;
// The row is the store's (`store::embeddings`); re-exported for the SQL of persons that names it.

/// A face to embed again: its stored crop and the 5 landmarks in it.
pub struct StoredCrop {
    pub face_id: String,
    pub person_id: String,
    pub crop_png: Vec<u8>,
    pub landmarks: String,
}

pub fn insert(
    conn: &dyn Sql,
    face_id: &str,
    model: &str,
    vector: &[f32],
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO face_vectors (face_id, model, embedding, created_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (face_id, model) DO UPDATE SET embedding = excluded.embedding, created_ms = excluded.created_ms",
        params![face_id, model, encode(vector), now_ms],
    )?;
    // An earlier failure of this network on the face no longer holds.
    conn.execute(
        "DELETE FROM face_vector_failures WHERE face_id = ?1 AND model = ?2",
        params![face_id, model],
    )?;
    Ok(())
}

/// How many of the person's faces `model` could not embed (they stay stored, unindexed for that network).
pub fn failed_of_person(conn: &dyn Sql, person_id: &str, model: &str) -> Result<usize, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM faces f JOIN face_vector_failures x ON x.face_id = f.face_id AND x.model = ?2
         WHERE f.person_id = ?1",
        params![person_id, model],
        |r| r.get::<_, i64>(0),
    )? as usize)
}

/// Store what a network made of stored crops (face id, embedding or why not): embeddings, and failures
/// (logged and recorded; the face is kept). Faces deleted meanwhile are skipped.
pub fn save_embedded(
    conn: &dyn Sql,
    model: &str,
    embedded: &[(String, Result<Vec<f32>, String>)],
    now_ms: i64,
) -> Result<(), StoreError> {
    for (face_id, vector) in embedded {
        match vector {
            Ok(v) if face_exists(conn, face_id)? => insert(conn, face_id, model, v, now_ms)?,
            Ok(_) => {}
            Err(why) => {
                tracing::warn!(
                    face = face_id,
                    model,
                    reason = why,
                    "a stored face could not be embedded"
                );
                record_failure(conn, face_id, model, why, now_ms)?
            }
        }
    }
    Ok(())
}

/// Faces of the group's persons that have no embedding by `model` yet (and have not failed it): those of
/// the next `persons` persons after `after` (by PersonId, a range of the membership key, so a pass over a
/// large group reads each member once), and the last person looked at (None at the end of the group).
pub fn missing_after(
    conn: &dyn Sql,
    group_id: &str,
    model: &str,
    after: &str,
    persons: usize,
) -> Result<(Vec<StoredCrop>, Option<String>), StoreError> {
    let page: Vec<String> = conn
        .prepare(
            "SELECT person_id FROM group_members WHERE group_id = ?1 AND person_id > ?2
             ORDER BY person_id LIMIT ?3",
        )?
        .query_map(params![group_id, after, persons as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT f.face_id, f.person_id, f.crop_png, f.landmarks FROM faces f WHERE f.person_id = ?1
           AND NOT EXISTS (SELECT 1 FROM face_vectors v WHERE v.face_id = f.face_id AND v.model = ?2)
           AND NOT EXISTS (SELECT 1 FROM face_vector_failures x WHERE x.face_id = f.face_id AND x.model = ?2)",
    )?;
    let mut crops = Vec::new();
    for person in &page {
        let rows = stmt.query_map(params![person, model], |r| {
            Ok(StoredCrop {
                face_id: r.get(0)?,
                person_id: r.get(1)?,
                crop_png: r.get(2)?,
                landmarks: r.get(3)?,
            })
        })?;
        for row in rows {
            crops.push(row?);
        }
    }
    Ok((crops, page.last().cloned()))
}

/// Whether some face of the group's persons has no embedding by `model` and has not failed it (one pass
/// over the group: the check before a switch).
pub fn any_missing(conn: &dyn Sql, group_id: &str, model: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM group_members m JOIN faces f ON f.person_id = m.person_id
         WHERE m.group_id = ?1
           AND NOT EXISTS (SELECT 1 FROM face_vectors v WHERE v.face_id = f.face_id AND v.model = ?2)
           AND NOT EXISTS (SELECT 1 FROM face_vector_failures x WHERE x.face_id = f.face_id AND x.model = ?2))",
        params![group_id, model],
        |r| r.get(0),
    )?)
}

/// (faces of the group, of which with an embedding by `model`, of which failed): a move's progress.
pub fn progress(
    conn: &dyn Sql,
    group_id: &str,
    model: &str,
) -> Result<(u64, u64, u64), StoreError> {
    Ok(conn.query_row(
        "SELECT count(*),
                count(v.face_id),
                count(x.face_id)
         FROM group_members m JOIN faces f ON f.person_id = m.person_id
         LEFT JOIN face_vectors v ON v.face_id = f.face_id AND v.model = ?2
         LEFT JOIN face_vector_failures x ON x.face_id = f.face_id AND x.model = ?2
         WHERE m.group_id = ?1",
        params![group_id, model],
        |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )?)
}

pub fn record_failure(
    conn: &dyn Sql,
    face_id: &str,
    model: &str,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        // The cast: PostgreSQL reads a bare placeholder in a SELECT list as text.
        "INSERT INTO face_vector_failures (face_id, model, reason, failed_ms)
         SELECT ?1, ?2, ?3, CAST(?4 AS BIGINT) WHERE EXISTS (SELECT 1 FROM faces WHERE face_id = ?1)
         ON CONFLICT (face_id, model) DO UPDATE SET reason = excluded.reason, failed_ms = excluded.failed_ms",
        params![face_id, model, reason, now_ms],
    )?;
    Ok(())
}

/// (person id, face id, reason) of the group's faces `model` could not embed.
pub fn failures(
    conn: &dyn Sql,
    group_id: &str,
    model: &str,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT f.person_id, f.face_id, x.reason FROM group_members m
         JOIN faces f ON f.person_id = m.person_id
         JOIN face_vector_failures x ON x.face_id = f.face_id AND x.model = ?2
         WHERE m.group_id = ?1 ORDER BY f.person_id, f.face_id",
    )?;
    let rows = stmt.query_map(params![group_id, model], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Forget failures of a network for the group's faces (a retried upgrade tries them again).
pub fn clear_failures(conn: &dyn Sql, group_id: &str, model: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM face_vector_failures WHERE model = ?2 AND face_id IN (
             SELECT f.face_id FROM group_members m JOIN faces f ON f.person_id = m.person_id
             WHERE m.group_id = ?1)",
        params![group_id, model],
    )?;
    Ok(())
}

/// Every (person, face, embedding by `model`) of the group, for its index.
pub fn of_group(
    conn: &dyn Sql,
    group_id: &str,
    model: &str,
) -> Result<Vec<(String, String, Vec<f32>)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT f.person_id, f.face_id, v.embedding FROM group_members m
         JOIN faces f ON f.person_id = m.person_id
         JOIN face_vectors v ON v.face_id = f.face_id AND v.model = ?2
         WHERE m.group_id = ?1",
    )?;
    let rows = stmt.query_map(params![group_id, model], |r| {
        let blob: Vec<u8> = r.get(2)?;
        Ok((r.get(0)?, r.get(1)?, decode(&blob)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Delete the embeddings by `model` when no group serves it, moves to it, or may revert to it (they would
/// never be read). Cheap when some group still uses it; otherwise one pass over the embeddings, once per
/// network retired.
pub fn delete_if_unused(conn: &dyn Sql, model: &str) -> Result<usize, StoreError> {
    let used: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM groups
         WHERE serving_model = ?1 OR target_model = ?1 OR previous_model = ?1)",
        [model],
        |r| r.get(0),
    )?;
    if used {
        return Ok(0);
    }
    Ok(conn.execute("DELETE FROM face_vectors WHERE model = ?1", [model])?)
}

/// Whether the face a vector is for still exists.
pub fn face_exists(conn: &dyn Sql, face_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM faces WHERE face_id = ?1", [face_id], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

/// A vector as stored: its floats, little-endian.
pub fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
