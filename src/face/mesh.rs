//! Dense landmarks with MediaPipe's face mesh (`mp_face_landmark.onnx`, 468 points with depth): the face is
//! cut out as a square of 1.5x the detector box, turned so the eye line is level, scaled to 192x192, RGB / 255
//! NHWC. Points come back in image pixels; `z` is depth in the same scale (smaller = nearer the camera).
//!
//! The index lists below name which mesh points make up Tencent's landmark groups. "Left" is the side on the
//! image's left, as in YuNet's landmark order (the person's right eye is Tencent's `LeftEye`).

use image::RgbImage;

use super::align::upright_square;
use super::detect::Detection;
use super::runtime::Model;

const SIZE: u32 = 192;
/// The crop spans this many times the detector box's long side.
const CROP_SCALE: f32 = 1.5;
pub const POINTS: usize = 468;

pub struct FaceMesh {
    model: Model,
}

/// 468 points of one face in image pixels.
#[derive(Debug, Clone)]
pub struct Mesh {
    pub points: Vec<[f32; 3]>,
    /// Probability (0-1) the model gives that a face is in the crop at all.
    pub presence: f32,
}

impl Mesh {
    pub fn xy(&self, index: usize) -> [f32; 2] {
        let p = self.points[index];
        [p[0], p[1]]
    }

    /// Centre of a set of points (used for the pupils: the middle of the eye contour).
    pub fn centre(&self, indices: &[usize]) -> [f32; 2] {
        let n = indices.len().max(1) as f32;
        let (x, y) = indices.iter().fold((0.0, 0.0), |(x, y), &i| {
            (x + self.points[i][0], y + self.points[i][1])
        });
        [x / n, y / n]
    }

    pub fn distance(&self, a: usize, b: usize) -> f32 {
        let (p, q) = (self.xy(a), self.xy(b));
        (p[0] - q[0]).hypot(p[1] - q[1])
    }
}

impl FaceMesh {
    pub fn new(model: Model) -> Self {
        Self { model }
    }

    pub fn run(&self, image: &RgbImage, face: &Detection) -> anyhow::Result<Mesh> {
        let side = face.width.max(face.height) * CROP_SCALE;
        let (crop, to_crop) = upright_square(image, face.centre(), side, face.eye_angle(), SIZE)?;
        let input: Vec<f32> = crop.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
        let s = SIZE as usize;
        let outputs = self.model.run((vec![1, s, s, 3], input))?;
        let (coords, flag) = (&outputs[0].1, &outputs[1].1);
        anyhow::ensure!(
            coords.len() == POINTS * 3,
            "face mesh returned {} values",
            coords.len()
        );
        let back = to_crop.inverse();
        // Depth is in crop pixels too: undo the crop's scale.
        let depth_scale = 1.0 / to_crop.a.hypot(to_crop.b);
        let points = coords
            .chunks_exact(3)
            .map(|p| {
                let [x, y] = back.apply([p[0], p[1]]);
                [x, y, p[2] * depth_scale]
            })
            .collect();
        Ok(Mesh {
            points,
            presence: 1.0 / (1.0 + (-flag[0]).exp()),
        })
    }
}

/// Tencent's 90 points (AnalyzeFace `FaceShape`).
pub mod shape90 {
    pub const FACE_PROFILE: [usize; 21] = [
        234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288,
        361, 323, 454,
    ];
    pub const LEFT_EYE: [usize; 8] = [33, 161, 159, 157, 133, 154, 145, 163];
    pub const RIGHT_EYE: [usize; 8] = [362, 384, 386, 388, 263, 390, 374, 381];
    pub const LEFT_EYEBROW: [usize; 8] = [46, 53, 52, 65, 55, 107, 66, 105];
    pub const RIGHT_EYEBROW: [usize; 8] = [276, 283, 282, 295, 285, 336, 296, 334];
    pub const MOUTH: [usize; 22] = [
        61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178, 62,
        292,
    ];
    pub const NOSE: [usize; 13] = [168, 6, 197, 195, 5, 4, 1, 19, 98, 97, 2, 326, 327];
}

/// The groups of AnalyzeDenseLandmarks (`DenseFaceShape`).
pub mod dense {
    /// Eye contours, starting at the outer corner, lower lid first.
    pub const LEFT_EYE: [usize; 16] = [
        33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
    ];
    pub const RIGHT_EYE: [usize; 16] = [
        263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
    ];
    pub const LEFT_EYEBROW: [usize; 10] = [46, 53, 52, 65, 55, 107, 66, 105, 63, 70];
    pub const RIGHT_EYEBROW: [usize; 10] = [276, 283, 282, 295, 285, 336, 296, 334, 293, 300];
    /// Outer lip line, counter-clockwise (as seen) from the mouth corner on the image's left.
    pub const MOUTH_OUTSIDE: [usize; 20] = [
        61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
    ];
    pub const MOUTH_INSIDE: [usize; 20] = [
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
    ];
    pub const NOSE: [usize; 20] = [
        168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 129, 358, 102, 331, 64, 294,
    ];
    /// Forehead to chin through the middle of the face.
    pub const CENTRAL_AXIS: [usize; 28] = [
        10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 11, 12, 13, 14, 15, 16, 17,
        18, 200, 199, 175, 152,
    ];
    pub const CHIN: [usize; 13] = [
        172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397,
    ];
    pub const LEFT_EYE_BAGS: [usize; 9] = [143, 111, 117, 118, 119, 120, 121, 128, 245];
    pub const RIGHT_EYE_BAGS: [usize; 9] = [372, 340, 346, 347, 348, 349, 350, 357, 465];
    pub const FOREHEAD: [usize; 16] = [
        54, 103, 67, 109, 10, 338, 297, 332, 284, 104, 69, 108, 151, 337, 299, 333,
    ];
}

/// Points that measure openness: (upper lid, lower lid, outer corner, inner corner) per eye, and the inner lips.
pub const LEFT_EYE_LIDS: [usize; 4] = [159, 145, 33, 133];
pub const RIGHT_EYE_LIDS: [usize; 4] = [386, 374, 263, 362];
pub const INNER_LIPS: [usize; 4] = [13, 14, 78, 308];
/// Face outline points at the image's left and right, forehead top and chin (head pose).
pub const FACE_LEFT: usize = 234;
pub const FACE_RIGHT: usize = 454;
pub const FOREHEAD_TOP: usize = 10;
pub const CHIN_BOTTOM: usize = 152;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_are_in_range_and_shape90_has_90_points() {
        let all: Vec<&[usize]> = vec![
            &shape90::FACE_PROFILE,
            &shape90::LEFT_EYE,
            &shape90::RIGHT_EYE,
            &shape90::LEFT_EYEBROW,
            &shape90::RIGHT_EYEBROW,
            &shape90::MOUTH,
            &shape90::NOSE,
        ];
        // Plus one pupil per eye.
        assert_eq!(all.iter().map(|l| l.len()).sum::<usize>() + 2, 90);
        for list in all.into_iter().chain([
            &dense::LEFT_EYE[..],
            &dense::RIGHT_EYE,
            &dense::MOUTH_OUTSIDE,
            &dense::MOUTH_INSIDE,
            &dense::NOSE,
            &dense::CENTRAL_AXIS,
            &dense::CHIN,
            &dense::LEFT_EYE_BAGS,
            &dense::RIGHT_EYE_BAGS,
            &dense::FOREHEAD,
        ]) {
            assert!(list.iter().all(|&i| i < POINTS));
        }
    }
}
