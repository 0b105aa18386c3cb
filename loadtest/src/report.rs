//! The JSON report (schema `veil-loadtest/1`), merging shard reports,
//! thresholds, and the final table.
//!
//! Top-level fields every report has: `participants`, `duration_s`,
//! `packets_forwarded_per_s`, `loss_ratio`, `latency_ms.{p50,p95,p99,max}`,
//! `decrypt_failures`, `join_ms.{p50,p99,max}`. The histograms behind the
//! percentiles are kept (`histograms`) so that `loadtest merge` recomputes
//! them exactly.

use serde::{Deserialize, Serialize};

use crate::histogram::Histogram;
use crate::scenario::{Scenario, Shard};

/// Report format version.
pub const SCHEMA: &str = "veil-loadtest/1";
/// Below this share of the configured frames really sent, a run fails: its
/// figures describe less load than the scenario claims.
pub const MIN_SEND_RATIO: f64 = 0.95;
/// Above this p99 (an upper bound: the true p99 is at least half of it) of
/// the time datagrams waited in the load generator's own sockets, a run
/// fails: the generator, not the system under test, added the latency.
pub const MAX_RECEIVE_WAIT_P99_MS: f64 = 60.0;

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of_us(h: &Histogram) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.quantile(0.50)),
            p95: ms(h.quantile(0.95)),
            p99: ms(h.quantile(0.99)),
            max: ms(h.max()),
        }
    }

    /// From counts in log2 buckets of microseconds (bucket `i` holds
    /// `[2^i, 2^(i+1))`), each figure the upper bound of its bucket;
    /// `None` when the buckets are empty.
    pub fn of_log2_us(buckets: &[u64]) -> Option<Self> {
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let upper_ms = |i: usize| (1u64 << (i + 1)) as f64 / 1000.0;
        let at = |q: f64| {
            let rank = (q * total as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, &n) in buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return upper_ms(i);
                }
            }
            upper_ms(buckets.len() - 1)
        };
        let last = buckets.iter().rposition(|&n| n > 0).unwrap_or(0);
        Some(Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: upper_ms(last),
        })
    }
}

/// The histograms behind the percentiles (microseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// End-to-end frame latency.
    pub latency_us: Histogram,
    /// Join: WebSocket open to ICE+DTLS connected.
    pub join_us: Histogram,
    /// Join start to the first decrypted frame.
    pub first_frame_us: Histogram,
    /// Each participant's longest wait between two frames of one stream.
    #[serde(default)]
    pub interruption_us: Histogram,
}

/// A participant whose media stopped for a while (a node died or drained,
/// the network dropped): how long, and whether it had to rejoin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// Who.
    pub participant: String,
    /// Their room.
    pub room: String,
    /// Their longest wait between two frames of one stream, ms: the time
    /// to recover.
    pub longest_gap_ms: f64,
    /// New media sessions they needed.
    pub rejoins: u64,
}

/// What the SFU reported about itself over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SfuFigures {
    /// Where the numbers come from: `embedded` (its threads in this
    /// process) or the scraped `/metrics` URLs.
    pub source: String,
    /// RTP packets received per second.
    pub packets_in_per_s: f64,
    /// RTP packets forwarded per second.
    pub packets_out_per_s: f64,
    /// RTP bytes received per second.
    pub bytes_in_per_s: f64,
    /// RTP bytes forwarded per second.
    pub bytes_out_per_s: f64,
    /// NACKs received from subscribers.
    pub nacks: f64,
    /// CPU cores the SFU used on average (1.0 = one core busy).
    pub cpu_cores: Option<f64>,
    /// The same over the steady window only (after the ramp and the
    /// warm-up): no joins' handshakes in it, so runs of one scenario compare.
    #[serde(default)]
    pub steady_cpu_cores: Option<f64>,
    /// Resident memory at the end, bytes (the whole process when embedded).
    pub resident_bytes: Option<f64>,
    /// Time inside the SFU over the run (`veil_sfu_transit_seconds`); absent
    /// when the SFU does not export it (or in reports from before it did).
    #[serde(default)]
    pub transit_us: Option<Transit>,
}

