//! The HTTP/WebSocket server: `/ws` for clients, health and metrics.
//!
//! One WebSocket per participant carries the [`crate::protocol`]. The server
//! checks the token, joins the participant on the SFU node that hosts the
//! room, relays SDP and SFU events both ways, and relays opaque end-to-end
//! encrypted messages between participants. It never sees media keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use sfu::SfuNode;

use crate::nodes::Nodes;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::auth::{AuthError, Authenticator, Claims};
use crate::protocol::{ClientMessage, MAX_MESSAGE_BYTES, ServerMessage, VERSION};

/// Time a new socket has to send its `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued towards one client before relays to it are dropped.
const OUTBOUND_QUEUE: usize = 256;
/// Per-connection message rate: sustained per second, and burst.
const RATE_PER_SEC: f64 = 50.0;
const RATE_BURST: f64 = 200.0;
/// Default cap on simultaneous WebSockets from one IP address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// Default time a dropped socket's session waits for a resume.
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(30);
/// Malformed messages tolerated before the socket is closed as abusive.
const MAX_BAD_MESSAGES: u32 = 20;

type Outbound = mpsc::Sender<ServerMessage>;
type Presence = Arc<Mutex<HashMap<String, HashMap<String, Outbound>>>>;

/// Shared by every connection.
#[derive(Clone)]
pub struct AppState {
    auth: Arc<Authenticator>,
    sfu: Nodes,
    presence: Presence,
    metrics: Option<PrometheusHandle>,
    /// API key used to mint open-room tokens; `None` disables `POST /token`.
    open_rooms: Option<String>,
    /// Sessions whose socket dropped, waiting to be resumed.
    detached: Arc<Mutex<HashMap<(String, String), Detached>>>,
    /// How long a dropped socket's session waits for a resume.
    resume_grace: Duration,
    /// Open sockets per client IP, and the cap.
    per_ip: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    max_per_ip: usize,
}

/// Holds one of an IP's connection slots; frees it when the socket ends.
struct IpSlot {
    ip: std::net::IpAddr,
    table: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// A session without a socket: its SFU events queue up meanwhile.
struct Detached {
    secret: String,
    events: mpsc::Receiver<sfu::ParticipantEvent>,
}

impl AppState {
    /// State for a server that verifies with `auth` and joins every room on `sfu`.
    pub fn new(auth: Authenticator, sfu: SfuNode, metrics: Option<PrometheusHandle>) -> Self {
        Self::with_nodes(auth, Nodes::Single(sfu), metrics)
    }

    /// State for a server whose rooms live on `nodes` (e.g. [`Nodes::cluster`]).
    pub fn with_nodes(
        auth: Authenticator,
        nodes: Nodes,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        AppState {
            auth: Arc::new(auth),
            sfu: nodes,
            presence: Arc::default(),
            metrics,
            open_rooms: None,
            detached: Arc::default(),
            resume_grace: DEFAULT_RESUME_GRACE,
            per_ip: Arc::default(),
            max_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }

    /// Most simultaneous WebSockets from one IP address.
    pub fn with_max_connections_per_ip(mut self, max: usize) -> Self {
        self.max_per_ip = max;
        self
    }

    fn take_ip_slot(&self, ip: std::net::IpAddr) -> Option<IpSlot> {
        let mut t = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            table: self.per_ip.clone(),
        })
    }

    /// How long a session whose socket dropped waits for a `resume`.
    pub fn with_resume_grace(mut self, grace: Duration) -> Self {
        self.resume_grace = grace;
        self
    }

    /// Lets browsers ask for a token (`POST /token`), minted with `api_key`.
    /// On in dev mode; in production the app's backend mints tokens.
    pub fn with_open_rooms(mut self, api_key: &str) -> Self {
        self.open_rooms = Some(api_key.to_string());
        self
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.auth
    }

    pub(crate) fn sfu(&self) -> &Nodes {
        &self.sfu
    }

    pub(crate) fn open_rooms_key(&self) -> Option<String> {
        self.open_rooms.clone()
    }

