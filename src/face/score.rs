//! Scores 0-100 from cosine similarity: a monotone piecewise-linear map whose knots are the cosines at which
//! the calibration photos (../shared/faces/calibration) reach Tencent's documented false-accept rates, so
//! that Tencent's thresholds mean the same here (3.0: 40/50/60 at FAR 1e-3/1e-4/1e-5; 2.0: 70/80/90).
//! The knots are measured by `cargo run --release --example calibrate` (re-measured 2026-11-25 after the
//! resize change; the code had kept the first measurement) and documented in the README's "Scores" table,
//! which a test reads back, so that the two cannot differ.

use super::ModelVersion;

/// (cosine, score) knots, increasing in both.
pub struct Calibration {
    knots: &'static [(f32, f32)],
}

impl Calibration {
    pub fn for_version(version: ModelVersion) -> Self {
        match version {
            ModelVersion::V3 => Self { knots: V3_KNOTS },
            ModelVersion::V2 => Self { knots: V2_KNOTS },
        }
    }

    pub fn score(&self, cosine: f32) -> f32 {
        let knots = self.knots;
        if cosine <= knots[0].0 {
            return knots[0].1;
        }
        for pair in knots.windows(2) {
            let ((c0, s0), (c1, s1)) = (pair[0], pair[1]);
            if cosine <= c1 {
                return s0 + (s1 - s0) * (cosine - c0) / (c1 - c0);
            }
        }
        knots[knots.len() - 1].1
    }
}

/// Measured on ORL + wild_extra (README "Scores"): -1 -> 0, the median impostor cosine -> 20 (3.0) / 40 (2.0),
/// then the cosines at FAR 1e-3, 1e-4, 1e-5 -> 40/50/60 (3.0) and 70/80/90 (2.0), and 1 -> 100.
const V3_KNOTS: &[(f32, f32)] = &[
    (-1.0, 0.0),
    (0.8624, 20.0),
    (0.9378, 40.0),
    (0.9481, 50.0),
    (0.9522, 60.0),
    (1.0, 100.0),
];
const V2_KNOTS: &[(f32, f32)] = &[
    (-1.0, 0.0),
    (0.2354, 40.0),
    (0.6307, 70.0),
    (0.6878, 80.0),
    (0.7167, 90.0),
    (1.0, 100.0),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_monotone_and_bounded() {
        for version in [ModelVersion::V2, ModelVersion::V3] {
            let cal = Calibration::for_version(version);
            let mut last = -1.0;
            for i in -100..=100 {
                let s = cal.score(i as f32 / 100.0);
                assert!((0.0..=100.0).contains(&s));
                assert!(s >= last, "{version:?} at {i}");
                last = s;
            }
            assert_eq!(cal.score(1.0), 100.0);
            assert_eq!(cal.score(-1.0), 0.0);
        }
    }

    /// The README's calibration table and median sentence are the documentation of these knots: the test
    /// reads them back, so the two cannot drift apart again.
    #[test]
    fn the_documented_knots_are_the_ones_in_use() {
        let readme = include_str!("../../README.md");
        let mut seen = 0;
        for line in readme.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | model | FAR | cosine | score | ...
            let [_, model, far, cosine, score, ..] = cells[..] else {
                continue;
            };
            let (Some(version), true) = (ModelVersion::parse(model), far.starts_with("1e-")) else {
                continue;
            };
            let (cosine, score): (f32, f32) = (cosine.parse().unwrap(), score.parse().unwrap());
            let knots = knots_of(version);
            assert!(
                knots.contains(&(cosine, score)),
                "README documents ({cosine}, {score}) for {model}, the code uses {knots:?}"
            );
            seen += 1;
        }
        assert_eq!(
            seen, 6,
            "the README's calibration table has 3 rows per model"
        );
        let medians = readme
            .lines()
            .find(|l| l.contains("median impostor cosines are"))
            .expect("the README states the median impostor cosines");
        for version in [ModelVersion::V3, ModelVersion::V2] {
            let median = knots_of(version)[1].0;
            assert!(
                medians.contains(&format!("{median:.4} for {}", version.as_str())),
                "README: {medians:?}; code: {median} for {}",
                version.as_str()
            );
        }
    }

    fn knots_of(version: ModelVersion) -> &'static [(f32, f32)] {
        Calibration::for_version(version).knots
    }

    #[test]
    fn knots_map_exactly() {
        let cal = Calibration::for_version(ModelVersion::V3);
        for &(c, s) in V3_KNOTS {
            assert!((cal.score(c) - s).abs() < 1e-4);
        }
    }
}
