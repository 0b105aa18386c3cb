//! Veil's signalling service.
//!
//! * [`auth`]: JWT access tokens (HS256, `kid` = API key) naming a
//!   participant, a room and what they may do.
//! * [`protocol`]: the client WebSocket protocol (JSON, versioned).
//! * [`server`]: the axum server: `/ws`, `/healthz`, `/readyz`, `/metrics`.
//! * [`listener`]: serves it over TCP with a header deadline and a per-IP
//!   connection cap (slow-loris and connection floods).
//! * [`api`]: the REST API for admins and open-room token issuance.
//! * [`nodes`]: which SFU node serves a room: one in-process node, or the
//!   registry's choice among separate SFU processes.
//! * [`registry`]: which SFU node hosts which room, in memory or in Redis.
//! * [`shared`]: what replicas share (presence, relays, resume secrets),
//!   in memory or through Redis pub/sub.
//! * [`web`]: the browser client, compiled in and served at `/` and `/r/{room}`.
//! * [`whip`]: WHIP ingest and WHEP playback for standard tools.
//! * [`client`]: a Rust participant speaking this protocol that resumes and
//!   rejoins by itself, for tests and the load tester.

pub mod api;
pub mod auth;
pub mod client;
pub mod listener;
pub mod nodes;
pub mod protocol;
/// Re-exported: the room/node registry shared with SFU nodes.
pub use veil_registry as registry;
pub mod server;
pub mod shared;
pub mod web;
pub mod whip;
