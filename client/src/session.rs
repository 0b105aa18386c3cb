//! A Veil participant: one str0m `Rtc`, one UDP socket, SFrame on every frame.
//!
//! Joining is two steps so that any signalling can sit in between:
//! [`Client::prepare`] builds the session and its SDP offer; the caller sends
//! the offer to the server and hands the answer to [`PendingClient::start`],
//! together with two channels for what the server says later
//! ([`FromServer`]) and what the client must say back ([`ToServer`]).
//!
//! The driver task then publishes synthetic frames (see [`crate::frame`]),
//! encrypted with the sender's own SFrame key, and decrypts and checks every
//! frame it receives, keeping counts in [`ClientStats`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};
use sha2::{Digest, Sha256};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use veil_media::extensions::{DependencyDescriptorBytes, base_rtc_config};
use veil_media::msid_token;
use veil_media::packet::dependency_descriptor::write_single_layer;
use veil_media::packet::sframe_header::SframeHeader;
use veil_media::packet::vp8::Vp8Descriptor;

use crate::depacketize::Depacketizer;
use crate::frame::FrameInfo;
use crate::keys::{self, KeyRing, RoomSecret};
use crate::pool::SessionPool;
use crate::shared_socket::SharedLease;
use crate::tcp::{TcpLink, passive_tcp_candidate};

/// Largest slice of ciphertext per RTP packet (keeps SRTP datagrams under str0m's 1150-byte MTU).
const MAX_CHUNK: usize = 1000;
/// RIDs of Veil's simulcast layers, lowest first.
pub const SIMULCAST_RIDS: [&str; 3] = ["l", "m", "h"];
/// Most frame digests kept for payload-identity checks.
const MAX_DIGESTS: usize = 20_000;

/// The longest that what a session received waits in the session before
/// it reaches [`ClientStats`] (a track that goes quiet; see
/// [`TALLY_PACKETS`]). Publishing takes the stats lock and touches the
/// track's shared entry; once per packet, those took about 4% of a load
/// generator's core at 2,000 audio participants, each cold by the
/// session's next packet.
///
/// Why so long: a deadline this session would otherwise not have is an
/// entry in its pool thread's timer heap. At 100 ms, one per session came
/// up ten times a second, and popping them cost more than the batching
/// saved; a flowing track publishes by count instead.
pub const STATS_EVERY: Duration = Duration::from_secs(1);

/// A track publishes what it received every this many packets: 160 ms of
/// audio, a few frames of video.
const TALLY_PACKETS: u32 = 8;

/// Samples a track keeps: at most one per packet, so it never fills
/// before [`TALLY_PACKETS`] sends it out.
const TALLY_SAMPLES: usize = TALLY_PACKETS as usize;

/// Video publishing settings.
#[derive(Debug, Clone)]
pub struct VideoConfig {
    /// Send three simulcast layers (`l`, `m`, `h`) instead of one.
    pub simulcast: bool,
    /// Frames per second on every layer.
    pub fps: u32,
    /// Frame size in bytes per layer (only the first is used without simulcast).
    pub frame_bytes: [usize; 3],
    /// Send a keyframe at least this often.
    pub keyframe_interval: Duration,
    /// Spread each frame's packets at this multiple of the configured
    /// bitrate, as a browser's pacer does (libwebrtc paces at 2.5×), instead
    /// of sending them all at once. An encoder's frame leaves a browser as a
    /// train of packets over several milliseconds, not as one burst; without
    /// pacing, a server sees bursts no browser sends. Frame latency then
    /// includes the time a frame waits in this pacer. A factor that is not
    /// a positive number means no pacing.
    pub pacing: Option<f64>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            simulcast: true,
            fps: 15,
            frame_bytes: [400, 1500, 4000],
            keyframe_interval: Duration::from_secs(3),
            pacing: None,
        }
    }
}

/// How media reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// UDP, the normal case.
    #[default]
    Udp,
    /// ICE-TCP (RFC 6544) to the server's passive TCP candidate, for
    /// networks that block UDP.
    Tcp,
}

/// What a client does.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Participant identity (also names its SFrame key).
    pub identity: String,
    /// Room, used only to label stats; the server decides membership.
    pub room: String,
    /// Derived from the room passphrase; see [`RoomSecret::from_passphrase`].
    pub secret: RoomSecret,
    /// Key epoch.
    pub epoch: u64,
    /// Publish an audio track (50 frames/s).
    pub audio: bool,
    /// Publish a video track (camera, track label `video`).
    pub video: Option<VideoConfig>,
    /// Publish a screen share as a second video track (label `screen`).
    pub screen: Option<VideoConfig>,
    /// Local UDP address to bind.
    pub bind: SocketAddr,
    /// How media reaches the server.
    pub transport: Transport,
    /// Send and receive media through this UDP proxy (for impairment tests).
    pub via_proxy: Option<SocketAddr>,
    /// Keep SHA-256 digests of encrypted frames sent and received.
    pub record_digests: bool,
    /// Initial audio level in -dBov (0 loudest, 127 silent).
    pub audio_level: u8,
    /// First SFrame counter value; by default the wall clock in
    /// microseconds, so a restarted client does not reuse counters. A
    /// session that replaces an earlier one under the same key (a rejoin
    /// after a node moved) starts at the old session's
    /// [`ClientStats::next_counter`]; either way no (key, counter) pair, and
    /// so no AES-GCM nonce, is ever used twice.
    pub first_counter: u64,
    /// Where a replaced session's frame numbers stood (a rejoin after a
    /// node moved). The new session continues them, advanced by the frames
    /// that would have gone out meanwhile, so receivers count those as lost
    /// instead of seeing the numbers start over.
    pub continue_frames: Option<FrameClock>,
    /// Drive the session on this shared pool's threads instead of a tokio
    /// task of its own (UDP only; see [`SessionPool`]). The load tester
    /// uses it to run thousands of participants on a few cores.
    pub pool: Option<SessionPool>,
    /// Once connected, count received RTP datagrams and drop them unread
    /// ([`ClientStats::media_datagrams_sunk`]): no SRTP or SFrame decrypt,
    /// no frames, no NACKs, no feedback about them. STUN, DTLS and RTCP are
    /// handled as usual. For benchmarks that need the server, not the
    /// clients, to be the bottleneck; nothing is verified in this mode.
    pub sink_media: bool,
}

/// The next frame number of each sent track, and when it was read.
#[derive(Debug, Clone, Copy)]
pub struct FrameClock {
    /// Audio.
    pub audio: u32,
    /// The camera's simulcast layers.
    pub video: [u32; 3],
    /// When these were read.
    pub at: Instant,
}

impl ClientConfig {
    /// Audio and simulcast video, loopback, recording digests.
    pub fn new(identity: &str, room: &str, secret: RoomSecret) -> Self {
        ClientConfig {
            identity: identity.into(),
            room: room.into(),
            secret,
            epoch: 0,
            audio: true,
            video: Some(VideoConfig::default()),
            screen: None,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            transport: Transport::Udp,
            via_proxy: None,
            record_digests: true,
            audio_level: 127,
            // The wall clock in µs: a restarted process under the same
            // identity and key starts past every counter it used before
            // (at most a million frames a second), as the browser does.
            first_counter: unix_micros(),
            continue_frames: None,
            pool: None,
            sink_media: false,
        }
    }
}

/// One Opus frame.
const AUDIO_FRAME: Duration = Duration::from_millis(20);

/// Socket buffer size asked for, each way.
const SOCKET_BUFFER: usize = 1 << 20;

/// Messages from the server to the client.
#[derive(Debug)]
pub enum FromServer {
    /// The server renegotiates (adds or removes remote tracks).
    Offer(SdpOffer),
    /// The server's answer to a [`ToServer::Offer`].
    Answer(SdpAnswer),
    /// Loudest first.
    ActiveSpeakers(Vec<String>),
    /// A remote participant stopped publishing a track.
    TrackUnpublished {
        /// Publisher identity.
        participant: String,
        /// Its track id.
        track: String,
    },
    /// A participant's connection grade changed (`excellent`, `good`, `poor`).
    ConnectionQuality {
        /// Whose connection.
        participant: String,
        /// The grade.
        quality: String,
    },
    /// Dynacast: send no video layer above `max_layer` on `track` (our mid);
    /// `None` pauses the track's video entirely.
    LayersWanted {
        /// Our track's mid.
        track: String,
        /// Highest layer anyone watches.
        max_layer: Option<u8>,
    },
    /// Someone joined.
    ParticipantJoined(String),
    /// Someone left.
    ParticipantLeft(String),
    /// The server ended the session.
    Disconnected(String),
    /// The server refused something (a limit); the session goes on.
    Error(String),
    /// The server is draining: media keeps flowing for a while, but the
    /// client should reconnect through signalling to land elsewhere.
    Draining,
}

/// Messages from the client to the server.
#[derive(Debug)]
pub enum ToServer {
    /// Answer to a [`FromServer::Offer`].
    Answer(SdpAnswer),
    /// Our own offer (ICE restart); the server replies with [`FromServer::Answer`].
    Offer(SdpOffer),
}

/// Why a client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket trouble.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The WebRTC stack refused something.
    #[error("WebRTC: {0}")]
    Rtc(String),
    /// Key setup failed.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

