//! The face pipeline: image decoding, detection, alignment and embedding with ONNX models run by `ort`.
//! Nothing here knows about the wire or the store; actions call `FacePipeline` and map its results.
//!
//! Decoding and inference run on tokio's blocking threads, never on the async workers. Both are admitted
//! (`crate::admission`): an image is decoded only once the memory its pixels will take fits in the decode
//! budget, and at most `max_concurrent` model calls run at a time, so a burst of requests queues instead of
//! exhausting memory or oversubscribing the cores.

pub mod align;
pub mod attributes;
pub mod detect;
pub mod download;
pub mod embed;
pub mod error;
pub mod image_input;
pub mod liveness;
pub mod mesh;
pub mod quality;
pub mod runtime;
pub mod score;

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use crate::admission::{Gate, Ticket};
use attributes::{AttributeModels, HeadPose, MaskProbability, ModelAttributes};
use detect::{Detection, Detector};
use embed::{Embedder, Recognition};
pub use error::FaceError;
use image_input::Decoded;
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
/// A quarter, half or three-quarter turn of an image.
type Turn = fn(&RgbImage) -> RgbImage;

/// When no face is found, the image is searched again with a black border of this share of its long side
/// on every side (`detect_padded`).
const PADDING: f32 = 0.5;
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
    /// Memory that decoded images (and their working copies) may take at once.
    pub decode_budget_bytes: u64,
    /// Retired recognition networks to load too (files of `embed::ALL`), because some group still serves
    /// embeddings they made.
    pub retired_models: Vec<String>,
}

impl PipelineConfig {
    /// One model call at a time on one thread each (what the benches and examples measure, as the server
    /// runs each call by default), a 1 GiB decode budget, and the retired networks `retired_models`.
    /// More than one thread per call would leave each model's own thread pool spinning between calls.
    pub fn one_call_at_a_time(retired_models: Vec<String>) -> Self {
        Self {
            intra_threads: 1,
            max_concurrent: 1,
            decode_budget_bytes: 1 << 30,
            retired_models,
        }
    }
}

/// An image to decode: base64 text (`Image`) or file bytes (a `Url` download).
pub enum ImageSource {
    Base64(String),
    Bytes(Vec<u8>),
}

pub struct FacePipeline {
    /// ONNX Runtime allows one environment per process; sessions made elsewhere (benches) borrow this one.
    environment: ort::environment::Environment,
    detector: Detector,
    /// The current recognition networks of both versions, and retired ones still serving some group.
    embedders: Vec<Embedder>,
    liveness: liveness::Liveness,
    mesh: FaceMesh,
    attributes: AttributeModels,
    inference: Arc<Gate>,
    decoding: Arc<Gate>,
}

impl FacePipeline {
    /// Load ONNX Runtime and every model from `models_dir`, each checked against `manifest.json`.
    pub fn load(models_dir: &Path, config: &PipelineConfig) -> anyhow::Result<Self> {
        let manifest = Manifest::load(models_dir)?;
        let env = manifest.init_runtime()?;
        let load = |file: &str| {
            Model::load_copies(
                &env,
                &manifest,
                file,
                config.intra_threads,
                config.max_concurrent,
            )
        };
        Ok(Self {
            detector: Detector::new(load("yunet_n_dynamic.onnx")?),
            environment: env.clone(),
            embedders: {
                let mut specs = vec![
                    Recognition::current(ModelVersion::V3),
                    Recognition::current(ModelVersion::V2),
                ];
                for file in &config.retired_models {
                    let spec = Recognition::by_file(file)
                        .ok_or_else(|| anyhow::anyhow!("unknown recognition model {file}"))?;
                    if !specs.contains(&spec) {
                        specs.push(spec);
                    }
                }
                specs
                    .into_iter()
                    .map(|spec| Ok(Embedder::new(load(spec.file)?, spec)))
                    .collect::<anyhow::Result<_>>()?
            },
            liveness: liveness::Liveness::new(
                load("minifasnet_2.7_80x80_MiniFASNetV2.onnx")?,
                load("minifasnet_4_0_0_80x80_MiniFASNetV1SE.onnx")?,
            ),
            mesh: FaceMesh::new(load("mp_face_landmark.onnx")?),
            attributes: AttributeModels::new(
                load("faceapi_agegender.onnx")?,
                load("human_emotion.onnx")?,
                load("ulfd_RFB-640-masked_face-v2.onnx")?,
            ),
            inference: Gate::calls("inference", config.max_concurrent),
            decoding: Gate::bytes("decode", config.decode_budget_bytes),
        })
    }

