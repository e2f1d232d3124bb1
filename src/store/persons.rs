//! The store's named operations on persons and faces, backend-neutral: callers outside `store/` use these and the
//! row types here, never a backend's.
//!
//! Rules that are the API's and not the store's (a sub-user's policy, the checks of custom field values)
//! come in as functions that the writing transaction runs on what it read; their errors are returned as is.

use std::fmt;

use super::embeddings::StoredCrop;
use super::groups::GroupRow;
use super::sql::Sql;
use super::sql::groups as group_sql;
use super::sql::persons as sql;
pub use super::sql::persons::{ExValues, NeededModels, NewFace, PersonRow};
use super::sql::vectors as vector_sql;
use super::{Change, FaceVectors, Store, StoreError, now_ms};

/// A new person with its first face, and the group it joins with its custom field values there.
pub struct NewPerson {
    pub person_id: String,
    pub name: String,
    pub gender: i64,
    pub group_id: String,
    pub values: ExValues,
    pub face: NewFace,
}

/// What new faces of a person need (one read).
pub struct FaceNetworks {
    /// The version and network of the person's first group; None for a person without groups.
    pub first: Option<(String, String)>,
    /// Every network the person's groups serve or move to.
    pub needed: Vec<String>,
    /// The faces the person holds.
    pub faces: usize,
}

/// A page of a group's persons, with the counts it was read with.
pub struct PersonPage {
    pub group: GroupRow,
    pub persons: u64,
    pub faces: u64,
    /// Each person of the page, with its values in the group and its face ids.
    pub members: Vec<(PersonRow, ExValues, Vec<String>)>,
}

/// A group of a person, with the person's values there.
pub struct Membership {
    pub group_id: String,
    pub values: ExValues,
    /// The group's custom fields.
    pub fields: usize,
    pub face_model_version: String,
}

/// The index's key of a face: FaceIds are decimal numbers.
fn key(face_id: &str) -> Option<u64> {
    face_id.parse().ok()
}

/// Insert a new person with its one face as a member of `group_id`; the change the index follows.
fn enrol(tx: &dyn Sql, group_id: &str, person: NewPerson, now: i64) -> Result<Change, StoreError> {
    sql::insert(tx, &person.person_id, &person.name, person.gender, now)?;
    sql::add_member(tx, group_id, &person.person_id, &person.values, now)?;
    sql::insert_face(tx, &person.person_id, &person.face, now)?;
    Ok(Change::AddFaces {
        group_ids: vec![group_id.to_owned()],
        faces: key(&person.face.face_id)
            .map(|k| (k, person.face.vectors))
            .into_iter()
            .collect(),
        person_id: person.person_id,
    })
}

impl Store {
    /// The group a new person would join, and whether the person id is taken.
    pub async fn group_for_new_person(
        &self,
        group_id: String,
        person_id: String,
    ) -> Result<(GroupRow, bool), StoreError> {
        self.db
            .read(move |conn| {
                let group = group_sql::get(conn, &group_id)?;
                Ok((group, sql::find(conn, &person_id)?.is_some()))
            })
            .await
    }

    /// CreatePerson: the person, its membership and its face, unless the group changed since it was read
    /// (`group_created_ms`: deleted or created again; or switched to a network the face has no embedding
    /// by) or holds `max_faces(its version)` faces already. Returns the group's model version.
    pub async fn create_person(
        &self,
        person: NewPerson,
        group_created_ms: i64,
        max_faces: impl Fn(&str) -> u64 + Send + 'static,
    ) -> Result<String, StoreError> {
        self.write_logged(move |tx| {
            let group = group_sql::get(tx, &person.group_id)?;
            if group.created_ms != group_created_ms
                || !person
                    .face
                    .vectors
                    .iter()
                    .any(|(m, _)| *m == group.serving_model)
            {
                return Err(Refusal::ChangedMeanwhile.into());
            }
            // Counted in the database, not in this process's index: other servers may share it.
            if sql::group_face_count(tx, &group.group_id)? >= max_faces(&group.face_model_version) {
                return Err(Refusal::GroupFaceLimit.into());
            }
            let change = enrol(tx, &group.group_id, person, now_ms())?;
            Ok((group.face_model_version, vec![change]))
        })
        .await
    }

