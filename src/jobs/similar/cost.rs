//! What a duplicate-person check costs: its pairs, and the scan rate that divides them (measured by a
//! calibration scan at first use, then by each check large enough to time; capped by the operator's
//! throttle). The queue's estimate in minutes is the store's (`store::jobs`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::scan::{pool, scan_rows, synthetic};
use crate::face::ModelVersion;
use crate::face::embed::Recognition;

/// Pairs among `n` persons.
pub fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// The scan rate last measured (f64 bits; 0 = not yet): a calibration scan at first use, then the rate of
/// each check large enough to time.
static MEASURED: AtomicU64 = AtomicU64::new(0);
/// Checks comparing at least this many pairs update the measured rate.
pub(super) const TIMED_PAIRS: u64 = 2_000_000;

/// The scan rate last measured, if any.
pub fn measured() -> Option<f64> {
    let bits = MEASURED.load(Ordering::Relaxed);
    (bits != 0).then(|| f64::from_bits(bits))
}

/// Record a measured scan rate (pairs per second).
pub fn set_measured(rate: f64) {
    if rate.is_finite() && rate > 0.0 {
        MEASURED.store(rate.to_bits(), Ordering::Relaxed);
    }
}

/// The operator's cap on the scan rate, pairs compared per second (configuration:
/// `similar_max_pairs_per_second`), so that a check leaves CPU to requests.
static THROTTLE: OnceLock<Option<f64>> = OnceLock::new();

/// Set the cap once, at start (a value that is not a positive number means none).
pub fn set_throttle(cap: Option<f64>) {
    let cap = cap.filter(|rate| *rate > 0.0 && rate.is_finite());
    let _ = THROTTLE.set(cap);
}

pub fn throttle() -> Option<f64> {
    THROTTLE.get().copied().flatten()
}

/// A measured rate as the checks will run: capped by the throttle.
pub fn capped(rate: f64) -> f64 {
    throttle().map_or(rate, |cap| rate.min(cap))
}

/// Persons of the calibration scan (8.4 million pairs).
pub const CALIBRATION_PERSONS: usize = 4096;

/// Time a scan of synthetic features of the 3.0 network (blocking: run it off the async workers).
pub fn calibrate() -> f64 {
    let dim = Recognition::current(ModelVersion::V3).dim;
    let n = CALIBRATION_PERSONS;
    let vectors = synthetic(n, dim, 1);
    let started = Instant::now();
    // Nothing reaches a cosine above 1: every pair is scored and none kept.
    let found = pool().install(|| scan_rows(&vectors, dim, 0..n, 1.5));
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    debug_assert!(found.is_empty());
    let rate = pairs(n as u64) as f64 / seconds;
    tracing::info!(
        pairs_per_second = rate.round(),
        "duplicate-person checks: scan rate measured"
    );
    rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::score::Calibration;
    use crate::jobs::similar::{Params, minutes, remaining_pairs, threshold_score};
    use crate::store::jobs::{CHECK_RUNNING, JobRow, SIMILAR};

    #[test]
    fn thresholds_estimates_and_group_sets() {
        assert_eq!(threshold_score(1), Some(60.0));
        assert_eq!(threshold_score(2), Some(70.0));
        assert_eq!(threshold_score(0), None);
        assert_eq!(threshold_score(3), None);
        // 60 and 70 are the FAR 1e-5 and 1e-6 knots of the 3.0 scale.
        let calibration = Calibration::for_version(ModelVersion::V3);
        assert!(calibration.cosine_at(70.0) > calibration.cosine_at(60.0));
        assert_eq!(pairs(0), 0);
        assert_eq!(pairs(1), 0);
        assert_eq!(pairs(2_000_000), 1_999_999_000_000);
        assert_eq!(minutes(0, 1e6), 0);
        assert_eq!(minutes(1, 1e6), 1);
        assert_eq!(minutes(120_000_000, 1e6), 2);
        assert_eq!(minutes(120_000_001, 1e6), 3);
        let params = Params {
            group_ids: vec!["b".into(), "a".into()],
            unique_person_control: 1,
            pairs: 10,
        };
        assert!(params.same_groups(&["a".into(), "b".into(), "a".into()]));
        assert!(!params.same_groups(&["a".into()]));
        assert!(!params.same_groups(&["a".into(), "b".into(), "c".into()]));
        let job = JobRow {
            job_id: "j".into(),
            kind: SIMILAR.into(),
            group_id: None,
            params: serde_json::to_value(&params).unwrap(),
            status: CHECK_RUNNING,
            progress: 40.0,
            result: None,
            started_ms: 0,
            finished_ms: None,
        };
        assert_eq!(remaining_pairs(&job), 6);
    }

    #[test]
    fn the_calibration_scan_measures_a_rate() {
        let rate = calibrate();
        assert!(rate > 1000.0, "{rate}");
    }
}
