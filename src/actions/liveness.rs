//! Static liveness: DetectLiveFace and DetectLiveFaceAccurate (README, "Liveness").

use std::sync::Arc;

use super::images::{DEFAULT_MIN_FACE_SIZE, faces_of_size, image_input, model_version};
use crate::api::ApiError;
use crate::api::model::*;
use crate::face::FacePipeline;
use crate::face::download::Downloader;

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
