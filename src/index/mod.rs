//! The search index: in memory, one flat (exact) index per group (a group has one model version), with
//! every face embedding of the group's persons and one fused feature per person (the normalised mean of its
//! face embeddings). Rebuilt from SQLite at start; changed only after the database committed, in commit
//! order (the store applies `Change`s while it still holds its write lock), so it always follows the
//! database. Each group sits behind its own lock: a search holds a read lock for its scan, a change holds the
//! write lock for the few microseconds of an insert or removal.
//!
//! `Indexes::digest` summarises every group (counts and a hash of every vector and owner) so that the live
//! index can be compared with a rebuild from SQLite (`iai-server check-index`). Fused features are computed
//! over a person's faces in key order, so the same faces always give the same bits, whatever the history.
//! The digest is computed from a snapshot (`Indexes::snapshot`): taken under each group's lock in the time
//! of copying its keys and owners (the vectors' pages are shared, copied on a later write:
//! `flat::FlatIndex::snapshot`), then hashed while writes go on.

pub mod calibrate;
pub mod flat;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::face::embed::normalise;
use crate::store::StoreError;
use crate::store::changes::{Follower, StartView};
pub use crate::store::{Change, FaceVectors};
use flat::{FlatIndex, FlatSnapshot, Hit};

pub struct GroupIndex {
    pub version: ModelVersion,
    /// The network whose embeddings this index holds.
    pub model: &'static Recognition,
    faces: FlatIndex,
    face_owner: HashMap<u64, u32>,
    persons: FlatIndex,
    person_faces: HashMap<u32, Vec<u64>>,
    person_ids: Vec<Arc<str>>,
    slots: HashMap<Arc<str>, u32>,
    /// Slots of persons that left the group, reused first (else the maps grow with every person ever seen).
    free_slots: Vec<u32>,
}

/// A face search hit: the person, the face and its cosine.
#[derive(Debug, Clone)]
pub struct FaceHit {
    pub person_id: Arc<str>,
    pub face: u64,
    pub cosine: f32,
}

/// A person's fused feature: the normalised mean of its (unit) face embeddings.
pub fn fused<'a>(dim: usize, embeddings: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut mean = vec![0f32; dim];
    for v in embeddings {
        mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
    }
    normalise(&mut mean);
    mean
}

impl GroupIndex {
    pub fn new(version: ModelVersion, model: &'static Recognition) -> Self {
        Self {
            version,
            model,
            faces: FlatIndex::new(model.dim),
            face_owner: HashMap::new(),
            persons: FlatIndex::new(model.dim),
            person_faces: HashMap::new(),
            person_ids: Vec::new(),
            slots: HashMap::new(),
            free_slots: Vec::new(),
        }
    }

    pub fn face_count(&self) -> usize {
        self.faces.len()
    }

    pub fn person_count(&self) -> usize {
        self.persons.len()
    }

    pub fn reserve(&mut self, faces: usize) {
        self.faces.reserve(faces);
    }

