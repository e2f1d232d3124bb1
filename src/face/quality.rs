//! Face quality (`FaceQualityInfo`) measured from the pixels and the face mesh, no model:
//! - Brightness: mean luminance of the face square (the detector box, levelled, 112x112), 0-100 of 0-255.
//! - Sharpness: variance of the Laplacian of that square, on a log scale between a blurred photo and a crisp
//!   one (knots measured here, README "Quality").
//! - Completeness per part: the share of the part's mesh points inside the image, lowered by the mask
//!   detector's probability for the parts a mask covers (nose, mouth, chin). Other occlusions (hands,
//!   sunglasses) are not modelled.
//! - Score: the weakest of sharpness, brightness (distance from mid-grey), completeness and pose.

use image::RgbImage;

use super::align::upright_square;
use super::attributes::HeadPose;
use super::detect::Detection;
use super::mesh::{self, Mesh};

const SQUARE: u32 = 112;
/// Laplacian variances of the face square that score 0 and 100 sharpness.
pub const SHARPNESS_KNOTS: (f32, f32) = (15.0, 600.0);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub score: f32,
    pub sharpness: f32,
    pub brightness: f32,
    pub completeness: Completeness,
}

/// 0-100 per part, higher = more of it visible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Completeness {
    pub eyebrow: f32,
    pub eye: f32,
    pub nose: f32,
    pub cheek: f32,
    pub mouth: f32,
    pub chin: f32,
}

impl Completeness {
    fn weakest(&self) -> f32 {
        [
            self.eyebrow,
            self.eye,
            self.nose,
            self.cheek,
            self.mouth,
            self.chin,
        ]
        .into_iter()
        .fold(100.0, f32::min)
    }
}

pub fn measure(
    image: &RgbImage,
    face: &Detection,
    mesh: &Mesh,
    pose: &HeadPose,
    mask: Option<f32>,
) -> anyhow::Result<Quality> {
    let (square, _) = upright_square(
        image,
        face.centre(),
        face.width.max(face.height),
        face.eye_angle(),
        SQUARE,
    )?;
    let grey: Vec<f32> = square
        .pixels()
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect();
    let brightness = grey.iter().sum::<f32>() / grey.len() as f32 / 255.0 * 100.0;
    let sharpness = sharpness_score(laplacian_variance(&grey, SQUARE as usize));
    let completeness = completeness(image, mesh, mask.unwrap_or(0.0));
    // Brightness is best at mid-grey and reaches 0 at black or white.
    let lighting = 100.0 - 2.0 * (brightness - 50.0).abs();
    // 0 at 50 degrees of yaw or pitch.
    let turn = pose.yaw.abs().max(pose.pitch.abs());
    let pose_score = (100.0 - 2.0 * turn).max(0.0);
    let score = sharpness
        .min(lighting)
        .min(completeness.weakest())
        .min(pose_score);
    Ok(Quality {
        score,
        sharpness,
        brightness,
        completeness,
    })
}

pub fn laplacian_variance(grey: &[f32], side: usize) -> f32 {
    let mut values = Vec::with_capacity((side - 2) * (side - 2));
    for y in 1..side - 1 {
        for x in 1..side - 1 {
            let at = |dx: isize, dy: isize| {
                grey[(y as isize + dy) as usize * side + (x as isize + dx) as usize]
            };
            values.push(at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) - 4.0 * at(0, 0));
        }
    }
    let n = values.len().max(1) as f32;
    let mean = values.iter().sum::<f32>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n
}

pub fn sharpness_score(variance: f32) -> f32 {
    let (low, high) = SHARPNESS_KNOTS;
    let t = (variance.max(f32::MIN_POSITIVE).ln() - low.ln()) / (high.ln() - low.ln());
    (t * 100.0).clamp(0.0, 100.0)
}

