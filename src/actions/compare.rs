//! 1:1 comparison of two images: CompareFace, CompareMaskFace and DetectFaceSimilarity (2020-03-03), and
//! scores as Tencent answers them (the calibration of the version's network, two decimals).

use std::sync::Arc;

use super::analysis::check_quality_blocking;
use super::images::{
    DEFAULT_MIN_FACE_SIZE, check_quality_control, detect, faces_of_size, image_source,
    model_version,
};
use crate::api::ApiError;
use crate::api::model::*;
use crate::face::download::Downloader;
use crate::face::score::Calibration;
use crate::face::{FacePipeline, ModelVersion, embed::cosine};

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
