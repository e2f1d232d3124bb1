//! The flat index alone: top-10 search over 10k, 100k and 1M random unit vectors of model 3.0's dimension,
//! against a baseline measured in the same run: one thread reading the same buffer once (an XOR of the bit
//! patterns, which vectorises), the least any exact scan must do. Read the ratio, not the absolute times.
//!
//!     cargo bench --bench index

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iai_server::index::flat::FlatIndex;

const DIM: usize = 128;

fn unit_vectors(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..DIM {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
        }
        let norm = out[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
        out[start..].iter_mut().for_each(|x| *x /= norm);
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("flat_index_top10");
    group.sample_size(20);
    let query = unit_vectors(1, 99);
    for n in [10_000, 100_000, 1_000_000] {
        let data = unit_vectors(n, n as u64);
        let mut index = FlatIndex::new(DIM);
        index.reserve(n);
        for (i, v) in data.chunks_exact(DIM).enumerate() {
            index.upsert(i as u64, v);
        }
        group.bench_with_input(BenchmarkId::new("search", n), &n, |b, _| {
            b.iter(|| std::hint::black_box(index.search(&query, 10)))
        });
        group.bench_with_input(BenchmarkId::new("baseline_read_once", n), &n, |b, _| {
            b.iter(|| std::hint::black_box(data.iter().fold(0u32, |acc, x| acc ^ x.to_bits())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
