//! Person and face actions (SPEC.md §7.1, §7.8): CreatePerson, CreateFace, DeleteFace, DeletePerson,
//! DeletePersonFromGroup, CopyPerson, GetPersonList, GetPersonBaseInfo, GetPersonGroupInfo,
//! ModifyPersonBaseInfo, ModifyPersonGroupInfo. A person is global and shared by its groups, which all have
//! one model version; its faces carry an embedding of that version. Every write is a named store operation;
//! the index follows the store's change log.

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
use crate::index::{Indexes, Scanner};
use crate::store::Store;
use crate::store::persons::{NewFace, NewPerson, Refusal};

pub const MAX_FACES_PER_PERSON: usize = 5;
pub const MAX_IMAGES_PER_CALL: usize = 4;
pub const MAX_GROUPS_PER_PERSON: usize = 100;
/// Faces per group: 1,000,000 for model 2.0, 3,000,000 for 3.0 (SPEC.md §7.1).
fn max_group_faces(version: &str) -> u64 {
    match version_of(version) {
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
        let (group, person_exists) = self
            .store
            .group_for_new_person(req.group_id.clone(), req.person_id.clone())
            .await?;
        let mut values = Vec::new();
        apply_ex_values(
            &mut values,
            req.person_ex_description_infos
                .as_deref()
                .unwrap_or_default(),
            group.ex_descriptions.len(),
        )?;
        if person_exists {
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
        let Enrolment { face, row } = enrolled;
        let face_id = row.face_id.clone();
        let person = NewPerson {
            person_id: req.person_id,
            name: req.person_name,
            gender,
            group_id: req.group_id,
            values,
            face: row,
        };
        // The group is read again in the writing transaction: it may have been deleted or created again
        // while the face was being embedded. An upgrade that switched it meanwhile is fine: the face was
        // embedded by the network it moved to as well.
        let version = self
            .store
            .create_person(person, group.created_ms, max_group_faces)
            .await?;
        let version = version_of(&version);
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
        let found = self.store.face_networks(person_id.to_owned()).await?;
        let (version, serving) = found.first.unwrap_or_else(|| {
            let version = rules::DEFAULT_FACE_MODEL_VERSION.to_owned();
            let model = Recognition::current(version_of(&version)).file.to_owned();
            (version, model)
        });
        let version = version_of(&version);
        let serving =
            Recognition::by_file(&serving).unwrap_or_else(|| Recognition::current(version));
        // A second read: these only compare new faces with the person's (the write checks again).
        let existing = self
            .store
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
    async fn embed_stored(
        &self,
        person_id: &str,
        model: &'static Recognition,
    ) -> Result<(), ApiError> {
        let crops = self
            .store
            .crops_without_embedding(person_id.to_owned(), model.file.to_owned())
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
        Ok(self
            .store
            .save_crop_embeddings(model.file.to_owned(), embedded)
            .await?)
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
        // The person's groups are read again in the transaction that adds the faces: they may have changed
        // while the images were being processed.
        let rows: Vec<NewFace> = enrolled.into_iter().map(|(_, e)| e.row).collect();
        self.store
            .create_faces(req.person_id, rows, MAX_FACES_PER_PERSON)
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
        let deleted = self.store.delete_faces(req.person_id, req.face_ids).await?;
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
        self.store.delete_person(req.person_id).await?;
        Ok(DeletePersonResponse {})
    }

    pub async fn delete_person_from_group(
        &self,
        req: DeletePersonFromGroupRequest,
    ) -> Result<DeletePersonFromGroupResponse, ApiError> {
        check_person_id(&req.person_id)?;
        rules::check_group_id(&req.group_id)?;
        self.store
            .delete_person_from_group(req.group_id, req.person_id)
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
        let may_hold =
            move |group: &str| existing.as_ref().map_or(Ok(()), |check| check.check(group));
        // The networks the target groups serve or move to: the person's faces need embeddings by them, made
        // from the stored crops where missing (a person enrolled before a network change has none yet).
        let wanted = self
            .store
            .copy_person_networks(person_id.clone(), targets.clone(), may_hold.clone())
            .await?;
        for model in networks(&wanted) {
            self.embed_stored(&person_id, model).await?;
        }
        let added = self
            .store
            .copy_person(person_id, targets, MAX_GROUPS_PER_PERSON, may_hold)
            .await?;
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
        let offset = req.offset.unwrap_or(0);
        let limit = req.limit.unwrap_or(10).min(1000);
        let list = self.store.person_page(req.group_id, offset, limit).await?;
        // Checked on the count the page was read with (an offset past it read nothing).
        Page::new(req.offset, req.limit, 1000, list.persons)?;
        let fields = list.group.ex_descriptions.len();
        let infos = list
            .members
            .into_iter()
            .map(|(person, values, face_ids)| PersonInfo {
                face_ids,
                person_name: person.name,
                person_id: person.person_id,
                gender: person.gender,
                person_ex_descriptions: listed_values(&values, fields),
                creation_timestamp: person.created_ms.max(0) as u64,
            })
            .collect();
        Ok(GetPersonListResponse {
            person_infos: infos,
            person_num: Some(list.persons),
            face_num: Some(list.faces),
            face_model_version: Some(list.group.face_model_version),
        })
    }

    pub async fn get_person_base_info(
        &self,
        req: GetPersonBaseInfoRequest,
    ) -> Result<GetPersonBaseInfoResponse, ApiError> {
        check_person_id(&req.person_id)?;
        let (person, face_ids) = self.store.person_with_faces(req.person_id).await?;
        Ok(GetPersonBaseInfoResponse {
            person_name: person.name,
            gender: person.gender,
            face_ids,
        })
    }

    pub async fn get_person_group_info(
        &self,
        req: GetPersonGroupInfoRequest,
    ) -> Result<GetPersonGroupInfoResponse, ApiError> {
        check_person_id(&req.person_id)?;
        let all = self.store.memberships(req.person_id).await?;
        let page = Page::new(req.offset, req.limit, 100, all.len() as u64)?;
        let shown = all
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize);
        let infos = shown
            .clone()
            .map(|m| PersonGroupInfo {
                group_id: m.group_id.clone(),
                person_ex_descriptions: listed_values(&m.values, m.fields),
            })
            .collect();
        // The version of the first group listed, else of the person's first group.
        let version = shown
            .chain(all.first())
            .next()
            .map(|m| m.face_model_version.clone());
        Ok(GetPersonGroupInfoResponse {
            person_group_infos: infos,
            group_num: Some(all.len() as u64),
            face_model_version: version,
        })
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
            .update_person(req.person_id, req.person_name, gender)
            .await?;
        Ok(ModifyPersonBaseInfoResponse {})
    }

    pub async fn modify_person_group_info(
        &self,
        req: ModifyPersonGroupInfoRequest,
    ) -> Result<ModifyPersonGroupInfoResponse, ApiError> {
        rules::check_group_id(&req.group_id)?;
        check_person_id(&req.person_id)?;
        let infos = req.person_ex_description_infos;
        self.store
            .edit_member_values(req.group_id, req.person_id, move |values, fields| {
                apply_ex_values(values, &infos, fields)
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

/// What the store refused, as Tencent's codes.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::ChangedMeanwhile => changed_meanwhile(),
            Refusal::GroupFaceLimit => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupFaceNumExceed)
            }
            Refusal::PersonFaceLimit => {
                ApiError::code(ErrorCode::InvalidParameterValuePersonFaceNumExceed)
            }
            Refusal::LastFace => ApiError::new(
                ErrorCode::InvalidParameterValueDeleteFaceNumExceed,
                "A person keeps at least one face.",
            ),
            Refusal::NotInGroup => ApiError::code(ErrorCode::FailedOperationGroupPersonMapNotExist),
            Refusal::GroupsPerPersonLimit => {
                ApiError::code(ErrorCode::InvalidParameterValueGroupNumPerPersonExceed)
            }
            Refusal::AcrossVersions {
                group_id,
                version,
                person_versions,
            } => ApiError::new(
                ErrorCode::FailedOperationAcrossVersionsError,
                format!(
                    "The person's groups use model {}; group {group_id} uses {version}.",
                    person_versions.join(", ")
                ),
            ),
        }
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
