//! Scores 0-100 from cosine similarity: the single source of every knot.
//!
//! Tencent's scores are a logarithmic scale of the false-accept rate of one comparison: for model 3.0,
//! 40/50/60 are FAR 1e-3/1e-4/1e-5 (CompareFace), and search scores continue the same scale, 70/80/90/100
//! at 1e-6/1e-7/1e-8/1e-9 per comparison, which is what SPEC.md §7.5's library-size rule says (a 10k-face
//! search at score 70 has a 1e-2 chance of a false candidate: 1e4 x 1e-6; at 100k, 80 is 1e-2: 1e5 x
//! 1e-7). So one curve per network serves 1:1 and 1:N: score = 10 + 10 x -log10(FAR) for 3.0, and for
//! 2.0's 1:1 scores 40 + 10 x -log10(FAR) (70/80/90 at 1e-3/1e-4/1e-5), linear in cosine between the knots.
//! Search scores use the 3.0 scale for both versions (`Calibration::search`): the library-size table is one.
//!
//! Each network's knots are the impostor cosines at FAR 1e-1 .. 1e-9 measured by
//! `cargo run --release --example calibrate` on colour photos of adults: 1,618,222 impostor pairs of
//! `utk_distinct` aged 20 and over and of `wild_extra` (pairs within each set), less the pairs found by
//! looking to be one person twice (`examples/calibrate_same_person.tsv`). Rates down to 1e-5 are measured
//! (at least 10 pairs above each); below, the tail family that best predicted the last measured decade from
//! the three before it, fitted on the last three measured rates. The README's "Scores" table documents them
//! with their 95% intervals, and a test reads it back.

use super::ModelVersion;
use super::embed::{DLIB_128, MOBILEFACE_256, MOBILEFACENET_192, Recognition};

/// One network's impostor distribution: its median cosine and the cosines at FAR 1e-1 .. 1e-9.
pub struct FarCurve {
    pub median: f32,
    pub at_far: [f32; 9],
}

/// Measured 2026-12-03 (README, "Scores"); 1e-6 and below are the tail fit (normal for MobileFaceNet,
/// log-normal in 1 - cosine for the other two).
const MOBILEFACENET_CURVE: FarCurve = FarCurve {
    median: 0.0218,
    at_far: [
        0.2242, 0.3881, 0.5052, 0.5962, 0.6872, 0.7604, 0.8294, 0.8932, 0.9529,
    ],
};
const DLIB_CURVE: FarCurve = FarCurve {
    median: 0.8364,
    at_far: [
        0.8852, 0.9198, 0.9409, 0.9553, 0.9659, 0.9727, 0.9778, 0.9817, 0.9847,
    ],
};
const MOBILEFACE_CURVE: FarCurve = FarCurve {
    median: 0.1027,
    at_far: [
        0.2800, 0.4400, 0.5566, 0.6417, 0.7003, 0.7457, 0.7808, 0.8090, 0.8321,
    ],
};

pub fn curve(network: &Recognition) -> &'static FarCurve {
    if *network == MOBILEFACENET_192 {
        &MOBILEFACENET_CURVE
    } else if *network == DLIB_128 {
        &DLIB_CURVE
    } else {
        debug_assert!(*network == MOBILEFACE_256);
        &MOBILEFACE_CURVE
    }
}

/// The score at FAR 10^-k: 10 + 10k for 3.0, 40 + 10k for 2.0.
pub fn score_at_far_exponent(version: ModelVersion, k: f32) -> f32 {
    let base = match version {
        ModelVersion::V3 => 10.0,
        ModelVersion::V2 => 40.0,
    };
    base + 10.0 * k
}

/// (cosine, score) knots, increasing in both.
pub struct Calibration {
    knots: Vec<(f32, f32)>,
}

impl Calibration {
    /// Scores of a network's cosines in groups of a model version (a 3.0 group still served by the dlib
    /// network while its faces are embedded again scores on the 3.0 scale with dlib's curve).
    pub fn new(network: &Recognition, version: ModelVersion) -> Self {
        let curve = curve(network);
        let mut knots = vec![
            (-1.0, 0.0),
            (
                curve.median,
                score_at_far_exponent(version, std::f32::consts::LOG10_2),
            ),
        ];
        for (k, &cosine) in curve.at_far.iter().enumerate() {
            let score = score_at_far_exponent(version, (k + 1) as f32);
            let last = knots[knots.len() - 1];
            // A knot must rise in cosine (a saturated fit repeats the top cosine) and stop at 100.
            if cosine > last.0 && score <= 100.0 {
                knots.push((cosine, score));
            }
        }
        let last = knots[knots.len() - 1];
        if last.1 < 100.0 {
            knots.push((1.0, 100.0));
        }
        Self { knots }
    }

