//! Measure every recognition network's score calibration, and who it holds for, with the server's own
//! pipeline.
//!
//! `cargo run --release --example calibrate -- [FACES_DIR] [--cache FILE] [--top N]` (default
//! ../shared/faces) embeds the largest face of every photo of `calibration/*/<identity>/*` and of
//! `calibration/utk_distinct` (each chip its own person) with each network (MobileFaceNet also without its
//! mirror image), then prints, per network:
//!
//! - the knots of `src/face/score.rs` from the colour photos: impostor pairs of `utk_distinct` aged 20 and
//!   over, plus those of `wild_extra` (pairs within each set: across sets the camera and light differ and
//!   make pairs too easy), less the pairs of `calibrate_same_person.tsv` (one person twice, found by looking
//!   at the top-scoring pairs, which `--top N` lists). A rate is measured where at least 10 impostor pairs
//!   lie above it, with a 95% interval of its cosine (the order statistics at ranks k -/+ 1.96 sqrt(k));
//!   below the measured range it is fitted. Three families of tail are tried on the three measured rates
//!   before the last and judged by how well they predict the last one; the best, refitted on the last three
//!   measured rates, gives the rest;
//! - each set on its own, the grey lab sets (ORL, Yale, Yale B) beside, not pooled;
//! - the false-accept rate at each documented threshold (the code's own, `Calibration`) by who is compared:
//!   `utk_distinct`'s age bands, and for adults gender and race, within and across;
//! - the genuine acceptance at those thresholds on every set with same-person pairs.
//!
//! `--cache FILE` keeps the embeddings between runs (delete it when the pipeline or a model changes).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use iai_server::face::embed::{ALL, DLIB_128, MOBILEFACENET_192, Recognition, cosine};
use iai_server::face::score::Calibration;
use iai_server::face::{FacePipeline, ModelVersion, PipelineConfig};
use serde::{Deserialize, Serialize};

/// Sets of photos by identity; `utk_distinct` is read from its labels.
const SETS: &[&str] = &["orl", "wild_extra", "yale", "yale_b_cropped"];
const UTK: &str = "utk_distinct";
const BANDS: [&str; 5] = ["0-12", "13-19", "20-39", "40-59", "60plus"];
const RACES: [&str; 5] = ["White", "Black", "Asian", "Indian", "Others"];
/// First band of adults (20 and over).
const ADULT: usize = 2;

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

#[derive(Clone, Copy, Serialize, Deserialize)]
struct UtkLabel {
    band: usize,
    female: bool,
    race: usize,
}

/// Embeddings of one photo by each variant.
#[derive(Serialize, Deserialize)]
struct Embedded {
    /// `set/identity`.
    identity: String,
    /// Path under `calibration/`.
    path: String,
    utk: Option<UtkLabel>,
    vectors: Vec<Vec<f32>>,
}

