//! The running node: a control handle ([`Sfu`]) in front of media workers.
//!
//! ```text
//!             ┌──────────── one UDP port ────────────┐
//!  recvmmsg → receiver thread ─(by remote address)─▶ worker 0 … worker N-1 → sendmmsg
//!                                                     ▲ rooms pinned by name
//!  Sfu handle ─── Command (bounded mpsc) ─────────────┘
//! ```
//!
//! There is one worker per core; each owns whole rooms, so forwarding never
//! crosses threads and takes no locks. The handle is cheap to clone and is
//! all the signalling service needs: every call becomes a [`Command`] on a
//! bounded channel to the worker that owns the room.

pub mod batch_io;
mod event_queue;
mod guard;
mod participant;
mod receiver;
mod socket_reader;
mod tcp;
mod worker;

use std::net::SocketAddr;
use std::thread;

use serde::{Deserialize, Serialize};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::MediaKind;
use tokio::sync::{mpsc, oneshot};

pub use participant::{ParticipantStats, RoomStats};

use crate::config::SfuConfig;
use crate::forward::layer::Layer;
use crate::forward::quality::ConnectionQuality;

/// Something that happened that one participant's signalling should relay.
///
/// Serializes as JSON `{"type": "...", ...}` for the node's control API.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParticipantEvent {
    /// The SFU renegotiates (new or removed remote tracks): answer it with
    /// [`Sfu::answer`].
    Offer {
        /// The offer.
        offer: SdpOffer,
    },
    /// Another participant is in the room (sent for everyone present at join too).
    ParticipantJoined {
        /// Their identity.
        participant: String,
        /// Whether their media is meant to be end-to-end encrypted. False for
        /// WHIP publishers ([`Role::Ingest`]): standard tools cannot SFrame-
        /// encrypt, so receivers play their media as it comes and must label
        /// it "not end-to-end encrypted" rather than fail to decrypt it.
        #[serde(default = "yes")]
        e2ee: bool,
        /// Their display name, when their token has one. The SFU does not
        /// know names; signalling fills this in on its way to the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Another participant left.
    ParticipantLeft {
        /// Their identity.
        participant: String,
    },
    /// A remote track became available; it arrives in the next [`ParticipantEvent::Offer`]
    /// with SDP `msid` `"<participant> <participant>.<their track id>"`
    /// (both reduced to token characters, see [`veil_media::msid_token`]).
    TrackPublished {
        /// Publisher identity.
        participant: String,
        /// Publisher-side track id (its mid).
        track: String,
        /// Audio or video.
        kind: TrackKind,
    },
    /// Dynacast: the highest simulcast layer any subscriber wants of this
    /// participant's video track; `None` means nobody watches it. Publishers
    /// stop encoding what nobody wants and save their uplink and CPU.
    LayersWanted {
        /// The publisher's track (its mid).
        track: String,
        /// Highest wanted layer, 0 = lowest.
        max_layer: Option<Layer>,
    },
    /// A moderator muted or unmuted a participant's tracks of one kind; the
    /// SFU stops (or resumes) forwarding them.
    TrackMuted {
        /// Whose tracks.
        participant: String,
        /// Which kind.
        kind: TrackKind,
        /// Muted now?
        muted: bool,
    },
    /// A participant's connection quality changed (sent to the whole room).
    ConnectionQuality {
        /// Whose connection.
        participant: String,
        /// Its grade now.
        quality: ConnectionQuality,
    },
    /// A remote track went away (its publisher stopped it); it leaves in the
    /// next [`ParticipantEvent::Offer`].
    TrackUnpublished {
        /// Publisher identity.
        participant: String,
        /// Publisher-side track id (its mid).
        track: String,
    },
    /// Loudest first; at most a handful of entries.
    ActiveSpeakers {
        /// Identities, loudest first.
        speakers: Vec<String>,
    },
    /// Something the participant sent was refused (a limit, a bad request);
    /// the session goes on.
    Error {
        /// For the user.
        message: String,
    },
    /// The node is draining: reconnect through signalling to land elsewhere.
    /// Media keeps flowing here until the drain timeout.
    NodeDraining,
    /// The signalling replica lost contact with the node that carried this
    /// session (the node died or is unreachable). The media session is gone:
    /// join again through signalling to land on a live node. Never sent by a
    /// node itself; [`crate::RemoteSfu`] raises it when the node vanishes.
    NodeLost {
        /// What failed, for logs.
        reason: String,
    },
    /// The SFU ended this participant's session. Always the last event of
    /// a session's stream (the queue keeps a slot for it).
    Disconnected {
        /// Why, for the user.
        reason: String,
        /// Whether joining again makes sense: true when the session was
        /// lost (its connection failed, or its signalling stopped reading),
        /// false when someone ended it on purpose (a moderator, the room
        /// closing, the participant leaving).
        #[serde(default)]
        rejoin: bool,
    },
}

