//! 1:N search and 1:1 verification against stored persons (SPEC.md §7.4-7.5, §7.8): SearchFaces,
//! SearchFacesReturnsByGroup, SearchPersons, SearchPersonsReturnsByGroup, VerifyFace, VerifyPerson.
//! Scores use the CompareFace calibration of the groups' model version.

use std::collections::HashMap;
use std::sync::Arc;

use super::analysis::check_quality_blocking;
use super::compare::two_decimals;
use super::errors::scan_failed;
use super::images::{
    DEFAULT_MIN_FACE_SIZE, check_max_faces, check_quality_control, detect, face_rect,
    faces_of_size, image_input,
};
use super::rules::{self, check_person_id, listed_values};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode};
use crate::face::download::Downloader;
use crate::face::embed::Recognition;
use crate::face::embed::cosine;
use crate::face::score::Calibration;
use crate::face::{FacePipeline, ModelVersion};
use crate::index::{Group, GroupIndex, Indexes, Scanner, fused};
use crate::store::Store;
use crate::store::listing::HitPerson;

const MAX_GROUPS: usize = 100;
const MAX_GROUPS_BY_GROUP: usize = 60;
const MAX_QUERY_FACES: u64 = 10;
const MAX_PERSONS: u64 = 100;
const MAX_PERSONS_PER_GROUP: u64 = 10;
/// VerifyFace / VerifyPerson: `IsMatch` at this score (SPEC.md §7.5).
const MATCH_SCORE: f64 = 60.0;

pub struct Search<'a> {
    pub store: &'a Store,
    pub indexes: &'a Arc<Indexes>,
    pub scanner: &'a Scanner,
    pub pipeline: &'a Arc<FacePipeline>,
    pub downloader: &'a Downloader,
    /// How far behind the database the index may be and still be searched.
    pub max_staleness: std::time::Duration,
}

/// The request fields every search shares.
struct Query {
    group_ids: Vec<String>,
    image: Option<String>,
    url: Option<String>,
    max_face_num: Option<u64>,
    min_face_size: Option<u64>,
    quality_control: Option<u64>,
    face_match_threshold: Option<f64>,
    need_person_info: Option<i64>,
    need_rotate_detection: Option<u64>,
}

/// The four search requests carry the same query fields.
macro_rules! query_from {
    ($($request:ty),*) => {$(
        impl From<&$request> for Query {
            fn from(req: &$request) -> Self {
                Self {
                    group_ids: req.group_ids.clone(),
                    image: req.image.clone(),
                    url: req.url.clone(),
                    max_face_num: req.max_face_num,
                    min_face_size: req.min_face_size,
                    quality_control: req.quality_control,
                    face_match_threshold: req.face_match_threshold,
                    need_person_info: req.need_person_info,
                    need_rotate_detection: req.need_rotate_detection,
                }
            }
        }
    )*};
}

query_from!(
    SearchFacesRequest,
    SearchFacesReturnsByGroupRequest,
    SearchPersonsRequest,
    SearchPersonsReturnsByGroupRequest
);

/// Whether candidates are faces (each stored face on its own) or persons (fused features).
#[derive(Clone, Copy, PartialEq)]
enum Over {
    Faces,
    Persons,
}

/// One query face: its box, and per searched group the candidates (person, face key, score), best first.
struct FaceResult {
    rect: FaceRect,
    ret_code: i64,
    per_group: Vec<Picked>,
}

struct Searched {
    version: ModelVersion,
    group_ids: Vec<String>,
    results: Vec<FaceResult>,
    faces_in_groups: u64,
    persons_in_groups: u64,
}

type Groups = Vec<(String, Arc<Group>)>;
/// Candidates of one list: (person, face key for face searches, score), best first.
type Picked = Vec<(Arc<str>, Option<u64>, f64)>;