/// Quantiles of the SFU's transit time (socket in to kernel out), in µs,
/// as histogram bucket bounds: never understated, `None` past the last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transit {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

impl Transit {
    /// The quantiles of what was observed between two bucket snapshots;
    /// `None` when nothing was.
    pub fn between(before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<Transit> {
        let count = |buckets: &[(f64, f64)]| buckets.last().map_or(0.0, |(_, c)| *c);
        if count(after) <= count(before) {
            return None;
        }
        let q = |q| sfu::telemetry::quantile_us_from_buckets(before, after, q);
        Some(Transit {
            p50: q(0.5),
            p99: q(0.99),
        })
    }
}

/// What simulating the participants cost this load generator: how many
/// generator processes (or pods) a scenario needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadGenerator {
    /// CPU cores the simulated participants used on average (the whole
    /// process, less the embedded SFU's threads when `--embedded`); summed
    /// over shards.
    pub cpu_cores: Option<f64>,
    /// The same over the steady window only (after the ramp and the
    /// warm-up), without the joins' handshakes; summed over shards.
    #[serde(default)]
    pub steady_cpu_cores: Option<f64>,
    /// Participants connected at the end per core of that.
    pub participants_per_core: Option<f64>,
    /// How long datagrams waited in the generator's own sockets before it
    /// read them, ms (upper bounds of log2 buckets; sessions on a
    /// `SessionPool` only). A long wait means the generator was saturated
    /// and the latencies include its own queueing; merged: the worst shard.
    #[serde(default)]
    pub receive_wait_ms: Option<Percentiles>,
}

/// What the built-in impairment proxies did (all zero without impairment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Datagrams the proxies passed on, both ways.
    pub datagrams_passed: u64,
    /// Datagrams they dropped on purpose.
    pub datagrams_dropped: u64,
    /// `dropped / (passed + dropped)`: the loss the network really had,
    /// before NACK/RTX recovered what it could (compare `loss_ratio`).
    pub loss_ratio: f64,
}

/// One second of the run, for the plot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// Seconds since the start.
    pub t: f64,
    /// Participants connected.
    pub connected: usize,
    /// Frames decrypted in this second, all receivers.
    pub frames: u64,
    /// Median latency of those frames, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// SFU packets forwarded in this second.
    pub packets_out: f64,
}

/// Threshold results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// All thresholds met.
    pub passed: bool,
    /// What missed, for people.
    pub failures: Vec<String>,
}

