//! Face embeddings: align the face onto the model's template, run the network on the crop and its mirror
//! image, average, L2-normalise. Model version 3.0 is the 128-d dlib ResNet port (150x150 template measured
//! on dlib's own chips), 2.0 the 256-d MobileFace (the standard 112x112 ArcFace template).

use image::RgbImage;

use super::align::{Similarity, warp};
use super::runtime::Model;

pub struct Embedder {
    model: Model,
    size: u32,
    template: [[f32; 2]; 5],
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
    pub fn new(model: Model, size: u32, template: [[f32; 2]; 5]) -> Self {
        Self {
            model,
            size,
            template,
        }
    }

    /// The aligned crop for these landmarks.
    pub fn align(&self, image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> RgbImage {
        warp(
            image,
            &Similarity::estimate(landmarks, &self.template),
            self.size,
        )
    }

    /// L2-normalised embedding of an aligned crop (mean of the crop and its mirror image).
    pub fn embed_aligned(&self, crop: &RgbImage) -> anyhow::Result<Vec<f32>> {
        let mirror = image::imageops::flip_horizontal(crop);
        let mut input = Vec::with_capacity(2 * crop.as_raw().len());
        input.extend(crop.as_raw().iter().map(|&v| v as f32));
        input.extend(mirror.as_raw().iter().map(|&v| v as f32));
        let s = self.size as usize;
        let outputs = self.model.run((vec![2, s, s, 3], input))?;
        let (shape, data) = &outputs[0];
        let dim = shape[1];
        let mut sum: Vec<f32> = (0..dim).map(|i| data[i] + data[dim + i]).collect();
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
