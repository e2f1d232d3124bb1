//! Face attributes. From models: age and gender (face-api.js's AgeGenderNet, an eye-aligned 112x112 RGB
//! crop), emotion (oarriaga's mini-Xception, 64x64 grayscale in [-1, 1]) and masks
//! (Ultra-Light-Fast-Generic-Face-Detector's masked-face model, whole image at 640x480). Derived from the
//! face mesh, no model: head pose, eyes open, mouth open. Everything else Tencent reports (beauty, glasses,
//! hat, hair ...) has no usable model here and is not produced (README, "Attributes").

use image::RgbImage;

use super::align::upright_square;
use super::detect::{Detection, resize_bilinear};
use super::mesh::{self, Mesh};
use super::runtime::Model;

/// The emotion classifier's crop in multiples of the detector box's long side: it reads neutral faces as
/// neutral at 1.2.
const EMOTION_CROP: f32 = 1.2;
const CLASSIFIER_SIZE: u32 = 64;
const MASK_INPUT: (u32, u32) = (640, 480);
/// Anchors of the mask detector that overlap the face box at least this much speak for the face.
const MASK_MIN_IOU: f32 = 0.3;

/// Tencent's emotion order (0 neutral, 1 happy, 2 surprise, 3 anger, 4 sad, 5 disgust, 6 fear) as indices
/// into the model's output (angry, disgust, fear, happy, sad, surprise, neutral).
const EMOTION_FROM_MODEL: [usize; 7] = [6, 3, 5, 0, 4, 1, 2];

/// AgeGenderNet's input side, and its crop around the eyes (../shared/models/README.md, "Age"): with `e` the
/// midpoint of the eye points, `d` their distance and the eye line as the x axis, a square of 2.73 d
/// centred at e + (0.02, 0.72) d (y down), which matches face-api's own box from 68 landmarks.
const AGE_GENDER_SIZE: u32 = 112;
const AGE_GENDER_SIDE: f32 = 2.73;
const AGE_GENDER_CENTRE: [f32; 2] = [0.02, 0.72];
/// The age head is a plain regression; ages outside this range are clamped.
const AGE_RANGE: (f32, f32) = (0.0, 100.0);

pub struct AttributeModels {
    age_gender: Model,
    emotion: Model,
    mask: Model,
}

/// What the models say about one face.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAttributes {
    /// Age in years (AgeGenderNet's regression, clamped to 0-100).
    pub age: f32,
    pub female_probability: f32,
    /// Probabilities in Tencent's emotion order.
    pub emotions: [f32; 7],
}

/// A face's share of the mask detector's output: probability the face wears a mask (None when the detector
/// saw no face there).
pub type MaskProbability = Option<f32>;

impl AttributeModels {
    pub fn new(age_gender: Model, emotion: Model, mask: Model) -> Self {
        Self {
            age_gender,
            emotion,
            mask,
        }
    }

    pub fn classify(&self, image: &RgbImage, face: &Detection) -> anyhow::Result<ModelAttributes> {
        let (age, female_probability) = self.age_gender(image, face)?;
        Ok(ModelAttributes {
            age,
            female_probability,
            emotions: self.emotions(image, face)?,
        })
    }

    /// Emotion probabilities in Tencent's order.
    pub fn emotions(&self, image: &RgbImage, face: &Detection) -> anyhow::Result<[f32; 7]> {
        let emotion = self.emotion.run(grey_input(image, face, EMOTION_CROP)?)?;
        let e = &emotion[0].1;
        anyhow::ensure!(e.len() == 7, "unexpected emotion output");
        Ok(EMOTION_FROM_MODEL.map(|i| e[i]))
    }

    /// Age in years and the probability the face is a woman's, from one AgeGenderNet call.
    pub fn age_gender(&self, image: &RgbImage, face: &Detection) -> anyhow::Result<(f32, f32)> {
        let outputs = self.age_gender.run(age_gender_input(image, face)?)?;
        // Outputs `age` [N,1] and `gender` [N,2] (softmax, column 0 male); told apart by their width.
        let (mut age, mut gender) = (None, None);
        for (_, data) in &outputs {
            match data.len() {
                1 => age = Some(data[0]),
                2 => gender = Some([data[0], data[1]]),
                _ => {}
            }
        }
        let (Some(age), Some([male, female])) = (age, gender) else {
            anyhow::bail!("unexpected age and gender output");
        };
        let age = if age.is_finite() { age } else { AGE_RANGE.0 };
        Ok((
            age.clamp(AGE_RANGE.0, AGE_RANGE.1),
            female / (male + female).max(f32::EPSILON),
        ))
    }

