//! Moving groups to another network or version. For each moving group: embed, from their stored crops, the
//! faces that have no embedding by the target network yet (in batches, through the same inference gate as
//! requests), then switch the group in one transaction that re-checks that nothing is missing and rebuilds
//! its index from what it read. Faces added meanwhile get the target's embedding when they are stored (they
//! are embedded with every network their groups serve or move to), so the loop ends.
//!
//! A face whose crop the network cannot embed is recorded (`face_vector_failures`), kept and counted. A
//! network change switches anyway (the face stays stored but is not searchable by the new network; the log
//! and `/metrics` say how many). An upgrade does not: the job fails (status 3) with the list behind
//! `FailedFacesUrl`, and the group stays as it was, as Tencent's does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Jobs;
use super::lease::Lease;
use crate::face::embed::Recognition;
use crate::store::StoreError;
use crate::store::embeddings::{MoveProgress, Switch};
use crate::store::groups::GroupRow;

/// How long a result link of a failed upgrade stays valid (Tencent: half an hour).
pub const FAILED_FACES_LINK: Duration = Duration::from_secs(30 * 60);

pub async fn run(jobs: Arc<Jobs>, lease: Arc<Lease>) {
    // Per moving group: the last person of its current pass, and when its progress was last reported.
    let mut passes: HashMap<String, Pass> = HashMap::new();
    loop {
        if !lease.held() {
            // Another replica moves the groups; this one takes over if that one dies (from the faces
            // already embedded: a pass embeds only what is missing).
            passes.clear();
            lease.wait_held().await;
        }
        let mut moving = match jobs.store.moving_groups().await {
            Ok(moving) => moving,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the groups that are moving");
                Vec::new()
            }
        };
        metrics::gauge!("iai_groups_moving").set(moving.len() as f64);
        passes.retain(|id, _| moving.iter().any(|g| &g.group_id == id));
        if moving.is_empty() {
            metrics::gauge!("iai_moving_faces_remaining").set(0.0);
            // Woken by an upgrade or revert made here; the timeout catches those made on another replica.
            let _ = tokio::time::timeout(Duration::from_secs(5), jobs.moves.notified()).await;
            continue;
        }
        // One batch per group per round, users' jobs (upgrades, reverts) first: a small revert does not
        // wait behind a large group's network change.
        moving.sort_by_key(|g| g.target.as_ref().is_none_or(|t| t.job.is_none()));
        for group in moving {
            let pass = passes.entry(group.group_id.clone()).or_default();
            if let Err(e) = step(&jobs, &group, pass).await {
                tracing::error!(group = group.group_id, error = %e, "moving the group failed; will retry");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Where a group's move stands.
struct Pass {
    /// The last person embedded in this pass over the group's members ("" at the start of a pass).
    after: String,
    started: Instant,
    embedded: u64,
    last_report: Instant,
    last_progress: Option<Instant>,
}

impl Default for Pass {
    fn default() -> Self {
        Self {
            after: String::new(),
            started: Instant::now(),
            embedded: 0,
            last_report: Instant::now(),
            last_progress: None,
        }
    }
}

/// One batch of a group's move: embed the missing faces of its next persons; at the end of a pass, switch
/// (or, if faces came in without the target's embedding meanwhile, start another pass).
async fn step(jobs: &Arc<Jobs>, group: &GroupRow, pass: &mut Pass) -> Result<(), StoreError> {
    let Some(target) = group.target.clone() else {
        return Ok(());
    };
    let Some(model) = Recognition::by_file(&target.model) else {
        tracing::error!(
            group = group.group_id,
            model = target.model,
            "unknown target network; move abandoned"
        );
        return jobs
            .store
            .abandon_move(group.group_id.clone(), target.job)
            .await;
    };
    let (batch, last) = jobs
        .store
        .faces_to_embed(
            group.group_id.clone(),
            model.file,
            pass.after.clone(),
            jobs.pace.batch_persons,
        )
        .await?;
    let Some(last) = last else {
        // The end of a pass.
        report_progress(jobs, group, model, pass, true).await?;
        if !switch(jobs, group, model).await? {
            pass.after.clear();
        }
        return Ok(());
    };
    pass.after = last;
    if batch.is_empty() {
        return Ok(());
    }
    let embedded = jobs
        .pipeline
        .run(move |p| {
            Ok::<_, crate::face::FaceError>(
                batch
                    .into_iter()
                    .map(|c| {
                        let v = p.embed_stored_blocking(&c.crop_png, &c.landmarks, model);
                        (c.face_id, v.map_err(|e| e.to_string()))
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
    pass.embedded += embedded.len() as u64;
    let failed = embedded.iter().filter(|(_, v)| v.is_err()).count();
    metrics::counter!("iai_reembedded_faces_total", "model" => model.file)
        .increment((embedded.len() - failed) as u64);
    metrics::counter!("iai_reembed_failures_total", "model" => model.file).increment(failed as u64);
    jobs.store.save_reembedded(model.file, embedded).await?;
    report_progress(jobs, group, model, pass, false).await?;
    if !jobs.pace.pause.is_zero() {
        tokio::time::sleep(jobs.pace.pause).await;
    }
    Ok(())
}

/// Progress of a move, in the job row, `/metrics` and the log: counted (one pass over the group) at most
/// every 2 s, so that a large group's move does not recount it after every batch.
async fn report_progress(
    jobs: &Arc<Jobs>,
    group: &GroupRow,
    model: &'static Recognition,
    pass: &mut Pass,
    now: bool,
) -> Result<(), StoreError> {
    if !now
        && pass
            .last_progress
            .is_some_and(|at| at.elapsed() < Duration::from_secs(2))
    {
        return Ok(());
    }
    pass.last_progress = Some(Instant::now());
    let MoveProgress {
        total,
        embedded: have,
        failed: failures,
    } = jobs
        .store
        .move_progress(group.group_id.clone(), model.file)
        .await?;
    if let Some(job) = group.target.as_ref().and_then(|t| t.job.clone()) {
        let percent = if total == 0 {
            100.0
        } else {
            100.0 * (have + failures) as f64 / total as f64
        };
        // 100 only once the switch is done.
        jobs.store.save_progress(job, percent.min(99.9)).await?;
    }
    metrics::gauge!("iai_moving_faces_remaining").set(total.saturating_sub(have + failures) as f64);
    if pass.last_report.elapsed() > Duration::from_secs(10) {
        pass.last_report = Instant::now();
        let rate = pass.embedded as f64 / pass.started.elapsed().as_secs_f64().max(1e-3);
        tracing::info!(
            group = group.group_id,
            model = model.file,
            done = have,
            failed = failures,
            total,
            faces_per_second = (rate * 10.0).round() / 10.0,
            "embedding the group's faces again"
        );
    }
    Ok(())
}

/// Switch the group to its target (one transaction, which rebuilds its index), or fail its upgrade when
/// faces could not be moved. Returns false when the group still has faces to embed (another pass is needed).
async fn switch(
    jobs: &Arc<Jobs>,
    group: &GroupRow,
    model: &'static Recognition,
) -> Result<bool, StoreError> {
    match jobs
        .store
        .switch_group(group.group_id.clone(), model.file)
        .await?
    {
        Switch::Switched { not_embedded } => {
            tracing::info!(
                group = group.group_id,
                model = model.file,
                not_embedded,
                "the group now serves its new network"
            );
            Ok(true)
        }
        Switch::LeavesFaces { job_id, failures } => {
            // An upgrade that would leave faces behind fails, with the list behind a link; the group stays
            // as it is. The file is written before the job says where it is.
            let listed: Vec<serde_json::Value> = failures
                .iter()
                .map(|f| serde_json::json!({"person_id": f.person_id, "face_id": f.face_id, "type": 1}))
                .collect();
            let file = format!("{job_id}.failed_faces.json");
            let bytes = serde_json::Value::Array(listed).to_string().into_bytes();
            jobs.links
                .write(&file, bytes)
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
            let result = serde_json::json!({"failed_faces_file": file, "failed": failures.len()});
            jobs.store
                .fail_upgrade(group.group_id.clone(), job_id, result)
                .await?;
            Ok(true)
        }
        Switch::Ended => Ok(true),
        Switch::Again => Ok(false),
    }
}
