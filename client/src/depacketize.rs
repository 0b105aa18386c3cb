//! Reassembles encrypted frames from RTP packets.
//!
//! Veil's video packetization: each RTP payload is a one-byte VP8 payload
//! descriptor (`S` set on the first packet of a frame) followed by a slice of
//! the SFrame ciphertext; the marker bit ends a frame. Audio frames fit one
//! packet with no descriptor. Packets may arrive out of order or late (NACK
//! and RTX), so the buffer assembles a frame once its marker packet and every
//! packet back to its start are present.

use std::collections::{BTreeMap, BTreeSet};

/// Frames whose packets are older than this many sequence numbers behind the
/// newest are given up.
const HORIZON: u64 = 512;

#[derive(Debug)]
struct Packet {
    start: bool,
    end: bool,
    timestamp: u32,
    data: Vec<u8>,
}

/// Per-track reassembly buffer.
///
/// A frame is handed out as soon as it is complete, even if an older frame is
/// still waiting for a retransmission: the older one may still complete when
/// its RTX arrives. Packets further than [`HORIZON`] behind the newest are
/// given up.
#[derive(Debug, Default)]
pub struct Depacketizer {
    packets: BTreeMap<u64, Packet>,
    /// Sequence numbers already assembled into frames (duplicate filter).
    done: BTreeSet<u64>,
    newest: Option<u64>,
    /// Frames given up because packets never came.
    pub frames_lost: u64,
    /// Packets that arrived after a newer one: retransmissions answering
    /// NACKs (or reordering, on a link that reorders).
    pub late_packets: u64,
}

impl Depacketizer {
    /// Adds one packet (extended sequence number, timestamp, whether it
    /// starts and ends a frame, payload after any descriptor). Returns the
    /// frame this packet completes, if any.
    pub fn push(
        &mut self,
        seq: u64,
        timestamp: u32,
        start: bool,
        end: bool,
        data: &[u8],
    ) -> Vec<Vec<u8>> {
        let too_old = self.newest.is_some_and(|n| seq + HORIZON < n);
        if too_old || self.done.contains(&seq) || self.packets.contains_key(&seq) {
            return Vec::new();
        }
        if self.newest.is_some_and(|n| seq < n) {
            self.late_packets += 1;
        }
        self.newest = Some(self.newest.map_or(seq, |n| n.max(seq)));
        let frame = if start && end {
            // A whole frame in one packet (every audio frame): nothing to
            // wait for, nothing to store.
            self.done.insert(seq);
            Some(data.to_vec())
        } else {
            self.packets.insert(
                seq,
                Packet {
                    start,
                    end,
                    timestamp,
                    data: data.to_vec(),
                },
            );
            self.try_assemble(seq, timestamp)
        };
        self.expire();
        frame.into_iter().collect()
    }

    /// Assembles the frame the packet `seq` belongs to, if it is now
    /// complete: a new packet can complete only its own frame.
    fn try_assemble(&mut self, seq: u64, timestamp: u32) -> Option<Vec<u8>> {
        let same_frame = |p: &Packet| p.timestamp == timestamp;
        let mut end = seq;
        while !self.packets.get(&end).filter(|p| same_frame(p))?.end {
            end += 1;
        }
        let mut start = seq;
        while !self.packets.get(&start).filter(|p| same_frame(p))?.start {
            start = start.checked_sub(1)?;
        }
        let mut frame = Vec::new();
        for s in start..=end {
            if let Some(p) = self.packets.remove(&s) {
                frame.extend_from_slice(&p.data);
            }
            self.done.insert(s);
        }
        Some(frame)
    }

    fn expire(&mut self) {
        let Some(limit) = self.newest.map(|n| n.saturating_sub(HORIZON)) else {
            return;
        };
        // Runs for every packet, so the common case (nothing behind the
        // horizon) costs two lookups and no allocation.
        if self
            .packets
            .first_key_value()
            .is_some_and(|(s, _)| *s < limit)
        {
            let stale: Vec<u64> = self.packets.range(..limit).map(|(s, _)| *s).collect();
            let mut lost_timestamps = BTreeSet::new();
            for s in stale {
                if let Some(p) = self.packets.remove(&s) {
                    lost_timestamps.insert(p.timestamp);
                }
            }
            self.frames_lost += lost_timestamps.len() as u64;
        }
        while self.done.first().is_some_and(|s| *s < limit) {
            self.done.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_packet_frames_pass_straight_through_and_memory_stays_bounded() {
        let mut d = Depacketizer::default();
        for seq in 0..10_000u64 {
            assert_eq!(
                d.push(seq, seq as u32, true, true, b"a"),
                vec![b"a".to_vec()]
            );
        }
        assert!(
            d.push(9_990, 9_990, true, true, b"a").is_empty(),
            "duplicate"
        );
        assert!(d.done.len() <= HORIZON as usize + 1, "{}", d.done.len());
        assert!(d.packets.is_empty());
        assert_eq!((d.frames_lost, d.late_packets), (0, 0));
    }

    #[test]
    fn assembles_in_order_and_out_of_order() {
        let mut d = Depacketizer::default();
        assert!(d.push(10, 1, true, false, b"ab").is_empty());
        assert!(d.push(12, 1, false, true, b"ef").is_empty(), "11 missing");
        assert_eq!(d.push(11, 1, false, false, b"cd"), vec![b"abcdef".to_vec()]);
        assert_eq!(d.push(13, 2, true, true, b"x"), vec![b"x".to_vec()]);
        assert!(
            d.push(11, 1, false, false, b"cd").is_empty(),
            "duplicate after assembly"
        );
    }

    #[test]
    fn a_newer_frame_does_not_wait_for_an_older_one_that_may_still_complete() {
        let mut d = Depacketizer::default();
        d.push(1, 1, true, false, b"a"); // packet 2 of frame 1 is late
        assert_eq!(d.push(3, 2, true, true, b"b"), vec![b"b".to_vec()]);
        assert_eq!(
            d.push(2, 1, false, true, b"c"),
            vec![b"ac".to_vec()],
            "RTX completes it"
        );
        assert!(
            d.push(3, 2, true, true, b"b").is_empty(),
            "duplicate filtered"
        );
    }

    #[test]
    fn frames_missing_beyond_the_horizon_are_counted_lost() {
        let mut d = Depacketizer::default();
        d.push(1, 1, true, false, b"a");
        d.push(1 + HORIZON + 1, 9, true, true, b"z");
        assert_eq!(d.frames_lost, 1);
        assert!(d.push(2, 1, false, true, b"late").is_empty());
    }
}
