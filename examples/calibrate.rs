//! Measure score calibration and verification accuracy with the server's own pipeline.
//!
//! `cargo run --release --example calibrate -- [FACES_DIR]` (default ../shared/faces): embeds every photo of
//! `calibration/*/<identity>/*` with both model versions (largest face), then prints, per version and set,
//! the cosine at false-accept rates 1e-3, 1e-4, 1e-5 over the different-identity pairs within the set, the
//! false-reject rate there over its same-identity pairs, the knots of `src/face/score.rs` (ORL + wild_extra),
//! and the accuracy on `tests/pairs.tsv` at the knots and at the best cosine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iai_server::face::embed::cosine;
use iai_server::face::{FacePipeline, ModelVersion, PipelineConfig};

struct Embedded {
    identity: String,
    v3: Vec<f32>,
    v2: Vec<f32>,
}

/// (3.0, 2.0) embeddings of one photo.
type BothEmbeddings = (Vec<f32>, Vec<f32>);

fn embed_file(pipeline: &FacePipeline, path: &Path) -> Option<BothEmbeddings> {
    let image = image::open(path).ok()?.into_rgb8();
    let faces = pipeline.detect_blocking(&image, false).ok()?;
    let face = faces.first()?;
    let v3 = pipeline
        .embed_blocking(&image, face, ModelVersion::V3)
        .ok()?;
    let v2 = pipeline
        .embed_blocking(&image, face, ModelVersion::V2)
        .ok()?;
    Some((v3, v2))
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

/// Impostor (sorted, highest first) and genuine cosines over pairs within each named set; cross-set pairs are
/// left out, being easier than any real comparison (other camera, lighting, colour).
fn pairs_within(
    embedded: &[Embedded],
    sets: &[&str],
    version: ModelVersion,
) -> (Vec<f32>, Vec<f32>) {
    let pick = |e: &Embedded| {
        if version == ModelVersion::V3 {
            e.v3.clone()
        } else {
            e.v2.clone()
        }
    };
    let (mut impostor, mut genuine) = (Vec::new(), Vec::new());
    for set in sets {
        let members: Vec<&Embedded> = embedded
            .iter()
            .filter(|e| e.identity.split('/').next() == Some(set))
            .collect();
        let vectors: Vec<Vec<f32>> = members.iter().map(|e| pick(e)).collect();
        for i in 0..members.len() {
            for j in i + 1..members.len() {
                let c = cosine(&vectors[i], &vectors[j]);
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

fn quantile_above(sorted_desc: &[f32], rate: f64) -> f32 {
    let index = ((sorted_desc.len() as f64 * rate).ceil() as usize).clamp(1, sorted_desc.len()) - 1;
    sorted_desc[index]
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
        },
    )?;

    let mut embedded = Vec::new();
    let mut missed = 0;
    for set in files(&faces_dir.join("calibration"))
        .into_iter()
        .filter(|p| p.is_dir())
    {
        for identity in files(&set).into_iter().filter(|p| p.is_dir()) {
            for file in files(&identity) {
                match embed_file(&pipeline, &file) {
                    Some((v3, v2)) => embedded.push(Embedded {
                        identity: canonical_identity(format!(
                            "{}/{}",
                            set.file_name().unwrap().to_string_lossy(),
                            identity.file_name().unwrap().to_string_lossy()
                        )),
                        v3,
                        v2,
                    }),
                    None => missed += 1,
                }
            }
        }
        eprintln!(
            "{}: {} embedded so far, {missed} without a face",
            set.display(),
            embedded.len()
        );
    }

    // tests/pairs.tsv, embedded once per file.
    let tests_dir = faces_dir.join("tests");
    let pairs = std::fs::read_to_string(tests_dir.join("pairs.tsv"))?;
    let mut cache: HashMap<String, Option<BothEmbeddings>> = HashMap::new();
    let mut test_pairs = Vec::new();
    for line in pairs.lines().filter(|l| !l.starts_with("path")) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        for p in &cols[..2] {
            cache
                .entry(p.to_string())
                .or_insert_with(|| embed_file(&pipeline, &tests_dir.join(p)));
        }
        test_pairs.push((
            cols[0].to_string(),
            cols[1].to_string(),
            cols[2].trim() == "1" || cols[2].trim() == "same",
        ));
    }

    if let Ok(path) = std::env::var("IAI_CALIBRATION_DUMP") {
        // One JSON line per photo, for analysis outside this program.
        let mut out = String::new();
        for e in &embedded {
            out.push_str(
                &serde_json::json!({"identity": e.identity, "v3": e.v3, "v2": e.v2}).to_string(),
            );
            out.push('\n');
        }
        for (file, e) in &cache {
            if let Some((v3, v2)) = e {
                out.push_str(
                    &serde_json::json!({"identity": format!("tests/{file}"), "v3": v3, "v2": v2})
                        .to_string(),
                );
                out.push('\n');
            }
        }
        std::fs::write(path, out)?;
    }

    for version in [ModelVersion::V3, ModelVersion::V2] {
        println!(
            "== model {} ({missed} calibration photos without a face)",
            version.as_str()
        );
        let mut knots = None;
        for sets in [
            &["orl", "wild_extra"][..],
            &["orl"],
            &["wild_extra"],
            &["yale"],
            &["yale_b_cropped"],
        ] {
            let (impostor, genuine) = pairs_within(&embedded, sets, version);
            let median = impostor[impostor.len() / 2];
            let mut line = format!(
                "{:<16} {:>7} impostor, {:>5} genuine pairs; median impostor {median:.4}",
                sets.join("+"),
                impostor.len(),
                genuine.len()
            );
            let mut at = Vec::new();
            for rate in [1e-3, 1e-4, 1e-5] {
                let t = quantile_above(&impostor, rate);
                let frr = genuine.iter().filter(|&&c| c <= t).count() as f64 / genuine.len() as f64;
                line.push_str(&format!("; FAR {rate:e}: cos {t:.4} FRR {frr:.3}"));
                at.push(t);
            }
            println!("{line}");
            knots.get_or_insert((median, at));
        }
        let (median, at) = knots.unwrap();
        println!(
            "knots (cosine): median {median:.4}, FAR 1e-3 {:.4}, 1e-4 {:.4}, 1e-5 {:.4}",
            at[0], at[1], at[2]
        );
        let test_cos: Vec<(f32, bool)> = test_pairs
            .iter()
            .filter_map(|(a, b, same)| {
                let (ea, eb) = (cache[a].as_ref()?, cache[b].as_ref()?);
                let (va, vb) = if version == ModelVersion::V3 {
                    (&ea.0, &eb.0)
                } else {
                    (&ea.1, &eb.1)
                };
                Some((cosine(va, vb), *same))
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
        println!(
            "tests/pairs.tsv: {} of {} pairs with both faces found; accuracy {:.4} at the FAR 1e-3 knot, {:.4} at the 1e-4 knot, best {:.4} at cosine {best:.3}",
            test_cos.len(),
            test_pairs.len(),
            accuracy(at[0]),
            accuracy(at[1]),
            accuracy(best)
        );
    }
    Ok(())
}
