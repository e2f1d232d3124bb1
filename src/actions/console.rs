//! The web console's actions (tools/api_console.json): lists with counts and the searches as group-scoped
//! actions, person edits (interface-level: a person's name is the same in every group), statistics and the search log from the audit trail, and face thumbnails from the
//! stored crops. The person list and searches are the SDK actions' own types (aliases generated from
//! `same_as`) and code: the console shows exactly what the API answers.

use std::sync::Arc;

use super::rules::Page;
use super::{IaiService, groups};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, Principal, RequestContext, access};
use crate::audit::{self, query};
use crate::cam::directory::Shared;
use crate::config::{DEFAULT_GROUP_QPS, QpsConfig};

/// What the console actions read besides the store: the trail, and the QPS settings and CAM directory (to
/// report the caller's own limits).
#[derive(Default)]
pub struct ConsoleContext {
    pub audit: Option<Arc<audit::Trail>>,
    pub qps: QpsConfig,
    pub directory: Option<Shared>,
}

fn trail(service: &IaiService) -> Result<Arc<audit::Trail>, ApiError> {
    service.console.audit.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedOperation,
            "The audit trail is off on this server (audit_enabled = false).",
        )
    })
}

pub async fn get_group_list(
    service: &IaiService,
    ctx: &RequestContext,
    req: ConsoleGetGroupListRequest,
) -> Result<ConsoleGetGroupListResponse, ApiError> {
    let listed = groups::list(
        &service.store,
        GetGroupListRequest {
            offset: req.offset,
            limit: req.limit,
        },
        ctx.visible_groups.clone(),
    )
    .await?;
    let ids: Vec<String> = listed
        .group_infos
        .iter()
        .map(|g| g.group_id.clone())
        .collect();
    let counts = service.store.group_sizes(ids).await?;
    Ok(ConsoleGetGroupListResponse {
        group_infos: listed
            .group_infos
            .into_iter()
            .zip(counts)
            .map(|(g, (persons, faces))| ConsoleGroupInfo {
                group_id: g.group_id,
                group_name: g.group_name,
                group_ex_descriptions: g.group_ex_descriptions.unwrap_or_default(),
                tag: g.tag.unwrap_or_default(),
                face_model_version: g.face_model_version.unwrap_or_default(),
                creation_timestamp: g.creation_timestamp.unwrap_or_default(),
                person_num: persons,
                face_num: faces,
            })
            .collect(),
        group_num: listed.group_num.unwrap_or_default(),
    })
}

