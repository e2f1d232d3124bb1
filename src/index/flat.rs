//! An exact (flat) inner-product index: unit vectors in one contiguous buffer, dot products with SIMD
//! (the block kernel is compiled for AVX-512, AVX2+FMA and NEON by `multiversion` and picked at run time),
//! top-k by a bounded heap per chunk, chunks scanned on every core for large indexes.
//!
//! The vectors are stored in pages of `PAGE` vectors, each behind an `Arc`: `snapshot` takes a consistent
//! copy of the index in the time of copying the keys (the pages are shared, not copied), and a write to a
//! page a snapshot still holds copies that one page first (copy on write). The index digest hashes such a
//! snapshot while writes go on.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use multiversion::multiversion;
use rayon::prelude::*;

/// Below this many vectors a scan stays on the calling thread (splitting costs more than it saves).
const PARALLEL_FROM: usize = 32_768;
const CHUNK: usize = 16_384;
/// Vectors per storage page: a multiple of `BLOCK` (a scan block never straddles two pages), small enough
/// that copying one on write is cheap (128 KiB to 2 MiB for 32 to 512 dimensions).
const PAGE: usize = 1024;
const _: () = assert!(PAGE.is_multiple_of(BLOCK) && CHUNK.is_multiple_of(PAGE));

pub struct FlatIndex {
    dim: usize,
    /// Vector `i` is `pages[i / PAGE][(i % PAGE) * dim..][..dim]`; every page is full but the last.
    pages: Vec<Arc<Vec<f32>>>,
    keys: Vec<u64>,
    position: HashMap<u64, usize>,
}

/// A consistent, read-only copy of a `FlatIndex` (`FlatIndex::snapshot`): its keys, and its pages shared.
#[derive(Clone)]
pub struct FlatSnapshot {
    dim: usize,
    pages: Vec<Arc<Vec<f32>>>,
    keys: Vec<u64>,
}

impl FlatSnapshot {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in storage order (vector `at` is `vector(at)`).
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    pub fn vector(&self, at: usize) -> &[f32] {
        vector_at(&self.pages, self.dim, at)
    }

    /// (key, vector) in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[f32])> + '_ {
        self.keys
            .iter()
            .enumerate()
            .map(|(at, &key)| (key, vector_at(&self.pages, self.dim, at)))
    }
}

fn vector_at(pages: &[Arc<Vec<f32>>], dim: usize, at: usize) -> &[f32] {
    let offset = (at % PAGE) * dim;
    &pages[at / PAGE][offset..offset + dim]
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
            pages: Vec::new(),
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
        let pages = (self.keys.len() + additional).div_ceil(PAGE);
        self.pages.reserve(pages.saturating_sub(self.pages.len()));
        self.keys.reserve(additional);
        self.position.reserve(additional);
    }

    /// A consistent copy for reading while the index changes: the keys are copied, the pages shared.
    pub fn snapshot(&self) -> FlatSnapshot {
        FlatSnapshot {
            dim: self.dim,
            pages: self.pages.clone(),
            keys: self.keys.clone(),
        }
    }

    /// The vector at `at`, to write (its page is copied first when a snapshot shares it).
    fn vector_mut(&mut self, at: usize) -> &mut [f32] {
        let offset = (at % PAGE) * self.dim;
        let page = Arc::make_mut(&mut self.pages[at / PAGE]);
        &mut page[offset..offset + self.dim]
    }

    /// Add `vector` under `key`, replacing what the key held.
    pub fn upsert(&mut self, key: u64, vector: &[f32]) {
        assert_eq!(vector.len(), self.dim, "vector of the wrong dimension");
        if let Some(&at) = self.position.get(&key) {
            self.vector_mut(at).copy_from_slice(vector);
            return;
        }
        let at = self.keys.len();
        if at.is_multiple_of(PAGE) {
            // Pages grow as a Vec does (a small index does not hold a whole page of memory).
            self.pages.push(Arc::new(Vec::new()));
        }
        self.position.insert(key, at);
        self.keys.push(key);
        let last = self.pages.last_mut().expect("a page for the new vector");
        Arc::make_mut(last).extend_from_slice(vector);
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
            let vector = vector_at(&self.pages, self.dim, last).to_vec();
            self.vector_mut(at).copy_from_slice(&vector);
        }
        self.keys.pop();
        if last.is_multiple_of(PAGE) {
            self.pages.pop();
        } else {
            let page = Arc::make_mut(self.pages.last_mut().expect("the last vector's page"));
            page.truncate((last % PAGE) * self.dim);
        }
        true
    }

    pub fn get(&self, key: u64) -> Option<&[f32]> {
        self.position
            .get(&key)
            .map(|&at| vector_at(&self.pages, self.dim, at))
    }

    /// Vectors `start..end`, contiguous: within one page (`start` a multiple of `BLOCK`, `end - start` at
    /// most `BLOCK`).
    fn block(&self, start: usize, end: usize) -> &[f32] {
        let page = &self.pages[start / PAGE];
        let offset = (start % PAGE) * self.dim;
        &page[offset..offset + (end - start) * self.dim]
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
                dot_block(query, self.block(block, stop), scores);
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
    fn snapshots_keep_their_contents_while_the_index_changes() {
        let n = 3 * PAGE as u64 + 5;
        let mut index = FlatIndex::new(8);
        for key in 0..n {
            index.upsert(key, &unit(key, 8));
        }
        let snapshot = index.snapshot();
        let before: Vec<(u64, Vec<f32>)> = snapshot.iter().map(|(k, v)| (k, v.to_vec())).collect();
        // Writes in every page: replace, remove (the last vector moves), add, shrink past a page.
        index.upsert(3, &unit(1000, 8));
        index.remove(PAGE as u64 + 1);
        index.upsert(n + 1, &unit(n + 1, 8));
        for key in 2 * PAGE as u64..n {
            index.remove(key);
        }
        let after: Vec<(u64, Vec<f32>)> = snapshot.iter().map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(before, after);
        assert_eq!(snapshot.len(), n as usize);
        assert_eq!(index.get(3).unwrap(), unit(1000, 8).as_slice());
        assert_eq!(index.get(n + 1).unwrap(), unit(n + 1, 8).as_slice());
        assert!(index.get(PAGE as u64 + 1).is_none());
        for key in (0..2 * PAGE as u64).filter(|&k| k != 3 && k != PAGE as u64 + 1) {
            assert_eq!(index.get(key).unwrap(), unit(key, 8).as_slice(), "{key}");
        }
        // Pages no snapshot holds are written in place.
        drop(snapshot);
        let page = Arc::as_ptr(&index.pages[0]);
        index.upsert(0, &unit(7, 8));
        assert_eq!(Arc::as_ptr(&index.pages[0]), page);
        assert_eq!(index.len(), 2 * PAGE);
        assert_eq!(index.pages.len(), 2);
        let query = unit(5, 8);
        let got: Vec<u64> = index.search(&query, 10).iter().map(|h| h.key).collect();
        assert_eq!(got, brute_force(&index, &query, 10));
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
