//! The SFU's forwarding decisions: pure state machines with time passed in.
//!
//! Nothing here touches a socket, a clock or a WebRTC stack, so each piece is
//! tested alone and benchmarked without noise. The worker feeds them packet
//! metadata (sequence numbers, timestamps, layer ids, keyframe flags, audio
//! levels) and applies their answers.

pub mod layer;
pub mod quality;
pub mod rewrite;
pub mod speaker;
