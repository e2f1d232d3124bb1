//! Lower layers' errors as Tencent's codes: the store's (and its refusals), the face pipeline's and the
//! index's. Internal failures are logged with their cause here and answered without it.

use crate::api::{ApiError, ErrorCode};
use crate::face::FaceError;
use crate::index::ScanFailed;
use crate::store::StoreError;
use crate::store::groups::Refusal as GroupRefusal;
use crate::store::jobs::Refusal as JobRefusal;
use crate::store::persons::Refusal as PersonRefusal;

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

/// The person or group changed model version while its images were processed (deleted and created again):
/// the embeddings no longer fit, so nothing is stored.
pub(super) fn changed_meanwhile() -> ApiError {
    ApiError::new(
        ErrorCode::FailedOperationConflictOperation,
        "The person or group changed while the images were processed; nothing was stored, retry.",
    )
}

/// What the store refused of a person or face write, as Tencent's codes.
impl From<PersonRefusal> for ApiError {
    fn from(refusal: PersonRefusal) -> Self {
        match refusal {
            PersonRefusal::ChangedMeanwhile => changed_meanwhile(),
            PersonRefusal::GroupFaceLimit => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupFaceNumExceed)
            }
            PersonRefusal::PersonFaceLimit => {
                ApiError::code(ErrorCode::InvalidParameterValuePersonFaceNumExceed)
            }
            PersonRefusal::LastFace => ApiError::new(
                ErrorCode::InvalidParameterValueDeleteFaceNumExceed,
                "A person keeps at least one face.",
            ),
            PersonRefusal::NotInGroup => {
                ApiError::code(ErrorCode::FailedOperationGroupPersonMapNotExist)
            }
            PersonRefusal::GroupsPerPersonLimit => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupNumPerPersonExceed)
            }
            PersonRefusal::AcrossVersions {
                group_id,
                version,
                person_versions,
            } => ApiError::new(
                ErrorCode::FailedOperationAcrossVersionsError,
                format!(
                    "The person's groups use model {}; group {group_id} uses {version}.",
                    person_versions.join(", ")
                ),
            ),
        }
    }
}

/// A failed index scan (a worker lost): logged, answered as an internal error.
pub(super) fn scan_failed(e: ScanFailed) -> ApiError {
    tracing::error!(error = %e, "index scan failed");
    ApiError::internal("Internal error.")
}

/// What the store refused of a job (upgrades and duplicate checks), as Tencent's codes.
impl From<JobRefusal> for ApiError {
    fn from(refusal: JobRefusal) -> Self {
        let cannot_rollback = |why: &str| {
            ApiError::new(
                ErrorCode::FailedOperationJobCannnotRollback,
                format!("The job cannot be rolled back: {why}."),
            )
        };
        match refusal {
            JobRefusal::AlreadyVersion(version) => {
                cannot_upgrade(format!("The group already uses model {version}."))
            }
            JobRefusal::AlreadyUpgrading => cannot_upgrade("The group is already being upgraded."),
            JobRefusal::UpgradeJobNotFound => job_not_found(),
            JobRefusal::NotFinished
            | JobRefusal::RolledBackOnce
            | JobRefusal::NotLastUpgrade
            | JobRefusal::NothingToRevert => cannot_rollback(&refusal.to_string()),
            JobRefusal::CheckUnfinished => {
                ApiError::code(ErrorCode::FailedOperationCheckDuplicatePersonTaskNotFinished)
            }
            JobRefusal::CheckTooLong { minutes } => too_long(minutes),
        }
    }
}

/// What the store refused of a group edit, as Tencent's codes.
impl From<GroupRefusal> for ApiError {
    fn from(refusal: GroupRefusal) -> Self {
        match refusal {
            GroupRefusal::ExDescriptionIndexOutOfRange { index, max_fields } => ApiError::new(
                ErrorCode::InvalidParameterValueGroupExDescriptionsExceed,
                format!(
                    "GroupExDescriptionIndex {index} is out of range: a group has at most {max_fields} custom fields."
                ),
            ),
            GroupRefusal::ExDescriptionIndexPastEnd { index, fields } => ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "GroupExDescriptionIndex {index} is past the group's {fields} custom fields."
                ),
            ),
            GroupRefusal::ExDescriptionRepeated { name } => ApiError::new(
                ErrorCode::FailedOperationDuplicatedGroupDescription,
                format!("The custom field name `{name}` is used twice."),
            ),
        }
    }
}

pub(super) fn cannot_upgrade(why: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::FailedOperationGroupCannotUpgrade, why)
}

pub(super) fn job_not_found() -> ApiError {
    ApiError::code(ErrorCode::FailedOperationUpgradeJobIdNotExist)
}

/// A check refused for the time it would take (`store::jobs::Refusal::CheckTooLong` too).
pub(super) fn too_long(minutes: u64) -> ApiError {
    ApiError::new(
        ErrorCode::FailedOperationCheckSimilarPersonTimeExceed,
        format!(
            "The check would finish in about {minutes} minutes (with the checks queued before it); the limit is {} minutes. Retry later.",
            crate::jobs::similar::MAX_MINUTES
        ),
    )
}
