//! The store's named operations on groups, backend-neutral: callers outside `store/` use these and the
//! row types here, never a backend's.

use std::collections::HashSet;
use std::fmt;

use super::sql::groups as sql;
pub use super::sql::groups::{GroupRow, NewGroup, Target};
use super::{Change, Store, StoreError, now_ms};

/// What ModifyGroup changes; `None` (and no renames) leaves a value as it is.
#[derive(Debug, Default)]
pub struct GroupEdit {
    pub name: Option<String>,
    pub tag: Option<String>,
    /// Custom fields renamed by index; an index one past the end adds a field.
    pub renames: Vec<(usize, String)>,
}

impl Store {
    /// CreateGroup: a new, empty group, unless `max_groups` exist already or its id or name is taken.
    pub async fn create_group(
        &self,
        group: NewGroup,
        max_groups: u64,
    ) -> Result<GroupRow, StoreError> {
        self.write_logged(move |tx| {
            if sql::count(tx)? >= max_groups {
                return Err(StoreError::GroupLimit);
            }
            let row = sql::insert(tx, &group, now_ms())?;
            let change = Change::CreateGroup {
                group_id: row.group_id.clone(),
                version: row.face_model_version.clone(),
                model: row.serving_model.clone(),
            };
            Ok((row, vec![change]))
        })
        .await
    }

    /// DeleteGroup: the group, its persons that are in no other group, and its running upgrade (failed).
    pub async fn delete_group(&self, group_id: String) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            sql::delete(tx, &group_id)?;
            Ok(((), vec![Change::DeleteGroup { group_id }]))
        })
        .await
    }

    /// ModifyGroup: a new name (unless another group has it), tag or custom field names (at most
    /// `max_fields`, none repeated). Nothing the index holds changes.
    pub async fn modify_group(
        &self,
        group_id: String,
        edit: GroupEdit,
        max_fields: usize,
    ) -> Result<GroupRow, StoreError> {
        self.db
            .write(move |tx| {
                let current = sql::get(tx, &group_id)?;
                let ex_descriptions = if edit.renames.is_empty() {
                    None
                } else {
                    let renamed = renamed(current.ex_descriptions, &edit.renames, max_fields);
                    Some(renamed.map_err(StoreError::Group)?)
                };
                let change = sql::GroupChange {
                    name: edit.name,
                    tag: edit.tag,
                    ex_descriptions,
                };
                sql::update(tx, &group_id, change, now_ms())
            })
            .await
    }

    /// A group (GetGroupInfo).
    pub async fn group(&self, group_id: String) -> Result<GroupRow, StoreError> {
        self.db.read(move |conn| sql::get(conn, &group_id)).await
    }

    /// A page of the groups in creation order and how many there are; with `visible`, only the groups it
    /// allows, counted and paged among themselves.
    pub async fn list_groups<V>(
        &self,
        offset: u64,
        limit: u64,
        visible: Option<V>,
    ) -> Result<(u64, Vec<GroupRow>), StoreError>
    where
        V: Fn(&str) -> bool + Send + 'static,
    {
        self.db
            .read(move |conn| match visible {
                None => Ok((sql::count(conn)?, sql::list(conn, offset, limit)?)),
                Some(visible) => {
                    let mut all = sql::list(conn, 0, i64::MAX as u64)?;
                    all.retain(|g| visible(&g.group_id));
                    let total = all.len() as u64;
                    let page = all
                        .into_iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .collect();
                    Ok((total, page))
                }
            })
            .await
    }

    /// (persons, faces) in a group; a face counts once for each group that holds its person.
    pub async fn group_size(&self, group_id: String) -> Result<(u64, u64), StoreError> {
        self.db.read(move |conn| sql::counts(conn, &group_id)).await
    }

    /// `group_size` of each group, in the order given, in one read.
    pub async fn group_sizes(&self, group_ids: Vec<String>) -> Result<Vec<(u64, u64)>, StoreError> {
        self.db
            .read(move |conn| group_ids.iter().map(|id| sql::counts(conn, id)).collect())
            .await
    }
}

