//! The IAI actions: `IaiService` implements the generated `Iai` trait, one method per action, each
//! delegating to the module of its concern. Actions not listed here answer `UnsupportedOperation` through
//! the trait's defaults until their issue lands.

mod analysis;
mod console;
mod faces;
mod groups;
mod jobs;
mod persons;
pub mod rules;
mod search;
mod similar;

use std::sync::Arc;

use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, Iai, RequestContext};
use crate::face::download::Downloader;
use crate::face::{FaceError, FacePipeline};
use crate::index::{Indexes, Scanner};
use crate::jobs::Jobs;
use crate::store::{Store, StoreError, now_ms};

pub use console::ConsoleContext;

pub struct IaiService {
    console: ConsoleContext,
    store: Store,
    indexes: Arc<Indexes>,
    scanner: Scanner,
    faces: Arc<FacePipeline>,
    downloader: Downloader,
    jobs: Arc<Jobs>,
    digest_running: tokio::sync::Mutex<()>,
    /// One ConsoleCalibrateGroup at a time (a second one is refused, not queued: it holds a scan slot
    /// for seconds).
    calibrating: tokio::sync::Semaphore,
    /// How far behind the database this server may be and still search (`max_staleness_ms`).
    max_staleness: std::time::Duration,
}

impl IaiService {
    pub fn new(
        store: Store,
        indexes: Arc<Indexes>,
        faces: Arc<FacePipeline>,
        downloader: Downloader,
        jobs: Arc<Jobs>,
        console: ConsoleContext,
    ) -> Self {
        Self {
            console,
            store,
            indexes,
            scanner: Scanner::new(crate::admission::cores()),
            faces,
            downloader,
            jobs,
            digest_running: tokio::sync::Mutex::new(()),
            calibrating: tokio::sync::Semaphore::new(1),
            max_staleness: std::time::Duration::from_millis(1000),
        }
    }

    /// Refuse searches (and report not ready) when this server is further than `max` behind the database.
    pub fn with_max_staleness(mut self, max: std::time::Duration) -> Self {
        self.max_staleness = max;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn indexes(&self) -> &Arc<Indexes> {
        &self.indexes
    }

    pub fn faces(&self) -> &Arc<FacePipeline> {
        &self.faces
    }

    fn persons(&self) -> persons::Persons<'_> {
        persons::Persons {
            store: &self.store,
            indexes: &self.indexes,
            scanner: &self.scanner,
            faces: &self.faces,
            downloader: &self.downloader,
        }
    }

    fn search(&self) -> search::Search<'_> {
        search::Search {
            store: &self.store,
            indexes: &self.indexes,
            scanner: &self.scanner,
            faces: &self.faces,
            downloader: &self.downloader,
            max_staleness: self.max_staleness,
        }
    }
}

impl Iai for IaiService {
    async fn console_get_group_list(
        &self,
        ctx: &RequestContext,
        req: ConsoleGetGroupListRequest,
    ) -> Result<ConsoleGetGroupListResponse, ApiError> {
        console::get_group_list(self, ctx, req).await
    }

    async fn console_get_person_list(
        &self,
        _: &RequestContext,
        req: ConsoleGetPersonListRequest,
    ) -> Result<ConsoleGetPersonListResponse, ApiError> {
        console::get_person_list(self, req).await
    }

    async fn console_calibrate_group(
        &self,
        _: &RequestContext,
        req: ConsoleCalibrateGroupRequest,
    ) -> Result<ConsoleCalibrateGroupResponse, ApiError> {
        console::calibrate_group(self, req).await
    }

    async fn console_search_faces(
        &self,
        _: &RequestContext,
        req: ConsoleSearchFacesRequest,
    ) -> Result<ConsoleSearchFacesResponse, ApiError> {
        console::search_faces(self, req).await
    }

    async fn console_search_persons(
        &self,
        _: &RequestContext,
        req: ConsoleSearchPersonsRequest,
    ) -> Result<ConsoleSearchPersonsResponse, ApiError> {
        console::search_persons(self, req).await
    }

    async fn console_modify_person_base_info(
        &self,
        _: &RequestContext,
        req: ConsoleModifyPersonBaseInfoRequest,
    ) -> Result<ConsoleModifyPersonBaseInfoResponse, ApiError> {
        console::modify_person_base_info(self, req).await
    }