fn yes() -> bool {
    true
}

/// What a session does in its room.
///
/// WHIP and WHEP clients (OBS, GStreamer, ffmpeg, players) make one offer
/// and never renegotiate, so the SFU must not send them offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// Publishes and receives everyone else's tracks (renegotiated as they come and go).
    #[default]
    Participant,
    /// A participant with some rights withheld by its token, or one that
    /// asked to receive audio only.
    Limited(Permissions),
    /// Publishes only (WHIP ingest); receives nothing.
    Ingest,
    /// Receives one participant's tracks in the m-lines of its own offer
    /// (WHEP); publishes nothing.
    Viewer {
        /// Whose tracks.
        of: String,
    },
}

/// What a [`Role::Limited`] participant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Send audio and video (tracks it offers are otherwise not forwarded).
    pub publish: bool,
    /// Receive others' audio and video.
    pub subscribe: bool,
    /// Send data-channel messages (chat, files).
    pub publish_data: bool,
    /// Receive others' video too. An audio-only session (a listener, a
    /// phone on a poor link) sets this to false: no video is offered to it,
    /// and the SFU runs no bandwidth estimation for it, since there is no
    /// layer to choose. See [`Role::receives_video`].
    #[serde(default = "yes")]
    pub receive_video: bool,
}

impl Role {
    /// The role for a participant with these rights.
    pub fn with_permissions(permissions: Permissions) -> Role {
        if permissions.publish
            && permissions.subscribe
            && permissions.publish_data
            && permissions.receive_video
        {
            Role::Participant
        } else {
            Role::Limited(permissions)
        }
    }

    /// Whether a session in this role receives `publisher`'s tracks.
    pub fn receives_from(&self, publisher: &str) -> bool {
        match self {
            Role::Participant => true,
            Role::Limited(p) => p.subscribe,
            Role::Ingest => false,
            Role::Viewer { of } => of == publisher,
        }
    }

    /// Whether this session is sent video at all. When it is not, its
    /// `Rtc` is built without the egress bandwidth estimate and its pacer,
    /// which exist to choose video layers. Per participant that is about
    /// 40 timer wake-ups a second and a third of the SFU's CPU in an
    /// audio-only room (measured in `docs/loadtest.md`).
    pub fn receives_video(&self) -> bool {
        match self {
            Role::Participant | Role::Viewer { .. } => true,
            Role::Limited(p) => p.subscribe && p.receive_video,
            Role::Ingest => false,
        }
    }

    /// Whether this session receives `publisher`'s track of `kind`.
    pub fn receives(&self, publisher: &str, kind: MediaKind) -> bool {
        self.receives_from(publisher) && (kind == MediaKind::Audio || self.receives_video())
    }

    /// Whether tracks this session sends are forwarded.
    pub fn may_publish(&self) -> bool {
        match self {
            Role::Participant | Role::Ingest => true,
            Role::Limited(p) => p.publish,
            Role::Viewer { .. } => false,
        }
    }

    /// Whether this session's media is meant to be end-to-end encrypted
    /// (see [`ParticipantEvent::ParticipantJoined`]).
    pub fn end_to_end_encrypted(&self) -> bool {
        !matches!(self, Role::Ingest)
    }

    /// Whether data-channel messages from this session are relayed.
    pub fn may_send_data(&self) -> bool {
        match self {
            Role::Participant => true,
            Role::Limited(p) => p.publish_data,
            Role::Ingest | Role::Viewer { .. } => false,
        }
    }

    /// Whether this session has a data channel to relay messages into.
    pub fn has_data_channel(&self) -> bool {
        matches!(self, Role::Participant | Role::Limited(_))
    }
}

