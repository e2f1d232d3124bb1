//! A fixed log-scale latency histogram: 64 buckets growing by 25 % from 50 µs (the last reaches about a
//! minute), so any bucket's p50/p99 is within 12 % and buckets merge by adding counts.

const BUCKETS: usize = 64;
const FIRST_US: f64 = 50.0;
const RATIO: f64 = 1.25;

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: [u32; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
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
        let i = i.min(BUCKETS - 1);
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
        FIRST_US * RATIO.powi(BUCKETS as i32 - 1) / 1000.0
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.counts.iter().flat_map(|c| c.to_le_bytes()).collect()
    }

    /// Reads what `to_bytes` wrote; anything else reads as empty.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut h = Self::default();
        if bytes.len() == BUCKETS * 4 {
            for (i, chunk) in bytes.chunks_exact(4).enumerate() {
                h.counts[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.add(us * 100);
        }
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((50.0 * 0.85..=50.0 * 1.15).contains(&p50), "{p50}");
        assert!((99.0 * 0.85..=99.0 * 1.15).contains(&p99), "{p99}");
        let round = Histogram::from_bytes(&h.to_bytes());
        assert_eq!(round, h);
        let mut twice = h.clone();
        twice.merge(&h);
        assert!((twice.quantile_ms(0.5) - p50).abs() < 1e-9);
        assert_eq!(Histogram::default().quantile_ms(0.5), 0.0);
    }
}