    async fn describe_stat_info(
        &self,
        ctx: &RequestContext,
        req: DescribeStatInfoRequest,
    ) -> Result<DescribeStatInfoResponse, ApiError> {
        console::describe_stat_info(self, ctx, req).await
    }

    async fn describe_search_log(
        &self,
        _: &RequestContext,
        req: DescribeSearchLogRequest,
    ) -> Result<DescribeSearchLogResponse, ApiError> {
        console::describe_search_log(self, req).await
    }

    async fn get_face_thumbnail(
        &self,
        _: &RequestContext,
        req: GetFaceThumbnailRequest,
    ) -> Result<GetFaceThumbnailResponse, ApiError> {
        console::get_face_thumbnail(self, req).await
    }

    async fn create_person(
        &self,
        _: &RequestContext,
        req: CreatePersonRequest,
    ) -> Result<CreatePersonResponse, ApiError> {
        self.persons().create_person(req).await
    }

    async fn create_face(
        &self,
        _: &RequestContext,
        req: CreateFaceRequest,
    ) -> Result<CreateFaceResponse, ApiError> {
        self.persons().create_face(req).await
    }

    async fn delete_face(
        &self,
        _: &RequestContext,
        req: DeleteFaceRequest,
    ) -> Result<DeleteFaceResponse, ApiError> {
        self.persons().delete_face(req).await
    }

    async fn delete_person(
        &self,
        _: &RequestContext,
        req: DeletePersonRequest,
    ) -> Result<DeletePersonResponse, ApiError> {
        self.persons().delete_person(req).await
    }

    async fn delete_person_from_group(
        &self,
        _: &RequestContext,
        req: DeletePersonFromGroupRequest,
    ) -> Result<DeletePersonFromGroupResponse, ApiError> {
        self.persons().delete_person_from_group(req).await
    }

    async fn copy_person(
        &self,
        ctx: &RequestContext,
        req: CopyPersonRequest,
    ) -> Result<CopyPersonResponse, ApiError> {
        self.persons()
            .copy_person(req, ctx.existing_groups.clone())
            .await
    }

    async fn get_person_list(
        &self,
        _: &RequestContext,
        req: GetPersonListRequest,
    ) -> Result<GetPersonListResponse, ApiError> {
        self.persons().get_person_list(req).await
    }

    async fn get_person_base_info(
        &self,
        _: &RequestContext,
        req: GetPersonBaseInfoRequest,
    ) -> Result<GetPersonBaseInfoResponse, ApiError> {
        self.persons().get_person_base_info(req).await
    }

    async fn get_person_group_info(
        &self,
        _: &RequestContext,
        req: GetPersonGroupInfoRequest,
    ) -> Result<GetPersonGroupInfoResponse, ApiError> {
        self.persons().get_person_group_info(req).await
    }

    async fn modify_person_base_info(
        &self,
        _: &RequestContext,
        req: ModifyPersonBaseInfoRequest,
    ) -> Result<ModifyPersonBaseInfoResponse, ApiError> {
        self.persons().modify_person_base_info(req).await
    }

    async fn modify_person_group_info(
        &self,
        _: &RequestContext,
        req: ModifyPersonGroupInfoRequest,
    ) -> Result<ModifyPersonGroupInfoResponse, ApiError> {
        self.persons().modify_person_group_info(req).await
    }

    async fn search_faces(
        &self,
        _: &RequestContext,
        req: SearchFacesRequest,
    ) -> Result<SearchFacesResponse, ApiError> {
        self.search().search_faces(req).await
    }

    async fn search_faces_returns_by_group(
        &self,
        _: &RequestContext,
        req: SearchFacesReturnsByGroupRequest,
    ) -> Result<SearchFacesReturnsByGroupResponse, ApiError> {
        self.search().search_faces_returns_by_group(req).await
    }

    async fn search_persons(
        &self,
        _: &RequestContext,
        req: SearchPersonsRequest,
    ) -> Result<SearchPersonsResponse, ApiError> {
        self.search().search_persons(req).await
    }

    async fn search_persons_returns_by_group(
        &self,
        _: &RequestContext,
        req: SearchPersonsReturnsByGroupRequest,
    ) -> Result<SearchPersonsReturnsByGroupResponse, ApiError> {
        self.search().search_persons_returns_by_group(req).await
    }

    async fn verify_face(
        &self,
        _: &RequestContext,
        req: VerifyFaceRequest,
    ) -> Result<VerifyFaceResponse, ApiError> {
        self.search().verify_face(req).await
    }