impl Embedded {
    fn set(&self) -> &str {
        self.identity.split('/').next().unwrap_or("")
    }
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

/// The same person under two names in the calibration photos: deepface's test subject p01 is Angelina Jolie.
fn canonical_identity(identity: String) -> String {
    identity.replace("wild_extra/deepface_p01", "wild_extra/fnp_angelina_jolie")
}

/// Every photo of the calibration sets, embedded (or read back from `cache`).
fn embed_all(
    pipeline: &FacePipeline,
    variants: &[Variant],
    calibration: &Path,
) -> anyhow::Result<Vec<Embedded>> {
    let mut embedded = Vec::new();
    let mut missed = 0;
    for set in SETS {
        for identity in files(&calibration.join(set))
            .into_iter()
            .filter(|p| p.is_dir())
        {
            for file in files(&identity) {
                match embed_file(pipeline, variants, &file) {
                    Some(vectors) => embedded.push(Embedded {
                        identity: canonical_identity(format!(
                            "{set}/{}",
                            identity.file_name().unwrap().to_string_lossy()
                        )),
                        path: file
                            .strip_prefix(calibration)?
                            .to_string_lossy()
                            .into_owned(),
                        utk: None,
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
    let utk = calibration.join(UTK);
    for line in std::fs::read_to_string(utk.join("labels.tsv"))?
        .lines()
        .skip(1)
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let [path, _age, gender, race] = cols[..] else {
            continue;
        };
        let Some(band) = BANDS
            .iter()
            .position(|b| path.starts_with(&format!("{b}/")))
        else {
            continue;
        };
        let stem = path.rsplit('/').next().unwrap_or(path);
        match embed_file(pipeline, variants, &utk.join(path)) {
            Some(vectors) => embedded.push(Embedded {
                identity: format!("{UTK}/{}", stem.trim_end_matches(".jpg.chip.jpg")),
                path: format!("{UTK}/{path}"),
                utk: Some(UtkLabel {
                    band,
                    female: gender == "1",
                    race: race.parse()?,
                }),
                vectors,
            }),
            None => missed += 1,
        }
    }
    eprintln!(
        "{UTK}: {} embedded in all, {missed} without a face",
        embedded.len()
    );
    Ok(embedded)
}

/// Pairs of photos of one person that are not impostors: those of `calibrate_same_person.tsv` (path_a,
/// path_b, what was seen), and by transitivity every pair of photos those join (a person photographed four
/// times makes six pairs; the list names the ones that scored high enough to be looked at).
fn same_person_pairs(embedded: &[Embedded]) -> anyhow::Result<HashSet<(usize, usize)>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/calibrate_same_person.tsv"
    );
    let text = std::fs::read_to_string(path)?;
    let at: HashMap<&str, usize> = embedded
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_str(), i))
        .collect();
    // Union-find over the listed pairs.
    let mut parent: Vec<usize> = (0..embedded.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        anyhow::ensure!(cols.len() >= 2, "calibrate_same_person.tsv: {line}");
        if let (Some(&a), Some(&b)) = (at.get(cols[0]), at.get(cols[1])) {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
    }
    let mut clusters: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..embedded.len() {
        let r = root(&mut parent, i);
        clusters.entry(r).or_default().push(i);
    }
    let mut pairs = HashSet::new();
    let mut people = 0;
    for members in clusters.values().filter(|m| m.len() > 1) {
        people += 1;
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                pairs.insert((a.min(b), a.max(b)));
            }
        }
    }
    eprintln!("same person: {} pairs among {people} people", pairs.len());
    Ok(pairs)
}

/// An impostor pair: its cosine and the two photos.
#[derive(Clone, Copy)]
struct Pair {
    cosine: f32,
    a: usize,
    b: usize,
}

/// Impostor pairs (highest first) and genuine cosines within each list of members, by variant `v`.
fn pairs_within(
    embedded: &[Embedded],
    groups: &[Vec<usize>],
    v: usize,
    excluded: &HashSet<(usize, usize)>,
) -> (Vec<Pair>, Vec<f32>) {
    let (mut impostor, mut genuine) = (Vec::new(), Vec::new());
    for members in groups {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                let c = cosine(&embedded[i].vectors[v], &embedded[j].vectors[v]);
                if embedded[i].identity == embedded[j].identity {
                    genuine.push(c);
                } else if !excluded.contains(&(i.min(j), i.max(j))) {
                    impostor.push(Pair {
                        cosine: c,
                        a: i,
                        b: j,
                    });
                }
            }
        }
    }
    impostor.sort_by(|p, q| q.cosine.total_cmp(&p.cosine));
    (impostor, genuine)
}

/// A measured knot: the cosine above which `rate` of the impostor pairs lie, with its 95% interval.
#[derive(Clone, Copy)]
struct Measured {
    rate: f64,
    cosine: f64,
    low: f64,
    high: f64,
    above: f64,
}

