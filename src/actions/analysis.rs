//! Face analysis: DetectFace's attributes and quality, AnalyzeFace (90 points), AnalyzeDenseLandmarks and
//! DetectFaceAttributes. The face mesh gives the points, head pose, eyes and mouth; the attribute models
//! gender, emotion and masks; what has no model here is reported as Tencent's zero value (README,
//! "Attributes").

use std::sync::Arc;

use image::{ImageFormat, RgbImage};

use super::images::{
    DEFAULT_MIN_FACE_SIZE, check_max_faces, detect, face_rect, faces_of_size, image_input,
    model_version,
};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode};
use crate::face::attributes::{self, HeadPose, MaskProbability, ModelAttributes};
use crate::face::detect::Detection;
use crate::face::download::Downloader;
use crate::face::image_input::Decoded;
use crate::face::mesh::{Mesh, dense, shape90};
use crate::face::quality::{self, Quality};
use crate::face::{FacePipeline, ModelVersion};

/// Tencent computes attributes for the 5 largest faces and quality for the 30 largest (SPEC.md §7.1).
const ATTRIBUTE_FACES: usize = 5;
const QUALITY_FACES: usize = 30;
const ANALYZE_FACE_MAX: usize = 10;
const DENSE_FACE_MAX: usize = 5;
/// A probability at or above this turns a yes/no attribute on.
const YES: f32 = 0.5;

/// Everything measured about one face.
struct Analysis {
    mesh: Mesh,
    pose: HeadPose,
    classes: Option<ModelAttributes>,
    mask: MaskProbability,
    quality: Option<Quality>,
}

/// Mesh and pose of every face; models and masks for the first `with_attributes`; quality for the first
/// `with_quality`.
fn analyse(
    p: &FacePipeline,
    image: &RgbImage,
    faces: &[Detection],
    with_attributes: usize,
    with_quality: usize,
) -> Result<Vec<Analysis>, ApiError> {
    let masked = with_attributes.max(with_quality).min(faces.len());
    let masks = if masked > 0 {
        p.masks_blocking(image, &faces[..masked])?
    } else {
        Vec::new()
    };
    faces
        .iter()
        .enumerate()
        .map(|(i, face)| {
            let mesh = p.mesh_blocking(image, face)?;
            let pose = attributes::head_pose(&mesh);
            let mask = masks.get(i).copied().flatten();
            let classes = if i < with_attributes {
                Some(p.classify_blocking(image, face)?)
            } else {
                None
            };
            let quality = if i < with_quality {
                Some(p.quality_blocking(image, face, &mesh, &pose, mask)?)
            } else {
                None
            };
            Ok(Analysis {
                mesh,
                pose,
                classes,
                mask,
                quality,
            })
        })
        .collect()
}

/// The quality of the largest face, refused by `QualityControl` (used by CompareFace and friends).
pub fn check_quality_blocking(
    p: &FacePipeline,
    image: &RgbImage,
    face: &Detection,
    level: u64,
) -> Result<(), ApiError> {
    if level == 0 {
        return Ok(());
    }
    let measured = analyse(p, image, std::slice::from_ref(face), 0, 1)?;
    let quality = measured[0].quality.as_ref().expect("quality was asked for");
    match quality::refusal(level, quality) {
        None => Ok(()),
        Some(why) => Err(ApiError::new(
            ErrorCode::FailedOperationFaceQualityNotQualified,
            format!("Face quality does not meet QualityControl {level}: {why}."),
        )),
    }
}

fn pose_degrees(value: f32, limit: f32) -> i64 {
    value.clamp(-limit, limit).round() as i64
}

fn eyes_open(mesh: &Mesh) -> (bool, f32) {
    let [left, right] = attributes::eye_openness(mesh);
    let narrowest = left.min(right);
    let open = narrowest >= attributes::EYE_CLOSED_BELOW;
    (
        open,
        attributes::confidence(narrowest, attributes::EYE_CLOSED_BELOW, 0.05),
    )
}