    /// Mask probability for each face, from one pass of the masked-face detector over the whole image.
    pub fn masks(
        &self,
        image: &RgbImage,
        faces: &[Detection],
    ) -> anyhow::Result<Vec<MaskProbability>> {
        let (w, h) = MASK_INPUT;
        let resized = resize_bilinear(image, w, h)?;
        let plane = (w * h) as usize;
        let mut input = vec![0f32; 3 * plane];
        for (i, pixel) in resized.pixels().enumerate() {
            for c in 0..3 {
                input[c * plane + i] = (pixel[c] as f32 - 127.0) / 128.0;
            }
        }
        let outputs = self.mask.run((vec![1, 3, h as usize, w as usize], input))?;
        let (scores, boxes) = (&outputs[0].1, &outputs[1].1);
        let (iw, ih) = (image.width() as f32, image.height() as f32);
        Ok(faces
            .iter()
            .map(|face| {
                let target = [
                    face.x / iw,
                    face.y / ih,
                    (face.x + face.width) / iw,
                    (face.y + face.height) / ih,
                ];
                // The anchor that is surest there is a face (plain or masked) over this face decides.
                let mut best: Option<(f32, f32)> = None;
                for (score, bbox) in scores.chunks_exact(3).zip(boxes.chunks_exact(4)) {
                    let face_like = score[1] + score[2];
                    if face_like < 0.5 || iou(&target, bbox) < MASK_MIN_IOU {
                        continue;
                    }
                    if best.is_none_or(|(s, _)| face_like > s) {
                        best = Some((face_like, score[2] / face_like));
                    }
                }
                best.map(|(_, masked)| masked)
            })
            .collect())
    }
}

/// AgeGenderNet's input: the eye-aligned square (`AGE_GENDER_*`), RGB 0-255, NHWC (the graph normalises).
fn age_gender_input(image: &RgbImage, face: &Detection) -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
    let [left, right] = [face.landmarks[0], face.landmarks[1]];
    let eyes = [(left[0] + right[0]) / 2.0, (left[1] + right[1]) / 2.0];
    let d = (right[0] - left[0]).hypot(right[1] - left[1]).max(1.0);
    let angle = face.eye_angle();
    let (cos, sin) = (angle.cos(), angle.sin());
    let [along, down] = AGE_GENDER_CENTRE;
    let centre = [
        eyes[0] + d * (along * cos - down * sin),
        eyes[1] + d * (along * sin + down * cos),
    ];
    let (square, _) = upright_square(image, centre, AGE_GENDER_SIDE * d, angle, AGE_GENDER_SIZE)?;
    let s = AGE_GENDER_SIZE as usize;
    let data = square.pixels().flat_map(|p| p.0.map(f32::from)).collect();
    Ok((vec![1, s, s, 3], data))
}

/// The 64x64 grey input of the oarriaga classifiers: an upright square of `crop` box sides, grey by
/// Rec. 601 weights, scaled to [-1, 1] (public for `examples/attributes.rs`, which measures the gender model
/// AgeGenderNet replaced on the same input).
pub fn grey_input(
    image: &RgbImage,
    face: &Detection,
    crop: f32,
) -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
    let (square, _) = upright_square(
        image,
        face.centre(),
        face.width.max(face.height) * crop,
        face.eye_angle(),
        CLASSIFIER_SIZE,
    )?;
    let grey = square
        .pixels()
        .map(|p| {
            let y = (0.2989 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0;
            (y - 0.5) * 2.0
        })
        .collect();
    let s = CLASSIFIER_SIZE as usize;
    Ok((vec![1, s, s, 1], grey))
}

fn iou(a: &[f32; 4], b: &[f32]) -> f32 {
    let (x1, y1) = (a[0].max(b[0]), a[1].max(b[1]));
    let (x2, y2) = (a[2].min(b[2]), a[3].min(b[3]));
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let area = |r: &[f32]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    inter / (area(a) + area(b) - inter).max(f32::EPSILON)
}

/// Head pose in degrees, from the mesh. Roll: angle of the eye line (positive = turned clockwise as seen).
/// Yaw: positive when the face turns towards the image's right. Pitch: positive when the face looks up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadPose {
    pub pitch: f32,
    pub yaw: f32,
    pub roll: f32,
}

