//! What a score means for the people of one group (`iai-server calibrate --group G`, and the console's group
//! page): every pair of the group's faces that belong to two different persons is taken as an impostor pair,
//! as if the group's persons were all different people, and the share of those pairs reaching each score is
//! that population's false-accept rate there. The documented rates (README, "Scores") are those of adults in
//! colour photos; children, or many people of one family or one population, score higher among themselves.
//!
//! It reads the stored embeddings only (no inference). The cosines go into a histogram of 1e-5 wide bins,
//! filled in blocks of rows by a pool of its own (`threads`: the console's action uses one, admitted as one
//! index scan, so searches keep the other cores and rayon's global pool); a group of more than `MAX_FACES`
//! faces is measured on an even sample of them, and the report says so.

use rayon::prelude::*;

use serde::Serialize;

use super::GroupIndex;
use super::flat::dot_block;
use crate::face::ModelVersion;
use crate::face::score::Calibration;

/// At most this many faces are compared pairwise (20,000 faces: 2e8 pairs, a few seconds per core).
pub const MAX_FACES: usize = 20_000;
/// A rate is given where at least this many impostor pairs reach it.
pub const MIN_PAIRS: u64 = 10;
/// Cosine bins over [-1, 1].
const BINS: usize = 200_001;
/// Rows of the pair triangle per parallel task.
const ROWS_PER_TASK: usize = 256;
/// Scores reported, and the rates 10^-k whose scores are looked for.
const SCORES: [f32; 15] = [
    30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0,
];
const RATE_EXPONENTS: [i32; 4] = [3, 4, 5, 6];

/// A group's faces copied under its read lock: the owner (a person number) and vector of each.
pub struct GroupFaces {
    pub version: ModelVersion,
    pub model: &'static crate::face::embed::Recognition,
    pub persons: usize,
    /// Faces in the group (before any sampling).
    pub faces: usize,
    dim: usize,
    owners: Vec<u32>,
    vectors: Vec<f32>,
}

impl GroupFaces {
    /// The faces to calibrate on from (owner, vector) pairs in storage order: all of them, or `MAX_FACES`
    /// spread evenly over them.
    fn sample<'a>(
        version: ModelVersion,
        model: &'static crate::face::embed::Recognition,
        persons: usize,
        faces: impl ExactSizeIterator<Item = (u32, &'a [f32])>,
    ) -> Self {
        let total = faces.len();
        let kept = total.min(MAX_FACES);
        let dim = model.dim;
        let (mut owners, mut vectors) = (Vec::with_capacity(kept), Vec::with_capacity(kept * dim));
        // Face i is kept when it is the first at or after a multiple of total / kept.
        let mut next = 0usize;
        for (i, (owner, vector)) in faces.enumerate() {
            if owners.len() < kept && i * kept >= next * total && vector.len() == dim {
                owners.push(owner);
                vectors.extend_from_slice(vector);
                next += 1;
            }
        }
        GroupFaces {
            version,
            model,
            persons,
            faces: total,
            dim,
            owners,
            vectors,
        }
    }

    /// Faces compared: all of the group's, or the sample.
    pub fn compared(&self) -> usize {
        self.owners.len()
    }

    /// From a group's stored rows (person, face key, embedding) as the store gives them (operator tools:
    /// no index is built).
    pub fn from_rows(
        version: ModelVersion,
        model: &'static crate::face::embed::Recognition,
        rows: &[(String, u64, Vec<f32>)],
    ) -> Self {
        let mut numbers = std::collections::HashMap::new();
        let owners: Vec<u32> = rows
            .iter()
            .map(|(person, _, _)| {
                let next = numbers.len() as u32;
                *numbers.entry(person.as_str()).or_insert(next)
            })
            .collect();
        Self::sample(
            version,
            model,
            numbers.len(),
            owners
                .iter()
                .zip(rows)
                .map(|(&owner, (_, _, vector))| (owner, vector.as_slice())),
        )
    }
}

/// One group's faces to calibrate on, read from the database (operator tools: no index is built), or None
/// when there is no such group.
pub fn load_group(
    view: &dyn crate::store::changes::StartView,
    group_id: &str,
) -> Result<Option<GroupFaces>, crate::store::StoreError> {
    let Some(group) = view.groups()?.into_iter().find(|g| g.group_id == group_id) else {
        return Ok(None);
    };
    let (version, model) = super::resolve(&group.face_model_version, &group.serving_model);
    let rows = view.group_vectors(group_id, model.file)?;
    Ok(Some(GroupFaces::from_rows(version, model, &rows)))
}

