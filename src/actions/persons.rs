//! Person actions (SPEC.md §7.1): CreatePerson, DeletePerson, DeletePersonFromGroup, CopyPerson,
//! GetPersonList, GetPersonBaseInfo, GetPersonGroupInfo, ModifyPersonBaseInfo, ModifyPersonGroupInfo. A
//! person is global and shared by its groups, which all have one model version; its faces carry an
//! embedding of that version (`enrol`). Every write is a named store operation; the index follows the
//! store's change log. The face actions (CreateFace, DeleteFace) are in `faces`.

use std::collections::HashSet;
use std::sync::Arc;

use super::enrol::{
    Enrolment, embed_stored, enrol_blocking, networks, unique_person_score, version_of,
};
use super::errors::scan_failed;
use super::images::{check_quality_control, face_rect, image_input};
use super::rules::{self, Page, check_person_id, listed_values};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, GroupCheck};
use crate::face::download::Downloader;
use crate::face::score::Calibration;
use crate::face::{FacePipeline, ModelVersion};
use crate::index::{Indexes, Scanner};
use crate::store::Store;
use crate::store::persons::NewPerson;

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
    pub pipeline: &'a Arc<FacePipeline>,
    pub downloader: &'a Downloader,
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
        let decoded =
            image_input(self.pipeline, self.downloader, req.image, req.url, rotate).await?;
        let enrolled = self
            .pipeline
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
            embed_stored(self.store, self.pipeline, &person_id, model).await?;
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
}