    /// Search scores of a network's cosines, whatever the group's version: SPEC.md §7.5's library-size
    /// table (10k faces: 70/80/90 = 1e-2/1e-3/1e-4 for the whole search) is one scale, which is 3.0's
    /// per-comparison one (70 = 1e-6 per comparison). A 2.0 group's 1:1 scale (70 = 1e-3) would put a
    /// false candidate above 80 in most searches of a 10k library.
    pub fn search(network: &Recognition) -> Self {
        Self::new(network, ModelVersion::V3)
    }

    /// The calibration of the network that embeds new faces of `version`.
    pub fn for_version(version: ModelVersion) -> Self {
        Self::new(Recognition::current(version), version)
    }

    pub fn score(&self, cosine: f32) -> f32 {
        let knots = &self.knots;
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

    /// The cosine at which `score` is reached (the inverse of `score`, for thresholds).
    pub fn cosine_at(&self, score: f32) -> f32 {
        let knots = &self.knots;
        for pair in knots.windows(2) {
            let ((c0, s0), (c1, s1)) = (pair[0], pair[1]);
            if score <= s1 {
                return c0 + (c1 - c0) * (score - s0) / (s1 - s0);
            }
        }
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::embed::ALL;

    #[test]
    fn scores_are_monotone_and_bounded() {
        for network in ALL {
            for version in [ModelVersion::V2, ModelVersion::V3] {
                let cal = Calibration::new(network, version);
                let mut last = -1.0;
                for i in -1000..=1000 {
                    let s = cal.score(i as f32 / 1000.0);
                    assert!((0.0..=100.0).contains(&s));
                    assert!(s >= last, "{} {version:?} at {i}", network.file);
                    last = s;
                }
                assert_eq!(cal.score(1.0), 100.0);
                assert_eq!(cal.score(-1.0), 0.0);
            }
        }
    }

    #[test]
    fn tencents_thresholds_are_the_false_accept_rates() {
        let v3 = Calibration::for_version(ModelVersion::V3);
        for (k, score) in [
            (3, 40.0),
            (4, 50.0),
            (5, 60.0),
            (6, 70.0),
            (7, 80.0),
            (8, 90.0),
        ] {
            let cosine = MOBILEFACENET_CURVE.at_far[k - 1];
            assert!((v3.score(cosine) - score).abs() < 1e-3);
            assert!((v3.cosine_at(score) - cosine).abs() < 1e-4);
        }
        let v2 = Calibration::for_version(ModelVersion::V2);
        for (k, score) in [(3, 70.0), (4, 80.0), (5, 90.0)] {
            assert!((v2.score(DLIB_CURVE.at_far[k - 1]) - score).abs() < 1e-3);
        }
    }

    /// The README's calibration table documents these knots: the test reads it back, so the two cannot
    /// drift apart.
    #[test]
    fn the_documented_knots_are_the_ones_in_use() {
        let readme = include_str!("../../README.md");
        let mut seen = 0;
        for line in readme.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | network | FAR | cosine | score ...
            let [_, network, far, cosine, ..] = cells[..] else {
                continue;
            };
            let network = network.trim_matches('`');
            let (Some(network), Some(k)) = (
                Recognition::by_file(network),
                far.strip_prefix("1e-")
                    .and_then(|k| k.parse::<usize>().ok()),
            ) else {
                continue;
            };
            let documented: f32 = cosine.trim_end_matches(" (fit)").parse().unwrap();
            assert_eq!(
                curve(network).at_far[k - 1],
                documented,
                "README: {} at 1e-{k}",
                network.file
            );
            seen += 1;
        }
        assert_eq!(
            seen, 27,
            "the README's table has 9 rates for each of 3 networks"
        );
        for network in ALL {
            let line = format!("median impostor cosine {:.4}", curve(network).median);
            assert!(
                readme.contains(&format!("`{}`: {line}", network.file)),
                "README should say: `{}`: {line}",
                network.file
            );
        }
    }
}
