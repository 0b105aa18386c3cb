//! Reassembles encrypted frames from RTP packets.
//!
//! Veil's video packetization: each RTP payload is a one-byte VP8 payload
//! descriptor (`S` set on the first packet of a frame) followed by a slice of
//! the SFrame ciphertext; the marker bit ends a frame. Audio frames fit one
//! packet with no descriptor. Packets may arrive out of order or late (NACK
//! and RTX), so the buffer assembles a frame once its marker packet and every
//! packet back to its start are present.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// Frames whose packets are this many sequence numbers or more behind the
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
    /// Sequence numbers already assembled into frames (duplicate filter),
    /// in a window that ends at the newest number seen.
    done: SeenWindow,
    /// Frames given up because packets never came.
    pub frames_lost: u64,
    /// Packets that arrived after a newer one: retransmissions answering
    /// NACKs (or reordering, on a link that reorders).
    pub late_packets: u64,
}

impl Depacketizer {
    /// Adds one packet (extended sequence number, timestamp, whether it
    /// starts and ends a frame, payload after any descriptor). Returns the
    /// frame this packet completes, if any: a packet can complete only its
    /// own frame. A frame of one packet (every audio frame) is the packet's
    /// own payload, borrowed, not copied.
    pub fn push<'a>(
        &mut self,
        seq: u64,
        timestamp: u32,
        start: bool,
        end: bool,
        data: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        let newest = self.done.newest;
        let too_old = newest.is_some_and(|n| seq + HORIZON <= n);
        if too_old || self.done.contains(seq) || self.packets.contains_key(&seq) {
            return None;
        }
        if newest.is_some_and(|n| seq < n) {
            self.late_packets += 1;
        }
        self.done.advance(seq);
        let frame = if start && end {
            // A whole frame in one packet: nothing to wait for, nothing to
            // store.
            self.done.insert(seq);
            Some(Cow::Borrowed(data))
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
            self.try_assemble(seq, timestamp).map(Cow::Owned)
        };
        self.expire();
        frame
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
        let Some(limit) = self.done.newest.map(|n| n.saturating_sub(HORIZON)) else {
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
    }
}

/// Which of the last [`HORIZON`] sequence numbers were seen: one bit each in
/// a ring, so the duplicate check on every packet is a shift and a mask, and
/// sliding the window clears bits instead of allocating. Numbers older than
/// the window are never asked about ([`Depacketizer::push`] drops them as
/// too old first).
#[derive(Debug, Default)]
struct SeenWindow {
    bits: [u64; (HORIZON / 64) as usize],
    /// The newest number seen; the window spans `newest - HORIZON + 1` to
    /// `newest`.
    newest: Option<u64>,
}

impl SeenWindow {
    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % HORIZON;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn contains(&self, seq: u64) -> bool {
        match self.newest {
            Some(n) if seq <= n && n - seq < HORIZON => {
                let (word, bit) = Self::slot(seq);
                self.bits[word] & bit != 0
            }
            _ => false,
        }
    }

    /// Moves the window forward to cover `seq`, forgetting what falls out.
    fn advance(&mut self, seq: u64) {
        let from = match self.newest {
            Some(n) if seq <= n => return,
            Some(n) if seq - n < HORIZON => n + 1,
            _ => {
                self.bits = Default::default();
                self.newest = Some(seq);
                return;
            }
        };
        for s in from..=seq {
            let (word, bit) = Self::slot(s);
            self.bits[word] &= !bit;
        }
        self.newest = Some(seq);
    }

    /// Marks `seq` seen; it must be inside the window (call `advance` first).
    fn insert(&mut self, seq: u64) {
        if self.newest.is_some_and(|n| seq <= n && n - seq < HORIZON) {
            let (word, bit) = Self::slot(seq);
            self.bits[word] |= bit;
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
            let frame = d.push(seq, seq as u32, true, true, b"a");
            assert!(matches!(frame, Some(Cow::Borrowed(b"a"))), "{frame:?}");
        }
        assert!(
            d.push(9_990, 9_990, true, true, b"a").is_none(),
            "duplicate"
        );
        assert!(
            d.push(9_999 - HORIZON + 1, 0, true, true, b"a").is_none(),
            "the oldest number in the window is still remembered"
        );
        assert!(d.packets.is_empty());
        assert_eq!((d.frames_lost, d.late_packets), (0, 0));
    }

    #[test]
    fn assembles_in_order_and_out_of_order() {
        let mut d = Depacketizer::default();
        assert!(d.push(10, 1, true, false, b"ab").is_none());
        assert!(d.push(12, 1, false, true, b"ef").is_none(), "11 missing");
        assert_eq!(frame(d.push(11, 1, false, false, b"cd")), b"abcdef");
        assert_eq!(frame(d.push(13, 2, true, true, b"x")), b"x");
        assert!(
            d.push(11, 1, false, false, b"cd").is_none(),
            "duplicate after assembly"
        );
    }

    #[test]
    fn a_newer_frame_does_not_wait_for_an_older_one_that_may_still_complete() {
        let mut d = Depacketizer::default();
        d.push(1, 1, true, false, b"a"); // packet 2 of frame 1 is late
        assert_eq!(frame(d.push(3, 2, true, true, b"b")), b"b");
        assert_eq!(
            frame(d.push(2, 1, false, true, b"c")),
            b"ac",
            "RTX completes it"
        );
        assert!(
            d.push(3, 2, true, true, b"b").is_none(),
            "duplicate filtered"
        );
    }

    #[test]
    fn frames_missing_beyond_the_horizon_are_counted_lost() {
        let mut d = Depacketizer::default();
        d.push(1, 1, true, false, b"a");
        d.push(1 + HORIZON + 1, 9, true, true, b"z");
        assert_eq!(d.frames_lost, 1);
        assert!(d.push(2, 1, false, true, b"late").is_none());
    }

    #[test]
    fn the_duplicate_window_slides_and_jumps() {
        let mut d = Depacketizer::default();
        assert!(d.push(5, 5, true, true, b"a").is_some());
        assert!(d.push(5, 5, true, true, b"a").is_none(), "duplicate");
        // 5 + HORIZON takes 5's place in the ring: it is new all the same.
        assert!(d.push(5 + HORIZON, 6, true, true, b"b").is_some());
        assert!(d.push(5 + HORIZON, 6, true, true, b"b").is_none());
        assert!(d.push(5, 5, true, true, b"a").is_none(), "now too old");
        // A jump further than the window forgets everything before it.
        let far = 5 + 4 * HORIZON + 7;
        assert!(d.push(far, 9, true, true, b"c").is_some());
        // Numbers inside the window that were never seen pass, once.
        assert!(d.push(far - 1, 8, true, true, b"d").is_some());
        assert!(d.push(far - 1, 8, true, true, b"d").is_none());
        assert!(
            d.push(far - HORIZON + 1, 7, true, true, b"e").is_some(),
            "the oldest number in the window"
        );
        assert!(
            d.push(far - HORIZON + 1, 7, true, true, b"e").is_none(),
            "remembered"
        );
        assert!(
            d.push(far - HORIZON, 7, true, true, b"f").is_none(),
            "just outside the window: too old"
        );
    }

    fn frame(f: Option<Cow<'_, [u8]>>) -> Vec<u8> {
        f.expect("a frame").into_owned()
    }
}
