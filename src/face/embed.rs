//! Face embeddings: align the face onto the model's template, run the network on the crop (and, for models
//! where it pays, its mirror image, averaged), L2-normalise.
//!
//! `Recognition` describes each recognition network; every stored embedding records the file that made it,
//! so that a version's model can change and the stored faces be embedded again (`jobs::mover`).

use image::RgbImage;

use super::ModelVersion;
use super::align::{Similarity, warp};
use super::runtime::Model;

/// How a network wants its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pixels {
    /// RGB 0-255 (any normalisation is inside the graph).
    Rgb255,
    /// RGB as (x - 127.5) / 128.
    RgbCentred,
}

/// A recognition network: its file, embedding size, input and alignment. Networks are the same when their
/// files are.
#[derive(Debug)]
pub struct Recognition {
    pub file: &'static str,
    pub dim: usize,
    pub size: u32,
    pub template: [[f32; 2]; 5],
    pub pixels: Pixels,
    /// Embed the mirror image too and average (costs a second pass).
    pub mirror: bool,
}

/// dlib's ResNet (face-api.js port), 128-d: model version 2.0 (it was 3.0 until 2026-11).
pub const DLIB_128: Recognition = Recognition {
    file: "faceapi_recognition_128.onnx",
    dim: 128,
    size: 150,
    template: DLIB_150_TEMPLATE,
    pixels: Pixels::Rgb255,
    mirror: true,
};

/// MobileFaceNet trained with an ArcFace loss, 192-d: model version 3.0.
pub const MOBILEFACENET_192: Recognition = Recognition {
    file: "mobilefacenet_192.onnx",
    dim: 192,
    size: 112,
    template: ARCFACE_112_TEMPLATE,
    pixels: Pixels::RgbCentred,
    mirror: MOBILEFACENET_MIRROR,
};

/// Whether MobileFaceNet averages in the mirror image (README, "Face models": measured).
pub const MOBILEFACENET_MIRROR: bool = true;

/// MobileFace, 256-d: model version 2.0 until 2026-11, retired. Kept only to serve groups whose faces have
/// not been embedded again yet.
pub const MOBILEFACE_256: Recognition = Recognition {
    file: "mobileface_recognition.onnx",
    dim: 256,
    size: 112,
    template: ARCFACE_112_TEMPLATE,
    pixels: Pixels::Rgb255,
    mirror: true,
};

/// Every recognition network the server knows, current and retired.
pub const ALL: [&Recognition; 3] = [&MOBILEFACENET_192, &DLIB_128, &MOBILEFACE_256];

impl PartialEq for Recognition {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
    }
}

impl Eq for Recognition {}

impl Recognition {
    /// The network that embeds new faces of a model version.
    pub fn current(version: ModelVersion) -> &'static Recognition {
        match version {
            ModelVersion::V3 => &MOBILEFACENET_192,
            ModelVersion::V2 => &DLIB_128,
        }
    }

    pub fn by_file(file: &str) -> Option<&'static Recognition> {
        ALL.into_iter().find(|r| r.file == file)
    }
}

pub struct Embedder {
    model: Model,
    spec: &'static Recognition,
}

pub const DLIB_150_TEMPLATE: [[f32; 2]; 5] = [
    [46.12, 45.32],
    [100.84, 44.47],
    [74.32, 78.21],
    [50.11, 100.47],
    [100.27, 99.46],
];
pub const ARCFACE_112_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

impl Embedder {
    pub fn new(model: Model, spec: &'static Recognition) -> Self {
        Self { model, spec }
    }

    pub fn spec(&self) -> &'static Recognition {
        self.spec
    }

    /// The aligned crop for these landmarks.
    pub fn align(&self, image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> RgbImage {
        warp(
            image,
            &Similarity::estimate(landmarks, &self.spec.template),
            self.spec.size,
        )
    }

    /// L2-normalised embedding of an aligned crop (with the mirror image averaged in, where the model
    /// does that).
    pub fn embed_aligned(&self, crop: &RgbImage) -> anyhow::Result<Vec<f32>> {
        self.embed_aligned_with(crop, self.spec.mirror)
    }

    /// Like `embed_aligned`, with the mirror image averaged in or not (the calibration measures both).
    pub fn embed_aligned_with(&self, crop: &RgbImage, mirror: bool) -> anyhow::Result<Vec<f32>> {
        let pixel = |v: &u8| match self.spec.pixels {
            Pixels::Rgb255 => f32::from(*v),
            Pixels::RgbCentred => (f32::from(*v) - 127.5) / 128.0,
        };
        let mut input = Vec::with_capacity(2 * crop.as_raw().len());
        input.extend(crop.as_raw().iter().map(pixel));
        let mut batch = 1;
        if mirror {
            let mirror = image::imageops::flip_horizontal(crop);
            input.extend(mirror.as_raw().iter().map(pixel));
            batch = 2;
        }
        let s = self.spec.size as usize;
        let outputs = self.model.run((vec![batch, s, s, 3], input))?;
        let (shape, data) = &outputs[0];
        let dim = shape[1];
        anyhow::ensure!(
            dim == self.spec.dim,
            "{} gave {dim} values, not {}",
            self.spec.file,
            self.spec.dim
        );
        let mut sum: Vec<f32> = (0..dim)
            .map(|i| (0..batch).map(|b| data[b * dim + i]).sum())
            .collect();
        normalise(&mut sum);
        Ok(sum)
    }

    pub fn embed(&self, image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> anyhow::Result<Vec<f32>> {
        self.embed_aligned(&self.align(image, landmarks))
    }
}

pub fn normalise(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