/// A run's (or merged runs') results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `veil-loadtest/1`.
    pub schema: String,
    /// What was run.
    pub scenario: Scenario,
    /// Which shards are in this report.
    pub shards: Vec<Shard>,
    /// Participants this report covers (joins attempted, churn included).
    pub participants: usize,
    /// Joins that failed.
    pub join_failures: usize,
    /// Wall time of the run, seconds (ramp-up, hold and churn).
    pub duration_s: f64,
    /// Join time percentiles, ms.
    pub join_ms: Percentiles,
    /// Time to the first decrypted frame, ms.
    pub first_frame_ms: Percentiles,
    /// End-to-end frame latency (encrypt at the sender to decrypt at the
    /// receiver), ms.
    pub latency_ms: Percentiles,
    /// Mean interarrival jitter over streams (RFC 3550 style, on frame
    /// latency), ms.
    pub jitter_ms: f64,
    /// Frames the receivers should have decrypted (audio, and video unless
    /// simulcast), from sender sequence numbers.
    pub frames_expected: u64,
    /// Of those, decrypted.
    pub frames_received: u64,
    /// `1 - received / expected`.
    pub loss_ratio: f64,
    /// All frames decrypted (every kind and layer).
    pub frames_decrypted: u64,
    /// Frames that failed to decrypt (wrong key, tampering).
    pub decrypt_failures: u64,
    /// Frames sent by the publishers.
    pub frames_sent: u64,
    /// Frames the publishers should have sent but skipped because they fell
    /// behind their clocks: the load generator's machine was saturated and
    /// offered less load than configured.
    #[serde(default)]
    pub frames_skipped: u64,
    /// `frames_sent / (frames_sent + frames_skipped)`: the share of the
    /// configured load that was really offered.
    #[serde(default)]
    pub send_ratio: f64,
    /// Packets that arrived after newer ones and filled a gap: NACK/RTX
    /// recoveries (plus reordering when `jitter` is set).
    pub nack_recoveries: u64,
    /// SFU packets forwarded per second.
    pub packets_forwarded_per_s: f64,
    /// Client-side RTP packets received per second, all receivers.
    pub client_packets_in_per_s: f64,
    /// The SFU's own figures.
    pub sfu: SfuFigures,
    /// The load generator's own cost.
    #[serde(default)]
    pub load_generator: LoadGenerator,
    /// The impaired network, as the proxies saw it.
    pub network: Network,
    /// Per-second figures.
    pub timeline: Vec<Tick>,
    /// Thresholds and whether the run met them.
    pub verdict: Verdict,
    /// Raw histograms for merging.
    pub histograms: Histograms,
    /// Jitter sum and stream count, for merging the mean.
    pub jitter_streams: (f64, u64),
    /// Per participant, the longest wait between two frames of a stream
    /// (what an interruption cost), ms.
    #[serde(default)]
    pub interruption_ms: Percentiles,
    /// Participants whose media stopped for 250 ms or more, longest first.
    #[serde(default)]
    pub interruptions: Vec<Interruption>,
    /// Rejoins: new media sessions after a node was lost or drained.
    #[serde(default)]
    pub rejoins: u64,
    /// Rooms in which no member decrypted anything in the run's last two
    /// seconds: lost rooms (they should never exist).
    #[serde(default)]
    pub rooms_silent_at_end: Vec<String>,
}

impl Report {
    /// Recomputes the derived fields from the raw ones.
    pub fn finish(&mut self) {
        self.schema = SCHEMA.into();
        self.join_ms = Percentiles::of_us(&self.histograms.join_us);
        self.first_frame_ms = Percentiles::of_us(&self.histograms.first_frame_us);
        self.latency_ms = Percentiles::of_us(&self.histograms.latency_us);
        self.interruption_ms = Percentiles::of_us(&self.histograms.interruption_us);
        self.loss_ratio = if self.frames_expected == 0 {
            0.0
        } else {
            1.0 - (self.frames_received as f64 / self.frames_expected as f64).min(1.0)
        };
        let datagrams = self.network.datagrams_passed + self.network.datagrams_dropped;
        self.network.loss_ratio = if datagrams == 0 {
            0.0
        } else {
            self.network.datagrams_dropped as f64 / datagrams as f64
        };
        let due = self.frames_sent + self.frames_skipped;
        self.send_ratio = if due == 0 {
            1.0
        } else {
            self.frames_sent as f64 / due as f64
        };
        self.jitter_ms = if self.jitter_streams.1 == 0 {
            0.0
        } else {
            self.jitter_streams.0 / self.jitter_streams.1 as f64
        };
    }