    /// Rooms and the identities connected to them through this replica.
    pub(crate) fn presence_snapshot(&self) -> HashMap<String, Vec<String>> {
        let p = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        p.iter()
            .map(|(room, members)| (room.clone(), members.keys().cloned().collect()))
            .collect()
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ws", get(ws))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .route(
            "/readyz",
            get(|| async { Json(serde_json::json!({ "ready": true })) }),
        )
        .route("/metrics", get(metrics))
        .merge(crate::api::routes())
        .with_state(state)
}

async fn index() -> impl IntoResponse {
    Json(serde_json::json!({
        "service": "veil-signalling",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": VERSION,
        "websocket": "/ws",
    }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics {
        Some(handle) => handle.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn ws(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // A token in the URL is checked before upgrading, so a bad one costs an
    // HTTP status and no socket.
    if let Some(token) = &query.token
        && let Err(e) = state.auth.verify(token, None).and_then(require_room)
    {
        metrics::counter!("veil_signalling_auth_failures_total").increment(1);
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        return (status, Json(e)).into_response();
    }
    let Some(slot) = state.take_ip_slot(peer.ip()) else {
        metrics::counter!("veil_signalling_rate_limited_total").increment(1);
        let body = serde_json::json!({ "error": "too_many_connections", "detail": "too many open connections from this address" });
        return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    };
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            session(socket, state, query.token, peer).await;
            drop(slot);
        })
}

fn require_room(claims: Claims) -> Result<Claims, AuthError> {
    if claims.room.is_none() {
        return Err(AuthError::Malformed("the token names no room".into()));
    }
    if !claims.grants.join {
        return Err(AuthError::NotGranted("join"));
    }
    Ok(claims)
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn close(mut socket: WebSocket, code: u16, message: ServerMessage) {
    let reason = match &message {
        ServerMessage::Error { code, .. } => code.clone(),
        _ => String::new(),
    };
    send(&mut socket, &message).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Token bucket for one connection.
struct RateLimit {
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * RATE_PER_SEC;
        self.tokens = (self.tokens + refill).min(RATE_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn session(
    mut socket: WebSocket,
    state: AppState,
    url_token: Option<String>,
    peer: SocketAddr,
) {
    metrics::counter!("veil_signalling_connections_total").increment(1);
    // 1. The join message.
    let first = match tokio::time::timeout(JOIN_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(_) => return,
        Err(_) => {
            close(
                socket,
                4408,
                ServerMessage::error("join_timeout", "no join message in time", true),
            )
            .await;
            return;
        }
    };
    let (token, start) = match serde_json::from_str::<ClientMessage>(&first) {
        Ok(ClientMessage::Join { v, token, offer }) if v == VERSION => {
            (token.or(url_token), Start::Join(offer))
        }
        Ok(ClientMessage::Resume { v, token, resume }) if v == VERSION => {
            (token.or(url_token), Start::Resume(resume))
        }
        Ok(ClientMessage::Join { v, .. } | ClientMessage::Resume { v, .. }) => {
            let m = format!("protocol version {v} is not supported; this server speaks {VERSION}");
            close(
                socket,
                4400,
                ServerMessage::error("unsupported_version", m, true),
            )
            .await;
            return;
        }
        Ok(_) => {
            close(
                socket,
                4400,
                ServerMessage::error(
                    "join_first",
                    "the first message must be a join or resume",
                    true,
                ),
            )
            .await;
            return;
        }
        Err(e) => {
            metrics::counter!("veil_signalling_bad_messages_total").increment(1);
            close(
                socket,
                4400,
                ServerMessage::error("bad_message", format!("unreadable join: {e}"), true),
            )
            .await;
            return;
        }
    };
    let claims = match state
        .auth
        .verify(token.as_deref().unwrap_or(""), None)
        .and_then(require_room)
    {
        Ok(claims) => claims,
        Err(e) => {
            metrics::counter!("veil_signalling_auth_failures_total").increment(1);
            let (code, kind) = if e.status() == 403 {
                (4403, "forbidden")
            } else {
                (4401, "unauthorized")
            };
            close(
                socket,
                code,
                ServerMessage::error(kind, e.to_string(), true),
            )
            .await;
            return;
        }
    };
    let (room, identity) = (claims.room.clone().unwrap_or_default(), claims.sub.clone());

    // 2. A new media session on the SFU node, or the detached one.
    let (events, secret) = match start {
        Start::Join(offer) => {
            let joined = match state.sfu.join(&room, &identity, offer).await {
                Ok(joined) => joined,
                Err(e) => {
                    let code = match e {
                        sfu::JoinError::RoomFull(_) => "room_full",
                        sfu::JoinError::DuplicateParticipant(_) => "duplicate_participant",
                        sfu::JoinError::BadOffer(_) => "bad_offer",
                        _ => "sfu_unavailable",
                    };
                    close(
                        socket,
                        4409,
                        ServerMessage::error(code, e.to_string(), true),
                    )
                    .await;
                    return;
                }
            };
            let secret = crate::auth::random_secret();
            let joined_msg = ServerMessage::Joined {
                v: VERSION,
                room: room.clone(),
                participant: identity.clone(),
                answer: joined.answer,
                resume: secret.clone(),
            };
            if !send(&mut socket, &joined_msg).await {
                let _ = state.sfu.leave(&room, &identity, "signalling closed").await;
                return;
            }
            info!(%room, participant = %identity, %peer, "joined through signalling");
            (joined.events, secret)
        }
        Start::Resume(presented) => {
            let key = (room.clone(), identity.clone());
            let taken = {
                let mut detached = state.detached.lock().unwrap_or_else(|e| e.into_inner());
                match detached.get(&key) {
                    Some(d) if constant_time_eq(d.secret.as_bytes(), presented.as_bytes()) => {
                        detached.remove(&key)
                    }
                    _ => None,
                }
            };
            let Some(d) = taken else {
                close(
                    socket,
                    4410,
                    ServerMessage::error("resume_failed", "no session to resume; join again", true),
                )
                .await;
                return;
            };
            let resumed = ServerMessage::Resumed {
                v: VERSION,
                room: room.clone(),
                participant: identity.clone(),
            };
            if !send(&mut socket, &resumed).await {
                detach(&state, room, identity, d.secret, d.events);
                return;
            }
            metrics::counter!("veil_signalling_resumes_total").increment(1);
            info!(%room, participant = %identity, %peer, "resumed through signalling");
            (d.events, d.secret)
        }
    };
    run(socket, state, room, identity, events, secret).await;
}

enum Start {
    Join(str0m::change::SdpOffer),
    Resume(String),
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parks a session whose socket dropped; it ends unless resumed in time.
fn detach(
    state: &AppState,
    room: String,
    identity: String,
    secret: String,
    events: mpsc::Receiver<sfu::ParticipantEvent>,
) {
    remove_presence(&state.presence, &room, &identity);
    let key = (room, identity);
    state
        .detached
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            key.clone(),
            Detached {
                secret: secret.clone(),
                events,
            },
        );
    let (state, grace) = (state.clone(), state.resume_grace);
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let expired = {
            let mut detached = state.detached.lock().unwrap_or_else(|e| e.into_inner());
            match detached.get(&key) {
                Some(d) if d.secret == secret => detached.remove(&key).is_some(),
                _ => false,
            }
        };
        if expired {
            debug!(room = %key.0, participant = %key.1, "not resumed in time");
            let _ = state
                .sfu
                .leave(&key.0, &key.1, "signalling connection lost")
                .await;
        }
    });
}

/// Relays both ways until either side ends.
async fn run(
    mut socket: WebSocket,
    state: AppState,
    room: String,
    identity: String,
    mut events: mpsc::Receiver<sfu::ParticipantEvent>,
    secret: String,
) {
    let (outbound, mut outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
    state
        .presence
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(room.clone())
        .or_default()
        .insert(identity.clone(), outbound);
    let mut limit = RateLimit {
        tokens: RATE_BURST,
        last: Instant::now(),
    };
    let mut bad = 0u32;
    let reason = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    let ended = matches!(event, sfu::ParticipantEvent::Disconnected { .. });
                    if !send(&mut socket, &ServerMessage::Event { event }).await || ended {
                        break "session ended";
                    }
                }
                None => break "session ended",
            },
            relayed = outbound_rx.recv() => {
                if let Some(message) = relayed
                    && !send(&mut socket, &message).await
                {
                    break "socket closed";
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "socket closed",
                    Some(Ok(_)) => continue,
                };
                if !limit.allow() {
                    metrics::counter!("veil_signalling_rate_limited_total").increment(1);
                    close(socket, 4429, ServerMessage::error("rate_limited", "too many messages", true)).await;
                    let _ = state.sfu.leave(&room, &identity, "rate limited").await;
                    remove_presence(&state.presence, &room, &identity);
                    return;
                }
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Leave) => break "left",
                    Ok(message) => {
                        if let Some(reply) = handle(&state, &room, &identity, message).await
                            && !send(&mut socket, &reply).await
                        {
                            break "socket closed";
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        metrics::counter!("veil_signalling_bad_messages_total").increment(1);
                        if bad > MAX_BAD_MESSAGES {
                            close(socket, 4400, ServerMessage::error("abuse", "too many malformed messages", true)).await;
                            let _ = state.sfu.leave(&room, &identity, "malformed messages").await;
                            remove_presence(&state.presence, &room, &identity);
                            return;
                        }
                        if !send(&mut socket, &ServerMessage::error("bad_message", e.to_string(), false)).await {
                            break "socket closed";
                        }
                    }
                }
            }
        }
    };
    if reason == "socket closed" {
        debug!(%room, participant = %identity, "socket dropped; waiting for a resume");
        detach(&state, room, identity, secret, events);
        return;
    }
    debug!(%room, participant = %identity, reason, "signalling session over");
    let _ = state.sfu.leave(&room, &identity, reason).await;
    remove_presence(&state.presence, &room, &identity);
}

