//! How the node's latency histograms are exported.
//!
//! The metrics exporter renders a histogram as a summary unless it is
//! given buckets. Summary quantiles cover the exporter's own rolling window
//! and cannot be subtracted, so a benchmark could not ask "what was p99
//! during these ten seconds". Cumulative buckets can: take the counts at
//! the start and the end of a window, subtract, and read the quantile off
//! the difference ([`quantile_from_buckets`]). Every process that hosts a
//! node (the `sfu` binary, the signalling service's embedded node, the
//! benchmark's node) installs its exporter through [`with_buckets`].
//!
//! ```
//! let builder = sfu::telemetry::with_buckets(
//!     metrics_exporter_prometheus::PrometheusBuilder::new(),
//! );
//! assert!(builder.is_ok());
//! ```

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Time from a datagram reaching the node's UDP socket (the kernel's
/// receive timestamp, so the wait in the socket's queue counts) to the
/// moment the batch it was read in has handed its output to the kernel, in
/// seconds (histogram), one sample per datagram read. Packets that str0m's pacer holds back go out in a later
/// batch, so with the egress estimate on this is a lower bound for them.
pub const TRANSIT_SECONDS: &str = "veil_sfu_transit_seconds";

/// Bucket bounds for [`TRANSIT_SECONDS`]: 25 µs to 1 s, finest around the
/// 1 ms that matters for a forwarding hop.
pub const TRANSIT_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_075, 0.000_1, 0.000_15, 0.000_2, 0.000_3, 0.000_4, 0.000_5,
    0.000_75, 0.001, 0.001_5, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

/// `builder` with the node's histogram buckets set.
pub fn with_buckets(builder: PrometheusBuilder) -> Result<PrometheusBuilder, BuildError> {
    builder.set_buckets_for_metric(Matcher::Full(TRANSIT_SECONDS.into()), TRANSIT_BUCKETS)
}

/// The cumulative bucket counts of histogram `name` in Prometheus text, as
/// `(upper bound, count)` pairs in order, summed over label sets (one per
/// worker, say). `+Inf` is the last pair.
pub fn buckets_in(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut sums: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|l| l.trim_end_matches('}').strip_prefix("le=\""))
            .map(|v| v.trim_end_matches('"'))
        else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(b) => b,
                Err(_) => continue,
            }
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        match sums.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, c)) => *c += count,
            None => sums.push((bound, count)),
        }
    }
    sums.sort_by(|a, b| a.0.total_cmp(&b.0));
    sums
}

/// [`quantile_from_buckets`] in whole microseconds, the unit reports use
/// for [`TRANSIT_SECONDS`].
pub fn quantile_us_from_buckets(
    before: &[(f64, f64)],
    after: &[(f64, f64)],
    q: f64,
) -> Option<f64> {
    quantile_from_buckets(before, after, q).map(|s| (s * 1e6).round())
}

/// The `q` quantile (0..=1) of the observations between two snapshots of
/// the same histogram's cumulative buckets ([`buckets_in`]), as the upper
/// bound of the bucket it falls in: never an underestimate. `None` when
/// nothing was observed in between, or when the quantile lies past the
/// last finite bound.
pub fn quantile_from_buckets(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let count_before = |bound: f64| {
        before
            .iter()
            .find(|(b, _)| *b == bound)
            .map_or(0.0, |(_, c)| *c)
    };
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|&(bound, c)| (bound, c - count_before(bound)))
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total).ceil().max(1.0);
    deltas
        .iter()
        .find(|(_, cumulative)| *cumulative >= rank)
        .map(|(bound, _)| *bound)
        .filter(|b| b.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# TYPE veil_sfu_transit_seconds histogram
veil_sfu_transit_seconds_bucket{worker=\"0\",le=\"0.0001\"} 10
veil_sfu_transit_seconds_bucket{worker=\"0\",le=\"0.001\"} 10
veil_sfu_transit_seconds_bucket{worker=\"0\",le=\"+Inf\"} 10
";
    const AFTER: &str = "\
veil_sfu_transit_seconds_bucket{worker=\"0\",le=\"0.0001\"} 90
veil_sfu_transit_seconds_bucket{worker=\"0\",le=\"0.001\"} 108
veil_sfu_transit_seconds_bucket{worker=\"0\",le=\"+Inf\"} 110
veil_sfu_transit_seconds_bucket{worker=\"1\",le=\"0.0001\"} 0
veil_sfu_transit_seconds_bucket{worker=\"1\",le=\"0.001\"} 0
veil_sfu_transit_seconds_bucket{worker=\"1\",le=\"+Inf\"} 0
veil_sfu_transit_seconds_sum 0.5
";

    #[test]
    fn quantiles_come_from_the_window_between_two_snapshots() {
        let before = buckets_in(BEFORE, TRANSIT_SECONDS);
        let after = buckets_in(AFTER, TRANSIT_SECONDS);
        assert_eq!(before.len(), 3);
        assert_eq!(
            after,
            vec![(0.0001, 90.0), (0.001, 108.0), (f64::INFINITY, 110.0)]
        );
        // 100 observations in the window: 80 under 100 µs, 18 under 1 ms,
        // 2 beyond. The 10 before it do not count.
        let q = |q| quantile_from_buckets(&before, &after, q);
        assert_eq!(q(0.5), Some(0.0001));
        assert_eq!(q(0.8), Some(0.0001));
        assert_eq!(q(0.81), Some(0.001));
        assert_eq!(q(0.98), Some(0.001));
        assert_eq!(q(0.99), None, "past the last finite bound");
        assert_eq!(
            quantile_from_buckets(&after, &after, 0.5),
            None,
            "an empty window"
        );
        assert_eq!(
            buckets_in(
                "garbage\nveil_sfu_transit_seconds_bucket{le=\"x\"} 1",
                TRANSIT_SECONDS
            ),
            vec![]
        );
    }
}