    pub fn environment(&self) -> &ort::environment::Environment {
        &self.environment
    }

    /// The network that embeds new faces of `version`.
    pub fn embedder(&self, version: ModelVersion) -> &Embedder {
        self.embedder_for(Recognition::current(version))
            .expect("the current networks are always loaded")
    }

    /// A loaded network, current or retired.
    pub fn embedder_for(&self, spec: &Recognition) -> Option<&Embedder> {
        self.embedders.iter().find(|e| e.spec() == spec)
    }

    /// Faces in the image, largest first. `crowd` looks at the image at 1280 px instead of 640 px, which finds
    /// faces down to about 10 px instead of 20 px in large photos.
    pub fn detect_blocking(
        &self,
        image: &RgbImage,
        crowd: bool,
    ) -> Result<Vec<Detection>, FaceError> {
        let long_side = image.width().max(image.height());
        let input = if crowd {
            long_side.clamp(640, 1280)
        } else {
            640
        };
        let faces = self
            .detector
            .detect(image, input)
            .map_err(FaceError::inference)?;
        if !faces.is_empty() {
            return self.confirmed(image, faces);
        }
        let faces = self.detect_padded(image, input)?;
        self.confirmed(image, faces)
    }

    /// A face that fills the frame (a close-up, an ID crop, an aligned chip, a face cut by the frame's
    /// edge) has no context around it for the detector: look again on a black canvas with a border of
    /// `PADDING` times the image's long side on every side, made at the detector's input size (so a large
    /// image costs no large canvas), and move the results back to the image's coordinates.
    fn detect_padded(&self, image: &RgbImage, input: u32) -> Result<Vec<Detection>, FaceError> {
        let long_side = image.width().max(image.height()) as f32;
        let canvas_side = long_side * (1.0 + 2.0 * PADDING);
        let scale = (input as f32 / canvas_side).min(1.0);
        let (w, h) = (
            ((image.width() as f32 * scale).round() as u32).max(1),
            ((image.height() as f32 * scale).round() as u32).max(1),
        );
        let pad = (long_side * scale * PADDING).round() as u32;
        let mut canvas = RgbImage::new(w + 2 * pad, h + 2 * pad);
        if scale < 1.0 {
            let small = detect::resize_bilinear(image, w, h).map_err(FaceError::inference)?;
            image::imageops::replace(&mut canvas, &small, i64::from(pad), i64::from(pad));
        } else {
            image::imageops::replace(&mut canvas, image, i64::from(pad), i64::from(pad));
        }
        let mut faces = self
            .detector
            .detect(&canvas, input)
            .map_err(FaceError::inference)?;
        let back = |v: f32| (v - pad as f32) / scale;
        for face in &mut faces {
            face.x = back(face.x);
            face.y = back(face.y);
            face.width /= scale;
            face.height /= scale;
            for point in &mut face.landmarks {
                *point = point.map(back);
            }
        }
        Ok(faces)
    }

    /// Drop detections the face mesh says hold no face. YuNet gives animal faces up to ~0.82; people score
    /// 0.9 and more unless small, so only doubtful detections large enough for the mesh are checked (cartoon
    /// faces pass, as they would at Tencent).
    fn confirmed(
        &self,
        image: &RgbImage,
        faces: Vec<Detection>,
    ) -> Result<Vec<Detection>, FaceError> {
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
    ) -> Result<Vec<Detection>, FaceError> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let upright = self.detect_blocking(image, crowd)?;
        let mut best_score = upright.iter().map(|f| f.score).fold(f32::MIN, f32::max);
        let mut best = upright;
        // For each turn: how to make it, and where a point of the turned image lies in the original. One
        // turned copy exists at a time (the decode admission pays for one working copy).
        let turns: [(Turn, PointBack); 3] = [
            (image::imageops::rotate90::<RgbImage>, |[x, y], _, h| {
                [y, h - x]
            }),
            (image::imageops::rotate180::<RgbImage>, |[x, y], w, h| {
                [w - x, h - y]
            }),
            (image::imageops::rotate270::<RgbImage>, |[x, y], w, _| {
                [w - y, x]
            }),
        ];
        for (turn, back) in turns {
            let turned = turn(image);
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
    ) -> Result<Vec<f32>, FaceError> {
        self.embed_with(image, &face.landmarks, Recognition::current(version))
    }

