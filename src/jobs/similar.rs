//! The legacy duplicate-person checks (CheckSimilarPerson, CONTROL.md §A.5-A.8): find persons of up to 10
//! groups (3.0 only) that are probably one person enrolled under two PersonIds.
//!
//! A check is a job row (`store::jobs`, kind `check_similar_person`); the worker here runs the unfinished
//! ones one at a time, oldest first. When a check starts running it snapshots its groups: every person's
//! fused feature is copied under the group's read lock (a person in several of the groups is the same stored
//! person with the same faces: it is taken once, with the list of its groups). Edits made while the check
//! waits in the queue count; edits made after the snapshot do not (Tencent's semantics).
//!
//! The scan compares every pair of distinct persons of the snapshot (within a group and across groups) on
//! a dedicated pool of one thread per core, in row blocks against column tiles (each tile of fused features
//! stays in cache while a block of rows is scored against it), in rounds of about a quarter of a second;
//! after each round the progress is persisted in the job row (at most once a second) and logged (every 10
//! s). Progress reaches 100 only once the result file is written. A pair is a finding when its 1:1 score
//! (`face::score`, the 3.0 calibration of the network the groups serve) reaches the threshold of
//! `UniquePersonControl`: 60 (FAR 1e-5 per pair) for 1, 70 (FAR 1e-6) for 2.
//!
//! The result is a JSON array in `<data dir>/files/{JobId}.json` (kept 90 days), one element per pair,
//! strongest first: `{"Score": 87.12, "Persons": [{"PersonId", "PersonName", "GroupIds"}, {...}]}`.
//!
//! A running check saves its position every 10 s (`check_progress`: the snapshot's persons in scan order,
//! the rows done, the pairs found so far). Checks that were running when their server stopped (or, with
//! several replicas, when the holder of the checks' lease died) resume from that position, taking each
//! saved person's feature as it is then; one that saved nothing yet runs again from the beginning.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Jobs;
use super::check_progress::{self, Position};
use super::lease::Lease;
use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::face::score::Calibration;
use crate::index::Group;
use crate::index::flat::dot_block;
use crate::store::jobs::JobRow;
use crate::store::{StoreError, now_ms};
// What a check keeps in its row, and the queue's estimate, are the store's (it refuses a check that would
// overfill the queue in the transaction that queues it).
pub use crate::store::jobs::{CheckParams as Params, minutes, remaining_pairs};

/// At most this many groups per check.
pub const MAX_GROUPS: usize = 10;
/// At most this many persons in the groups of a check (counted once per group).
pub const MAX_PERSONS: u64 = 2_000_000;
/// A check whose estimate (with the checks queued before it) exceeds this is refused.
pub const MAX_MINUTES: u64 = 5 * 60;
/// How long a link to a result file stays valid (Tencent: 5 minutes).
pub const RESULT_LINK: Duration = Duration::from_secs(5 * 60);
/// How long result files are kept (Tencent: 90 days).
pub const RESULT_KEPT: Duration = Duration::from_secs(90 * 24 * 3600);
/// How long finished checks stay listed (Tencent: the last year).
const JOBS_KEPT_MS: i64 = 365 * 24 * 3600 * 1000;
/// A check keeps at most this many pairs (the strongest): at a fixed per-pair false-accept rate the
/// number of chance pairs grows with the square of the library (README, "Duplicate-person checks").
pub const MAX_RESULT_PAIRS: usize = 1_000_000;

/// How long one round of the scan should take.
const ROUND: Duration = Duration::from_millis(250);
/// Rows scored per task, and persons per column tile (a 3.0 tile is 128 x 192 floats: 96 KiB).
const BLOCK_ROWS: usize = 32;
const TILE: usize = 128;

/// The score a pair must reach for `UniquePersonControl` 1 or 2.
pub fn threshold_score(unique_person_control: i64) -> Option<f32> {
    match unique_person_control {
        1 => Some(60.0),
        2 => Some(70.0),
        _ => None,
    }
}

/// Pairs among `n` persons.
pub fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

// ---------------------------------------------------------------------------------------------------------
// The scan rate.

/// The scan rate last measured (f64 bits; 0 = not yet): a calibration scan at first use, then the rate of
/// each check large enough to time.
static MEASURED: AtomicU64 = AtomicU64::new(0);
/// Checks comparing at least this many pairs update the measured rate.
const TIMED_PAIRS: u64 = 2_000_000;

