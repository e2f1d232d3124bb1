//! Person and face actions (SPEC.md §7.1, §7.8): CreatePerson, CreateFace, DeleteFace, DeletePerson,
//! DeletePersonFromGroup, CopyPerson, GetPersonList, GetPersonBaseInfo, GetPersonGroupInfo,
//! ModifyPersonBaseInfo, ModifyPersonGroupInfo. A person is global and shared by its groups, which all have
//! one model version; its faces carry an embedding of that version. Every write commits to SQLite, then the
//! index follows (`Store::write_then`).

use std::collections::HashSet;
use std::sync::Arc;

use super::analysis::check_quality_blocking;
use super::faces::{
    DEFAULT_MIN_FACE_SIZE, check_quality_control, detect, face_rect, faces_of_size, image_input,
};
use super::rules::{self, Page};
use super::search::scan_failed;
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, GroupCheck};
use crate::face::detect::Detection;
use crate::face::download::Downloader;
use crate::face::embed::Recognition;
use crate::face::embed::cosine;
use crate::face::score::Calibration;
use crate::face::{FacePipeline, ModelVersion};
use crate::index::{Change, FaceVectors, Indexes, Scanner};
use crate::store::persons::{self as rows, NewFace};
use crate::store::vectors;
use crate::store::{Store, groups, now_ms};

pub const MAX_FACES_PER_PERSON: usize = 5;
pub const MAX_IMAGES_PER_CALL: usize = 4;
pub const MAX_GROUPS_PER_PERSON: usize = 100;
/// Faces per group: 1,000,000 for model 2.0, 3,000,000 for 3.0 (SPEC.md §7.1).
fn max_group_faces(version: ModelVersion) -> u64 {
    match version {
        ModelVersion::V2 => 1_000_000,
        ModelVersion::V3 => 3_000_000,
    }
}

pub struct Persons<'a> {
    pub store: &'a Store,
    pub indexes: &'a Arc<Indexes>,
    pub scanner: &'a Scanner,
    pub faces: &'a Arc<FacePipeline>,
    pub downloader: &'a Downloader,
}

pub fn check_person_id(id: &str) -> Result<(), ApiError> {
    rules::check_id(
        id,
        ErrorCode::InvalidParameterValuePersonIdTooLong,
        ErrorCode::InvalidParameterValuePersonIdIllegal,
    )
}

fn check_person_name(name: &str) -> Result<(), ApiError> {
    rules::check_text(
        name,
        1,
        60,
        ErrorCode::InvalidParameterValuePersonNameTooLong,
        ErrorCode::InvalidParameterValuePersonNameIllegal,
    )
}

/// Person gender: 0 unset, 1 male, 2 female.
fn check_gender(gender: Option<i64>) -> Result<i64, ApiError> {
    match gender.unwrap_or(0) {
        g @ 0..=2 => Ok(g),
        _ => Err(ApiError::code(
            ErrorCode::InvalidParameterValuePersonGenderIllegal,
        )),
    }
}

/// Apply `PersonExDescriptionInfos` to a person's values in a group with `field_count` custom fields.
fn apply_ex_values(
    values: &mut Vec<Option<String>>,
    infos: &[PersonExDescriptionInfo],
    field_count: usize,
) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for info in infos {
        let index = info.person_ex_description_index as usize;
        if index >= field_count {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValuePersonExDescriptionInfosExceed,
                format!("The group has {field_count} custom fields; index {index} does not exist."),
            ));
        }
        if !seen.insert(index) {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValuePersonExDescriptionsNameIdentical,
            ));
        }
        rules::check_text(
            &info.person_ex_description,
            0,
            60,
            ErrorCode::InvalidParameterValuePersonExDescriptionsNameTooLong,
            ErrorCode::InvalidParameterValuePersonExDescriptionsNameIllegal,
        )?;
        if values.len() < field_count {
            values.resize(field_count, None);
        }
        values[index] = Some(info.person_ex_description.clone());
    }
    Ok(())
}

/// The values as Tencent lists them: one string per custom field of the group, "" when unset.
pub(super) fn listed_values(values: &[Option<String>], field_count: usize) -> Vec<String> {
    (0..field_count)
        .map(|i| values.get(i).cloned().flatten().unwrap_or_default())
        .collect()
}

