//! A small mergeable histogram with logarithmic buckets (2% wide), so shard
//! reports can be merged and their percentiles recomputed exactly as if one
//! process had measured everything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bucket growth factor: a value is reported within 2% of its true size.
const GROWTH: f64 = 1.02;

/// Counts per logarithmic bucket of non-negative values (e.g. microseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bucket index → count. Index 0 holds values below 1.
    buckets: BTreeMap<u32, u64>,
    count: u64,
    max: u64,
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
        *self.buckets.entry(bucket_of(value)).or_default() += 1;
        self.count += 1;
        self.max = self.max.max(value);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, n) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += n;
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
        for (bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return upper_bound(*bucket).min(self.max);
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
}