    async fn verify_person(
        &self,
        _: &RequestContext,
        req: VerifyPersonRequest,
    ) -> Result<VerifyPersonResponse, ApiError> {
        self.search().verify_person(req).await
    }
    async fn detect_face(
        &self,
        _: &RequestContext,
        req: DetectFaceRequest,
    ) -> Result<DetectFaceResponse, ApiError> {
        analysis::detect_face(&self.faces, &self.downloader, req).await
    }

    async fn analyze_face(
        &self,
        _: &RequestContext,
        req: AnalyzeFaceRequest,
    ) -> Result<AnalyzeFaceResponse, ApiError> {
        analysis::analyze_face(&self.faces, &self.downloader, req).await
    }

    async fn analyze_dense_landmarks(
        &self,
        _: &RequestContext,
        req: AnalyzeDenseLandmarksRequest,
    ) -> Result<AnalyzeDenseLandmarksResponse, ApiError> {
        analysis::analyze_dense_landmarks(&self.faces, &self.downloader, req).await
    }

    async fn detect_face_attributes(
        &self,
        _: &RequestContext,
        req: DetectFaceAttributesRequest,
    ) -> Result<DetectFaceAttributesResponse, ApiError> {
        analysis::detect_face_attributes(&self.faces, &self.downloader, req).await
    }

    async fn detect_face_similarity(
        &self,
        _: &RequestContext,
        req: DetectFaceSimilarityRequest,
    ) -> Result<DetectFaceSimilarityResponse, ApiError> {
        faces::detect_face_similarity(&self.faces, &self.downloader, req).await
    }

    async fn compare_face(
        &self,
        _: &RequestContext,
        req: CompareFaceRequest,
    ) -> Result<CompareFaceResponse, ApiError> {
        faces::compare_face(&self.faces, &self.downloader, req).await
    }

    async fn detect_live_face(
        &self,
        _: &RequestContext,
        req: DetectLiveFaceRequest,
    ) -> Result<DetectLiveFaceResponse, ApiError> {
        faces::detect_live_face(&self.faces, &self.downloader, req).await
    }

    async fn detect_live_face_accurate(
        &self,
        _: &RequestContext,
        req: DetectLiveFaceAccurateRequest,
    ) -> Result<DetectLiveFaceAccurateResponse, ApiError> {
        faces::detect_live_face_accurate(&self.faces, &self.downloader, req).await
    }

    async fn compare_mask_face(
        &self,
        _: &RequestContext,
        req: CompareMaskFaceRequest,
    ) -> Result<CompareMaskFaceResponse, ApiError> {
        faces::compare_mask_face(&self.faces, &self.downloader, req).await
    }

    async fn create_group(
        &self,
        _: &RequestContext,
        req: CreateGroupRequest,
    ) -> Result<CreateGroupResponse, ApiError> {
        groups::create(&self.store, req).await
    }

    async fn delete_group(
        &self,
        _: &RequestContext,
        req: DeleteGroupRequest,
    ) -> Result<DeleteGroupResponse, ApiError> {
        groups::delete(&self.store, req).await
    }

    async fn get_group_list(
        &self,
        ctx: &RequestContext,
        req: GetGroupListRequest,
    ) -> Result<GetGroupListResponse, ApiError> {
        groups::list(&self.store, req, ctx.visible_groups.clone()).await
    }

    async fn get_group_info(
        &self,
        _: &RequestContext,
        req: GetGroupInfoRequest,
    ) -> Result<GetGroupInfoResponse, ApiError> {
        groups::info(&self.store, req).await
    }

    async fn modify_group(
        &self,
        _: &RequestContext,
        req: ModifyGroupRequest,
    ) -> Result<ModifyGroupResponse, ApiError> {
        groups::modify(&self.store, req).await
    }

    async fn upgrade_group_face_model_version(
        &self,
        _: &RequestContext,
        req: UpgradeGroupFaceModelVersionRequest,
    ) -> Result<UpgradeGroupFaceModelVersionResponse, ApiError> {
        jobs::upgrade(&self.store, &self.jobs, req).await
    }

    async fn revert_group_face_model_version(
        &self,
        _: &RequestContext,
        req: RevertGroupFaceModelVersionRequest,
    ) -> Result<RevertGroupFaceModelVersionResponse, ApiError> {
        jobs::revert(&self.store, &self.jobs, req).await
    }

