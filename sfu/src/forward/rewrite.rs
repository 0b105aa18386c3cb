//! Per-subscriber rewriting of RTP sequence numbers and timestamps.
//!
//! A subscriber sees one continuous stream per remote track, although the SFU
//! switches underneath it between simulcast layers (each with its own SSRC,
//! sequence space and timestamp base). [`StreamRewriter`] keeps the output
//! continuous: at each switch it re-anchors the input onto the next output
//! sequence number and a timestamp advanced by the wall-clock time elapsed.

use std::time::Instant;

/// Output sequence number (extended, 64-bit) and RTP timestamp of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Extended output sequence number; its low 16 bits go on the wire.
    pub seq: u64,
    /// Output RTP timestamp.
    pub timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    seq_delta: u64,
    ts_delta: u32,
    first_in_seq: u64,
}

/// Keeps one outgoing stream continuous across source switches.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use sfu::forward::rewrite::StreamRewriter;
/// let t0 = Instant::now();
/// let mut r = StreamRewriter::new(90_000);
/// let a = r.rewrite(1000, 50_000, t0).unwrap();
/// let b = r.rewrite(1001, 53_000, t0).unwrap();
/// assert_eq!(b.seq, a.seq + 1);
/// // Switch to another layer with unrelated numbering, 40 ms later.
/// r.switch_source();
/// let c = r.rewrite(77, 9_000, t0 + Duration::from_millis(40)).unwrap();
/// assert_eq!(c.seq, b.seq + 1);
/// assert_eq!(c.timestamp, b.timestamp + 3_600);
/// ```
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    clock_rate: u32,
    anchor: Option<Anchor>,
    resync: bool,
    last_seq: u64,
    last_timestamp: u32,
    last_at: Option<Instant>,
}

impl StreamRewriter {
    /// A rewriter for a stream with the given RTP clock rate (Hz).
    pub fn new(clock_rate: u32) -> Self {
        StreamRewriter {
            clock_rate: clock_rate.max(1),
            anchor: None,
            resync: true,
            last_seq: 0,
            last_timestamp: 0,
            last_at: None,
        }
    }

    /// The next packet comes from a different source (layer or publisher).
    pub fn switch_source(&mut self) {
        self.resync = true;
    }

    /// Highest output sequence number sent so far.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Maps an input packet (extended sequence number, RTP timestamp) to its
    /// output numbers; `None` means drop it (it predates the current source).
    pub fn rewrite(&mut self, in_seq: u64, in_ts: u32, now: Instant) -> Option<Rewritten> {
        if self.resync || self.anchor.is_none() {
            let (out_seq, out_ts) = match self.last_at {
                // First packet ever: keep the sender's numbers (ROC 0 on the wire).
                None => (in_seq & 0xffff, in_ts),
                Some(at) => {
                    let elapsed = now.saturating_duration_since(at);
                    let ticks = (elapsed.as_micros() * self.clock_rate as u128 / 1_000_000) as u32;
                    (
                        self.last_seq + 1,
                        self.last_timestamp.wrapping_add(ticks.max(1)),
                    )
                }
            };
            self.anchor = Some(Anchor {
                seq_delta: out_seq.wrapping_sub(in_seq),
                ts_delta: out_ts.wrapping_sub(in_ts),
                first_in_seq: in_seq,
            });
            self.resync = false;
            self.last_seq = out_seq;
            self.last_timestamp = out_ts;
            self.last_at = Some(now);
            return Some(Rewritten {
                seq: out_seq,
                timestamp: out_ts,
            });
        }
        let anchor = self.anchor?;
        if in_seq < anchor.first_in_seq {
            return None;
        }
        let seq = in_seq.wrapping_add(anchor.seq_delta);
        let timestamp = in_ts.wrapping_add(anchor.ts_delta);
        if seq > self.last_seq {
            self.last_seq = seq;
            self.last_timestamp = timestamp;
            self.last_at = Some(now);
        }
        Some(Rewritten { seq, timestamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn gaps_and_reordering_within_a_source_pass_through() {
        let t = Instant::now();
        let mut r = StreamRewriter::new(48_000);
        let a = r.rewrite(10, 100, t).unwrap();
        // 11 lost, 12 arrives, then 11 is recovered late (NACK/RTX).
        let c = r.rewrite(12, 1060, t).unwrap();
        let b = r.rewrite(11, 580, t).unwrap();
        assert_eq!((b.seq, c.seq), (a.seq + 1, a.seq + 2));
        assert_eq!(
            r.last_seq(),
            c.seq,
            "late packet does not move the head back"
        );
    }

    #[test]
    fn packets_older_than_a_switch_are_dropped() {
        let t = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        r.rewrite(500, 0, t).unwrap();
        r.switch_source();
        let first = r.rewrite(2000, 0, t + Duration::from_millis(33)).unwrap();
        assert_eq!(first.seq, 501);
        assert_eq!(r.rewrite(1999, 0, t), None, "old packet of the new source");
    }

    #[test]
    fn output_never_repeats_across_many_switches() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        let mut seen = std::collections::HashSet::new();
        let mut in_seq = [100u64, 40_000, 65_500];
        for i in 0..3000u64 {
            let layer = ((i / 97) % 3) as usize;
            if i % 97 == 0 {
                r.switch_source();
            }
            in_seq[layer] += 1;
            let now = t0 + Duration::from_millis(i * 10);
            let out = r.rewrite(in_seq[layer], (i * 900) as u32, now).unwrap();
            assert!(seen.insert(out.seq), "duplicate output seq {}", out.seq);
        }
        assert_eq!(seen.len(), 3000);
        assert_eq!(r.last_seq() - *seen.iter().min().unwrap(), 2999, "no gaps");
    }

    #[test]
    fn timestamps_wrap_without_panicking() {
        let t = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        let a = r.rewrite(1, u32::MAX - 10, t).unwrap();
        let b = r.rewrite(2, 20, t).unwrap();
        assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 31);
    }
}