/// The best candidates of one group for one query face.
fn scan_group(
    index: &GroupIndex,
    query: &[f32],
    over: Over,
    k: usize,
    calibration: &Calibration,
    threshold: f64,
) -> Picked {
    let hits: Vec<(Arc<str>, Option<u64>, f32)> = match over {
        Over::Faces => index
            .search_faces(query, k)
            .into_iter()
            .map(|h| (h.person_id, Some(h.face), h.cosine))
            .collect(),
        Over::Persons => index
            .search_persons(query, k)
            .into_iter()
            .map(|(person, cos)| (person, None, cos))
            .collect(),
    };
    best_per_person(hits, calibration, threshold)
}

impl Search<'_> {
    /// Check the groups: count, existence, one model version (3.0 for person searches), not all empty.
    fn groups(
        &self,
        ids: &[String],
        max: usize,
        over: Over,
    ) -> Result<(Groups, ModelVersion), ApiError> {
        if ids.is_empty() || ids.len() > max {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueGroupIdsExceed,
                format!("GroupIds must list 1 to {max} groups."),
            ));
        }
        let mut unique: Vec<String> = Vec::new();
        for id in ids {
            rules::check_group_id(id)?;
            if !unique.contains(id) {
                unique.push(id.clone());
            }
        }
        // The index follows every committed group change, so it alone answers existence and version.
        let mut out = Vec::new();
        for id in unique {
            let index = self
                .indexes
                .group(&id)
                .ok_or_else(|| ApiError::code(ErrorCode::InvalidParameterValueGroupIdNotExist))?;
            out.push((id, index));
        }
        let version = out[0].1.version;
        if out.iter().any(|(_, group)| group.version != version) {
            return Err(ApiError::code(
                ErrorCode::FailedOperationAcrossVersionsError,
            ));
        }
        if over == Over::Persons && version != ModelVersion::V3 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueUnsupportedGroupFaceModelVersion,
                "Person searches need groups of FaceModelVersion 3.0.",
            ));
        }
        if out.iter().all(|(_, group)| group.face_count() == 0) {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueNoFaceInGroups,
            ));
        }
        Ok((out, version))
    }

    async fn run(
        &self,
        q: Query,
        max_groups: usize,
        over: Over,
        per_group_k: usize,
    ) -> Result<Searched, ApiError> {
        self.store.ensure_current(self.max_staleness)?;
        let max_faces = check_max_faces(q.max_face_num, MAX_QUERY_FACES)?;
        let threshold = q.face_match_threshold.unwrap_or(0.0);
        if !(0.0..100.0).contains(&threshold) {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueFaceMatchThresholdIllegal,
            ));
        }
        let quality_control = check_quality_control(q.quality_control)?;
        let min_size = q.min_face_size.unwrap_or(DEFAULT_MIN_FACE_SIZE);
        let (groups, version) = self.groups(&q.group_ids, max_groups, over)?;
        // Each group is searched with the network it serves (groups of one version serve different
        // networks only while one of them is being embedded again).
        let mut models: Vec<&'static Recognition> = Vec::new();
        for (_, group) in &groups {
            if !models.contains(&group.model) {
                models.push(group.model);
            }
        }
        let rotate = q.need_rotate_detection == Some(1);
        let decoded = image_input(self.pipeline, self.downloader, q.image, q.url, rotate).await?;
        // (box, embedding by each network, or None when the face failed QualityControl)
        let networks = models.clone();
        let queries = self
            .pipeline
            .run(move |p| -> Result<_, ApiError> {
                let found = detect(p, &decoded.image, max_faces > 1, rotate)?;
                let mut faces = faces_of_size(found, min_size)?;
                faces.truncate(max_faces as usize);
                faces
                    .into_iter()
                    .map(|face| {
                        let passed =
                            check_quality_blocking(p, &decoded.image, &face, quality_control);
                        let embedding = match passed {
                            Ok(()) => Some(
                                networks
                                    .iter()
                                    .map(|m| p.embed_with(&decoded.image, &face.landmarks, m))
                                    .collect::<Result<Vec<_>, _>>()?,
                            ),
                            Err(e)
                                if e.code == ErrorCode::FailedOperationFaceQualityNotQualified =>
                            {
                                None
                            }
                            Err(e) => return Err(e),
                        };
                        Ok((face_rect(&face), embedding))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()
            })
            .await?;
        let (mut faces_in_groups, mut persons_in_groups) = (0, 0);
        for (_, group) in &groups {
            faces_in_groups += group.face_count() as u64;
            persons_in_groups += group.person_count() as u64;
        }
        let scanned = match over {
            Over::Faces => faces_in_groups,
            Over::Persons => persons_in_groups,
        } as usize
            * queries.len();
        let searched_groups: Vec<(Arc<Group>, Calibration)> = groups
            .iter()
            .map(|(_, group)| (group.clone(), Calibration::search(group.model)))
            .collect();
        let results = self
            .scanner
            .run(scanned, move || {
                queries
                    .into_iter()
                    .map(|(rect, embedding)| {
                        let Some(vectors) = embedding else {
                            return FaceResult {
                                rect,
                                ret_code: -1601,
                                per_group: vec![Vec::new(); searched_groups.len()],
                            };
                        };
                        let per_group = searched_groups
                            .iter()
                            .map(|(group, calibration)| {
                                let at = models.iter().position(|m| *m == group.model);
                                let query = &vectors[at.expect("every group's network was run")];
                                scan_group(
                                    &group.read(),
                                    query,
                                    over,
                                    per_group_k,
                                    calibration,
                                    threshold,
                                )
                            })
                            .collect();
                        FaceResult {
                            rect,
                            ret_code: 0,
                            per_group,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(scan_failed)?;
        if results.iter().all(|r| r.ret_code != 0) {
            persons_in_groups = 0;
        }
        Ok(Searched {
            version,
            group_ids: groups.into_iter().map(|(id, _)| id).collect(),
            results,
            faces_in_groups,
            persons_in_groups,
        })
    }

    /// Candidates for the answer, with person details when asked for (`NeedPersonInfo` = 1).
    async fn candidates(
        &self,
        picked: Vec<Picked>,
        need_info: bool,
        group_ids: &[String],
    ) -> Result<Vec<Vec<Candidate>>, ApiError> {
        let mut info: HashMap<String, HitPerson> = HashMap::new();
        if need_info {
            let ids: Vec<String> = picked
                .iter()
                .flatten()
                .map(|(p, _, _)| p.to_string())
                .collect();
            info = self.store.hit_persons(ids, group_ids.to_vec()).await?;
        }
        Ok(picked
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|(person, face, score)| {
                        let details = info.get(&*person);
                        Candidate {
                            person_id: person.to_string(),
                            face_id: face.map(|f| f.to_string()).unwrap_or_default(),
                            score,
                            person_name: details.map(|d| d.name.clone()),
                            gender: details.map(|d| d.gender),
                            person_group_infos: details.map(group_infos),
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// SearchFaces / SearchPersons: candidates merged over the groups, best per person.
    async fn merged(
        &self,
        q: Query,
        over: Over,
        max_persons: Option<u64>,
    ) -> Result<(Vec<SearchResult>, Searched), ApiError> {
        let k = max_persons.unwrap_or(5);
        if k == 0 || k > MAX_PERSONS {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueSearchPersonsExceed,
                format!("MaxPersonNum must be between 1 and {MAX_PERSONS}."),
            ));
        }
        let need_info = q.need_person_info == Some(1);
        let mut searched = self.run(q, MAX_GROUPS, over, k as usize).await?;
        let picked: Vec<Vec<_>> = searched
            .results
            .iter_mut()
            .map(|r| {
                let all: Vec<_> = std::mem::take(&mut r.per_group)
                    .into_iter()
                    .flatten()
                    .collect();
                let mut best = dedupe(all);
                best.truncate(k as usize);
                best
            })
            .collect();
        let candidates = self
            .candidates(picked, need_info, &searched.group_ids)
            .await?;
        let results = searched
            .results
            .iter()
            .zip(candidates)
            .map(|(r, candidates)| SearchResult {
                candidates,
                face_rect: r.rect.clone(),
                ret_code: r.ret_code,
            })
            .collect();
        Ok((results, searched))
    }

    /// *ReturnsByGroup: candidates per group.
    async fn by_group(
        &self,
        q: Query,
        over: Over,
        per_group: Option<u64>,
    ) -> Result<(Vec<ResultsReturnsByGroup>, Searched), ApiError> {
        let k = per_group.unwrap_or(5);
        if k == 0 || k > MAX_PERSONS_PER_GROUP {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueSearchPersonsExceed,
                format!("MaxPersonNumPerGroup must be between 1 and {MAX_PERSONS_PER_GROUP}."),
            ));
        }
        let need_info = q.need_person_info == Some(1);
        let mut searched = self.run(q, MAX_GROUPS_BY_GROUP, over, k as usize).await?;
        let mut out = Vec::new();
        let group_ids = searched.group_ids.clone();
        for r in searched.results.iter_mut() {
            let picked: Vec<Vec<_>> = std::mem::take(&mut r.per_group)
                .into_iter()
                .map(|mut list| {
                    list.truncate(k as usize);
                    list
                })
                .collect();
            let lists = self.candidates(picked, need_info, &group_ids).await?;
            out.push(ResultsReturnsByGroup {
                face_rect: r.rect.clone(),
                group_candidates: if r.ret_code == 0 {
                    group_ids
                        .iter()
                        .zip(lists)
                        .map(|(group_id, candidates)| GroupCandidate {
                            group_id: group_id.clone(),
                            candidates,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                ret_code: r.ret_code,
            });
        }
        Ok((out, searched))
    }

    pub async fn search_faces(
        &self,
        req: SearchFacesRequest,
    ) -> Result<SearchFacesResponse, ApiError> {
        let (results, searched) = self
            .merged(Query::from(&req), Over::Faces, req.max_person_num)
            .await?;
        Ok(SearchFacesResponse {
            results,
            face_num: searched.faces_in_groups,
            face_model_version: searched.version.as_str().to_owned(),
        })
    }

    pub async fn search_faces_returns_by_group(
        &self,
        req: SearchFacesReturnsByGroupRequest,
    ) -> Result<SearchFacesReturnsByGroupResponse, ApiError> {
        let (results, searched) = self
            .by_group(Query::from(&req), Over::Faces, req.max_person_num_per_group)
            .await?;
        Ok(SearchFacesReturnsByGroupResponse {
            face_num: searched.faces_in_groups,
            results_returns_by_group: results,
            face_model_version: searched.version.as_str().to_owned(),
        })
    }

    pub async fn search_persons(
        &self,
        req: SearchPersonsRequest,
    ) -> Result<SearchPersonsResponse, ApiError> {
        let (results, searched) = self
            .merged(Query::from(&req), Over::Persons, req.max_person_num)
            .await?;
        Ok(SearchPersonsResponse {
            results,
            person_num: searched.persons_in_groups,
            face_model_version: Some(searched.version.as_str().to_owned()),
        })
    }

    pub async fn search_persons_returns_by_group(
        &self,
        req: SearchPersonsReturnsByGroupRequest,
    ) -> Result<SearchPersonsReturnsByGroupResponse, ApiError> {
        let (results, searched) = self
            .by_group(
                Query::from(&req),
                Over::Persons,
                req.max_person_num_per_group,
            )
            .await?;
        Ok(SearchPersonsReturnsByGroupResponse {
            person_num: searched.persons_in_groups,
            results_returns_by_group: results,
            face_model_version: searched.version.as_str().to_owned(),
        })
    }

    /// The cosine of the image's largest face with the person: best stored face, or the fused feature.
    async fn verify(
        &self,
        person_id: String,
        image: Option<String>,
        url: Option<String>,
        quality_control: Option<u64>,
        rotate: bool,
        use_fused: bool,
    ) -> Result<(f64, ModelVersion), ApiError> {
        check_person_id(&person_id)?;
        let quality_control = check_quality_control(quality_control)?;
        // The person's faces as its (first) group serves them, and that network for the query.
        let ((version, model), stored) = self
            .store
            .served_embeddings(person_id, |serving| {
                let (version, model) = serving.unwrap_or_else(|| {
                    (rules::DEFAULT_FACE_MODEL_VERSION.to_owned(), String::new())
                });
                let version = ModelVersion::parse(&version).unwrap_or(ModelVersion::V3);
                let model =
                    Recognition::by_file(&model).unwrap_or_else(|| Recognition::current(version));
                ((version, model), model.file.to_owned())
            })
            .await?;
        if use_fused && version != ModelVersion::V3 {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueUnsupportedGroupFaceModelVersion,
            ));
        }
        if stored.is_empty() {
            return Err(ApiError::code(
                ErrorCode::InvalidParameterValueNoFaceInGroups,
            ));
        }
        let decoded = image_input(self.pipeline, self.downloader, image, url, rotate).await?;
        let query = self
            .pipeline
            .run(move |p| -> Result<_, ApiError> {
                let found = detect(p, &decoded.image, false, rotate)?;
                let face = faces_of_size(found, DEFAULT_MIN_FACE_SIZE)?.remove(0);
                check_quality_blocking(p, &decoded.image, &face, quality_control)?;
                Ok(p.embed_with(&decoded.image, &face.landmarks, model)?)
            })
            .await?;
        let best = if use_fused {
            let feature = fused(query.len(), stored.iter().map(|(_, v)| v.as_slice()));
            cosine(&feature, &query)
        } else {
            stored
                .iter()
                .map(|(_, v)| cosine(v, &query))
                .fold(f32::MIN, f32::max)
        };
        Ok((
            two_decimals(&Calibration::new(model, version), best),
            version,
        ))
    }

    pub async fn verify_face(
        &self,
        req: VerifyFaceRequest,
    ) -> Result<VerifyFaceResponse, ApiError> {
        let (score, version) = self
            .verify(
                req.person_id,
                req.image,
                req.url,
                req.quality_control,
                req.need_rotate_detection == Some(1),
                false,
            )
            .await?;
        Ok(VerifyFaceResponse {
            score,
            is_match: score >= MATCH_SCORE,
            face_model_version: version.as_str().to_owned(),
        })
    }

    pub async fn verify_person(
        &self,
        req: VerifyPersonRequest,
    ) -> Result<VerifyPersonResponse, ApiError> {
        let (score, version) = self
            .verify(
                req.person_id,
                req.image,
                req.url,
                req.quality_control,
                req.need_rotate_detection == Some(1),
                true,
            )
            .await?;
        Ok(VerifyPersonResponse {
            score,
            is_match: score >= MATCH_SCORE,
            face_model_version: version.as_str().to_owned(),
        })
    }
}

/// A hit person's values in the searched groups it is in, as the answer lists them.
fn group_infos(person: &HitPerson) -> Vec<PersonGroupInfo> {
    person
        .groups
        .iter()
        .map(|(group_id, values, fields)| PersonGroupInfo {
            group_id: group_id.clone(),
            person_ex_descriptions: listed_values(values, *fields),
        })
        .collect()
}

/// Scores from cosines, those under the threshold dropped, best per person, sorted by score.
fn best_per_person(
    hits: Vec<(Arc<str>, Option<u64>, f32)>,
    calibration: &Calibration,
    threshold: f64,
) -> Picked {
    let scored = hits
        .into_iter()
        .map(|(person, face, cos)| (person, face, two_decimals(calibration, cos)))
        .filter(|(_, _, score)| *score >= threshold)
        .collect();
    dedupe(scored)
}

/// Keep each person's best candidate, best first.
fn dedupe(mut all: Picked) -> Picked {
    all.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut seen = std::collections::HashSet::new();
    all.retain(|(person, _, _)| seen.insert(person.clone()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_the_best_candidate_of_each_person() {
        let p: Arc<str> = Arc::from("p");
        let q: Arc<str> = Arc::from("q");
        let out = dedupe(vec![
            (p.clone(), Some(1), 50.0),
            (q.clone(), Some(2), 70.0),
            (p.clone(), Some(3), 90.0),
        ]);
        assert_eq!(out, vec![(p, Some(3), 90.0), (q, Some(2), 70.0)]);
    }
}
