//! The store's named operations on jobs, backend-neutral: callers outside `store/` use these and the
//! row types here, never a backend's.
//!
//! A job is a row that its worker takes (`claim_check`), advances (`save_progress`, `set_check_params`) and
//! ends (`finish_check`, `fail_check`; an upgrade ends when its group switches, `Store::switch_group`) by
//! named steps, never by a transaction of the caller's: a shared backend can then lease the row it hands
//! out, so that one server runs each job.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::groups::Target;
use super::sql::{groups as group_sql, jobs as sql, vectors as vector_sql};
use super::{Store, StoreError, now_ms};

pub use super::sql::jobs::{
    CHECK_DONE, CHECK_FAILED, CHECK_RUNNING, JobRow, ROLLED_BACK, SIMILAR, UPGRADE, UPGRADE_FAILED,
    UPGRADED, UPGRADING,
};

/// An upgrade asked for: the group moves from version `from` to `to`, embedded by network `model`.
#[derive(Debug, Clone)]
pub struct NewUpgrade {
    pub job_id: String,
    pub group_id: String,
    pub from: String,
    pub to: String,
    pub model: String,
}

/// What a duplicate check was asked to do, as kept in its job row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckParams {
    /// Distinct, in the order asked.
    pub group_ids: Vec<String>,
    pub unique_person_control: i64,
    /// Pairs to compare: estimated from the group sizes when asked, exact once the snapshot is taken.
    pub pairs: u64,
}

impl CheckParams {
    pub fn of(job: &JobRow) -> Option<Self> {
        serde_json::from_value(job.params.clone()).ok()
    }

    /// Whether `self` checks exactly the groups of `group_ids`, in any order.
    pub fn same_groups(&self, group_ids: &[String]) -> bool {
        let mut mine = self.group_ids.clone();
        let mut theirs = group_ids.to_vec();
        mine.sort_unstable();
        mine.dedup();
        theirs.sort_unstable();
        theirs.dedup();
        mine == theirs
    }
}

/// Pairs not yet compared by an unfinished check.
pub fn remaining_pairs(job: &JobRow) -> u64 {
    let pairs = CheckParams::of(job).map_or(0, |p| p.pairs);
    (pairs as f64 * (1.0 - job.progress / 100.0).clamp(0.0, 1.0)).ceil() as u64
}

/// Minutes to compare `pairs` at `rate` pairs per second, rounded up; at least 1 when there is work.
pub fn minutes(pairs: u64, rate: f64) -> u64 {
    if pairs == 0 {
        return 0;
    }
    ((pairs as f64 / rate.max(1e-9) / 60.0).ceil() as u64).max(1)
}

/// How much the duplicate-check queue may hold: a new check is refused when it, with the unfinished checks
/// before it, would take more than `max_minutes` at `rate` pairs per second.
#[derive(Debug, Clone, Copy)]
pub struct CheckBudget {
    pub rate: f64,
    pub max_minutes: u64,
}

