//! The face pipeline: image decoding, detection, alignment and embedding with ONNX models run by `ort`.
//! Nothing here knows about the wire or the store; actions call `FacePipeline` and map its results.
//!
//! Inference runs on tokio's blocking threads, at most `max_concurrent` calls at a time, so the async
//! runtime never stalls and a burst of requests queues instead of oversubscribing the cores.

pub mod align;
pub mod attributes;
pub mod detect;
pub mod download;
pub mod embed;
pub mod image_input;
pub mod liveness;
pub mod mesh;
pub mod quality;
pub mod runtime;
pub mod score;

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use tokio::sync::Semaphore;

use crate::api::{ApiError, ErrorCode};
use attributes::{AttributeModels, HeadPose, MaskProbability, ModelAttributes};
use detect::{Detection, Detector};
use embed::Embedder;
use mesh::{FaceMesh, Mesh};
use quality::Quality;
use runtime::{Manifest, Model};

/// Which recognition model (Tencent's `FaceModelVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelVersion {
    V2,
    V3,
}

impl ModelVersion {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "2.0" => Some(Self::V2),
            "3.0" => Some(Self::V3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "2.0",
            Self::V3 => "3.0",
        }
    }
}

/// Where a point of a turned image lies in the original image of width and height `(w, h)`.
type PointBack = fn([f32; 2], f32, f32) -> [f32; 2];

/// Images up to this long side are searched again with a border when no face is found.
const SMALL_IMAGE: u32 = 512;
/// Detections scoring below this are confirmed by the face mesh when at least `CHECKABLE_FACE` px wide.
const SURE_DETECTION: f32 = 0.9;
const CHECKABLE_FACE: f32 = 40.0;
/// The mesh's face flag reads 0.99999-1.0 on the people of the test photos and 0.001-0.95 on dogs.
const MESH_FACE_FLAG: f32 = 0.99;

pub struct PipelineConfig {
    /// Threads ONNX Runtime uses inside one model call.
    pub intra_threads: usize,
    /// Model calls running at once.
    pub max_concurrent: usize,
}

pub struct FacePipeline {
    /// ONNX Runtime allows one environment per process; sessions made elsewhere (benches) borrow this one.
    environment: ort::environment::Environment,
    detector: Detector,
    v3: Embedder,
    v2: Embedder,
    liveness: liveness::Liveness,
    mesh: FaceMesh,
    attributes: AttributeModels,
    permits: Semaphore,
}

impl FacePipeline {
    /// Load ONNX Runtime and every model from `models_dir`, each checked against `manifest.json`.
    pub fn load(models_dir: &Path, config: &PipelineConfig) -> anyhow::Result<Self> {
        let manifest = Manifest::load(models_dir)?;
        let env = manifest.init_runtime()?;
        let load = |file: &str| Model::load(&env, &manifest, file, config.intra_threads);
        Ok(Self {
            detector: Detector::new(load("yunet_n_dynamic.onnx")?),
            environment: env.clone(),
            v3: Embedder::new(
                load("faceapi_recognition_128.onnx")?,
                150,
                embed::DLIB_150_TEMPLATE,
            ),
            v2: Embedder::new(
                load("mobileface_recognition.onnx")?,
                112,
                embed::ARCFACE_112_TEMPLATE,
            ),
            liveness: liveness::Liveness::new(
                load("minifasnet_2.7_80x80_MiniFASNetV2.onnx")?,
                load("minifasnet_4_0_0_80x80_MiniFASNetV1SE.onnx")?,
            ),
            mesh: FaceMesh::new(load("mp_face_landmark.onnx")?),
            attributes: AttributeModels::new(
                load("human_gender.onnx")?,
                load("human_emotion.onnx")?,
                load("ulfd_RFB-640-masked_face-v2.onnx")?,
            ),
            permits: Semaphore::new(config.max_concurrent.max(1)),
        })
    }

    pub fn environment(&self) -> &ort::environment::Environment {
        &self.environment
    }

    pub fn embedder(&self, version: ModelVersion) -> &Embedder {
        match version {
            ModelVersion::V2 => &self.v2,
            ModelVersion::V3 => &self.v3,
        }
    }

    /// Faces in the image, largest first. `crowd` looks at the image at 1280 px instead of 640 px, which finds
    /// faces down to about 10 px instead of 20 px in large photos.
    pub fn detect_blocking(
        &self,
        image: &RgbImage,
        crowd: bool,
    ) -> Result<Vec<Detection>, ApiError> {
        let long_side = image.width().max(image.height());
        let input = if crowd {
            long_side.clamp(640, 1280)
        } else {
            640
        };
        let faces = self
            .detector
            .detect(image, input)
            .map_err(inference_error)?;
        if !faces.is_empty() || long_side > SMALL_IMAGE {
            return self.confirmed(image, faces);
        }
        // A face that fills a small image (an ID crop, an aligned chip) has no context around it for the
        // detector; look again with a black border and move the results back.
        let pad = long_side * 3 / 10;
        let mut padded = RgbImage::new(image.width() + 2 * pad, image.height() + 2 * pad);
        image::imageops::replace(&mut padded, image, i64::from(pad), i64::from(pad));
        let mut faces = self
            .detector
            .detect(&padded, input)
            .map_err(inference_error)?;
        for face in &mut faces {
            face.x -= pad as f32;
            face.y -= pad as f32;
            for point in &mut face.landmarks {
                point[0] -= pad as f32;
                point[1] -= pad as f32;
            }
        }
        self.confirmed(image, faces)
    }