/// A new random FaceId: a decimal string of 19 digits, as Tencent's look.
fn new_face_id() -> (u64, String) {
    let n = 1_000_000_000_000_000_000
        + (uuid::Uuid::new_v4().as_u128() % 8_000_000_000_000_000_000) as u64;
    (n, n.to_string())
}

/// One enrolled face, ready for the store and the index.
struct Enrolment {
    face: Detection,
    key: u64,
    row: NewFace,
}

impl Enrolment {
    /// The face's embedding by one network.
    fn vector(&self, model: &Recognition) -> Option<&Vec<f32>> {
        self.row
            .vectors
            .iter()
            .find(|(m, _)| m == model.file)
            .map(|(_, v)| v)
    }
}

/// Detect the largest face, check its quality, embed it with each network its groups need and keep its crop.
fn enrol_blocking(
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
    let (key, face_id) = new_face_id();
    let rect = face_rect(&face);
    Ok(Enrolment {
        key,
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
fn networks(files: &[String]) -> Vec<&'static Recognition> {
    files
        .iter()
        .filter_map(|f| Recognition::by_file(f))
        .collect()
}

fn version_of(text: &str) -> ModelVersion {
    ModelVersion::parse(text).unwrap_or(ModelVersion::V3)
}

/// The score a UniquePersonControl level refuses at or above (nominal false-accept rates 1e-2 .. 1e-5;
/// 1e-3 .. 1e-5 are the calibration's knots, 1e-2 is set 10 points below 1e-3).
fn unique_person_score(version: ModelVersion, level: u64) -> f32 {
    let base = match version {
        ModelVersion::V3 => 30.0,
        ModelVersion::V2 => 60.0,
    };
    base + 10.0 * (level.saturating_sub(1)) as f32
}

impl Persons<'_> {
    pub async fn create_person(
        &self,
        req: CreatePersonRequest,
    ) -> Result<CreatePersonResponse, ApiError> {
        rules::check_group_id(&req.group_id)?;
        check_person_id(&req.person_id)?;
        check_person_name(&req.person_name)?;
        let gender = check_gender(req.gender)?;
        let quality_control = check_quality_control(req.quality_control)?;
        let unique = req.unique_person_control.unwrap_or(0);
        if unique > 4 {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueUniquePersonControlIllegal,
            ));
        }
        let group_id = req.group_id.clone();
        let group = self
            .store
            .read(move |conn| Ok::<_, ApiError>(groups::get(conn, &group_id)?))
            .await?;
        let mut values = Vec::new();
        apply_ex_values(
            &mut values,
            req.person_ex_description_infos
                .as_deref()
                .unwrap_or_default(),
            group.ex_descriptions.len(),
        )?;
        let person_id = req.person_id.clone();
        if self
            .store
            .read(move |conn| Ok::<_, ApiError>(rows::find(conn, &person_id)?))
            .await?
            .is_some()
        {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValuePersonIdAlreadyExist,
            ));
        }
        let version = version_of(&group.face_model_version);
        // The network the group serves, and the one it is moving to, if any.
        let mut files = vec![group.serving_model.clone()];
        files.extend(group.target.as_ref().map(|t| t.model.clone()));
        let models = networks(&files);
        let rotate = req.need_rotate_detection == Some(1);
        let decoded = image_input(self.faces, self.downloader, req.image, req.url, rotate).await?;
        let enrolled = self
            .faces
            .run(move |p| enrol_blocking(p, &decoded.image, &models, quality_control, rotate))
            .await?;
        let index = self.indexes.group(&req.group_id);
        if unique > 0
            && let Some(index) = &index
            && let Some(query) = enrolled.vector(index.model)
        {
            let threshold = unique_person_score(version, unique);
            let calibration = Calibration::new(index.model, version);
            let persons = index.person_count();
            let (index, query) = (index.clone(), query.clone());
            let best = self
                .scanner
                .run(persons, move || index.read().search_persons(&query, 1))
                .await
                .map_err(scan_failed)?;
            if let Some((similar, cos)) = best.first()
                && calibration.score(*cos) >= threshold
            {
                return Ok(CreatePersonResponse {
                    face_id: String::new(),
                    face_rect: Some(face_rect(&enrolled.face)),
                    similar_person_id: similar.to_string(),
                    face_model_version: version.as_str().to_owned(),
                });
            }
        }
        let Enrolment { face, key, row } = enrolled;
        let face_id = row.face_id.clone();
        let (group_id, person_id, name) =
            (req.group_id.clone(), req.person_id.clone(), req.person_name);
        let indexes = self.indexes.clone();
        let created = group.created_ms;
        let (_, version) = self
            .store
            .write_then(
                move |tx| {
                    // Everything below is read inside the transaction: the group may have been deleted or
                    // recreated while the face was being embedded. An upgrade that switched the group
                    // meanwhile is fine: the face was embedded by the network it moved to as well.
                    let group = groups::get(tx, &group_id)?;
                    if group.created_ms != created
                        || !row.vectors.iter().any(|(m, _)| *m == group.serving_model)
                    {
                        return Err(changed_meanwhile());
                    }
                    let version = version_of(&group.face_model_version);
                    // Under the write lock the index holds exactly the committed faces: no count query.
                    let faces = indexes
                        .group(&group_id)
                        .map_or(0, |group| group.face_count())
                        as u64;
                    if faces >= max_group_faces(version) {
                        return Err(ApiError::code(
                            ErrorCode::InvalidParameterValueGroupFaceNumExceed,
                        ));
                    }
                    let now = now_ms();
                    rows::insert(tx, &person_id, &name, gender, now)?;
                    rows::add_member(tx, &group_id, &person_id, &values, now)?;
                    rows::insert_face(tx, &person_id, &row, now)?;
                    let change = Change::AddFaces {
                        group_ids: vec![group_id],
                        person_id,
                        faces: vec![(key, row.vectors)],
                    };
                    Ok((change, version))
                },
                {
                    let indexes = self.indexes.clone();
                    move |(change, _): &(Change, ModelVersion)| indexes.apply(change)
                },
            )
            .await?;
        Ok(CreatePersonResponse {
            face_id,
            face_rect: Some(face_rect(&face)),
            similar_person_id: String::new(),
            face_model_version: version.as_str().to_owned(),
        })
    }

    /// What new faces of a person need: the version and network of its first group (for scores), every
    /// network its groups serve or move to (for the embeddings), and its face count; `PersonIdNotExist`
    /// for an unknown person.
    async fn person_networks(&self, person_id: &str) -> Result<PersonNetworks, ApiError> {
        let person_id = person_id.to_owned();
        self.store
            .read(move |conn| {
                rows::get(conn, &person_id)?;
                let (version, serving) = rows::serving(conn, &person_id)?.unwrap_or_else(|| {
                    let version = rules::DEFAULT_FACE_MODEL_VERSION.to_owned();
                    let model = Recognition::current(version_of(&version)).file.to_owned();
                    (version, model)
                });
                let version = version_of(&version);
                let serving =
                    Recognition::by_file(&serving).unwrap_or_else(|| Recognition::current(version));
                Ok::<_, ApiError>(PersonNetworks {
                    version,
                    serving,
                    needed: networks(&rows::needed_models(conn, &person_id)?.all),
                    existing: rows::embeddings(conn, &person_id, serving.file)?,
                    faces: rows::face_ids(conn, &person_id)?.len(),
                })
            })
            .await
    }

    /// Give the person's faces an embedding by `model` where they lack one, from their stored crops. A
    /// crop the network finds nothing in is recorded as a failure (the face is kept).
    async fn embed_stored(
        &self,
        person_id: &str,
        model: &'static Recognition,
    ) -> Result<(), ApiError> {
        let person = person_id.to_owned();
        let crops = self
            .store
            .read(move |conn| Ok::<_, ApiError>(rows::crops_missing(conn, &person, model.file)?))
            .await?;
        if crops.is_empty() {
            return Ok(());
        }
        let embedded = self
            .faces
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
        self.store
            .write(move |tx| {
                Ok::<_, ApiError>(vectors::save_embedded(tx, model.file, &embedded, now_ms())?)
            })
            .await
    }

    pub async fn create_face(
        &self,
        req: CreateFaceRequest,
    ) -> Result<CreateFaceResponse, ApiError> {
        check_person_id(&req.person_id)?;
        let quality_control = check_quality_control(req.quality_control)?;
        let threshold = req.face_match_threshold.unwrap_or(60.0);
        if !(0.0..=100.0).contains(&threshold) {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueFaceMatchThresholdIllegal,
            ));
        }
        // Urls win over Images when both are given.
        let urls = req.urls.unwrap_or_default();
        let inputs: Vec<(Option<String>, Option<String>)> = if urls.is_empty() {
            req.images
                .unwrap_or_default()
                .into_iter()
                .map(|i| (Some(i), None))
                .collect()
        } else {
            urls.into_iter().map(|u| (None, Some(u))).collect()
        };
        if inputs.is_empty() {
            return Err(ApiError::code(ErrorCode::InvalidParameterValueImageEmpty));
        }
        if inputs.len() > MAX_IMAGES_PER_CALL {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueUploadFaceNumExceed,
                format!("At most {MAX_IMAGES_PER_CALL} images per call."),
            ));
        }
        // The groups the faces join are read when they are stored, not here.
        let PersonNetworks {
            version,
            serving,
            needed,
            existing,
            faces,
        } = self.person_networks(&req.person_id).await?;
        if faces + inputs.len() > MAX_FACES_PER_PERSON {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValuePersonFaceNumExceed,
                format!("A person holds at most {MAX_FACES_PER_PERSON} faces; it has {faces}."),
            ));
        }
        let rotate = req.need_rotate_detection == Some(1);
        let calibration = Calibration::new(serving, version);
        let mut ret_codes = Vec::new();
        let mut enrolled = Vec::new();
        for (index, (image, url)) in inputs.into_iter().enumerate() {
            let outcome = match image_input(self.faces, self.downloader, image, url, rotate).await {
                Ok(decoded) => {
                    let needed = needed.clone();
                    self.faces
                        .run(move |p| -> Result<_, ApiError> {
                            enrol_blocking(p, &decoded.image, &needed, quality_control, rotate)
                        })
                        .await
                }
                Err(e) => Err(e),
            };
            let code = match outcome {
                Ok(e) => {
                    let best = match e.vector(serving) {
                        Some(new) => existing
                            .iter()
                            .map(|(_, v)| calibration.score(cosine(v, new)))
                            .fold(f32::MIN, f32::max),
                        None => f32::MAX,
                    };
                    if !existing.is_empty() && f64::from(best) < threshold {
                        -1604
                    } else {
                        enrolled.push((index as u64, e));
                        0
                    }
                }
                Err(e) => ret_code(e.code),
            };
            ret_codes.push(code);
        }
        let response = CreateFaceResponse {
            suc_face_num: enrolled.len() as u64,
            suc_face_ids: enrolled
                .iter()
                .map(|(_, e)| e.row.face_id.clone())
                .collect(),
            ret_code: ret_codes,
            suc_indexes: enrolled.iter().map(|(i, _)| *i).collect(),
            suc_face_rects: enrolled.iter().map(|(_, e)| face_rect(&e.face)).collect(),
            face_model_version: version.as_str().to_owned(),
        };
        if enrolled.is_empty() {
            return Ok(response);
        }
        let faces: Vec<(u64, FaceVectors)> = enrolled
            .iter()
            .map(|(_, e)| (e.key, e.row.vectors.clone()))
            .collect();
        let computed: Vec<String> = needed.iter().map(|m| m.file.to_owned()).collect();
        let rows_to_add: Vec<NewFace> = enrolled.into_iter().map(|(_, e)| e.row).collect();
        let (person_id, indexes) = (req.person_id, self.indexes.clone());
        self.store
            .write_then(
                move |tx| {
                    // The person's groups are read here, in the transaction that adds the faces: they may
                    // have changed while the images were being processed (the index must get the faces
                    // in exactly the groups the database puts them in).
                    rows::get(tx, &person_id)?;
                    // Every network a group of the person serves must have an embedding of the new faces
                    // (networks groups are moving to are filled in by the move if missing).
                    let serving = rows::needed_models(tx, &person_id)?.serving;
                    if serving.iter().any(|m| !computed.contains(m)) {
                        return Err(changed_meanwhile());
                    }
                    let have = rows::face_ids(tx, &person_id)?.len();
                    if have + rows_to_add.len() > MAX_FACES_PER_PERSON {
                        return Err(ApiError::code(
                            ErrorCode::InvalidParameterValuePersonFaceNumExceed,
                        ));
                    }
                    let now = now_ms();
                    for row in &rows_to_add {
                        rows::insert_face(tx, &person_id, row, now)?;
                    }
                    Ok(Change::AddFaces {
                        group_ids: rows::group_ids(tx, &person_id)?,
                        person_id,
                        faces,
                    })
                },
                move |change| indexes.apply(change),
            )
            .await?;
        Ok(response)
    }

    pub async fn delete_face(
        &self,
        req: DeleteFaceRequest,
    ) -> Result<DeleteFaceResponse, ApiError> {
        check_person_id(&req.person_id)?;
        if req.face_ids.is_empty() || req.face_ids.len() > MAX_FACES_PER_PERSON {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueDeleteFaceNumExceed,
            ));
        }
        let person_id = req.person_id.clone();
        let wanted = req.face_ids;
        let indexes = self.indexes.clone();
        let deleted = self
            .store
            .write_then(
                move |tx| {
                    rows::get(tx, &person_id)?;
                    let have = rows::face_ids(tx, &person_id)?;
                    let gone: Vec<String> = have
                        .iter()
                        .filter(|f| wanted.contains(f))
                        .cloned()
                        .collect();
                    if !gone.is_empty() && gone.len() >= have.len() {
                        return Err(ApiError::new(
                            ErrorCode::InvalidParameterValueDeleteFaceNumExceed,
                            "A person keeps at least one face.",
                        ));
                    }
                    for face in &gone {
                        rows::delete_face(tx, &person_id, face)?;
                    }
                    let change = Change::RemoveFaces {
                        group_ids: rows::group_ids(tx, &person_id)?,
                        faces: gone.iter().filter_map(|f| f.parse().ok()).collect(),
                    };
                    Ok((gone, change))
                },
                move |(_, change)| indexes.apply(change),
            )
            .await?
            .0;
        Ok(DeleteFaceResponse {
            suc_deleted_num: deleted.len() as u64,
            suc_face_ids: deleted,
        })
    }

    pub async fn delete_person(
        &self,
        req: DeletePersonRequest,
    ) -> Result<DeletePersonResponse, ApiError> {
        check_person_id(&req.person_id)?;
        let person_id = req.person_id.clone();
        let indexes = self.indexes.clone();
        self.store
            .write_then(
                move |tx| {
                    rows::get(tx, &person_id)?;
                    let group_ids = rows::group_ids(tx, &person_id)?;
                    rows::delete(tx, &person_id)?;
                    Ok::<_, ApiError>(Change::RemovePerson {
                        group_ids,
                        person_id,
                    })
                },
                move |change| indexes.apply(change),
            )
            .await?;
        Ok(DeletePersonResponse {})
    }

    pub async fn delete_person_from_group(
        &self,
        req: DeletePersonFromGroupRequest,
    ) -> Result<DeletePersonFromGroupResponse, ApiError> {
        check_person_id(&req.person_id)?;
        rules::check_group_id(&req.group_id)?;
        let (person_id, group_id) = (req.person_id, req.group_id);
        let indexes = self.indexes.clone();
        self.store
            .write_then(
                move |tx| {
                    groups::get(tx, &group_id)?;
                    rows::get(tx, &person_id)?;
                    if !rows::remove_member(tx, &group_id, &person_id)? {
                        return Err(ApiError::code(
                            ErrorCode::FailedOperationGroupPersonMapNotExist,
                        ));
                    }
                    // A person without groups does not exist.
                    if rows::model_version(tx, &person_id)?.is_none() {
                        rows::delete(tx, &person_id)?;
                    }
                    Ok(Change::RemovePerson {
                        group_ids: vec![group_id],
                        person_id,
                    })
                },
                move |change| indexes.apply(change),
            )
            .await?;
        Ok(DeletePersonFromGroupResponse {})
    }

    /// `existing`: under a sub-user's policy, the caller must be allowed to act on every group the person
    /// is already in, not only on the targets (else a copy would lift a person out of a group it cannot
    /// see). Checked before any work, and again on what the writing transaction reads.
    pub async fn copy_person(
        &self,
        req: CopyPersonRequest,
        existing: Option<GroupCheck>,
    ) -> Result<CopyPersonResponse, ApiError> {
        check_person_id(&req.person_id)?;
        if req.group_ids.is_empty() || req.group_ids.len() > MAX_GROUPS_PER_PERSON {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueGroupIdsExceed,
            ));
        }
        for g in &req.group_ids {
            rules::check_group_id(g)?;
        }
        let (person_id, targets) = (req.person_id, req.group_ids);
        // The networks the target groups serve or move to: the person's faces need embeddings by them, made
        // from the stored crops where missing (a person enrolled before a network change has none yet).
        let wanted = {
            let targets = targets.clone();
            let (person_id, existing) = (person_id.clone(), existing.clone());
            self.store
                .read(move |conn| {
                    if let Some(check) = &existing {
                        for (group_id, _) in rows::groups_of(conn, &person_id)? {
                            check.check(&group_id)?;
                        }
                    }
                    let mut files = Vec::new();
                    for group_id in &targets {
                        let group = groups::get(conn, group_id)?;
                        files.push(group.serving_model);
                        files.extend(group.target.map(|t| t.model));
                    }
                    Ok::<_, ApiError>(files)
                })
                .await?
        };
        for model in networks(&wanted) {
            self.embed_stored(&person_id, model).await?;
        }
        let indexes = self.indexes.clone();
        let added = self
            .store
            .write_then(
                move |tx| {
                    rows::get(tx, &person_id)?;
                    let current = rows::groups_of(tx, &person_id)?;
                    if let Some(check) = &existing {
                        for (group_id, _) in &current {
                            check.check(group_id)?;
                        }
                    }
                    let mut versions = Vec::new();
                    for (group_id, _) in &current {
                        versions.push(groups::get(tx, group_id)?.face_model_version);
                    }
                    let mut added = Vec::new();
                    let mut models: Vec<String> = Vec::new();
                    let now = now_ms();
                    for group_id in &targets {
                        let group = groups::get(tx, group_id)?;
                        if !versions.contains(&group.face_model_version) {
                            return Err(ApiError::new(
                                ErrorCode::FailedOperationAcrossVersionsError,
                                format!(
                                    "The person's groups use model {}; group {group_id} uses {}.",
                                    versions.join(", "),
                                    group.face_model_version
                                ),
                            ));
                        }
                        if current.iter().any(|(g, _)| g == group_id) || added.contains(group_id) {
                            continue;
                        }
                        if current.len() + added.len() >= MAX_GROUPS_PER_PERSON {
                            return Err(ApiError::code(
                                ErrorCode::InvalidParameterValueGroupNumPerPersonExceed,
                            ));
                        }
                        rows::add_member(tx, group_id, &person_id, &[], now)?;
                        added.push(group_id.clone());
                        if !models.contains(&group.serving_model) {
                            models.push(group.serving_model);
                        }
                    }
                    // Each face's embeddings by the networks the new groups serve, as the index takes them.
                    let face_ids = rows::face_ids(tx, &person_id)?;
                    let mut faces: Vec<(u64, FaceVectors)> = face_ids
                        .iter()
                        .filter_map(|id| Some((id.parse().ok()?, Vec::new())))
                        .collect();
                    for model in &models {
                        let stored = rows::embeddings(tx, &person_id, model)?;
                        // A face the network could not embed (recorded failure) stays out of this
                        // group's index, as at start-up; any other face without one came in meanwhile.
                        let failed = vectors::failed_of_person(tx, &person_id, model)?;
                        if stored.len() + failed < face_ids.len() {
                            return Err(changed_meanwhile());
                        }
                        for (id, vector) in stored {
                            if let Some((_, vectors)) =
                                faces.iter_mut().find(|(key, _)| key.to_string() == id)
                            {
                                vectors.push((model.clone(), vector));
                            }
                        }
                    }
                    let change = Change::AddFaces {
                        group_ids: added.clone(),
                        person_id,
                        faces,
                    };
                    Ok::<_, ApiError>((added, change))
                },
                move |(_, change)| indexes.apply(change),
            )
            .await?
            .0;
        Ok(CopyPersonResponse {
            suc_group_num: added.len() as u64,
            suc_group_ids: added,
        })
    }

    pub async fn get_person_list(
        &self,
        req: GetPersonListRequest,
    ) -> Result<GetPersonListResponse, ApiError> {
        rules::check_group_id(&req.group_id)?;
        self.store
            .read(move |conn| {
                let group = groups::get(conn, &req.group_id)?;
                let (persons, faces) = groups::counts(conn, &req.group_id)?;
                let page = Page::new(req.offset, req.limit, 1000, persons)?;
                let fields = group.ex_descriptions.len();
                let mut infos = Vec::new();
                for (person, values) in rows::members(conn, &req.group_id, page.offset, page.limit)?
                {
                    infos.push(PersonInfo {
                        face_ids: rows::face_ids(conn, &person.person_id)?,
                        person_name: person.name,
                        person_id: person.person_id,
                        gender: person.gender,
                        person_ex_descriptions: listed_values(&values, fields),
                        creation_timestamp: person.created_ms.max(0) as u64,
                    });
                }
                Ok::<_, ApiError>(GetPersonListResponse {
                    person_infos: infos,
                    person_num: Some(persons),
                    face_num: Some(faces),
                    face_model_version: Some(group.face_model_version),
                })
            })
            .await
    }

    pub async fn get_person_base_info(
        &self,
        req: GetPersonBaseInfoRequest,
    ) -> Result<GetPersonBaseInfoResponse, ApiError> {
        check_person_id(&req.person_id)?;
        self.store
            .read(move |conn| {
                let person = rows::get(conn, &req.person_id)?;
                Ok::<_, ApiError>(GetPersonBaseInfoResponse {
                    person_name: person.name,
                    gender: person.gender,
                    face_ids: rows::face_ids(conn, &req.person_id)?,
                })
            })
            .await
    }

    pub async fn get_person_group_info(
        &self,
        req: GetPersonGroupInfoRequest,
    ) -> Result<GetPersonGroupInfoResponse, ApiError> {
        check_person_id(&req.person_id)?;
        self.store
            .read(move |conn| {
                rows::get(conn, &req.person_id)?;
                let all = rows::groups_of(conn, &req.person_id)?;
                let page = Page::new(req.offset, req.limit, 100, all.len() as u64)?;
                let mut version = None;
                let mut infos = Vec::new();
                for (group_id, values) in all
                    .iter()
                    .skip(page.offset as usize)
                    .take(page.limit as usize)
                {
                    let group = groups::get(conn, group_id)?;
                    version.get_or_insert(group.face_model_version.clone());
                    infos.push(PersonGroupInfo {
                        group_id: group_id.clone(),
                        person_ex_descriptions: listed_values(values, group.ex_descriptions.len()),
                    });
                }
                if version.is_none()
                    && let Some((first, _)) = all.first()
                {
                    version = Some(groups::get(conn, first)?.face_model_version);
                }
                Ok::<_, ApiError>(GetPersonGroupInfoResponse {
                    person_group_infos: infos,
                    group_num: Some(all.len() as u64),
                    face_model_version: version,
                })
            })
            .await
    }

    pub async fn modify_person_base_info(
        &self,
        req: ModifyPersonBaseInfoRequest,
    ) -> Result<ModifyPersonBaseInfoResponse, ApiError> {
        check_person_id(&req.person_id)?;
        if let Some(name) = &req.person_name {
            check_person_name(name)?;
        }
        let gender = match req.gender {
            Some(g) => Some(check_gender(Some(g))?),
            None => None,
        };
        self.store
            .write(move |tx| {
                Ok::<_, ApiError>(rows::update(
                    tx,
                    &req.person_id,
                    req.person_name.as_deref(),
                    gender,
                    now_ms(),
                )?)
            })
            .await?;
        Ok(ModifyPersonBaseInfoResponse {})
    }

    pub async fn modify_person_group_info(
        &self,
        req: ModifyPersonGroupInfoRequest,
    ) -> Result<ModifyPersonGroupInfoResponse, ApiError> {
        rules::check_group_id(&req.group_id)?;
        check_person_id(&req.person_id)?;
        self.store
            .write(move |tx| {
                let group = groups::get(tx, &req.group_id)?;
                rows::get(tx, &req.person_id)?;
                let mut values = rows::member_values(tx, &req.group_id, &req.person_id)?
                    .ok_or_else(|| {
                        ApiError::code(ErrorCode::FailedOperationGroupPersonMapNotExist)
                    })?;
                apply_ex_values(
                    &mut values,
                    &req.person_ex_description_infos,
                    group.ex_descriptions.len(),
                )?;
                rows::set_member_values(tx, &req.group_id, &req.person_id, &values)?;
                Ok::<_, ApiError>(())
            })
            .await?;
        Ok(ModifyPersonGroupInfoResponse {})
    }
}