    fn slot(&mut self, person_id: &str) -> u32 {
        if let Some(&slot) = self.slots.get(person_id) {
            return slot;
        }
        let id: Arc<str> = Arc::from(person_id);
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.person_ids[slot as usize] = id.clone();
                slot
            }
            None => {
                self.person_ids.push(id.clone());
                (self.person_ids.len() - 1) as u32
            }
        };
        self.slots.insert(id, slot);
        slot
    }

    /// The person of `slot` has no face left in the group: forget it.
    fn release(&mut self, slot: u32) {
        self.persons.remove(u64::from(slot));
        self.person_faces.remove(&slot);
        if self.slots.remove(&self.person_ids[slot as usize]).is_some() {
            self.free_slots.push(slot);
        }
    }

    /// Add faces without refreshing the fused features (bulk loading); call `refresh_all` after.
    pub fn add_faces_unfused(&mut self, person_id: &str, faces: &[(u64, Vec<f32>)]) -> u32 {
        let slot = self.slot(person_id);
        for (face, vector) in faces {
            if vector.len() != self.faces.dim() {
                continue;
            }
            self.faces.upsert(*face, vector);
            self.face_owner.insert(*face, slot);
            let list = self.person_faces.entry(slot).or_default();
            if !list.contains(face) {
                list.push(*face);
            }
        }
        slot
    }

    pub fn add_faces(&mut self, person_id: &str, faces: &[(u64, Vec<f32>)]) {
        let slot = self.add_faces_unfused(person_id, faces);
        self.refresh(slot);
    }

    pub fn remove_faces(&mut self, faces: &[u64]) {
        let mut touched = Vec::new();
        for face in faces {
            self.faces.remove(*face);
            if let Some(slot) = self.face_owner.remove(face) {
                if let Some(list) = self.person_faces.get_mut(&slot) {
                    list.retain(|f| f != face);
                }
                touched.push(slot);
            }
        }
        touched.dedup();
        for slot in touched {
            self.refresh(slot);
        }
    }

    pub fn remove_person(&mut self, person_id: &str) {
        let Some(&slot) = self.slots.get(person_id) else {
            return;
        };
        for face in self.person_faces.remove(&slot).unwrap_or_default() {
            self.faces.remove(face);
            self.face_owner.remove(&face);
        }
        self.release(slot);
    }

    /// Recompute a person's fused feature from its face embeddings (in key order: the same faces always
    /// give the same bits).
    fn refresh(&mut self, slot: u32) {
        let mut faces = self.person_faces.get(&slot).cloned().unwrap_or_default();
        faces.sort_unstable();
        if faces.is_empty() {
            self.release(slot);
            return;
        }
        let feature = fused(
            self.faces.dim(),
            faces.iter().filter_map(|f| self.faces.get(*f)),
        );
        self.persons.upsert(u64::from(slot), &feature);
    }

    pub fn refresh_all(&mut self) {
        let slots: Vec<u32> = self.person_faces.keys().copied().collect();
        for slot in slots {
            self.refresh(slot);
        }
    }

    /// The best faces; enough of them (`persons` x 5, a person has at most 5 faces) that `persons`
    /// distinct persons are among them when the group has that many.
    pub fn search_faces(&self, query: &[f32], persons: usize) -> Vec<FaceHit> {
        self.faces
            .search(query, persons * 5)
            .into_iter()
            .filter_map(|Hit { key, score }| {
                let slot = *self.face_owner.get(&key)?;
                Some(FaceHit {
                    person_id: self.person_ids[slot as usize].clone(),
                    face: key,
                    cosine: score,
                })
            })
            .collect()
    }

    /// Counts and a hash of every face (key, owner, vector) and every person (id, fused feature), in key
    /// order, so that equal digests mean equal indexes.
    pub fn digest(&self) -> GroupDigest {
        self.snapshot().digest()
    }

    /// What `digest` reads, copied: the keys and owners (the vectors' pages are shared), for hashing
    /// after the lock is released.
    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            version: self.version,
            faces: self.faces.snapshot(),
            face_owner: self.face_owner.iter().map(|(&f, &s)| (f, s)).collect(),
            persons: self.persons.snapshot(),
            person_ids: self.person_ids.clone(),
            person_slots: self.person_faces.keys().copied().collect(),
        }
    }

    /// The best persons by fused feature.
    pub fn search_persons(&self, query: &[f32], k: usize) -> Vec<(Arc<str>, f32)> {
        self.persons
            .search(query, k)
            .into_iter()
            .map(|hit| (self.person_ids[hit.key as usize].clone(), hit.score))
            .collect()
    }

    /// Every person of the group with its fused feature, in no particular order (the duplicate-person
    /// checks copy them under the read lock).
    pub fn person_vectors(&self) -> impl Iterator<Item = (&Arc<str>, &[f32])> + '_ {
        self.person_faces.keys().filter_map(|&slot| {
            let vector = self.persons.get(u64::from(slot))?;
            Some((&self.person_ids[slot as usize], vector))
        })
    }
}

/// A group's index as of one moment, for its digest (`GroupIndex::snapshot`).
pub struct GroupSnapshot {
    version: ModelVersion,
    faces: FlatSnapshot,
    face_owner: Vec<(u64, u32)>,
    persons: FlatSnapshot,
    person_ids: Vec<Arc<str>>,
    person_slots: Vec<u32>,
}