    /// Merges shard reports of one scenario into one report.
    pub fn merge(reports: &[Report]) -> Result<Report, String> {
        let first = reports.first().ok_or("nothing to merge")?;
        let mut out = Report {
            scenario: first.scenario.clone(),
            ..Report::default()
        };
        for r in reports {
            if r.schema != SCHEMA {
                return Err(format!("a report has schema {:?}, not {SCHEMA}", r.schema));
            }
            if r.scenario != first.scenario {
                return Err("the reports are of different scenarios".into());
            }
            out.shards.extend(r.shards.iter().copied());
            out.participants += r.participants;
            out.join_failures += r.join_failures;
            out.duration_s = out.duration_s.max(r.duration_s);
            out.frames_expected += r.frames_expected;
            out.frames_received += r.frames_received;
            out.frames_decrypted += r.frames_decrypted;
            out.decrypt_failures += r.decrypt_failures;
            out.frames_sent += r.frames_sent;
            out.frames_skipped += r.frames_skipped;
            out.nack_recoveries += r.nack_recoveries;
            out.client_packets_in_per_s += r.client_packets_in_per_s;
            out.network.datagrams_passed += r.network.datagrams_passed;
            out.network.datagrams_dropped += r.network.datagrams_dropped;
            out.jitter_streams.0 += r.jitter_streams.0;
            out.jitter_streams.1 += r.jitter_streams.1;
            out.histograms.latency_us.merge(&r.histograms.latency_us);
            out.histograms.join_us.merge(&r.histograms.join_us);
            out.histograms
                .first_frame_us
                .merge(&r.histograms.first_frame_us);
            out.histograms
                .interruption_us
                .merge(&r.histograms.interruption_us);
            out.interruptions.extend(r.interruptions.iter().cloned());
            out.rejoins += r.rejoins;
            for room in &r.rooms_silent_at_end {
                if !out.rooms_silent_at_end.contains(room) {
                    out.rooms_silent_at_end.push(room.clone());
                }
            }
            for tick in &r.timeline {
                let at = tick.t.round() as usize;
                if out.timeline.len() <= at {
                    out.timeline.resize(at + 1, Tick::default());
                }
                let o = &mut out.timeline[at];
                o.t = at as f64;
                o.connected += tick.connected;
                o.frames += tick.frames;
                // Per-second percentiles cannot be merged exactly: keep the worst.
                o.latency_p50_ms = o.latency_p50_ms.max(tick.latency_p50_ms);
                o.latency_p99_ms = o.latency_p99_ms.max(tick.latency_p99_ms);
                o.packets_out = o.packets_out.max(tick.packets_out);
            }
        }
        // Every shard is its own generator: their costs add up.
        let cores: Vec<f64> = reports
            .iter()
            .filter_map(|r| r.load_generator.cpu_cores)
            .collect();
        if cores.len() == reports.len() {
            let connected: f64 = reports
                .iter()
                .filter_map(|r| {
                    let per_core = r.load_generator.participants_per_core?;
                    Some(per_core * r.load_generator.cpu_cores?)
                })
                .sum();
            let total: f64 = cores.iter().sum();
            let steady: Option<f64> = reports
                .iter()
                .map(|r| r.load_generator.steady_cpu_cores)
                .sum();
            out.load_generator = LoadGenerator {
                cpu_cores: Some(total),
                steady_cpu_cores: steady,
                participants_per_core: (total > 0.0).then(|| connected / total),
                receive_wait_ms: None,
            };
        }
        let waits = reports
            .iter()
            .filter_map(|r| r.load_generator.receive_wait_ms.clone());
        if let Some(worst) = waits.max_by(|a, b| a.p99.total_cmp(&b.p99)) {
            out.load_generator.receive_wait_ms = Some(worst);
        }
        // Every shard sees the same SFU: its figures are not added up.
        out.sfu = reports
            .iter()
            .max_by(|a, b| a.sfu.packets_out_per_s.total_cmp(&b.sfu.packets_out_per_s))
            .map(|r| r.sfu.clone())
            .unwrap_or_default();
        out.packets_forwarded_per_s = out.sfu.packets_out_per_s;
        out.shards.sort_by_key(|s| s.index);
        // Every shard of the run exactly once: a missing one would hide
        // participants, a repeated one count them twice.
        let count = out.shards.first().map_or(1, |s| s.count);
        let indices: Vec<usize> = out.shards.iter().map(|s| s.index).collect();
        if out.shards.iter().any(|s| s.count != count) || indices != (0..count).collect::<Vec<_>>()
        {
            return Err(format!(
                "the reports must be shards 0 to {} of one run, each once; got {indices:?} of {count}",
                count.saturating_sub(1)
            ));
        }
        out.interruptions
            .sort_by(|a, b| b.longest_gap_ms.total_cmp(&a.longest_gap_ms));
        out.finish();
        Ok(out)
    }

