//! Face detection with YuNet (`yunet_n_dynamic.onnx`): one anchor per cell at strides 8, 16 and 32, boxes and
//! five landmarks per face (eye on the image's left, other eye, nose tip, left and right mouth corners).
//! Input BGR 0-255 NCHW, the image scaled to a fixed long side, zero-padded to multiples of 32.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::runtime::Model;

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Left, top, width, height in image pixels.
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
}

impl Detection {
    pub fn area(&self) -> f32 {
        self.width * self.height
    }

    pub fn centre(&self) -> [f32; 2] {
        [self.x + self.width / 2.0, self.y + self.height / 2.0]
    }

    /// Angle (radians) of the line from the eye on the image's left to the other eye.
    pub fn eye_angle(&self) -> f32 {
        let [left, right] = [self.landmarks[0], self.landmarks[1]];
        (right[1] - left[1]).atan2(right[0] - left[0])
    }
}

pub struct Detector {
    model: Model,
    pub score_threshold: f32,
    pub nms_iou: f32,
}

const STRIDES: [usize; 3] = [8, 16, 32];

impl Detector {
    pub fn new(model: Model) -> Self {
        Self {
            model,
            score_threshold: 0.7,
            nms_iou: 0.3,
        }
    }

    /// Every face found, largest first, with the image scaled so its long side is `input_long_side`
    /// (larger finds smaller faces, at four times the cost for twice the side).
    pub fn detect(&self, image: &RgbImage, input_long_side: u32) -> anyhow::Result<Vec<Detection>> {
        let (width, height) = image.dimensions();
        let scale = input_long_side as f32 / width.max(height) as f32;
        let (w, h) = (
            ((width as f32 * scale).round() as u32).max(1),
            ((height as f32 * scale).round() as u32).max(1),
        );
        let resized = resize_bilinear(image, w, h)?;
        let (pw, ph) = (w.div_ceil(32) as usize * 32, h.div_ceil(32) as usize * 32);
        let mut input = vec![0f32; 3 * pw * ph];
        for (x, y, pixel) in resized.enumerate_pixels() {
            let at = y as usize * pw + x as usize;
            // BGR planes.
            input[at] = pixel[2] as f32;
            input[pw * ph + at] = pixel[1] as f32;
            input[2 * pw * ph + at] = pixel[0] as f32;
        }
        let outputs = self.model.run((vec![1, 3, ph, pw], input))?;
        // Outputs: cls_8/16/32, obj_8/16/32, bbox_8/16/32, kps_8/16/32.
        let mut found = Vec::new();
        for (level, stride) in STRIDES.iter().enumerate() {
            let cols = pw / stride;
            let (cls, obj, bbox, kps) = (
                &outputs[level].1,
                &outputs[3 + level].1,
                &outputs[6 + level].1,
                &outputs[9 + level].1,
            );
            for cell in 0..cls.len() {
                let score = (cls[cell].clamp(0.0, 1.0) * obj[cell].clamp(0.0, 1.0)).sqrt();
                if score < self.score_threshold {
                    continue;
                }
                let (row, col) = ((cell / cols) as f32, (cell % cols) as f32);
                let s = *stride as f32;
                let b = &bbox[cell * 4..cell * 4 + 4];
                let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
                let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
                let k = &kps[cell * 10..cell * 10 + 10];
                let mut landmarks = [[0f32; 2]; 5];
                for (i, point) in landmarks.iter_mut().enumerate() {
                    *point = [
                        (col + k[2 * i]) * s / scale,
                        (row + k[2 * i + 1]) * s / scale,
                    ];
                }
                found.push(Detection {
                    x: (cx - bw / 2.0) / scale,
                    y: (cy - bh / 2.0) / scale,
                    width: bw / scale,
                    height: bh / scale,
                    landmarks,
                    score,
                });
            }
        }
        let mut kept = non_maximum_suppression(found, self.nms_iou);
        kept.sort_by(|a, b| b.area().total_cmp(&a.area()));
        Ok(kept)
    }
}

/// Bilinear resize with SIMD (the image crate's resize costs more than the detector on a 2-core machine).
pub(crate) fn resize_bilinear(
    image: &RgbImage,
    width: u32,
    height: u32,
) -> anyhow::Result<RgbImage> {
    let source = ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        PixelType::U8x3,
    )?;
    let mut target = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&source, &mut target, &options)?;
    RgbImage::from_raw(width, height, target.into_vec())
        .ok_or_else(|| anyhow::anyhow!("resize produced a short buffer"))
}

fn iou(a: &Detection, b: &Detection) -> f32 {
    let x1 = a.x.max(b.x);
    let y1 = a.y.max(b.y);
    let x2 = (a.x + a.width).min(b.x + b.width);
    let y2 = (a.y + a.height).min(b.y + b.height);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    inter / (a.area() + b.area() - inter).max(f32::EPSILON)
}

fn non_maximum_suppression(mut faces: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| iou(k, &face) <= threshold) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            x,
            y: 0.0,
            width: 10.0,
            height: 10.0,
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept =
            non_maximum_suppression(vec![det(0.0, 0.8), det(1.0, 0.9), det(50.0, 0.75)], 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].x, 50.0);
    }
}
