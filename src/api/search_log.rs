//! What the audit trail's search log keeps of a search or verification: the faces searched and the
//! strongest candidates (a verification: one face, the person verified). The action hands them over typed
//! through the request context, and only when the trail is on; the trail never reads an answer back. The
//! candidate is the row the trail stores (`store::audit`), so nothing is converted on the way.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct SearchFacts {
    pub face_num: u64,
    pub candidates: Vec<Candidate>,
}

/// One candidate, as the search log stores it (JSON in the trail's rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    #[serde(rename = "PersonId")]
    pub person_id: String,
    /// `None` for a person (SearchPersons, verifications).
    #[serde(rename = "FaceId", default, skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    #[serde(rename = "Score")]
    pub score: f64,
}

/// A call's `SearchFacts`: wanted only when the audit trail is on (the wire says so), set once by the
/// action, taken by the wire after it answers.
#[derive(Debug, Clone, Default)]
pub struct SearchFactsSlot {
    wanted: bool,
    facts: OnceLock<SearchFacts>,
}

impl SearchFactsSlot {
    /// A slot that keeps what the action records.
    pub fn wanted() -> Self {
        Self {
            wanted: true,
            facts: OnceLock::new(),
        }
    }

    /// Keep the facts `of` computes, when they are wanted and none are kept yet (else `of` is not run).
    pub fn record(&self, of: impl FnOnce() -> SearchFacts) {
        if self.wanted {
            self.facts.get_or_init(of);
        }
    }

    pub fn take(&mut self) -> Option<SearchFacts> {
        self.facts.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> SearchFacts {
        SearchFacts {
            face_num: 1,
            candidates: vec![Candidate {
                person_id: "p".into(),
                face_id: None,
                score: 88.5,
            }],
        }
    }

    #[test]
    fn facts_are_computed_and_kept_only_when_wanted() {
        let mut off = SearchFactsSlot::default();
        off.record(|| panic!("the audit trail is off: nothing to compute"));
        assert_eq!(off.take(), None);
        let mut on = SearchFactsSlot::wanted();
        on.record(facts);
        on.record(|| panic!("set once: a second record is not computed"));
        assert_eq!(on.take(), Some(facts()));
    }
}
