//! An exact (flat) inner-product index: unit vectors in one contiguous buffer, dot products with SIMD
//! (the block kernel is compiled for AVX-512, AVX2+FMA and NEON by `multiversion` and picked at run time),
//! top-k by a bounded heap per chunk, chunks scanned on every core for large indexes.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use multiversion::multiversion;
use rayon::prelude::*;

/// Below this many vectors a scan stays on the calling thread (splitting costs more than it saves).
const PARALLEL_FROM: usize = 32_768;
const CHUNK: usize = 16_384;

pub struct FlatIndex {
    dim: usize,
    data: Vec<f32>,
    keys: Vec<u64>,
    position: HashMap<u64, usize>,
}

/// A scored key; ordered by score (then key, so results are deterministic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub key: u64,
    pub score: f32,
}

impl Eq for Hit {}

impl Ord for Hit {
    // Reversed so that `BinaryHeap<Hit>` is a min-heap on score: its top is the weakest kept hit.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FlatIndex {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
            keys: Vec::new(),
            position: HashMap::new(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.data.reserve(additional * self.dim);
        self.keys.reserve(additional);
        self.position.reserve(additional);
    }

    /// Add `vector` under `key`, replacing what the key held.
    pub fn upsert(&mut self, key: u64, vector: &[f32]) {
        assert_eq!(vector.len(), self.dim, "vector of the wrong dimension");
        if let Some(&at) = self.position.get(&key) {
            self.data[at * self.dim..(at + 1) * self.dim].copy_from_slice(vector);
            return;
        }
        self.position.insert(key, self.keys.len());
        self.keys.push(key);
        self.data.extend_from_slice(vector);
    }

    /// Remove a key (the last vector moves into its place). Returns whether it was there.
    pub fn remove(&mut self, key: u64) -> bool {
        let Some(at) = self.position.remove(&key) else {
            return false;
        };
        let last = self.keys.len() - 1;
        if at != last {
            let moved = self.keys[last];
            self.keys[at] = moved;
            self.position.insert(moved, at);
            let (head, tail) = self.data.split_at_mut(last * self.dim);
            head[at * self.dim..(at + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
        }
        self.keys.pop();
        self.data.truncate(last * self.dim);
        true
    }

    pub fn get(&self, key: u64) -> Option<&[f32]> {
        self.position
            .get(&key)
            .map(|&at| &self.data[at * self.dim..(at + 1) * self.dim])
    }

    /// The `k` keys with the largest inner product with `query`, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        assert_eq!(query.len(), self.dim, "query of the wrong dimension");
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let scan = |start: usize, end: usize| -> BinaryHeap<Hit> {
            let mut heap = BinaryHeap::with_capacity(k + 1);
            let mut scores = vec![0f32; BLOCK];
            for block in (start..end).step_by(BLOCK) {
                let stop = (block + BLOCK).min(end);
                let scores = &mut scores[..stop - block];
                dot_block(query, &self.data[block * self.dim..stop * self.dim], scores);
                for (offset, &score) in scores.iter().enumerate() {
                    let i = block + offset;
                    if heap.len() < k {
                        heap.push(Hit {
                            key: self.keys[i],
                            score,
                        });
                    } else if score > heap.peek().expect("heap is full").score {
                        heap.pop();
                        heap.push(Hit {
                            key: self.keys[i],
                            score,
                        });
                    }
                }
            }
            heap
        };
        let n = self.len();
        let heap = if n < PARALLEL_FROM {
            scan(0, n)
        } else {
            (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| scan(c * CHUNK, ((c + 1) * CHUNK).min(n)))
                .reduce(BinaryHeap::new, |mut a, b| {
                    for hit in b {
                        if a.len() < k {
                            a.push(hit);
                        } else if hit.score > a.peek().expect("heap is full").score {
                            a.pop();
                            a.push(hit);
                        }
                    }
                    a
                })
        };
        // Ascending in `Hit`'s reversed order = best score first.
        heap.into_sorted_vec()
    }
}

/// Vectors scored per kernel call.
const BLOCK: usize = 256;

/// `scores[j]` = query . vectors[j]. Compiled once per SIMD level; 16 independent lanes let the compiler
/// keep the sums in vector registers (two AVX2 or one AVX-512 register of partial sums). Plain multiply
/// and add, not `mul_add`: without FMA hardware that would be a slow library call.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn dot_block(query: &[f32], vectors: &[f32], scores: &mut [f32]) {
    let dim = query.len();
    for (vector, score) in vectors.chunks_exact(dim).zip(scores.iter_mut()) {
        let mut lanes = [0f32; 16];
        let (ca, cb) = (query.chunks_exact(16), vector.chunks_exact(16));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..16 {
                lanes[i] += x[i] * y[i];
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
        *score = lanes.iter().sum::<f32>() + tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        // A small deterministic generator is enough for tests.
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    fn brute_force(index: &FlatIndex, query: &[f32], k: usize) -> Vec<u64> {
        let mut all: Vec<(f32, u64)> = index
            .keys
            .iter()
            .map(|&key| {
                let v = index.get(key).unwrap();
                (v.iter().zip(query).map(|(a, b)| a * b).sum(), key)
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.into_iter().take(k).map(|(_, key)| key).collect()
    }

    #[test]
    fn search_matches_brute_force_serial_and_parallel() {
        for n in [100, PARALLEL_FROM + 5_000] {
            let mut index = FlatIndex::new(32);
            for key in 0..n as u64 {
                index.upsert(key * 7, &unit(key, 32));
            }
            let query = unit(999_999, 32);
            let got: Vec<u64> = index.search(&query, 10).iter().map(|h| h.key).collect();
            assert_eq!(got, brute_force(&index, &query, 10));
            let scores: Vec<f32> = index.search(&query, 10).iter().map(|h| h.score).collect();
            assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn remove_moves_the_last_vector_and_keeps_lookups_right() {
        let mut index = FlatIndex::new(4);
        for key in 0..5 {
            index.upsert(key, &unit(key, 4));
        }
        assert!(index.remove(1));
        assert!(!index.remove(1));
        assert_eq!(index.len(), 4);
        for key in [0, 2, 3, 4] {
            assert_eq!(index.get(key).unwrap(), unit(key, 4).as_slice());
        }
        let top = index.search(&unit(4, 4), 1);
        assert_eq!(top[0].key, 4);
        assert!((top[0].score - 1.0).abs() < 1e-5);
        index.upsert(4, &unit(2, 4));
        assert_eq!(index.get(4).unwrap(), unit(2, 4).as_slice());
        assert!(index.search(&unit(0, 4), 10).len() == 4);
    }
}