/// ConsoleCalibrateGroup: `iai-server calibrate --group` for the console's group page, measured on one
/// thread as an admitted index scan, one at a time on this server (a second call meanwhile is refused
/// before it copies anything).
pub async fn calibrate_group(
    service: &IaiService,
    req: ConsoleCalibrateGroupRequest,
) -> Result<ConsoleCalibrateGroupResponse, ApiError> {
    let group = service
        .indexes
        .group(&req.group_id)
        .ok_or_else(|| ApiError::code(ErrorCode::InvalidParameterValueGroupIdNotExist))?;
    let Ok(_running) = service.calibrating.try_acquire() else {
        return Err(ApiError::new(
            ErrorCode::RequestLimitExceeded,
            "A score calibration is already running on this server; try again when it has finished.",
        ));
    };
    let faces = group.read().faces_for_calibration();
    let compared = faces.compared();
    let report = service
        .scanner
        .run(compared * compared / 2, move || {
            crate::index::calibrate::measure(&faces, 1)
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
    Ok(ConsoleCalibrateGroupResponse {
        face_model_version: report.face_model_version.to_owned(),
        person_num: report.persons as u64,
        face_num: report.faces as u64,
        faces_compared: report.faces_compared as u64,
        impostor_pairs: report.impostor_pairs,
        scales: report
            .scales
            .into_iter()
            .map(|scale| ConsoleCalibrationScale {
                scale: scale.scale.to_owned(),
                at_score: scale
                    .at_score
                    .into_iter()
                    .map(|row| ConsoleCalibrationAtScore {
                        score: f64::from(row.score),
                        pairs: row.pairs,
                        rate: row.rate,
                    })
                    .collect(),
                score_at_rate: scale
                    .score_at_rate
                    .into_iter()
                    .map(|row| ConsoleCalibrationAtRate {
                        rate: row.rate,
                        score: row.score.map(f64::from),
                        pairs: row.pairs,
                    })
                    .collect(),
            })
            .collect(),
    })
}

pub async fn get_person_list(
    service: &IaiService,
    req: ConsoleGetPersonListRequest,
) -> Result<ConsoleGetPersonListResponse, ApiError> {
    service.persons().get_person_list(req).await
}

pub async fn search_faces(
    service: &IaiService,
    req: ConsoleSearchFacesRequest,
) -> Result<ConsoleSearchFacesResponse, ApiError> {
    service.search().search_faces(req).await
}

pub async fn search_persons(
    service: &IaiService,
    req: ConsoleSearchPersonsRequest,
) -> Result<ConsoleSearchPersonsResponse, ApiError> {
    service.search().search_persons(req).await
}

/// ModifyPersonBaseInfo for a person of the named group (the group makes it resource-level).
pub async fn modify_person_base_info(
    service: &IaiService,
    req: ConsoleModifyPersonBaseInfoRequest,
) -> Result<ConsoleModifyPersonBaseInfoResponse, ApiError> {
    super::rules::check_group_id(&req.group_id)?;
    let member = service
        .store
        .person_in_group(req.group_id, req.person_id.clone())
        .await?;
    if !member {
        return Err(ApiError::code(
            ErrorCode::FailedOperationGroupPersonMapNotExist,
        ));
    }
    service
        .persons()
        .modify_person_base_info(ModifyPersonBaseInfoRequest {
            person_id: req.person_id,
            person_name: req.person_name,
            gender: req.gender,
        })
        .await?;
    Ok(ConsoleModifyPersonBaseInfoResponse {})
}

pub async fn describe_stat_info(
    service: &IaiService,
    ctx: &RequestContext,
    req: DescribeStatInfoRequest,
) -> Result<DescribeStatInfoResponse, ApiError> {
    // By default up to the end of the current second: a bucket that began this second is included.
    let now = chrono::Utc::now().timestamp();
    let end = req.end_time.map_or(now + 1, |t| t as i64);
    let start = req.start_time.map_or(end - 86_400, |t| t as i64);
    if start >= end || end - start > 31 * 86_400 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            "StartTime must be before EndTime, at most 31 days apart.",
        ));
    }
    let trail = trail(service)?;
    let rows = tokio::task::spawn_blocking(move || {
        let conn = trail
            .reader()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        query::stats(&conn, start * 1000, end * 1000).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let totals = service.store.totals().await?;
    // The caller's own limits, and the busiest 5 minutes of each interface group (all callers together).
    let user = match (ctx.principal, &service.console.directory) {
        (Principal::User(uin), Some(d)) => d.load().user_name(uin).map(str::to_owned),
        _ => None,
    };
    let limits = access::InterfaceGroup::ALL
        .iter()
        .map(|g| {
            let peak = rows
                .iter()
                .filter(|r| r.interface_group == g.key())
                .fold(std::collections::BTreeMap::<i64, u64>::new(), |mut m, r| {
                    *m.entry(r.bucket_ms).or_default() += r.calls;
                    m
                })
                .values()
                .max()
                .map_or(0.0, |&calls| {
                    calls as f64 / (audit::BUCKET_MS as f64 / 1000.0)
                });
            QpsLimit {
                interface_group: g.key().to_owned(),
                qps: service
                    .console
                    .qps
                    .limit(user.as_deref(), g.key(), DEFAULT_GROUP_QPS) as u64,
                peak_qps: peak,
            }
        })
        .collect();
    Ok(DescribeStatInfoResponse {
        buckets: rows
            .into_iter()
            .map(|r| StatBucket {
                time: (r.bucket_ms / 1000) as u64,
                action: r.action,
                interface_group: r.interface_group,
                calls: r.calls,
                errors: r.errors,
                latency_p50_ms: r.p50_ms,
                latency_p99_ms: r.p99_ms,
            })
            .collect(),
        totals: StatTotals {
            group_num: totals.groups,
            person_num: totals.persons,
            face_num: totals.faces,
        },
        limits,
    })
}

pub async fn describe_search_log(
    service: &IaiService,
    req: DescribeSearchLogRequest,
) -> Result<DescribeSearchLogResponse, ApiError> {
    let page = Page::new(req.offset, req.limit.or(Some(20)), 100, u64::MAX)?;
    let filter = query::LogFilter {
        start_ms: req.start_time.map(|t| t as i64 * 1000),
        end_ms: req.end_time.map(|t| t as i64 * 1000),
        group_id: req.group_id.filter(|g| !g.is_empty()),
        secret_id: req.secret_id.filter(|s| !s.is_empty()),
        principal: req.principal.filter(|p| !p.is_empty()),
        code: req.code.filter(|c| !c.is_empty()),
        offset: page.offset,
        limit: page.limit,
    };
    let trail = trail(service)?;
    let (records, total) = tokio::task::spawn_blocking(move || {
        let conn = trail
            .reader()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        query::search_log(&conn, &filter).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(DescribeSearchLogResponse {
        records: records
            .into_iter()
            .map(|r| SearchLogRecord {
                time: r.time_ms.max(0) as u64,
                request_id: r.request_id,
                action: r.action.unwrap_or_default(),
                secret_id: r.secret_id.unwrap_or_default(),
                principal: r.principal,
                group_ids: r.groups,
                code: r.code,
                latency_ms: r.latency_us as f64 / 1000.0,
                face_num: r.face_num.unwrap_or(0),
                candidates: r
                    .candidates
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| LogCandidate {
                        person_id: c.person_id,
                        face_id: c.face_id.unwrap_or_default(),
                        score: c.score,
                    })
                    .collect(),
            })
            .collect(),
        total,
    })
}

pub async fn get_face_thumbnail(
    service: &IaiService,
    req: GetFaceThumbnailRequest,
) -> Result<GetFaceThumbnailResponse, ApiError> {
    let crop = service.store.face_crop(req.face_id).await?;
    let Some(png) = crop else {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            "The face does not exist.",
        ));
    };
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(&png))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .unwrap_or((0, 0));
    use base64::Engine;
    Ok(GetFaceThumbnailResponse {
        image: base64::engine::general_purpose::STANDARD.encode(&png),
        width: u64::from(width),
        height: u64::from(height),
    })
}
