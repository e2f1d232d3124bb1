//! Measure every recognition network's score calibration and verification accuracy with the server's own
//! pipeline.
//!
//! `cargo run --release --example calibrate -- [FACES_DIR]` (default ../shared/faces) embeds every photo of
//! `calibration/*/<identity>/*` (largest face) with each network, MobileFaceNet also without its mirror
//! image, then prints per network and calibration set: the impostor and genuine pair counts (pairs within a
//! set: across sets the camera, lighting and colour differ and make pairs too easy), the cosine at each
//! false-accept rate the set can resolve (at least 10 impostor pairs above it) and the false-reject rate
//! there; then the knots of `src/face/score.rs`, from the pooled sets. Rates below what the pairs resolve
//! (down to 1e-9, which search scores need) come from a normal fit of the impostor tail: the cosines at the
//! resolved rates from 1e-1 on, against the normal quantiles of those rates, fitted by least squares.
//! Last, the accuracy on `tests/pairs.tsv` at the documented same-person knot and at the best cosine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iai_server::face::embed::{ALL, Recognition, cosine};
use iai_server::face::{FacePipeline, PipelineConfig};

/// The sets pooled for the knots (README, "Scores").
const POOLED: &[&str] = &["orl", "wild_extra", "yale"];
const SETS: &[&str] = &["orl", "wild_extra", "yale", "yale_b_cropped"];

/// A network as calibrated: a spec, and whether the mirror image is averaged in.
struct Variant {
    spec: &'static Recognition,
    mirror: bool,
}

impl Variant {
    fn name(&self) -> String {
        format!(
            "{}{}",
            self.spec.file,
            if self.mirror { "" } else { " (no mirror)" }
        )
    }
}

/// Embeddings of one photo by each variant.
struct Embedded {
    identity: String,
    vectors: Vec<Vec<f32>>,
}

fn embed_file(pipeline: &FacePipeline, variants: &[Variant], path: &Path) -> Option<Vec<Vec<f32>>> {
    let image = image::open(path).ok()?.into_rgb8();
    let faces = pipeline.detect_blocking(&image, false).ok()?;
    let face = faces.first()?;
    variants
        .iter()
        .map(|v| {
            let embedder = pipeline.embedder_for(v.spec)?;
            let crop = embedder.align(&image, &face.landmarks);
            embedder.embed_aligned_with(&crop, v.mirror).ok()
        })
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Impostor (sorted, highest first) and genuine cosines over pairs within each named set, one photo
/// embedded by variant `a` and the other by `b` (each unordered pair once when they are the same variant,
/// both ways round when not).
fn pairs_within(embedded: &[Embedded], sets: &[&str], a: usize, b: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut impostor, mut genuine) = (Vec::new(), Vec::new());
    for set in sets {
        let members: Vec<&Embedded> = embedded
            .iter()
            .filter(|e| e.identity.split('/').next() == Some(set))
            .collect();
        for i in 0..members.len() {
            for j in 0..members.len() {
                if i == j || (a == b && j < i) {
                    continue;
                }
                let c = cosine(&members[i].vectors[a], &members[j].vectors[b]);
                if members[i].identity == members[j].identity {
                    genuine.push(c)
                } else {
                    impostor.push(c)
                }
            }
        }
    }
    impostor.sort_by(|a, b| b.total_cmp(a));
    (impostor, genuine)
}

/// The same person under two names in the calibration photos: deepface's test subject p01 is Angelina Jolie.
fn canonical_identity(identity: String) -> String {
    identity.replace("wild_extra/deepface_p01", "wild_extra/fnp_angelina_jolie")
}

