//! The legacy duplicate-person checks (CheckSimilarPerson, CONTROL.md §A.5-A.8): find persons of up to 10
//! groups (3.0 only) that are probably one person enrolled under two PersonIds.
//!
//! A check is a job row (`store::jobs`, kind `check_similar_person`). When it starts running it snapshots
//! its groups: edits made while the check waits in the queue count; edits made after the snapshot do not
//! (Tencent's semantics). A pair is a finding when its 1:1 score (`face::score`, the 3.0 calibration of the
//! network the groups serve) reaches the threshold of `UniquePersonControl`: 60 (FAR 1e-5 per pair) for 1,
//! 70 (FAR 1e-6) for 2.
//! - `scan`: the snapshot of the persons' fused features and the blocked scan of every pair, on the checks'
//!   own threads;
//! - `cost`: the estimate (pairs, the scan rate measured and capped by the operator's throttle) and the
//!   calibration scan;
//! - `progress`: a running check's saved position, so that a restart resumes it;
//! - `worker`: the queue worker (one check at a time, oldest first: rounds, progress, the result file).

pub mod cost;
pub mod progress;
pub mod scan;
pub mod worker;

pub use cost::{
    CALIBRATION_PERSONS, calibrate, capped, measured, pairs, set_measured, set_throttle,
};
pub use worker::{result_file, run};
// What a check keeps in its row, and the queue's estimate, are the store's (it refuses a check that would
// overfill the queue in the transaction that queues it).
pub use crate::store::jobs::{CheckParams as Params, minutes, remaining_pairs};

use std::time::Duration;

/// At most this many groups per check.
pub const MAX_GROUPS: usize = 10;
/// At most this many persons in the groups of a check (counted once per group).
pub const MAX_PERSONS: u64 = 2_000_000;
/// A check whose estimate (with the checks queued before it) exceeds this is refused.
pub const MAX_MINUTES: u64 = 5 * 60;
/// How long a link to a result file stays valid (Tencent: 5 minutes).
pub const RESULT_LINK: Duration = Duration::from_secs(5 * 60);

/// The score a pair must reach for `UniquePersonControl` 1 or 2.
pub fn threshold_score(unique_person_control: i64) -> Option<f32> {
    match unique_person_control {
        1 => Some(60.0),
        2 => Some(70.0),
        _ => None,
    }
}
