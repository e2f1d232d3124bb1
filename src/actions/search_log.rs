//! What the audit trail's search log keeps of a search or verification (`api::SearchFacts`: the faces
//! searched and the strongest candidates of the first), built from the typed answer, and only when the
//! request context wants it (the trail is on).

use crate::api::model::*;
use crate::api::search_log::{self as log, SearchFacts};
use crate::api::{ApiError, RequestContext};
use crate::audit::TOP_CANDIDATES;

/// An answer the search log keeps facts of.
pub(super) trait Logged {
    fn facts(&self) -> SearchFacts;
}

/// SearchFaces and ConsoleSearchFaces (one type).
impl Logged for SearchFacesResponse {
    fn facts(&self) -> SearchFacts {
        of_results(Some(self.face_num), &self.results)
    }
}

/// SearchPersons and ConsoleSearchPersons (one type).
impl Logged for SearchPersonsResponse {
    fn facts(&self) -> SearchFacts {
        of_results(None, &self.results)
    }
}

impl Logged for SearchFacesReturnsByGroupResponse {
    fn facts(&self) -> SearchFacts {
        of_groups(Some(self.face_num), &self.results_returns_by_group)
    }
}

impl Logged for SearchPersonsReturnsByGroupResponse {
    fn facts(&self) -> SearchFacts {
        of_groups(None, &self.results_returns_by_group)
    }
}

/// Hand a search's answer to the search log (when wanted) and pass it on.
pub(super) fn logged<R: Logged>(
    ctx: &RequestContext,
    answer: Result<R, ApiError>,
) -> Result<R, ApiError> {
    if let Ok(answer) = &answer {
        ctx.search_facts.record(|| answer.facts());
    }
    answer
}

/// Hand a verification's answer to the search log (when wanted) and pass it on: the person verified, with
/// its score.
pub(super) fn verified<R>(
    ctx: &RequestContext,
    person_id: &str,
    answer: Result<R, ApiError>,
    score: impl Fn(&R) -> f64,
) -> Result<R, ApiError> {
    if let Ok(answer) = &answer {
        ctx.search_facts
            .record(|| of_verification(person_id, score(answer)));
    }
    answer
}

/// SearchFaces, SearchPersons and their console forms: the first face's candidates. `face_num`: FaceNum
/// where the answer has one, else one per result (SearchPersons answers no FaceNum).
fn of_results(face_num: Option<u64>, results: &[SearchResult]) -> SearchFacts {
    let candidates = results
        .first()
        .map(|r| strongest(r.candidates.iter()))
        .unwrap_or_default();
    SearchFacts {
        face_num: face_num.unwrap_or(results.len() as u64),
        candidates,
    }
}

/// The ...ReturnsByGroup searches: the first face's candidates of every group.
fn of_groups(face_num: Option<u64>, results: &[ResultsReturnsByGroup]) -> SearchFacts {
    let candidates = results
        .first()
        .map(|r| strongest(r.group_candidates.iter().flat_map(|g| &g.candidates)))
        .unwrap_or_default();
    SearchFacts {
        face_num: face_num.unwrap_or(results.len() as u64),
        candidates,
    }
}

/// VerifyFace and VerifyPerson: one face, the person verified with its score.
fn of_verification(person_id: &str, score: f64) -> SearchFacts {
    SearchFacts {
        face_num: 1,
        candidates: vec![log::Candidate {
            person_id: person_id.to_owned(),
            face_id: None,
            score,
        }],
    }
}

/// The `TOP_CANDIDATES` strongest, best first.
fn strongest<'a>(candidates: impl Iterator<Item = &'a Candidate>) -> Vec<log::Candidate> {
    let mut hits: Vec<log::Candidate> = candidates
        .map(|c| log::Candidate {
            person_id: c.person_id.clone(),
            face_id: Some(c.face_id.clone()).filter(|f| !f.is_empty()),
            score: c.score,
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(TOP_CANDIDATES);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(person: &str, face: &str, score: f64) -> Candidate {
        Candidate {
            person_id: person.into(),
            face_id: face.into(),
            score,
            ..Default::default()
        }
    }

    fn result(candidates: Vec<Candidate>) -> SearchResult {
        SearchResult {
            candidates,
            ..Default::default()
        }
    }

    #[test]
    fn the_first_faces_five_strongest_candidates_are_kept_best_first() {
        let first = (0..8)
            .map(|i| candidate(&format!("p{i}"), &format!("f{i}"), f64::from(i * 10)))
            .collect();
        let facts = of_results(
            Some(2),
            &[result(first), result(vec![candidate("x", "", 99.0)])],
        );
        assert_eq!(facts.face_num, 2);
        let people: Vec<&str> = facts
            .candidates
            .iter()
            .map(|h| h.person_id.as_str())
            .collect();
        assert_eq!(people, ["p7", "p6", "p5", "p4", "p3"]);
        assert_eq!(facts.candidates[0].face_id.as_deref(), Some("f7"));
    }

    #[test]
    fn search_persons_counts_its_results_and_names_no_face() {
        let facts = of_results(
            None,
            &[result(vec![candidate("p", "", 80.0)]), result(vec![])],
        );
        assert_eq!(facts.face_num, 2);
        assert_eq!(facts.candidates[0].face_id, None);
        assert_eq!(of_results(None, &[]).candidates, vec![]);
    }

    #[test]
    fn searches_by_group_pool_the_first_faces_groups() {
        let group = |id: &str, c: Vec<Candidate>| GroupCandidate {
            group_id: id.into(),
            candidates: c,
        };
        let first = ResultsReturnsByGroup {
            group_candidates: vec![
                group("a", vec![candidate("p1", "f1", 50.0)]),
                group("b", vec![candidate("p2", "f2", 70.0)]),
            ],
            ..Default::default()
        };
        let facts = of_groups(Some(1), &[first]);
        let people: Vec<&str> = facts
            .candidates
            .iter()
            .map(|h| h.person_id.as_str())
            .collect();
        assert_eq!(people, ["p2", "p1"]);
    }

    #[test]
    fn a_verification_is_one_face_and_the_person_verified() {
        let facts = of_verification("alice", 91.5);
        assert_eq!(facts.face_num, 1);
        assert_eq!(
            facts.candidates,
            vec![log::Candidate {
                person_id: "alice".into(),
                face_id: None,
                score: 91.5
            }]
        );
    }
}