/// Media kind of a track, as events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum JoinError {
    /// The room has reached its participant cap.
    #[error("room {0:?} is full")]
    RoomFull(String),
    /// Identity already present in that room.
    #[error("participant {0:?} is already in the room")]
    DuplicateParticipant(String),
    /// The offer could not be accepted (bad SDP, no usable codecs).
    #[error("the SDP offer was rejected: {0}")]
    BadOffer(String),
    /// The node is draining and admits nobody.
    #[error("this SFU node is draining; join another node")]
    Draining,
    /// The worker is gone (node shut down).
    #[error("the SFU node is not running")]
    NodeDown,
    /// A remote node did not answer (network, auth or protocol trouble).
    #[error("the SFU node cannot be reached: {0}")]
    Unreachable(String),
}

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum ControlError {
    /// No such participant in that room.
    #[error("no participant {participant:?} in room {room:?}")]
    UnknownParticipant {
        /// The room asked for.
        room: String,
        /// The participant asked for.
        participant: String,
    },
    /// An answer arrived but no offer is outstanding.
    #[error("no SDP offer is pending for this participant")]
    NoPendingOffer,
    /// The SDP was rejected.
    #[error("SDP rejected: {0}")]
    BadSdp(String),
    /// The worker is gone.
    #[error("the SFU node is not running")]
    NodeDown,
    /// A remote node did not answer (network, auth or protocol trouble).
    #[error("the SFU node cannot be reached: {0}")]
    Unreachable(String),
}

/// A successful join.
#[derive(Debug)]
pub struct Joined {
    /// SDP answer for the participant's offer.
    pub answer: SdpAnswer,
    /// The participant's event stream; it ends when the session ends.
    pub events: mpsc::Receiver<ParticipantEvent>,
}

type Reply<T> = oneshot::Sender<T>;

pub(crate) enum Command {
    Join {
        room: String,
        participant: String,
        offer: SdpOffer,
        role: Role,
        reply: Reply<Result<Joined, JoinError>>,
    },
    Answer {
        room: String,
        participant: String,
        answer: SdpAnswer,
        reply: Reply<Result<(), ControlError>>,
    },
    Offer {
        room: String,
        participant: String,
        offer: SdpOffer,
        reply: Reply<Result<SdpAnswer, ControlError>>,
    },
    Leave {
        room: String,
        participant: String,
        reason: String,
        reply: Reply<Result<(), ControlError>>,
    },
    SetMaxLayer {
        room: String,
        subscriber: String,
        publisher: String,
        layer: Layer,
        reply: Reply<Result<(), ControlError>>,
    },
    Subscribe {
        room: String,
        subscriber: String,
        publisher: String,
        subscribed: bool,
        reply: Reply<Result<(), ControlError>>,
    },
    SetMuted {
        room: String,
        participant: String,
        kind: TrackKind,
        muted: bool,
        reply: Reply<Result<(), ControlError>>,
    },
    Stats {
        room: String,
        reply: Reply<RoomStats>,
    },
    Drain,
    /// The worker's rooms and how many participants each has.
    Rooms {
        reply: Reply<Vec<(String, usize)>>,
    },
    /// Tells everyone in `room` to move (`NodeDraining`); the node goes on
    /// admitting others. Replies with how many were told.
    MoveRoom {
        room: String,
        reply: Reply<usize>,
    },
}