/// The knot at `rate`, when at least 10 impostor pairs lie above it.
fn measure(sorted_desc: &[f32], rate: f64) -> Option<Measured> {
    let n = sorted_desc.len();
    let above = n as f64 * rate;
    if above < 10.0 {
        return None;
    }
    let at = |rank: f64| f64::from(sorted_desc[(rank.ceil() as usize).clamp(1, n) - 1]);
    let spread = 1.96 * above.sqrt();
    Some(Measured {
        rate,
        cosine: at(above),
        // More pairs above means a lower cosine.
        low: at(above + spread),
        high: at((above - spread).max(1.0)),
        above,
    })
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

/// Families of the impostor tail, each a straight line after a change of variables: `x(rate)` against
/// `y(cosine)`.
#[derive(Clone, Copy, Debug)]
enum Family {
    /// Cosine normal: cosine linear in the normal quantile of the rate.
    Normal,
    /// Exponential tail: log10 of the rate linear in cosine.
    Exponential,
    /// 1 - cosine log-normal: ln(1 - cosine) linear in the normal quantile (bounded by cosine 1).
    LogNormalGap,
}

impl Family {
    const ALL: [Family; 3] = [Family::Normal, Family::Exponential, Family::LogNormalGap];

    fn x(self, rate: f64) -> f64 {
        match self {
            Family::Exponential => -rate.log10(),
            _ => normal_quantile(1.0 - rate),
        }
    }

    fn y(self, cosine: f64) -> f64 {
        match self {
            Family::LogNormalGap => (1.0 - cosine).max(1e-9).ln(),
            _ => cosine,
        }
    }

    fn cosine(self, y: f64) -> f64 {
        match self {
            Family::LogNormalGap => 1.0 - y.exp(),
            _ => y,
        }
    }

    /// Least squares through `points`; the cosine it gives at any rate.
    fn fit(self, points: &[Measured]) -> impl Fn(f64) -> f64 {
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|m| (self.x(m.rate), self.y(m.cosine)))
            .collect();
        let n = xy.len() as f64;
        let (mx, my) = (
            xy.iter().map(|p| p.0).sum::<f64>() / n,
            xy.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let slope = xy.iter().map(|(x, y)| (x - mx) * (y - my)).sum::<f64>()
            / xy.iter().map(|(x, _)| (x - mx).powi(2)).sum::<f64>();
        move |rate| self.cosine(my + slope * (self.x(rate) - mx))
    }
}

/// Rates of the knots: 1e-1 .. 1e-9.
fn rates() -> Vec<f64> {
    (1..=9).map(|k| 10f64.powi(-k)).collect()
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate as the README writes it: `9.5e-4 (152)`, or `0 (0)`.
fn rate_cell(hits: usize, of: usize) -> String {
    if hits == 0 {
        return "0 (0)".into();
    }
    let rate = hits as f64 / of as f64;
    format!("{rate:.1e} ({})", thousands(hits))
}

/// The knots of one network from the pooled impostor cosines (highest first); prints the table rows.
fn knots(name: &str, impostor: &[f32], genuine: &[f32]) -> Vec<f64> {
    let measured: Vec<Measured> = rates()
        .into_iter()
        .filter_map(|r| measure(impostor, r))
        .collect();
    let last = measured.len();
    // Judge each family on the three measured rates before the last one, by its miss at the last.
    let window = |end: usize| &measured[end.saturating_sub(3)..end];
    let mut judged: Vec<(Family, f64)> = Family::ALL
        .iter()
        .map(|&f| {
            let predicted = f.fit(window(last - 1))(measured[last - 1].rate);
            (f, (predicted - measured[last - 1].cosine).abs())
        })
        .collect();
    judged.sort_by(|a, b| a.1.total_cmp(&b.1));
    println!(
        "{name}: tail families judged on 1e-{}..1e-{} predicting 1e-{}: {}",
        -(window(last - 1)[0].rate.log10().round()),
        -(measured[last - 2].rate.log10().round()),
        -(measured[last - 1].rate.log10().round()),
        judged
            .iter()
            .map(|(f, miss)| format!("{f:?} misses by {miss:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let family = judged[0].0;
    let fit = family.fit(window(last));
    let mut cosines = Vec::new();
    for rate in rates() {
        let m = measured.iter().find(|m| m.rate == rate);
        let mut cos = m.map_or_else(|| fit(rate).min(0.9999), |m| m.cosine);
        if let Some(&before) = cosines.last() {
            cos = f64::max(cos, before);
        }
        let frr = genuine.iter().filter(|&&c| f64::from(c) <= cos).count() as f64
            / genuine.len().max(1) as f64;
        let (cell, interval) = match m {
            Some(m) => (
                format!("{cos:.4}"),
                format!("{:.4}-{:.4} ({:.0} pairs)", m.low, m.high, m.above),
            ),
            None => (format!("{cos:.4} (fit)"), format!("{family:?} fit")),
        };
        println!(
            "| `{name}` | {rate:.0e} | {cell} | {interval} | {:.1}% |",
            frr * 100.0
        );
        cosines.push(cos);
    }
    cosines
}

/// Who is compared: the false-accept rate at `thresholds` (cosines) among pairs of `utk_distinct` chips.
fn populations(
    embedded: &[Embedded],
    v: usize,
    excluded: &HashSet<(usize, usize)>,
    name: &str,
    thresholds: &[(f32, f32)],
) {
    let utk: Vec<(usize, UtkLabel)> = embedded
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.utk.map(|l| (i, l)))
        .collect();
    type Rule = Box<dyn Fn(&UtkLabel, &UtkLabel) -> bool>;
    let adults = |a: &UtkLabel, b: &UtkLabel| a.band >= ADULT && b.band >= ADULT;
    let mut rules: Vec<(String, Rule)> = Vec::new();
    for (b, band) in BANDS.iter().enumerate() {
        rules.push((
            format!("ages {band}, within the band"),
            Box::new(move |x, y| x.band == b && y.band == b),
        ));
    }
    rules.push(("adults (20+), all pairs".into(), Box::new(adults)));
    rules.push((
        "adults, men with men".into(),
        Box::new(move |x, y| adults(x, y) && !x.female && !y.female),
    ));
    rules.push((
        "adults, women with women".into(),
        Box::new(move |x, y| adults(x, y) && x.female && y.female),
    ));
    rules.push((
        "adults, men with women".into(),
        Box::new(move |x, y| adults(x, y) && x.female != y.female),
    ));
    for (r, race) in RACES.iter().enumerate() {
        rules.push((
            format!("adults, {race} with {race}"),
            Box::new(move |x, y| adults(x, y) && x.race == r && y.race == r),
        ));
    }
    rules.push((
        "adults, across races".into(),
        Box::new(move |x, y| adults(x, y) && x.race != y.race),
    ));
    rules.push((
        "adults, same gender and race".into(),
        Box::new(move |x, y| adults(x, y) && x.race == y.race && x.female == y.female),
    ));
    for (r, race) in RACES.iter().enumerate() {
        rules.push((
            format!("adults, {race}, same gender"),
            Box::new(move |x, y| {
                adults(x, y) && x.race == r && y.race == r && x.female == y.female
            }),
        ));
    }
    let mut header = format!("\n| `{name}` pairs | pairs |");
    for (_, score) in thresholds {
        header.push_str(&format!(" FAR at {score:.0} |"));
    }
    println!("{header}");
    println!("|---|---:|{}", "---:|".repeat(thresholds.len()));
    for (label, rule) in &rules {
        let mut pairs = 0usize;
        let mut hits = vec![0usize; thresholds.len()];
        for (x, &(i, li)) in utk.iter().enumerate() {
            for &(j, lj) in &utk[x + 1..] {
                if !rule(&li, &lj) || excluded.contains(&(i.min(j), i.max(j))) {
                    continue;
                }
                pairs += 1;
                let c = cosine(&embedded[i].vectors[v], &embedded[j].vectors[v]);
                for (h, &(t, _)) in hits.iter_mut().zip(thresholds) {
                    if c >= t {
                        *h += 1;
                    }
                }
            }
        }
        let mut line = format!("| {label} | {} |", thousands(pairs));
        for h in hits {
            line.push_str(&format!(" {} |", rate_cell(h, pairs)));
        }
        println!("{line}");
    }
}

/// Genuine acceptance at `thresholds` on every set with same-person pairs (`tests` from its pairs.tsv).
fn genuine_acceptance(
    embedded: &[Embedded],
    tests: &[(f32, bool)],
    v: usize,
    name: &str,
    thresholds: &[(f32, f32)],
) {
    let mut header = format!("\n| `{name}` same-person pairs | pairs |");
    for (_, score) in thresholds {
        header.push_str(&format!(" accepted at {score:.0} |"));
    }
    println!("{header}");
    println!("|---|---:|{}", "---:|".repeat(thresholds.len()));
    let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
    for set in SETS {
        let members: Vec<usize> = (0..embedded.len())
            .filter(|&i| embedded[i].set() == *set)
            .collect();
        let (_, genuine) = pairs_within(embedded, &[members], v, &HashSet::new());
        rows.push((set.to_string(), genuine));
    }
    rows.push((
        "tests/pairs.tsv".into(),
        tests.iter().filter(|t| t.1).map(|t| t.0).collect(),
    ));
    for (set, genuine) in rows {
        let mut line = format!("| {set} | {} |", thousands(genuine.len()));
        for &(t, _) in thresholds {
            let ok = genuine.iter().filter(|&&c| c >= t).count();
            line.push_str(&format!(
                " {:.1}% |",
                100.0 * ok as f64 / genuine.len().max(1) as f64
            ));
        }
        println!("{line}");
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let faces_dir = PathBuf::from(
        args.first()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_else(|| "../shared/faces".into()),
    );
    let top: usize = flag("--top").map_or(Ok(0), |n| n.parse())?;
    let pipeline = FacePipeline::load(
        Path::new("models"),
        &PipelineConfig::one_call_at_a_time(ALL.iter().map(|r| r.file.to_owned()).collect()),
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

    let calibration = faces_dir.join("calibration");
    let embedded = match flag("--cache") {
        Some(cache) if Path::new(&cache).exists() => {
            serde_json::from_slice(&std::fs::read(&cache)?)?
        }
        cache => {
            let embedded = embed_all(&pipeline, &variants, &calibration)?;
            if let Some(cache) = cache {
                std::fs::write(&cache, serde_json::to_vec(&embedded)?)?;
            }
            embedded
        }
    };
    let embedded: Vec<Embedded> = embedded;
    let excluded = same_person_pairs(&embedded)?;

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

    let members = |keep: &dyn Fn(&Embedded) -> bool| -> Vec<usize> {
        (0..embedded.len())
            .filter(|&i| keep(&embedded[i]))
            .collect()
    };
    let utk_adults = members(&|e| e.utk.is_some_and(|l| l.band >= ADULT));
    let wild = members(&|e| e.set() == "wild_extra");
    let colour = vec![utk_adults.clone(), wild.clone()];
    println!(
        "{} photos embedded; {} pairs judged one person and left out",
        embedded.len(),
        excluded.len()
    );

    for (v, variant) in variants.iter().enumerate() {
        let name = variant.name();
        let (impostor, genuine) = pairs_within(&embedded, &colour, v, &excluded);
        let sorted: Vec<f32> = impostor.iter().map(|p| p.cosine).collect();
        println!(
            "\n== {name}: {} impostor pairs (utk_distinct 20+ and wild_extra), {} genuine (wild_extra); \
             median impostor cosine {:.4}",
            thousands(sorted.len()),
            thousands(genuine.len()),
            sorted[sorted.len() / 2]
        );
        for p in impostor.iter().take(top) {
            println!(
                "top\t{:.4}\t{}\t{}",
                p.cosine, embedded[p.a].path, embedded[p.b].path
            );
        }
        println!("| network | FAR | cosine | 95% interval | FRR (wild_extra) |");
        println!("|---|---|---|---|---|");
        knots(variant.spec.file, &sorted, &genuine);

        // Each set on its own (measured rates only).
        let mut sets: Vec<(String, Vec<usize>)> = SETS
            .iter()
            .map(|s| (s.to_string(), members(&|e| e.set() == *s)))
            .collect();
        for (b, band) in BANDS.iter().enumerate() {
            sets.push((
                format!("utk_distinct {band}"),
                members(&|e| e.utk.is_some_and(|l| l.band == b)),
            ));
        }
        for (set, list) in sets {
            let (impostor, genuine) = pairs_within(&embedded, &[list], v, &excluded);
            let sorted: Vec<f32> = impostor.iter().map(|p| p.cosine).collect();
            let mut line = format!(
                "{set:<22} {:>9} impostor, {:>6} genuine pairs",
                thousands(sorted.len()),
                thousands(genuine.len())
            );
            for rate in [1e-3, 1e-4, 1e-5] {
                match measure(&sorted, rate) {
                    Some(m) => {
                        let frr = genuine
                            .iter()
                            .filter(|&&c| f64::from(c) <= m.cosine)
                            .count() as f64
                            / genuine.len().max(1) as f64;
                        line.push_str(&format!(
                            "; {rate:.0e}: cos {:.4}, FRR {:.1}%",
                            m.cosine,
                            frr * 100.0
                        ));
                    }
                    None => line.push_str(&format!("; {rate:.0e}: -")),
                }
            }
            println!("{line}");
        }
    }

    // Who is compared, at the thresholds the code documents: 3.0's 40/50/60, 2.0's 70/80/90.
    for (spec, version, scores) in [
        (&MOBILEFACENET_192, ModelVersion::V3, [40.0, 50.0, 60.0]),
        (&DLIB_128, ModelVersion::V2, [70.0, 80.0, 90.0]),
    ] {
        let v = variants
            .iter()
            .position(|x| x.spec == spec && x.mirror)
            .expect("every network is calibrated");
        let calibration = Calibration::new(spec, version);
        let thresholds: Vec<(f32, f32)> = scores
            .iter()
            .map(|&s| (calibration.cosine_at(s), s))
            .collect();
        populations(&embedded, v, &excluded, spec.file, &thresholds);
        let tests: Vec<(f32, bool)> = test_pairs
            .iter()
            .filter_map(|(a, b, same)| {
                let (ea, eb) = (cache[a].as_ref()?, cache[b].as_ref()?);
                Some((cosine(&ea[v], &eb[v]), *same))
            })
            .collect();
        genuine_acceptance(&embedded, &tests, v, spec.file, &thresholds);
    }
    Ok(())
}
