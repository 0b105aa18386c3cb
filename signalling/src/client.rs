//! A Rust participant that speaks the signalling protocol and keeps its
//! call alive: the SDK the tests and the load tester share.
//!
//! [`Connection::connect`] joins a room through one of several signalling
//! replicas and runs a [`veil_client::Client`] for the media. After that it
//! repairs what breaks, the way a browser client does:
//!
//! * **The signalling socket drops** (network blip, replica crash): it
//!   resumes on the next replica in [`ConnectOptions::servers`] with the
//!   `resume` secret. Media never stopped: it does not pass through
//!   signalling.
//! * **The SFU node is lost or drains** ([`ParticipantEvent::NodeLost`],
//!   [`ParticipantEvent::NodeDraining`], or a resume the server can no
//!   longer honour): it joins again, which lands the room on a live node,
//!   and starts a new media session whose SFrame counter continues where
//!   the old one stopped, so no nonce repeats under the same key.
//!
//! ```no_run
//! # async fn demo(token: String) -> Result<(), signalling::client::ConnectError> {
//! use signalling::client::{ConnectOptions, Connection};
//! use veil_client::{ClientConfig, RoomSecret};
//!
//! let secret = RoomSecret::from_passphrase("standup", "correct horse");
//! let config = ClientConfig::new("alice", "standup", secret);
//! let servers = vec!["ws://127.0.0.1:8080/ws".to_string()];
//! let call = Connection::connect(ConnectOptions::new(servers, token, config)).await?;
//! call.relay(None, "opaque-e2ee-payload").await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sfu::ParticipantEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info};
use veil_client::{Client, ClientConfig, ClientStats, FromServer, RemoteSamples, ToServer};

use crate::protocol::{ClientMessage, ServerMessage, VERSION};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How to reach the room.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Signalling WebSocket URLs (`ws://host:port/ws`), tried in turn.
    pub servers: Vec<String>,
    /// Access token for the room.
    pub token: String,
    /// The media participant.
    pub config: ClientConfig,
    /// How long to keep trying to get back into the call before giving up.
    pub reconnect_window: Duration,
    /// How often to send `ping` to the server.
    pub heartbeat: Duration,
    /// Silence from the server after which the socket counts as dropped and
    /// the session is resumed on a new one. Longer than the server's own
    /// idle timeout (45 s), so the server has let go of the dead socket by
    /// the time the resume arrives.
    pub idle_timeout: Duration,
    /// Join to receive audio only (see `ClientMessage::Join`); kept when
    /// the call moves to another node.
    pub audio_only: bool,
}

