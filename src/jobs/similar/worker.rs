//! The duplicate-person checks' queue worker: the replica holding the checks' lease runs the unfinished
//! checks one at a time, oldest first, and purges old result files and checks.
//!
//! A check scans in rounds of about a quarter of a second (`scan`); after each round the progress is
//! persisted in the job row (at most once a second) and logged (every 10 s). Progress reaches 100 only once
//! the result file is written: a JSON array in `<data dir>/files/{JobId}.json` (kept 90 days), one element
//! per pair, strongest first: `{"Score": 87.12, "Persons": [{"PersonId", "PersonName", "GroupIds"}, {...}]}`.
//!
//! A running check saves its position every 10 s (`progress`: the snapshot's persons in scan order, the rows
//! done, the pairs found so far). Checks that were running when their server stopped (or, with several
//! replicas, when the holder of the checks' lease died) resume from that position, taking each saved
//! person's feature as it is then; one that saved nothing yet runs again from the beginning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cost::{TIMED_PAIRS, measured, pairs, set_measured, throttle};
use super::progress::{self, Position};
use super::scan::{
    Pair, Snapshot, keep_strongest, pairs_in_rows, pool, round_end, scan_rows, snapshot,
};
use super::{Params, threshold_score};
use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::face::score::Calibration;
use crate::index::Group;
use crate::jobs::Jobs;
use crate::jobs::lease::Lease;
use crate::store::jobs::JobRow;
use crate::store::{StoreError, now_ms};

/// How long result files are kept (Tencent: 90 days).
pub const RESULT_KEPT: Duration = Duration::from_secs(90 * 24 * 3600);
/// How long finished checks stay listed (Tencent: the last year).
const JOBS_KEPT_MS: i64 = 365 * 24 * 3600 * 1000;
/// A check keeps at most this many pairs (the strongest): at a fixed per-pair false-accept rate the
/// number of chance pairs grows with the square of the library (README, "Duplicate-person checks").
pub const MAX_RESULT_PAIRS: usize = 1_000_000;

/// How long one round of the scan should take.
const ROUND: Duration = Duration::from_millis(250);

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

