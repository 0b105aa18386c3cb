//! Synthetic media frames that can be checked end to end.
//!
//! Bots and the load tester have no camera, so they send frames whose
//! plaintext describes itself: a magic, the sender's frame sequence, the send
//! time, the simulcast layer and whether it is a keyframe, padded to the
//! configured size. After decryption the receiver can tell exactly which
//! frame arrived, how late, and on which layer.

/// Bytes of the self-describing frame header.
pub const HEADER_LEN: usize = 24;
const MAGIC: &[u8; 4] = b"VEIL";

/// What a synthetic frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Per-track frame sequence at the sender.
    pub sequence: u32,
    /// Sender's clock when encrypted, in microseconds since its start.
    pub sent_at_us: u64,
    /// Simulcast layer (0 for audio and single-layer video).
    pub layer: u8,
    /// Keyframe flag.
    pub keyframe: bool,
}

impl FrameInfo {
    /// Builds a frame of `size` bytes (at least [`HEADER_LEN`]).
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let mut f = Vec::with_capacity(size.max(HEADER_LEN));
        f.extend_from_slice(MAGIC);
        f.extend_from_slice(&self.sequence.to_be_bytes());
        f.extend_from_slice(&self.sent_at_us.to_be_bytes());
        f.push(self.layer);
        f.push(self.keyframe as u8);
        f.extend_from_slice(&[0; 6]);
        // Deterministic filler so a corrupted byte anywhere fails `decode`.
        let fill = self.sequence as u8 ^ self.layer;
        f.resize(size.max(HEADER_LEN), fill);
        f
    }

    /// Reads and fully checks a decrypted frame.
    pub fn decode(frame: &[u8]) -> Option<FrameInfo> {
        if frame.len() < HEADER_LEN || &frame[..4] != MAGIC {
            return None;
        }
        let info = FrameInfo {
            sequence: u32::from_be_bytes(frame[4..8].try_into().ok()?),
            sent_at_us: u64::from_be_bytes(frame[8..16].try_into().ok()?),
            layer: frame[16],
            keyframe: frame[17] == 1,
        };
        let fill = info.sequence as u8 ^ info.layer;
        frame[HEADER_LEN..]
            .iter()
            .all(|b| *b == fill)
            .then_some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_corruption() {
        let info = FrameInfo {
            sequence: 77,
            sent_at_us: 123_456,
            layer: 2,
            keyframe: true,
        };
        let mut f = info.encode(1000);
        assert_eq!(f.len(), 1000);
        assert_eq!(FrameInfo::decode(&f), Some(info));
        f[500] ^= 1;
        assert_eq!(FrameInfo::decode(&f), None);
        assert_eq!(FrameInfo::decode(b"VEIL"), None);
    }
}
