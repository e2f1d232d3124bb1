//! The legacy duplicate-person actions (CONTROL.md §A.5-A.8): CheckSimilarPerson,
//! EstimateCheckSimilarPersonCostTime, GetCheckSimilarPersonJobIdList, GetSimilarPersonResult. A check is a
//! job row; `jobs::similar` runs it (snapshot, scan, result file).

use std::sync::Arc;

use super::errors::too_long;
use super::rules;
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, RequestContext};
use crate::face::ModelVersion;
use crate::index::{Indexes, Scanner};
use crate::jobs::Jobs;
use crate::jobs::similar::{self, Params};
use crate::store::Store;
use crate::store::jobs::{CHECK_DONE, CheckBudget, JobRow, SIMILAR};

/// The checked groups: 1 to 10 distinct existing groups, all of FaceModelVersion 3.0, at most 2,000,000
/// persons (counted once per group), not all empty. Returns the distinct ids in the order asked and the
/// persons they hold.
fn check_groups(indexes: &Indexes, ids: &[String]) -> Result<(Vec<String>, u64), ApiError> {
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    if unique.is_empty() || unique.len() > similar::MAX_GROUPS {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValueGroupIdsExceed,
            format!("GroupIds must list 1 to {} groups.", similar::MAX_GROUPS),
        ));
    }
    let mut groups = Vec::new();
    for id in &unique {
        rules::check_group_id(id)?;
        let group = indexes
            .group(id)
            .ok_or_else(|| ApiError::code(ErrorCode::InvalidParameterValueGroupIdNotExist))?;
        groups.push(group);
    }
    if groups.iter().any(|g| g.version != groups[0].version) {
        return Err(ApiError::code(
            ErrorCode::FailedOperationAcrossVersionsError,
        ));
    }
    if groups[0].version != ModelVersion::V3 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValueUnsupportedGroupFaceModelVersion,
            "Duplicate-person checks need groups of FaceModelVersion 3.0.",
        ));
    }
    let persons: u64 = groups.iter().map(|g| g.person_count() as u64).sum();
    check_person_total(persons)?;
    Ok((unique, persons))
}

fn check_person_total(persons: u64) -> Result<(), ApiError> {
    if persons > similar::MAX_PERSONS {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValueGroupFaceNumExceed,
            format!(
                "The groups hold {persons} persons; a duplicate-person check takes at most {}.",
                similar::MAX_PERSONS
            ),
        ));
    }
    if persons == 0 {
        return Err(ApiError::code(
            ErrorCode::InvalidParameterValueNoFaceInGroups,
        ));
    }
    Ok(())
}

/// The scan rate for estimates: measured by a short calibration scan at first use (on the blocking pool,
/// admitted by the scan gate), then by the checks themselves; capped by the operator's throttle.
async fn rate(scanner: &Scanner) -> Result<f64, ApiError> {
    let measured = match similar::measured() {
        Some(rate) => rate,
        None => {
            let rate = scanner
                .run(similar::CALIBRATION_PERSONS * 2, similar::calibrate)
                .await
                .map_err(super::errors::scan_failed)?;
            similar::set_measured(rate);
            rate
        }
    };
    Ok(similar::capped(measured))
}

/// Pairs still to compare by the unfinished checks (they run before a new one).
fn queued_pairs(unfinished: &[JobRow]) -> u64 {
    unfinished.iter().map(similar::remaining_pairs).sum()
}

pub async fn check(
    store: &Store,
    indexes: &Indexes,
    scanner: &Scanner,
    jobs: &Arc<Jobs>,
    req: CheckSimilarPersonRequest,
) -> Result<CheckSimilarPersonResponse, ApiError> {
    let (group_ids, persons) = check_groups(indexes, &req.group_ids)?;
    let control = req.unique_person_control;
    if similar::threshold_score(control).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValueUniquePersonControlIllegal,
            "UniquePersonControl must be 1 or 2.",
        ));
    }
    let rate = rate(scanner).await?;
    let pairs = similar::pairs(persons);
    let job_id = crate::jobs::new_job_id("merge_person");
    let params = Params {
        group_ids,
        unique_person_control: control,
        pairs,
    };
    let budget = CheckBudget {
        rate,
        max_minutes: similar::MAX_MINUTES,
    };
    store.queue_check(job_id.clone(), params, budget).await?;
    jobs.wake_checks();
    Ok(CheckSimilarPersonResponse { job_id })
}

pub async fn estimate(
    store: &Store,
    indexes: &Indexes,
    scanner: &Scanner,
    req: EstimateCheckSimilarPersonCostTimeRequest,
) -> Result<EstimateCheckSimilarPersonCostTimeResponse, ApiError> {
    let (_, persons) = check_groups(indexes, &req.group_ids)?;
    let rate = rate(scanner).await?;
    let queued = queued_pairs(&store.unfinished_checks().await?);
    let minutes = similar::minutes(queued + similar::pairs(persons), rate);
    if minutes > similar::MAX_MINUTES {
        return Err(too_long(minutes));
    }
    Ok(EstimateCheckSimilarPersonCostTimeResponse {
        estimated_time_cost: minutes,
    })
}

pub async fn list(
    store: &Store,
    req: GetCheckSimilarPersonJobIdListRequest,
) -> Result<GetCheckSimilarPersonJobIdListResponse, ApiError> {
    // §A.7 lists no OffsetExceed: an offset past the end is an empty page (so no `rules::Page`).
    let limit = rules::check_limit(req.limit, 1000)?;
    let offset = req.offset.unwrap_or(0);
    let (total, jobs) = store.jobs_page(SIMILAR, offset, limit).await?;
    if total == 0 {
        return Err(ApiError::code(ErrorCode::FailedOperationJobNotExist));
    }
    Ok(GetCheckSimilarPersonJobIdListResponse {
        job_id_infos: jobs
            .iter()
            .map(|job| JobIdInfo {
                job_id: job.job_id.clone(),
                start_time: job.started_ms.max(0) as u64,
                job_status: job.status,
            })
            .collect(),
        job_id_num: total,
    })
}

pub async fn result(
    store: &Store,
    jobs: &Arc<Jobs>,
    ctx: &RequestContext,
    req: GetSimilarPersonResultRequest,
) -> Result<GetSimilarPersonResultResponse, ApiError> {
    let job = store
        .job(SIMILAR, req.job_id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::FailedOperationJobIdNotExist))?;
    let file = similar::result_file(&job.job_id);
    // The link only for a finished check whose file is still kept (90 days).
    let url = if job.status == CHECK_DONE && jobs.links.exists(&file).await {
        jobs.links
            .url_for_request(ctx.host.as_deref(), &file, similar::RESULT_LINK)
    } else {
        String::new()
    };
    let progress = if job.status == CHECK_DONE {
        100.0
    } else {
        ((job.progress * 100.0).round() / 100.0).min(99.99)
    };
    Ok(GetSimilarPersonResultResponse {
        progress,
        similar_persons_url: url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_totals() {
        assert!(check_person_total(2_000_000).is_ok());
        assert_eq!(
            check_person_total(2_000_001).unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupFaceNumExceed
        );
        assert_eq!(
            check_person_total(0).unwrap_err().code,
            ErrorCode::InvalidParameterValueNoFaceInGroups
        );
        let id = crate::jobs::new_job_id("merge_person");
        let tail = id.rsplit('_').next().unwrap();
        assert!(id.starts_with("iai_merge_person_"));
        assert_eq!(tail.len(), 8);
        assert!(tail.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
