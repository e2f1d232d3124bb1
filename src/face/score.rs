//! Scores 0-100 from cosine similarity: a monotone piecewise-linear map whose knots are the cosines at which
//! the calibration photos (../shared/faces/calibration) reach Tencent's documented false-accept rates, so
//! that Tencent's thresholds mean the same here (3.0: 40/50/60 at FAR 1e-3/1e-4/1e-5; 2.0: 70/80/90).
//! The knots are measured by `cargo run --release --example calibrate` and written in the README.

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
    (0.8625, 20.0),
    (0.9373, 40.0),
    (0.9474, 50.0),
    (0.9513, 60.0),
    (1.0, 100.0),
];
const V2_KNOTS: &[(f32, f32)] = &[
    (-1.0, 0.0),
    (0.2377, 40.0),
    (0.6338, 70.0),
    (0.6921, 80.0),
    (0.7244, 90.0),
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

    #[test]
    fn knots_map_exactly() {
        let cal = Calibration::for_version(ModelVersion::V3);
        for &(c, s) in V3_KNOTS {
            assert!((cal.score(c) - s).abs() < 1e-4);
        }
    }
}
