//! The IAI actions: `IaiService` implements the generated `Iai` trait, one method per action, each
//! delegating to the module of its concern:
//! - `groups`, `persons`, `faces` (with `enrol`, shared by CreatePerson and CreateFace): the stored library;
//! - `search`: 1:N search and 1:1 verification against it;
//! - `analysis`, `compare`, `liveness`: actions on images alone (with `images`, what they read from a request);
//! - `upgrades`, `similar`: the model-version jobs and the duplicate-person checks;
//! - `console`: the browser console's own actions;
//! - `rules` (value rules), `errors` (lower layers' errors as Tencent's codes), `operations` (the operator
//!   endpoints).

mod analysis;
mod compare;
mod console;
mod enrol;
mod errors;
mod faces;
mod groups;
mod images;
mod liveness;
mod operations;
mod persons;
pub mod rules;
mod search;
mod search_log;
mod similar;
mod upgrades;

use std::sync::Arc;

use crate::api::model::*;
use crate::api::{ApiError, Iai, RequestContext};
use crate::face::FacePipeline;
use crate::face::download::Downloader;
use crate::index::{Indexes, Scanner};
use crate::jobs::Jobs;
use crate::store::Store;

pub use console::ConsoleContext;

pub struct IaiService {
    console: ConsoleContext,
    store: Store,
    indexes: Arc<Indexes>,
    scanner: Scanner,
    /// The face models (detection, embeddings, attributes) and their budgets.
    pipeline: Arc<FacePipeline>,
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
        pipeline: Arc<FacePipeline>,
        downloader: Downloader,
        jobs: Arc<Jobs>,
        console: ConsoleContext,
    ) -> Self {
        Self {
            console,
            store,
            indexes,
            scanner: Scanner::new(crate::admission::cores()),
            pipeline,
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

    fn persons(&self) -> persons::Persons<'_> {
        persons::Persons {
            store: &self.store,
            indexes: &self.indexes,
            scanner: &self.scanner,
            pipeline: &self.pipeline,
            downloader: &self.downloader,
        }
    }

    fn search(&self) -> search::Search<'_> {
        search::Search {
            store: &self.store,
            indexes: &self.indexes,
            scanner: &self.scanner,
            pipeline: &self.pipeline,
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
        ctx: &RequestContext,
        req: ConsoleSearchFacesRequest,
    ) -> Result<ConsoleSearchFacesResponse, ApiError> {
        search_log::logged(ctx, console::search_faces(self, req).await)
    }

    async fn console_search_persons(
        &self,
        ctx: &RequestContext,
        req: ConsoleSearchPersonsRequest,
    ) -> Result<ConsoleSearchPersonsResponse, ApiError> {
        search_log::logged(ctx, console::search_persons(self, req).await)
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
        ctx: &RequestContext,
        req: SearchFacesRequest,
    ) -> Result<SearchFacesResponse, ApiError> {
        search_log::logged(ctx, self.search().search_faces(req).await)
    }

    async fn search_faces_returns_by_group(
        &self,
        ctx: &RequestContext,
        req: SearchFacesReturnsByGroupRequest,
    ) -> Result<SearchFacesReturnsByGroupResponse, ApiError> {
        search_log::logged(ctx, self.search().search_faces_returns_by_group(req).await)
    }

    async fn search_persons(
        &self,
        ctx: &RequestContext,
        req: SearchPersonsRequest,
    ) -> Result<SearchPersonsResponse, ApiError> {
        search_log::logged(ctx, self.search().search_persons(req).await)
    }

    async fn search_persons_returns_by_group(
        &self,
        ctx: &RequestContext,
        req: SearchPersonsReturnsByGroupRequest,
    ) -> Result<SearchPersonsReturnsByGroupResponse, ApiError> {
        search_log::logged(
            ctx,
            self.search().search_persons_returns_by_group(req).await,
        )
    }

    async fn verify_face(
        &self,
        ctx: &RequestContext,
        req: VerifyFaceRequest,
    ) -> Result<VerifyFaceResponse, ApiError> {
        let person_id = req.person_id.clone();
        let answer = self.search().verify_face(req).await;
        search_log::verified(ctx, &person_id, answer, |a| a.score)
    }

    async fn verify_person(
        &self,
        ctx: &RequestContext,
        req: VerifyPersonRequest,
    ) -> Result<VerifyPersonResponse, ApiError> {
        let person_id = req.person_id.clone();
        let answer = self.search().verify_person(req).await;
        search_log::verified(ctx, &person_id, answer, |a| a.score)
    }
    async fn detect_face(
        &self,
        _: &RequestContext,
        req: DetectFaceRequest,
    ) -> Result<DetectFaceResponse, ApiError> {
        analysis::detect_face(&self.pipeline, &self.downloader, req).await
    }

    async fn analyze_face(
        &self,
        _: &RequestContext,
        req: AnalyzeFaceRequest,
    ) -> Result<AnalyzeFaceResponse, ApiError> {
        analysis::analyze_face(&self.pipeline, &self.downloader, req).await
    }

    async fn analyze_dense_landmarks(
        &self,
        _: &RequestContext,
        req: AnalyzeDenseLandmarksRequest,
    ) -> Result<AnalyzeDenseLandmarksResponse, ApiError> {
        analysis::analyze_dense_landmarks(&self.pipeline, &self.downloader, req).await
    }

    async fn detect_face_attributes(
        &self,
        _: &RequestContext,
        req: DetectFaceAttributesRequest,
    ) -> Result<DetectFaceAttributesResponse, ApiError> {
        analysis::detect_face_attributes(&self.pipeline, &self.downloader, req).await
    }

    async fn detect_face_similarity(
        &self,
        _: &RequestContext,
        req: DetectFaceSimilarityRequest,
    ) -> Result<DetectFaceSimilarityResponse, ApiError> {
        compare::detect_face_similarity(&self.pipeline, &self.downloader, req).await
    }

    async fn compare_face(
        &self,
        _: &RequestContext,
        req: CompareFaceRequest,
    ) -> Result<CompareFaceResponse, ApiError> {
        compare::compare_face(&self.pipeline, &self.downloader, req).await
    }

    async fn detect_live_face(
        &self,
        _: &RequestContext,
        req: DetectLiveFaceRequest,
    ) -> Result<DetectLiveFaceResponse, ApiError> {
        liveness::detect_live_face(&self.pipeline, &self.downloader, req).await
    }

    async fn detect_live_face_accurate(
        &self,
        _: &RequestContext,
        req: DetectLiveFaceAccurateRequest,
    ) -> Result<DetectLiveFaceAccurateResponse, ApiError> {
        liveness::detect_live_face_accurate(&self.pipeline, &self.downloader, req).await
    }

    async fn compare_mask_face(
        &self,
        _: &RequestContext,
        req: CompareMaskFaceRequest,
    ) -> Result<CompareMaskFaceResponse, ApiError> {
        compare::compare_mask_face(&self.pipeline, &self.downloader, req).await
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
        upgrades::upgrade(&self.store, &self.jobs, req).await
    }

    async fn revert_group_face_model_version(
        &self,
        _: &RequestContext,
        req: RevertGroupFaceModelVersionRequest,
    ) -> Result<RevertGroupFaceModelVersionResponse, ApiError> {
        upgrades::revert(&self.store, &self.jobs, req).await
    }

    async fn get_upgrade_group_face_model_version_job_list(
        &self,
        _: &RequestContext,
        req: GetUpgradeGroupFaceModelVersionJobListRequest,
    ) -> Result<GetUpgradeGroupFaceModelVersionJobListResponse, ApiError> {
        upgrades::list(&self.store, req).await
    }

    async fn get_upgrade_group_face_model_version_result(
        &self,
        ctx: &RequestContext,
        req: GetUpgradeGroupFaceModelVersionResultRequest,
    ) -> Result<GetUpgradeGroupFaceModelVersionResultResponse, ApiError> {
        upgrades::result(&self.store, &self.jobs, ctx, req).await
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