/// Handle to a running SFU node.
///
/// ```no_run
/// # async fn demo(offer: str0m::change::SdpOffer) -> anyhow::Result<()> {
/// let sfu = sfu::Sfu::start(sfu::SfuConfig::default())?;
/// let joined = sfu.join("standup", "alice", offer).await?;
/// // send joined.answer to alice; relay joined.events to her
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sfu {
    workers: std::sync::Arc<[mpsc::Sender<Command>]>,
    udp_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    participants: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Sfu {
    /// Binds the UDP port and starts the receiver and one worker per
    /// [`SfuConfig::workers`].
    pub fn start(config: SfuConfig) -> std::io::Result<Sfu> {
        let socket = std::net::UdpSocket::bind(config.udp_bind)?;
        let tuned = socket2::SockRef::from(&socket);
        // The kernel caps these at its maximum; a smaller buffer still works.
        let _ = tuned.set_recv_buffer_size(config.socket_buffer_bytes);
        let _ = tuned.set_send_buffer_size(config.socket_buffer_bytes);
        if let Err(e) = batch_io::set_dont_fragment(&socket) {
            tracing::debug!("datagrams leave without Don't Fragment: {e}");
        }
        // For the transit time only; forwarding does not need it.
        if let Err(e) = batch_io::enable_receive_timestamps(&socket) {
            tracing::debug!("no kernel receive timestamps: {e}");
        }
        tracing::debug!(
            recv = tuned.recv_buffer_size().unwrap_or(0),
            send = tuned.send_buffer_size().unwrap_or(0),
            "UDP socket buffers"
        );
        let workers_wanted = config.workers.max(1);
        // A receive thread blocks in recvmmsg; the timeout lets it notice
        // shutdown. (One worker reads the socket itself, non-blocking.)
        if workers_wanted > 1 {
            socket.set_read_timeout(Some(std::time::Duration::from_millis(50)))?;
        }
        let udp_addr = socket.local_addr()?;
        let candidate_addr = SocketAddr::new(
            config.advertised_ip.unwrap_or(udp_addr.ip()),
            udp_addr.port(),
        );
        let (routes_tx, routes_rx) = std::sync::mpsc::channel();
        let tcp = match config.tcp_bind {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                let port = listener.local_addr()?.port();
                let (tx, rx) = mpsc::unbounded_channel();
                Some((listener, SocketAddr::new(candidate_addr.ip(), port), tx, rx))
            }
            None => None,
        };
        let routes = receiver::RouteBus {
            udp: routes_tx,
            tcp: tcp.as_ref().map(|t| t.2.clone()),
        };
        let tcp_candidate = tcp.as_ref().map(|t| t.1);
        let participants = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
        let limit = receiver::SourceLimit {
            packets_per_s: f64::from(config.source_packets_per_s),
            burst: f64::from(config.source_packet_burst.max(1)),
        };
        let mut router = Some(receiver::Router::new(routes_rx, limit));
        let mut workers = Vec::new();
        let mut inbound = Vec::new();
        for index in 0..workers_wanted {
            let own_socket = match workers_wanted {
                1 => router
                    .take()
                    .map(|r| Ok::<_, std::io::Error>((socket.try_clone()?, r))),
                _ => None,
            }
            .transpose()?;
            let (commands, command_rx) = mpsc::channel(1024);
            let (datagrams, datagram_rx) = mpsc::channel(config.worker_queue);
            let setup = worker::WorkerSetup {
                config: config.clone(),
                index,
                send_socket: socket.try_clone()?,
                candidate_addr,
                inbound: datagram_rx,
                commands: command_rx,
                routes: routes.clone(),
                recycle: recycle_tx.clone(),
                tcp_candidate,
                participants: participants.clone(),
                own_socket,
            };
            thread::Builder::new()
                .name(format!("sfu-worker-{index}"))
                .spawn(move || worker::run(setup))?;
            workers.push(commands);
            inbound.push(datagrams);
        }
        if let Some((listener, _, _, routes_rx)) = tcp {
            let inbound = inbound.clone();
            thread::Builder::new()
                .name("sfu-ice-tcp".into())
                .spawn(move || tcp::run(listener, inbound, routes_rx))?;
        }
        if let Some(router) = router {
            thread::Builder::new()
                .name("sfu-receiver".into())
                .spawn(move || receiver::run(socket, inbound, router, recycle_rx))?;
        }
        Ok(Sfu {
            workers: workers.into(),
            udp_addr,
            tcp_addr: tcp_candidate,
            participants,
        })
    }

    /// The worker that owns `room`: rooms are pinned by a hash of their name,
    /// so every call for a room, from any signalling replica, lands on the same
    /// thread without a shared table.
    fn worker(&self, room: &str) -> &mpsc::Sender<Command> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        room.hash(&mut h);
        &self.workers[(h.finish() % self.workers.len() as u64) as usize]
    }

    /// The advertised ICE-TCP address, when TCP fallback is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Participants on this node now (its load, as the registry sees it).
    pub fn participants(&self) -> usize {
        self.participants.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many media workers run.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The UDP address media arrives on.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    async fn call<T>(&self, room: &str, make: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.worker(room).send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Admits `participant` to `room` with its SDP offer.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<Joined, JoinError> {
        self.join_as(room, participant, offer, Role::Participant)
            .await
    }

    /// [`Sfu::join`] in a given [`Role`] (WHIP ingest, WHEP viewer).
    pub async fn join_as(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
        role: Role,
    ) -> Result<Joined, JoinError> {
        self.call(room, |reply| Command::Join {
            room: room.into(),
            participant: participant.into(),
            offer,
            role,
            reply,
        })
        .await
        .unwrap_or(Err(JoinError::NodeDown))
    }

    /// Completes a renegotiation the SFU started with [`ParticipantEvent::Offer`].
    pub async fn answer(
        &self,
        room: &str,
        participant: &str,
        answer: SdpAnswer,
    ) -> Result<(), ControlError> {
        self.call(room, |reply| Command::Answer {
            room: room.into(),
            participant: participant.into(),
            answer,
            reply,
        })
        .await
        .unwrap_or(Err(ControlError::NodeDown))
    }

    /// Renegotiation started by the participant (publish or unpublish a track, ICE restart).
    pub async fn offer(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, ControlError> {
        self.call(room, |reply| Command::Offer {
            room: room.into(),
            participant: participant.into(),
            offer,
            reply,
        })
        .await
        .unwrap_or(Err(ControlError::NodeDown))
    }

    /// Ends a participant's session (leave or kick; `reason` is sent to them).
    pub async fn leave(
        &self,
        room: &str,
        participant: &str,
        reason: &str,
    ) -> Result<(), ControlError> {
        self.call(room, |reply| Command::Leave {
            room: room.into(),
            participant: participant.into(),
            reason: reason.into(),
            reply,
        })
        .await
        .unwrap_or(Err(ControlError::NodeDown))
    }

    /// Caps the simulcast layer `subscriber` receives of `publisher`'s video,
    /// e.g. from the size of the tile that shows it (0 = lowest).
    pub async fn set_max_layer(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        layer: Layer,
    ) -> Result<(), ControlError> {
        self.call(room, |reply| Command::SetMaxLayer {
            room: room.into(),
            subscriber: subscriber.into(),
            publisher: publisher.into(),
            layer,
            reply,
        })
        .await
        .unwrap_or(Err(ControlError::NodeDown))
    }

    /// Starts (`true`) or stops receiving `publisher`'s tracks. Everyone is
    /// subscribed to everyone on join; a client that hides a tile or lets a
    /// user pick whom to watch unsubscribes to save bandwidth.
    pub async fn subscribe(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        subscribed: bool,
    ) -> Result<(), ControlError> {
        self.call(room, |reply| Command::Subscribe {
            room: room.into(),
            subscriber: subscriber.into(),
            publisher: publisher.into(),
            subscribed,
            reply,
        })
        .await
        .unwrap_or(Err(ControlError::NodeDown))
    }

    /// Server-side mute: stop (or resume) forwarding `participant`'s tracks
    /// of `kind`, and tell the room. The media stays encrypted either way;
    /// this is moderation, not access control.
    pub async fn set_muted(
        &self,
        room: &str,
        participant: &str,
        kind: TrackKind,
        muted: bool,
    ) -> Result<(), ControlError> {
        self.call(room, |reply| Command::SetMuted {
            room: room.into(),
            participant: participant.into(),
            kind,
            muted,
            reply,
        })
        .await
        .unwrap_or(Err(ControlError::NodeDown))
    }

    /// A snapshot of a room's participants and counters.
    pub async fn stats(&self, room: &str) -> RoomStats {
        self.call(room, |reply| Command::Stats {
            room: room.into(),
            reply,
        })
        .await
        .unwrap_or_default()
    }

    /// Every room on this node with its participant count.
    pub async fn rooms(&self) -> Vec<(String, usize)> {
        let mut rooms = Vec::new();
        for worker in self.workers.iter() {
            let (tx, rx) = oneshot::channel();
            if worker.send(Command::Rooms { reply: tx }).await.is_ok()
                && let Ok(mut some) = rx.await
            {
                rooms.append(&mut some);
            }
        }
        rooms.sort();
        rooms
    }

    /// Tells everyone in `room` to join again elsewhere (`NodeDraining`),
    /// e.g. because the registry gave the room to another node. Returns how
    /// many participants were told.
    pub async fn move_room(&self, room: &str) -> usize {
        self.call(room, |reply| Command::MoveRoom {
            room: room.into(),
            reply,
        })
        .await
        .unwrap_or(0)
    }

    /// Stops admitting participants and tells everyone present to move.
    pub async fn drain(&self) {
        for worker in self.workers.iter() {
            let _ = worker.send(Command::Drain).await;
        }
    }
}