/// Counts for one remote track (per publisher identity and kind).
#[derive(Debug, Clone, Default)]
pub struct RemoteTrackStats {
    /// Complete encrypted frames reassembled.
    pub frames_received: u64,
    /// Frames that decrypted (SFrame authenticated them).
    pub frames_decrypted: u64,
    /// Of those, frames without Veil's test-frame header: real codec
    /// frames, e.g. from a browser (no latency or sequence for them).
    pub opaque_frames: u64,
    /// Frames that failed to decrypt (wrong or unknown key, tampering).
    pub decrypt_failures: u64,
    /// Decrypted frames per simulcast layer.
    pub frames_per_layer: [u64; 3],
    /// Layer of the latest decrypted frame.
    pub last_layer: Option<u8>,
    /// Each decrypted test frame since the last
    /// [`Client::drain_samples`], in arrival order. One vector, not one per
    /// figure: a received frame appends to one place, which matters when a
    /// load generator's thread serves thousands of sessions in turn.
    pub samples: Vec<FrameSample>,
    /// RTP packets received.
    pub packets: u64,
    /// Of those, packets carrying a Dependency Descriptor (the publisher's
    /// own, which the SFU must pass on untouched for receivers that decode
    /// by it).
    pub packets_with_dependency_descriptor: u64,
    /// Packets that filled a gap after newer ones came: NACK recoveries.
    pub late_packets: u64,
}

impl RemoteTrackStats {
    /// Sender frame sequence numbers of `layer` that decrypted since the
    /// last drain (for gap checks).
    pub fn sequences(&self, layer: u8) -> impl Iterator<Item = u32> + '_ {
        self.samples
            .iter()
            .filter(move |s| s.layer == layer)
            .map(|s| s.sequence)
    }

    /// Moves the samples out, one vector per figure. The samples vector is
    /// cleared, not taken: the session thread goes on appending into the
    /// capacity it already has instead of growing a new one every drain.
    fn drain_samples(&mut self, identity: &str, kind: &'static str) -> RemoteSamples {
        let mut out = RemoteSamples {
            identity: identity.to_string(),
            kind,
            latencies_us: Vec::with_capacity(self.samples.len()),
            received_at_us: Vec::with_capacity(self.samples.len()),
            sequences: Default::default(),
        };
        for sample in self.samples.drain(..) {
            out.latencies_us.push(sample.latency_us);
            out.received_at_us.push(sample.received_at_us);
            out.sequences[usize::from(sample.layer.min(2))].push(sample.sequence);
        }
        out
    }
}

/// One decrypted test frame of a remote track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameSample {
    /// The sender's frame sequence number on its layer.
    pub sequence: u32,
    /// Simulcast layer (0 for audio), at most 2.
    pub layer: u8,
    /// End-to-end latency, microseconds.
    pub latency_us: u64,
    /// When it was decrypted (wall clock, µs since the Unix epoch): gaps
    /// are interruptions.
    pub received_at_us: u64,
}

/// Per-frame samples of one remote track, from [`Client::drain_samples`].
#[derive(Debug, Clone, Default)]
pub struct RemoteSamples {
    /// The publisher.
    pub identity: String,
    /// `audio`, `video` or `screen`.
    pub kind: &'static str,
    /// End-to-end latency of each decrypted frame, microseconds.
    pub latencies_us: Vec<u64>,
    /// When each of those frames was decrypted (wall clock, µs since the
    /// Unix epoch).
    pub received_at_us: Vec<u64>,
    /// Sender frame sequence numbers that decrypted, per simulcast layer.
    pub sequences: [Vec<u32>; 3],
}

/// Everything a client measured.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    /// ICE+DTLS up.
    pub connected: bool,
    /// Per remote (identity, "audio" | "video" | "screen"), in the order
    /// the tracks were first heard. Indexed: a track finds its entry by the
    /// position it keeps, without hashing the key. A track adds what it
    /// received in batches, every 8 packets, or [`STATS_EVERY`] after the
    /// first of them if it goes quiet, and when the session ends.
    pub remote: IndexMap<(String, &'static str), RemoteTrackStats, foldhash::fast::RandomState>,
    /// Frames encrypted and sent, all tracks and layers.
    pub frames_sent: u64,
    /// Frames that were due but never sent because this client fell behind
    /// its clock (a saturated machine): per track and layer, like
    /// `frames_sent`. A load test whose clients skip frames offers less load
    /// than it claims.
    pub frames_skipped: u64,
    /// Video frames sent per simulcast layer.
    pub video_frames_sent: [u64; 3],
    /// Next frame number of the audio track and of the camera's layers
    /// (see [`ClientConfig::continue_frames`]).
    pub next_frames: (u32, [u32; 3]),
    /// Latest connection grade per participant, as the server reported it.
    pub connection_quality: HashMap<String, String>,
    /// Highest video layer the server last asked for (dynacast), if it did.
    pub layers_wanted: Option<Option<u8>>,
    /// Keyframe requests received from the SFU.
    pub keyframe_requests: u64,
    /// Digest of each encrypted frame sent, by (kid, ctr).
    pub sent_digests: HashMap<(u64, u64), [u8; 32]>,
    /// Digest of each encrypted frame received, by (kid, ctr).
    pub received_digests: HashMap<(u64, u64), [u8; 32]>,
    /// Latest active-speaker list from the server.
    pub active_speakers: Vec<String>,
    /// Why the server ended the session, if it did.
    pub disconnected: Option<String>,
    /// The server asked us to move (node draining).
    pub draining: bool,
    /// ICE restarts performed.
    pub ice_restarts: u64,
    /// Errors the server reported (limits hit).
    pub errors: Vec<String>,
    /// Remote tracks announced as unpublished: (participant, track).
    pub unpublished: Vec<(String, String)>,
    /// Decrypted data messages: (sender identity as the SFU labelled it,
    /// sender identity proven by the SFrame key, plaintext).
    pub messages: Vec<(String, String, Vec<u8>)>,
    /// Data messages that failed to decrypt.
    pub message_failures: u64,
    /// Datagrams received over UDP (counted in batches, like everything
    /// received: it can lag the socket by up to [`STATS_EVERY`]).
    pub udp_datagrams_in: u64,
    /// Frames received over ICE-TCP.
    pub tcp_frames_in: u64,
    /// RTP datagrams counted and dropped unread ([`ClientConfig::sink_media`]);
    /// also in [`ClientStats::udp_datagrams_in`].
    pub media_datagrams_sunk: u64,
    /// The SFrame counter the next encrypted frame or message will use.
    pub next_counter: u64,
    /// [`Client::stop_sending`] was called: nothing more is encrypted.
    pub sending_stopped: bool,
    /// When the first remote frame decrypted.
    pub first_frame_at: Option<Instant>,
}

pub(crate) enum Command {
    SetAudioLevel(u8),
    SetEpoch(u64),
    IceRestart,
    UnpublishVideo,
    SendData(Vec<u8>),
    Stop,
}