    /// The embedding of the face at `landmarks` by one network (current or retired).
    pub fn embed_with(
        &self,
        image: &RgbImage,
        landmarks: &[[f32; 2]; 5],
        spec: &Recognition,
    ) -> Result<Vec<f32>, FaceError> {
        self.embedder_for(spec)
            .ok_or_else(|| FaceError::Unavailable(format!("{} is not loaded", spec.file)))?
            .embed(image, landmarks)
            .map_err(FaceError::inference)
    }

    /// The embedding of a stored face (its loose crop, PNG, and 5 landmarks in it, JSON), for another
    /// network than the one it was enrolled with.
    pub fn embed_stored_blocking(
        &self,
        crop_png: &[u8],
        landmarks_json: &str,
        spec: &Recognition,
    ) -> Result<Vec<f32>, FaceError> {
        let crop = image::load_from_memory_with_format(crop_png, image::ImageFormat::Png)
            .map_err(|e| FaceError::NotDecodable(format!("stored crop: {e}")))?
            .into_rgb8();
        let points: Vec<[f32; 2]> = serde_json::from_str(landmarks_json)
            .map_err(|e| FaceError::NotDecodable(format!("stored landmarks: {e}")))?;
        let landmarks: [[f32; 2]; 5] = points
            .try_into()
            .map_err(|_| FaceError::NotDecodable("stored landmarks: not 5 points".into()))?;
        self.embed_with(&crop, &landmarks, spec)
    }

