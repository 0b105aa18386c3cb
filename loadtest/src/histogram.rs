//! A small mergeable histogram with logarithmic buckets (2% wide), so shard
//! reports can be merged and their percentiles recomputed exactly as if one
//! process had measured everything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bucket growth factor: a value is reported within 2% of its true size.
const GROWTH: f64 = 1.02;

/// Counts per logarithmic bucket of non-negative values (e.g. microseconds).
///
/// The counts are a dense array indexed by bucket: the load generator
/// records every received frame's latency twice (the run's histogram and
/// the second's), about 180,000 values a second at 2,000 participants, on
/// the core that also drives the sessions, so a record must be an index,
/// not a tree insert. Serialized, it is the sparse `buckets` map that
/// reports have always carried, so reports merge across versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "SparseHistogram", into = "SparseHistogram")]
pub struct Histogram {
    /// Count per bucket index; index 0 holds values below 1. As long as
    /// the highest bucket counted so far.
    counts: Vec<u64>,
    count: u64,
    max: u64,
}

/// The serialized form: only the buckets that counted something.
#[derive(Serialize, Deserialize)]
struct SparseHistogram {
    /// Bucket index → count.
    buckets: BTreeMap<u32, u64>,
    count: u64,
    max: u64,
}

impl From<SparseHistogram> for Histogram {
    fn from(sparse: SparseHistogram) -> Self {
        let mut h = Histogram {
            counts: Vec::new(),
            count: sparse.count,
            max: sparse.max,
        };
        for (bucket, n) in sparse.buckets {
            *h.slot(bucket) += n;
        }
        h
    }
}

impl From<Histogram> for SparseHistogram {
    fn from(h: Histogram) -> Self {
        SparseHistogram {
            buckets: h.nonzero().collect(),
            count: h.count,
            max: h.max,
        }
    }
}

/// Equal when they counted the same values per bucket, however far either
/// array has grown.
impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.max == other.max && self.nonzero().eq(other.nonzero())
    }
}

fn bucket_of(value: u64) -> u32 {
    if value < 1 {
        0
    } else {
        ((value as f64).ln() / GROWTH.ln()).floor() as u32 + 1
    }
}

/// The largest value that falls in `bucket` (what percentiles report).
fn upper_bound(bucket: u32) -> u64 {
    if bucket == 0 {
        0
    } else {
        GROWTH.powi(bucket as i32).floor() as u64
    }
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        *self.slot(bucket_of(value)) += 1;
        self.count += 1;
        self.max = self.max.max(value);
    }

    /// The count of `bucket`, grown into (at most 2,242 buckets: `u64::MAX`
    /// falls in 2,241).
    fn slot(&mut self, bucket: u32) -> &mut u64 {
        let i = bucket as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        &mut self.counts[i]
    }

    /// The buckets that counted something, in order, with their counts.
    fn nonzero(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u32, *n))
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, n) in other.nonzero() {
            *self.slot(bucket) += n;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value counted.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), within the bucket width; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (bucket, n) in self.nonzero() {
            seen += n;
            if seen >= rank {
                return upper_bound(bucket).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 5000.0), (0.95, 9500.0), (0.99, 9900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.021, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 0..5000u64 {
            let x = v * 7 % 3001;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a, all);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), all);
    }

    #[test]
    fn reports_keep_the_sparse_bucket_map() {
        // A report's histogram as written before the counts became dense:
        // it still reads, and writes back the same way.
        let old = r#"{"buckets":{"0":1,"36":2},"count":3,"max":2}"#;
        let h: Histogram = serde_json::from_str(old).unwrap();
        assert_eq!(h.quantile(0.2), 0);
        assert_eq!(h.quantile(1.0), 2);
        assert_eq!(serde_json::to_string(&h).unwrap(), old);
        // Arrays of different lengths with the same counts are equal.
        let mut grown = h.clone();
        grown.slot(2_000);
        assert_eq!(grown, h);
    }

    #[test]
    fn extreme_values_fit() {
        let mut h = Histogram::default();
        h.record(u64::MAX);
        h.record(0);
        assert_eq!(h.count(), 2);
        assert_eq!(h.quantile(1.0), u64::MAX);
        assert_eq!(h.quantile(0.5), 0);
        assert_eq!(h.counts.len(), 2_242);
    }
}
