//! The store's named operations on files kept in the database: jobs' result files and the key that signs
//! their links, which every replica of a shared database must serve and check alike.

use super::sql::files as sql;
use super::{Store, StoreError, now_ms};

impl Store {
    /// Keep `body` under `name` (replacing a file of that name).
    pub async fn put_file(&self, name: String, body: Vec<u8>) -> Result<(), StoreError> {
        self.db
            .write(move |tx| sql::put(tx, &name, &body, now_ms()))
            .await
    }

    /// The file `name`, unless there is none; made from `fresh` when missing (a key every replica must
    /// share: the first to start makes it, the others read it).
    pub async fn file_or_insert(
        &self,
        name: String,
        fresh: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        self.db
            .write(move |tx| sql::put_once(tx, &name, &fresh, now_ms()))
            .await
    }

    pub async fn file(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.read(move |conn| sql::get(conn, &name)).await
    }

    pub async fn file_exists(&self, name: String) -> Result<bool, StoreError> {
        self.db.read(move |conn| sql::exists(conn, &name)).await
    }

    pub async fn delete_file(&self, name: String) -> Result<(), StoreError> {
        self.db.write(move |tx| sql::delete(tx, &name)).await
    }

    /// Delete the files named `*suffix` kept for longer than `age`; how many.
    pub async fn purge_files(
        &self,
        suffix: &'static str,
        age: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let before = now_ms() - age.as_millis() as i64;
        self.db
            .write(move |tx| sql::purge(tx, suffix, before))
            .await
    }
}