/// A client that has an offer out and waits for the answer.
pub struct PendingClient {
    config: ClientConfig,
    rtc: Rtc,
    pending: SdpPendingOffer,
    socket: PreparedSocket,
    audio_mid: Option<Mid>,
    video_mids: Vec<(Mid, &'static str, VideoConfig)>,
}

/// A running participant. Dropping it stops the session.
pub struct Client {
    stats: Arc<Mutex<ClientStats>>,
    commands: mpsc::Sender<Command>,
    /// The session's own task, when it has one.
    task: Option<JoinHandle<()>>,
    /// Closed when a pooled session ends.
    done: Option<oneshot::Receiver<()>>,
    local_addr: SocketAddr,
}

/// A non-blocking UDP socket of a session's own, set up for media.
fn bind_media_socket(bind: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(bind)?;
    socket.set_nonblocking(true)?;
    // Bursts (keyframes, a room's worth of audio) outgrow the default
    // buffers when many clients share one machine; the kernel caps this at
    // its own maximum.
    let tuned = socket2::SockRef::from(&socket);
    let _ = tuned.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = tuned.set_send_buffer_size(SOCKET_BUFFER);
    if let Err(e) = crate::shared_socket::set_dont_fragment(&socket) {
        debug!("datagrams leave without Don't Fragment: {e}");
    }
    Ok(socket)
}

impl Client {
    /// Builds the session and the SDP offer to send to the server.
    pub fn prepare(config: ClientConfig) -> Result<(PendingClient, SdpOffer), ClientError> {
        let lease = match config.transport {
            Transport::Udp => config.pool.as_ref().and_then(|p| p.lease(config.bind)),
            Transport::Tcp => None,
        };
        let socket = match lease {
            Some(lease) => PreparedSocket::Shared(lease),
            None => PreparedSocket::Own(bind_media_socket(config.bind)?),
        };
        let local = socket.local_addr()?;
        let mut rtc = base_rtc_config().build(Instant::now());
        if config.transport == Transport::Udp {
            let candidate =
                Candidate::host(local, "udp").map_err(|e| ClientError::Rtc(e.to_string()))?;
            rtc.add_local_candidate(candidate);
        }
        let mut change = rtc.sdp_api();
        let stream = Some(config.identity.clone());
        let audio_mid = config.audio.then(|| {
            change.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                stream.clone(),
                Some("audio".into()),
                None,
            )
        });
        let sources = [("video", &config.video), ("screen", &config.screen)];
        let video_mids: Vec<(Mid, &'static str, VideoConfig)> = sources
            .into_iter()
            .filter_map(|(label, v)| Some((label, v.clone()?)))
            .map(|(label, v)| {
                let simulcast = v.simulcast.then(|| {
                    let mut s = Simulcast::new();
                    for rid in SIMULCAST_RIDS {
                        s.add_send_layer(SimulcastLayer::new(rid));
                    }
                    s
                });
                let mid = change.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    stream.clone(),
                    Some(label.into()),
                    simulcast,
                );
                (mid, label, v)
            })
            .collect();
        change.add_channel("veil".into());
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| ClientError::Rtc("nothing to offer".into()))?;
        Ok((
            PendingClient {
                config,
                rtc,
                pending,
                socket,
                audio_mid,
                video_mids,
            },
            offer,
        ))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reads the counters without cloning them.
    pub fn with_stats<T>(&self, f: impl FnOnce(&ClientStats) -> T) -> T {
        let guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Moves to a new UDP socket (as after a network change) and restarts
    /// ICE through signalling, keeping the media session.
    pub async fn ice_restart(&self) {
        let _ = self.commands.send(Command::IceRestart).await;
    }

    /// Stops publishing video (camera off) by renegotiating the track inactive.
    pub async fn unpublish_video(&self) {
        let _ = self.commands.send(Command::UnpublishVideo).await;
    }

    /// Changes the audio level this client reports (0 loudest, 127 silent).
    pub async fn set_audio_level(&self, dbov: u8) {
        let _ = self.commands.send(Command::SetAudioLevel(dbov)).await;
    }

    /// Rotates this sender's key to `epoch` (0..=255 are told apart by
    /// receivers): later frames and messages use the new key. Receivers
    /// derive it when they first see its key id. The frame counter goes on,
    /// so no nonce repeats even if an epoch comes round again.
    pub async fn set_epoch(&self, epoch: u64) {
        let _ = self.commands.send(Command::SetEpoch(epoch)).await;
    }

    /// [`Client::set_epoch`] without waiting: false if the command queue is
    /// full (the key is not rotated).
    pub fn try_set_epoch(&self, epoch: u64) -> bool {
        self.commands.try_send(Command::SetEpoch(epoch)).is_ok()
    }

    /// Takes the per-frame samples gathered since the last call (latencies
    /// and sequence numbers of decrypted frames, per remote track), so a
    /// long run keeps its memory flat. Counters stay in [`Client::stats`].
    pub fn drain_samples(&self) -> Vec<RemoteSamples> {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats
            .remote
            .iter_mut()
            .map(|((identity, kind), r)| r.drain_samples(identity, kind))
            .collect()
    }

    /// Sends an end-to-end encrypted message to everyone in the room over
    /// the data channel (SFrame with this client's key).
    pub async fn send_data(&self, plaintext: &[u8]) {
        let _ = self
            .commands
            .send(Command::SendData(plaintext.to_vec()))
            .await;
    }

    /// [`Client::send_data`] without waiting: false if the command queue
    /// is full (the message is not sent).
    pub fn try_send_data(&self, plaintext: &[u8]) -> bool {
        self.commands
            .try_send(Command::SendData(plaintext.to_vec()))
            .is_ok()
    }

    /// The local UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops encrypting (media and messages) for good and returns the next
    /// unused SFrame counter: a session that replaces this one under the
    /// same key starts there ([`ClientConfig::first_counter`]).
    pub fn stop_sending(&self) -> u64 {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.sending_stopped = true;
        stats.next_counter
    }

    /// Stops the session and waits for the driver to end.
    pub async fn stop(mut self) {
        let _ = self.commands.send(Command::Stop).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Client {
    /// A task-driven session is aborted; a pooled one ends when its pool
    /// sees the command channel close.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl PendingClient {
    /// Applies the server's answer and starts the session in a task.
    pub fn start(
        mut self,
        answer: SdpAnswer,
        from_server: mpsc::Receiver<FromServer>,
        to_server: mpsc::Sender<ToServer>,
    ) -> Result<Client, ClientError> {
        let tcp_remote = match self.config.transport {
            Transport::Udp => None,
            Transport::Tcp => Some(passive_tcp_candidate(&answer.to_sdp_string()).ok_or_else(
                || ClientError::Rtc("the server offers no ICE-TCP candidate".into()),
            )?),
        };
        self.rtc
            .sdp_api()
            .accept_answer(self.pending, answer)
            .map_err(|e| ClientError::Rtc(e.to_string()))?;
        let local_addr = self.socket.local_addr()?;
        // Taken out of the config the session keeps: a pooled session
        // holding its own pool would keep the pool's threads alive forever.
        let pool = match self.config.transport {
            Transport::Udp => self.config.pool.take(),
            Transport::Tcp => None,
        };
        let socket = match (pool.is_some(), self.socket) {
            (_, PreparedSocket::Shared(lease)) => MediaSocket::Shared(lease),
            (true, PreparedSocket::Own(socket)) => MediaSocket::Pooled(socket),
            (false, PreparedSocket::Own(socket)) => MediaSocket::Task(UdpSocket::from_std(socket)?),
        };
        let enc_key = keys::encryption_key(
            &self.config.secret,
            &self.config.identity,
            self.config.epoch,
        )?;
        let first_counter = self.config.first_counter;
        let continue_frames = self.config.continue_frames;
        let stats = Arc::new(Mutex::new(ClientStats {
            next_counter: first_counter,
            ..ClientStats::default()
        }));
        let (commands, command_rx) = mpsc::channel(16);
        let now = Instant::now();
        let driver = Driver {
            audio_level: self.config.audio_level,
            config: self.config,
            rtc: self.rtc,
            socket,
            local_addr,
            remote_addr: None,
            stats: stats.clone(),
            enc_key,
            counter: MonotonicCounter::with_start_value(first_counter, u64::MAX),
            dec_keys: KeyRing::default(),
            connected: false,
            audio: self.audio_mid.map(|mid| AudioSender {
                mid,
                pt: None,
                seq: 0,
                frame: 0,
            }),
            videos: self
                .video_mids
                .into_iter()
                .map(|(mid, label, config)| VideoSender::new(mid, label, config, now))
                .collect(),
            receivers: Vec::new(),
            tcp_remote,
            pending: None,
            restart_candidate: None,
            tcp: None,
            tcp_out: Vec::new(),
            key_owners: HashMap::new(),
            participants: Vec::new(),
            channel: None,
            data_queue: Default::default(),
            started: now,
            next_timeout: now,
            next_audio: now,
            outbox: Vec::new(),
            stats_due: None,
            first_frame_at: None,
            received_digests: Vec::new(),
            datagrams_in: 0,
            sunk: 0,
            receiver_by_ssrc: Vec::new(),
            last_receiver: None,
        };
        let mut driver = driver;
        if let Some(clock) = continue_frames {
            driver.continue_frames(clock, now);
        }
        let (task, done) = match pool {
            Some(pool) => {
                let (done_tx, done) = oneshot::channel();
                pool.add(crate::pool::PooledSession {
                    driver,
                    from_server,
                    to_server,
                    commands: command_rx,
                    _done: done_tx,
                });
                (None, Some(done))
            }
            None => (
                Some(tokio::spawn(driver.run(from_server, to_server, command_rx))),
                None,
            ),
        };
        Ok(Client {
            stats,
            commands,
            task,
            done,
            local_addr,
        })
    }
}

struct AudioSender {
    mid: Mid,
    pt: Option<Pt>,
    seq: u64,
    frame: u32,
}

struct LayerSender {
    rid: Option<Rid>,
    seq: u64,
    frame: u32,
    force_keyframe: bool,
    last_keyframe: Option<Instant>,
}

struct VideoSender {
    mid: Mid,
    /// `video` (camera) or `screen`.
    label: &'static str,
    config: VideoConfig,
    pt: Option<Pt>,
    layers: Vec<LayerSender>,
    /// Dynacast: layers above this are not sent; `None` sends nothing.
    max_layer: Option<u8>,
    next_frame: Instant,
    /// Packets waiting for their turn when [`VideoConfig::pacing`] is set.
    pacer: Option<Pacer>,
}

/// A browser-like pacer for one video sender: packets leave at a fixed
/// multiple of the sender's configured bitrate, oldest first.
struct Pacer {
    /// What the queue drains at, bytes a second.
    bytes_per_second: f64,
    queue: VecDeque<(Option<Rid>, RtpWrite, usize)>,
    /// When the next queued packet may leave.
    next: Instant,
}

impl Pacer {
    /// Credit a pacer may carry over from a late wake-up or a quiet spell:
    /// about a timer tick. A late wake-up catches up; a pause does not let
    /// the next frame out as a burst.
    const MAX_CREDIT: Duration = Duration::from_millis(1);

    fn new(config: &VideoConfig, factor: f64, now: Instant) -> Self {
        let layers = if config.simulcast { 3 } else { 1 };
        let frame_bytes: usize = config.frame_bytes[..layers].iter().sum();
        let bytes_per_second =
            (frame_bytes as f64 * f64::from(config.fps.max(1)) * factor).max(1.0);
        Pacer {
            bytes_per_second,
            queue: VecDeque::new(),
            next: now,
        }
    }

    fn push(&mut self, rid: Option<Rid>, write: RtpWrite, bytes: usize) {
        self.queue.push_back((rid, write, bytes));
    }

    /// The oldest packet, if its turn has come by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<(Option<Rid>, RtpWrite)> {
        if self.queue.is_empty() || self.next > now {
            return None;
        }
        let (rid, write, bytes) = self.queue.pop_front()?;
        let earliest = now.checked_sub(Self::MAX_CREDIT).unwrap_or(now);
        self.next =
            self.next.max(earliest) + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        Some((rid, write))
    }

    /// When the next queued packet may leave; `None` when none waits.
    fn next_due(&self) -> Option<Instant> {
        (!self.queue.is_empty()).then_some(self.next)
    }
}

impl VideoSender {
    fn new(mid: Mid, label: &'static str, config: VideoConfig, now: Instant) -> Self {
        let layers = if config.simulcast { 3 } else { 1 };
        VideoSender {
            mid,
            label,
            pt: None,
            layers: (0..layers)
                .map(|i| LayerSender {
                    rid: (layers > 1).then(|| Rid::from(SIMULCAST_RIDS[i])),
                    seq: 0,
                    frame: 0,
                    force_keyframe: true,
                    last_keyframe: None,
                })
                .collect(),
            max_layer: Some(2),
            next_frame: now,
            pacer: config
                .pacing
                .filter(|factor| factor.is_finite() && *factor > 0.0)
                .map(|factor| Pacer::new(&config, factor, now)),
            config,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_micros(1_000_000 / self.config.fps.max(1) as u64)
    }
}

/// An RTP (not RTCP) datagram, by RFC 7983's first byte and RFC 5761's
/// payload types: RTCP's 200–206 read as 72–78 without the marker bit.
fn is_rtp(data: &[u8]) -> bool {
    data.len() >= 12 && (128..192).contains(&data[0]) && !(64..96).contains(&(data[1] & 0x7f))
}

struct Receiver {
    /// The sender's identity and the stats label (`audio`, `video` for the
    /// camera, `screen`): the track's key in [`ClientStats::remote`], kept
    /// whole so that a packet finds its stats without building a key.
    stats_key: (String, &'static str),
    /// Where `stats_key` sits in [`ClientStats::remote`], once known.
    stats_index: Option<usize>,
    kind: MediaKind,
    depacketizer: Depacketizer,
    /// What the track received since the session last published it.
    tally: Tally,
    /// The sender's key this track last decrypted with, shared with the
    /// session's [`KeyRing`] (and, in a load generator, with every session
    /// that receives this sender): the next frame, almost always under the
    /// same key, decrypts without a lookup in the ring's cold arrays.
    key: Option<Arc<DecryptionKey>>,
}

/// What one remote track received since its session last published it
/// into [`ClientStats`]: kept with the track, so that a packet touches no
/// shared state, and added to the track's entry every [`TALLY_PACKETS`]
/// packets (or [`STATS_EVERY`] after the first, if the track goes quiet).
#[derive(Default)]
struct Tally {
    packets: u32,
    packets_with_dependency_descriptor: u32,
    frames_received: u32,
    frames_decrypted: u32,
    decrypt_failures: u32,
    opaque_frames: u32,
    frames_per_layer: [u32; 3],
    last_layer: Option<u8>,
    sample_count: usize,
    samples: [FrameSample; TALLY_SAMPLES],
}

impl Tally {
    /// Keeps a sample. The track publishes after [`TALLY_PACKETS`]
    /// packets, and a packet brings at most one sample, so there is room.
    fn push(&mut self, sample: FrameSample) {
        if let Some(slot) = self.samples.get_mut(self.sample_count) {
            *slot = sample;
            self.sample_count += 1;
        }
    }

    /// Adds everything to the track's entry and starts over.
    fn publish_into(&mut self, remote: &mut RemoteTrackStats, late_packets: u64) {
        remote.packets += u64::from(std::mem::take(&mut self.packets));
        remote.packets_with_dependency_descriptor +=
            u64::from(std::mem::take(&mut self.packets_with_dependency_descriptor));
        remote.frames_received += u64::from(std::mem::take(&mut self.frames_received));
        remote.frames_decrypted += u64::from(std::mem::take(&mut self.frames_decrypted));
        remote.decrypt_failures += u64::from(std::mem::take(&mut self.decrypt_failures));
        remote.opaque_frames += u64::from(std::mem::take(&mut self.opaque_frames));
        for (total, new) in remote
            .frames_per_layer
            .iter_mut()
            .zip(&mut self.frames_per_layer)
        {
            *total += u64::from(std::mem::take(new));
        }
        if let Some(layer) = self.last_layer.take() {
            remote.last_layer = Some(layer);
        }
        remote.late_packets = late_packets;
        let count = std::mem::take(&mut self.sample_count);
        remote.samples.extend_from_slice(&self.samples[..count]);
    }
}

/// A prepared session's socket: its own, or an address on a pool
/// thread's shared socket.
enum PreparedSocket {
    Own(std::net::UdpSocket),
    Shared(SharedLease),
}

impl PreparedSocket {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            PreparedSocket::Own(s) => s.local_addr(),
            PreparedSocket::Shared(lease) => Ok(lease.local_addr()),
        }
    }
}

/// The session's UDP socket: registered with tokio for a session with its
/// own task, or a plain non-blocking socket that a [`SessionPool`] thread
/// polls.
pub(crate) enum MediaSocket {
    Task(UdpSocket),
    Pooled(std::net::UdpSocket),
    /// An address on its pool thread's socket.
    Shared(SharedLease),
}

impl MediaSocket {
    /// Sends without waiting; a full socket buffer drops the datagram, as
    /// a congested network would.
    fn send_to(&self, data: &[u8], destination: SocketAddr) {
        let _ = match self {
            MediaSocket::Task(s) => s.try_send_to(data, destination),
            MediaSocket::Pooled(s) => s.send_to(data, destination),
            MediaSocket::Shared(lease) => {
                lease.send_to(data, destination);
                return;
            }
        };
    }

    /// A new socket of the same kind bound to `bind` (an ICE restart).
    fn rebind(&self, bind: SocketAddr) -> std::io::Result<MediaSocket> {
        // A new address on the same socket, so the session stays on its thread.
        if let MediaSocket::Shared(lease) = self {
            return Ok(MediaSocket::Shared(lease.socket.lease()));
        }
        let socket = bind_media_socket(bind)?;
        Ok(match self {
            MediaSocket::Task(_) => MediaSocket::Task(UdpSocket::from_std(socket)?),
            MediaSocket::Pooled(_) | MediaSocket::Shared(_) => MediaSocket::Pooled(socket),
        })
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            MediaSocket::Task(s) => s.local_addr(),
            MediaSocket::Pooled(s) => s.local_addr(),
            MediaSocket::Shared(lease) => Ok(lease.local_addr()),
        }
    }
}

pub(crate) struct Driver {
    config: ClientConfig,
    rtc: Rtc,
    pub(crate) socket: MediaSocket,
    local_addr: SocketAddr,
    /// The SFU's address as str0m knows it, when media goes via a proxy.
    remote_addr: Option<SocketAddr>,
    stats: Arc<Mutex<ClientStats>>,
    enc_key: EncryptionKey,
    counter: MonotonicCounter,
    dec_keys: KeyRing,
    /// ICE and DTLS are up.
    connected: bool,
    audio: Option<AudioSender>,
    videos: Vec<VideoSender>,
    /// One per remote track's m-line, by mid; never removed, so an index
    /// stays valid for the session's life.
    receivers: Vec<(Mid, Receiver)>,
    /// Our offer awaiting the server's answer (ICE restart).
    pending: Option<SdpPendingOffer>,
    /// The new socket's address, to become our candidate once answered.
    restart_candidate: Option<SocketAddr>,
    /// ICE-TCP: the server's candidate, the connection, frames to write.
    tcp_remote: Option<SocketAddr>,
    tcp: Option<TcpLink>,
    tcp_out: Vec<Vec<u8>>,
    /// Everyone the server announced, by real identity.
    participants: Vec<String>,
    /// Identity of each remote sender key, for labelling decrypted messages.
    key_owners: HashMap<u64, String>,
    channel: Option<str0m::channel::ChannelId>,
    /// Encrypted messages waiting for room in the data channel.
    data_queue: std::collections::VecDeque<Vec<u8>>,
    audio_level: u8,
    started: Instant,
    next_timeout: Instant,
    next_audio: Instant,
    /// Messages for the server, sent by whoever drives the session.
    pub(crate) outbox: Vec<ToServer>,
    /// When what was received since the last publish must reach
    /// [`ClientStats`] ([`STATS_EVERY`] after the first of it).
    stats_due: Option<Instant>,
    /// When the first remote frame decrypted, until published.
    first_frame_at: Option<Instant>,
    /// Digests of received frames, until published (`record_digests`).
    received_digests: Vec<((u64, u64), [u8; 32])>,
    /// Datagrams not yet added to [`ClientStats::udp_datagrams_in`].
    datagrams_in: u64,
    /// Sunk datagrams not yet added to [`ClientStats::media_datagrams_sunk`].
    sunk: u64,
    /// Which receiver (index into `receivers`) each remote SSRC feeds,
    /// filled on first sight: a packet finds its receiver without hashing.
    receiver_by_ssrc: Vec<(Ssrc, usize)>,
    /// The latest hit of `receiver_by_ssrc`, kept in the session itself:
    /// an audio subscriber has one remote SSRC, and this way its packets
    /// skip a search of a vector that is cold by the next packet.
    last_receiver: Option<(Ssrc, usize)>,
}

impl Drop for Driver {
    /// However the session ends, what it received last is counted.
    fn drop(&mut self) {
        self.publish_stats();
    }
}

enum Wake {
    Datagram(std::io::Result<(usize, SocketAddr)>),
    TcpFrame(Option<Vec<u8>>),
    Server(Option<FromServer>),
    Command(Option<Command>),
    Timer,
}

/// The negotiated payload type of `codec` on `mid`, looked up once and cached.
fn payload_type(rtc: &Rtc, cache: &mut Option<Pt>, mid: Mid, codec: Codec) -> Option<Pt> {
    if cache.is_none() {
        let remote = rtc.media(mid)?.remote_pts();
        *cache = rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && (remote.is_empty() || remote.contains(&p.pt())))
            .map(|p| p.pt());
    }
    *cache
}