/// The snapshot and position a previous run of the check saved (`progress`), with the persons'
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
    let position = load(progress::position_file(job_id)).await?;
    let persons = load(progress::persons_file(job_id)).await?;
    let groups = groups.to_vec();
    tokio::task::spawn_blocking(move || {
        let position = progress::decode_position(&position);
        let persons = progress::decode_persons(&persons);
        match (position, persons) {
            (Some(position), Some((ids, of_groups))) if ids.len() == position.persons as usize => {
                let snap = progress::refill(ids, of_groups, &groups, dim);
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
        progress::position_file(job_id),
        progress::persons_file(job_id),
    ] {
        if let Err(e) = jobs.links.remove(&name).await {
            tracing::warn!(job = job_id, file = name, error = %e, "cannot delete a check's saved progress");
        }
    }
}

/// Run one check to its end: its target, its snapshot (new or resumed), the scan, the result file.
async fn check(jobs: &Arc<Jobs>, job: &JobRow) -> Result<Outcome, StoreError> {
    let mut target = match Target::of(jobs, job) {
        Ok(target) => target,
        Err(outcome) => return Ok(outcome),
    };
    let started = Instant::now();
    let calibration = Calibration::new(target.model, ModelVersion::V3);
    let (snap, position) = start(jobs, job, &mut target, &calibration).await?;
    let found = scan(jobs, job, &snap, position, &calibration, started).await?;
    finish(jobs, job, &target, snap, found, calibration, started).await
}

/// What a check compares: its parameters and its groups as they are now, all served by one network.
struct Target {
    params: Params,
    threshold: f32,
    groups: Vec<Arc<Group>>,
    model: &'static Recognition,
}

impl Target {
    /// The check's parameters and groups, or why it fails now or must wait (decided before any snapshot).
    fn of(jobs: &Arc<Jobs>, job: &JobRow) -> Result<Self, Outcome> {
        let Some(params) = Params::of(job) else {
            return Err(Outcome::Failed(
                "the job's parameters are unreadable".into(),
            ));
        };
        let Some(threshold) = threshold_score(params.unique_person_control) else {
            return Err(Outcome::Failed("UniquePersonControl is not 1 or 2".into()));
        };
        // The groups as they are now (a group deleted or recreated while the check was queued fails it).
        let mut groups = Vec::new();
        for id in &params.group_ids {
            match jobs.indexes.group(id) {
                Some(group) if group.version == ModelVersion::V3 => groups.push(group),
                Some(_) => {
                    return Err(Outcome::Failed(format!(
                        "group {id} is no longer of FaceModelVersion 3.0"
                    )));
                }
                None => return Err(Outcome::Failed(format!("group {id} no longer exists"))),
            }
        }
        let model = groups
            .first()
            .map_or(Recognition::current(ModelVersion::V3), |g| g.model);
        if groups.iter().any(|g| g.model != model) {
            // A group is being embedded again with another network: its vectors cannot be compared with
            // the others' until it switches.
            return Err(Outcome::Wait(
                "a group's faces are being embedded again with another network".into(),
            ));
        }
        Ok(Self {
            params,
            threshold,
            groups,
            model,
        })
    }
}

/// Resume from the position a previous run saved, or snapshot the groups anew (recording the pair count).
async fn start(
    jobs: &Arc<Jobs>,
    job: &JobRow,
    target: &mut Target,
    calibration: &Calibration,
) -> Result<(Arc<Snapshot>, Position), StoreError> {
    let dim = target.model.dim;
    let (snap, position) = match resume(jobs, &job.job_id, &target.groups, dim).await {
        Some(resumed) => resumed,
        None => {
            set_progress(jobs, &job.job_id, 0.0).await?;
            let groups = target.groups.clone();
            let snap = tokio::task::spawn_blocking(move || snapshot(&groups, dim))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
            let position = Position {
                persons: snap.len() as u32,
                row: 0,
                floor: calibration.cosine_at(target.threshold),
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
        target.params.pairs = total;
        jobs.store
            .set_check_params(job.job_id.clone(), target.params.clone())
            .await?;
    }
    tracing::info!(
        job = job.job_id,
        groups = ?target.params.group_ids,
        persons = n,
        pairs = total,
        threshold = target.threshold,
        cosine = position.floor,
        from_row = position.row as usize,
        "{}",
        if resumed {
            "duplicate-person check resumed from its saved progress"
        } else {
            "duplicate-person check started"
        }
    );
    Ok((snap, position))
}

/// Scan from `position` in rounds, so that progress shows, a restart resumes and the throttle holds.
async fn scan(
    jobs: &Arc<Jobs>,
    job: &JobRow,
    snap: &Arc<Snapshot>,
    position: Position,
    calibration: &Calibration,
    started: Instant,
) -> Result<Vec<Pair>, StoreError> {
    let n = snap.len();
    let total = pairs(n as u64);
    let mut floor = position.floor;
    let mut found: Vec<Pair> = position.found;
    let mut row = position.row as usize;
    let mut done = pairs_in_rows(n, 0..row);
    // What earlier runs did (the pace counts this run's pairs only).
    let done_before = done;
    let throttle = throttle();
    // The persons file is saved with the first position (a check done in one round saves neither).
    let mut persons_saved = row > 0;
    let mut last_checkpoint = Instant::now() - progress::EVERY;
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
        if row < n && last_checkpoint.elapsed() >= progress::EVERY {
            last_checkpoint = Instant::now();
            let at = (row, floor);
            checkpoint(jobs, &job.job_id, snap, &mut persons_saved, at, &mut found).await?;
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
    Ok(found)
}

/// Save `(row, floor)` and the pairs kept (the persons too, the first time) so that a restart resumes here.
async fn checkpoint(
    jobs: &Arc<Jobs>,
    job_id: &str,
    snap: &Arc<Snapshot>,
    persons_saved: &mut bool,
    (row, floor): (usize, f32),
    found: &mut Vec<Pair>,
) -> Result<(), StoreError> {
    if !*persons_saved {
        // Tens of MB for millions of persons: encoded off the async workers.
        let persons = snap.clone();
        let bytes = tokio::task::spawn_blocking(move || progress::encode_persons(&persons))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        save(jobs, &progress::persons_file(job_id), bytes).await?;
        *persons_saved = true;
    }
    // The pairs move into the position for encoding and back, uncopied.
    let position = Position {
        persons: snap.len() as u32,
        row: row as u32,
        floor,
        found: std::mem::take(found),
    };
    let bytes = progress::encode_position(&position);
    *found = position.found;
    save(jobs, &progress::position_file(job_id), bytes).await
}

/// Write the result file (names as they are now), then mark the check done and forget its saved progress.
async fn finish(
    jobs: &Arc<Jobs>,
    job: &JobRow,
    target: &Target,
    snap: Arc<Snapshot>,
    found: Vec<Pair>,
    calibration: Calibration,
    started: Instant,
) -> Result<Outcome, StoreError> {
    let n = snap.len();
    let total = pairs(n as u64);
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
    let group_ids = target.params.group_ids.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let elements = findings(&snap, found, &group_ids, &calibration, |id| {
            names.get(id).cloned().unwrap_or_default()
        });
        serde_json::to_vec(&elements).map_err(|e| StoreError::Task(e.to_string()))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    save(jobs, &file, bytes).await?;
    let seconds = started.elapsed().as_secs_f64();
    let result = serde_json::json!({
        "file": file,
        "persons": n,
        "pairs": total,
        "similar_pairs": similar,
        "threshold": target.threshold,
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
}