impl GroupSnapshot {
    /// `GroupIndex::digest`: faces (key, owner's id, vector) by key, then persons (id, fused feature) by
    /// id. A face or person without a stored vector hashes an empty one.
    pub fn digest(mut self) -> GroupDigest {
        /// Storage positions sorted by key, to look vectors up by key.
        fn by_key(flat: &FlatSnapshot) -> Vec<(u64, usize)> {
            let mut at: Vec<(u64, usize)> = flat.keys().iter().copied().zip(0..).collect();
            at.sort_unstable();
            at
        }
        fn vector<'a>(flat: &'a FlatSnapshot, at: &[(u64, usize)], key: u64) -> &'a [f32] {
            match at.binary_search_by_key(&key, |&(k, _)| k) {
                Ok(i) => flat.vector(at[i].1),
                Err(_) => &[],
            }
        }
        let mut hash = Sha256::new();
        let faces_at = by_key(&self.faces);
        self.face_owner.sort_unstable();
        for &(face, slot) in &self.face_owner {
            hash.update(face.to_le_bytes());
            hash.update(self.person_ids[slot as usize].as_bytes());
            hash.update([0]);
            for x in vector(&self.faces, &faces_at, face) {
                hash.update(x.to_le_bytes());
            }
        }
        let persons_at = by_key(&self.persons);
        let mut persons: Vec<(&str, u32)> = self
            .person_slots
            .iter()
            .map(|&slot| (&*self.person_ids[slot as usize], slot))
            .collect();
        persons.sort_unstable();
        for (id, slot) in &persons {
            hash.update(id.as_bytes());
            hash.update([0]);
            for x in vector(&self.persons, &persons_at, u64::from(*slot)) {
                hash.update(x.to_le_bytes());
            }
        }
        GroupDigest {
            version: self.version.as_str().to_owned(),
            faces: self.faces.len(),
            persons: self.persons.len(),
            sha256: hex::encode(hash.finalize()),
        }
    }
}

/// Every group's snapshot (`Indexes::snapshot`).
pub struct IndexSnapshot(Vec<(String, GroupSnapshot)>);

impl IndexSnapshot {
    /// Every group's digest (the hashing: run it off the async workers).
    pub fn digest(self) -> Digest {
        self.0
            .into_iter()
            .map(|(id, group)| (id, group.digest()))
            .collect()
    }
}

/// Scans of up to this many vectors take well under a millisecond and run where they are asked for; larger
/// ones go to the blocking pool (they must never stall the async workers), at most one per core at a time.
pub const INLINE_SCAN_VECTORS: usize = 4096;

/// Runs large index scans off the async runtime, admitted by a gate of one scan per core.
pub struct Scanner {
    gate: Arc<crate::admission::Gate>,
}

/// A scan could not run (the runtime is shutting down, or the scan panicked).
#[derive(Debug, thiserror::Error)]
#[error("index scan failed: {0}")]
pub struct ScanFailed(pub String);

impl Scanner {
    pub fn new(concurrent: usize) -> Self {
        Self {
            gate: crate::admission::Gate::calls("scan", concurrent),
        }
    }

    /// Run `scan`, which reads about `vectors` vectors: inline when small, else on the blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        vectors: usize,
        scan: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ScanFailed> {
        let timed = move || {
            let started = std::time::Instant::now();
            let found = scan();
            crate::face::stage("scan", started);
            found
        };
        if vectors <= INLINE_SCAN_VECTORS {
            return Ok(timed());
        }
        let waited = std::time::Instant::now();
        let ticket = self
            .gate
            .enter()
            .await
            .map_err(|e| ScanFailed(e.to_string()))?;
        crate::face::stage("scan_wait", waited);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _ticket = ticket;
            span.in_scope(timed)
        })
        .await
        .map_err(|e| ScanFailed(e.to_string()))
    }
}

/// What a group's index holds, summarised (`GroupIndex::digest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDigest {
    pub version: String,
    pub faces: usize,
    pub persons: usize,
    pub sha256: String,
}

/// Every group's digest, by group id.
pub type Digest = std::collections::BTreeMap<String, GroupDigest>;

/// One group's index behind its lock, with what callers check before a search (model version, counts) kept
/// outside the lock: the lock is fair, so a reader queued behind a waiting writer would wait for a whole
/// scan in progress, and those checks run on the async workers.
pub struct Group {
    pub version: ModelVersion,
    pub model: &'static Recognition,
    faces: AtomicUsize,
    persons: AtomicUsize,
    index: RwLock<GroupIndex>,
}

