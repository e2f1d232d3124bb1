//! The model-version jobs (CONTROL.md §A.1-A.4): UpgradeGroupFaceModelVersion,
//! RevertGroupFaceModelVersion, GetUpgradeGroupFaceModelVersionJobList,
//! GetUpgradeGroupFaceModelVersionResult. An upgrade sets the group moving to 3.0 (`jobs::mover` embeds its
//! faces and switches it); the group keeps answering on 2.0, fully writable, until the switch. A revert moves
//! it back (its 2.0 embeddings were kept), once per group.

use std::sync::Arc;

use super::errors::{cannot_upgrade, job_not_found};
use super::rules::{self, Page};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, RequestContext};
use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::jobs::Jobs;
use crate::jobs::mover::FAILED_FACES_LINK;
use crate::store::jobs::{JobRow, NewUpgrade, UPGRADE};
use crate::store::{Store, now_ms};

pub async fn upgrade(
    store: &Store,
    jobs: &Arc<Jobs>,
    req: UpgradeGroupFaceModelVersionRequest,
) -> Result<UpgradeGroupFaceModelVersionResponse, ApiError> {
    // §A.1 lists no GroupIdTooLong: every malformed id is GroupIdIllegal here.
    rules::check_group_id(&req.group_id).map_err(|e| {
        if e.code == ErrorCode::InvalidParameterValueGroupIdTooLong {
            ApiError::new(ErrorCode::InvalidParameterValueGroupIdIllegal, e.message)
        } else {
            e
        }
    })?;
    let to = rules::face_model_version(Some(&req.face_model_version))?;
    if to != ModelVersion::V3.as_str() {
        return Err(cannot_upgrade(
            "Groups can only be upgraded from 2.0 to 3.0.",
        ));
    }
    let job_id = crate::jobs::new_job_id("upgrade_group");
    store
        .start_upgrade(NewUpgrade {
            job_id: job_id.clone(),
            group_id: req.group_id,
            from: ModelVersion::V2.as_str().to_owned(),
            to,
            model: Recognition::current(ModelVersion::V3).file.to_owned(),
        })
        .await?;
    jobs.wake_mover();
    Ok(UpgradeGroupFaceModelVersionResponse { job_id })
}

fn check_job_id(job_id: &str) -> Result<(), ApiError> {
    if job_id.is_empty() || job_id.len() > 128 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterInvalidParameter,
            "JobId must be 1 to 128 characters.",
        ));
    }
    Ok(())
}

pub async fn revert(
    store: &Store,
    jobs: &Arc<Jobs>,
    req: RevertGroupFaceModelVersionRequest,
) -> Result<RevertGroupFaceModelVersionResponse, ApiError> {
    check_job_id(&req.job_id)?;
    store.revert_upgrade(req.job_id).await?;
    jobs.wake_mover();
    Ok(RevertGroupFaceModelVersionResponse {})
}

fn job_info(job: &JobRow) -> UpgradeJobInfo {
    UpgradeJobInfo {
        job_id: job.job_id.clone(),
        group_id: job.group_id.clone().unwrap_or_default(),
        from_face_model_version: job.params["from"].as_str().unwrap_or("2.0").to_owned(),
        to_face_model_version: job.params["to"].as_str().unwrap_or("3.0").to_owned(),
        start_time: job.started_ms.max(0) as u64,
        status: job.status.max(0) as u64,
    }
}

pub async fn list(
    store: &Store,
    req: GetUpgradeGroupFaceModelVersionJobListRequest,
) -> Result<GetUpgradeGroupFaceModelVersionJobListResponse, ApiError> {
    // The limit is checked before the read, the offset against the total the read saw.
    let wanted = Page::new(req.offset, req.limit, 1000, u64::MAX)?;
    let (total, jobs) = store
        .jobs_page(UPGRADE, wanted.offset, wanted.limit)
        .await?;
    Page::new(req.offset, req.limit, 1000, total)?;
    Ok(GetUpgradeGroupFaceModelVersionJobListResponse {
        job_infos: jobs.iter().map(job_info).collect(),
        job_num: total,
    })
}

pub async fn result(
    store: &Store,
    jobs: &Arc<Jobs>,
    ctx: &RequestContext,
    req: GetUpgradeGroupFaceModelVersionResultRequest,
) -> Result<GetUpgradeGroupFaceModelVersionResultResponse, ApiError> {
    check_job_id(&req.job_id)?;
    let job = store
        .job(UPGRADE, req.job_id)
        .await?
        .ok_or_else(job_not_found)?;
    let now = now_ms();
    let end = match job.finished_ms {
        Some(finished) => finished,
        // Estimated from the rate so far; before the first batch, a second from now.
        None if job.progress > 0.0 => {
            let elapsed = (now - job.started_ms).max(0) as f64;
            job.started_ms + (elapsed * 100.0 / job.progress) as i64
        }
        None => now + 1000,
    };
    let failed_faces_url = match job
        .result
        .as_ref()
        .and_then(|r| r["failed_faces_file"].as_str())
    {
        Some(file) if jobs.links.exists(file).await => {
            jobs.links
                .url_for_request(ctx.host.as_deref(), file, FAILED_FACES_LINK)
        }
        _ => String::new(),
    };
    let info = job_info(&job);
    Ok(GetUpgradeGroupFaceModelVersionResultResponse {
        end_timestamp: end.max(0) as u64,
        progress: (job.progress * 100.0).round() / 100.0,
        status: job.status,
        start_time: info.start_time,
        from_face_model_version: info.from_face_model_version,
        to_face_model_version: info.to_face_model_version,
        group_id: info.group_id,
        failed_faces_url,
    })
}