async fn next_tcp_frame(tcp: &mut Option<TcpLink>) -> Option<Vec<u8>> {
    match tcp {
        Some(link) => link.recv().await,
        None => std::future::pending().await,
    }
}

/// The wall clock in microseconds since the Unix epoch: frame send times and
/// receive times are in it.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Driver {
    /// Starts frame numbers where a replaced session left them, plus the
    /// frames that would have been sent since.
    fn continue_frames(&mut self, clock: FrameClock, now: Instant) {
        let gap = now.saturating_duration_since(clock.at);
        let skipped = |period: Duration| (gap.as_micros() / period.as_micros().max(1)) as u32;
        if let Some(a) = self.audio.as_mut() {
            a.frame = clock.audio.wrapping_add(skipped(AUDIO_FRAME));
        }
        if let Some(v) = self.videos.iter_mut().find(|v| v.label == "video") {
            let period = v.period();
            for (layer, start) in v.layers.iter_mut().zip(clock.video) {
                layer.frame = start.wrapping_add(skipped(period));
            }
        }
    }

    async fn run(
        mut self,
        mut from_server: mpsc::Receiver<FromServer>,
        to_server: mpsc::Sender<ToServer>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut server_open = true;
        if let Some(remote) = self.tcp_remote {
            match TcpLink::connect(remote).await {
                Ok(link) => {
                    let local = Candidate::builder()
                        .tcp()
                        .host(link.local)
                        .tcptype(TcpType::Active)
                        .build();
                    match local {
                        Ok(c) => {
                            self.rtc.add_local_candidate(c);
                        }
                        Err(e) => warn!("ICE-TCP candidate: {e}"),
                    }
                    self.tcp = Some(link);
                }
                Err(e) => warn!("cannot reach the server over ICE-TCP at {remote}: {e}"),
            }
        }
        // One timer for the session's life, moved rather than rebuilt on
        // every turn: a new `sleep_until` per turn registers and
        // deregisters a timer entry for every datagram received.
        let timer = tokio::time::sleep_until(Instant::now().into());
        tokio::pin!(timer);
        loop {
            let Some(deadline) = self.settle() else {
                return;
            };
            if let Some(link) = self.tcp.as_mut() {
                for frame in self.tcp_out.drain(..) {
                    if let Err(e) = link.send(&frame).await {
                        debug!("ICE-TCP send: {e}");
                    }
                }
            }
            for message in std::mem::take(&mut self.outbox) {
                let _ = to_server.send(message).await;
            }
            let deadline = tokio::time::Instant::from_std(deadline);
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            let MediaSocket::Task(socket) = &self.socket else {
                return;
            };
            let wake = tokio::select! {
                r = socket.recv_from(&mut buf) => Wake::Datagram(r),
                f = next_tcp_frame(&mut self.tcp) => Wake::TcpFrame(f),
                m = from_server.recv(), if server_open => Wake::Server(m),
                c = commands.recv() => Wake::Command(c),
                () = &mut timer => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Datagram(Ok((n, source))) => self.on_datagram(&buf[..n], source, now),
                Wake::Datagram(Err(e)) => debug!("recv: {e}"),
                Wake::TcpFrame(Some(frame)) => self.on_tcp_frame(&frame, now),
                Wake::TcpFrame(None) => {
                    warn!("ICE-TCP connection closed by the server");
                    self.tcp = None;
                }
                Wake::Server(Some(message)) => self.on_server(message),
                Wake::Server(None) => server_open = false,
                Wake::Command(command) => {
                    if !self.on_command(command) {
                        return;
                    }
                }
                Wake::Timer => {}
            }
            self.after_wake(Instant::now());
        }
    }

    /// Before the session waits: writes queued messages, drains str0m's
    /// output and returns when to wake it next (`None` once it has ended).
    pub(crate) fn settle(&mut self) -> Option<Instant> {
        if !self.data_queue.is_empty() {
            self.flush_data();
        }
        self.poll();
        if !self.rtc.is_alive() {
            self.publish_stats();
            return None;
        }
        let next = self.next_timeout.min(self.next_media());
        Some(self.stats_due.map_or(next, |due| next.min(due)))
    }

    /// After every wake, whatever its cause: serves a due str0m timeout
    /// and sends the media that is due.
    pub(crate) fn after_wake(&mut self, now: Instant) {
        if now >= self.next_timeout {
            let _ = self.rtc.handle_input(Input::Timeout(now));
        }
        if self.stats_due.is_some_and(|due| now >= due) {
            self.publish_stats();
        }
        if self.rtc.is_connected() {
            self.send_media(now);
        } else {
            self.next_audio = now + AUDIO_FRAME;
            for v in &mut self.videos {
                v.next_frame = now + Duration::from_millis(20);
            }
        }
    }

    /// A message from signalling; replies go to [`Driver::outbox`].
    pub(crate) fn on_server(&mut self, message: FromServer) {
        match message {
            FromServer::Offer(offer) => match self.rtc.sdp_api().accept_offer(offer) {
                Ok(answer) => {
                    // Tracks may have moved between SSRCs.
                    self.receiver_by_ssrc.clear();
                    self.last_receiver = None;
                    self.outbox.push(ToServer::Answer(answer))
                }
                Err(e) => warn!("rejecting server offer: {e}"),
            },
            FromServer::ActiveSpeakers(list) => self.stats_mut().active_speakers = list,
            FromServer::Disconnected(reason) => self.stats_mut().disconnected = Some(reason),
            FromServer::LayersWanted { track, max_layer } => {
                self.on_layers_wanted(&track, max_layer)
            }
            FromServer::ConnectionQuality {
                participant,
                quality,
            } => {
                self.stats_mut()
                    .connection_quality
                    .insert(participant, quality);
            }
            FromServer::Draining => self.stats_mut().draining = true,
            FromServer::Error(message) => self.stats_mut().errors.push(message),
            FromServer::ParticipantJoined(identity) => {
                if !self.participants.contains(&identity) {
                    self.participants.push(identity);
                }
            }
            FromServer::TrackUnpublished { participant, track } => {
                self.stats_mut().unpublished.push((participant, track));
            }
            FromServer::Answer(answer) => {
                if let Some(pending) = self.pending.take()
                    && let Err(e) = self.rtc.sdp_api().accept_answer(pending, answer)
                {
                    warn!("server answer rejected: {e}");
                }
                if let Some(local) = self.restart_candidate.take()
                    && let Ok(candidate) = Candidate::host(local, "udp")
                {
                    self.rtc.add_local_candidate(candidate);
                }
            }
            FromServer::ParticipantLeft(_) => {}
        }
    }

    /// A command from the [`Client`] handle (`None`: the handle is gone).
    /// Returns false when the session ends.
    pub(crate) fn on_command(&mut self, command: Option<Command>) -> bool {
        match command {
            Some(Command::SetAudioLevel(level)) => self.audio_level = level,
            Some(Command::SetEpoch(epoch)) => self.set_epoch(epoch),
            Some(Command::IceRestart) => {
                if let Some(offer) = self.start_ice_restart() {
                    self.outbox.push(ToServer::Offer(offer));
                }
            }
            Some(Command::SendData(plain)) => self.send_data(&plain),
            Some(Command::UnpublishVideo) => {
                if let Some(i) = self.videos.iter().position(|v| v.label == "video") {
                    let video = self.videos.remove(i);
                    let mut change = self.rtc.sdp_api();
                    change.set_direction(video.mid, Direction::Inactive);
                    if let Some((offer, pending)) = change.apply() {
                        self.pending = Some(pending);
                        self.outbox.push(ToServer::Offer(offer));
                    }
                }
            }
            Some(Command::Stop) | None => {
                self.rtc.disconnect();
                return false;
            }
        }
        true
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, ClientStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_media(&self) -> Instant {
        let mut t = self.next_timeout + Duration::from_secs(1);
        if self.audio.is_some() {
            t = t.min(self.next_audio);
        }
        for v in &self.videos {
            t = t.min(v.next_frame);
            if let Some(due) = v.pacer.as_ref().and_then(Pacer::next_due) {
                t = t.min(due);
            }
        }
        t
    }

    pub(crate) fn on_datagram(&mut self, data: &[u8], mut source: SocketAddr, now: Instant) {
        // Published with what the tracks tallied (`Driver::publish_stats`).
        self.datagrams_in += 1;
        self.stats_due.get_or_insert(now + STATS_EVERY);
        if self.config.sink_media && is_rtp(data) && self.rtc.is_connected() {
            self.sunk += 1;
            return;
        }
        if self.config.via_proxy == Some(source)
            && let Some(remote) = self.remote_addr
        {
            source = remote;
        }
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local_addr,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            debug!("input rejected: {e}");
        }
    }

    /// Binds a fresh socket, drops the old path and offers new ICE credentials.
    fn start_ice_restart(&mut self) -> Option<SdpOffer> {
        let socket = self.socket.rebind(self.config.bind).ok()?;
        let local = socket.local_addr().ok()?;
        let mut change = self.rtc.sdp_api();
        change.ice_restart(false);
        let (offer, pending) = change.apply()?;
        // The restart clears local candidates when the answer is accepted;
        // the new one is added then.
        self.restart_candidate = Some(local);
        self.socket = socket;
        self.local_addr = local;
        self.pending = Some(pending);
        self.stats_mut().ice_restarts += 1;
        Some(offer)
    }

    fn on_layers_wanted(&mut self, track: &str, max_layer: Option<u8>) {
        let Some(video) = self.videos.iter_mut().find(|v| v.mid.to_string() == track) else {
            return;
        };
        let was = video.max_layer;
        video.max_layer = max_layer;
        // A layer that comes back must start with a keyframe.
        for (i, layer) in video.layers.iter_mut().enumerate() {
            let allowed = |m: Option<u8>| m.is_some_and(|m| i as u8 <= m);
            if allowed(max_layer) && !allowed(was) {
                layer.force_keyframe = true;
            }
        }
        self.stats_mut().layers_wanted = Some(max_layer);
    }

    fn on_tcp_frame(&mut self, frame: &[u8], now: Instant) {
        self.stats_mut().tcp_frames_in += 1;
        let Some(link) = self.tcp.as_ref() else {
            return;
        };
        let (source, destination) = (link.remote, link.local);
        let Ok(contents) = frame.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Tcp,
                source,
                destination,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            debug!("ICE-TCP input rejected: {e}");
        }
    }

    fn poll(&mut self) {
        // Media written to str0m waits for its next `handle_timeout`, so
        // after a write it asks for a timeout that is already due. Serving
        // it here, once, sends the frame now instead of after another turn
        // of the session loop (a timer wake-up per frame sent).
        let mut served_due_timeout = false;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    let now = Instant::now();
                    if served_due_timeout || t > now {
                        self.next_timeout = t;
                        return;
                    }
                    served_due_timeout = true;
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                        warn!("session failed: {e}");
                        self.rtc.disconnect();
                        return;
                    }
                }
                Ok(Output::Transmit(t)) if t.proto == Protocol::Tcp => {
                    self.tcp_out.push(t.contents.into())
                }
                Ok(Output::Transmit(t)) => {
                    let destination = match self.config.via_proxy {
                        Some(proxy) => {
                            self.remote_addr = Some(t.destination);
                            proxy
                        }
                        None => t.destination,
                    };
                    self.socket.send_to(&t.contents, destination);
                }
                Ok(Output::Event(e)) => self.on_event(e),
                Err(e) => {
                    warn!("session failed: {e}");
                    self.rtc.disconnect();
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.stats_mut().connected = true;
            }
            Event::ChannelOpen(id, _) => self.channel = Some(id),
            Event::ChannelData(data) => self.on_data(&data.data),
            Event::RtpPacket(p) => self.on_rtp(p),
            Event::KeyframeRequest(req) => {
                self.stats_mut().keyframe_requests += 1;
                if let Some(v) = self.videos.iter_mut().find(|v| v.mid == req.mid) {
                    for layer in v
                        .layers
                        .iter_mut()
                        .filter(|l| req.rid.is_none() || l.rid == req.rid)
                    {
                        layer.force_keyframe = true;
                    }
                }
            }
            Event::MediaAdded(m) if m.direction == Direction::RecvOnly => {
                let stream_id = self
                    .rtc
                    .media(m.mid)
                    .map(|media| media.stream_id().to_string())
                    .unwrap_or_default();
                // The msid holds the identity reduced to token characters; map
                // it back to the participant's real name when we know it.
                let identity = self
                    .participants
                    .iter()
                    .find(|p| msid_token(p) == stream_id)
                    .cloned()
                    .unwrap_or(stream_id);
                if !self
                    .dec_keys
                    .contains(keys::key_id(&identity, self.config.epoch))
                {
                    match keys::shared_decryption_key(
                        &self.config.secret,
                        &identity,
                        self.config.epoch,
                    ) {
                        Ok(k) => {
                            self.key_owners.insert(k.key_id(), identity.clone());
                            self.dec_keys.insert(k);
                        }
                        Err(e) => warn!("no key for {identity}: {e}"),
                    }
                }
                // The SFU names remote tracks `<publisher>.<publisher's track id>`.
                let track = self
                    .rtc
                    .media(m.mid)
                    .map(|media| media.track_id().to_string())
                    .unwrap_or_default();
                let label = match (m.kind, track.rsplit('.').next()) {
                    (MediaKind::Audio, _) => "audio",
                    (MediaKind::Video, Some("screen")) => "screen",
                    (MediaKind::Video, _) => "video",
                };
                let receiver = Receiver {
                    stats_key: (identity, label),
                    stats_index: None,
                    kind: m.kind,
                    depacketizer: Depacketizer::default(),
                    tally: Tally::default(),
                    key: None,
                };
                // A replaced track's counts go out before it does.
                self.publish_stats();
                match self.receivers.iter_mut().find(|(mid, _)| *mid == m.mid) {
                    Some((_, old)) => *old = receiver,
                    None => self.receivers.push((m.mid, receiver)),
                }
            }
            _ => {}
        }
    }

    fn on_rtp(&mut self, packet: RtpPacket) {
        let ssrc = packet.header.ssrc;
        let cached = match self.last_receiver {
            Some((s, index)) if s == ssrc => Some(index),
            _ => self
                .receiver_by_ssrc
                .iter()
                .find(|(s, _)| *s == ssrc)
                .map(|&(_, index)| index),
        };
        let index = match cached {
            Some(index) => index,
            None => {
                let Some(mid) = self.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()) else {
                    return;
                };
                let Some(index) = self.receivers.iter().position(|(m, _)| *m == mid) else {
                    return;
                };
                // A handful of tracks; a peer that cycles SSRCs only
                // restarts the cache.
                if self.receiver_by_ssrc.len() >= 32 {
                    self.receiver_by_ssrc.clear();
                }
                self.receiver_by_ssrc.push((ssrc, index));
                index
            }
        };
        self.last_receiver = Some((ssrc, index));
        let Some((_, receiver)) = self.receivers.get_mut(index) else {
            return;
        };
        let (start, data) = match receiver.kind {
            // The VP8 payload descriptor: one byte from Veil's clients,
            // longer (picture id…) from browsers.
            MediaKind::Video => match Vp8Descriptor::parse(&packet.payload) {
                Ok(d) => (d.start_of_frame, &packet.payload[d.len..]),
                Err(_) => return,
            },
            MediaKind::Audio => (true, &packet.payload[..]),
        };
        let end = receiver.kind == MediaKind::Audio || packet.header.marker;
        let frame =
            receiver
                .depacketizer
                .push(*packet.seq_no, packet.header.timestamp, start, end, data);
        self.stats_due
            .get_or_insert_with(|| Instant::now() + STATS_EVERY);
        let tally = &mut receiver.tally;
        tally.packets += 1;
        if DependencyDescriptorBytes::of(&packet.header.ext_vals).is_some() {
            tally.packets_with_dependency_descriptor += 1;
        }
        let publish = tally.packets >= TALLY_PACKETS;
        self.on_frame(index, frame.as_deref());
        if publish {
            self.publish_stats();
        }
    }

    /// Decrypts and checks the frame a packet of receiver `index` completed,
    /// if it completed one.
    fn on_frame(&mut self, index: usize, frame: Option<&[u8]>) {
        let Some((_, receiver)) = self.receivers.get_mut(index) else {
            return;
        };
        let tally = &mut receiver.tally;
        let Some(frame) = frame else {
            return;
        };
        tally.frames_received += 1;
        if self.config.record_digests
            && let Ok(h) = SframeHeader::parse(frame)
        {
            let digest = Sha256::digest(frame).into();
            self.received_digests.push(((h.key_id, h.counter), digest));
        }
        let Ok(view) = EncryptedFrameView::try_new(frame) else {
            tally.decrypt_failures += 1;
            return;
        };
        // The track's own key first; a frame under another key id fails
        // that lookup before any decryption and goes to the ring.
        let mut decrypted = match &receiver.key {
            Some(key) => view.decrypt(&**key),
            None => view.decrypt(&self.dec_keys),
        };
        if decrypted.is_err() && receiver.key.is_some() {
            decrypted = view.decrypt(&self.dec_keys);
        }
        // A key id we have no key for may be a sender's next epoch: only
        // then is it worth parsing the header and deriving.
        if decrypted.is_err()
            && learn_rotated_key(
                &mut self.dec_keys,
                &mut self.key_owners,
                &self.config.secret,
                frame,
            )
        {
            decrypted = view.decrypt(&self.dec_keys);
        }
        let Ok(plain) = decrypted else {
            receiver.tally.decrypt_failures += 1;
            return;
        };
        let key_id = view.header().key_id();
        if receiver.key.as_ref().is_none_or(|k| k.key_id() != key_id) {
            receiver.key = self.dec_keys.shared(key_id).cloned();
        }
        self.first_frame_at.get_or_insert_with(Instant::now);
        let tally = &mut receiver.tally;
        tally.frames_decrypted += 1;
        // Frames from Veil's own clients describe themselves; a browser's
        // are real codec frames, counted as decrypted only.
        let Some(info) = FrameInfo::decode(plain.payload()) else {
            tally.opaque_frames += 1;
            return;
        };
        let layer = info.layer.min(2);
        tally.frames_per_layer[usize::from(layer)] += 1;
        tally.last_layer = Some(info.layer);
        let now_us = unix_micros();
        tally.push(FrameSample {
            sequence: info.sequence,
            layer,
            latency_us: now_us.saturating_sub(info.sent_at_us),
            received_at_us: now_us,
        });
    }

    /// Adds what the session received since the last call to the shared
    /// [`ClientStats`]: one lock every few packets instead of one per packet.
    fn publish_stats(&mut self) {
        self.stats_due = None;
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.udp_datagrams_in += std::mem::take(&mut self.datagrams_in);
        stats.media_datagrams_sunk += std::mem::take(&mut self.sunk);
        if stats.first_frame_at.is_none() {
            stats.first_frame_at = self.first_frame_at;
        }
        if !self.received_digests.is_empty() {
            let room = MAX_DIGESTS.saturating_sub(stats.received_digests.len());
            let digests = self.received_digests.drain(..);
            stats.received_digests.extend(digests.take(room));
        }
        for (_, receiver) in &mut self.receivers {
            if receiver.tally.packets == 0 {
                continue;
            }
            // The track's entry is found by key once, then by its index:
            // the entries are never removed, so the index stays valid.
            let index = match receiver.stats_index {
                Some(index) if index < stats.remote.len() => index,
                _ => {
                    let entry = stats.remote.entry(receiver.stats_key.clone());
                    let index = entry.index();
                    entry.or_default();
                    receiver.stats_index = Some(index);
                    index
                }
            };
            let late = receiver.depacketizer.late_packets;
            receiver.tally.publish_into(&mut stats.remote[index], late);
        }
    }

    fn set_epoch(&mut self, epoch: u64) {
        match keys::encryption_key(&self.config.secret, &self.config.identity, epoch) {
            Ok(key) => {
                self.enc_key = key;
                self.config.epoch = epoch;
            }
            Err(e) => warn!("cannot rotate to epoch {epoch}: {e}"),
        }
    }

    fn send_data(&mut self, plain: &[u8]) {
        if self.channel.is_none() {
            warn!("data channel not open yet; message not sent");
            return;
        }
        let Some(encrypted) = self.encrypt(plain) else {
            return;
        };
        self.data_queue.push_back(encrypted);
        self.flush_data();
    }

    /// Writes queued messages, in order, while SCTP has room for them.
    fn flush_data(&mut self) {
        let Some(mut channel) = self.channel.and_then(|id| self.rtc.channel(id)) else {
            return;
        };
        while let Some(next) = self.data_queue.front() {
            if let Ok(false) = channel.write(true, next) {
                return;
            }
            self.data_queue.pop_front();
        }
    }

    /// A relayed message: `[len][sender identity][SFrame ciphertext]`.
    fn on_data(&mut self, framed: &[u8]) {
        let Some((&len, rest)) = framed.split_first() else {
            return;
        };
        let Some((label, ciphertext)) = rest.split_at_checked(len as usize) else {
            return;
        };
        let label = String::from_utf8_lossy(label).into_owned();
        learn_rotated_key(
            &mut self.dec_keys,
            &mut self.key_owners,
            &self.config.secret,
            ciphertext,
        );
        let decrypted =
            EncryptedFrameView::try_new(&ciphertext).and_then(|f| f.decrypt(&self.dec_keys));
        let owner = SframeHeader::parse(ciphertext)
            .ok()
            .and_then(|h| self.key_owners.get(&h.key_id).cloned());
        let mut stats = self.stats_mut();
        match (decrypted, owner) {
            (Ok(plain), Some(owner)) => {
                stats
                    .messages
                    .push((label, owner, plain.payload().to_vec()))
            }
            _ => stats.message_failures += 1,
        }
    }

    fn send_media(&mut self, now: Instant) {
        // Like a browser, send nothing before ICE and DTLS are up: frames
        // queued meanwhile would arrive seconds late and skew latency.
        if !self.connected {
            return;
        }
        if self.audio.is_some() && now >= self.next_audio {
            self.send_audio(now);
            self.next_audio += AUDIO_FRAME;
            if self.next_audio < now {
                let behind = now - self.next_audio;
                let missed = behind.as_micros() / AUDIO_FRAME.as_micros() + 1;
                self.stats_mut().frames_skipped += missed as u64;
                self.next_audio = now + AUDIO_FRAME;
            }
        }
        for index in 0..self.videos.len() {
            self.release_paced(index, now);
            let v = &self.videos[index];
            if now < v.next_frame {
                continue;
            }
            let (layers, max_layer, period) = (v.layers.len(), v.max_layer, v.period());
            for layer in 0..layers {
                if max_layer.is_some_and(|m| layer as u8 <= m) {
                    self.send_video(index, layer, now);
                }
            }
            let sending = (0..layers)
                .filter(|l| max_layer.is_some_and(|m| *l as u8 <= m))
                .count() as u128;
            let v = &mut self.videos[index];
            v.next_frame += period;
            if v.next_frame < now {
                let missed = (now - v.next_frame).as_micros() / period.as_micros().max(1) + 1;
                v.next_frame = now + period;
                self.stats_mut().frames_skipped += (missed * sending) as u64;
            }
            self.release_paced(index, now);
        }
    }

    /// Writes the paced packets of video sender `index` whose turn has come.
    fn release_paced(&mut self, index: usize, now: Instant) {
        let Some(v) = self.videos.get_mut(index) else {
            return;
        };
        let mid = v.mid;
        let Some(pacer) = v.pacer.as_mut() else {
            return;
        };
        while let Some((rid, write)) = pacer.pop_due(now) {
            if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, rid) {
                stream.write_rtp(write);
            }
        }
    }

    fn encrypt(&mut self, plain: &[u8]) -> Option<Vec<u8>> {
        // The counter advances under the stats lock, so `stop_sending` reads
        // a final value.
        let stats = self.stats.clone();
        let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
        if stats.sending_stopped {
            return None;
        }
        let frame = MediaFrameView::try_new(&mut self.counter, &plain).ok()?;
        let encrypted = frame.encrypt(&self.enc_key).ok()?;
        let bytes = encrypted.as_ref().to_vec();
        stats.frames_sent += 1;
        stats.next_counter = self.counter.current();
        if self.config.record_digests && stats.sent_digests.len() < MAX_DIGESTS {
            let h = encrypted.header();
            stats
                .sent_digests
                .insert((h.key_id(), h.counter()), Sha256::digest(&bytes).into());
        }
        Some(bytes)
    }

    fn send_audio(&mut self, now: Instant) {
        let Some(mid) = self.audio.as_ref().map(|a| a.mid) else {
            return;
        };
        let Some(pt) = self
            .audio
            .as_mut()
            .and_then(|a| payload_type(&self.rtc, &mut a.pt, mid, Codec::Opus))
        else {
            return;
        };
        let Some(a) = self.audio.as_mut() else { return };
        let info = FrameInfo {
            sequence: a.frame,
            sent_at_us: unix_micros(),
            layer: 0,
            keyframe: false,
        };
        a.frame += 1;
        let next = a.frame;
        self.stats_mut().next_frames.0 = next;
        let plain = info.encode(80);
        let Some(payload) = self.encrypt(&plain) else {
            return;
        };
        let Some(a) = self.audio.as_mut() else { return };
        let seq = a.seq;
        a.seq += 1;
        let ts = (now.saturating_duration_since(self.started).as_micros() * 48 / 1000) as u32;
        let ext = ExtensionValues {
            audio_level: Some(-(self.audio_level.min(127) as i8)),
            voice_activity: Some(self.audio_level < 70),
            ..Default::default()
        };
        let write = RtpWrite::new(pt, seq.into(), ts, now, payload).ext_vals(ext);
        if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            stream.write_rtp(write);
        }
    }

    fn send_video(&mut self, index: usize, layer: usize, now: Instant) {
        let Some(sender) = self.videos.get_mut(index) else {
            return;
        };
        let (mid, video) = (sender.mid, sender.config.clone());
        let Some(pt) = payload_type(&self.rtc, &mut sender.pt, mid, Codec::Vp8) else {
            return;
        };
        let Some(l) = sender.layers.get_mut(layer) else {
            return;
        };
        let keyframe = l.force_keyframe
            || l.last_keyframe
                .is_none_or(|t| now.saturating_duration_since(t) >= video.keyframe_interval);
        if keyframe {
            l.force_keyframe = false;
            l.last_keyframe = Some(now);
        }
        let info = FrameInfo {
            sequence: l.frame,
            sent_at_us: unix_micros(),
            layer: layer as u8,
            keyframe,
        };
        l.frame += 1;
        let next = l.frame;
        let frame_number = info.sequence as u16;
        let rid = l.rid;
        let camera = sender.label == "video";
        {
            let mut stats = self.stats_mut();
            stats.video_frames_sent[layer.min(2)] += 1;
            if camera && layer < 3 {
                stats.next_frames.1[layer] = next;
            }
        }
        let plain = info.encode(video.frame_bytes[layer.min(2)]);
        let Some(encrypted) = self.encrypt(&plain) else {
            return;
        };
        let ts = (now.saturating_duration_since(self.started).as_micros() * 90 / 1000) as u32;
        let chunks: Vec<&[u8]> = encrypted.chunks(MAX_CHUNK).collect();
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let (start, end) = (i == 0, i + 1 == count);
            let mut payload = Vec::with_capacity(chunk.len() + 1);
            payload.push(if start { 0x10 } else { 0x00 });
            payload.extend_from_slice(chunk);
            let mut dd = [0u8; 6];
            let n = write_single_layer(&mut dd, start, end, frame_number, keyframe && start);
            let mut ext = ExtensionValues::default();
            if let Some(bytes) = DependencyDescriptorBytes::new(&dd[..n]) {
                ext.user_values.set(bytes);
            }
            let Some(l) = self
                .videos
                .get_mut(index)
                .and_then(|v| v.layers.get_mut(layer))
            else {
                return;
            };
            let seq = l.seq;
            l.seq += 1;
            let bytes = payload.len();
            let write = RtpWrite::new(pt, seq.into(), ts, now, payload)
                .marker(end)
                .ext_vals(ext)
                .nackable(true);
            if let Some(pacer) = self.videos.get_mut(index).and_then(|v| v.pacer.as_mut()) {
                pacer.push(rid, write, bytes);
                continue;
            }
            match self.rtc.direct_api().stream_tx_by_mid(mid, rid) {
                Some(stream) => stream.write_rtp(write),
                None => {
                    tracing::trace!(?rid, "no send stream for video layer");
                    return;
                }
            }
        }
    }
}

