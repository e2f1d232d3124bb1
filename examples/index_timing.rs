//! Times `FlatIndex` top-k search on vectors written by `benches/index_vs_faiss.py` (raw little-endian f32,
//! row-major), so that the script can compare with faiss on exactly the same data in the same run.
//!
//!     index_timing <vectors.f32> <queries.f32> <dim> <k> <repeats>
//!
//! Prints one line: `median_ms <value>` (median over queries x repeats of one query's search), then the
//! keys of the first query's top-k for a cross-check.

use std::time::Instant;

use iai_server::index::flat::FlatIndex;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("readable file");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [vectors, queries, dim, k, repeats] = args.as_slice() else {
        panic!("usage: index_timing <vectors.f32> <queries.f32> <dim> <k> <repeats>");
    };
    let (dim, k, repeats): (usize, usize, usize) = (
        dim.parse().unwrap(),
        k.parse().unwrap(),
        repeats.parse().unwrap(),
    );
    let data = read_f32(vectors);
    let queries = read_f32(queries);
    let mut index = FlatIndex::new(dim);
    index.reserve(data.len() / dim);
    for (i, v) in data.chunks_exact(dim).enumerate() {
        index.upsert(i as u64, v);
    }
    drop(data);
    let mut times = Vec::new();
    for _ in 0..repeats {
        for q in queries.chunks_exact(dim) {
            let started = Instant::now();
            std::hint::black_box(index.search(q, k));
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("median_ms {:.4}", times[times.len() / 2]);
    let first: Vec<String> = index
        .search(&queries[..dim], k)
        .iter()
        .map(|h| h.key.to_string())
        .collect();
    println!("top {}", first.join(" "));
}
