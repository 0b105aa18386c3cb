//! Veil's blind selective forwarding unit.
//!
//! The SFU routes SFrame-encrypted RTP between the participants of a room
//! without holding a key. It decides from what is in the clear only: RTP
//! headers, header extensions (audio level, Dependency Descriptor, TWCC,
//! mid/rid) and codec descriptors the sender leaves readable.
//!
//! * [`forward`]: pure decision logic (sequence rewriting, simulcast layer
//!   choice, active speakers), time passed in.
//! * [`node`]: the running node, a control handle ([`Sfu`]) and a media
//!   worker that drives str0m over one UDP socket.
//! * [`control`]: [`control::SfuNode`], the same calls on a local node or on
//!   another process through its internal HTTP/WebSocket API.
//! * [`config`]: the node's settings, [`SfuConfig`].
//! * [`announce`]: the node in the room registry: heartbeats, and rooms
//!   moved or released when the registry and the node disagree.
//! * [`telemetry`]: histogram buckets for the node's latency metrics, and
//!   quantiles over a window read back from them.

pub mod announce;
pub mod config;
pub mod control;
pub mod forward;
pub mod node;
pub mod process;
pub mod telemetry;

pub use config::SfuConfig;
pub use control::{RemoteSfu, SfuNode};
pub use node::{
    ControlError, JoinError, Joined, ParticipantEvent, Permissions, Role, RoomStats, Sfu, TrackKind,
};