impl Group {
    fn new(index: GroupIndex) -> Self {
        let group = Self {
            version: index.version,
            model: index.model,
            faces: AtomicUsize::new(0),
            persons: AtomicUsize::new(0),
            index: RwLock::new(index),
        };
        group.change(|_| {});
        group
    }

    /// The index, for a scan (on the blocking pool when large: `Scanner`).
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, GroupIndex> {
        self.index.read()
    }

    /// Faces in the group as of the last change (never waits).
    pub fn face_count(&self) -> usize {
        self.faces.load(Ordering::Acquire)
    }

    /// Persons with at least one face, as of the last change (never waits).
    pub fn person_count(&self) -> usize {
        self.persons.load(Ordering::Acquire)
    }

    fn change(&self, f: impl FnOnce(&mut GroupIndex)) {
        let mut index = self.index.write();
        f(&mut index);
        self.faces.store(index.face_count(), Ordering::Release);
        self.persons.store(index.person_count(), Ordering::Release);
    }
}

/// Every group's index.
#[derive(Default)]
pub struct Indexes {
    groups: RwLock<HashMap<String, Arc<Group>>>,
}

impl Indexes {
    /// Build every group's index from the database (at start, from the view `Store::follow` gives).
    pub fn load(view: &dyn StartView) -> Result<Self, StoreError> {
        let counts = view.face_counts()?;
        let mut built: HashMap<String, GroupIndex> = HashMap::new();
        for group in view.groups()? {
            let (version, model) = resolve(&group.face_model_version, &group.serving_model);
            let mut index = GroupIndex::new(version, model);
            index.reserve(counts.get(&group.group_id).copied().unwrap_or(0) as usize);
            built.insert(group.group_id, index);
        }
        view.for_each_indexed_face(&mut |group, person, face, embedding| {
            if let (Some(index), Ok(key)) = (built.get_mut(group), face.parse::<u64>()) {
                index.add_faces_unfused(person, &[(key, embedding)]);
            }
        })?;
        let indexes = Indexes::default();
        for (group_id, mut index) in built {
            index.refresh_all();
            indexes.insert_group(group_id, index);
        }
        Ok(indexes)
    }

    /// Every group's digest (`snapshot`, then hashing).
    pub fn digest(&self) -> Digest {
        self.snapshot().digest()
    }

    /// Every group as of now, for a digest: quick (each group's keys and owners are copied, its vectors
    /// shared), so callers that need a state no write is half-way through take it under the store's
    /// write lock (`Store::exclusive`) and hash it after.
    pub fn snapshot(&self) -> IndexSnapshot {
        let groups: Vec<(String, Arc<Group>)> = self
            .groups
            .read()
            .iter()
            .map(|(id, index)| (id.clone(), index.clone()))
            .collect();
        IndexSnapshot(
            groups
                .into_iter()
                .map(|(id, index)| (id, index.read().snapshot()))
                .collect(),
        )
    }

    /// (group id, faces, persons) of every group, for the metrics.
    pub fn sizes(&self) -> Vec<(String, usize, usize)> {
        let groups = self.groups.read();
        let mut sizes: Vec<(String, usize, usize)> = groups
            .iter()
            .map(|(id, group)| (id.clone(), group.face_count(), group.person_count()))
            .collect();
        sizes.sort_unstable();
        sizes
    }

    pub fn group(&self, group_id: &str) -> Option<Arc<Group>> {
        self.groups.read().get(group_id).cloned()
    }

    pub fn insert_group(&self, group_id: String, index: GroupIndex) {
        self.groups
            .write()
            .insert(group_id, Arc::new(Group::new(index)));
    }

