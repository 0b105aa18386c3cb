//! The VP8 RTP payload descriptor (RFC 7741 §4.2) and the keyframe bit.
//!
//! The descriptor is written by the RTP packetizer after the frame has been
//! encrypted, so it is always in the clear. The keyframe bit lives in the
//! first byte of the VP8 payload header, which the sender leaves in the clear
//! only in the "clear prefix" frame layout (see `docs/e2ee.md`). With full
//! frame encryption the Dependency Descriptor is the source of truth instead.

/// What a blind SFU learns from a VP8 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// First packet of a frame (`S=1` and partition 0).
    pub start_of_frame: bool,
    /// Keyframe, read from the clear VP8 payload header of the first packet.
    pub keyframe: bool,
    /// Temporal layer id, when the sender signals one.
    pub temporal_id: Option<u8>,
    /// Bytes of payload descriptor before the VP8 payload.
    pub len: usize,
}

/// Why a payload is not a VP8 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Vp8Error {
    /// The payload ends inside the descriptor.
    #[error("truncated VP8 payload descriptor")]
    Truncated,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of an RTP payload.
    ///
    /// ```
    /// # use veil_media::packet::vp8::Vp8Descriptor;
    /// // S=1, PID=0, then a VP8 payload header whose P bit (bit 0) is 0: a keyframe.
    /// let d = Vp8Descriptor::parse(&[0x10, 0x50, 0x01, 0x00]).unwrap();
    /// assert!(d.start_of_frame && d.keyframe);
    /// ```
    pub fn parse(payload: &[u8]) -> Result<Self, Vp8Error> {
        let first = *payload.first().ok_or(Vp8Error::Truncated)?;
        let extended = first & 0x80 != 0;
        let start = first & 0x10 != 0 && first & 0x07 == 0;
        let mut at = 1;
        let mut temporal_id = None;
        if extended {
            let x = *payload.get(at).ok_or(Vp8Error::Truncated)?;
            at += 1;
            let (has_picture_id, has_tl0, has_tid, has_keyidx) =
                (x & 0x80 != 0, x & 0x40 != 0, x & 0x20 != 0, x & 0x10 != 0);
            if has_picture_id {
                let m = *payload.get(at).ok_or(Vp8Error::Truncated)?;
                at += if m & 0x80 != 0 { 2 } else { 1 };
            }
            if has_tl0 {
                at += 1;
            }
            if has_tid || has_keyidx {
                let t = *payload.get(at).ok_or(Vp8Error::Truncated)?;
                if has_tid {
                    temporal_id = Some(t >> 6);
                }
                at += 1;
            }
        }
        if at > payload.len() {
            return Err(Vp8Error::Truncated);
        }
        let keyframe = start && payload.get(at).is_some_and(|b| b & 0x01 == 0);
        Ok(Vp8Descriptor {
            start_of_frame: start,
            keyframe,
            temporal_id,
            len: at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_extended_descriptor_with_15_bit_picture_id() {
        // X=1 S=1; I=1 L=1 T=1; PictureID 0x8123 (M=1); TL0PICIDX; TID=2.
        let p = [0x90, 0xE0, 0x81, 0x23, 0x05, 0x80, 0x01];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(d.len, 6);
        assert_eq!(d.temporal_id, Some(2));
        assert!(d.start_of_frame);
        assert!(!d.keyframe, "P bit set means interframe");
    }

    #[test]
    fn continuation_packets_are_never_keyframes() {
        let d = Vp8Descriptor::parse(&[0x00, 0x00]).unwrap();
        assert!(!d.start_of_frame && !d.keyframe);
    }

    #[test]
    fn truncated_descriptors_are_errors_not_panics() {
        let full = [0x90, 0xF0, 0x81, 0x23, 0x05, 0x80, 0x01];
        for cut in 0..6 {
            assert_eq!(Vp8Descriptor::parse(&full[..cut]), Err(Vp8Error::Truncated));
        }
    }
}