impl GroupIndex {
    /// The faces to calibrate on: all of them, or `MAX_FACES` spread evenly over them.
    pub fn faces_for_calibration(&self) -> GroupFaces {
        let snapshot = self.faces.snapshot();
        let owned: Vec<(u32, &[f32])> = snapshot
            .iter()
            .filter_map(|(key, vector)| Some((*self.face_owner.get(&key)?, vector)))
            .collect();
        GroupFaces::sample(
            self.version,
            self.model,
            self.person_count(),
            owned.into_iter(),
        )
    }
}

/// The measurement on one score scale.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ScaleReport {
    /// `search` (SearchFaces, SearchPersons, FaceMatchThreshold) or `compare` (CompareFace, VerifyFace);
    /// model 3.0 uses one scale for both.
    pub scale: &'static str,
    pub at_score: Vec<AtScore>,
    pub score_at_rate: Vec<ScoreAtRate>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AtScore {
    pub score: f32,
    /// Impostor pairs scoring at least `score`.
    pub pairs: u64,
    /// `pairs` over all impostor pairs.
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ScoreAtRate {
    /// A false-accept rate: 1e-3 .. 1e-6.
    pub rate: f64,
    /// The lowest score that at most that share of the impostor pairs reach. None: too few pairs to tell
    /// (fewer than `MIN_PAIRS` at that rate), or no score up to 100 keeps the pairs that few.
    pub score: Option<f32>,
    /// Impostor pairs at or above `score`.
    pub pairs: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    pub face_model_version: &'static str,
    pub persons: usize,
    pub faces: usize,
    /// Faces compared (all, or the sample).
    pub faces_compared: usize,
    /// Pairs of faces of two different persons.
    pub impostor_pairs: u64,
    pub scales: Vec<ScaleReport>,
}

/// Histogram bin of a cosine.
fn bin(cosine: f32) -> usize {
    (((cosine.clamp(-1.0, 1.0) + 1.0) * 100_000.0) as usize).min(BINS - 1)
}

/// The lower edge of a bin.
fn edge(bin: usize) -> f32 {
    bin as f32 / 100_000.0 - 1.0
}

/// Cosines of the pairs (i, j > i) of faces of different persons for the rows `rows`, binned.
fn histogram_rows(faces: &GroupFaces, rows: std::ops::Range<usize>) -> Vec<u64> {
    let n = faces.owners.len();
    let dim = faces.dim;
    let mut hist = vec![0u64; BINS];
    let mut scores = vec![0f32; n];
    for i in rows {
        let rest = &faces.vectors[(i + 1) * dim..];
        let scores = &mut scores[..n - i - 1];
        dot_block(&faces.vectors[i * dim..(i + 1) * dim], rest, scores);
        let owner = faces.owners[i];
        for (j, &cosine) in scores.iter().enumerate() {
            if faces.owners[i + 1 + j] != owner {
                hist[bin(cosine)] += 1;
            }
        }
    }
    hist
}

/// Every pair's cosine, binned: on this thread, or split over `threads` threads of a pool of its own
/// (never rayon's global pool, which searches use).
fn histogram(faces: &GroupFaces, threads: usize) -> Vec<u64> {
    let n = faces.owners.len();
    if threads <= 1 || n < 2 * ROWS_PER_TASK {
        return histogram_rows(faces, 0..n);
    }
    let parallel = || {
        // Row i has n - i - 1 pairs: blocks of rows, so the early (long) rows spread over the threads.
        let blocks: Vec<std::ops::Range<usize>> = (0..n)
            .step_by(ROWS_PER_TASK)
            .map(|start| start..(start + ROWS_PER_TASK).min(n))
            .collect();
        blocks
            .into_par_iter()
            .with_max_len(1)
            .map(|rows| histogram_rows(faces, rows))
            .reduce(
                || vec![0u64; BINS],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            )
    };
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("iai-calibrate-{i}"))
        .build()
    {
        Ok(pool) => pool.install(parallel),
        // No thread to be had: measure on this one.
        Err(_) => histogram_rows(faces, 0..n),
    }
}