impl ConnectOptions {
    /// Options with a 30 s reconnect window, a ping every 15 s, a 60 s
    /// idle timeout, and video received.
    pub fn new(servers: Vec<String>, token: String, config: ClientConfig) -> Self {
        ConnectOptions {
            servers,
            token,
            config,
            reconnect_window: Duration::from_secs(30),
            heartbeat: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            audio_only: false,
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No server accepted the connection.
    #[error("cannot reach any signalling server: {0}")]
    Unreachable(String),
    /// The server refused the join (`code` as in the protocol's errors).
    #[error("join refused: {code}: {message}")]
    Refused {
        /// Machine-readable code (`unauthorized`, `room_full`, ...).
        code: String,
        /// For people.
        message: String,
    },
    /// The local media session could not start.
    #[error("media: {0}")]
    Media(#[from] veil_client::session::ClientError),
}

/// Locks, shrugging off poisoning (the data stays usable).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What happened to a connection so far.
#[derive(Debug, Clone, Default)]
pub struct ConnectionStats {
    /// Sockets resumed after a drop (same media session).
    pub resumes: u64,
    /// New media sessions after the node was lost or drained.
    pub rejoins: u64,
    /// When the latest rejoin finished, measured from the moment the
    /// connection learnt it had to rejoin.
    pub last_rejoin: Option<Duration>,
    /// Relayed messages received: (sender, payload).
    pub relays: Vec<(String, String)>,
    /// Display names of the others, from their tokens (as the server said).
    pub names: HashMap<String, String>,
    /// Index into [`ConnectOptions::servers`] of the replica in use.
    pub server: usize,
    /// Why the connection ended for good, if it did.
    pub closed: Option<String>,
}

/// Counters summed over a connection's media sessions (see
/// [`Connection::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTotals {
    /// Frames encrypted and sent.
    pub frames_sent: u64,
    /// Frames due but not sent: the client fell behind its clock.
    pub frames_skipped: u64,
    /// Frames received that decrypted.
    pub frames_decrypted: u64,
    /// Frames received that did not decrypt.
    pub decrypt_failures: u64,
    /// RTP packets received.
    pub packets_in: u64,
    /// Packets that filled a gap (NACK recoveries).
    pub late_packets: u64,
}

impl SessionTotals {
    fn of(stats: &ClientStats) -> SessionTotals {
        let mut t = SessionTotals {
            frames_sent: stats.frames_sent,
            frames_skipped: stats.frames_skipped,
            ..SessionTotals::default()
        };
        for r in stats.remote.values() {
            t.frames_decrypted += r.frames_decrypted;
            t.decrypt_failures += r.decrypt_failures;
            t.packets_in += r.packets;
            t.late_packets += r.late_packets;
        }
        t
    }

    fn add(&mut self, other: SessionTotals) {
        self.frames_sent += other.frames_sent;
        self.frames_skipped += other.frames_skipped;
        self.frames_decrypted += other.frames_decrypted;
        self.decrypt_failures += other.decrypt_failures;
        self.packets_in += other.packets_in;
        self.late_packets += other.late_packets;
    }
}

/// What the media sessions that a rejoin replaced measured and nobody read
/// yet, so that a rejoin loses no measurement.
#[derive(Default)]
struct Carried {
    samples: Vec<RemoteSamples>,
    totals: SessionTotals,
}

struct Shared {
    client: Mutex<Client>,
    stats: Mutex<ConnectionStats>,
    generation: AtomicU64,
    carried: Mutex<Carried>,
}

/// A participant in a room, kept connected. Dropping it leaves.
pub struct Connection {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<ClientMessage>,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connection {
    /// Joins through the first server that answers.
    pub async fn connect(options: ConnectOptions) -> Result<Connection, ConnectError> {
        let (session, server) = join_any(&options, 0).await?;
        let (outgoing, outgoing_rx) = mpsc::channel(256);
        let shared = Arc::new(Shared {
            client: Mutex::new(session.client),
            stats: Mutex::new(ConnectionStats {
                server,
                ..ConnectionStats::default()
            }),
            generation: AtomicU64::new(0),
            carried: Mutex::default(),
        });
        let driver = Driver {
            options,
            shared: shared.clone(),
            ws: session.ws,
            resume: session.resume,
            to_client: session.to_client,
            from_client: session.from_client,
            outgoing: outgoing_rx,
            server,
        };
        let task = tokio::spawn(driver.run());
        Ok(Connection {
            shared,
            outgoing,
            task,
        })
    }

    /// Reads the current media session's counters.
    pub fn with_stats<T>(&self, f: impl FnOnce(&ClientStats) -> T) -> T {
        self.with_client(|c| c.with_stats(f))
    }

    /// Runs `f` on the current media session (it changes on a rejoin).
    pub fn with_client<T>(&self, f: impl FnOnce(&Client) -> T) -> T {
        f(&self.shared.client.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Per-frame samples since the last call, from every media session of
    /// this connection (a rejoin keeps the old session's unread ones).
    pub fn drain_samples(&self) -> Vec<RemoteSamples> {
        let mut samples = std::mem::take(&mut lock(&self.shared.carried).samples);
        samples.extend(self.with_client(|c| c.drain_samples()));
        samples
    }

    /// Counters over every media session of this connection so far.
    pub fn totals(&self) -> SessionTotals {
        let mut totals = lock(&self.shared.carried).totals;
        totals.add(self.with_stats(SessionTotals::of));
        totals
    }

    /// Counts a new media session each time the connection rejoins.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Relaxed)
    }

    /// Resumes, rejoins, relays received and the like.
    pub fn stats(&self) -> ConnectionStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends any protocol message (subscribe, layer, ping...).
    pub async fn send(&self, message: ClientMessage) {
        let _ = self.outgoing.send(message).await;
    }

    /// Relays an opaque payload to one participant or, with `None`, the room.
    pub async fn relay(&self, to: Option<&str>, payload: &str) {
        self.send(ClientMessage::Relay {
            to: to.map(str::to_string),
            payload: payload.to_string(),
        })
        .await;
    }

    /// Leaves the room and waits for the socket to close.
    pub async fn leave(mut self) {
        let _ = self.outgoing.send(ClientMessage::Leave).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }
}

/// A fresh media session joined over a fresh socket.
struct Session {
    ws: Ws,
    client: Client,
    resume: String,
    to_client: mpsc::Sender<FromServer>,
    from_client: mpsc::Receiver<ToServer>,
}

async fn send(ws: &mut Ws, message: &ClientMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => ws.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn next(ws: &mut Ws) -> Option<ServerMessage> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                Ok(message) => return Some(message),
                Err(e) => debug!("unreadable server message: {e}"),
            },
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn open(url: &str) -> Result<Ws, String> {
    let config = WebSocketConfig::default().read_buffer_size(crate::protocol::WS_READ_BUFFER_BYTES);
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!("{url}: timed out")),
    }
}

/// Joins through the servers in turn, starting at `first`; returns the
/// session and the index of the server that took it.
async fn join_any(
    options: &ConnectOptions,
    first: usize,
) -> Result<(Session, usize), ConnectError> {
    let mut last = String::from("no servers given");
    for i in 0..options.servers.len() {
        let index = (first + i) % options.servers.len();
        match join_one(&options.servers[index], options).await {
            Ok(session) => return Ok((session, index)),
            Err(ConnectError::Unreachable(e)) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(ConnectError::Unreachable(last))
}

async fn join_one(url: &str, options: &ConnectOptions) -> Result<Session, ConnectError> {
    let (pending, offer) = Client::prepare(options.config.clone())?;
    let mut ws = open(url).await.map_err(ConnectError::Unreachable)?;
    let join = ClientMessage::Join {
        v: VERSION,
        token: Some(options.token.clone()),
        offer,
        audio_only: options.audio_only,
    };
    if !send(&mut ws, &join).await {
        return Err(ConnectError::Unreachable(format!("{url}: closed")));
    }
    let (answer, resume) = match next(&mut ws).await {
        Some(ServerMessage::Joined { answer, resume, .. }) => (answer, resume),
        Some(ServerMessage::Error { code, message, .. }) => {
            // A node that just died is "unavailable" until the registry
            // notices; that is worth another try, the rest is final.
            return Err(if code == "sfu_unavailable" {
                ConnectError::Unreachable(format!("{url}: {message}"))
            } else {
                ConnectError::Refused { code, message }
            });
        }
        other => {
            return Err(ConnectError::Unreachable(format!(
                "{url}: closed before joining ({other:?})"
            )));
        }
    };
    let (to_client, from_server) = mpsc::channel(64);
    let (to_server, from_client) = mpsc::channel(64);
    let client = pending.start(answer, from_server, to_server)?;
    Ok(Session {
        ws,
        client,
        resume,
        to_client,
        from_client,
    })
}

/// What the driver does after the current socket ends.
enum Next {
    /// Pick the same media session up on another socket.
    Resume,
    /// Start a new media session (the old one is gone).
    Rejoin,
    /// Stop for good.
    Close(String),
}

struct Driver {
    options: ConnectOptions,
    shared: Arc<Shared>,
    ws: Ws,
    resume: String,
    to_client: mpsc::Sender<FromServer>,
    from_client: mpsc::Receiver<ToServer>,
    outgoing: mpsc::Receiver<ClientMessage>,
    server: usize,
}

impl Driver {
    async fn run(mut self) {
        loop {
            let outcome = match self.pump().await {
                Next::Close(reason) => Err(reason),
                Next::Resume => match self.resume().await {
                    Ok(()) => Ok(()),
                    Err(Next::Rejoin) => self.rejoin().await,
                    Err(Next::Close(reason)) => Err(reason),
                    Err(Next::Resume) => unreachable!("resume() never asks to resume"),
                },
                Next::Rejoin => self.rejoin().await,
            };
            if let Err(reason) = outcome {
                info!(%reason, "signalling connection closed");
                self.stats(|s| s.closed = Some(reason));
                return;
            }
        }
    }

    fn stats(&self, f: impl FnOnce(&mut ConnectionStats)) {
        f(&mut self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Relays between the socket, the media session and the application
    /// until the socket ends; says what to do next.
    async fn pump(&mut self) -> Next {
        let mut fatal: Option<String> = None;
        let every = self.options.heartbeat;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > self.options.idle_timeout {
                        info!("the signalling socket went silent; resuming on a new one");
                        return Next::Resume;
                    }
                    if !send(&mut self.ws, &ClientMessage::Ping).await {
                        return Next::Resume;
                    }
                }
                message = next(&mut self.ws) => {
                    last_heard = Instant::now();
                    let Some(message) = message else {
                        return match fatal {
                            Some(code) if code == "node_lost" => Next::Rejoin,
                            Some(code) => Next::Close(code),
                            None => Next::Resume,
                        };
                    };
                    match message {
                        ServerMessage::Event { event } => {
                            if let ParticipantEvent::ParticipantJoined { participant, name: Some(name), .. } = &event {
                                let (who, name) = (participant.clone(), name.clone());
                                self.stats(|s| {
                                    s.names.insert(who, name);
                                });
                            }
                            let then = match &event {
                                ParticipantEvent::NodeDraining | ParticipantEvent::NodeLost { .. } => Some(Next::Rejoin),
                                ParticipantEvent::Disconnected { rejoin: true, .. } => Some(Next::Rejoin),
                                ParticipantEvent::Disconnected { reason, .. } => Some(Next::Close(reason.clone())),
                                _ => None,
                            };
                            if let Some(f) = from_server(event) {
                                let _ = self.to_client.send(f).await;
                            }
                            if let Some(then) = then {
                                return then;
                            }
                        }
                        ServerMessage::Answer { answer } => {
                            let _ = self.to_client.send(FromServer::Answer(answer)).await;
                        }
                        ServerMessage::Relay { from, payload } => {
                            self.stats(|s| s.relays.push((from, payload)));
                        }
                        ServerMessage::Error { code, message, fatal: true } => {
                            debug!(%code, %message, "fatal signalling error");
                            fatal = Some(code);
                        }
                        ServerMessage::Error { code, message, .. } => {
                            let _ = self.to_client.send(FromServer::Error(format!("{code}: {message}"))).await;
                        }
                        ServerMessage::Joined { .. } | ServerMessage::Resumed { .. } | ServerMessage::Pong => {}
                    }
                }
                reply = self.from_client.recv() => {
                    let message = match reply {
                        Some(ToServer::Answer(answer)) => ClientMessage::Answer { answer },
                        Some(ToServer::Offer(offer)) => ClientMessage::Offer { offer },
                        None => return Next::Close("the media session ended".into()),
                    };
                    if !send(&mut self.ws, &message).await {
                        return Next::Resume;
                    }
                }
                out = self.outgoing.recv() => {
                    let Some(message) = out else {
                        return Next::Close("the application went away".into());
                    };
                    let leaving = matches!(message, ClientMessage::Leave);
                    let sent = send(&mut self.ws, &message).await;
                    if leaving {
                        let _ = self.ws.close(None).await;
                        return Next::Close("left".into());
                    }
                    if !sent {
                        return Next::Resume;
                    }
                }
            }
        }
    }

    /// Resumes on the next server that answers, for as long as the window
    /// allows. `Err(Rejoin)` when the servers no longer know the session.
    async fn resume(&mut self) -> Result<(), Next> {
        let deadline = Instant::now() + self.options.reconnect_window;
        let mut backoff = Duration::from_millis(50);
        let count = self.options.servers.len();
        let mut attempt = 1;
        while Instant::now() < deadline {
            let index = (self.server + attempt) % count;
            attempt += 1;
            let url = self.options.servers[index].clone();
            match self.resume_on(&url).await {
                Ok(ws) => {
                    self.ws = ws;
                    self.server = index;
                    self.stats(|s| {
                        s.resumes += 1;
                        s.server = index;
                    });
                    info!(%url, "signalling resumed");
                    return Ok(());
                }
                Err(Some(code)) if code == "resume_failed" => return Err(Next::Rejoin),
                Err(Some(code)) => return Err(Next::Close(code)),
                Err(None) => {}
            }
            if attempt % count == 1 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
        Err(Next::Close("could not reach signalling again".into()))
    }

    /// `Err(None)`: unreachable; `Err(Some(code))`: refused.
    async fn resume_on(&self, url: &str) -> Result<Ws, Option<String>> {
        let mut ws = open(url).await.map_err(|_| None)?;
        let message = ClientMessage::Resume {
            v: VERSION,
            token: Some(self.options.token.clone()),
            resume: self.resume.clone(),
        };
        if !send(&mut ws, &message).await {
            return Err(None);
        }
        match next(&mut ws).await {
            Some(ServerMessage::Resumed { .. }) => Ok(ws),
            Some(ServerMessage::Error { code, .. }) => Err(Some(code)),
            _ => Err(None),
        }
    }

    /// A new media session, continuing the SFrame counter.
    async fn rejoin(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let deadline = started + self.options.reconnect_window;
        let mut backoff = Duration::from_millis(100);
        loop {
            let next_counter = self
                .shared
                .client
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stop_sending();
            self.options.config.first_counter = next_counter;
            let (audio, video) = self
                .shared
                .client
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .with_stats(|s| s.next_frames);
            self.options.config.continue_frames = Some(veil_client::session::FrameClock {
                audio,
                video,
                at: Instant::now(),
            });
            match join_any(&self.options, self.server).await {
                Ok((session, server)) => {
                    {
                        let old =
                            std::mem::replace(&mut *lock(&self.shared.client), session.client);
                        let mut carried = lock(&self.shared.carried);
                        carried.samples.extend(old.drain_samples());
                        carried.totals.add(old.with_stats(SessionTotals::of));
                    }
                    self.shared.generation.fetch_add(1, Ordering::Relaxed);
                    // Make before break: the old session (on a draining
                    // node, media still flowing) ends only now, and says so,
                    // so that node need not wait out a resume grace for it.
                    // Read on until the server hangs up: closing first
                    // could fail an event it is sending and make it take
                    // the leave, still unread, for a dropped socket.
                    let mut old_ws = std::mem::replace(&mut self.ws, session.ws);
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        if send(&mut old_ws, &ClientMessage::Leave).await {
                            while next(&mut old_ws).await.is_some() {}
                        }
                    })
                    .await;
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), old_ws.close(None)).await;
                    self.resume = session.resume;
                    self.to_client = session.to_client;
                    self.from_client = session.from_client;
                    self.server = server;
                    let took = started.elapsed();
                    self.stats(|s| {
                        s.rejoins += 1;
                        s.server = server;
                        s.last_rejoin = Some(took);
                    });
                    info!(?took, "rejoined on a new media session");
                    return Ok(());
                }
                Err(ConnectError::Unreachable(e)) if Instant::now() < deadline => {
                    debug!("rejoin failed, retrying: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// The events the media session acts on.
fn from_server(event: ParticipantEvent) -> Option<FromServer> {
    Some(match event {
        ParticipantEvent::Offer { offer } => FromServer::Offer(offer),
        ParticipantEvent::ParticipantJoined { participant, .. } => {
            FromServer::ParticipantJoined(participant)
        }
        ParticipantEvent::ParticipantLeft { participant } => {
            FromServer::ParticipantLeft(participant)
        }
        ParticipantEvent::ActiveSpeakers { speakers } => FromServer::ActiveSpeakers(speakers),
        ParticipantEvent::LayersWanted { track, max_layer } => {
            FromServer::LayersWanted { track, max_layer }
        }
        ParticipantEvent::TrackUnpublished { participant, track } => {
            FromServer::TrackUnpublished { participant, track }
        }
        ParticipantEvent::ConnectionQuality {
            participant,
            quality,
        } => FromServer::ConnectionQuality {
            participant,
            quality: format!("{quality:?}").to_lowercase(),
        },
        ParticipantEvent::Error { message } => FromServer::Error(message),
        ParticipantEvent::NodeDraining => FromServer::Draining,
        ParticipantEvent::Disconnected { reason, .. } => FromServer::Disconnected(reason),
        ParticipantEvent::TrackPublished { .. }
        | ParticipantEvent::TrackMuted { .. }
        | ParticipantEvent::NodeLost { .. } => return None,
    })
}
