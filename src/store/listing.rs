//! The store's named reads that span groups, persons and faces, backend-neutral: the listings of the API
//! and the console, the details joined to search hits, and a view of the followers with no write
//! half-applied.

use std::collections::HashMap;

use super::sql::listing as sql;
pub use super::sql::listing::{HitPerson, Totals};
use super::sql::persons as person_sql;
use super::{Store, StoreError};

impl Store {
    /// Run `f` while no write can commit or be half-way through reaching the followers (a consistent
    /// snapshot of the search index). Writes wait for `f`: keep it short.
    pub async fn with_writes_paused<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.exclusive(move |_| f()).await
    }

    /// Groups, persons and faces of the whole account.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        self.db.read(sql::totals).await
    }

    /// Whether the person is in the group; an unknown group or person is an error.
    pub async fn person_in_group(
        &self,
        group_id: String,
        person_id: String,
    ) -> Result<bool, StoreError> {
        self.db
            .read(move |conn| sql::person_in_group(conn, &group_id, &person_id))
            .await
    }

    /// A face's stored crop (PNG), if the face exists.
    pub async fn face_crop(&self, face_id: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .read(move |conn| person_sql::crop(conn, &face_id))
            .await
    }

    /// The persons of search hits that still exist, by id, with their values in those of `group_ids` they
    /// are in. Every group of `group_ids` must exist.
    pub async fn hit_persons(
        &self,
        person_ids: Vec<String>,
        group_ids: Vec<String>,
    ) -> Result<HashMap<String, HitPerson>, StoreError> {
        self.db
            .read(move |conn| sql::hit_persons(conn, person_ids, &group_ids))
            .await
    }

    /// A person's stored embeddings by the network `pick` chooses from what the person's first group serves
    /// ((version, model file); None for a person in no group). `pick` returns what the caller keeps and
    /// the model file to read.
    pub async fn served_embeddings<T, P>(
        &self,
        person_id: String,
        pick: P,
    ) -> Result<(T, Vec<(String, Vec<f32>)>), StoreError>
    where
        T: Send + 'static,
        P: FnOnce(Option<(String, String)>) -> (T, String) + Send + 'static,
    {
        self.db
            .read(move |conn| {
                person_sql::get(conn, &person_id)?;
                let (kept, model) = pick(person_sql::serving(conn, &person_id)?);
                Ok((kept, person_sql::embeddings(conn, &person_id, &model)?))
            })
            .await
    }
}