/// The cosine above which `rate` of the impostor pairs lie, when at least 10 pairs are above it.
fn resolved_quantile(sorted_desc: &[f32], rate: f64) -> Option<f32> {
    let above = sorted_desc.len() as f64 * rate;
    (above >= 10.0).then(|| sorted_desc[(above.ceil() as usize).clamp(1, sorted_desc.len()) - 1])
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Rates of the knots: 1e-1 .. 1e-9.
fn rates() -> Vec<f64> {
    (1..=9).map(|k| 10f64.powi(-k)).collect()
}

fn main() -> anyhow::Result<()> {
    let faces_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/faces".into()),
    );
    let pipeline = FacePipeline::load(
        Path::new("models"),
        &PipelineConfig {
            intra_threads: 2,
            max_concurrent: 1,
            decode_budget_bytes: 1 << 30,
            retired_models: ALL.iter().map(|r| r.file.to_owned()).collect(),
        },
    )?;
    let mut variants: Vec<Variant> = ALL
        .iter()
        .map(|&spec| Variant { spec, mirror: true })
        .collect();
    variants.insert(
        1,
        Variant {
            spec: ALL[0],
            mirror: false,
        },
    );

    let mut embedded = Vec::new();
    let mut missed = 0;
    for set in SETS {
        for identity in files(&faces_dir.join("calibration").join(set))
            .into_iter()
            .filter(|p| p.is_dir())
        {
            for file in files(&identity) {
                match embed_file(&pipeline, &variants, &file) {
                    Some(vectors) => embedded.push(Embedded {
                        identity: canonical_identity(format!(
                            "{set}/{}",
                            identity.file_name().unwrap().to_string_lossy()
                        )),
                        vectors,
                    }),
                    None => missed += 1,
                }
            }
        }
        eprintln!(
            "{set}: {} embedded so far, {missed} without a face",
            embedded.len()
        );
    }

    // tests/pairs.tsv, embedded once per file.
    let tests_dir = faces_dir.join("tests");
    let pairs = std::fs::read_to_string(tests_dir.join("pairs.tsv"))?;
    let mut cache: HashMap<String, Option<Vec<Vec<f32>>>> = HashMap::new();
    let mut test_pairs = Vec::new();
    for line in pairs.lines().filter(|l| !l.starts_with("path")) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        for p in &cols[..2] {
            cache
                .entry(p.to_string())
                .or_insert_with(|| embed_file(&pipeline, &variants, &tests_dir.join(p)));
        }
        test_pairs.push((
            cols[0].to_string(),
            cols[1].to_string(),
            cols[2].trim() == "1" || cols[2].trim() == "same",
        ));
    }

    for (v, variant) in variants.iter().enumerate() {
        println!(
            "== {} ({missed} calibration photos without a face)",
            variant.name()
        );
        let mut sets: Vec<Vec<&str>> = SETS.iter().map(|s| vec![*s]).collect();
        sets.insert(0, POOLED.to_vec());
        let mut pooled_fit = None;
        for group in &sets {
            let (impostor, genuine) = pairs_within(&embedded, group, v, v);
            let median = impostor[impostor.len() / 2];
            let mut line = format!(
                "{:<20} {:>7} impostor, {:>5} genuine pairs; median impostor {median:.4}",
                group.join("+"),
                impostor.len(),
                genuine.len()
            );
            let mut resolved = Vec::new();
            for rate in rates() {
                match resolved_quantile(&impostor, rate) {
                    Some(t) => {
                        let frr = genuine.iter().filter(|&&c| c <= t).count() as f64
                            / genuine.len() as f64;
                        if rate <= 1e-3 {
                            line.push_str(&format!("; FAR {rate:e}: cos {t:.4} FRR {frr:.3}"));
                        }
                        resolved.push((rate, t));
                    }
                    None => {
                        if rate <= 1e-3 {
                            line.push_str(&format!("; FAR {rate:e}: not resolved"));
                        }
                    }
                }
            }
            println!("{line}");
            if pooled_fit.is_none() {
                pooled_fit = Some((median, resolved, genuine));
            }
        }
        let (median, resolved, genuine) = pooled_fit.expect("the pooled sets come first");
        // Least squares of cosine on the normal quantile over the resolved rates.
        let points: Vec<(f64, f64)> = resolved
            .iter()
            .map(|&(rate, t)| (normal_quantile(1.0 - rate), f64::from(t)))
            .collect();
        let n = points.len() as f64;
        let (sx, sy) = points
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let (mx, my) = (sx / n, sy / n);
        let slope = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum::<f64>()
            / points.iter().map(|(x, _)| (x - mx).powi(2)).sum::<f64>();
        let fit = |rate: f64| (my + slope * (normal_quantile(1.0 - rate) - mx)).min(0.9999);
        let worst = points
            .iter()
            .map(|(x, y)| (my + slope * (x - mx) - y).abs())
            .fold(0.0, f64::max);
        println!(
            "tail fit over {} resolved rates (1e-1 .. {:e}): cosine = {my:.4} + {slope:.4} x (z - {mx:.3}); \
             largest miss at a resolved rate {worst:.4}",
            points.len(),
            resolved.last().map_or(1.0, |r| r.0)
        );
        let mut knots = vec![format!("median {median:.4}")];
        for rate in rates() {
            let measured = resolved
                .iter()
                .find(|r| r.0 == rate)
                .map(|r| f64::from(r.1));
            let cos = measured.unwrap_or_else(|| fit(rate));
            let frr = genuine.iter().filter(|&&c| f64::from(c) <= cos).count() as f64
                / genuine.len() as f64;
            knots.push(format!(
                "{rate:e} {cos:.4}{} FRR {frr:.3}",
                if measured.is_some() { "" } else { " (fit)" }
            ));
        }
        println!("knots (pooled): {}", knots.join(", "));
        let test_cos: Vec<(f32, bool)> = test_pairs
            .iter()
            .filter_map(|(a, b, same)| {
                let (ea, eb) = (cache[a].as_ref()?, cache[b].as_ref()?);
                Some((cosine(&ea[v], &eb[v]), *same))
            })
            .collect();
        let accuracy = |t: f32| {
            test_cos
                .iter()
                .filter(|(c, same)| (*c >= t) == *same)
                .count() as f64
                / test_pairs.len() as f64
        };
        let best = (0..2000)
            .map(|i| -1.0 + i as f32 / 1000.0)
            .max_by(|a, b| accuracy(*a).total_cmp(&accuracy(*b)))
            .unwrap();
        let at_1e3 = resolved
            .iter()
            .find(|r| r.0 == 1e-3)
            .map_or(f32::NAN, |r| r.1);
        println!(
            "tests/pairs.tsv: {} of {} pairs with both faces found; accuracy {:.4} at the FAR 1e-3 knot, best {:.4} at cosine {best:.3}",
            test_cos.len(),
            test_pairs.len(),
            accuracy(at_1e3),
            accuracy(best)
        );
    }
    mirror_only_on_one_side(&embedded);
    Ok(())
}