    /// Many new persons, each with one face, into one group in one transaction (bulk loading: the scale
    /// example, imports). The same checks as `create_person`, on the group's count as it grows.
    pub async fn import_persons(
        &self,
        group_id: String,
        persons: Vec<NewPerson>,
        max_faces: u64,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            group_sql::get(tx, &group_id)?;
            let held = sql::group_face_count(tx, &group_id)?;
            let now = now_ms();
            let mut changes = Vec::with_capacity(persons.len());
            for (faces, person) in (held..).zip(persons) {
                if faces >= max_faces {
                    return Err(Refusal::GroupFaceLimit.into());
                }
                changes.push(enrol(tx, &group_id, person, now)?);
            }
            Ok(((), changes))
        })
        .await
    }

    /// What new faces of a person need: `PersonNotFound` for an unknown person.
    pub async fn face_networks(&self, person_id: String) -> Result<FaceNetworks, StoreError> {
        self.db
            .read(move |conn| {
                sql::get(conn, &person_id)?;
                Ok(FaceNetworks {
                    first: sql::serving(conn, &person_id)?,
                    needed: sql::needed_models(conn, &person_id)?.all,
                    faces: sql::face_ids(conn, &person_id)?.len(),
                })
            })
            .await
    }

    /// (face id, embedding) of a person's faces by the network `model` (faces without one left out).
    pub async fn person_embeddings(
        &self,
        person_id: String,
        model: String,
    ) -> Result<Vec<(String, Vec<f32>)>, StoreError> {
        self.db
            .read(move |conn| sql::embeddings(conn, &person_id, &model))
            .await
    }

    /// CreateFace: the faces, in every group of the person as the transaction finds them, unless a network
    /// one of those groups serves has no embedding of them (the groups changed meanwhile) or the person
    /// would hold more than `max_faces`.
    pub async fn create_faces(
        &self,
        person_id: String,
        faces: Vec<NewFace>,
        max_faces: usize,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            sql::get(tx, &person_id)?;
            // Networks groups are moving to are filled in by the move if missing.
            let serving = sql::needed_models(tx, &person_id)?.serving;
            if !faces.iter().all(|f| {
                serving
                    .iter()
                    .all(|m| f.vectors.iter().any(|(v, _)| v == m))
            }) {
                return Err(Refusal::ChangedMeanwhile.into());
            }
            if sql::face_ids(tx, &person_id)?.len() + faces.len() > max_faces {
                return Err(Refusal::PersonFaceLimit.into());
            }
            let now = now_ms();
            for face in &faces {
                sql::insert_face(tx, &person_id, face, now)?;
            }
            let change = Change::AddFaces {
                group_ids: sql::group_ids(tx, &person_id)?,
                person_id,
                faces: faces
                    .into_iter()
                    .filter_map(|f| Some((key(&f.face_id)?, f.vectors)))
                    .collect(),
            };
            Ok(((), vec![change]))
        })
        .await
    }

    /// Stored crops of the person's faces with no embedding by `model` (and no recorded failure of it).
    pub async fn crops_without_embedding(
        &self,
        person_id: String,
        model: String,
    ) -> Result<Vec<StoredCrop>, StoreError> {
        self.db
            .read(move |conn| sql::crops_missing(conn, &person_id, &model))
            .await
    }

    /// Store what `model` made of stored crops (face id, embedding or why not); faces deleted meanwhile
    /// are skipped. The index does not change: it serves what the faces were enrolled with.
    pub async fn save_crop_embeddings(
        &self,
        model: String,
        embedded: Vec<(String, Result<Vec<f32>, String>)>,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| vector_sql::save_embedded(tx, &model, &embedded, now_ms()))
            .await
    }

    /// DeleteFace: those of `face_ids` the person holds (returned), unless that would leave it none.
    pub async fn delete_faces(
        &self,
        person_id: String,
        face_ids: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        self.write_logged(move |tx| {
            sql::get(tx, &person_id)?;
            let have = sql::face_ids(tx, &person_id)?;
            let gone: Vec<String> = have
                .iter()
                .filter(|f| face_ids.contains(f))
                .cloned()
                .collect();
            if !gone.is_empty() && gone.len() >= have.len() {
                return Err(Refusal::LastFace.into());
            }
            for face in &gone {
                sql::delete_face(tx, &person_id, face)?;
            }
            let change = Change::RemoveFaces {
                group_ids: sql::group_ids(tx, &person_id)?,
                faces: gone.iter().filter_map(|f| key(f)).collect(),
            };
            Ok((gone, vec![change]))
        })
        .await
    }

    /// DeletePerson: the person, its memberships and its faces.
    pub async fn delete_person(&self, person_id: String) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            sql::get(tx, &person_id)?;
            let group_ids = sql::group_ids(tx, &person_id)?;
            sql::delete(tx, &person_id)?;
            let change = Change::RemovePerson {
                group_ids,
                person_id,
            };
            Ok(((), vec![change]))
        })
        .await
    }

    /// DeletePersonFromGroup: the membership; the person too when it was its last group.
    pub async fn delete_person_from_group(
        &self,
        group_id: String,
        person_id: String,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            group_sql::get(tx, &group_id)?;
            sql::get(tx, &person_id)?;
            if !sql::remove_member(tx, &group_id, &person_id)? {
                return Err(Refusal::NotInGroup.into());
            }
            // A person without groups does not exist.
            if sql::model_version(tx, &person_id)?.is_none() {
                sql::delete(tx, &person_id)?;
            }
            let change = Change::RemovePerson {
                group_ids: vec![group_id],
                person_id,
            };
            Ok(((), vec![change]))
        })
        .await
    }

    /// The networks `group_ids` serve or move to (CopyPerson's embeddings to make first), after
    /// `may_hold` allowed each group the person is in.
    pub async fn copy_person_networks<E>(
        &self,
        person_id: String,
        group_ids: Vec<String>,
        may_hold: impl Fn(&str) -> Result<(), E> + Send + 'static,
    ) -> Result<Vec<String>, E>
    where
        E: From<StoreError> + Send + 'static,
    {
        self.db
            .read(move |conn| {
                for (group_id, _) in sql::groups_of(conn, &person_id)? {
                    may_hold(&group_id)?;
                }
                let mut files = Vec::new();
                for group_id in &group_ids {
                    let group = group_sql::get(conn, group_id)?;
                    files.push(group.serving_model);
                    files.extend(group.target.map(|t| t.model));
                }
                Ok(files)
            })
            .await
    }

    /// CopyPerson: the person joins those of `group_ids` it is not in (returned, in order), after `may_hold`
    /// allowed each group it is in; refused when a target's version is none of its groups', when it would
    /// be in more than `max_groups`, or when a face came in meanwhile without an embedding by a network
    /// a target serves.
    pub async fn copy_person<E>(
        &self,
        person_id: String,
        group_ids: Vec<String>,
        max_groups: usize,
        may_hold: impl Fn(&str) -> Result<(), E> + Send + 'static,
    ) -> Result<Vec<String>, E>
    where
        E: From<StoreError> + Send + 'static,
    {
        self.write_logged(move |tx| {
            sql::get(tx, &person_id)?;
            let current = sql::groups_of(tx, &person_id)?;
            for (group_id, _) in &current {
                may_hold(group_id)?;
            }
            let mut versions = Vec::new();
            for (group_id, _) in &current {
                versions.push(group_sql::get(tx, group_id)?.face_model_version);
            }
            let mut added = Vec::new();
            let mut models: Vec<String> = Vec::new();
            let now = now_ms();
            for group_id in &group_ids {
                let group = group_sql::get(tx, group_id)?;
                if !versions.contains(&group.face_model_version) {
                    return Err(StoreError::from(Refusal::AcrossVersions {
                        group_id: group_id.clone(),
                        version: group.face_model_version,
                        person_versions: versions,
                    })
                    .into());
                }
                if current.iter().any(|(g, _)| g == group_id) || added.contains(group_id) {
                    continue;
                }
                if current.len() + added.len() >= max_groups {
                    return Err(StoreError::from(Refusal::GroupsPerPersonLimit).into());
                }
                sql::add_member(tx, group_id, &person_id, &[], now)?;
                added.push(group_id.clone());
                if !models.contains(&group.serving_model) {
                    models.push(group.serving_model);
                }
            }
            // Each face's embeddings by the networks the new groups serve, as the index takes them.
            let face_ids = sql::face_ids(tx, &person_id)?;
            let mut faces: Vec<(u64, FaceVectors)> = face_ids
                .iter()
                .filter_map(|id| Some((key(id)?, Vec::new())))
                .collect();
            for model in &models {
                let stored = sql::embeddings(tx, &person_id, model)?;
                // A face the network could not embed (recorded failure) stays out of this group's index,
                // as at start-up; any other face without one came in meanwhile.
                let failed = vector_sql::failed_of_person(tx, &person_id, model)?;
                if stored.len() + failed < face_ids.len() {
                    return Err(StoreError::from(Refusal::ChangedMeanwhile).into());
                }
                for (id, vector) in stored {
                    if let Some((_, vectors)) = faces.iter_mut().find(|(k, _)| key(&id) == Some(*k))
                    {
                        vectors.push((model.clone(), vector));
                    }
                }
            }
            let change = Change::AddFaces {
                group_ids: added.clone(),
                person_id,
                faces,
            };
            Ok((added, vec![change]))
        })
        .await
    }

    /// A page of a group's persons in the order they joined (`offset`, `limit`), with the group and its
    /// counts.
    pub async fn person_page(
        &self,
        group_id: String,
        offset: u64,
        limit: u64,
    ) -> Result<PersonPage, StoreError> {
        self.db
            .read(move |conn| {
                let group = group_sql::get(conn, &group_id)?;
                let (persons, faces) = group_sql::counts(conn, &group_id)?;
                let mut members = Vec::new();
                for (person, values) in sql::members(conn, &group_id, offset, limit)? {
                    let face_ids = sql::face_ids(conn, &person.person_id)?;
                    members.push((person, values, face_ids));
                }
                Ok(PersonPage {
                    group,
                    persons,
                    faces,
                    members,
                })
            })
            .await
    }

    /// A person and its face ids, in the order they were added.
    pub async fn person_with_faces(
        &self,
        person_id: String,
    ) -> Result<(PersonRow, Vec<String>), StoreError> {
        self.db
            .read(move |conn| {
                Ok((
                    sql::get(conn, &person_id)?,
                    sql::face_ids(conn, &person_id)?,
                ))
            })
            .await
    }

    /// A person's groups, in the order it joined them.
    pub async fn memberships(&self, person_id: String) -> Result<Vec<Membership>, StoreError> {
        self.db
            .read(move |conn| {
                sql::get(conn, &person_id)?;
                let mut all = Vec::new();
                for (group_id, values) in sql::groups_of(conn, &person_id)? {
                    let group = group_sql::get(conn, &group_id)?;
                    all.push(Membership {
                        group_id,
                        values,
                        fields: group.ex_descriptions.len(),
                        face_model_version: group.face_model_version,
                    });
                }
                Ok(all)
            })
            .await
    }

    /// ModifyPersonBaseInfo: a new name and/or gender.
    pub async fn update_person(
        &self,
        person_id: String,
        name: Option<String>,
        gender: Option<i64>,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| sql::update(tx, &person_id, name.as_deref(), gender, now_ms()))
            .await
    }

    /// ModifyPersonGroupInfo: the person's values in the group, as `edit` changes them given the group's
    /// number of custom fields.
    pub async fn edit_member_values<E>(
        &self,
        group_id: String,
        person_id: String,
        edit: impl FnOnce(&mut ExValues, usize) -> Result<(), E> + Send + 'static,
    ) -> Result<(), E>
    where
        E: From<StoreError> + Send + 'static,
    {
        self.db
            .write(move |tx| {
                let group = group_sql::get(tx, &group_id)?;
                sql::get(tx, &person_id)?;
                let mut values = sql::member_values(tx, &group_id, &person_id)?
                    .ok_or(StoreError::from(Refusal::NotInGroup))?;
                edit(&mut values, group.ex_descriptions.len())?;
                sql::set_member_values(tx, &group_id, &person_id, &values)?;
                Ok(())
            })
            .await
    }
}