/// The scan rate last measured, if any.
pub fn measured() -> Option<f64> {
    let bits = MEASURED.load(Ordering::Relaxed);
    (bits != 0).then(|| f64::from_bits(bits))
}

/// Record a measured scan rate (pairs per second).
pub fn set_measured(rate: f64) {
    if rate.is_finite() && rate > 0.0 {
        MEASURED.store(rate.to_bits(), Ordering::Relaxed);
    }
}

/// The operator's cap on the scan rate, pairs compared per second (configuration:
/// `similar_max_pairs_per_second`), so that a check leaves CPU to requests.
static THROTTLE: OnceLock<Option<f64>> = OnceLock::new();

/// Set the cap once, at start (a value that is not a positive number means none).
pub fn set_throttle(cap: Option<f64>) {
    let cap = cap.filter(|rate| *rate > 0.0 && rate.is_finite());
    let _ = THROTTLE.set(cap);
}

pub fn throttle() -> Option<f64> {
    THROTTLE.get().copied().flatten()
}

/// A measured rate as the checks will run: capped by the throttle.
pub fn capped(rate: f64) -> f64 {
    throttle().map_or(rate, |cap| rate.min(cap))
}

/// Persons of the calibration scan (8.4 million pairs).
pub const CALIBRATION_PERSONS: usize = 4096;

/// Time a scan of synthetic features of the 3.0 network (blocking: run it off the async workers).
pub fn calibrate() -> f64 {
    let dim = Recognition::current(ModelVersion::V3).dim;
    let n = CALIBRATION_PERSONS;
    let vectors = synthetic(n, dim, 1);
    let started = Instant::now();
    // Nothing reaches a cosine above 1: every pair is scored and none kept.
    let found = pool().install(|| scan_rows(&vectors, dim, 0..n, 1.5));
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    debug_assert!(found.is_empty());
    let rate = pairs(n as u64) as f64 / seconds;
    tracing::info!(
        pairs_per_second = rate.round(),
        "duplicate-person checks: scan rate measured"
    );
    rate
}

/// Unit vectors from a small deterministic generator (calibration and tests).
pub fn synthetic(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..dim {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            out.push(((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5);
        }
        crate::face::embed::normalise(&mut out[start..]);
    }
    out
}

/// The checks' own threads, one per core: a check's long scan never queues ahead of a search's scan in
/// rayon's global pool; the two share the cores through the operating system's scheduler.
fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(crate::admission::cores())
            .thread_name(|i| format!("iai-similar-{i}"))
            .build()
            .expect("cannot start the duplicate-check threads")
    })
}

// ---------------------------------------------------------------------------------------------------------
// The snapshot and the scan.

/// The persons of a check's groups, each once: id, the groups holding it (bit i = the check's i-th group)
/// and its fused feature (row i of `vectors`).
pub struct Snapshot {
    pub dim: usize,
    pub ids: Vec<Arc<str>>,
    pub groups: Vec<u16>,
    pub vectors: Vec<f32>,
}

impl Snapshot {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ids: Vec::new(),
            groups: Vec::new(),
            vectors: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Add the persons of the check's `group`-th group (a person already taken gains the group).
    pub fn add<'a>(
        &mut self,
        group: usize,
        persons: impl Iterator<Item = (&'a Arc<str>, &'a [f32])>,
        seen: &mut std::collections::HashMap<Arc<str>, u32>,
    ) {
        for (id, vector) in persons {
            if vector.len() != self.dim {
                continue;
            }
            match seen.get(id) {
                Some(&row) => self.groups[row as usize] |= 1 << group,
                None => {
                    seen.insert(id.clone(), self.ids.len() as u32);
                    self.ids.push(id.clone());
                    self.groups.push(1 << group);
                    self.vectors.extend_from_slice(vector);
                }
            }
        }
    }
}

/// Copy the persons of `groups` (the check's groups in order), each group under its read lock in turn.
/// Blocking: a large group takes a while to copy.
pub fn snapshot(groups: &[Arc<Group>], dim: usize) -> Snapshot {
    let mut snapshot = Snapshot::new(dim);
    let mut seen = std::collections::HashMap::new();
    for (i, group) in groups.iter().enumerate() {
        let index = group.read();
        snapshot.add(i, index.person_vectors(), &mut seen);
    }
    snapshot
}

/// Two persons of the snapshot (rows `a` < `b`) and their cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub cosine: f32,
}

/// Pairs that rows `rows` form with the rows after them.
pub fn pairs_in_rows(n: usize, rows: Range<usize>) -> u64 {
    rows.map(|i| (n - 1 - i) as u64).sum()
}

