//! Image actions: CompareFace (with CompareMaskFace and DetectFaceSimilarity of 2020-03-03) and liveness,
//! and the image and detection helpers every face action shares.

use std::sync::Arc;

use super::analysis::check_quality_blocking;
use super::rules;
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode};
use crate::face::detect::Detection;
use crate::face::download::Downloader;
use crate::face::image_input::Decoded;
use crate::face::score::Calibration;
use crate::face::{FacePipeline, ImageSource, ModelVersion, embed::cosine};

pub const DEFAULT_MIN_FACE_SIZE: u64 = 34;

/// The image of an `Image`/`Url` pair: Url wins when both are given (SPEC.md §7.2).
async fn image_source(
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

/// Cosine similarity of the largest faces of two images.
async fn compare_images(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    a: (Option<String>, Option<String>),
    b: (Option<String>, Option<String>),
    version: ModelVersion,
    rotate: bool,
    quality_control: u64,
) -> Result<f32, ApiError> {
    let sources = vec![
        image_source(downloader, a.0, a.1).await?,
        image_source(downloader, b.0, b.1).await?,
    ];
    let images = pipeline.decode_all(sources, u64::from(rotate)).await?;
    pipeline
        .run(move |p| -> Result<_, ApiError> {
            let mut embeddings = Vec::with_capacity(2);
            for decoded in &images {
                let found = detect(p, &decoded.image, false, rotate)?;
                let faces = faces_of_size(found, DEFAULT_MIN_FACE_SIZE)?;
                check_quality_blocking(p, &decoded.image, &faces[0], quality_control)?;
                embeddings.push(p.embed_blocking(&decoded.image, &faces[0], version)?);
            }
            Ok(cosine(&embeddings[0], &embeddings[1]))
        })
        .await
}

/// The score of a cosine by the network that embeds new faces of `version` (1:1 comparisons).
pub(super) fn rounded_score(version: ModelVersion, cosine: f32) -> f64 {
    two_decimals(&Calibration::for_version(version), cosine)
}

/// A score as Tencent answers it: two decimals.
pub(super) fn two_decimals(calibration: &Calibration, cosine: f32) -> f64 {
    (calibration.score(cosine) as f64 * 100.0).round() / 100.0
}

pub async fn compare_face(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: CompareFaceRequest,
) -> Result<CompareFaceResponse, ApiError> {
    let quality_control = check_quality_control(req.quality_control)?;
    let version = model_version(req.face_model_version.as_deref())?;
    let cos = compare_images(
        pipeline,
        downloader,
        (req.image_a, req.url_a),
        (req.image_b, req.url_b),
        version,
        req.need_rotate_detection == Some(1),
        quality_control,
    )
    .await?;
    Ok(CompareFaceResponse {
        score: rounded_score(version, cos),
        face_model_version: version.as_str().to_owned(),
    })
}

pub async fn compare_mask_face(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: CompareMaskFaceRequest,
) -> Result<CompareMaskFaceResponse, ApiError> {
    let quality_control = check_quality_control(req.quality_control)?;
    let version = model_version(req.face_model_version.as_deref())?;
    let cos = compare_images(
        pipeline,
        downloader,
        (req.image_a, req.url_a),
        (req.image_b, req.url_b),
        version,
        false,
        quality_control,
    )
    .await?;
    Ok(CompareMaskFaceResponse {
        score: rounded_score(version, cos),
        face_model_version: version.as_str().to_owned(),
    })
}

/// DetectFaceSimilarity (2020-03-03): CompareFace on model 3.0 without a version parameter.
pub async fn detect_face_similarity(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: DetectFaceSimilarityRequest,
) -> Result<DetectFaceSimilarityResponse, ApiError> {
    let quality_control = check_quality_control(req.quality_control)?;
    let cos = compare_images(
        pipeline,
        downloader,
        (req.image_a, req.url_a),
        (req.image_b, req.url_b),
        ModelVersion::V3,
        false,
        quality_control,
    )
    .await?;
    Ok(DetectFaceSimilarityResponse {
        score: rounded_score(ModelVersion::V3, cos),
    })
}

/// Live-face probability (0-1) of the largest face of the image.
async fn live_probability(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    image: Option<String>,
    url: Option<String>,
) -> Result<f32, ApiError> {
    let decoded = image_input(pipeline, downloader, image, url, false).await?;
    pipeline
        .run(move |p| -> Result<_, ApiError> {
            let faces = faces_of_size(
                p.detect_blocking(&decoded.image, false)?,
                DEFAULT_MIN_FACE_SIZE,
            )?;
            Ok(p.live_probability_blocking(&decoded.image, &faces[0])?)
        })
        .await
}

/// A probability at or above this is a live face (README, "Liveness").
pub const LIVE_THRESHOLD: f32 = 0.5;

/// `Score`: 100 x the live probability, two decimals.
fn live_score(live: f32) -> f64 {
    (live as f64 * 10000.0).round() / 100.0
}

pub async fn detect_live_face_accurate(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: DetectLiveFaceAccurateRequest,
) -> Result<DetectLiveFaceAccurateResponse, ApiError> {
    let version = model_version(req.face_model_version.as_deref())?;
    let live = live_probability(pipeline, downloader, req.image, req.url).await?;
    Ok(DetectLiveFaceAccurateResponse {
        score: live_score(live),
        face_model_version: version.as_str().to_owned(),
    })
}

pub async fn detect_live_face(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: DetectLiveFaceRequest,
) -> Result<DetectLiveFaceResponse, ApiError> {
    let version = model_version(req.face_model_version.as_deref())?;
    let live = live_probability(pipeline, downloader, req.image, req.url).await?;
    Ok(DetectLiveFaceResponse {
        score: live_score(live),
        face_model_version: version.as_str().to_owned(),
        is_liveness: live >= LIVE_THRESHOLD,
    })
}
