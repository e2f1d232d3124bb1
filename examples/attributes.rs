//! Measure age and gender with the server's own pipeline, and the gender model it replaced.
//!
//! `cargo run --release --example attributes -- [FACES_DIR] [--old-gender MODELS_DIR]` (default
//! ../shared/faces) detects the largest face of every chip of `calibration/utk_distinct` and prints, per age
//! band: the mean absolute age error, the share within 5 and 10 years, and the same for two constant
//! guesses: the mean age of all chips, and their median (the constant with the least absolute error over
//! all chips, which in the 20-39 band is nearly that band's own median); then gender accuracy per band and, for
//! adults (20+), per race. Then gender on the photos of `calibration/wild_extra` and `tests`, labelled by
//! identity below. With `--old-gender DIR`, `human_gender.onnx` (the model AgeGenderNet replaced: 64x64
//! grey, a square of 1.8 box sides) is measured beside it on the same faces; DIR is a models folder whose
//! `manifest.json` still lists it (the server's of commit d2e87ae and before).

use std::path::{Path, PathBuf};

use iai_server::face::attributes::grey_input;
use iai_server::face::detect::Detection;
use iai_server::face::runtime::{Manifest, Model};
use iai_server::face::{FacePipeline, PipelineConfig};
use image::RgbImage;

const BANDS: [&str; 5] = ["0-12", "13-19", "20-39", "40-59", "60plus"];
const RACES: [&str; 5] = ["White", "Black", "Asian", "Indian", "Others"];

/// Women among the labelled identities of `wild_extra` and `tests` (labelled by looking at their photos);
/// every other identity there is a man.
const WOMEN: &[&str] = &[
    "deepface_p01",
    "deepface_p02",
    "deepface_p03",
    "deepface_p08",
    "deepface_p10",
    "faceapi_amy",
    "faceapi_bernadette",
    "faceapi_penny",
    "fnp_angelina_jolie",
    "fnp_kate_siegel",
    "fr_rose_leslie",
    "compreface_A",
    "compreface_B",
];

struct Label {
    path: PathBuf,
    band: usize,
    age: f32,
    female: bool,
    race: usize,
}

/// One face as measured: (age, female probability) by AgeGenderNet, and the old model's female probability.
struct Measured {
    age: f32,
    female: f32,
    old_female: Option<f32>,
}

struct OldGender(Model);

impl OldGender {
    fn female(&self, image: &RgbImage, face: &Detection) -> anyhow::Result<f32> {
        let out = self.0.run(grey_input(image, face, 1.8)?)?;
        let g = &out[0].1;
        Ok(g[0] / (g[0] + g[1]).max(f32::EPSILON))
    }
}

fn measure(
    pipeline: &FacePipeline,
    old: Option<&OldGender>,
    path: &Path,
) -> anyhow::Result<Option<Measured>> {
    let image = image::open(path)?.into_rgb8();
    let faces = pipeline.detect_blocking(&image, false)?;
    let Some(face) = faces.first() else {
        return Ok(None);
    };
    let classes = pipeline.classify_blocking(&image, face)?;
    Ok(Some(Measured {
        age: classes.age,
        female: classes.female_probability,
        old_female: old.map(|o| o.female(&image, face)).transpose()?,
    }))
}