impl Store {
    /// UpgradeGroupFaceModelVersion: a running upgrade job, and the group set moving to `to` (the failures
    /// of `model` on its faces are forgotten: a retried upgrade tries them again). Refused unless the group
    /// is of version `from` and not moving.
    pub async fn start_upgrade(&self, upgrade: NewUpgrade) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                let group = group_sql::get(tx, &upgrade.group_id)?;
                if group.face_model_version != upgrade.from {
                    return Err(Refusal::AlreadyVersion(group.face_model_version).into());
                }
                if group.target.is_some() {
                    return Err(Refusal::AlreadyUpgrading.into());
                }
                sql::insert(
                    tx,
                    &JobRow {
                        job_id: upgrade.job_id.clone(),
                        kind: UPGRADE.into(),
                        group_id: Some(upgrade.group_id.clone()),
                        params: serde_json::json!({"from": upgrade.from, "to": upgrade.to}),
                        status: UPGRADING,
                        progress: 0.0,
                        result: None,
                        started_ms: now_ms(),
                        finished_ms: None,
                    },
                )?;
                vector_sql::clear_failures(tx, &upgrade.group_id, &upgrade.model)?;
                group_sql::set_target(
                    tx,
                    &upgrade.group_id,
                    &Target {
                        version: upgrade.to,
                        model: upgrade.model,
                        job: Some(upgrade.job_id),
                    },
                )
            })
            .await
    }

    /// RevertGroupFaceModelVersion: set the group of upgrade `job_id` moving back to what it served before.
    /// Only the group's last upgrade, finished, once per group, and not while the group moves.
    pub async fn revert_upgrade(&self, job_id: String) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                let job = sql::find(tx, &job_id)?
                    .filter(|j| j.kind == UPGRADE)
                    .ok_or(Refusal::UpgradeJobNotFound)?;
                let group_id = job.group_id.clone().unwrap_or_default();
                let group = group_sql::get(tx, &group_id)?;
                if job.status != UPGRADED {
                    return Err(Refusal::NotFinished.into());
                }
                let upgrades = sql::of_group(tx, &group_id)?;
                if upgrades.iter().any(|j| j.status == ROLLED_BACK) {
                    return Err(Refusal::RolledBackOnce.into());
                }
                if upgrades
                    .first()
                    .is_some_and(|newest| newest.job_id != job.job_id)
                {
                    return Err(Refusal::NotLastUpgrade.into());
                }
                let (Some((version, model)), None) = (group.previous, group.target) else {
                    return Err(Refusal::NothingToRevert.into());
                };
                group_sql::set_target(
                    tx,
                    &group_id,
                    &Target {
                        version,
                        model,
                        job: Some(job.job_id),
                    },
                )
            })
            .await
    }

    /// The job `job_id` if it is of `kind`.
    pub async fn job(
        &self,
        kind: &'static str,
        job_id: String,
    ) -> Result<Option<JobRow>, StoreError> {
        self.db
            .read(move |conn| Ok(sql::find(conn, &job_id)?.filter(|j| j.kind == kind)))
            .await
    }

    /// How many jobs of `kind` there are and a page of them, newest first, from one read.
    pub async fn jobs_page(
        &self,
        kind: &'static str,
        offset: u64,
        limit: u64,
    ) -> Result<(u64, Vec<JobRow>), StoreError> {
        self.db
            .read(move |conn| {
                // One read transaction: the count and the page agree.
                let total = sql::count(conn, kind)?;
                Ok((total, sql::list(conn, kind, offset, limit)?))
            })
            .await
    }

    /// CheckSimilarPerson: a new duplicate check `job_id`, queued behind the unfinished ones. Refused when an
    /// unfinished check has the same groups, or when the queue with it would exceed `budget`.
    pub async fn queue_check(
        &self,
        job_id: String,
        params: CheckParams,
        budget: CheckBudget,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                let unfinished = sql::with_status(tx, SIMILAR, CHECK_RUNNING)?;
                if unfinished
                    .iter()
                    .filter_map(CheckParams::of)
                    .any(|p| p.same_groups(&params.group_ids))
                {
                    return Err(Refusal::CheckUnfinished.into());
                }
                let queued: u64 = unfinished.iter().map(remaining_pairs).sum();
                let minutes = minutes(queued + params.pairs, budget.rate);
                if minutes > budget.max_minutes {
                    return Err(Refusal::CheckTooLong { minutes }.into());
                }
                sql::insert(
                    tx,
                    &JobRow {
                        job_id,
                        kind: SIMILAR.into(),
                        group_id: None,
                        params: serde_json::to_value(&params).unwrap_or_default(),
                        status: CHECK_RUNNING,
                        progress: 0.0,
                        result: None,
                        started_ms: now_ms(),
                        finished_ms: None,
                    },
                )
            })
            .await
    }

    /// The duplicate checks not yet finished, oldest first (the queue).
    pub async fn unfinished_checks(&self) -> Result<Vec<JobRow>, StoreError> {
        self.db
            .read(|conn| sql::with_status(conn, SIMILAR, CHECK_RUNNING))
            .await
    }

    /// The duplicate check to run next: the oldest unfinished one. With SQLite one process runs the checks,
    /// so nothing is leased; a shared backend leases the row to the caller.
    pub async fn claim_check(&self) -> Result<Option<JobRow>, StoreError> {
        self.db
            .read(|conn| sql::oldest_with_status(conn, SIMILAR, CHECK_RUNNING))
            .await
    }

    /// What a running check does (its exact pair count once it has its snapshot).
    pub async fn set_check_params(
        &self,
        job_id: String,
        params: CheckParams,
    ) -> Result<(), StoreError> {
        let params = serde_json::to_value(&params).unwrap_or_default();
        self.db
            .write(move |tx| sql::set_params(tx, &job_id, &params))
            .await
    }

    /// The progress (percent) of a running job; a finished one keeps its own.
    pub async fn save_progress(&self, job_id: String, progress: f64) -> Result<(), StoreError> {
        self.db
            .write(move |tx| sql::set_progress(tx, &job_id, progress))
            .await
    }

    /// A duplicate check done: its result (the file and counts), progress 100.
    pub async fn finish_check(
        &self,
        job_id: String,
        result: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| sql::finish(tx, &job_id, CHECK_DONE, Some(&result), now_ms()))
            .await
    }

    /// A duplicate check that cannot complete: failed, with why in its result.
    pub async fn fail_check(
        &self,
        job_id: String,
        result: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| sql::fail(tx, &job_id, &result, now_ms()))
            .await
    }

    /// Forget the duplicate checks finished before `before_ms`; returns how many.
    pub async fn forget_checks_before(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.db
            .write(move |tx| sql::delete_finished_before(tx, SIMILAR, before_ms))
            .await
    }

    /// The names of persons `ids` as they are now (a person deleted meanwhile has "").
    pub async fn person_names(
        &self,
        ids: Vec<Arc<str>>,
    ) -> Result<HashMap<Arc<str>, String>, StoreError> {
        self.db
            .read(move |conn| {
                let mut names = HashMap::with_capacity(ids.len());
                for id in ids {
                    let name = sql::person_name(conn, &id)?.unwrap_or_default();
                    names.insert(id, name);
                }
                Ok(names)
            })
            .await
    }
}

