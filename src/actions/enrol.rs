//! Enrolment, shared by CreatePerson and CreateFace: detect the largest face, check its quality, embed it
//! with every network the person's groups need, keep its crop; and what a person's new faces must be
//! compared with (its groups' version and serving network).

use std::sync::Arc;

use super::analysis::check_quality_blocking;
use super::images::{DEFAULT_MIN_FACE_SIZE, detect, face_rect, faces_of_size};
use super::rules;
use crate::api::ApiError;
use crate::face::detect::Detection;
use crate::face::embed::Recognition;
use crate::face::{FacePipeline, ModelVersion};
use crate::store::Store;
use crate::store::persons::NewFace;

/// A new random FaceId: a decimal string of 19 digits, as Tencent's look.
pub(super) fn new_face_id() -> (u64, String) {
    let n = 1_000_000_000_000_000_000
        + (uuid::Uuid::new_v4().as_u128() % 8_000_000_000_000_000_000) as u64;
    (n, n.to_string())
}

/// One enrolled face, ready for the store and the index.
pub(super) struct Enrolment {
    pub(super) face: Detection,
    pub(super) row: NewFace,
}

impl Enrolment {
    /// The face's embedding by one network.
    pub(super) fn vector(&self, model: &Recognition) -> Option<&Vec<f32>> {
        self.row
            .vectors
            .iter()
            .find(|(m, _)| m == model.file)
            .map(|(_, v)| v)
    }
}

/// Detect the largest face, check its quality, embed it with each network its groups need and keep its crop.
pub(super) fn enrol_blocking(
    p: &FacePipeline,
    image: &image::RgbImage,
    models: &[&'static Recognition],
    quality_control: u64,
    rotate: bool,
) -> Result<Enrolment, ApiError> {
    let found = detect(p, image, false, rotate)?;
    let face = faces_of_size(found, DEFAULT_MIN_FACE_SIZE)?.remove(0);
    check_quality_blocking(p, image, &face, quality_control)?;
    let mut vectors = Vec::with_capacity(models.len());
    for model in models {
        vectors.push((
            model.file.to_owned(),
            p.embed_with(image, &face.landmarks, model)?,
        ));
    }
    let (crop_png, landmarks) = p.keepsake_blocking(image, &face)?;
    let (_, face_id) = new_face_id();
    let rect = face_rect(&face);
    Ok(Enrolment {
        row: NewFace {
            face_id,
            rect: [rect.x, rect.y, rect.width as i64, rect.height as i64],
            crop_png,
            landmarks,
            quality: None,
            vectors,
        },
        face,
    })
}

/// The networks named (model files), known to this server; a retired one it cannot load is left out.
pub(super) fn networks(files: &[String]) -> Vec<&'static Recognition> {
    files
        .iter()
        .filter_map(|f| Recognition::by_file(f))
        .collect()
}

pub(super) fn version_of(text: &str) -> ModelVersion {
    ModelVersion::parse(text).unwrap_or(ModelVersion::V3)
}

/// The score a UniquePersonControl level refuses at or above (nominal false-accept rates 1e-2 .. 1e-5;
/// 1e-3 .. 1e-5 are the calibration's knots, 1e-2 is set 10 points below 1e-3).
pub(super) fn unique_person_score(version: ModelVersion, level: u64) -> f32 {
    let base = match version {
        ModelVersion::V3 => 30.0,
        ModelVersion::V2 => 60.0,
    };
    base + 10.0 * (level.saturating_sub(1)) as f32
}

/// What new faces of a person need: the version and network of its first group (for scores), every
/// network its groups serve or move to (for the embeddings), and its face count; `PersonIdNotExist`
/// for an unknown person.
pub(super) async fn person_networks(
    store: &Store,
    person_id: &str,
) -> Result<PersonNetworks, ApiError> {
    let found = store.face_networks(person_id.to_owned()).await?;
    let (version, serving) = found.first.unwrap_or_else(|| {
        let version = rules::DEFAULT_FACE_MODEL_VERSION.to_owned();
        let model = Recognition::current(version_of(&version)).file.to_owned();
        (version, model)
    });
    let version = version_of(&version);
    let serving = Recognition::by_file(&serving).unwrap_or_else(|| Recognition::current(version));
    // A second read: these only compare new faces with the person's (the write checks again).
    let existing = store
        .person_embeddings(person_id.to_owned(), serving.file.to_owned())
        .await?;
    Ok(PersonNetworks {
        version,
        serving,
        needed: networks(&found.needed),
        existing,
        faces: found.faces,
    })
}

/// Give the person's faces an embedding by `model` where they lack one, from their stored crops. A
/// crop the network finds nothing in is recorded as a failure (the face is kept).
pub(super) async fn embed_stored(
    store: &Store,
    pipeline: &Arc<FacePipeline>,
    person_id: &str,
    model: &'static Recognition,
) -> Result<(), ApiError> {
    let crops = store
        .crops_without_embedding(person_id.to_owned(), model.file.to_owned())
        .await?;
    if crops.is_empty() {
        return Ok(());
    }
    let embedded = pipeline
        .run(move |p| -> Result<_, ApiError> {
            Ok(crops
                .into_iter()
                .map(|c| {
                    let v = p.embed_stored_blocking(&c.crop_png, &c.landmarks, model);
                    (c.face_id, v.map_err(|e| e.to_string()))
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(store
        .save_crop_embeddings(model.file.to_owned(), embedded)
        .await?)
}

/// What `person_networks` reads.
pub(super) struct PersonNetworks {
    pub(super) version: ModelVersion,
    pub(super) serving: &'static Recognition,
    pub(super) needed: Vec<&'static Recognition>,
    pub(super) existing: Vec<(String, Vec<f32>)>,
    pub(super) faces: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_ids_are_19_digit_decimals_and_unique_person_levels_are_ten_points_apart() {
        let (n, text) = new_face_id();
        assert_eq!(text.len(), 19);
        assert_eq!(text.parse::<u64>().unwrap(), n);
        assert!(unique_person_score(ModelVersion::V3, 4) == 60.0);
    }
}