    /// Applies the thresholds (`None` = not checked).
    pub fn judge(&mut self, max_loss: Option<f64>, max_p99_ms: Option<f64>) {
        let mut failures = Vec::new();
        if let Some(max) = max_loss
            && self.loss_ratio > max
        {
            failures.push(format!("loss {:.4} > --max-loss {max}", self.loss_ratio));
        }
        if let Some(max) = max_p99_ms
            && self.latency_ms.p99 > max
        {
            failures.push(format!(
                "p99 latency {:.1} ms > --max-p99-ms {max}",
                self.latency_ms.p99
            ));
        }
        if self.join_failures > 0 {
            failures.push(format!("{} joins failed", self.join_failures));
        }
        if let Some(wait) = &self.load_generator.receive_wait_ms
            && wait.p99 > MAX_RECEIVE_WAIT_P99_MS
        {
            failures.push(format!(
                "the load generator fell behind on receiving: 1% of datagrams waited {:.0} ms or more in its own sockets before it read them, so the latencies include its own queueing",
                wait.p99 / 2.0
            ));
        }
        if self.send_ratio < MIN_SEND_RATIO {
            failures.push(format!(
                "the load generator fell behind: it sent {:.1}% of the configured frames, so the run offered less load than it claims",
                100.0 * self.send_ratio
            ));
        }
        // A frame that does not decrypt is a broken call for someone, even
        // when it was planned (--wrong-key): report it, never pass it.
        if self.decrypt_failures > 0 {
            failures.push(format!(
                "{} frames failed to decrypt",
                self.decrypt_failures
            ));
        }
        if !self.rooms_silent_at_end.is_empty() {
            failures.push(format!(
                "{} rooms had no media at the end: {}",
                self.rooms_silent_at_end.len(),
                self.rooms_silent_at_end.join(", ")
            ));
        }
        self.verdict = Verdict {
            passed: failures.is_empty(),
            failures,
        };
    }