    /// Drop detections the face mesh says hold no face. YuNet gives animal faces up to ~0.82; people score
    /// 0.9 and more unless small, so only doubtful detections large enough for the mesh are checked (cartoon
    /// faces pass, as they would at Tencent).
    fn confirmed(
        &self,
        image: &RgbImage,
        faces: Vec<Detection>,
    ) -> Result<Vec<Detection>, ApiError> {
        let mut kept = Vec::with_capacity(faces.len());
        for face in faces {
            let doubtful =
                face.score < SURE_DETECTION && face.width.min(face.height) >= CHECKABLE_FACE;
            if doubtful && self.mesh_blocking(image, &face)?.presence < MESH_FACE_FLAG {
                continue;
            }
            kept.push(face);
        }
        Ok(kept)
    }

    /// For photos turned without EXIF orientation: faces are looked for in the image turned by 0, 90, 180
    /// and 270 degrees, and the turn whose best face the detector is surest of wins (the detector also
    /// "finds" sideways faces, but with less confidence and landmarks unfit for alignment). Faces come back
    /// in the original image's coordinates.
    pub fn detect_any_orientation_blocking(
        &self,
        image: &RgbImage,
        crowd: bool,
    ) -> Result<Vec<Detection>, ApiError> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let upright = self.detect_blocking(image, crowd)?;
        let mut best_score = upright.iter().map(|f| f.score).fold(f32::MIN, f32::max);
        let mut best = upright;
        // For each turn: the turned image, and where a point of it lies in the original.
        let turns: [(RgbImage, PointBack); 3] = [
            (image::imageops::rotate90(image), |[x, y], _, h| [y, h - x]),
            (image::imageops::rotate180(image), |[x, y], w, h| {
                [w - x, h - y]
            }),
            (image::imageops::rotate270(image), |[x, y], w, _| [w - y, x]),
        ];
        for (turned, back) in turns {
            let faces = self.detect_blocking(&turned, crowd)?;
            let score = faces.iter().map(|f| f.score).fold(f32::MIN, f32::max);
            if score <= best_score {
                continue;
            }
            best_score = score;
            best = faces
                .into_iter()
                .map(|f| {
                    let corners = [
                        back([f.x, f.y], w, h),
                        back([f.x + f.width, f.y + f.height], w, h),
                    ];
                    let (x0, x1) = (
                        corners[0][0].min(corners[1][0]),
                        corners[0][0].max(corners[1][0]),
                    );
                    let (y0, y1) = (
                        corners[0][1].min(corners[1][1]),
                        corners[0][1].max(corners[1][1]),
                    );
                    Detection {
                        x: x0,
                        y: y0,
                        width: x1 - x0,
                        height: y1 - y0,
                        landmarks: f.landmarks.map(|p| back(p, w, h)),
                        score: f.score,
                    }
                })
                .collect();
        }
        Ok(best)
    }

    pub fn embed_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
        version: ModelVersion,
    ) -> Result<Vec<f32>, ApiError> {
        self.embedder(version)
            .embed(image, &face.landmarks)
            .map_err(inference_error)
    }

    /// Probability (0-1) that the face is live rather than a photo of a photo or of a screen.
    pub fn live_probability_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
    ) -> Result<f32, ApiError> {
        self.liveness
            .live_probability(image, face)
            .map_err(inference_error)
    }

    /// The 468-point face mesh of a detected face.
    pub fn mesh_blocking(&self, image: &RgbImage, face: &Detection) -> Result<Mesh, ApiError> {
        self.mesh.run(image, face).map_err(inference_error)
    }

    /// Gender and emotion of a detected face.
    pub fn classify_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
    ) -> Result<ModelAttributes, ApiError> {
        self.attributes
            .classify(image, face)
            .map_err(inference_error)
    }

    /// Mask probability of each face (one pass over the whole image).
    pub fn masks_blocking(
        &self,
        image: &RgbImage,
        faces: &[Detection],
    ) -> Result<Vec<MaskProbability>, ApiError> {
        self.attributes.masks(image, faces).map_err(inference_error)
    }

    /// Quality of a face from its pixels, mesh, pose and mask probability.
    pub fn quality_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
        mesh: &Mesh,
        pose: &HeadPose,
        mask: MaskProbability,
    ) -> Result<Quality, ApiError> {
        quality::measure(image, face, mesh, pose, mask).map_err(inference_error)
    }

    /// What the store keeps of an enrolled face so that it can be embedded again for another model
    /// version: a loose square around it (twice the box, at most 256 px, PNG) and the 5 landmarks in that
    /// crop's pixels (JSON).
    pub fn keepsake_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
    ) -> Result<(Vec<u8>, String), ApiError> {
        let side = face.width.max(face.height) * 2.0;
        let size = (side.round() as u32).clamp(16, 256);
        let (crop, to_crop) = align::upright_square(image, face.centre(), side, 0.0, size)
            .map_err(inference_error)?;
        let mut png = Vec::new();
        crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| inference_error(e.into()))?;
        let points: Vec<[f32; 2]> = face.landmarks.iter().map(|&p| to_crop.apply(p)).collect();
        Ok((
            png,
            serde_json::to_string(&points).expect("numbers serialize"),
        ))
    }

    /// Run `work` on a blocking thread once a permit is free.
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&FacePipeline) -> Result<T, ApiError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("The face pipeline is closed."))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| ApiError::internal(format!("Face pipeline task failed: {e}")))?
    }
}

fn inference_error(e: anyhow::Error) -> ApiError {
    tracing::error!(error = %e, "inference failed");
    ApiError::new(
        ErrorCode::FailedOperationServerError,
        "Face model inference failed.",
    )
}
