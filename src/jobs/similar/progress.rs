//! A duplicate check's saved progress, so that the next process or replica to run it resumes where it
//! stopped instead of from its start: the snapshot's persons in scan order (with the groups holding each),
//! and the scan's position with the pairs found so far. Both are files beside the results (`Links`: the data
//! directory, or the shared database), saved at most every `EVERY` and deleted when the check ends.
//!
//! The vectors are not saved (a million persons' are 768 MB): a resumed check takes each saved person's
//! fused feature as its groups hold it then. A person deleted since matches nothing; one whose faces changed
//! is compared as it is now; persons added since are not in the check (they were not in its snapshot).

use std::sync::Arc;
use std::time::Duration;

use super::scan::{Pair, Snapshot};
use crate::index::Group;

/// How often a running check saves its position.
pub const EVERY: Duration = Duration::from_secs(10);

const PERSONS_MAGIC: &[u8; 8] = b"IAICHKP1";
const POSITION_MAGIC: &[u8; 8] = b"IAICHKS1";

/// The endings of the two files (persons, position), for the purge of abandoned ones.
pub const SUFFIXES: [&str; 2] = [".snapshot", ".progress"];

pub fn persons_file(job_id: &str) -> String {
    format!("{job_id}{}", SUFFIXES[0])
}

pub fn position_file(job_id: &str) -> String {
    format!("{job_id}{}", SUFFIXES[1])
}

/// Where a scan stands: rows before `row` are done, `floor` is the cosine a pair must reach (raised once
/// the kept pairs are capped), `found` the pairs kept so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub persons: u32,
    pub row: u32,
    pub floor: f32,
    pub found: Vec<Pair>,
}

/// The snapshot's persons: for each, its groups (a bit per group of the check) and its id.
pub fn encode_persons(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + snapshot.len() * 24);
    out.extend_from_slice(PERSONS_MAGIC);
    out.extend_from_slice(&(snapshot.len() as u32).to_le_bytes());
    for (id, groups) in snapshot.ids.iter().zip(&snapshot.groups) {
        out.extend_from_slice(&groups.to_le_bytes());
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// A little-endian reader that answers `None` past the end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }

    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
}

/// The persons saved by `encode_persons`: ids and groups, in scan order; `None` when unreadable.
pub fn decode_persons(bytes: &[u8]) -> Option<(Vec<Arc<str>>, Vec<u16>)> {
    let mut r = Reader(bytes);
    if r.bytes(8)? != PERSONS_MAGIC {
        return None;
    }
    let n = r.u32()? as usize;
    // Each person takes at least 4 bytes: a count beyond that is a damaged file, not an allocation.
    if n > r.0.len() / 4 {
        return None;
    }
    let (mut ids, mut groups) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        groups.push(r.u16()?);
        let len = r.u16()? as usize;
        ids.push(Arc::from(std::str::from_utf8(r.bytes(len)?).ok()?));
    }
    r.0.is_empty().then_some((ids, groups))
}

pub fn encode_position(position: &Position) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + position.found.len() * 12);
    out.extend_from_slice(POSITION_MAGIC);
    out.extend_from_slice(&position.persons.to_le_bytes());
    out.extend_from_slice(&position.row.to_le_bytes());
    out.extend_from_slice(&position.floor.to_le_bytes());
    out.extend_from_slice(&(position.found.len() as u32).to_le_bytes());
    for pair in &position.found {
        out.extend_from_slice(&pair.a.to_le_bytes());
        out.extend_from_slice(&pair.b.to_le_bytes());
        out.extend_from_slice(&pair.cosine.to_le_bytes());
    }
    out
}

/// A position saved by `encode_position`; `None` when unreadable or out of range.
pub fn decode_position(bytes: &[u8]) -> Option<Position> {
    let mut r = Reader(bytes);
    if r.bytes(8)? != POSITION_MAGIC {
        return None;
    }
    let (persons, row, floor, count) = (r.u32()?, r.u32()?, r.f32()?, r.u32()? as usize);
    if row > persons || count > r.0.len() / 12 || !floor.is_finite() {
        return None;
    }
    let mut found = Vec::with_capacity(count);
    for _ in 0..count {
        let pair = Pair {
            a: r.u32()?,
            b: r.u32()?,
            cosine: r.f32()?,
        };
        if pair.a >= pair.b || pair.b >= persons {
            return None;
        }
        found.push(pair);
    }
    r.0.is_empty().then_some(Position {
        persons,
        row,
        floor,
        found,
    })
}

/// The snapshot of a resumed check: the saved persons in their order and with their saved groups, each with
/// its fused feature as `groups` hold it now (zeros, which match nothing, for a person no longer there).
/// Blocking: each group is read under its read lock in turn.
pub fn refill(
    ids: Vec<Arc<str>>,
    of_groups: Vec<u16>,
    groups: &[Arc<Group>],
    dim: usize,
) -> Snapshot {
    let rows: std::collections::HashMap<Arc<str>, usize> = ids
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let mut vectors = vec![0.0f32; ids.len() * dim];
    for group in groups {
        let index = group.read();
        for (id, vector) in index.person_vectors() {
            if let (Some(&row), true) = (rows.get(id), vector.len() == dim) {
                vectors[row * dim..(row + 1) * dim].copy_from_slice(vector);
            }
        }
    }
    Snapshot {
        dim,
        ids,
        groups: of_groups,
        vectors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_persons_and_positions_read_back_and_damage_is_refused() {
        let mut snapshot = Snapshot::new(2);
        let mut seen = std::collections::HashMap::new();
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) =
            ("p-a".into(), "人脸".into(), "p:c/d".into());
        let vectors = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]];
        snapshot.add(
            0,
            [(&a, &vectors[0][..]), (&b, &vectors[1][..])].into_iter(),
            &mut seen,
        );
        snapshot.add(
            1,
            [(&b, &vectors[1][..]), (&c, &vectors[2][..])].into_iter(),
            &mut seen,
        );
        let bytes = encode_persons(&snapshot);
        let (ids, groups) = decode_persons(&bytes).unwrap();
        assert_eq!(ids, snapshot.ids);
        assert_eq!(groups, vec![0b01, 0b11, 0b10]);
        for cut in [0, 7, 8, 11, bytes.len() - 1] {
            assert_eq!(decode_persons(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_persons(&longer), None);
        // A count far beyond the bytes is refused before anything is allocated for it.
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_persons(&huge), None);

        let position = Position {
            persons: 3,
            row: 1,
            floor: 0.5,
            found: vec![Pair {
                a: 0,
                b: 2,
                cosine: 0.6,
            }],
        };
        let bytes = encode_position(&position);
        assert_eq!(decode_position(&bytes), Some(position.clone()));
        assert_eq!(decode_position(&bytes[..bytes.len() - 1]), None);
        let mut beyond = position.clone();
        beyond.found[0].b = 3;
        assert_eq!(decode_position(&encode_position(&beyond)), None);
        let mut past = position;
        past.row = 4;
        assert_eq!(decode_position(&encode_position(&past)), None);
    }
}