/// `at_or_above[b]`: the pairs in bin `b` and above (`at_or_above[BINS]` = 0, `[0]` = every pair).
fn scale_report(name: &'static str, calibration: &Calibration, at_or_above: &[u64]) -> ScaleReport {
    let total = at_or_above[0];
    let rate = |pairs: u64| pairs as f64 / total.max(1) as f64;
    let at_score = SCORES
        .iter()
        .map(|&score| {
            // The first bin whose lower edge reaches the score's cosine.
            let cosine = calibration.cosine_at(score);
            let first = bin(cosine) + usize::from(edge(bin(cosine)) < cosine);
            let pairs = at_or_above[first.min(BINS)];
            AtScore {
                score,
                pairs,
                rate: rate(pairs),
            }
        })
        .collect();
    let score_at_rate = RATE_EXPONENTS
        .iter()
        .map(|&k| {
            let allowed = total as f64 * 10f64.powi(-k);
            if allowed < MIN_PAIRS as f64 {
                return ScoreAtRate {
                    rate: 10f64.powi(-k),
                    score: None,
                    pairs: 0,
                };
            }
            // The lowest bin edge with at most `allowed` pairs at or above it, when a score up to 100
            // reaches it (between children, or with one photo enrolled as two persons, none may).
            let first = (0..=BINS)
                .find(|&b| at_or_above[b] as f64 <= allowed)
                .unwrap_or(BINS);
            let cosine = if first >= BINS { 1.0 } else { edge(first) };
            let reachable = first < BINS && cosine <= calibration.cosine_at(100.0);
            ScoreAtRate {
                rate: 10f64.powi(-k),
                score: reachable.then(|| (calibration.score(cosine) * 100.0).ceil() / 100.0),
                pairs: if reachable { at_or_above[first] } else { 0 },
            }
        })
        .collect();
    ScaleReport {
        scale: name,
        at_score,
        score_at_rate,
    }
}

/// Measure the group on `threads` threads of a pool of its own: blocking, CPU-bound (seconds for 10,000
/// faces); run it off the async runtime.
pub fn measure(faces: &GroupFaces, threads: usize) -> Report {
    let hist = histogram(faces, threads);
    let mut at_or_above = vec![0u64; BINS + 1];
    for b in (0..BINS).rev() {
        at_or_above[b] = at_or_above[b + 1] + hist[b];
    }
    let total = at_or_above[0];
    let mut scales = vec![scale_report(
        "search",
        &Calibration::search(faces.model),
        &at_or_above,
    )];
    if faces.version == ModelVersion::V2 {
        scales.push(scale_report(
            "compare",
            &Calibration::new(faces.model, faces.version),
            &at_or_above,
        ));
    }
    Report {
        face_model_version: faces.version.as_str(),
        persons: faces.persons,
        faces: faces.faces,
        faces_compared: faces.compared(),
        impostor_pairs: total,
        scales,
    }
}

