//! The store's named operations on face embeddings by network (re-extraction, a group's move to another
//! network), backend-neutral.
//!
//! A group moves by steps: `faces_to_embed` (a page of its persons' faces still without the target
//! network's embedding), `save_reembedded`, `move_progress`, and at the end of a pass `switch_group`, which
//! re-checks in its own transaction that nothing is missing and rebuilds the group's index (through the
//! change log) from what it read.

use std::sync::Arc;

use super::groups::{GroupRow, Target};
use super::jobs::{ROLLED_BACK, UPGRADE_FAILED, UPGRADED, UPGRADING};
pub use super::sql::vectors::StoredCrop;
use super::sql::{groups as group_sql, jobs as job_sql, vectors as sql};
use super::{Change, Store, StoreError, now_ms};

/// Where a group's move stands: its faces, of which the target network embedded, of which it could not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveProgress {
    pub total: u64,
    pub embedded: u64,
    pub failed: u64,
}

/// A face a network could not embed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedFace {
    pub person_id: String,
    pub face_id: String,
    pub reason: String,
}

/// How an attempt to switch a group to its target ended.
#[derive(Debug)]
pub enum Switch {
    /// The group serves its target now; `not_embedded` of its faces the network could not embed (they stay
    /// stored, unsearchable by it).
    Switched { not_embedded: usize },
    /// Nothing changed: upgrade `job_id` would leave these faces behind. The caller keeps the list and
    /// fails the upgrade (`fail_upgrade`).
    LeavesFaces {
        job_id: String,
        failures: Vec<FailedFace>,
    },
    /// The move is over without a switch: the group is gone or no longer moving.
    Ended,
    /// Faces still lack the target's embedding, or the target changed: another pass.
    Again,
}

/// A group set moving to its version's current network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkMove {
    pub group_id: String,
    pub from: String,
    pub to: &'static str,
}

/// What `move_off_retired_networks` found and did.
#[derive(Debug, Default)]
pub struct NetworkPlan {
    /// Networks some group still serves though its version's current one is another.
    pub retired: Vec<String>,
    /// The groups it set moving (those already moving keep their target).
    pub moved: Vec<NetworkMove>,
}