fn quality_info(q: &Quality) -> FaceQualityInfo {
    let c = &q.completeness;
    let int = |v: f32| Some(v.round().clamp(0.0, 100.0) as i64);
    FaceQualityInfo {
        score: int(q.score),
        sharpness: int(q.sharpness),
        brightness: int(q.brightness),
        completeness: Some(FaceQualityCompleteness {
            eyebrow: int(c.eyebrow),
            eye: int(c.eye),
            nose: int(c.nose),
            cheek: int(c.cheek),
            mouth: int(c.mouth),
            chin: int(c.chin),
        }),
    }
}

fn attributes_info(a: &Analysis) -> FaceAttributesInfo {
    let Some(classes) = &a.classes else {
        return FaceAttributesInfo::default();
    };
    FaceAttributesInfo {
        // Whole years, as Tencent answers.
        age: classes.age.round() as i64,
        // 0-100, below 50 female.
        gender: ((1.0 - classes.female_probability) * 100.0).round() as i64,
        // Expression 0 (neutral) to 100 (laugh): the emotion model's probability of "happy".
        expression: (classes.emotions[1] * 100.0).round() as i64,
        pitch: pose_degrees(a.pose.pitch, 30.0),
        yaw: pose_degrees(a.pose.yaw, 30.0),
        roll: pose_degrees(a.pose.roll, 180.0),
        mask: a.mask.map(|m| m >= YES),
        eye_open: Some(eyes_open(&a.mesh).0),
        // Not modelled (README): beauty, glasses, hat, hair.
        ..FaceAttributesInfo::default()
    }
}

fn face_info(face: &Detection, a: Option<&Analysis>) -> FaceInfo {
    FaceInfo {
        x: face.x.round() as i64,
        y: face.y.round() as i64,
        width: face.width.round() as i64,
        height: face.height.round() as i64,
        face_attributes_info: a.map(attributes_info).unwrap_or_default(),
        face_quality_info: a.and_then(|a| a.quality.as_ref()).map(quality_info),
    }
}

pub const MAX_DETECT_FACES: u64 = 120;