/// What the writing transaction refused, on what it read (mapped to Tencent's codes by the caller).
#[derive(Debug)]
pub enum Refusal {
    /// The person or group changed while the images were processed (deleted and created again, or moved
    /// to a network the new embeddings are not of): nothing was stored.
    ChangedMeanwhile,
    /// The group holds the most faces its version allows.
    GroupFaceLimit,
    /// The person would hold more faces than a person may.
    PersonFaceLimit,
    /// A person keeps at least one face.
    LastFace,
    /// The person is not in the group.
    NotInGroup,
    /// The person would be in more groups than a person may.
    GroupsPerPersonLimit,
    /// A target group's model version is none of the person's groups'.
    AcrossVersions {
        group_id: String,
        version: String,
        person_versions: Vec<String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ChangedMeanwhile => f.write_str("the person or group changed meanwhile"),
            Refusal::GroupFaceLimit => f.write_str("the group holds the most faces it may"),
            Refusal::PersonFaceLimit => f.write_str("too many faces for one person"),
            Refusal::LastFace => f.write_str("a person keeps at least one face"),
            Refusal::NotInGroup => f.write_str("the person is not in the group"),
            Refusal::GroupsPerPersonLimit => f.write_str("too many groups for one person"),
            Refusal::AcrossVersions {
                group_id, version, ..
            } => write!(f, "group {group_id} uses model {version}"),
        }
    }
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        StoreError::Person(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::groups::NewGroup;

    fn face(id: &str) -> NewFace {
        NewFace {
            face_id: id.into(),
            rect: [0, 0, 1, 1],
            crop_png: vec![0],
            landmarks: "[]".into(),
            quality: None,
            vectors: vec![("m".into(), vec![1.0])],
        }
    }

    fn person(id: &str, face_id: &str) -> NewPerson {
        NewPerson {
            person_id: id.into(),
            name: id.into(),
            gender: 0,
            group_id: "g".into(),
            values: vec![],
            face: face(face_id),
        }
    }

    async fn group(store: &Store, id: &str, version: &str) -> GroupRow {
        let group = NewGroup {
            group_id: id.into(),
            name: id.into(),
            tag: String::new(),
            ex_descriptions: vec![],
            face_model_version: version.into(),
            serving_model: "m".into(),
        };
        store.create_group(group, 10).await.unwrap()
    }

    fn any(_: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn refused(result: Result<impl fmt::Debug, StoreError>) -> Refusal {
        match result {
            Err(StoreError::Person(refusal)) => refusal,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn rules_are_checked_on_what_the_writing_transaction_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let created = group(&store, "g", "3.0").await.created_ms;
        let version = store.create_person(person("p", "1"), created, |_| 1);
        assert_eq!(version.await.unwrap(), "3.0");
        // The group's face is counted in the database.
        let full = store.create_person(person("q", "2"), created, |_| 1).await;
        assert!(matches!(refused(full), Refusal::GroupFaceLimit));
        let recreated = store.create_person(person("q", "2"), created + 1, |_| 9);
        assert!(matches!(
            refused(recreated.await),
            Refusal::ChangedMeanwhile
        ));

        store
            .create_faces("p".into(), vec![face("3")], 5)
            .await
            .unwrap();
        let unembedded = NewFace {
            vectors: vec![],
            ..face("4")
        };
        let stale = store.create_faces("p".into(), vec![unembedded], 5).await;
        assert!(matches!(refused(stale), Refusal::ChangedMeanwhile));
        let many = store.create_faces("p".into(), vec![face("4")], 2).await;
        assert!(matches!(refused(many), Refusal::PersonFaceLimit));

        let ids = vec!["1".to_string(), "9".to_string()];
        assert_eq!(store.delete_faces("p".into(), ids).await.unwrap(), ["1"]);
        let last = store.delete_faces("p".into(), vec!["3".into()]).await;
        assert!(matches!(refused(last), Refusal::LastFace));

        group(&store, "old", "2.0").await;
        group(&store, "g2", "3.0").await;
        let targets = vec!["g2".to_string(), "old".to_string()];
        let across = store.copy_person("p".into(), targets, 100, any);
        assert!(matches!(
            refused(across.await),
            Refusal::AcrossVersions { group_id, .. } if group_id == "old"
        ));
        let denied = store.copy_person("p".into(), vec!["g2".into()], 100, |g: &str| {
            Err(StoreError::Task(format!("may not hold {g}")))
        });
        assert!(matches!(denied.await, Err(StoreError::Task(why)) if why.ends_with(" g")));
        let copied = store.copy_person("p".into(), vec!["g2".into(), "g2".into()], 100, any);
        assert_eq!(copied.await.unwrap(), ["g2"]);
        let more = store.copy_person("p".into(), vec!["g".into()], 2, any);
        assert_eq!(more.await.unwrap(), Vec::<String>::new());

        store
            .delete_person_from_group("g".into(), "p".into())
            .await
            .unwrap();
        let again = store.delete_person_from_group("g".into(), "p".into()).await;
        assert!(matches!(refused(again), Refusal::NotInGroup));
        store
            .delete_person_from_group("g2".into(), "p".into())
            .await
            .unwrap();
        let gone = store.person_with_faces("p".into()).await;
        assert!(matches!(gone, Err(StoreError::PersonNotFound)));
    }
}
