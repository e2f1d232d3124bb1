//! Face actions (SPEC.md §7.8): CreateFace (up to 4 images, each enrolled or answered with its `RetCode`)
//! and DeleteFace.

use super::enrol::{PersonNetworks, enrol_blocking, person_networks};
use super::images::{check_quality_control, face_rect, image_input};
use super::persons::{MAX_FACES_PER_PERSON, MAX_IMAGES_PER_CALL, Persons};
use super::rules::check_person_id;
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode};
use crate::face::embed::cosine;
use crate::face::score::Calibration;
use crate::store::persons::NewFace;

impl Persons<'_> {
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
        } = person_networks(self.store, &req.person_id).await?;
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
            let outcome =
                match image_input(self.pipeline, self.downloader, image, url, rotate).await {
                    Ok(decoded) => {
                        let needed = needed.clone();
                        self.pipeline
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
    fn ret_codes_follow_the_spec() {
        assert_eq!(
            ret_code(ErrorCode::InvalidParameterValueNoFaceInPhoto),
            -1101
        );
        assert_eq!(
            ret_code(ErrorCode::FailedOperationFaceQualityNotQualified),
            -1601
        );
    }
}