/// What `person_networks` reads.
struct PersonNetworks {
    version: ModelVersion,
    serving: &'static Recognition,
    needed: Vec<&'static Recognition>,
    existing: Vec<(String, Vec<f32>)>,
    faces: usize,
}

/// The person or group changed model version while its images were processed (deleted and created again):
/// the embeddings no longer fit, so nothing is stored.
fn changed_meanwhile() -> ApiError {
    ApiError::new(
        ErrorCode::FailedOperationConflictOperation,
        "The person or group changed while the images were processed; nothing was stored, retry.",
    )
}

/// CreateFace's per-image `RetCode` for an error (SPEC.md §7.8).
fn ret_code(code: ErrorCode) -> i64 {
    match code {
        ErrorCode::InvalidParameterValueNoFaceInPhoto => -1101,
        ErrorCode::FailedOperationImageDecodeFailed
        | ErrorCode::InvalidParameterValueImageEmpty => -1102,
        ErrorCode::FailedOperationImageResolutionExceed
        | ErrorCode::FailedOperationImageResolutionTooSmall
        | ErrorCode::FailedOperationImageSizeExceed
        | ErrorCode::FailedOperationFaceSizeTooSmall => -1109,
        ErrorCode::FailedOperationFaceQualityNotQualified => -1601,
        _ => -1001,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ex_values_are_checked_against_the_group_fields() {
        let info = |i, v: &str| PersonExDescriptionInfo {
            person_ex_description_index: i,
            person_ex_description: v.into(),
        };
        let mut values = Vec::new();
        apply_ex_values(&mut values, &[info(1, "b")], 2).unwrap();
        assert_eq!(
            listed_values(&values, 2),
            vec!["".to_string(), "b".to_string()]
        );
        assert_eq!(
            apply_ex_values(&mut values, &[info(2, "x")], 2)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValuePersonExDescriptionInfosExceed
        );
        assert_eq!(
            apply_ex_values(&mut values, &[info(0, "x"), info(0, "y")], 2)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValuePersonExDescriptionsNameIdentical
        );
        assert_eq!(
            apply_ex_values(&mut values, &[info(0, &"x".repeat(61))], 2)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValuePersonExDescriptionsNameTooLong
        );
    }

    #[test]
    fn face_ids_are_19_digit_decimals_and_ret_codes_follow_the_spec() {
        let (n, text) = new_face_id();
        assert_eq!(text.len(), 19);
        assert_eq!(text.parse::<u64>().unwrap(), n);
        assert_eq!(
            ret_code(ErrorCode::InvalidParameterValueNoFaceInPhoto),
            -1101
        );
        assert_eq!(
            ret_code(ErrorCode::FailedOperationFaceQualityNotQualified),
            -1601
        );
        assert!(unique_person_score(ModelVersion::V3, 4) == 60.0);
    }
}

/// What the store refused, as Tencent's codes.
impl From<crate::store::persons::Refusal> for ApiError {
    fn from(refusal: crate::store::persons::Refusal) -> Self {
        match refusal {}
    }
}