/// A key id we have no key for may be a known sender's next epoch (the low
/// byte of a key id is its epoch): derive that key, and remember whose it is.
/// Returns whether it learned a key.
fn learn_rotated_key(
    dec_keys: &mut KeyRing,
    key_owners: &mut HashMap<u64, String>,
    secret: &RoomSecret,
    frame: &[u8],
) -> bool {
    let Ok(header) = SframeHeader::parse(frame) else {
        return false;
    };
    if dec_keys.contains(header.key_id) {
        return false;
    }
    let epoch = header.key_id & 0xff;
    let owner = key_owners
        .values()
        .find(|identity| keys::key_id(identity, epoch) == header.key_id)
        .cloned();
    if let Some(identity) = owner
        && let Ok(key) = keys::shared_decryption_key(secret, &identity, epoch)
    {
        key_owners.insert(key.key_id(), identity);
        dec_keys.insert(key);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use str0m::media::Pt;
    use str0m::rtp::RtpWrite;

    use super::{FrameSample, Pacer, RemoteTrackStats, TALLY_PACKETS, Tally, VideoConfig, is_rtp};

    #[test]
    fn a_pacer_spreads_a_frame_at_its_rate_and_banks_no_quiet_time() {
        // 1,000-byte frames at 10 frames/s paced at 2×: 20,000 bytes/s, so
        // a 1,000-byte packet takes 50 ms of the pacer's time.
        let config = VideoConfig {
            simulcast: false,
            fps: 10,
            frame_bytes: [1_000, 0, 0],
            pacing: Some(2.0),
            ..VideoConfig::default()
        };
        let start = Instant::now();
        let mut pacer = Pacer::new(&config, 2.0, start);
        assert_eq!(pacer.next_due(), None, "nothing queued, nothing due");
        let write = |seq: u64| RtpWrite::new(Pt::from(96), seq.into(), 0, start, vec![0_u8; 1_000]);
        for seq in 0..4 {
            pacer.push(None, write(seq), 1_000);
        }
        let ms = |n| start + Duration::from_millis(n);
        let mut sent_at = Vec::new();
        for t in (0..=200).step_by(5) {
            while pacer.pop_due(ms(t)).is_some() {
                sent_at.push(t);
            }
        }
        assert_eq!(
            sent_at,
            [0, 50, 100, 150],
            "one packet per 50 ms, not a burst"
        );
        assert_eq!(pacer.next_due(), None);

        // After a quiet second, the next frame is paced again: the pause
        // earns at most a millisecond of credit, not a burst.
        for seq in 4..7 {
            pacer.push(None, write(seq), 1_000);
        }
        let mut sent = 0;
        while pacer.pop_due(ms(1_200)).is_some() {
            sent += 1;
        }
        assert_eq!(
            sent, 1,
            "only the first packet of the new frame goes at once"
        );
        let due = pacer.next_due().expect("two packets wait");
        assert!(due > ms(1_240) && due <= ms(1_250), "{:?}", due - start);
    }

    #[test]
    fn a_drain_splits_samples_by_figure_and_layer_and_keeps_the_capacity() {
        let sample = |sequence, layer, latency_us| FrameSample {
            sequence,
            layer,
            latency_us,
            received_at_us: 1_000 + latency_us,
        };
        let mut track = RemoteTrackStats {
            samples: vec![sample(7, 0, 10), sample(3, 2, 20), sample(8, 0, 30)],
            ..Default::default()
        };
        assert_eq!(track.sequences(0).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(track.sequences(2).collect::<Vec<_>>(), vec![3]);
        assert_eq!(track.sequences(1).count(), 0);

        let drained = track.drain_samples("alice", "video");
        assert_eq!(drained.identity, "alice");
        assert_eq!(drained.kind, "video");
        assert_eq!(drained.latencies_us, vec![10, 20, 30]);
        assert_eq!(drained.received_at_us, vec![1_010, 1_020, 1_030]);
        assert_eq!(drained.sequences, [vec![7, 8], vec![], vec![3]]);
        assert!(track.samples.is_empty());
        assert!(track.samples.capacity() >= 3);
        assert!(
            track
                .drain_samples("alice", "video")
                .latencies_us
                .is_empty()
        );
    }

    #[test]
    fn a_tally_adds_its_counts_moves_its_samples_and_starts_over() {
        let sample = |sequence| FrameSample {
            sequence,
            layer: 1,
            latency_us: 100 + u64::from(sequence),
            received_at_us: 5_000,
        };
        let mut remote = RemoteTrackStats {
            packets: 10,
            frames_decrypted: 4,
            frames_per_layer: [1, 3, 0],
            last_layer: Some(2),
            samples: vec![sample(1)],
            ..Default::default()
        };
        let mut tally = Tally {
            packets: 3,
            packets_with_dependency_descriptor: 2,
            frames_received: 3,
            frames_decrypted: 2,
            decrypt_failures: 1,
            frames_per_layer: [0, 2, 0],
            last_layer: Some(1),
            ..Default::default()
        };
        tally.push(sample(2));
        tally.push(sample(3));
        tally.publish_into(&mut remote, 7);
        assert_eq!(remote.packets, 13);
        assert_eq!(remote.packets_with_dependency_descriptor, 2);
        assert_eq!(remote.frames_received, 3);
        assert_eq!(remote.frames_decrypted, 6);
        assert_eq!(remote.decrypt_failures, 1);
        assert_eq!(remote.frames_per_layer, [1, 5, 0]);
        assert_eq!(remote.last_layer, Some(1));
        assert_eq!(remote.late_packets, 7);
        let sequences: Vec<u32> = remote.samples.iter().map(|s| s.sequence).collect();
        assert_eq!(sequences, [1, 2, 3], "appended in arrival order");
        // Published twice, nothing counts twice; a quiet track keeps its
        // last layer.
        tally.publish_into(&mut remote, 7);
        assert_eq!((remote.packets, remote.frames_decrypted), (13, 6));
        assert_eq!(remote.samples.len(), 3);
        assert_eq!(remote.last_layer, Some(1));
        // It holds a sample for each packet before it must publish.
        for i in 0..TALLY_PACKETS {
            tally.push(sample(10 + i));
        }
        tally.publish_into(&mut remote, 8);
        assert_eq!(remote.samples.len(), 3 + TALLY_PACKETS as usize);
        assert_eq!(
            remote.samples.last().unwrap().sequence,
            10 + TALLY_PACKETS - 1
        );
    }

    #[test]
    fn rtp_is_told_from_rtcp_stun_and_dtls() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x90; // version 2, extension bit
        for pt in [0u8, 8, 96, 111, 127] {
            rtp[1] = pt;
            assert!(is_rtp(&rtp), "pt {pt}");
            rtp[1] = pt | 0x80; // marker
            assert!(is_rtp(&rtp), "pt {pt} with marker");
        }
        let mut rtcp = [0u8; 12];
        rtcp[0] = 0x80;
        for pt in [200u8, 201, 202, 205, 206] {
            rtcp[1] = pt;
            assert!(!is_rtp(&rtcp), "rtcp {pt}");
        }
        let stun = [0x00u8, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0];
        assert!(!is_rtp(&stun));
        let dtls = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(!is_rtp(&dtls));
        assert!(!is_rtp(&rtp[..11]), "shorter than an RTP header");
    }
}
