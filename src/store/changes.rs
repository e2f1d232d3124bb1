//! The change log: what each committed write changed, numbered in commit order with no gaps. Everything a
//! server keeps in memory (each group's search index, the CAM directory) is a `Follower`: it starts from a
//! consistent read of the database (`Store::follow`) and from then on changes only by applying the log, in
//! order. With SQLite the log is applied in process, under the write lock, before the write returns.
//!
//! What a transaction read in order to write (a group's vectors after a switch of network, the CAM tables)
//! travels with the change in process (`#[serde(skip)]` payloads) and is not written to the log: a
//! follower that gets a change without it reads the current state from the store instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::cam::Snapshot as CamSnapshot;
use super::groups::GroupRow;

/// A new face's embeddings by network (model file): each group takes the one of the network it serves.
pub type FaceVectors = Vec<(String, Vec<f32>)>;

/// A group's (person, face key, embedding) rows by one network.
pub type GroupVectors = Vec<(String, u64, Vec<f32>)>;

/// Called with each (group, person, face id, embedding) of a start-up load.
pub type EachFace<'a> = &'a mut dyn FnMut(&str, &str, &str, Vec<f32>);

/// What a committed write changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Change {
    /// A new group, empty, serving `model` (a model file) for Tencent's `version` ("3.0").
    CreateGroup {
        group_id: String,
        version: String,
        model: String,
    },
    /// The group now serves another version or network: its index is replaced by one built from the
    /// (person, face key, embedding) rows read in the same transaction.
    Rebuild {
        group_id: String,
        version: String,
        model: String,
        #[serde(skip)]
        faces: Option<Arc<GroupVectors>>,
    },
    DeleteGroup {
        group_id: String,
    },
    /// Faces of a person added to the groups listed: new faces in every group of the person (CreateFace),
    /// or all its faces in the groups it joins (CreatePerson, CopyPerson).
    AddFaces {
        group_ids: Vec<String>,
        person_id: String,
        faces: Vec<(u64, FaceVectors)>,
    },
    RemoveFaces {
        group_ids: Vec<String>,
        faces: Vec<u64>,
    },
    RemovePerson {
        group_ids: Vec<String>,
        person_id: String,
    },
    /// CAM users, keys, policies or attachments changed; the tables as the transaction left them.
    Cam {
        #[serde(skip)]
        snapshot: Option<Arc<CamSnapshot>>,
    },
}

impl Change {
    /// Whether the change lacks rows its writer read in process (read back from the log: `hydrate`).
    pub fn needs_hydrating(&self) -> bool {
        matches!(
            self,
            Change::Rebuild { faces: None, .. } | Change::Cam { snapshot: None }
        )
    }

    /// The change as the log stores it.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_stdvec(self).map_err(|e| StoreError::Db(Box::new(e)))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Db(Box::new(e)))
    }
}

/// What a follower may read when it starts (and when a change arrives without its payload): a view of the
/// database in which no write is half done.
pub trait StartView {
    /// The number of the last change this view holds (0 for none).
    fn last_change(&self) -> Result<u64, StoreError>;
    /// Every group.
    fn groups(&self) -> Result<Vec<GroupRow>, StoreError>;
    /// Faces of every group (a face counts once for each group that holds its person).
    fn face_counts(&self) -> Result<std::collections::HashMap<String, u64>, StoreError>;
    /// Every (group, person, face id, embedding) by the network each group serves, streamed.
    fn for_each_indexed_face(&self, each: EachFace<'_>) -> Result<(), StoreError>;
    /// A group's (person, face key, embedding) rows by `model`.
    fn group_vectors(&self, group_id: &str, model: &str) -> Result<GroupVectors, StoreError>;
    /// The CAM tables.
    fn cam(&self) -> Result<CamSnapshot, StoreError>;
}

/// A change read back from the log, with the rows its writer read in process (which the log does not keep)
/// read again from `view`: as current as the view or newer, which later entries of the log, applied on top,
/// leave consistent (adding and removing faces are idempotent).
pub fn hydrate(change: Change, view: &dyn StartView) -> Result<Change, StoreError> {
    Ok(match change {
        Change::Rebuild {
            group_id,
            version,
            model,
            faces: None,
        } => Change::Rebuild {
            faces: Some(Arc::new(view.group_vectors(&group_id, &model)?)),
            group_id,
            version,
            model,
        },
        Change::Cam { snapshot: None } => Change::Cam {
            snapshot: Some(Arc::new(view.cam()?)),
        },
        other => other,
    })
}

/// `hydrate` for each of a stretch of the log.
pub fn hydrate_all(
    entries: Vec<(u64, Change)>,
    view: &dyn StartView,
) -> Result<Vec<(u64, Change)>, StoreError> {
    entries
        .into_iter()
        .map(|(seq, change)| Ok((seq, hydrate(change, view)?)))
        .collect()
}

/// Something kept in memory that follows the change log.
pub trait Follower: Send + Sync {
    /// Apply the change numbered `seq`. Changes arrive once each, in order.
    fn apply(&self, seq: u64, change: &Change);
}

/// A follower that started from a snapshot newer than the log's position: it ignores the entries its
/// snapshot held.
struct Skipping {
    inner: Arc<dyn Follower>,
    through: u64,
}

impl Follower for Skipping {
    fn apply(&self, seq: u64, change: &Change) {
        if seq > self.through {
            self.inner.apply(seq, change);
        }
    }
}

/// The followers of one store, the last position they all applied, and whether that position is known to
/// be current (a replica following a shared database confirms it by reading the log's head).
pub(super) struct Log {
    followers: RwLock<Vec<Arc<dyn Follower>>>,
    /// The last applied position (writers wait on it to read their own write).
    position: tokio::sync::watch::Sender<u64>,
    /// When the log was last read to its head (`None`: never, or the connection to it is down); `Some`
    /// forever for a log applied in process.
    confirmed: parking_lot::Mutex<Option<Instant>>,
    in_process: bool,
    /// This server is stopping: it no longer reports itself as a live replica.
    leaving: std::sync::atomic::AtomicBool,
    /// Replicas seen lately (this one included; 1 for a log applied in process): QPS limits are shared
    /// among them.
    live_replicas: std::sync::atomic::AtomicU32,
}

impl Log {
    /// A log applied in process, as writes commit (SQLite): always current.
    pub(super) fn in_process(last: u64) -> Self {
        Self::new(last, true)
    }