impl Store {
    /// The groups that are moving, oldest first.
    pub async fn moving_groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        self.db.read(group_sql::moving).await
    }

    /// Give up a group's move (its target network is unknown): its upgrade, if any, failed; the group
    /// keeps serving what it serves.
    pub async fn abandon_move(
        &self,
        group_id: String,
        job_id: Option<String>,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                if let Some(job) = &job_id {
                    job_sql::finish(tx, job, UPGRADE_FAILED, None, now_ms())?;
                }
                group_sql::clear_target(tx, &group_id)
            })
            .await
    }

    /// The faces without an embedding by `model` (and that have not failed it) of the `persons` persons
    /// of the group after `after` in PersonId order, and the last person looked at (None at the end).
    pub async fn faces_to_embed(
        &self,
        group_id: String,
        model: &'static str,
        after: String,
        persons: usize,
    ) -> Result<(Vec<StoredCrop>, Option<String>), StoreError> {
        self.db
            .read(move |conn| sql::missing_after(conn, &group_id, model, &after, persons))
            .await
    }

    /// Store what `model` made of stored crops (face id, embedding or why not): embeddings, and failures
    /// (recorded; the face is kept). Faces deleted meanwhile are skipped.
    pub async fn save_reembedded(
        &self,
        model: &'static str,
        embedded: Vec<(String, Result<Vec<f32>, String>)>,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| sql::save_embedded(tx, model, &embedded, now_ms()))
            .await
    }

    /// How far the group's faces have been embedded by `model`.
    pub async fn move_progress(
        &self,
        group_id: String,
        model: &'static str,
    ) -> Result<MoveProgress, StoreError> {
        self.db
            .read(move |conn| {
                let (total, embedded, failed) = sql::progress(conn, &group_id, model)?;
                Ok(MoveProgress {
                    total,
                    embedded,
                    failed,
                })
            })
            .await
    }

    /// Switch the group to its target network `model` if none of its faces lacks that network's
    /// embedding: it then serves the target, its job is done (an upgrade) or rolled back (a revert), the
    /// embeddings of the network it leaves go when nothing uses them, and its index is rebuilt from the
    /// embeddings read here. An upgrade that would leave faces the network could not embed is not switched
    /// (`Switch::LeavesFaces`).
    pub async fn switch_group(
        &self,
        group_id: String,
        model: &'static str,
    ) -> Result<Switch, StoreError> {
        self.write_logged(move |tx| {
            let Some(group) = group_sql::find(tx, &group_id)? else {
                return Ok((Switch::Ended, Vec::new()));
            };
            let Some(target) = group.target else {
                return Ok((Switch::Ended, Vec::new()));
            };
            if target.model != model || sql::any_missing(tx, &group_id, model)? {
                // Changed, or a face came in without the embedding: another pass handles it.
                return Ok((Switch::Again, Vec::new()));
            }
            let failures = sql::failures(tx, &group_id, model)?;
            let job = match &target.job {
                Some(job) => job_sql::find(tx, job)?,
                None => None,
            };
            if let Some(job) = job.as_ref().filter(|j| j.status == UPGRADING)
                && !failures.is_empty()
            {
                let failures = failures
                    .into_iter()
                    .map(|(person_id, face_id, reason)| FailedFace {
                        person_id,
                        face_id,
                        reason,
                    })
                    .collect();
                let job_id = job.job_id.clone();
                return Ok((Switch::LeavesFaces { job_id, failures }, Vec::new()));
            }
            let now = now_ms();
            let switched = group_sql::switch_to_target(tx, &group_id, now)?;
            match job {
                // A revert reuses its upgrade's row.
                Some(job) if job.status == UPGRADED => {
                    job_sql::set_status(tx, &job.job_id, ROLLED_BACK)?
                }
                Some(job) => job_sql::finish(tx, &job.job_id, UPGRADED, None, now)?,
                None => {}
            }
            let faces = sql::of_group(tx, &group_id, model)?
                .into_iter()
                .filter_map(|(person, face, vector)| Some((person, face.parse().ok()?, vector)))
                .collect();
            sql::delete_if_unused(tx, &group.serving_model)?;
            let change = Change::Rebuild {
                group_id,
                version: switched.face_model_version,
                model: model.to_owned(),
                faces: Some(Arc::new(faces)),
            };
            let not_embedded = failures.len();
            Ok((Switch::Switched { not_embedded }, vec![change]))
        })
        .await
    }

    /// Upgrade `job_id` of the group failed (its result says why, e.g. the file listing the faces it would
    /// have left behind): the group stays as it is.
    pub async fn fail_upgrade(
        &self,
        group_id: String,
        job_id: String,
        result: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                job_sql::finish(tx, &job_id, UPGRADE_FAILED, Some(&result), now_ms())?;
                let moving_for_job = group_sql::find(tx, &group_id)?
                    .and_then(|g| g.target)
                    .is_some_and(|t| t.job.as_deref() == Some(job_id.as_str()));
                if moving_for_job {
                    group_sql::clear_target(tx, &group_id)?;
                }
                Ok(())
            })
            .await
    }

    /// At start: set every group whose network is not its version's current one (`current` maps a
    /// version to it) moving to that network, unless it is moving already; returns the networks still
    /// served that are no longer current, and the groups set moving.
    pub async fn move_off_retired_networks(
        &self,
        current: fn(&str) -> &'static str,
    ) -> Result<NetworkPlan, StoreError> {
        self.db
            .write(move |tx| {
                let mut plan = NetworkPlan::default();
                for group in group_sql::list(tx, 0, i64::MAX as u64)? {
                    let network = current(&group.face_model_version);
                    if group.serving_model == network {
                        continue;
                    }
                    if !plan.retired.contains(&group.serving_model) {
                        plan.retired.push(group.serving_model.clone());
                    }
                    if group.target.is_none() {
                        group_sql::set_target(
                            tx,
                            &group.group_id,
                            &Target {
                                version: group.face_model_version.clone(),
                                model: network.to_owned(),
                                job: None,
                            },
                        )?;
                        plan.moved.push(NetworkMove {
                            group_id: group.group_id,
                            from: group.serving_model,
                            to: network,
                        });
                    }
                }
                Ok(plan)
            })
            .await
    }
}
