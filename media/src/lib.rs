//! What Veil's SFU and clients share about RTP.
//!
//! * [`packet`]: parsers for the bytes a blind SFU may read (STUN username,
//!   SFrame header, VP8 payload descriptor, Dependency Descriptor).
//! * [`extensions`]: the RTP header extensions Veil negotiates beyond str0m's
//!   defaults, and the `RtcConfig` both sides build from.

pub mod extensions;
pub mod packet;

/// What an identity or track name becomes inside an SDP `msid` (RFC 8830:
/// at most 64 token characters). str0m applies exactly this filter, so a
/// receiver can match an `msid` back to a participant it knows by name.
///
/// ```
/// assert_eq!(veil_media::msid_token("carol@example.org"), "carolexample.org");
/// ```
pub fn msid_token(name: &str) -> String {
    fn is_token_char(c: &char) -> bool {
        let u = *c as u32;
        u == 0x21
            || (0x23..=0x27).contains(&u)
            || (0x2a..=0x2b).contains(&u)
            || (0x2d..=0x2e).contains(&u)
            || (0x30..=0x39).contains(&u)
            || (0x41..=0x5a).contains(&u)
            || (0x5e..0x7e).contains(&u)
    }
    name.chars().filter(is_token_char).take(64).collect()
}