pub fn head_pose(mesh: &Mesh) -> HeadPose {
    let left_eye = mesh.centre(&mesh::dense::LEFT_EYE);
    let right_eye = mesh.centre(&mesh::dense::RIGHT_EYE);
    let roll = (right_eye[1] - left_eye[1]).atan2(right_eye[0] - left_eye[0]);
    // Undo the roll in the image plane, then read the turn out of the depth of the face's edges.
    let (cos, sin) = (roll.cos(), roll.sin());
    let level = |v: [f32; 3]| [cos * v[0] + sin * v[1], -sin * v[0] + cos * v[1], v[2]];
    let sub = |a: usize, b: usize| {
        let (p, q) = (mesh.points[a], mesh.points[b]);
        [p[0] - q[0], p[1] - q[1], p[2] - q[2]]
    };
    let across = level(sub(mesh::FACE_RIGHT, mesh::FACE_LEFT));
    let down = level(sub(mesh::CHIN_BOTTOM, mesh::FOREHEAD_TOP));
    // Turning towards the image's right brings the face's left edge (image left) nearer: z of the right
    // edge grows relative to the left one.
    let yaw = across[2].atan2(across[0]);
    // Looking up brings the chin nearer than the forehead: z of the chin falls.
    let pitch = (-down[2]).atan2(down[1]);
    HeadPose {
        pitch: pitch.to_degrees(),
        yaw: yaw.to_degrees(),
        roll: roll.to_degrees(),
    }
}

/// Eye openness: lid gap over eye width, for the image's left and right eye.
pub fn eye_openness(mesh: &Mesh) -> [f32; 2] {
    [mesh::LEFT_EYE_LIDS, mesh::RIGHT_EYE_LIDS].map(|[upper, lower, outer, inner]| {
        mesh.distance(upper, lower) / mesh.distance(outer, inner).max(1.0)
    })
}

/// An eye whose lid gap is below this share of its width is closed (open eyes measure 0.25-0.35).
pub const EYE_CLOSED_BELOW: f32 = 0.15;

/// Inner-lip gap over mouth width.
pub fn mouth_openness(mesh: &Mesh) -> f32 {
    let [upper, lower, left, right] = mesh::INNER_LIPS;
    mesh.distance(upper, lower) / mesh.distance(left, right).max(1.0)
}

/// A mouth whose inner-lip gap exceeds this share of its width is open.
pub const MOUTH_OPEN_ABOVE: f32 = 0.1;

/// How sure a threshold decision is: 0.5 at the threshold, towards 1 as the measure moves away from it by
/// `spread` (a logistic of the distance; a derived confidence, not a model probability).
pub fn confidence(value: f32, threshold: f32, spread: f32) -> f32 {
    let z = (value - threshold).abs() / spread.max(f32::EPSILON);
    1.0 / (1.0 + (-4.0 * z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat_mesh() -> Mesh {
        // A frontal face: every point at depth 0, laid out so the lists' geometry is sane.
        let mut points = vec![[0.0f32; 3]; mesh::POINTS];
        for (i, p) in points.iter_mut().enumerate() {
            *p = [(i % 20) as f32 * 5.0, (i / 20) as f32 * 5.0, 0.0];
        }
        points[mesh::FACE_LEFT] = [0.0, 50.0, 0.0];
        points[mesh::FACE_RIGHT] = [100.0, 50.0, 0.0];
        points[mesh::FOREHEAD_TOP] = [50.0, 0.0, 0.0];
        points[mesh::CHIN_BOTTOM] = [50.0, 120.0, 0.0];
        // Level eyes: no roll.
        for &i in &mesh::dense::LEFT_EYE {
            points[i] = [30.0, 40.0, 0.0];
        }
        for &i in &mesh::dense::RIGHT_EYE {
            points[i] = [70.0, 40.0, 0.0];
        }
        Mesh {
            points,
            presence: 1.0,
        }
    }

    #[test]
    fn a_frontal_flat_face_has_no_yaw_or_pitch_and_depth_turns_it() {
        let mut mesh = flat_mesh();
        let pose = head_pose(&mesh);
        assert!(pose.yaw.abs() < 1e-3 && pose.pitch.abs() < 1e-3, "{pose:?}");
        // The right edge further away than the left: the face turned towards the image's right.
        mesh.points[mesh::FACE_RIGHT][2] = 40.0;
        mesh.points[mesh::FACE_LEFT][2] = -40.0;
        assert!(head_pose(&mesh).yaw > 30.0);
        // Chin nearer than the forehead: looking up.
        mesh.points[mesh::CHIN_BOTTOM][2] = -30.0;
        mesh.points[mesh::FOREHEAD_TOP][2] = 30.0;
        assert!(head_pose(&mesh).pitch > 20.0);
    }

    #[test]
    fn confidence_is_half_at_the_threshold_and_grows_away_from_it() {
        assert!((confidence(0.15, 0.15, 0.05) - 0.5).abs() < 1e-6);
        assert!(confidence(0.30, 0.15, 0.05) > 0.99);
        assert!(confidence(0.0, 0.15, 0.05) > 0.99);
        let overlap = iou(&[0.0, 0.0, 1.0, 1.0], &[0.0, 0.0, 1.0, 0.5]);
        assert!((overlap - 0.5).abs() < 1e-6);
    }
}