/// What the writing transaction refused, on what it read (mapped to Tencent's codes by the caller).
#[derive(Debug)]
pub enum Refusal {
    /// An upgrade of a group that does not use the version upgraded from (it uses this one).
    AlreadyVersion(String),
    /// An upgrade of a group that is moving already.
    AlreadyUpgrading,
    /// A revert of a job that is not an upgrade of this server.
    UpgradeJobNotFound,
    /// A revert of an upgrade that has not finished.
    NotFinished,
    /// A revert of a group that was rolled back once already.
    RolledBackOnce,
    /// A revert of an upgrade that is not its group's last.
    NotLastUpgrade,
    /// A revert of a group that is moving, or has nothing to go back to.
    NothingToRevert,
    /// A duplicate check of the same groups as an unfinished one.
    CheckUnfinished,
    /// A duplicate check that would finish in `minutes` (with the queue before it), past the limit.
    CheckTooLong { minutes: u64 },
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        StoreError::Job(refusal)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::AlreadyVersion(version) => write!(f, "the group already uses model {version}"),
            Refusal::AlreadyUpgrading => f.write_str("the group is already being upgraded"),
            Refusal::UpgradeJobNotFound => f.write_str("no such upgrade job"),
            Refusal::NotFinished => f.write_str("only a finished upgrade can be rolled back"),
            Refusal::RolledBackOnce => f.write_str("the group has been rolled back once already"),
            Refusal::NotLastUpgrade => f.write_str("it is not the group's last upgrade"),
            Refusal::NothingToRevert => {
                f.write_str("the group is moving, or has nothing to go back to")
            }
            Refusal::CheckUnfinished => {
                f.write_str("a duplicate check of the same groups is unfinished")
            }
            Refusal::CheckTooLong { minutes } => {
                write!(f, "the check would finish in about {minutes} minutes")
            }
        }
    }
}