fn share(hits: usize, of: usize) -> String {
    format!("{:.1}%", 100.0 * hits as f64 / of.max(1) as f64)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let old_dir = args
        .iter()
        .position(|a| a == "--old-gender")
        .map(|i| PathBuf::from(&args[i + 1]));
    let faces_dir = PathBuf::from(
        args.first()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_else(|| "../shared/faces".into()),
    );
    let pipeline = FacePipeline::load(
        Path::new("models"),
        &PipelineConfig::one_call_at_a_time(Vec::new()),
    )?;
    let old = match &old_dir {
        Some(dir) => Some(OldGender(Model::load(
            pipeline.environment(),
            &Manifest::load(dir)?,
            "human_gender.onnx",
            1,
        )?)),
        None => None,
    };

    let utk = faces_dir.join("calibration/utk_distinct");
    let mut labels = Vec::new();
    for line in std::fs::read_to_string(utk.join("labels.tsv"))?
        .lines()
        .skip(1)
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let [path, age, gender, race] = cols[..] else {
            continue;
        };
        let band = BANDS
            .iter()
            .position(|b| path.starts_with(&format!("{b}/")))
            .expect("a band folder");
        labels.push(Label {
            path: utk.join(path),
            band,
            age: age.parse()?,
            female: gender == "1",
            race: race.parse()?,
        });
    }
    let mut ages: Vec<f32> = labels.iter().map(|l| l.age).collect();
    ages.sort_by(f32::total_cmp);
    let median = ages[ages.len() / 2];
    let mean = (ages.iter().map(|&a| f64::from(a)).sum::<f64>() / ages.len() as f64).round() as f32;

    // (label, measurement) for every chip with a face.
    let mut measured = Vec::new();
    let mut missed = [0usize; 5];
    for (i, label) in labels.iter().enumerate() {
        match measure(&pipeline, old.as_ref(), &label.path)? {
            Some(m) => measured.push((label, m)),
            None => missed[label.band] += 1,
        }
        if i % 500 == 499 {
            eprintln!("{} of {} chips", i + 1, labels.len());
        }
    }

    println!(
        "utk_distinct: {} of {} chips with a face; constant guesses: {mean} years (mean label), {median} (median)",
        measured.len(),
        labels.len()
    );
    println!(
        "| band | faces | MAE | within 5 | within 10 | mean error (signed) | constant {mean}: MAE, within 5, within 10 | constant {median}: MAE, within 5, within 10 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---|");
    let bands: Vec<Option<usize>> = (0..5).map(Some).chain([None]).collect();
    for band in &bands {
        let rows: Vec<_> = measured
            .iter()
            .filter(|(l, _)| band.is_none_or(|b| l.band == b))
            .collect();
        let n = rows.len();
        let err = |guess: &dyn Fn(&Measured) -> f32| -> (f64, usize, usize, f64) {
            let e: Vec<f32> = rows.iter().map(|(l, m)| guess(m) - l.age).collect();
            (
                e.iter().map(|x| f64::from(x.abs())).sum::<f64>() / n.max(1) as f64,
                e.iter().filter(|x| x.abs() <= 5.0).count(),
                e.iter().filter(|x| x.abs() <= 10.0).count(),
                e.iter().map(|&x| f64::from(x)).sum::<f64>() / n.max(1) as f64,
            )
        };
        let (mae, w5, w10, bias) = err(&|m| m.age.round());
        let constant = |c: f32| {
            let (cmae, c5, c10, _) = err(&|_| c);
            format!("{cmae:.2}, {}, {}", share(c5, n), share(c10, n))
        };
        println!(
            "| {} | {n} | {mae:.2} | {} | {} | {bias:+.2} | {} | {} |",
            band.map_or("all", |b| BANDS[b]),
            share(w5, n),
            share(w10, n),
            constant(mean),
            constant(median),
        );
    }
    println!("chips without a face, by band: {missed:?}");

    let gender_line = |name: &str, rows: &[(&Label, &Measured)]| {
        let right = rows
            .iter()
            .filter(|(l, m)| (m.female >= 0.5) == l.female)
            .count();
        let old_right = rows
            .iter()
            .filter(|(l, m)| m.old_female.is_some_and(|f| (f >= 0.5) == l.female))
            .count();
        println!(
            "| {name} | {} | {} | {} |",
            rows.len(),
            share(right, rows.len()),
            if old.is_some() {
                share(old_right, rows.len())
            } else {
                "-".into()
            }
        );
    };
    println!("\n| gender on utk_distinct | faces | AgeGenderNet | human_gender |");
    println!("|---|---:|---:|---:|");
    // The measured chips whose label passes `keep`.
    let select = |keep: &dyn Fn(&Label) -> bool| -> Vec<(&Label, &Measured)> {
        measured
            .iter()
            .filter(|(l, _)| keep(l))
            .map(|(l, m)| (*l, m))
            .collect()
    };
    for band in &bands {
        let rows = select(&|l| band.is_none_or(|b| l.band == b));
        gender_line(band.map_or("all", |b| BANDS[b]), &rows);
    }
    for (race, name) in RACES.iter().enumerate() {
        let rows = select(&|l| l.band >= 2 && l.race == race);
        gender_line(&format!("adults, {name}"), &rows);
    }
    for (female, name) in [(false, "men"), (true, "women")] {
        let rows = select(&|l| l.band >= 2 && l.female == female);
        gender_line(&format!("adults, {name}"), &rows);
    }

    // The labelled photos of wild_extra and tests.
    let mut photos = Vec::new();
    for set in ["calibration/wild_extra", "tests"] {
        let mut identities: Vec<PathBuf> = std::fs::read_dir(faces_dir.join(set))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        identities.sort();
        for identity in identities {
            let name = identity.file_name().unwrap().to_string_lossy().to_string();
            let female = WOMEN.contains(&name.as_str());
            let mut files: Vec<PathBuf> = std::fs::read_dir(&identity)?
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            for file in files {
                if let Ok(Some(m)) = measure(&pipeline, old.as_ref(), &file) {
                    let label = Label {
                        path: file,
                        band: 2,
                        age: 0.0,
                        female,
                        race: 0,
                    };
                    photos.push((label, m));
                }
            }
        }
    }
    let rows: Vec<_> = photos.iter().map(|(l, m)| (l, m)).collect();
    gender_line("wild_extra + tests photos", &rows);
    for (female, name) in [(false, "men"), (true, "women")] {
        let rows: Vec<_> = photos
            .iter()
            .filter(|(l, _)| l.female == female)
            .map(|(l, m)| (l, m))
            .collect();
        gender_line(&format!("wild_extra + tests, {name}"), &rows);
    }
    Ok(())
}