    async fn get_upgrade_group_face_model_version_job_list(
        &self,
        _: &RequestContext,
        req: GetUpgradeGroupFaceModelVersionJobListRequest,
    ) -> Result<GetUpgradeGroupFaceModelVersionJobListResponse, ApiError> {
        jobs::list(&self.store, req).await
    }

    async fn get_upgrade_group_face_model_version_result(
        &self,
        ctx: &RequestContext,
        req: GetUpgradeGroupFaceModelVersionResultRequest,
    ) -> Result<GetUpgradeGroupFaceModelVersionResultResponse, ApiError> {
        jobs::result(&self.store, &self.jobs, ctx, req).await
    }

    async fn check_similar_person(
        &self,
        _: &RequestContext,
        req: CheckSimilarPersonRequest,
    ) -> Result<CheckSimilarPersonResponse, ApiError> {
        similar::check(&self.store, &self.indexes, &self.scanner, &self.jobs, req).await
    }

    async fn estimate_check_similar_person_cost_time(
        &self,
        _: &RequestContext,
        req: EstimateCheckSimilarPersonCostTimeRequest,
    ) -> Result<EstimateCheckSimilarPersonCostTimeResponse, ApiError> {
        similar::estimate(&self.store, &self.indexes, &self.scanner, req).await
    }

    async fn get_check_similar_person_job_id_list(
        &self,
        _: &RequestContext,
        req: GetCheckSimilarPersonJobIdListRequest,
    ) -> Result<GetCheckSimilarPersonJobIdListResponse, ApiError> {
        similar::list(&self.store, req).await
    }

    async fn get_similar_person_result(
        &self,
        ctx: &RequestContext,
        req: GetSimilarPersonResultRequest,
    ) -> Result<GetSimilarPersonResultResponse, ApiError> {
        similar::result(&self.store, &self.jobs, ctx, req).await
    }

    async fn get_person_list_num(
        &self,
        _: &RequestContext,
        req: GetPersonListNumRequest,
    ) -> Result<GetPersonListNumResponse, ApiError> {
        groups::person_list_num(&self.store, req).await
    }
}

/// Groups named in the `iai_index_vectors` metric (the largest; totals cover all).
const INDEX_METRICS_GROUPS: usize = 100;

