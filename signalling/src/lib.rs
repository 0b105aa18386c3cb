//! Veil's signalling service.
//!
//! * [`auth`]: JWT access tokens (HS256, `kid` = API key) naming a
//!   participant, a room and what they may do.
//! * [`protocol`]: the client WebSocket protocol (JSON, versioned).
//! * [`server`]: the axum server: `/ws`, `/healthz`, `/readyz`, `/metrics`.
//! * [`api`]: the REST API for admins and open-room token issuance.
//!
//! Still to come in issue 3: room creation and the OpenAPI document, WHIP/WHEP, resume after a dropped
//! socket, the Redis registry and multi-replica fan-out.

pub mod api;
pub mod auth;
pub mod protocol;
pub mod server;
