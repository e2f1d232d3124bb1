//! Static (single photo) liveness with MiniFASNet (Silent-Face-Anti-Spoofing): two models look at the face
//! with different context, a crop of 2.7x and of 4x the detector box (shifted back inside the image), each
//! resized to 80x80, BGR 0-255 NCHW. Their softmax outputs are averaged; class 1 is a live face.

use image::RgbImage;

use super::detect::{Detection, resize_bilinear};
use super::runtime::Model;

pub struct Liveness {
    /// (model, how many times the face box its crop spans)
    models: [(Model, f32); 2],
}

const SIZE: u32 = 80;

impl Liveness {
    pub fn new(v2_crop_2_7: Model, v1se_crop_4: Model) -> Self {
        Self {
            models: [(v2_crop_2_7, 2.7), (v1se_crop_4, 4.0)],
        }
    }

    /// Probability (0-1) that the face is a live face rather than a photo or a screen.
    pub fn live_probability(&self, image: &RgbImage, face: &Detection) -> anyhow::Result<f32> {
        let mut sum = 0.0;
        for (model, scale) in &self.models {
            let crop = context_crop(image, face, *scale)?;
            let plane = (SIZE * SIZE) as usize;
            let mut input = vec![0f32; 3 * plane];
            for (i, pixel) in crop.pixels().enumerate() {
                input[i] = pixel[2] as f32;
                input[plane + i] = pixel[1] as f32;
                input[2 * plane + i] = pixel[0] as f32;
            }
            let outputs = model.run((vec![1, 3, SIZE as usize, SIZE as usize], input))?;
            sum += softmax(&outputs[0].1)[1];
        }
        Ok(sum / self.models.len() as f32)
    }
}

/// The crop Silent-Face-Anti-Spoofing feeds its models: `scale` times the face box around its centre
/// (scale reduced when the image is too small), moved back inside the image, resized to 80x80.
fn context_crop(image: &RgbImage, face: &Detection, scale: f32) -> anyhow::Result<RgbImage> {
    let (src_w, src_h) = (image.width() as f32, image.height() as f32);
    let (box_w, box_h) = (face.width.max(1.0), face.height.max(1.0));
    let scale = scale.min((src_h - 1.0) / box_h).min((src_w - 1.0) / box_w);
    let (new_w, new_h) = (box_w * scale, box_h * scale);
    let (cx, cy) = (face.x + box_w / 2.0, face.y + box_h / 2.0);
    let (mut left, mut top) = (cx - new_w / 2.0, cy - new_h / 2.0);
    let (mut right, mut bottom) = (cx + new_w / 2.0, cy + new_h / 2.0);
    if left < 0.0 {
        right -= left;
        left = 0.0;
    }
    if top < 0.0 {
        bottom -= top;
        top = 0.0;
    }
    if right > src_w - 1.0 {
        left -= right - src_w + 1.0;
        right = src_w - 1.0;
    }
    if bottom > src_h - 1.0 {
        top -= bottom - src_h + 1.0;
        bottom = src_h - 1.0;
    }
    let (left, top) = (left.max(0.0) as u32, top.max(0.0) as u32);
    let (width, height) = (
        (right as u32 + 1 - left).max(1),
        (bottom as u32 + 1 - top).max(1),
    );
    let cropped = image::imageops::crop_imm(image, left, top, width, height).to_image();
    resize_bilinear(&cropped, SIZE, SIZE)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::MIN, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_stay_inside_the_image() {
        let image = RgbImage::new(200, 100);
        let face = Detection {
            x: 150.0,
            y: 10.0,
            width: 40.0,
            height: 40.0,
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
        };
        let crop = context_crop(&image, &face, 4.0).unwrap();
        assert_eq!(crop.dimensions(), (SIZE, SIZE));
        let probabilities = softmax(&[1.0, 2.0, 3.0]);
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(probabilities[2] > probabilities[1]);
    }
}
