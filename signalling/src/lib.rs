//! Veil's signalling service.
//!
//! * [`auth`]: JWT access tokens (HS256, `kid` = API key) naming a
//!   participant, a room and what they may do.
//!
//! The server (rooms, WebSocket protocol, WHIP/WHEP, Redis registry) builds
//! on this in the following increments of issue 3.

pub mod auth;
