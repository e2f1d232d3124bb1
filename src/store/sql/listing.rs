//! Reads across groups, persons and faces for listings and search hits.

use std::collections::HashMap;

use super::{Sql, params};

use super::groups;
use super::persons::{self, ExValues};
use crate::store::StoreError;

/// A person found by a search, and its values in the searched groups it is in.
#[derive(Debug, Clone, PartialEq)]
pub struct HitPerson {
    pub name: String,
    pub gender: i64,
    /// (group, the person's values there, the group's number of custom fields), in the order it joined.
    pub groups: Vec<(String, ExValues, usize)>,
}

/// Counts of the whole account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub groups: u64,
    pub persons: u64,
    pub faces: u64,
}

pub fn totals(conn: &dyn Sql) -> Result<Totals, StoreError> {
    let count = |sql: &str| {
        conn.query_row(sql, params![], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    };
    Ok(Totals {
        groups: count("SELECT count(*) FROM groups")?,
        persons: count("SELECT count(*) FROM persons")?,
        faces: count("SELECT count(*) FROM faces")?,
    })
}

pub fn person_in_group(
    conn: &dyn Sql,
    group_id: &str,
    person_id: &str,
) -> Result<bool, StoreError> {
    groups::get(conn, group_id)?;
    persons::get(conn, person_id)?;
    Ok(persons::group_ids(conn, person_id)?
        .iter()
        .any(|g| g == group_id))
}

pub fn hit_persons(
    conn: &dyn Sql,
    person_ids: Vec<String>,
    group_ids: &[String],
) -> Result<HashMap<String, HitPerson>, StoreError> {
    // Custom fields per searched group, read once for all persons.
    let mut fields = HashMap::new();
    for group_id in group_ids {
        fields.insert(
            group_id.as_str(),
            groups::get(conn, group_id)?.ex_descriptions.len(),
        );
    }
    let mut out = HashMap::new();
    for id in person_ids {
        if out.contains_key(&id) {
            continue;
        }
        let Some(person) = persons::find(conn, &id)? else {
            continue;
        };
        let groups = persons::groups_of(conn, &id)?
            .into_iter()
            .filter_map(|(group_id, values)| {
                let count = *fields.get(group_id.as_str())?;
                Some((group_id, values, count))
            })
            .collect();
        out.insert(
            id,
            HitPerson {
                name: person.name,
                gender: person.gender,
                groups,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};

    #[tokio::test]
    async fn listings_and_search_hits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .sqlite()
            .conn
            .lock()
            .execute_batch(
                r#"INSERT INTO groups (group_id, name, ex_descriptions, face_model_version, created_ms, updated_ms)
                       VALUES ('g1', 'one', '["a","b"]', '3.0', 1, 1), ('g2', 'two', '[]', '3.0', 1, 1);
                   INSERT INTO persons VALUES ('p', 'P', 1, 1, 1), ('q', 'Q', 2, 1, 1);
                   INSERT INTO group_members VALUES ('g1', 'p', '["x"]', 1), ('g2', 'p', '[]', 2), ('g2', 'q', '[]', 3);
                   INSERT INTO faces VALUES ('1', 'p', 0, 0, 1, 1, NULL, x'89', '[]', 1);"#,
            )
            .unwrap();
        let totals = store.totals().await.unwrap();
        assert_eq!((totals.groups, totals.persons, totals.faces), (2, 2, 1));
        assert!(
            store
                .person_in_group("g1".into(), "p".into())
                .await
                .unwrap()
        );
        assert!(
            !store
                .person_in_group("g1".into(), "q".into())
                .await
                .unwrap()
        );
        assert!(matches!(
            store.person_in_group("g1".into(), "z".into()).await,
            Err(StoreError::PersonNotFound)
        ));
        assert_eq!(store.face_crop("1".into()).await.unwrap(), Some(vec![0x89]));
        assert_eq!(store.face_crop("2".into()).await.unwrap(), None);

        let hits = store
            .hit_persons(
                vec!["p".into(), "p".into(), "gone".into()],
                vec!["g1".into()],
            )
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits["p"].groups,
            [("g1".to_string(), vec![Some("x".to_string())], 2)]
        );
        assert!(matches!(
            store.hit_persons(vec![], vec!["nope".into()]).await,
            Err(StoreError::GroupNotFound)
        ));
    }
}
