//! Reassembles encrypted frames from RTP packets.
//!
//! Veil's video packetization: each RTP payload is a one-byte VP8 payload
//! descriptor (`S` set on the first packet of a frame) followed by a slice of
//! the SFrame ciphertext; the marker bit ends a frame. Audio frames fit one
//! packet with no descriptor. Packets may arrive out of order or late (NACK
//! and RTX), so the buffer assembles a frame once its marker packet and every
//! packet back to its start are present.

use std::collections::BTreeMap;

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
#[derive(Debug, Default)]
pub struct Depacketizer {
    packets: BTreeMap<u64, Packet>,
    /// Sequence numbers at or below this have been assembled or abandoned.
    floor: Option<u64>,
    /// Frames given up because packets never came.
    pub frames_lost: u64,
}

impl Depacketizer {
    /// Adds one packet (extended sequence number, timestamp, marker, payload
    /// after any descriptor, and whether it starts a frame). Returns every
    /// frame this packet completes, oldest first.
    pub fn push(
        &mut self,
        seq: u64,
        timestamp: u32,
        start: bool,
        end: bool,
        data: &[u8],
    ) -> Vec<Vec<u8>> {
        if self.floor.is_some_and(|f| seq <= f) || self.packets.contains_key(&seq) {
            return Vec::new();
        }
        self.packets.insert(
            seq,
            Packet {
                start,
                end,
                timestamp,
                data: data.to_vec(),
            },
        );
        let mut frames = Vec::new();
        while let Some(frame) = self.try_assemble() {
            frames.push(frame);
        }
        self.expire(seq);
        frames
    }

    fn try_assemble(&mut self) -> Option<Vec<u8>> {
        // Find the oldest end packet whose run back to a start is complete.
        let ends: Vec<u64> = self
            .packets
            .iter()
            .filter(|(_, p)| p.end)
            .map(|(s, _)| *s)
            .collect();
        for end in ends {
            let ts = self.packets[&end].timestamp;
            let mut seq = end;
            loop {
                let p = self.packets.get(&seq)?;
                if p.timestamp != ts {
                    break;
                }
                if p.start {
                    let mut frame = Vec::new();
                    for s in seq..=end {
                        if let Some(p) = self.packets.remove(&s) {
                            frame.extend_from_slice(&p.data);
                        }
                    }
                    self.drop_below(seq);
                    self.floor = Some(end);
                    return Some(frame);
                }
                if seq == 0 || !self.packets.contains_key(&(seq - 1)) {
                    break;
                }
                seq -= 1;
            }
        }
        None
    }

    fn drop_below(&mut self, seq: u64) {
        let stale: Vec<u64> = self.packets.range(..seq).map(|(s, _)| *s).collect();
        if !stale.is_empty() {
            self.frames_lost += 1;
        }
        for s in stale {
            self.packets.remove(&s);
        }
    }

    fn expire(&mut self, newest: u64) {
        let limit = newest.saturating_sub(HORIZON);
        if self.packets.keys().next().is_some_and(|s| *s < limit) {
            self.drop_below(limit);
            self.floor = Some(self.floor.map_or(limit, |f| f.max(limit)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_frame_missing_forever_does_not_block_later_frames() {
        let mut d = Depacketizer::default();
        d.push(1, 1, true, false, b"a"); // packet 2 of frame 1 never comes
        assert_eq!(d.push(3, 2, true, true, b"b"), vec![b"b".to_vec()]);
        assert_eq!(d.frames_lost, 1);
        assert!(d.push(2, 1, false, true, b"late").is_empty());
    }
}
