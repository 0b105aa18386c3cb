//! Parsers for the few bytes a blind SFU is allowed to read.
//!
//! Everything here is pure, allocation-free and total: any byte slice gives
//! either a value or a typed error, never a panic. The SFU never sees media
//! plaintext; these parsers only look at what the sender deliberately leaves in
//! the clear (RFC 9605 §9, draft-ietf-avtcore-rtp-sframe).

pub mod dependency_descriptor;
pub mod sframe_header;
pub mod stun;
pub mod vp8;