    /// The final table, for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("  {k:<28} {v}\n"));
        row(
            "participants",
            format!(
                "{} in {} rooms ({} join failures)",
                self.participants, self.scenario.rooms, self.join_failures
            ),
        );
        row("duration", format!("{:.1} s", self.duration_s));
        row(
            "join (p50 / p99)",
            format!("{:.0} / {:.0} ms", self.join_ms.p50, self.join_ms.p99),
        );
        row(
            "first frame (p50 / p99)",
            format!(
                "{:.0} / {:.0} ms",
                self.first_frame_ms.p50, self.first_frame_ms.p99
            ),
        );
        row(
            "latency (p50/p95/p99/max)",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms",
                self.latency_ms.p50, self.latency_ms.p95, self.latency_ms.p99, self.latency_ms.max
            ),
        );
        row("jitter", format!("{:.2} ms", self.jitter_ms));
        row(
            "loss",
            format!(
                "{:.4} ({} of {} frames)",
                self.loss_ratio,
                self.frames_expected.saturating_sub(self.frames_received),
                self.frames_expected
            ),
        );
        row(
            "frames sent / decrypted",
            format!("{} / {}", self.frames_sent, self.frames_decrypted),
        );
        row(
            "frames offered",
            format!(
                "{:.1}% of the configured rate ({} skipped)",
                100.0 * self.send_ratio,
                self.frames_skipped
            ),
        );
        row("decrypt failures", self.decrypt_failures.to_string());
        if self.network.datagrams_dropped > 0 {
            row(
                "network loss (before NACK)",
                format!("{:.4}", self.network.loss_ratio),
            );
        }
        row(
            "longest media gap (p50/p99/max)",
            format!(
                "{:.0} / {:.0} / {:.0} ms; {} interrupted (>= 250 ms), {} rejoins",
                self.interruption_ms.p50,
                self.interruption_ms.p99,
                self.interruption_ms.max,
                self.interruptions.len(),
                self.rejoins
            ),
        );
        row(
            "NACKs / recovered packets",
            format!("{:.0} / {}", self.sfu.nacks, self.nack_recoveries),
        );
        row(
            "SFU packets in / out per s",
            format!(
                "{:.0} / {:.0}",
                self.sfu.packets_in_per_s, self.sfu.packets_out_per_s
            ),
        );
        row(
            "SFU Mbit/s in / out",
            format!(
                "{:.1} / {:.1}",
                self.sfu.bytes_in_per_s * 8e-6,
                self.sfu.bytes_out_per_s * 8e-6
            ),
        );
        if let Some(t) = &self.sfu.transit_us {
            let us = |v: Option<f64>| v.map_or("> 1 s".into(), |v| format!("{:.2} ms", v / 1000.0));
            row(
                "SFU transit (p50 / p99)",
                format!("{} / {} (socket in to kernel out)", us(t.p50), us(t.p99)),
            );
        }
        let steady = |c: Option<f64>| c.map_or(String::new(), |c| format!(", {c:.2} steady"));
        row(
            "SFU CPU",
            self.sfu.cpu_cores.map_or("n/a".into(), |c| {
                format!("{c:.2} cores{}", steady(self.sfu.steady_cpu_cores))
            }),
        );
        row(
            "load generator CPU",
            match (
                self.load_generator.cpu_cores,
                self.load_generator.participants_per_core,
            ) {
                (Some(c), per_core) => format!(
                    "{c:.2} cores{}{}",
                    steady(self.load_generator.steady_cpu_cores),
                    per_core.map_or(String::new(), |p| format!(
                        " ({p:.0} participants per core)"
                    ))
                ),
                _ => "n/a".into(),
            },
        );
        if let Some(wait) = &self.load_generator.receive_wait_ms {
            row(
                "load generator receive wait",
                format!(
                    "p50 / p99 under {:.2} / {:.2} ms (datagrams queued in its own sockets)",
                    wait.p50, wait.p99
                ),
            );
        }
        row(
            "SFU memory",
            self.sfu
                .resident_bytes
                .map_or("n/a".into(), |b| format!("{:.0} MiB", b / (1 << 20) as f64)),
        );
        row(
            "verdict",
            if self.verdict.passed {
                "passed".into()
            } else {
                format!("FAILED: {}", self.verdict.failures.join("; "))
            },
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: usize, latencies: &[u64], expected: u64, received: u64) -> Report {
        let mut r = Report {
            shards: vec![Shard { index, count: 2 }],
            participants: 10,
            frames_expected: expected,
            frames_received: received,
            duration_s: 30.0 + index as f64,
            ..Report::default()
        };
        for l in latencies {
            r.histograms.latency_us.record(*l);
        }
        r.finish();
        r
    }

    #[test]
    fn merged_shards_add_up_and_recompute_percentiles() {
        let a = shard(0, &[1000; 90], 1000, 990);
        let b = shard(1, &[50_000; 10], 1000, 1000);
        let mut merged = Report::merge(&[b, a]).unwrap();
        assert_eq!(merged.participants, 20);
        assert_eq!(
            (merged.frames_expected, merged.frames_received),
            (2000, 1990)
        );
        assert!((merged.loss_ratio - 0.005).abs() < 1e-9);
        assert_eq!(merged.duration_s, 31.0);
        assert!((merged.latency_ms.p50 - 1.0).abs() < 0.03);
        assert!(
            (merged.latency_ms.p99 - 50.0).abs() < 1.1,
            "{}",
            merged.latency_ms.p99
        );
        assert_eq!(
            merged.shards.iter().map(|s| s.index).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(merged.load_generator, LoadGenerator::default());
        // Generator costs add up over shards: 1000 participants on 0.5
        // cores and 500 on 1.0 are 1500 on 1.5 cores.
        let costly = |index, cores: f64, per_core: f64| Report {
            load_generator: LoadGenerator {
                cpu_cores: Some(cores),
                steady_cpu_cores: Some(cores * 0.9),
                participants_per_core: Some(per_core),
                receive_wait_ms: None,
            },
            ..shard(index, &[], 0, 0)
        };
        let generators = Report::merge(&[costly(0, 0.5, 2000.0), costly(1, 1.0, 500.0)])
            .unwrap()
            .load_generator;
        assert_eq!(generators.cpu_cores, Some(1.5));
        assert!((generators.steady_cpu_cores.unwrap() - 1.35).abs() < 1e-9);
        assert!((generators.participants_per_core.unwrap() - 1000.0).abs() < 1e-9);
        merged.judge(Some(0.001), Some(100.0));
        assert!(!merged.verdict.passed);
        assert!(merged.verdict.failures[0].contains("loss"));

        let other = Report {
            scenario: Scenario {
                rooms: 9,
                ..Scenario::default()
            },
            ..shard(1, &[], 0, 0)
        };
        assert!(Report::merge(&[shard(0, &[], 0, 0), other]).is_err());
        // Each shard exactly once.
        let twice = Report::merge(&[shard(0, &[], 0, 0), shard(0, &[], 0, 0)]);
        assert!(twice.unwrap_err().contains("each once"));
        assert!(
            Report::merge(&[shard(1, &[], 0, 0)]).is_err(),
            "shard 0 is missing"
        );
    }

    #[test]
    fn receive_wait_percentiles_come_from_log2_buckets() {
        assert_eq!(Percentiles::of_log2_us(&[0; 32]), None);
        // 98 datagrams waited under 2 µs, one 1-2 ms, one 64-128 ms.
        let mut buckets = [0u64; 32];
        buckets[0] = 98;
        buckets[10] = 1;
        buckets[16] = 1;
        let p = Percentiles::of_log2_us(&buckets).unwrap();
        assert_eq!(p.p50, 0.002);
        assert_eq!(p.p99, 2.048);
        assert_eq!(p.max, 131.072);
        buckets[16] = 10;
        assert_eq!(Percentiles::of_log2_us(&buckets).unwrap().p99, 131.072);
    }

    #[test]
    fn a_generator_that_queued_datagrams_fails_and_merges_as_its_worst_shard() {
        let waited = |index, p99: f64| Report {
            load_generator: LoadGenerator {
                receive_wait_ms: Some(Percentiles {
                    p50: 0.1,
                    p95: 1.0,
                    p99,
                    max: p99,
                }),
                ..LoadGenerator::default()
            },
            send_ratio: 1.0,
            ..shard(index, &[], 0, 0)
        };
        let mut healthy = waited(0, 4.096);
        healthy.judge(None, None);
        assert!(healthy.verdict.passed, "{:?}", healthy.verdict.failures);
        let mut merged = Report::merge(&[healthy, waited(1, 1048.576)]).unwrap();
        assert_eq!(
            merged.load_generator.receive_wait_ms.as_ref().unwrap().p99,
            1048.576
        );
        merged.send_ratio = 1.0;
        merged.judge(None, None);
        assert!(!merged.verdict.passed);
        assert!(
            merged.verdict.failures[0]
                .contains("fell behind on receiving: 1% of datagrams waited 524 ms"),
            "{:?}",
            merged.verdict.failures
        );
    }
}