    pub fn apply(&self, change: &Change) {
        match change {
            Change::CreateGroup {
                group_id,
                version,
                model,
            } => {
                let (version, model) = resolve(version, model);
                self.insert_group(group_id.clone(), GroupIndex::new(version, model))
            }
            Change::Rebuild {
                group_id,
                version,
                model,
                faces,
            } => {
                let (version, model) = resolve(version, model);
                let Some(faces) = faces else {
                    // Only a follower in another process gets a rebuild without its rows (PostgreSQL).
                    tracing::error!(group_id, "a group rebuild came without its rows");
                    return;
                };
                let mut index = GroupIndex::new(version, model);
                index.reserve(faces.len());
                for (person, key, vector) in faces.iter() {
                    index.add_faces_unfused(person, &[(*key, vector.clone())]);
                }
                index.refresh_all();
                self.insert_group(group_id.clone(), index);
            }
            Change::DeleteGroup { group_id } => {
                self.groups.write().remove(group_id);
            }
            Change::AddFaces {
                group_ids,
                person_id,
                faces,
            } => {
                for group in group_ids.iter().filter_map(|g| self.group(g)) {
                    // The embeddings by the network this group serves (a face without one is not indexed
                    // here: the transaction that stored it refuses that case).
                    let mine: Vec<(u64, Vec<f32>)> = faces
                        .iter()
                        .filter_map(|(key, vectors)| {
                            let (_, v) = vectors.iter().find(|(m, _)| m == group.model.file)?;
                            Some((*key, v.clone()))
                        })
                        .collect();
                    group.change(|index| index.add_faces(person_id, &mine));
                }
            }
            Change::RemoveFaces { group_ids, faces } => {
                for group in group_ids.iter().filter_map(|g| self.group(g)) {
                    group.change(|index| index.remove_faces(faces));
                }
            }
            Change::RemovePerson {
                group_ids,
                person_id,
            } => {
                for group in group_ids.iter().filter_map(|g| self.group(g)) {
                    group.change(|index| index.remove_person(person_id));
                }
            }
            Change::Cam { .. } => {}
        }
    }
}

/// The index follows the store's change log.
impl Follower for Indexes {
    fn apply(&self, _seq: u64, change: &Change) {
        Indexes::apply(self, change);
    }
}

