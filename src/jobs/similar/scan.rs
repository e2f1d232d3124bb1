//! The scan kernel of the duplicate-person checks: the snapshot of a check's groups, and the comparison of
//! every pair of its persons.
//!
//! The snapshot copies every person's fused feature under its group's read lock (a person in several of the
//! groups is the same stored person with the same faces: it is taken once, with the list of its groups).
//! The scan compares every pair of distinct persons of the snapshot (within a group and across groups) on
//! a dedicated pool of one thread per core, in row blocks against column tiles (each tile of fused features
//! stays in cache while a block of rows is scored against it).

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::index::Group;
use crate::index::flat::dot_block;

/// Rows scored per task, and persons per column tile (a 3.0 tile is 128 x 192 floats: 96 KiB).
const BLOCK_ROWS: usize = 32;
const TILE: usize = 128;

/// Unit vectors from a small deterministic generator (calibration and tests).
pub fn synthetic(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..dim {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            out.push(((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5);
        }
        crate::face::embed::normalise(&mut out[start..]);
    }
    out
}

/// The checks' own threads, one per core: a check's long scan never queues ahead of a search's scan in
/// rayon's global pool; the two share the cores through the operating system's scheduler.
pub(super) fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(crate::admission::cores())
            .thread_name(|i| format!("iai-similar-{i}"))
            .build()
            .expect("cannot start the duplicate-check threads")
    })
}

/// The persons of a check's groups, each once: id, the groups holding it (bit i = the check's i-th group)
/// and its fused feature (row i of `vectors`).
pub struct Snapshot {
    pub dim: usize,
    pub ids: Vec<Arc<str>>,
    pub groups: Vec<u16>,
    pub vectors: Vec<f32>,
}

impl Snapshot {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ids: Vec::new(),
            groups: Vec::new(),
            vectors: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Add the persons of the check's `group`-th group (a person already taken gains the group).
    pub fn add<'a>(
        &mut self,
        group: usize,
        persons: impl Iterator<Item = (&'a Arc<str>, &'a [f32])>,
        seen: &mut std::collections::HashMap<Arc<str>, u32>,
    ) {
        for (id, vector) in persons {
            if vector.len() != self.dim {
                continue;
            }
            match seen.get(id) {
                Some(&row) => self.groups[row as usize] |= 1 << group,
                None => {
                    seen.insert(id.clone(), self.ids.len() as u32);
                    self.ids.push(id.clone());
                    self.groups.push(1 << group);
                    self.vectors.extend_from_slice(vector);
                }
            }
        }
    }
}

/// Copy the persons of `groups` (the check's groups in order), each group under its read lock in turn.
/// Blocking: a large group takes a while to copy.
pub fn snapshot(groups: &[Arc<Group>], dim: usize) -> Snapshot {
    let mut snapshot = Snapshot::new(dim);
    let mut seen = std::collections::HashMap::new();
    for (i, group) in groups.iter().enumerate() {
        let index = group.read();
        snapshot.add(i, index.person_vectors(), &mut seen);
    }
    snapshot
}

/// Two persons of the snapshot (rows `a` < `b`) and their cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub cosine: f32,
}

/// Pairs that rows `rows` form with the rows after them.
pub fn pairs_in_rows(n: usize, rows: Range<usize>) -> u64 {
    rows.map(|i| (n - 1 - i) as u64).sum()
}

/// The end of the round starting at row `start`: enough rows for about `budget` pairs (at least one).
pub fn round_end(n: usize, start: usize, budget: u64) -> usize {
    let mut pairs = 0u64;
    let mut end = start;
    while end < n && (end == start || pairs < budget) {
        pairs += (n - 1 - end) as u64;
        end += 1;
    }
    end
}

/// Every pair (i, j), i in `rows`, j > i, whose cosine reaches `floor`: blocks of `BLOCK_ROWS` rows on the
/// current rayon pool, each block scored against column tiles of `TILE` persons.
pub fn scan_rows(vectors: &[f32], dim: usize, rows: Range<usize>, floor: f32) -> Vec<Pair> {
    let n = vectors.len() / dim;
    let blocks: Vec<Range<usize>> = rows
        .clone()
        .step_by(BLOCK_ROWS)
        .map(|start| start..(start + BLOCK_ROWS).min(rows.end))
        .collect();
    blocks
        .into_par_iter()
        .map(|block| {
            let mut found = Vec::new();
            let mut scores = vec![0f32; TILE];
            let mut tile = block.start + 1;
            while tile < n {
                let tile_end = (tile + TILE).min(n);
                for i in block.clone() {
                    let from = tile.max(i + 1);
                    if from >= tile_end {
                        continue;
                    }
                    let scores = &mut scores[..tile_end - from];
                    dot_block(
                        &vectors[i * dim..(i + 1) * dim],
                        &vectors[from * dim..tile_end * dim],
                        scores,
                    );
                    for (offset, &cosine) in scores.iter().enumerate() {
                        if cosine >= floor {
                            found.push(Pair {
                                a: i as u32,
                                b: (from + offset) as u32,
                                cosine,
                            });
                        }
                    }
                }
                tile = tile_end;
            }
            found
        })
        .reduce(Vec::new, |mut a, mut b| {
            a.append(&mut b);
            a
        })
}