impl Report {
    /// The report as the command prints it.
    pub fn to_text(&self, group: &str) -> String {
        let mut out = format!(
            "group {group}: model {}, {} persons, {} faces{}; {} pairs of faces of different persons \
             taken as impostors\n",
            self.face_model_version,
            self.persons,
            self.faces,
            if self.faces_compared < self.faces {
                format!(" (an even sample of {} compared)", self.faces_compared)
            } else {
                String::new()
            },
            self.impostor_pairs
        );
        for scale in &self.scales {
            out.push_str(&format!(
                "\n{} scores:\n  score  pairs at or above  false-accept rate\n",
                scale.scale
            ));
            for row in &scale.at_score {
                let rate = if row.pairs == 0 {
                    "0".to_owned()
                } else {
                    format!("{:.1e}", row.rate)
                };
                out.push_str(&format!("  {:>5}  {:>17}  {rate}\n", row.score, row.pairs));
            }
            out.push_str("  rate   score for it  pairs at or above\n");
            for row in &scale.score_at_rate {
                match row.score {
                    Some(score) => out.push_str(&format!(
                        "  {:.0e}  {:>12.2}  {:>17}\n",
                        row.rate, score, row.pairs
                    )),
                    None if (self.impostor_pairs as f64 * row.rate) < MIN_PAIRS as f64 => out
                        .push_str(&format!(
                            "  {:.0e}  {:>12}  (needs at least {} pairs; the group has {})\n",
                            row.rate,
                            "-",
                            (MIN_PAIRS as f64 / row.rate).round() as u64,
                            self.impostor_pairs
                        )),
                    None => out.push_str(&format!(
                        "  {:.0e}  {:>12}  (no score up to 100 keeps the pairs that few)\n",
                        row.rate, "-"
                    )),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::embed::MOBILEFACENET_192;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        crate::face::embed::normalise(&mut v);
        v
    }

    fn faces_of(persons: &[Vec<Vec<f32>>]) -> GroupFaces {
        let rows: Vec<(String, u64, Vec<f32>)> = persons
            .iter()
            .enumerate()
            .flat_map(|(p, faces)| {
                faces
                    .iter()
                    .enumerate()
                    .map(move |(f, v)| (format!("p{p}"), (p * 10 + f) as u64, v.clone()))
            })
            .collect();
        GroupFaces::from_rows(ModelVersion::V3, &MOBILEFACENET_192, &rows)
    }

    #[test]
    fn threads_and_samples_do_not_change_the_counts() {
        let dim = MOBILEFACENET_192.dim;
        let persons: Vec<Vec<Vec<f32>>> = (0..700u64).map(|p| vec![unit(p, dim)]).collect();
        let faces = faces_of(&persons);
        assert_eq!(measure(&faces, 1), measure(&faces, 2));
        // An even sample of exactly MAX_FACES, whatever the group's size.
        let big: Vec<Vec<Vec<f32>>> = (0..MAX_FACES as u64 + 1)
            .map(|_| vec![vec![1.0 / (dim as f32).sqrt(); dim]])
            .collect();
        let sampled = faces_of(&big);
        assert_eq!(
            (sampled.owners.len(), sampled.faces),
            (MAX_FACES, MAX_FACES + 1)
        );
        assert_eq!(faces_of(&big[..10]).owners.len(), 10);
    }

    #[test]
    fn a_rate_no_score_up_to_100_reaches_has_no_score() {
        // 150 persons enrolled from one photo: 11,175 pairs at cosine 1.
        let dim = MOBILEFACENET_192.dim;
        let persons: Vec<Vec<Vec<f32>>> = (0..150).map(|_| vec![unit(7, dim)]).collect();
        let report = measure(&faces_of(&persons), 1);
        let rate = &report.scales[0].score_at_rate[0];
        assert_eq!((rate.score, rate.pairs), (None, 0));
        assert!(report.to_text("g").contains("no score up to 100"));
        // Empty and one-face groups: no pairs, no panic.
        for n in [0, 1] {
            let report = measure(&faces_of(&persons[..n]), 2);
            assert_eq!(report.impostor_pairs, 0);
        }
    }

    /// The histogram's counts equal a plain count of the pairs, and pairs of one person are left out.
    #[test]
    fn the_rates_are_plain_counts_of_impostor_pairs() {
        let mut index = GroupIndex::new(ModelVersion::V3, &MOBILEFACENET_192);
        let dim = MOBILEFACENET_192.dim;
        let mut all = Vec::new();
        for p in 0..300u64 {
            // Every tenth person has two faces, nearly the same.
            let mut faces = vec![(p * 2, unit(p, dim))];
            if p % 10 == 0 {
                let mut twin = unit(p, dim);
                twin[0] += 0.01;
                crate::face::embed::normalise(&mut twin);
                faces.push((p * 2 + 1, twin));
            }
            all.extend(faces.iter().map(|(_, v)| (p, v.clone())));
            index.add_faces(&format!("p{p}"), &faces);
        }
        let report = measure(&index.faces_for_calibration(), 2);
        let calibration = Calibration::search(&MOBILEFACENET_192);
        let mut impostor = Vec::new();
        for (i, (pa, a)) in all.iter().enumerate() {
            for (pb, b) in &all[i + 1..] {
                if pa != pb {
                    impostor.push(crate::face::embed::cosine(a, b));
                }
            }
        }
        assert_eq!(report.impostor_pairs, impostor.len() as u64);
        assert_eq!(report.persons, 300);
        assert_eq!(report.faces, 330);
        for row in &report.scales[0].at_score {
            let t = calibration.cosine_at(row.score);
            let plain = impostor.iter().filter(|&&c| c >= t).count() as u64;
            // Only a pair within 1e-5 of the threshold may fall on the other side.
            let near = impostor.iter().filter(|&&c| (c - t).abs() < 2e-5).count() as u64;
            assert!(row.pairs.abs_diff(plain) <= near, "{row:?} vs {plain}");
        }
        // 54,255 pairs: 1e-3 is measured (at most 54 pairs at or above its score), 1e-4 (5.4) is not.
        let rates = &report.scales[0].score_at_rate;
        assert!(
            rates[0].score.is_some() && rates[0].pairs <= 54,
            "{:?}",
            rates[0]
        );
        assert!(rates[1].score.is_none());
    }
}