pub async fn detect_face(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: DetectFaceRequest,
) -> Result<DetectFaceResponse, ApiError> {
    let max_faces = check_max_faces(req.max_face_num, MAX_DETECT_FACES)?;
    let min_size = req.min_face_size.unwrap_or(DEFAULT_MIN_FACE_SIZE);
    let version = model_version(req.face_model_version.as_deref())?;
    let with_attributes = req.need_face_attributes == Some(1);
    let with_quality = req.need_quality_detection == Some(1);
    let rotate = req.need_rotate_detection == Some(1);
    let decoded = image_input(pipeline, downloader, req.image, req.url, rotate).await?;
    let (width, height) = decoded.image.dimensions();
    let face_infos = pipeline
        .run(move |p| -> Result<_, ApiError> {
            let found = detect(p, &decoded.image, max_faces > 1, rotate)?;
            let mut faces = faces_of_size(found, min_size)?;
            faces.truncate(max_faces as usize);
            if !with_attributes && !with_quality {
                return Ok(faces.iter().map(|f| face_info(f, None)).collect());
            }
            let attributes_for = if with_attributes { ATTRIBUTE_FACES } else { 0 };
            let quality_for = if with_quality { QUALITY_FACES } else { 0 };
            let analysed_count = attributes_for.max(quality_for).min(faces.len());
            let analysed = analyse(
                p,
                &decoded.image,
                &faces[..analysed_count],
                attributes_for,
                quality_for,
            )?;
            Ok(faces
                .iter()
                .enumerate()
                .map(|(i, f)| face_info(f, analysed.get(i)))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(DetectFaceResponse {
        image_width: width as i64,
        image_height: height as i64,
        face_infos,
        face_model_version: version.as_str().to_owned(),
    })
}

fn point(p: [f32; 2]) -> Point {
    Point {
        x: p[0].round() as i64,
        y: p[1].round() as i64,
    }
}

fn points(mesh: &Mesh, indices: &[usize]) -> Vec<Point> {
    indices.iter().map(|&i| point(mesh.xy(i))).collect()
}

fn face_shape(mesh: &Mesh) -> FaceShape {
    FaceShape {
        face_profile: points(mesh, &shape90::FACE_PROFILE),
        left_eye: points(mesh, &shape90::LEFT_EYE),
        right_eye: points(mesh, &shape90::RIGHT_EYE),
        left_eye_brow: points(mesh, &shape90::LEFT_EYEBROW),
        right_eye_brow: points(mesh, &shape90::RIGHT_EYEBROW),
        mouth: points(mesh, &shape90::MOUTH),
        nose: points(mesh, &shape90::NOSE),
        // The mesh has no iris points: a pupil is the centre of its eye's contour.
        left_pupil: vec![point(mesh.centre(&dense::LEFT_EYE))],
        right_pupil: vec![point(mesh.centre(&dense::RIGHT_EYE))],
    }
}

fn dense_shape(face: &Detection, mesh: &Mesh) -> DenseFaceShape {
    DenseFaceShape {
        x: face.x.round() as i64,
        y: face.y.round() as i64,
        width: face.width.round() as i64,
        height: face.height.round() as i64,
        left_eye: points(mesh, &dense::LEFT_EYE),
        right_eye: points(mesh, &dense::RIGHT_EYE),
        left_eye_brow: points(mesh, &dense::LEFT_EYEBROW),
        right_eye_brow: points(mesh, &dense::RIGHT_EYEBROW),
        mouth_outside: points(mesh, &dense::MOUTH_OUTSIDE),
        mouth_inside: points(mesh, &dense::MOUTH_INSIDE),
        nose: points(mesh, &dense::NOSE),
        left_pupil: vec![point(mesh.centre(&dense::LEFT_EYE))],
        right_pupil: vec![point(mesh.centre(&dense::RIGHT_EYE))],
        central_axis: points(mesh, &dense::CENTRAL_AXIS),
        chin: points(mesh, &dense::CHIN),
        left_eye_bags: points(mesh, &dense::LEFT_EYE_BAGS),
        right_eye_bags: points(mesh, &dense::RIGHT_EYE_BAGS),
        forehead: points(mesh, &dense::FOREHEAD),
    }
}

/// `Mode`: 0 (default) every face, 1 the largest only; anything else is refused.
fn faces_for_mode(mode: Option<u64>, max: usize) -> Result<usize, ApiError> {
    match mode.unwrap_or(0) {
        0 => Ok(max),
        1 => Ok(1),
        _ => Err(ApiError::new(
            ErrorCode::InvalidParameterInvalidParameter,
            "Mode must be 0 or 1.",
        )),
    }
}

/// The landmark actions' common part: the image (its long side checked when `limit_long_side`), and the
/// largest faces allowed by `Mode` (at most `max`) with their meshes. Returns (width, height, faces).
#[allow(clippy::too_many_arguments)]
async fn landmarks(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    image: Option<String>,
    url: Option<String>,
    mode: Option<u64>,
    max: usize,
    rotate: bool,
    limit_long_side: bool,
) -> Result<(u32, u32, Vec<(Detection, Mesh)>), ApiError> {
    let count = faces_for_mode(mode, max)?;
    let decoded = image_input(pipeline, downloader, image, url, rotate).await?;
    if limit_long_side {
        check_long_side(&decoded)?;
    }
    let (width, height) = decoded.image.dimensions();
    let found = pipeline
        .run(move |p| -> Result<_, ApiError> {
            let found = detect(p, &decoded.image, count > 1, rotate)?;
            let mut faces = faces_of_size(found, DEFAULT_MIN_FACE_SIZE)?;
            faces.truncate(count);
            faces
                .into_iter()
                .map(|face| {
                    let mesh = p.mesh_blocking(&decoded.image, &face)?;
                    Ok((face, mesh))
                })
                .collect()
        })
        .await?;
    Ok((width, height, found))
}

pub async fn analyze_face(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: AnalyzeFaceRequest,
) -> Result<AnalyzeFaceResponse, ApiError> {
    let version = model_version(req.face_model_version.as_deref())?;
    let rotate = req.need_rotate_detection == Some(1);
    let (width, height, found) = landmarks(
        pipeline,
        downloader,
        req.image,
        req.url,
        req.mode,
        ANALYZE_FACE_MAX,
        rotate,
        false,
    )
    .await?;
    Ok(AnalyzeFaceResponse {
        image_width: u64::from(width),
        image_height: u64::from(height),
        face_shape_set: found.iter().map(|(_, mesh)| face_shape(mesh)).collect(),
        face_model_version: version.as_str().to_owned(),
    })
}

/// AnalyzeDenseLandmarks and DetectFaceAttributes take model 3.0 only.
fn only_v3(requested: Option<&str>) -> Result<ModelVersion, ApiError> {
    match model_version(requested)? {
        ModelVersion::V3 => Ok(ModelVersion::V3),
        ModelVersion::V2 => Err(ApiError::new(
            ErrorCode::InvalidParameterValueFaceModelVersionIllegal,
            "This action supports FaceModelVersion 3.0 only.",
        )),
    }
}

/// Long side at most 4000 px for JPEG and 2000 px for other formats (AnalyzeDenseLandmarks,
/// DetectFaceAttributes).
fn check_long_side(decoded: &Decoded) -> Result<(), ApiError> {
    let limit = if decoded.format == ImageFormat::Jpeg {
        4000
    } else {
        2000
    };
    let long_side = decoded.image.width().max(decoded.image.height());
    if long_side > limit {
        return Err(ApiError::new(
            ErrorCode::FailedOperationImageResolutionExceed,
            format!(
                "The image's long side is {long_side} px; at most {limit} px are accepted here."
            ),
        ));
    }
    Ok(())
}

pub async fn analyze_dense_landmarks(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: AnalyzeDenseLandmarksRequest,
) -> Result<AnalyzeDenseLandmarksResponse, ApiError> {
    let version = only_v3(req.face_model_version.as_deref())?;
    let rotate = req.need_rotate_detection == Some(1);
    let (width, height, found) = landmarks(
        pipeline,
        downloader,
        req.image,
        req.url,
        req.mode,
        DENSE_FACE_MAX,
        rotate,
        true,
    )
    .await?;
    Ok(AnalyzeDenseLandmarksResponse {
        image_width: i64::from(width),
        image_height: i64::from(height),
        dense_face_shape_set: found
            .iter()
            .map(|(face, mesh)| dense_shape(face, mesh))
            .collect(),
        face_model_version: version.as_str().to_owned(),
    })
}

/// The attributes DetectFaceAttributes was asked for (`FaceAttributesType`, SPEC.md §7.4).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Wanted {
    age: bool,
    emotion: bool,
    eye: bool,
    gender: bool,
    headpose: bool,
    mask: bool,
    mouth: bool,
    smile: bool,
}

impl Wanted {
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        let mut wanted = Self::default();
        for name in text.unwrap_or("").split(',') {
            match name.trim().to_ascii_lowercase().as_str() {
                "age" => wanted.age = true,
                "emotion" => wanted.emotion = true,
                "eye" => wanted.eye = true,
                "gender" => wanted.gender = true,
                "headpose" => wanted.headpose = true,
                "mask" => wanted.mask = true,
                "mouth" => wanted.mouth = true,
                "smile" => wanted.smile = true,
                // Known but not modelled here: answered with zero values like unrequested ones.
                "" | "none" | "beauty" | "eyebrow" | "hair" | "hat" | "moustache" | "nose"
                | "shape" | "skin" => {}
                other => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParameterInvalidParameter,
                        format!("FaceAttributesType has an unknown attribute: {other}."),
                    ));
                }
            }
        }
        Ok(wanted)
    }

    fn any(&self) -> bool {
        *self != Self::default()
    }
}

