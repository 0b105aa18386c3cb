//! The client WebSocket protocol, version 1 (see `docs/protocol.md`).
//!
//! Every message is one JSON text frame with a `type` field. The server
//! never needs to read relayed payloads: they are end-to-end encrypted by
//! the clients and carried as opaque strings.

use serde::{Deserialize, Serialize};
use str0m::change::{SdpAnswer, SdpOffer};

/// Protocol version this server speaks.
pub const VERSION: u32 = 1;
/// Largest client message accepted (SDP offers with simulcast are ~10 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Read buffer of one signalling WebSocket, at either end. tungstenite
/// allocates 128 KiB per socket by default, which for thousands of mostly
/// idle sessions is most of the server's memory per participant. Messages
/// are small JSON; a larger one still arrives whole, because the reader
/// reserves each frame's full length.
pub const WS_READ_BUFFER_BYTES: usize = 8 * 1024;

/// Client → server.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message: the access token (unless given as `?token=`) and the SDP offer.
    Join {
        /// Protocol version the client speaks.
        v: u32,
        /// Access token, if not in the URL.
        #[serde(default)]
        token: Option<String>,
        /// SDP offer with the client's tracks and its data channel.
        offer: SdpOffer,
        /// Receive audio only: no one's video is offered to this session,
        /// and the SFU spends no bandwidth estimation on it. For listeners
        /// and poor links; it may still publish what its token allows.
        #[serde(default)]
        audio_only: bool,
    },
    /// Answer to a server [`ServerMessage::Offer`].
    Answer {
        /// The answer.
        answer: SdpAnswer,
    },
    /// First message on a new socket after the old one dropped: picks the
    /// session up again without a new media session (media kept flowing).
    Resume {
        /// Protocol version.
        v: u32,
        /// Access token, if not in the URL.
        #[serde(default)]
        token: Option<String>,
        /// The `resume` secret from [`ServerMessage::Joined`].
        resume: String,
    },
    /// Client-initiated renegotiation (publish/unpublish, ICE restart).
    Offer {
        /// The offer.
        offer: SdpOffer,
    },
    /// Receive or stop receiving one participant's tracks.
    Subscribe {
        /// Whose tracks.
        participant: String,
        /// Receive them?
        subscribed: bool,
    },
    /// Highest simulcast layer wanted of one participant's video (tile size).
    Layer {
        /// Whose video.
        participant: String,
        /// 0 = lowest.
        max_layer: u8,
    },
    /// An opaque end-to-end-encrypted message to one participant or, with
    /// no `to`, to everyone else in the room (key exchange, control).
    Relay {
        /// Recipient identity, or the whole room.
        #[serde(default)]
        to: Option<String>,
        /// Opaque to the server.
        payload: String,
    },
    /// Tell the room your microphone or camera is muted (or not). The SFU
    /// stops forwarding that kind and everyone gets a `track_muted` event;
    /// a moderator's mute cannot be lifted this way.
    Mute {
        /// `audio` or `video`.
        kind: sfu::TrackKind,
        /// Muted now?
        muted: bool,
    },
    /// Keep-alive; answered with [`ServerMessage::Pong`].
    Ping,
    /// Leave the room.
    Leave,
}

/// Server → client.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The join worked.
    Joined {
        /// Protocol version.
        v: u32,
        /// Room name.
        room: String,
        /// Your identity (from the token).
        participant: String,
        /// SDP answer to your offer.
        answer: SdpAnswer,
        /// Secret that lets a new socket resume this session if this one
        /// drops (within the server's grace period).
        resume: String,
    },
    /// The session was picked up on this socket; events missed meanwhile follow.
    Resumed {
        /// Protocol version.
        v: u32,
        /// Room name.
        room: String,
        /// Your identity.
        participant: String,
    },
    /// An SFU event: renegotiation offers, presence, tracks, speakers...
    Event {
        /// The event, as the SFU node produced it.
        event: sfu::ParticipantEvent,
    },
    /// Answer to a client [`ClientMessage::Offer`].
    Answer {
        /// The answer.
        answer: SdpAnswer,
    },
    /// A relayed opaque message.
    Relay {
        /// Sender identity (as authenticated by its token).
        from: String,
        /// Opaque payload.
        payload: String,
    },
    /// Reply to [`ClientMessage::Ping`].
    Pong,
    /// Something went wrong; `fatal` errors are followed by a close.
    Error {
        /// Stable machine-readable code.
        code: String,
        /// For people.
        message: String,
        /// Whether the connection is closing.
        fatal: bool,
    },
}

impl ServerMessage {
    /// An error message.
    pub fn error(code: &str, message: impl Into<String>, fatal: bool) -> Self {
        ServerMessage::Error {
            code: code.into(),
            message: message.into(),
            fatal,
        }
    }
}