/// The custom field names after `renames` (by index; one past the end adds a field).
fn renamed(
    mut names: Vec<String>,
    renames: &[(usize, String)],
    max_fields: usize,
) -> Result<Vec<String>, Refusal> {
    for (index, name) in renames {
        let index = *index;
        if index >= max_fields {
            return Err(Refusal::ExDescriptionIndexOutOfRange { index, max_fields });
        }
        match index.cmp(&names.len()) {
            std::cmp::Ordering::Less => names[index] = name.clone(),
            std::cmp::Ordering::Equal => names.push(name.clone()),
            std::cmp::Ordering::Greater => {
                return Err(Refusal::ExDescriptionIndexPastEnd {
                    index,
                    fields: names.len(),
                });
            }
        }
    }
    let mut seen = HashSet::new();
    if let Some(name) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(Refusal::ExDescriptionRepeated { name: name.clone() });
    }
    Ok(names)
}

/// What the writing transaction refused, on what it read (mapped to Tencent's codes by the caller).
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// A renamed custom field's index is `max_fields` or more.
    ExDescriptionIndexOutOfRange { index: usize, max_fields: usize },
    /// A renamed custom field's index is past the group's `fields` (more than one past the end).
    ExDescriptionIndexPastEnd { index: usize, fields: usize },
    /// After the renames, two custom fields have this name.
    ExDescriptionRepeated { name: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ExDescriptionIndexOutOfRange { index, max_fields } => write!(
                f,
                "custom field index {index} is out of range (at most {max_fields} fields)"
            ),
            Refusal::ExDescriptionIndexPastEnd { index, fields } => {
                write!(f, "custom field index {index} is past the {fields} fields")
            }
            Refusal::ExDescriptionRepeated { name } => {
                write!(f, "the custom field name `{name}` is used twice")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn renames_replace_add_and_refuse() {
        let rename = |i: usize, n: &str| (i, n.to_string());
        assert_eq!(
            renamed(names(&["a", "b"]), &[rename(1, "c"), rename(2, "d")], 5),
            Ok(names(&["a", "c", "d"]))
        );
        assert_eq!(
            renamed(names(&["a"]), &[rename(5, "x")], 5),
            Err(Refusal::ExDescriptionIndexOutOfRange {
                index: 5,
                max_fields: 5
            })
        );
        assert_eq!(
            renamed(names(&["a"]), &[rename(2, "x")], 5),
            Err(Refusal::ExDescriptionIndexPastEnd {
                index: 2,
                fields: 1
            })
        );
        assert_eq!(
            renamed(names(&["a", "b"]), &[rename(1, "a")], 5),
            Err(Refusal::ExDescriptionRepeated { name: "a".into() })
        );
    }

    #[tokio::test]
    async fn modify_and_list_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (id, name) in [("g1", "one"), ("g2", "two"), ("g3", "three")] {
            let group = NewGroup {
                group_id: id.into(),
                name: name.into(),
                tag: String::new(),
                ex_descriptions: names(&["a"]),
                face_model_version: "3.0".into(),
                serving_model: "mobilefacenet_192.onnx".into(),
            };
            store.create_group(group, 10).await.unwrap();
        }
        let edit = |name: &str, renames: Vec<(usize, String)>| GroupEdit {
            name: Some(name.into()),
            tag: None,
            renames,
        };
        assert!(matches!(
            store
                .modify_group("g1".into(), edit("two", vec![]), 5)
                .await,
            Err(StoreError::GroupNameTaken)
        ));
        assert!(matches!(
            store
                .modify_group("g1".into(), edit("uno", vec![(0, "b".into())]), 1)
                .await,
            Ok(GroupRow { name, ex_descriptions, .. }) if name == "uno" && ex_descriptions == ["b"]
        ));
        assert_eq!(store.group("g1".into()).await.unwrap().name, "uno");
        assert!(matches!(
            store.group("nope".into()).await,
            Err(StoreError::GroupNotFound)
        ));
        let (total, page) = store
            .list_groups(1, 1, None::<fn(&str) -> bool>)
            .await
            .unwrap();
        assert_eq!((total, page[0].group_id.as_str()), (3, "g2"));
        let (total, page) = store
            .list_groups(1, 5, Some(|id: &str| id != "g2"))
            .await
            .unwrap();
        assert_eq!((total, page.len(), page[0].group_id.as_str()), (2, 1, "g3"));
        assert_eq!(
            store
                .group_sizes(vec!["g2".into(), "g1".into()])
                .await
                .unwrap(),
            [(0, 0), (0, 0)]
        );
    }
}