    /// A log read from a shared database: current only as of the last confirmation.
    pub(super) fn shared(last: u64) -> Self {
        Self::new(last, false)
    }

    fn new(last: u64, in_process: bool) -> Self {
        Self {
            followers: RwLock::new(Vec::new()),
            position: tokio::sync::watch::channel(last).0,
            confirmed: parking_lot::Mutex::new(in_process.then(Instant::now)),
            in_process,
            leaving: std::sync::atomic::AtomicBool::new(false),
            live_replicas: std::sync::atomic::AtomicU32::new(1),
        }
    }

    pub(super) fn applied(&self) -> u64 {
        *self.position.borrow()
    }

    pub(super) fn add(&self, follower: Arc<dyn Follower>) {
        self.followers.write().push(follower);
    }

    /// Add a follower whose state holds every entry up to `from` (its snapshot's), with `missed`: the
    /// entries after `from` the log held when they were read. When the followers have applied past `from`,
    /// the new one applies that stretch from `missed` now; when they are behind it, it skips the entries
    /// its snapshot held as they arrive. `false` (nothing added) when `missed` stops short of what the
    /// followers applied meanwhile: read it again.
    pub(super) fn join(
        &self,
        follower: Arc<dyn Follower>,
        from: u64,
        missed: &[(u64, Change)],
    ) -> bool {
        // Held for writing, no entry is being applied: `applied` stays put.
        let mut followers = self.followers.write();
        let applied = self.applied();
        if applied <= from {
            followers.push(Arc::new(Skipping {
                inner: follower,
                through: from,
            }));
            return true;
        }
        if missed.last().map_or(from, |(seq, _)| *seq) < applied {
            return false;
        }
        for (seq, change) in missed.iter().filter(|(seq, _)| *seq <= applied) {
            follower.apply(*seq, change);
        }
        followers.push(follower);
        true
    }

    /// Hand `changes`, numbered from `first`, to every follower.
    pub(super) fn apply(&self, first: u64, changes: &[Change]) {
        let followers = self.followers.read();
        for (n, change) in changes.iter().enumerate() {
            let seq = first + n as u64;
            for follower in followers.iter() {
                follower.apply(seq, change);
            }
        }
        if !changes.is_empty() {
            let last = first + changes.len() as u64 - 1;
            self.position.send_replace(last);
            metrics::gauge!("iai_change_log_applied").set(last as f64);
        }
    }

    /// Wait until the followers have applied `seq` (a writer reading its own write), at most `timeout`.
    pub(super) async fn wait_applied(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        let mut position = self.position.subscribe();
        match tokio::time::timeout(timeout, position.wait_for(|&at| at >= seq)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreError::Stale(format!(
                "the write was committed as change {seq}, but this server has applied only {}",
                self.applied()
            ))),
        }
    }

