//! The plain rows the audit trail's operations take and return, shared by both backends (`sqlite::audit`,
//! `postgres::audit`), and the latency histogram the statistics keep.

use serde::{Deserialize, Serialize};

/// A search log candidate: what the actions hand over (`api::search_log`) is what is stored.
pub use crate::api::search_log::Candidate;

/// Statistics buckets are 5 minutes, as Tencent's console reports.
pub const BUCKET_MS: i64 = 300_000;

/// The actions whose rows make the search log (人脸搜索流水): searches and verifications.
pub const SEARCH_ACTIONS: &[&str] = &[
    "SearchFaces",
    "SearchFacesReturnsByGroup",
    "SearchPersons",
    "SearchPersonsReturnsByGroup",
    "ConsoleSearchFaces",
    "ConsoleSearchPersons",
    "VerifyFace",
    "VerifyPerson",
];

/// One call, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub time_ms: i64,
    pub request_id: String,
    /// `main`, a sub-user's uin, or empty for a call refused before it was authenticated.
    pub principal: String,
    pub secret_id: Option<String>,
    pub action: Option<String>,
    pub interface_group: Option<String>,
    pub groups: Vec<String>,
    pub client: Option<String>,
    /// `OK` or the error code.
    pub code: String,
    pub latency_us: u64,
    pub face_num: Option<u64>,
    pub candidates: Option<Vec<Candidate>>,
}

/// A batch's aggregate for one bucket and action, added to what the bucket already holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StatDelta {
    /// The bucket's start, a multiple of `BUCKET_MS`.
    pub bucket_ms: i64,
    pub action: String,
    pub interface_group: String,
    pub calls: u64,
    pub errors: u64,
    pub latency: Histogram,
}

/// One bucket of one action, as the console reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    pub bucket_ms: i64,
    pub action: String,
    pub interface_group: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub group_id: Option<String>,
    pub secret_id: Option<String>,
    /// `main` or a sub-user's uin.
    pub principal: Option<String>,
    pub code: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// minute), so any bucket's p50/p99 is within 12 % and buckets merge by adding counts. It is what the
/// statistics keep, so its byte form (`to_bytes`) is part of the stored format.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: [u32; HISTOGRAM_BUCKETS],
}

const HISTOGRAM_BUCKETS: usize = 64;
const FIRST_US: f64 = 50.0;
const RATIO: f64 = 1.25;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; HISTOGRAM_BUCKETS],
        }
    }
}

impl Histogram {
    pub fn add(&mut self, latency_us: u64) {
        let us = latency_us.max(1) as f64;
        let i = if us <= FIRST_US {
            0
        } else {
            ((us / FIRST_US).ln() / RATIO.ln()).ceil() as usize
        };
        let i = i.min(HISTOGRAM_BUCKETS - 1);
        self.counts[i] = self.counts[i].saturating_add(1);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// The latency below which `q` (0..1) of the calls fall, in milliseconds (a bucket's geometric middle).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return 0.0;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                let upper = FIRST_US * RATIO.powi(i as i32);
                let lower = upper / RATIO;
                return (upper * lower).sqrt() / 1000.0;
            }
        }
        FIRST_US * RATIO.powi(HISTOGRAM_BUCKETS as i32 - 1) / 1000.0
    }

    /// Little-endian u32 counts.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.counts.iter().flat_map(|c| c.to_le_bytes()).collect()
    }

    /// Reads what `to_bytes` wrote; anything else reads as empty.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut h = Self::default();
        if bytes.len() == HISTOGRAM_BUCKETS * 4 {
            for (i, chunk) in bytes.chunks_exact(4).enumerate() {
                h.counts[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
        h
    }
}
