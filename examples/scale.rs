//! Scale check of the store and the index with synthetic faces (random unit vectors of model 3.0's
//! dimension; no photos): enrol N faces (one person each) into one group through the store, in batches of
//! one transaction, then rebuild the index from the database as the server does at start, search it, and
//! report the enrolment rate, rebuild time, search latency and memory per face.
//!
//!     cargo run --release --example scale -- <data-dir | postgres://...> [faces=1000000]
//!
//! The database can then be served (`iai-server --data-dir <data-dir>` or `--database-url`) to time a
//! real start-up; `benches/scale.sh` does both on SQLite, `benches/replica_start.py` on both backends.

use anyhow::Context as _;
use std::time::Instant;

use iai_server::face::ModelVersion;
use iai_server::index::Indexes;
use iai_server::store::Store;
use iai_server::store::groups::NewGroup;
use iai_server::store::persons::{NewFace, NewPerson};

const GROUP: &str = "scale";
const BATCH: usize = 10_000;
/// The 3.0 network's embedding size (MobileFaceNet, 192).
const DIM: usize = iai_server::face::embed::MOBILEFACENET_192.dim;

/// xorshift64*: fast, deterministic, good enough for random directions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    fn unit(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let place = args
        .next()
        .expect("usage: scale <data-dir | postgres://...> [faces]");
    let total: usize = args.next().map_or(1_000_000, |n| n.parse().expect("faces"));
    let shared = place.starts_with("postgres://") || place.starts_with("postgresql://");
    let store = if shared {
        let replica = iai_server::store::postgres::follow::Replica {
            id: "scale".into(),
            address: String::new(),
        };
        Store::connect(&place, replica).await?
    } else {
        Store::open(std::path::Path::new(&place))?
    };
    let backend = if shared { "PostgreSQL" } else { "SQLite" };
    let mut rng = Rng(0x9E3779B97F4A7C15);

    let existing = store.group(GROUP.into()).await.is_ok();
    if !existing {
        let started = Instant::now();
        let model = iai_server::face::embed::MOBILEFACENET_192.file;
        store
            .create_group(
                NewGroup {
                    group_id: GROUP.into(),
                    name: GROUP.into(),
                    tag: String::new(),
                    ex_descriptions: vec![],
                    face_model_version: "3.0".into(),
                    serving_model: model.into(),
                },
                u64::MAX,
            )
            .await?;
        for start in (0..total).step_by(BATCH) {
            let batch: Vec<NewPerson> = (start..(start + BATCH).min(total))
                .map(|i| {
                    let person = format!("p{i:07}");
                    NewPerson {
                        person_id: person.clone(),
                        name: person,
                        gender: 0,
                        group_id: GROUP.into(),
                        values: Vec::new(),
                        face: NewFace {
                            face_id: (1_000_000_000_000_000_000u64 + i as u64).to_string(),
                            rect: [0, 0, 100, 100],
                            crop_png: Vec::new(),
                            landmarks: "[]".into(),
                            quality: None,
                            vectors: vec![(model.into(), rng.unit())],
                        },
                    }
                })
                .collect();
            store.import_persons(GROUP.into(), batch, u64::MAX).await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "enrolled {total} faces through the store in {seconds:.1} s: {:.0} faces/s (one person each, {BATCH} per transaction)",
            total as f64 / seconds
        );
    }
    if !shared {
        let db_bytes = std::fs::metadata(store.database_file().context("no database file")?)?.len();
        println!("database file: {:.0} MB", db_bytes as f64 / 1e6);
    }

    let before = rss_bytes();
    let started = Instant::now();
    let indexes = store.follow(Indexes::load).await?;
    let rebuilt = started.elapsed().as_secs_f64();
    let grown = rss_bytes().saturating_sub(before);
    let index = indexes.group(GROUP).expect("the group exists");
    let index = index.read();
    let faces = index.face_count();
    println!(
        "index rebuilt from {backend} in {rebuilt:.1} s: {faces} faces, {} persons; resident memory +{:.0} MB = {:.0} bytes per face (face vector + fused person vector + maps)",
        index.person_count(),
        grown as f64 / 1e6,
        grown as f64 / faces.max(1) as f64
    );
    assert_eq!(index.version, ModelVersion::V3);

    let queries: Vec<Vec<f32>> = (0..50).map(|_| rng.unit()).collect();
    let mut times = Vec::new();
    for q in &queries {
        let started = Instant::now();
        let hits = index.search_faces(q, 10);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(hits.len(), 50.min(faces));
    }
    times.sort_by(f64::total_cmp);
    println!(
        "SearchFaces scan of {faces} faces, top 10 persons: p50 {:.1} ms, p99 {:.1} ms ({} threads)",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        rayon::current_num_threads()
    );
    Ok(())
}