impl Store {
    /// Take or renew the lease `name` (a kind of background work) for `owner` for `ttl`: `true` when
    /// `owner` holds it now. Writes are one at a time across every server, so two cannot both win.
    pub async fn take_lease(
        &self,
        name: &'static str,
        owner: String,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.db
            .write(move |tx| {
                let now = now_ms();
                sql::take_lease(tx, name, &owner, now, now + ttl.as_millis() as i64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embeddings::Switch;
    use crate::store::groups::NewGroup;

    fn refusal<T: fmt::Debug>(r: Result<T, StoreError>) -> Refusal {
        match r {
            Err(StoreError::Job(refusal)) => refusal,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_upgrade_switches_reverts_once_and_refuses_what_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let group = |id: &str| NewGroup {
            group_id: id.into(),
            name: id.into(),
            tag: String::new(),
            ex_descriptions: Vec::new(),
            face_model_version: "2.0".into(),
            serving_model: "m2.onnx".into(),
        };
        store.create_group(group("g"), 10).await.unwrap();
        let upgrade = |job: &str| NewUpgrade {
            job_id: job.into(),
            group_id: "g".into(),
            from: "2.0".into(),
            to: "3.0".into(),
            model: "m3.onnx".into(),
        };
        store.start_upgrade(upgrade("j1")).await.unwrap();
        assert!(matches!(
            refusal(store.start_upgrade(upgrade("j2")).await),
            Refusal::AlreadyUpgrading
        ));
        assert!(matches!(
            refusal(store.revert_upgrade("nope".into()).await),
            Refusal::UpgradeJobNotFound
        ));
        assert!(matches!(
            refusal(store.revert_upgrade("j1".into()).await),
            Refusal::NotFinished
        ));
        // Another network than the target's: not switched.
        assert!(matches!(
            store.switch_group("g".into(), "m4.onnx").await.unwrap(),
            Switch::Again
        ));
        assert!(matches!(
            store.switch_group("g".into(), "m3.onnx").await.unwrap(),
            Switch::Switched { not_embedded: 0 }
        ));
        let job = store.job(UPGRADE, "j1".into()).await.unwrap().unwrap();
        assert_eq!((job.status, job.progress), (UPGRADED, 100.0));
        assert!(store.job(SIMILAR, "j1".into()).await.unwrap().is_none());
        assert!(matches!(
            refusal(store.start_upgrade(upgrade("j2")).await),
            Refusal::AlreadyVersion(v) if v == "3.0"
        ));
        store.revert_upgrade("j1".into()).await.unwrap();
        assert_eq!(store.moving_groups().await.unwrap().len(), 1);
        assert!(matches!(
            store.switch_group("g".into(), "m2.onnx").await.unwrap(),
            Switch::Switched { .. }
        ));
        let job = store.job(UPGRADE, "j1".into()).await.unwrap().unwrap();
        assert_eq!(job.status, ROLLED_BACK);
        assert!(matches!(
            refusal(store.revert_upgrade("j1".into()).await),
            Refusal::NotFinished
        ));
        assert!(store.moving_groups().await.unwrap().is_empty());
        assert_eq!(store.jobs_page(UPGRADE, 0, 10).await.unwrap().0, 1);
    }

    #[tokio::test]
    async fn the_check_queue_refuses_the_same_groups_and_too_long_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let params = |groups: &[&str], pairs| CheckParams {
            group_ids: groups.iter().map(|g| g.to_string()).collect(),
            unique_person_control: 1,
            pairs,
        };
        // 60 pairs a second: a minute's work is 3600 pairs.
        let budget = CheckBudget {
            rate: 60.0,
            max_minutes: 2,
        };
        store
            .queue_check("c1".into(), params(&["a", "b"], 3600), budget)
            .await
            .unwrap();
        assert!(matches!(
            refusal(
                store
                    .queue_check("c2".into(), params(&["b", "a"], 1), budget)
                    .await
            ),
            Refusal::CheckUnfinished
        ));
        assert!(matches!(
            refusal(
                store
                    .queue_check("c2".into(), params(&["c"], 3601), budget)
                    .await
            ),
            Refusal::CheckTooLong { minutes: 3 }
        ));
        store
            .queue_check("c2".into(), params(&["c"], 3600), budget)
            .await
            .unwrap();
        let next = store.claim_check().await.unwrap().unwrap();
        assert_eq!(next.job_id, "c1");
        store.save_progress("c1".into(), 50.0).await.unwrap();
        store
            .finish_check("c1".into(), serde_json::json!({"file": "c1.json"}))
            .await
            .unwrap();
        store
            .fail_check("c2".into(), serde_json::json!({"error": "x"}))
            .await
            .unwrap();
        assert!(store.claim_check().await.unwrap().is_none());
        assert!(store.unfinished_checks().await.unwrap().is_empty());
        let listed = store.jobs_page(SIMILAR, 0, 10).await.unwrap().1;
        let status: Vec<(&str, i64)> = listed
            .iter()
            .map(|j| (j.job_id.as_str(), j.status))
            .collect();
        assert!(status.contains(&("c1", CHECK_DONE)) && status.contains(&("c2", CHECK_FAILED)));
        assert_eq!(store.forget_checks_before(i64::MAX).await.unwrap(), 2);
        assert_eq!(store.jobs_page(SIMILAR, 0, 10).await.unwrap().0, 0);
    }
}