    /// Probability (0-1) that the face is live rather than a photo of a photo or of a screen.
    pub fn live_probability_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
    ) -> Result<f32, FaceError> {
        self.liveness
            .live_probability(image, face)
            .map_err(FaceError::inference)
    }

    /// The 468-point face mesh of a detected face.
    pub fn mesh_blocking(&self, image: &RgbImage, face: &Detection) -> Result<Mesh, FaceError> {
        self.mesh.run(image, face).map_err(FaceError::inference)
    }

    /// Age, gender and emotion of a detected face.
    pub fn classify_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
    ) -> Result<ModelAttributes, FaceError> {
        self.attributes
            .classify(image, face)
            .map_err(FaceError::inference)
    }

    /// The attribute models one by one (benches time them apart).
    pub fn attribute_models(&self) -> &AttributeModels {
        &self.attributes
    }

    /// Mask probability of each face (one pass over the whole image).
    pub fn masks_blocking(
        &self,
        image: &RgbImage,
        faces: &[Detection],
    ) -> Result<Vec<MaskProbability>, FaceError> {
        self.attributes
            .masks(image, faces)
            .map_err(FaceError::inference)
    }

    /// Quality of a face from its pixels, mesh, pose and mask probability.
    pub fn quality_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
        mesh: &Mesh,
        pose: &HeadPose,
        mask: MaskProbability,
    ) -> Result<Quality, FaceError> {
        quality::measure(image, face, mesh, pose, mask).map_err(FaceError::inference)
    }

    /// What the store keeps of an enrolled face so that it can be embedded again for another model
    /// version: a loose square around it (twice the box, at most 256 px, PNG) and the 5 landmarks in that
    /// crop's pixels (JSON).
    pub fn keepsake_blocking(
        &self,
        image: &RgbImage,
        face: &Detection,
    ) -> Result<(Vec<u8>, String), FaceError> {
        let side = face.width.max(face.height) * 2.0;
        let size = (side.round() as u32).clamp(16, 256);
        let (crop, to_crop) = align::upright_square(image, face.centre(), side, 0.0, size)
            .map_err(FaceError::inference)?;
        let mut png = Vec::new();
        crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(FaceError::inference)?;
        let points: Vec<[f32; 2]> = face.landmarks.iter().map(|&p| to_crop.apply(p)).collect();
        Ok((
            png,
            serde_json::to_string(&points).expect("numbers serialize"),
        ))
    }

    /// Decode an image on a blocking thread once the memory it will take fits in the decode budget.
    /// `working_copies` is how many more full-size copies the request will make (1 with
    /// NeedRotateDetection). The returned image carries its admission ticket.
    pub async fn decode(
        &self,
        source: ImageSource,
        working_copies: u64,
    ) -> Result<Decoded, FaceError> {
        let mut images = self.decode_all(vec![source], working_copies).await?;
        Ok(images.remove(0))
    }

    /// Decode images that one request uses together (CompareFace's two), admitted as one: a request never
    /// holds part of the budget while it waits for the rest (two such requests would wait on each other).
    pub async fn decode_all(
        &self,
        sources: Vec<ImageSource>,
        working_copies: u64,
    ) -> Result<Vec<Decoded>, FaceError> {
        // Base64 decoding and the header read are cheap but not free for 5 MB: off the async workers too.
        let probed = blocking(move || {
            sources
                .into_iter()
                .map(|source| {
                    let bytes = match source {
                        ImageSource::Base64(text) => image_input::base64_bytes(&text)?,
                        ImageSource::Bytes(bytes) => bytes,
                    };
                    let probe = image_input::probe(&bytes)?;
                    Ok((bytes, probe))
                })
                .collect::<Result<Vec<_>, FaceError>>()
        })
        .await?;
        let peaks: Vec<u64> = probed
            .iter()
            .map(|(_, probe)| probe.peak_bytes(working_copies))
            .collect();
        let mut ticket = self.decoding.enter_bytes(peaks.iter().sum()).await?;
        let started = std::time::Instant::now();
        // Each image carries its share, so a request that keeps one image frees the other's share; the first
        // keeps what is left. The shares travel into the blocking task: if the request is dropped while the
        // pixels are being decoded, the memory stays counted until the decoder has let go of it.
        let mut shares: Vec<Option<Ticket>> = peaks[1..]
            .iter()
            .map(|peak| ticket.split_bytes(*peak))
            .collect();
        shares.insert(0, Some(ticket));
        let decoded = blocking(move || {
            probed
                .into_iter()
                .zip(shares)
                .map(|((bytes, probe), ticket)| {
                    Ok(Decoded {
                        image: image_input::decode_probed(&bytes, &probe)?,
                        format: probe.format,
                        ticket,
                    })
                })
                .collect()
        })
        .await;
        stage("decode", started);
        decoded
    }

    /// Run `work` on a blocking thread once an inference permit is free. The permit is held until `work`
    /// returns, even when the request that asked for it is dropped meanwhile.
    pub async fn run<T, E, F>(self: &Arc<Self>, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<FaceError> + Send + 'static,
        F: FnOnce(&FacePipeline) -> Result<T, E> + Send + 'static,
    {
        let waited = std::time::Instant::now();
        let permit = self.inference.enter().await.map_err(FaceError::from)?;
        stage("inference_wait", waited);
        let this = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = std::time::Instant::now();
            let done = span.in_scope(|| work(&this));
            stage("inference", started);
            done
        })
        .await
        .map_err(|e| FaceError::Unavailable(format!("face pipeline task failed: {e}")))?
    }

    pub fn inference_gate(&self) -> &Arc<Gate> {
        &self.inference
    }
}

/// Time spent in one stage of a request (`iai_stage_duration_seconds`; benches/search_load.py reads it).
pub fn stage(name: &'static str, since: std::time::Instant) {
    metrics::histogram!("iai_stage_duration_seconds", "stage" => name)
        .record(since.elapsed().as_secs_f64());
}

/// Run `work` on a blocking thread, in the caller's tracing span.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FaceError> + Send + 'static,
) -> Result<T, FaceError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| FaceError::Unavailable(format!("decoding task failed: {e}")))?
}