fn item(kind: i64, probability: f32) -> AttributeItem {
    AttributeItem {
        r#type: kind,
        probability: (f64::from(probability) * 10000.0).round() / 10000.0,
    }
}

fn detail_attributes(a: Option<&Analysis>, wanted: Wanted) -> FaceDetailAttributesInfo {
    let mut info = FaceDetailAttributesInfo::default();
    let Some(a) = a else {
        return info;
    };
    if let Some(classes) = &a.classes {
        if wanted.age {
            info.age = classes.age.round() as i64;
        }
        if wanted.emotion {
            let (kind, p) =
                classes
                    .emotions
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::MIN),
                        |best, (i, &p)| if p > best.1 { (i, p) } else { best },
                    );
            info.emotion = item(kind as i64, p);
        }
        if wanted.gender {
            let female = classes.female_probability;
            info.gender = if female >= YES {
                item(1, female)
            } else {
                item(0, 1.0 - female)
            };
        }
        if wanted.smile {
            info.smile = (classes.emotions[1] * 100.0).round() as i64;
        }
    }
    if wanted.eye {
        let (open, sure) = eyes_open(&a.mesh);
        info.eye.eye_open = item(if open { 0 } else { 1 }, sure);
    }
    if wanted.headpose {
        info.head_pose = crate::api::model::HeadPose {
            pitch: pose_degrees(a.pose.pitch, 30.0),
            yaw: pose_degrees(a.pose.yaw, 30.0),
            roll: pose_degrees(a.pose.roll, 180.0),
        };
    }
    if wanted.mask
        && let Some(masked) = a.mask
    {
        // The detector tells masked from bare faces; a mask it sees covers nose and mouth (type 4).
        info.mask = if masked >= YES {
            item(4, masked)
        } else {
            item(0, 1.0 - masked)
        };
    }
    if wanted.mouth {
        let openness = attributes::mouth_openness(&a.mesh);
        let open = openness > attributes::MOUTH_OPEN_ABOVE;
        info.mouth.mouth_open = item(
            i64::from(open),
            attributes::confidence(openness, attributes::MOUTH_OPEN_ABOVE, 0.05),
        );
    }
    info
}