/// A group's version and network from their stored names (an unknown network: the version's current one).
pub(crate) fn resolve(version: &str, model: &str) -> (ModelVersion, &'static Recognition) {
    let version = ModelVersion::parse(version).unwrap_or(ModelVersion::V3);
    let model = Recognition::by_file(model).unwrap_or_else(|| Recognition::current(version));
    (version, model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(values: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; 128];
        out[..values.len()].copy_from_slice(values);
        normalise(&mut out);
        out
    }

    #[test]
    fn fused_features_follow_face_changes() {
        let mut index = GroupIndex::new(ModelVersion::V3, &crate::face::embed::DLIB_128);
        index.add_faces("p", &[(1, v(&[1.0, 0.0])), (2, v(&[0.0, 1.0]))]);
        index.add_faces("q", &[(3, v(&[-1.0, 0.0]))]);
        let (best, cosine) = index.search_persons(&v(&[1.0, 1.0]), 1).remove(0);
        assert_eq!(&*best, "p");
        assert!((cosine - 1.0).abs() < 1e-5);
        index.remove_faces(&[2]);
        let (_, cosine) = index.search_persons(&v(&[1.0, 1.0]), 1).remove(0);
        assert!((cosine - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5);
        let hits = index.search_faces(&v(&[-1.0, 0.0]), 1);
        assert_eq!((&*hits[0].person_id, hits[0].face), ("q", 3));
        index.remove_person("q");
        assert_eq!((index.face_count(), index.person_count()), (1, 1));
    }

    #[test]
    fn persons_that_come_and_go_do_not_grow_the_index() {
        let mut index = GroupIndex::new(ModelVersion::V3, &crate::face::embed::DLIB_128);
        index.add_faces("keep", &[(1, v(&[1.0]))]);
        for i in 0..100u64 {
            let id = format!("visitor-{i}");
            index.add_faces(&id, &[(10 + i, v(&[0.0, 1.0]))]);
            index.remove_person(&id);
        }
        assert_eq!((index.person_ids.len(), index.slots.len()), (2, 1));
        let hits = index.search_persons(&v(&[1.0]), 5);
        assert_eq!((hits.len(), &*hits[0].0), (1, "keep"));
        index.add_faces("new", &[(500, v(&[0.0, 1.0]))]);
        assert_eq!(&*index.search_persons(&v(&[0.0, 1.0]), 1)[0].0, "new");
    }

    #[test]
    fn large_scans_leave_the_async_thread_and_small_ones_stay() {
        // A current-thread runtime: its one async thread is this test's thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let scanner = Scanner::new(2);
        let here = std::thread::current().id();
        let (small, large) = runtime.block_on(async {
            let small = scanner
                .run(INLINE_SCAN_VECTORS, || std::thread::current().id())
                .await
                .unwrap();
            let large = scanner
                .run(INLINE_SCAN_VECTORS + 1, || std::thread::current().id())
                .await
                .unwrap();
            (small, large)
        });
        assert_eq!(small, here);
        assert_ne!(large, here);
    }

    #[test]
    fn equal_contents_give_equal_digests_whatever_the_history() {
        let mut built = GroupIndex::new(ModelVersion::V3, &crate::face::embed::DLIB_128);
        built.add_faces("p", &[(1, v(&[1.0, 0.2])), (2, v(&[0.3, 1.0]))]);
        built.add_faces("q", &[(3, v(&[-1.0, 0.0]))]);
        built.add_faces("p", &[(4, v(&[0.5, 0.5, 0.5]))]);
        built.remove_faces(&[1]);
        let mut loaded = GroupIndex::new(ModelVersion::V3, &crate::face::embed::DLIB_128);
        loaded.add_faces_unfused("q", &[(3, v(&[-1.0, 0.0]))]);
        loaded.add_faces_unfused("p", &[(4, v(&[0.5, 0.5, 0.5])), (2, v(&[0.3, 1.0]))]);
        loaded.refresh_all();
        assert_eq!(built.digest(), loaded.digest());
        loaded.remove_person("q");
        assert_ne!(built.digest(), loaded.digest());
        assert_eq!(loaded.digest().faces, 2);
    }

    #[test]
    fn a_snapshot_digests_the_index_as_it_was_when_taken() {
        let indexes = Indexes::default();
        let mut index = GroupIndex::new(ModelVersion::V3, &crate::face::embed::DLIB_128);
        for p in 0..300u64 {
            let faces: Vec<(u64, Vec<f32>)> = (0..5)
                .map(|f| (p * 5 + f, v(&[p as f32, f as f32, 1.0])))
                .collect();
            index.add_faces_unfused(&format!("p{p}"), &faces);
        }
        index.refresh_all();
        indexes.insert_group("g".into(), index);
        let before = indexes.digest();
        let snapshot = indexes.snapshot();
        indexes.apply(&Change::RemovePerson {
            group_ids: vec!["g".into()],
            person_id: "p0".into(),
        });
        indexes.apply(&Change::AddFaces {
            group_ids: vec!["g".into()],
            person_id: "p1".into(),
            faces: vec![(
                10_000,
                vec![(
                    crate::face::embed::DLIB_128.file.to_owned(),
                    v(&[0.0, 0.0, 0.0, 1.0]),
                )],
            )],
        });
        indexes.apply(&Change::DeleteGroup {
            group_id: "g".into(),
        });
        assert_eq!(snapshot.digest(), before);
        assert!(indexes.digest().is_empty());
    }

    /// The time writes wait for a digest, at 200,000 faces of 128 dimensions: all of the hashing before
    /// (the digest was computed under the store's write lock), the snapshot now.
    /// `cargo test --release index::tests::digest_lock_time -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn digest_lock_time() {
        let indexes = Indexes::default();
        let mut index = GroupIndex::new(ModelVersion::V3, &crate::face::embed::DLIB_128);
        index.reserve(200_000);
        for p in 0..40_000u64 {
            let faces: Vec<(u64, Vec<f32>)> = (0..5)
                .map(|f| {
                    (
                        p * 5 + f,
                        v(&[(p % 97) as f32, f as f32, (p % 13) as f32, 1.0]),
                    )
                })
                .collect();
            index.add_faces_unfused(&format!("person-{p}"), &faces);
        }
        index.refresh_all();
        indexes.insert_group("big".into(), index);
        let time = |f: &dyn Fn()| {
            let started = std::time::Instant::now();
            for _ in 0..5 {
                f();
            }
            started.elapsed().as_secs_f64() * 1000.0 / 5.0
        };
        let whole = time(&|| {
            std::hint::black_box(indexes.digest());
        });
        let snapshot = time(&|| {
            std::hint::black_box(indexes.snapshot());
        });
        println!(
            "200,000 faces: digest (snapshot and hashing) {whole:.1} ms, snapshot alone {snapshot:.2} ms"
        );
    }
}
