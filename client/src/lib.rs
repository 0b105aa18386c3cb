//! Veil's Rust client: a WebRTC participant that encrypts with SFrame.
//!
//! Tests, bots and the load tester all use it. It speaks to the SFU over real
//! UDP with str0m, encrypts every frame it publishes with its own SFrame key
//! (RFC 9605) and decrypts and verifies every frame it receives.
//!
//! * [`keys`]: passphrase → room secret → per-sender SFrame keys.
//! * [`frame`]: self-describing synthetic frames.
//! * [`depacketize`]: frame reassembly from RTP.
//! * [`session`]: the participant itself ([`Client`]).
//! * [`impair`]: a seeded lossy UDP proxy for tests and load runs.
//! * [`pool`]: many sessions driven by a few threads ([`SessionPool`]), on
//!   loopback optionally sharing one socket per thread.

pub mod depacketize;
pub mod frame;
pub mod impair;
pub mod keys;
pub mod pool;
pub mod session;
mod shared_socket;
mod tcp;

pub use keys::RoomSecret;
pub use pool::SessionPool;
pub use session::{
    Client, ClientConfig, ClientStats, FrameSample, FromServer, PendingClient, RemoteSamples,
    ToServer, Transport, VideoConfig,
};
