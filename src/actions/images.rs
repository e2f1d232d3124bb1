//! What every face action reads from its request: the image (`Image`/`Url`, decoded within the decode
//! budget), the model version, `QualityControl`, `MaxFaceNum`, and the faces found of at least a size.

use super::rules;
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode};
use crate::face::detect::Detection;
use crate::face::download::Downloader;
use crate::face::image_input::Decoded;
use crate::face::{FacePipeline, ImageSource, ModelVersion};

pub const DEFAULT_MIN_FACE_SIZE: u64 = 34;

/// The image of an `Image`/`Url` pair: Url wins when both are given (SPEC.md §7.2).
pub(super) async fn image_source(
    downloader: &Downloader,
    image: Option<String>,
    url: Option<String>,
) -> Result<ImageSource, ApiError> {
    match (
        url.filter(|u| !u.is_empty()),
        image.filter(|i| !i.is_empty()),
    ) {
        (Some(url), _) => Ok(ImageSource::Bytes(downloader.fetch(&url).await?)),
        (None, Some(image)) => Ok(ImageSource::Base64(image)),
        (None, None) => Err(ApiError::code(ErrorCode::InvalidParameterValueImageEmpty)),
    }
}

/// The decoded image of an `Image`/`Url` pair, admitted against the decode budget; `rotate`
/// (NeedRotateDetection) needs room for one turned copy.
pub(super) async fn image_input(
    pipeline: &FacePipeline,
    downloader: &Downloader,
    image: Option<String>,
    url: Option<String>,
    rotate: bool,
) -> Result<Decoded, ApiError> {
    let source = image_source(downloader, image, url).await?;
    Ok(pipeline.decode(source, u64::from(rotate)).await?)
}

pub(super) fn model_version(requested: Option<&str>) -> Result<ModelVersion, ApiError> {
    let text = rules::face_model_version(requested)?;
    Ok(ModelVersion::parse(&text).expect("rules only admit 2.0 and 3.0"))
}

/// `QualityControl` 0-4, default 0.
pub(super) fn check_quality_control(value: Option<u64>) -> Result<u64, ApiError> {
    match value {
        None => Ok(0),
        Some(level @ 0..=4) => Ok(level),
        Some(_) => Err(ApiError::code(
            ErrorCode::InvalidParameterValueQualityControlIllegal,
        )),
    }
}

/// Faces at least `min_size` px on their short side, largest first. No face at all is `NoFaceInPhoto`;
/// faces that are all too small are `FaceSizeTooSmall`.
pub(super) fn faces_of_size(
    faces: Vec<Detection>,
    min_size: u64,
) -> Result<Vec<Detection>, ApiError> {
    if faces.is_empty() {
        return Err(ApiError::code(
            ErrorCode::InvalidParameterValueNoFaceInPhoto,
        ));
    }
    let kept: Vec<Detection> = faces
        .into_iter()
        .filter(|f| f.width.min(f.height) >= min_size as f32)
        .collect();
    if kept.is_empty() {
        return Err(ApiError::new(
            ErrorCode::FailedOperationFaceSizeTooSmall,
            format!("Every face in the image is smaller than MinFaceSize ({min_size} px)."),
        ));
    }
    Ok(kept)
}

/// `MaxFaceNum` 1..=max, default 1.
pub(super) fn check_max_faces(value: Option<u64>, max: u64) -> Result<u64, ApiError> {
    let max_faces = value.unwrap_or(1);
    if max_faces == 0 || max_faces > max {
        return Err(ApiError::new(
            ErrorCode::LimitExceededErrorFaceNumExceed,
            format!("MaxFaceNum must be between 1 and {max}."),
        ));
    }
    Ok(max_faces)
}

pub(super) fn face_rect(face: &Detection) -> FaceRect {
    FaceRect {
        x: face.x.round() as i64,
        y: face.y.round() as i64,
        width: face.width.round().max(0.0) as u64,
        height: face.height.round().max(0.0) as u64,
    }
}

/// Faces in the image, largest first; with `rotate`, in whichever of the four turns shows them best.
pub(super) fn detect(
    p: &FacePipeline,
    image: &image::RgbImage,
    crowd: bool,
    rotate: bool,
) -> Result<Vec<Detection>, ApiError> {
    let faces = if rotate {
        p.detect_any_orientation_blocking(image, crowd)?
    } else {
        p.detect_blocking(image, crowd)?
    };
    Ok(faces)
}