/// MobileFaceNet with the mirror image averaged on one side of each pair only (stored faces mirrored,
/// queries in one pass): false accepts and rejects at the knots of the mirrored curve, beside both sides
/// mirrored (variants 0 and 1 are MobileFaceNet with and without the mirror image).
fn mirror_only_on_one_side(embedded: &[Embedded]) {
    let knots = iai_server::face::score::curve(&iai_server::face::embed::MOBILEFACENET_192).at_far;
    for (label, a, b) in [("both mirrored", 0, 0), ("one side mirrored", 0, 1)] {
        let (impostor, genuine) = pairs_within(embedded, POOLED, a, b);
        let share = |v: &[f32], f: &dyn Fn(f32) -> bool| {
            v.iter().filter(|&&c| f(c)).count() as f64 / v.len() as f64
        };
        let mut line = format!("MobileFaceNet, {label} (pooled): ");
        for (rate, k) in [(1e-3, 2), (1e-5, 4), (1e-6, 5)] {
            let t = knots[k];
            line.push_str(&format!(
                "at the {rate:e} knot ({t:.4}): FAR {:.2e}, FRR {:.3}; ",
                share(&impostor, &|c| c > t),
                share(&genuine, &|c| c <= t)
            ));
        }
        println!("{line}");
    }
}