fn remove_presence(presence: &Presence, room: &str, identity: &str) {
    let mut p = presence.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(members) = p.get_mut(room) {
        members.remove(identity);
        if members.is_empty() {
            p.remove(room);
        }
    }
}

/// Acts on one client message; returns a reply for the client, if any.
async fn handle(
    state: &AppState,
    room: &str,
    identity: &str,
    message: ClientMessage,
) -> Option<ServerMessage> {
    let failed =
        |code: &str, e: sfu::ControlError| Some(ServerMessage::error(code, e.to_string(), false));
    match message {
        ClientMessage::Join { .. } | ClientMessage::Resume { .. } => Some(ServerMessage::error(
            "already_joined",
            "this socket has joined already",
            false,
        )),
        ClientMessage::Answer { answer } => state
            .sfu
            .answer(room, identity, answer)
            .await
            .err()
            .and_then(|e| failed("bad_answer", e)),
        ClientMessage::Offer { offer } => match state.sfu.offer(room, identity, offer).await {
            Ok(answer) => Some(ServerMessage::Answer { answer }),
            Err(e) => failed("bad_offer", e),
        },
        ClientMessage::Subscribe {
            participant,
            subscribed,
        } => state
            .sfu
            .subscribe(room, identity, &participant, subscribed)
            .await
            .err()
            .and_then(|e| failed("subscribe_failed", e)),
        ClientMessage::Layer {
            participant,
            max_layer,
        } => state
            .sfu
            .set_max_layer(room, identity, &participant, max_layer)
            .await
            .err()
            .and_then(|e| failed("layer_failed", e)),
        ClientMessage::Relay { to, payload } => {
            let targets: Vec<Outbound> = {
                let p = state.presence.lock().unwrap_or_else(|e| e.into_inner());
                let members = p.get(room)?;
                match &to {
                    Some(one) => members.get(one).cloned().into_iter().collect(),
                    None => members
                        .iter()
                        .filter(|(who, _)| *who != identity)
                        .map(|(_, tx)| tx.clone())
                        .collect(),
                }
            };
            if to.is_some() && targets.is_empty() {
                return Some(ServerMessage::error(
                    "unknown_participant",
                    format!("{:?} is not in the room", to),
                    false,
                ));
            }
            for target in targets {
                let message = ServerMessage::Relay {
                    from: identity.to_string(),
                    payload: payload.clone(),
                };
                if target.try_send(message).is_err() {
                    metrics::counter!("veil_signalling_relay_dropped_total").increment(1);
                }
            }
            None
        }
        ClientMessage::Ping => Some(ServerMessage::Pong),
        ClientMessage::Leave => None,
    }
}