/// The operator endpoints' view of the service (`wire::ops`).
impl crate::wire::ops::Operations for IaiService {
    async fn check_ready(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())?;
        self.store
            .ensure_current(self.max_staleness)
            .map_err(|e| e.to_string())
    }

    fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut sizes = self.indexes.sizes();
        let (faces, persons) = sizes.iter().fold((0, 0), |(f, p), (_, faces, persons)| {
            (f + faces, p + persons)
        });
        let mut text = format!(
            "# HELP iai_index_groups Groups in the search index.\n# TYPE iai_index_groups gauge\n\
             iai_index_groups {}\n\
             # HELP iai_index_vectors_total Vectors in every group's search index.\n\
             # TYPE iai_index_vectors_total gauge\n\
             iai_index_vectors_total{{kind=\"faces\"}} {faces}\n\
             iai_index_vectors_total{{kind=\"persons\"}} {persons}\n",
            sizes.len()
        );
        // How far this server may be behind the database: the time since it last confirmed it had applied
        // the change log to its head (0 with SQLite, whose log is applied as writes commit; -1 while it
        // cannot confirm at all, the database being unreachable).
        let _ = writeln!(
            text,
            "# HELP iai_change_log_lag_seconds Time since this server last confirmed it applied the change \
             log to its head (-1: cannot confirm).\n# TYPE iai_change_log_lag_seconds gauge\n\
             iai_change_log_lag_seconds {}",
            self.store.log_lag().map_or(-1.0, |lag| lag.as_secs_f64())
        );
        let _ = writeln!(
            text,
            "# HELP iai_index_vectors Vectors in a group's search index (faces, and persons' fused features), \
             for the {INDEX_METRICS_GROUPS} largest groups.\n# TYPE iai_index_vectors gauge"
        );
        // One series per group would let a key holder with 100,000 groups swamp the metrics.
        sizes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sizes.truncate(INDEX_METRICS_GROUPS);
        for (group, faces, persons) in sizes {
            // Group ids are letters, digits and -%@#&_ (no quote or backslash to escape).
            let _ = writeln!(
                text,
                "iai_index_vectors{{group=\"{group}\",kind=\"faces\"}} {faces}"
            );
            let _ = writeln!(
                text,
                "iai_index_vectors{{group=\"{group}\",kind=\"persons\"}} {persons}"
            );
        }
        text
    }

    async fn result_file(
        &self,
        name: &str,
        expires: i64,
        signature: &str,
    ) -> Result<Vec<u8>, crate::jobs::links::LinkError> {
        self.jobs
            .links
            .read(name, expires, signature, now_ms() / 1000)
            .await
    }

    async fn index_digest(&self) -> Result<serde_json::Value, String> {
        // One digest at a time: it hashes every vector (a core for a while).
        let Ok(_only) = self.digest_running.try_lock() else {
            return Err("a digest is being computed already; retry shortly".into());
        };
        let indexes = self.indexes.clone();
        // The snapshot with writes paused (no commit is half-way through being applied to the index); it
        // copies keys, not vectors, so writes wait milliseconds. The hashing runs after.
        let snapshot = self
            .store
            .with_writes_paused(move || indexes.snapshot())
            .await
            .map_err(|e| e.to_string())?;
        let digest = tokio::task::spawn_blocking(move || snapshot.digest())
            .await
            .map_err(|e| e.to_string())?;
        Ok(serde_json::json!({ "groups": digest }))
    }

    fn is_operator_token(&self, presented: &str) -> bool {
        self.jobs.links.is_operator_token(presented)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::GroupNotFound => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupIdNotExist)
            }
            StoreError::GroupIdTaken => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupIdAlreadyExist)
            }
            StoreError::GroupNameTaken => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupNameAlreadyExist)
            }
            StoreError::GroupLimit => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupNumExceed)
            }
            StoreError::PersonNotFound => {
                ApiError::code(ErrorCode::InvalidParameterValuePersonIdNotExist)
            }
            StoreError::PersonIdTaken => {
                ApiError::code(ErrorCode::InvalidParameterValuePersonIdAlreadyExist)
            }
            StoreError::Person(refusal) => refusal.into(),
            StoreError::Group(refusal) => refusal.into(),
            StoreError::Cam(refusal) => refusal.into(),
            StoreError::Job(refusal) => refusal.into(),
            StoreError::Db(e) => {
                tracing::error!(error = %e, source = ?e, "database error");
                ApiError::internal("Internal database error.")
            }
            StoreError::Task(e) => {
                tracing::error!(error = %e, "store task failed");
                ApiError::internal("Internal error.")
            }
            StoreError::Stale(e) => {
                tracing::warn!(error = %e, "answered unavailable: this server may be behind the database");
                ApiError::new(
                    ErrorCode::ResourceUnavailable,
                    "This server cannot confirm its data is current; retry, another replica may answer.",
                )
            }
        }
    }
}

/// The face pipeline's errors as Tencent's codes. Internal failures are logged with their cause here and
/// answered without it: the client never sees internal error text.
impl From<FaceError> for ApiError {
    fn from(e: FaceError) -> Self {
        let code = match &e {
            FaceError::ImageEmpty => {
                return ApiError::code(ErrorCode::InvalidParameterValueImageEmpty);
            }
            FaceError::ImageTooLarge => ErrorCode::FailedOperationImageSizeExceed,
            FaceError::NotDecodable(_) => ErrorCode::FailedOperationImageDecodeFailed,
            FaceError::ResolutionTooHigh { .. } => ErrorCode::FailedOperationImageResolutionExceed,
            FaceError::ResolutionTooSmall { .. } => {
                ErrorCode::FailedOperationImageResolutionTooSmall
            }
            FaceError::UrlIllegal(_) => ErrorCode::InvalidParameterValueUrlIllegal,
            FaceError::Download(_) => ErrorCode::FailedOperationImageDownloadError,
            FaceError::Inference(cause) => {
                tracing::error!(error = format!("{cause:#}"), "model inference failed");
                return ApiError::new(
                    ErrorCode::FailedOperationServerError,
                    "Face model inference failed.",
                );
            }
            FaceError::Unavailable(why) => {
                tracing::error!(error = %why, "face pipeline unavailable");
                return ApiError::internal("Internal error.");
            }
        };
        ApiError::new(code, sentence(&e.to_string()))
    }
}

/// "the image is ..." -> "The image is ....": the pipeline's messages as the envelope's sentences.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}