    pub(super) fn live_replicas(&self) -> u32 {
        self.live_replicas
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1)
    }

    pub(super) fn set_live_replicas(&self, n: u32) {
        self.live_replicas
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("iai_live_replicas").set(f64::from(n.max(1)));
    }

    /// This server is stopping (heartbeats end).
    pub(super) fn leave(&self) {
        self.leaving
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(super) fn leaving(&self) -> bool {
        self.leaving.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The log was read to its head just now.
    pub(super) fn confirm(&self) {
        *self.confirmed.lock() = Some(Instant::now());
    }

    /// The log can no longer be read (its connection is down).
    pub(super) fn unconfirm(&self) {
        if !self.in_process {
            *self.confirmed.lock() = None;
        }
    }

    /// Entries this replica needed are gone: it stays unconfirmed until restarted.
    pub(super) fn lost(&self, next_kept: u64) {
        tracing::error!(
            applied = self.applied(),
            next_kept,
            "the change log was trimmed past this server's position: restart it"
        );
        self.unconfirm();
    }

    /// How long since the log was last confirmed current (`None`: not confirmed since the connection
    /// was last lost).
    pub(super) fn staleness(&self) -> Option<Duration> {
        if self.in_process {
            return Some(Duration::ZERO);
        }
        self.confirmed.lock().map(|at| at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_without_their_in_process_payloads() {
        let add = Change::AddFaces {
            group_ids: vec!["g".into()],
            person_id: "p".into(),
            faces: vec![(7, vec![("m.onnx".into(), vec![0.5, -1.0])])],
        };
        let back = Change::decode(&add.encode().unwrap()).unwrap();
        assert_eq!(format!("{add:?}"), format!("{back:?}"));
        let rebuild = Change::Rebuild {
            group_id: "g".into(),
            version: "3.0".into(),
            model: "m.onnx".into(),
            faces: Some(Arc::new(vec![("p".into(), 1, vec![1.0])])),
        };
        match Change::decode(&rebuild.encode().unwrap()).unwrap() {
            Change::Rebuild { faces, model, .. } => {
                assert!(faces.is_none());
                assert_eq!(model, "m.onnx");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use crate::store::Store;
    use crate::store::groups::NewGroup;

    /// Records what it is handed.
    #[derive(Default)]
    struct Recorder(parking_lot::Mutex<Vec<(u64, String)>>);

    impl Follower for Recorder {
        fn apply(&self, seq: u64, change: &Change) {
            let what = match change {
                Change::CreateGroup { group_id, .. } => format!("create {group_id}"),
                Change::DeleteGroup { group_id } => format!("delete {group_id}"),
                other => format!("{other:?}"),
            };
            self.0.lock().push((seq, what));
        }
    }

    fn group(id: &str) -> NewGroup {
        NewGroup {
            group_id: id.into(),
            name: id.into(),
            tag: String::new(),
            ex_descriptions: Vec::new(),
            face_model_version: "3.0".into(),
            serving_model: "m.onnx".into(),
        }
    }

    #[tokio::test]
    async fn committed_writes_reach_followers_numbered_in_commit_order_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let seen = store
                .follow(|view| {
                    assert!(view.groups()?.is_empty());
                    Ok(Recorder::default())
                })
                .await
                .unwrap();
            store.create_group(group("a"), 10).await.unwrap();
            store.create_group(group("b"), 10).await.unwrap();
            // Refused writes commit nothing and log nothing.
            assert!(store.create_group(group("a"), 10).await.is_err());
            assert!(store.create_group(group("c"), 2).await.is_err());
            store.delete_group("a".into()).await.unwrap();
            assert_eq!(
                *seen.0.lock(),
                [
                    (1, "create a".to_owned()),
                    (2, "create b".to_owned()),
                    (3, "delete a".to_owned())
                ]
            );
            assert_eq!(store.applied(), 3);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.applied(), 3, "the position survives a restart");
        let seen = store
            .follow(|view| {
                let groups = view.groups()?;
                assert_eq!(
                    groups.len(),
                    1,
                    "a follower starts from the committed state"
                );
                Ok(Recorder::default())
            })
            .await
            .unwrap();
        store.create_group(group("c"), 10).await.unwrap();
        assert_eq!(*seen.0.lock(), [(4, "create c".to_owned())]);
    }

    /// A write that commits while a follower loads (which holds no lock) reaches it once, from the log.
    #[tokio::test]
    async fn a_write_during_the_load_reaches_the_new_follower() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_group(group("a"), 10).await.unwrap();
        let path = store.database_file().unwrap().to_owned();
        let seen = store
            .follow(move |view| {
                assert_eq!(view.groups()?.len(), 1, "the load's snapshot");
                // Another writer commits meanwhile (what a CAM call does while a large index loads).
                let other = rusqlite::Connection::open(&path).unwrap();
                let tx = other.unchecked_transaction().unwrap();
                crate::store::sql::groups::insert(&*tx, &group("b"), 1).unwrap();
                let change = Change::CreateGroup {
                    group_id: "b".into(),
                    version: "3.0".into(),
                    model: "m.onnx".into(),
                };
                crate::store::sql::changes::append(&*tx, &[change]).unwrap();
                tx.commit().unwrap();
                Ok(Recorder::default())
            })
            .await
            .unwrap();
        assert_eq!(*seen.0.lock(), [(2, "create b".to_owned())]);
        store.create_group(group("c"), 10).await.unwrap();
        assert_eq!(seen.0.lock().last().unwrap(), &(3, "create c".to_owned()));
    }
}