/// The end of the round starting at row `start`: enough rows for about `budget` pairs (at least one).
pub fn round_end(n: usize, start: usize, budget: u64) -> usize {
    let mut pairs = 0u64;
    let mut end = start;
    while end < n && (end == start || pairs < budget) {
        pairs += (n - 1 - end) as u64;
        end += 1;
    }
    end
}

/// Every pair (i, j), i in `rows`, j > i, whose cosine reaches `floor`: blocks of `BLOCK_ROWS` rows on the
/// current rayon pool, each block scored against column tiles of `TILE` persons.
pub fn scan_rows(vectors: &[f32], dim: usize, rows: Range<usize>, floor: f32) -> Vec<Pair> {
    let n = vectors.len() / dim;
    let blocks: Vec<Range<usize>> = rows
        .clone()
        .step_by(BLOCK_ROWS)
        .map(|start| start..(start + BLOCK_ROWS).min(rows.end))
        .collect();
    blocks
        .into_par_iter()
        .map(|block| {
            let mut found = Vec::new();
            let mut scores = vec![0f32; TILE];
            let mut tile = block.start + 1;
            while tile < n {
                let tile_end = (tile + TILE).min(n);
                for i in block.clone() {
                    let from = tile.max(i + 1);
                    if from >= tile_end {
                        continue;
                    }
                    let scores = &mut scores[..tile_end - from];
                    dot_block(
                        &vectors[i * dim..(i + 1) * dim],
                        &vectors[from * dim..tile_end * dim],
                        scores,
                    );
                    for (offset, &cosine) in scores.iter().enumerate() {
                        if cosine >= floor {
                            found.push(Pair {
                                a: i as u32,
                                b: (from + offset) as u32,
                                cosine,
                            });
                        }
                    }
                }
                tile = tile_end;
            }
            found
        })
        .reduce(Vec::new, |mut a, mut b| {
            a.append(&mut b);
            a
        })
}

/// Keep the `keep` strongest pairs when there are more than twice that many; returns the cosine the kept
/// ones reach (the scan's new floor), or `None` when nothing was dropped.
pub fn keep_strongest(found: &mut Vec<Pair>, keep: usize) -> Option<f32> {
    if keep == 0 || found.len() <= 2 * keep {
        return None;
    }
    found.select_nth_unstable_by(keep - 1, |x, y| y.cosine.total_cmp(&x.cosine));
    found.truncate(keep);
    found.iter().map(|p| p.cosine).reduce(f32::min)
}

// ---------------------------------------------------------------------------------------------------------
// The result file.

/// One finding: two persons that are probably one, with the score of their fused features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarPerson {
    #[serde(rename = "Score")]
    pub score: f64,
    #[serde(rename = "Persons")]
    pub persons: Vec<SimilarPersonInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarPersonInfo {
    #[serde(rename = "PersonId")]
    pub person_id: String,
    /// "" when the person was deleted after the snapshot.
    #[serde(rename = "PersonName")]
    pub person_name: String,
    /// The checked groups holding the person (at the snapshot), in the order asked.
    #[serde(rename = "GroupIds")]
    pub group_ids: Vec<String>,
}

/// The findings, strongest first (ties by PersonIds), each pair's persons in PersonId order.
pub fn findings(
    snapshot: &Snapshot,
    mut found: Vec<Pair>,
    group_ids: &[String],
    calibration: &Calibration,
    name: impl Fn(&str) -> String,
) -> Vec<SimilarPerson> {
    let info = |row: u32| {
        let row = row as usize;
        let id = &snapshot.ids[row];
        SimilarPersonInfo {
            person_id: id.to_string(),
            person_name: name(id),
            group_ids: group_ids
                .iter()
                .enumerate()
                .filter(|(i, _)| snapshot.groups[row] & (1 << i) != 0)
                .map(|(_, g)| g.clone())
                .collect(),
        }
    };
    for pair in &mut found {
        if snapshot.ids[pair.b as usize] < snapshot.ids[pair.a as usize] {
            std::mem::swap(&mut pair.a, &mut pair.b);
        }
    }
    found.sort_by(|x, y| {
        y.cosine
            .total_cmp(&x.cosine)
            .then_with(|| snapshot.ids[x.a as usize].cmp(&snapshot.ids[y.a as usize]))
            .then_with(|| snapshot.ids[x.b as usize].cmp(&snapshot.ids[y.b as usize]))
    });
    found
        .into_iter()
        .map(|pair| SimilarPerson {
            score: (calibration.score(pair.cosine) as f64 * 100.0).round() / 100.0,
            persons: vec![info(pair.a), info(pair.b)],
        })
        .collect()
}