fn completeness(image: &RgbImage, mesh: &Mesh, mask: f32) -> Completeness {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let inside = |lists: &[&[usize]]| {
        let (mut n, mut seen) = (0, 0);
        for &i in lists.iter().flat_map(|l| l.iter()) {
            let [x, y] = mesh.xy(i);
            n += 1;
            if x >= 0.0 && y >= 0.0 && x < w && y < h {
                seen += 1;
            }
        }
        100.0 * seen as f32 / n.max(1) as f32
    };
    let uncovered = 1.0 - mask.clamp(0.0, 1.0);
    Completeness {
        eyebrow: inside(&[&mesh::dense::LEFT_EYEBROW, &mesh::dense::RIGHT_EYEBROW]),
        eye: inside(&[&mesh::dense::LEFT_EYE, &mesh::dense::RIGHT_EYE]),
        nose: inside(&[&mesh::dense::NOSE]) * uncovered,
        cheek: inside(&[&CHEEKS]),
        mouth: inside(&[&mesh::dense::MOUTH_OUTSIDE]) * uncovered,
        chin: inside(&[&mesh::dense::CHIN]) * uncovered,
    }
}

/// Outline points beside the cheeks, both sides.
const CHEEKS: [usize; 8] = [234, 93, 132, 58, 454, 323, 361, 288];

/// Tencent's `QualityControl` (SPEC.md §7.4) applied to a measured quality: Some(reason) when the face fails.
pub fn refusal(level: u64, q: &Quality) -> Option<&'static str> {
    let c = &q.completeness;
    // Level 1: only very blurry faces or covered eyes/nose/mouth.
    let core_covered = c.eye < 80.0 || c.nose < 60.0 || c.mouth < 50.0;
    if level >= 1 && (q.sharpness < 20.0 || core_covered) {
        return Some("the face is very blurry or its eyes, nose or mouth are covered");
    }
    let issues = [
        q.brightness < 30.0 || q.brightness > 70.0,
        q.sharpness < 60.0,
        c.eyebrow < 80.0,
        c.cheek < 70.0,
        c.chin < 70.0,
    ]
    .into_iter()
    .filter(|&issue| issue)
    .count();
    match level {
        2 if issues >= 3 => Some("the face has three or more quality issues"),
        3 if issues >= 1 => Some("the face has a quality issue"),
        4 if issues >= 1 || q.score < 70.0 || q.sharpness < 80.0 => {
            Some("the face is not of the highest quality")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_image_has_no_sharpness_and_a_checkerboard_is_sharp() {
        let side = 32;
        let flat = vec![128.0; side * side];
        assert_eq!(laplacian_variance(&flat, side), 0.0);
        assert_eq!(sharpness_score(0.0), 0.0);
        let board: Vec<f32> = (0..side * side)
            .map(|i| {
                if (i % side + i / side) % 2 == 0 {
                    0.0
                } else {
                    255.0
                }
            })
            .collect();
        assert_eq!(sharpness_score(laplacian_variance(&board, side)), 100.0);
        let mid = (SHARPNESS_KNOTS.0 * SHARPNESS_KNOTS.1).sqrt();
        assert!((sharpness_score(mid) - 50.0).abs() < 1e-3);
    }

    #[test]
    fn quality_control_levels_tighten() {
        let good = Quality {
            score: 90.0,
            sharpness: 90.0,
            brightness: 50.0,
            completeness: Completeness {
                eyebrow: 100.0,
                eye: 100.0,
                nose: 100.0,
                cheek: 100.0,
                mouth: 100.0,
                chin: 100.0,
            },
        };
        for level in 0..=4 {
            assert_eq!(refusal(level, &good), None);
        }
        let dim = Quality {
            brightness: 20.0,
            ..good
        };
        assert_eq!(refusal(2, &dim), None);
        assert!(refusal(3, &dim).is_some());
        let mut masked = good;
        masked.completeness.mouth = 10.0;
        assert_eq!(refusal(0, &masked), None);
        assert!(refusal(1, &masked).is_some());
    }
}
