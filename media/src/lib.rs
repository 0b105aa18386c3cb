//! What Veil's SFU and clients share about RTP.
//!
//! * [`packet`]: parsers for the bytes a blind SFU may read (STUN username,
//!   SFrame header, VP8 payload descriptor, Dependency Descriptor).
//! * [`extensions`]: the RTP header extensions Veil negotiates beyond str0m's
//!   defaults, and the `RtcConfig` both sides build from.

pub mod extensions;
pub mod packet;