/// The result file of a check.
pub fn result_file(job_id: &str) -> String {
    format!("{job_id}.json")
}

// ---------------------------------------------------------------------------------------------------------
// The worker.

pub async fn run(jobs: Arc<Jobs>, lease: Arc<Lease>) {
    lease.wait_held().await;
    // Checks left unfinished by the previous process are still CHECK_RUNNING: they are picked up below and
    // resume from their saved progress (from the beginning when none was saved).
    match jobs.store.unfinished_checks().await {
        Ok(left) if !left.is_empty() => tracing::info!(
            checks = left.len(),
            "duplicate-person checks left unfinished resume from their saved progress"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot read the duplicate-person checks"),
    }
    let mut last_purge: Option<Instant> = None;
    loop {
        if !lease.held() {
            // Another replica runs the checks and the purges; this one takes over if that one dies (a
            // check it left unfinished resumes from its saved progress).
            lease.wait_held().await;
        }
        if last_purge.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_purge = Some(Instant::now());
            purge(&jobs).await;
        }
        let next = match jobs.store.unfinished_checks().await {
            Ok(pending) => {
                metrics::gauge!("iai_similar_checks_unfinished").set(pending.len() as f64);
                jobs.store.claim_check().await
            }
            Err(e) => Err(e),
        };
        let job = match next {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the duplicate-person checks");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let Some(job) = job else {
            // Woken by CheckSimilarPerson made here; the timeout catches those made on another replica.
            let _ = tokio::time::timeout(Duration::from_secs(5), jobs.checks.notified()).await;
            continue;
        };
        metrics::gauge!("iai_similar_checks_running").set(1.0);
        let outcome = check(&jobs, &job).await;
        metrics::gauge!("iai_similar_checks_running").set(0.0);
        match outcome {
            Ok(Outcome::Done) => {
                metrics::counter!("iai_similar_checks_total", "outcome" => "done").increment(1)
            }
            Ok(Outcome::Failed(why)) => {
                metrics::counter!("iai_similar_checks_total", "outcome" => "failed").increment(1);
                tracing::warn!(
                    job = job.job_id,
                    reason = why,
                    "duplicate-person check failed"
                );
                let result = serde_json::json!({ "error": why });
                if let Err(e) = jobs.store.fail_check(job.job_id.clone(), result).await {
                    tracing::error!(error = %e, "cannot record the failed check; will retry");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                } else {
                    forget_progress(&jobs, &job.job_id).await;
                }
            }
            Ok(Outcome::Wait(why)) => {
                tracing::info!(
                    job = job.job_id,
                    reason = why,
                    "duplicate-person check waits"
                );
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            Err(e) => {
                tracing::error!(job = job.job_id, error = %e, "duplicate-person check interrupted; will retry");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Result files older than 90 days, and checks finished more than a year ago.
async fn purge(jobs: &Arc<Jobs>) {
    jobs.links.purge(RESULT_KEPT).await;
    let before = now_ms() - JOBS_KEPT_MS;
    match jobs.store.forget_checks_before(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            checks = n,
            "duplicate-person checks older than a year forgotten"
        ),
        Err(e) => tracing::error!(error = %e, "cannot forget old duplicate-person checks"),
    }
}

enum Outcome {
    Done,
    /// The check cannot complete (why), and is marked failed.
    Failed(String),
    /// The check cannot start yet (why): retried later.
    Wait(String),
}

async fn set_progress(jobs: &Arc<Jobs>, job_id: &str, progress: f64) -> Result<(), StoreError> {
    jobs.store.save_progress(job_id.to_owned(), progress).await
}

async fn save(jobs: &Arc<Jobs>, name: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
    jobs.links
        .write(name, bytes)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))
}

/// The snapshot and position a previous run of the check saved (`check_progress`), with the persons'
/// features as `groups` hold them now; `None` to start from the beginning (nothing saved, or unreadable).
async fn resume(
    jobs: &Arc<Jobs>,
    job_id: &str,
    groups: &[Arc<Group>],
    dim: usize,
) -> Option<(Snapshot, Position)> {
    let load = |name: String| async move {
        match jobs.links.load(&name).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(job = job_id, file = name, error = %e, "cannot read a check's saved progress");
                None
            }
        }
    };
    let position = load(check_progress::position_file(job_id)).await?;
    let persons = load(check_progress::persons_file(job_id)).await?;
    let groups = groups.to_vec();
    tokio::task::spawn_blocking(move || {
        let position = check_progress::decode_position(&position);
        let persons = check_progress::decode_persons(&persons);
        match (position, persons) {
            (Some(position), Some((ids, of_groups))) if ids.len() == position.persons as usize => {
                let snap = check_progress::refill(ids, of_groups, &groups, dim);
                Some((snap, position))
            }
            _ => {
                tracing::warn!("a check's saved progress is unreadable: it starts again");
                None
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Delete a check's saved progress (it ended).
async fn forget_progress(jobs: &Arc<Jobs>, job_id: &str) {
    for name in [
        check_progress::position_file(job_id),
        check_progress::persons_file(job_id),
    ] {
        if let Err(e) = jobs.links.remove(&name).await {
            tracing::warn!(job = job_id, file = name, error = %e, "cannot delete a check's saved progress");
        }
    }
}

async fn check(jobs: &Arc<Jobs>, job: &JobRow) -> Result<Outcome, StoreError> {
    let Some(mut params) = Params::of(job) else {
        return Ok(Outcome::Failed(
            "the job's parameters are unreadable".into(),
        ));
    };
    let Some(threshold) = threshold_score(params.unique_person_control) else {
        return Ok(Outcome::Failed("UniquePersonControl is not 1 or 2".into()));
    };
    // The groups as they are now (a group deleted or recreated while the check was queued fails it).
    let mut groups = Vec::new();
    for id in &params.group_ids {
        match jobs.indexes.group(id) {
            Some(group) if group.version == ModelVersion::V3 => groups.push(group),
            Some(_) => {
                return Ok(Outcome::Failed(format!(
                    "group {id} is no longer of FaceModelVersion 3.0"
                )));
            }
            None => return Ok(Outcome::Failed(format!("group {id} no longer exists"))),
        }
    }
    let model = groups
        .first()
        .map_or(Recognition::current(ModelVersion::V3), |g| g.model);
    if groups.iter().any(|g| g.model != model) {
        // A group is being embedded again with another network: its vectors cannot be compared with the
        // others' until it switches.
        return Ok(Outcome::Wait(
            "a group's faces are being embedded again with another network".into(),
        ));
    }
    let started = Instant::now();
    let dim = model.dim;
    let calibration = Calibration::new(model, ModelVersion::V3);
    let (snap, position) = match resume(jobs, &job.job_id, &groups, dim).await {
        Some(resumed) => resumed,
        None => {
            set_progress(jobs, &job.job_id, 0.0).await?;
            let groups = groups.clone();
            let snap = tokio::task::spawn_blocking(move || snapshot(&groups, dim))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
            let position = Position {
                persons: snap.len() as u32,
                row: 0,
                floor: calibration.cosine_at(threshold),
                found: Vec::new(),
            };
            (snap, position)
        }
    };
    let resumed = position.row > 0;
    let snap = Arc::new(snap);
    let n = snap.len();
    let total = pairs(n as u64);
    if !resumed {
        params.pairs = total;
        jobs.store
            .set_check_params(job.job_id.clone(), params.clone())
            .await?;
    }
    let mut floor = position.floor;
    let mut found: Vec<Pair> = position.found;
    let mut row = position.row as usize;
    let mut done = pairs_in_rows(n, 0..row);
    // What earlier runs did (the pace counts this run's pairs only).
    let done_before = done;
    tracing::info!(
        job = job.job_id,
        groups = ?params.group_ids,
        persons = n,
        pairs = total,
        threshold,
        cosine = floor,
        from_row = row,
        "{}",
        if resumed {
            "duplicate-person check resumed from its saved progress"
        } else {
            "duplicate-person check started"
        }
    );

    let throttle = throttle();
    // The persons file is saved with the first position (a check done in one round saves neither).
    let mut persons_saved = resumed;
    let mut last_checkpoint = Instant::now() - check_progress::EVERY;
    let mut computing = Duration::ZERO;
    // Pairs per round: start small and follow the rate measured round by round.
    let mut rate = measured().unwrap_or(4_000_000.0);
    let mut last_saved = Instant::now() - Duration::from_secs(60);
    let mut last_log = Instant::now();
    while row < n {
        let mut budget = rate * ROUND.as_secs_f64();
        if let Some(cap) = throttle {
            budget = budget.min(cap * ROUND.as_secs_f64());
        }
        let end = round_end(n, row, budget.max(1.0) as u64);
        let round_pairs = pairs_in_rows(n, row..end);
        let round_started = Instant::now();
        let (snap2, range) = (snap.clone(), row..end);
        let mut hits = tokio::task::spawn_blocking(move || {
            pool().install(|| scan_rows(&snap2.vectors, snap2.dim, range, floor))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        let took = round_started.elapsed();
        computing += took;
        if round_pairs > 0 {
            rate = round_pairs as f64 / took.as_secs_f64().max(1e-6);
        }
        metrics::counter!("iai_similar_pairs_compared_total").increment(round_pairs);
        found.append(&mut hits);
        if let Some(raised) = keep_strongest(&mut found, MAX_RESULT_PAIRS) {
            if raised > floor {
                tracing::warn!(
                    job = job.job_id,
                    kept = MAX_RESULT_PAIRS,
                    score = calibration.score(raised),
                    "too many similar pairs: only the strongest are kept"
                );
            }
            floor = floor.max(raised);
        }
        done += round_pairs;
        row = end;
        let progress = if total == 0 {
            99.9
        } else {
            (100.0 * done as f64 / total as f64).min(99.9)
        };
        // The position first: once a client sees progress, a restart resumes from there.
        if row < n && last_checkpoint.elapsed() >= check_progress::EVERY {
            last_checkpoint = Instant::now();
            if !persons_saved {
                // Tens of MB for millions of persons: encoded off the async workers.
                let persons = snap.clone();
                let bytes =
                    tokio::task::spawn_blocking(move || check_progress::encode_persons(&persons))
                        .await
                        .map_err(|e| StoreError::Task(e.to_string()))?;
                save(jobs, &check_progress::persons_file(&job.job_id), bytes).await?;
                persons_saved = true;
            }
            // The pairs move into the position for encoding and back, uncopied.
            let position = Position {
                persons: n as u32,
                row: row as u32,
                floor,
                found: std::mem::take(&mut found),
            };
            let bytes = check_progress::encode_position(&position);
            found = position.found;
            save(jobs, &check_progress::position_file(&job.job_id), bytes).await?;
        }
        if last_saved.elapsed() >= Duration::from_secs(1) || row >= n {
            last_saved = Instant::now();
            set_progress(jobs, &job.job_id, (progress * 100.0).round() / 100.0).await?;
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(
                job = job.job_id,
                progress = (progress * 10.0).round() / 10.0,
                pairs_per_second = rate.round(),
                similar = found.len(),
                "duplicate-person check running"
            );
        }
        if let Some(cap) = throttle {
            // Hold the pace the operator allows.
            let due = Duration::from_secs_f64((done - done_before) as f64 / cap);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
    if done >= TIMED_PAIRS {
        set_measured(done as f64 / computing.as_secs_f64().max(1e-6));
    }

    // Names as they are now (a person deleted since the snapshot keeps an empty name).
    let mut named: Vec<Arc<str>> = found
        .iter()
        .flat_map(|p| {
            [
                snap.ids[p.a as usize].clone(),
                snap.ids[p.b as usize].clone(),
            ]
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    let names = jobs.store.person_names(named).await?;
    let similar = found.len();
    let file = result_file(&job.job_id);
    {
        let (snap, group_ids) = (snap.clone(), params.group_ids.clone());
        let bytes = tokio::task::spawn_blocking(move || {
            let elements = findings(&snap, found, &group_ids, &calibration, |id| {
                names.get(id).cloned().unwrap_or_default()
            });
            serde_json::to_vec(&elements).map_err(|e| StoreError::Task(e.to_string()))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        jobs.links
            .write(&file, bytes)
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let result = serde_json::json!({
        "file": file,
        "persons": n,
        "pairs": total,
        "similar_pairs": similar,
        "threshold": threshold,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    jobs.store.finish_check(job.job_id.clone(), result).await?;
    forget_progress(jobs, &job.job_id).await;
    tracing::info!(
        job = job.job_id,
        persons = n,
        pairs = total,
        similar,
        seconds = (seconds * 10.0).round() / 10.0,
        "duplicate-person check done"
    );
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::{CHECK_RUNNING, SIMILAR};

    fn brute_force(vectors: &[f32], dim: usize, floor: f32) -> Vec<(u32, u32)> {
        let n = vectors.len() / dim;
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let c = crate::face::embed::cosine(
                    &vectors[i * dim..(i + 1) * dim],
                    &vectors[j * dim..(j + 1) * dim],
                );
                if c >= floor {
                    out.push((i as u32, j as u32));
                }
            }
        }
        out
    }

    /// `n` random persons, with rows `copies[k].1` a near copy of row `copies[k].0`.
    fn with_duplicates(n: usize, dim: usize, copies: &[(usize, usize)]) -> Vec<f32> {
        let mut v = synthetic(n, dim, 7);
        let noise = synthetic(n, dim, 99);
        for &(from, to) in copies {
            for d in 0..dim {
                v[to * dim + d] = v[from * dim + d] + 0.3 * noise[to * dim + d];
            }
            crate::face::embed::normalise(&mut v[to * dim..(to + 1) * dim]);
        }
        v
    }

    #[test]
    fn the_blocked_scan_finds_exactly_the_pairs_of_a_brute_force_scan() {
        let dim = 192;
        // Sizes around the block and tile edges.
        for n in [0, 1, 2, 31, 33, 129, 300] {
            let copies: Vec<(usize, usize)> = (0..n / 10).map(|k| (k, n - 1 - k)).collect();
            let v = with_duplicates(n, dim, &copies);
            for floor in [0.1, 0.9] {
                // In rounds, as the worker runs it.
                let mut got = Vec::new();
                let mut row = 0;
                while row < n {
                    let end = round_end(n, row, 500);
                    got.extend(scan_rows(&v, dim, row..end, floor));
                    row = end;
                }
                let mut got: Vec<(u32, u32)> = got.iter().map(|p| (p.a, p.b)).collect();
                got.sort_unstable();
                assert_eq!(got, brute_force(&v, dim, floor), "n={n} floor={floor}");
            }
            let all = scan_rows(&v, dim, 0..n, 0.9);
            for k in 0..n / 10 {
                assert!(
                    all.iter()
                        .any(|p| (p.a, p.b) == (k as u32, (n - 1 - k) as u32))
                );
            }
        }
    }

    #[test]
    fn rounds_cover_every_row_once_and_count_pairs() {
        let n = 1000;
        let mut row = 0;
        let mut total = 0;
        while row < n {
            let end = round_end(n, row, 10_000);
            assert!(end > row);
            total += pairs_in_rows(n, row..end);
            row = end;
        }
        assert_eq!(total, pairs(n as u64));
        assert_eq!(round_end(n, n - 1, 1_000_000), n);
        assert_eq!(round_end(10, 0, 0), 1);
    }

    #[test]
    fn a_person_in_several_groups_is_one_person() {
        let dim = 4;
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let (va, vb, vc) = (
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0],
        );
        let mut snap = Snapshot::new(dim);
        let mut seen = std::collections::HashMap::new();
        snap.add(0, [(&a, &va[..]), (&b, &vb[..])].into_iter(), &mut seen);
        snap.add(1, [(&a, &va[..]), (&c, &vc[..])].into_iter(), &mut seen);
        assert_eq!(snap.len(), 3);
        assert_eq!(snap.groups, vec![0b11, 0b01, 0b10]);
        // "a" in both groups is not a finding; "a" and "c" (another id, the same face) are.
        let found = scan_rows(&snap.vectors, dim, 0..3, 0.99);
        assert_eq!(found.len(), 1);
        let calibration = Calibration::for_version(ModelVersion::V3);
        let groups = vec!["g1".to_string(), "g2".to_string()];
        let out = findings(&snap, found, &groups, &calibration, |id| {
            format!("name-{id}")
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 100.0);
        let ids: Vec<(&str, &str, Vec<String>)> = out[0]
            .persons
            .iter()
            .map(|p| {
                (
                    p.person_id.as_str(),
                    p.person_name.as_str(),
                    p.group_ids.clone(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                ("a", "name-a", groups.clone()),
                ("c", "name-c", vec!["g2".to_string()])
            ]
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json[0]["Persons"][1]["GroupIds"][0], "g2");
        assert_eq!(json[0]["Score"], 100.0);
    }

    #[test]
    fn the_snapshot_takes_each_person_of_the_group_indexes_once() {
        use crate::index::{GroupIndex, Indexes};
        let model = Recognition::current(ModelVersion::V3);
        let v = synthetic(3, model.dim, 5);
        let row = |i: usize| v[i * model.dim..(i + 1) * model.dim].to_vec();
        let indexes = Indexes::default();
        let mut g1 = GroupIndex::new(ModelVersion::V3, model);
        g1.add_faces("shared", &[(1, row(0))]);
        g1.add_faces("only-1", &[(2, row(1)), (3, row(2))]);
        let mut g2 = GroupIndex::new(ModelVersion::V3, model);
        g2.add_faces("shared", &[(1, row(0))]);
        indexes.insert_group("g1".into(), g1);
        indexes.insert_group("g2".into(), g2);
        let groups = vec![indexes.group("g1").unwrap(), indexes.group("g2").unwrap()];
        let snap = snapshot(&groups, model.dim);
        let mut rows: Vec<(String, u16)> = snap
            .ids
            .iter()
            .zip(&snap.groups)
            .map(|(id, g)| (id.to_string(), *g))
            .collect();
        rows.sort();
        assert_eq!(rows, vec![("only-1".into(), 0b01), ("shared".into(), 0b11)]);
        assert_eq!(snap.vectors.len(), 2 * model.dim);
    }

    #[test]
    fn findings_are_strongest_first_with_persons_in_id_order() {
        let snap = Snapshot {
            dim: 1,
            ids: vec!["z".into(), "y".into(), "x".into()],
            groups: vec![1, 1, 1],
            vectors: vec![1.0, 1.0, 1.0],
        };
        let found = vec![
            Pair {
                a: 0,
                b: 1,
                cosine: 0.70,
            },
            Pair {
                a: 1,
                b: 2,
                cosine: 0.95,
            },
        ];
        let calibration = Calibration::for_version(ModelVersion::V3);
        let out = findings(&snap, found, &["g".to_string()], &calibration, |_| {
            String::new()
        });
        let order: Vec<(&str, &str)> = out
            .iter()
            .map(|s| {
                (
                    s.persons[0].person_id.as_str(),
                    s.persons[1].person_id.as_str(),
                )
            })
            .collect();
        assert_eq!(order, vec![("x", "y"), ("y", "z")]);
        assert!(out[0].score > out[1].score);
    }

    #[test]
    fn only_the_strongest_pairs_are_kept_past_the_cap() {
        let mut found: Vec<Pair> = (0..100)
            .map(|i| Pair {
                a: i,
                b: i + 1,
                cosine: i as f32 / 100.0,
            })
            .collect();
        assert_eq!(keep_strongest(&mut found, 50), None);
        assert_eq!(found.len(), 100);
        let floor = keep_strongest(&mut found, 10).unwrap();
        assert_eq!(found.len(), 10);
        assert!((floor - 0.90).abs() < 1e-6);
        assert!(found.iter().all(|p| p.cosine >= 0.90));
    }

    #[test]
    fn thresholds_estimates_and_group_sets() {
        assert_eq!(threshold_score(1), Some(60.0));
        assert_eq!(threshold_score(2), Some(70.0));
        assert_eq!(threshold_score(0), None);
        assert_eq!(threshold_score(3), None);
        // 60 and 70 are the FAR 1e-5 and 1e-6 knots of the 3.0 scale.
        let calibration = Calibration::for_version(ModelVersion::V3);
        assert!(calibration.cosine_at(70.0) > calibration.cosine_at(60.0));
        assert_eq!(pairs(0), 0);
        assert_eq!(pairs(1), 0);
        assert_eq!(pairs(2_000_000), 1_999_999_000_000);
        assert_eq!(minutes(0, 1e6), 0);
        assert_eq!(minutes(1, 1e6), 1);
        assert_eq!(minutes(120_000_000, 1e6), 2);
        assert_eq!(minutes(120_000_001, 1e6), 3);
        let params = Params {
            group_ids: vec!["b".into(), "a".into()],
            unique_person_control: 1,
            pairs: 10,
        };
        assert!(params.same_groups(&["a".into(), "b".into(), "a".into()]));
        assert!(!params.same_groups(&["a".into()]));
        assert!(!params.same_groups(&["a".into(), "b".into(), "c".into()]));
        let job = JobRow {
            job_id: "j".into(),
            kind: SIMILAR.into(),
            group_id: None,
            params: serde_json::to_value(&params).unwrap(),
            status: CHECK_RUNNING,
            progress: 40.0,
            result: None,
            started_ms: 0,
            finished_ms: None,
        };
        assert_eq!(remaining_pairs(&job), 6);
    }

    #[test]
    fn the_calibration_scan_measures_a_rate() {
        let rate = calibrate();
        assert!(rate > 1000.0, "{rate}");
    }
}
