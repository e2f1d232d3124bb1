//! The store's named operations on groups, backend-neutral: callers outside `store/` use these and the
//! row types here, never a backend's.

use std::fmt;

use super::sqlite::groups as sql;
use super::{Change, Store, StoreError, now_ms};

// Transitional: the backend's rows and SQL, until every caller uses a named operation.
pub use super::sqlite::groups::*;

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
}

/// What the writing transaction refused, on what it read (mapped to Tencent's codes by the caller).
#[derive(Debug)]
pub enum Refusal {}

impl fmt::Display for Refusal {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}