/// Keep the `keep` strongest pairs when there are more than twice that many; returns the cosine the kept
/// ones reach (the scan's new floor), or `None` when nothing was dropped.
pub fn keep_strongest(found: &mut Vec<Pair>, keep: usize) -> Option<f32> {
    if keep == 0 || found.len() <= 2 * keep {
        return None;
    }
    found.select_nth_unstable_by(keep - 1, |x, y| y.cosine.total_cmp(&x.cosine));
    found.truncate(keep);
    found.iter().map(|p| p.cosine).reduce(f32::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::ModelVersion;
    use crate::face::embed::Recognition;
    use crate::jobs::similar::pairs;

    fn brute_force(vectors: &[f32], dim: usize, floor: f32) -> Vec<(u32, u32)> {
        let n = vectors.len() / dim;
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let c = crate::face::embed::cosine(
                    &vectors[i * dim..(i + 1) * dim],
                    &vectors[j * dim..(j + 1) * dim],
                );
                if c >= floor {
                    out.push((i as u32, j as u32));
                }
            }
        }
        out
    }

    /// `n` random persons, with rows `copies[k].1` a near copy of row `copies[k].0`.
    fn with_duplicates(n: usize, dim: usize, copies: &[(usize, usize)]) -> Vec<f32> {
        let mut v = synthetic(n, dim, 7);
        let noise = synthetic(n, dim, 99);
        for &(from, to) in copies {
            for d in 0..dim {
                v[to * dim + d] = v[from * dim + d] + 0.3 * noise[to * dim + d];
            }
            crate::face::embed::normalise(&mut v[to * dim..(to + 1) * dim]);
        }
        v
    }

    #[test]
    fn the_blocked_scan_finds_exactly_the_pairs_of_a_brute_force_scan() {
        let dim = 192;
        // Sizes around the block and tile edges.
        for n in [0, 1, 2, 31, 33, 129, 300] {
            let copies: Vec<(usize, usize)> = (0..n / 10).map(|k| (k, n - 1 - k)).collect();
            let v = with_duplicates(n, dim, &copies);
            for floor in [0.1, 0.9] {
                // In rounds, as the worker runs it.
                let mut got = Vec::new();
                let mut row = 0;
                while row < n {
                    let end = round_end(n, row, 500);
                    got.extend(scan_rows(&v, dim, row..end, floor));
                    row = end;
                }
                let mut got: Vec<(u32, u32)> = got.iter().map(|p| (p.a, p.b)).collect();
                got.sort_unstable();
                assert_eq!(got, brute_force(&v, dim, floor), "n={n} floor={floor}");
            }
            let all = scan_rows(&v, dim, 0..n, 0.9);
            for k in 0..n / 10 {
                assert!(
                    all.iter()
                        .any(|p| (p.a, p.b) == (k as u32, (n - 1 - k) as u32))
                );
            }
        }
    }

    #[test]
    fn rounds_cover_every_row_once_and_count_pairs() {
        let n = 1000;
        let mut row = 0;
        let mut total = 0;
        while row < n {
            let end = round_end(n, row, 10_000);
            assert!(end > row);
            total += pairs_in_rows(n, row..end);
            row = end;
        }
        assert_eq!(total, pairs(n as u64));
        assert_eq!(round_end(n, n - 1, 1_000_000), n);
        assert_eq!(round_end(10, 0, 0), 1);
    }

    #[test]
    fn the_snapshot_takes_each_person_of_the_group_indexes_once() {
        use crate::index::{GroupIndex, Indexes};
        let model = Recognition::current(ModelVersion::V3);
        let v = synthetic(3, model.dim, 5);
        let row = |i: usize| v[i * model.dim..(i + 1) * model.dim].to_vec();
        let indexes = Indexes::default();
        let mut g1 = GroupIndex::new(ModelVersion::V3, model);
        g1.add_faces("shared", &[(1, row(0))]);
        g1.add_faces("only-1", &[(2, row(1)), (3, row(2))]);
        let mut g2 = GroupIndex::new(ModelVersion::V3, model);
        g2.add_faces("shared", &[(1, row(0))]);
        indexes.insert_group("g1".into(), g1);
        indexes.insert_group("g2".into(), g2);
        let groups = vec![indexes.group("g1").unwrap(), indexes.group("g2").unwrap()];
        let snap = snapshot(&groups, model.dim);
        let mut rows: Vec<(String, u16)> = snap
            .ids
            .iter()
            .zip(&snap.groups)
            .map(|(id, g)| (id.to_string(), *g))
            .collect();
        rows.sort();
        assert_eq!(rows, vec![("only-1".into(), 0b01), ("shared".into(), 0b11)]);
        assert_eq!(snap.vectors.len(), 2 * model.dim);
    }

    #[test]
    fn only_the_strongest_pairs_are_kept_past_the_cap() {
        let mut found: Vec<Pair> = (0..100)
            .map(|i| Pair {
                a: i,
                b: i + 1,
                cosine: i as f32 / 100.0,
            })
            .collect();
        assert_eq!(keep_strongest(&mut found, 50), None);
        assert_eq!(found.len(), 100);
        let floor = keep_strongest(&mut found, 10).unwrap();
        assert_eq!(found.len(), 10);
        assert!((floor - 0.90).abs() < 1e-6);
        assert!(found.iter().all(|p| p.cosine >= 0.90));
    }
}