pub async fn detect_face_attributes(
    pipeline: &Arc<FacePipeline>,
    downloader: &Downloader,
    req: DetectFaceAttributesRequest,
) -> Result<DetectFaceAttributesResponse, ApiError> {
    let max_faces = check_max_faces(req.max_face_num, MAX_DETECT_FACES)?;
    let wanted = Wanted::parse(req.face_attributes_type.as_deref())?;
    let version = only_v3(req.face_model_version.as_deref())?;
    let rotate = req.need_rotate_detection == Some(1);
    let decoded = image_input(pipeline, downloader, req.image, req.url, rotate).await?;
    check_long_side(&decoded)?;
    let (width, height) = decoded.image.dimensions();
    let infos = pipeline
        .run(move |p| -> Result<_, ApiError> {
            let found = detect(p, &decoded.image, max_faces > 1, rotate)?;
            let mut faces = faces_of_size(found, DEFAULT_MIN_FACE_SIZE)?;
            faces.truncate(max_faces as usize);
            let analysed = if wanted.any() {
                let count = ATTRIBUTE_FACES.min(faces.len());
                analyse(p, &decoded.image, &faces[..count], count, 0)?
            } else {
                Vec::new()
            };
            Ok(faces
                .iter()
                .enumerate()
                .map(|(i, face)| FaceDetailInfo {
                    face_rect: face_rect(face),
                    face_detail_attributes_info: detail_attributes(analysed.get(i), wanted),
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(DetectFaceAttributesResponse {
        image_width: u64::from(width),
        image_height: u64::from(height),
        face_detail_infos: infos,
        face_model_version: version.as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_types_parse_case_insensitively_and_refuse_unknown_names() {
        let wanted = Wanted::parse(Some("Gender, EMOTION,headpose,age")).unwrap();
        assert!(wanted.gender && wanted.emotion && wanted.headpose && wanted.age && !wanted.mask);
        assert!(!Wanted::parse(None).unwrap().any());
        assert!(!Wanted::parse(Some("None")).unwrap().any());
        assert!(Wanted::parse(Some("gender,wings")).is_err());
    }

    #[test]
    fn mode_picks_all_or_the_largest_face() {
        assert_eq!(faces_for_mode(None, 10).unwrap(), 10);
        assert_eq!(faces_for_mode(Some(1), 10).unwrap(), 1);
        assert!(faces_for_mode(Some(2), 10).is_err());
    }
}
