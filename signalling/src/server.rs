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
use crate::shared::{RelayError, Shared};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::auth::{AuthError, Authenticator, Claims};
use crate::protocol::{
    ClientMessage, MAX_MESSAGE_BYTES, ServerMessage, VERSION, WS_READ_BUFFER_BYTES,
};

/// Time a new socket has to send its `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a socket being closed is read for its peer's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);
/// Messages queued towards one client before relays to it are dropped.
const OUTBOUND_QUEUE: usize = 256;
/// Per-connection message rate: sustained per second, and burst.
const RATE_PER_SEC: f64 = 50.0;
const RATE_BURST: f64 = 200.0;
/// Default cap on simultaneous WebSockets from one IP address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// Default time a dropped socket's session waits for a resume.
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(30);
/// How often the server pings each socket.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Silence after which a socket counts as dropped (three missed pongs).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// Malformed messages tolerated before the socket is closed as abusive.
const MAX_BAD_MESSAGES: u32 = 20;

/// Shared by every connection.
#[derive(Clone)]
pub struct AppState {
    auth: Arc<Authenticator>,
    sfu: Nodes,
    shared: Shared,
    metrics: Option<PrometheusHandle>,
    /// API key used to mint open-room tokens; `None` disables `POST /token`.
    open_rooms: Option<String>,
    /// Sessions of an in-process SFU whose socket dropped, waiting to be
    /// resumed here. (Remote nodes keep such sessions themselves.)
    detached: Arc<Mutex<HashMap<(String, String), Detached>>>,
    /// How long a dropped socket's session waits for a resume.
    resume_grace: Duration,
    /// Open sockets per client IP, and the cap.
    per_ip: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    max_per_ip: usize,
    /// Ping interval and the silence after which a socket counts as dropped.
    heartbeat: Duration,
    idle_timeout: Duration,
    /// Request budget per client IP for the routes that start something
    /// (`POST /token`, WHIP, WHEP).
    requests: Arc<Mutex<HashMap<std::net::IpAddr, RateLimit>>>,
    request_rate: (f64, f64),
}

/// Default budget of `POST /token`, WHIP and WHEP requests per client IP:
/// per second sustained, and burst.
pub const DEFAULT_REQUEST_RATE: (f64, f64) = (20.0, 100.0);

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
    generation: u64,
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
            shared: Shared::local(),
            metrics,
            open_rooms: None,
            detached: Arc::default(),
            resume_grace: DEFAULT_RESUME_GRACE,
            per_ip: Arc::default(),
            max_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            heartbeat: DEFAULT_HEARTBEAT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            requests: Arc::default(),
            request_rate: DEFAULT_REQUEST_RATE,
        }
    }

    /// Shares presence, relays and resume secrets with other replicas
    /// (see [`Shared::redis`]).
    pub fn with_shared(mut self, shared: Shared) -> Self {
        self.shared = shared;
        self
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

    /// Requests per second (sustained, burst) one IP may make to the routes
    /// that start something: `POST /token`, WHIP, WHEP.
    pub fn with_request_rate(mut self, per_second: f64, burst: f64) -> Self {
        self.request_rate = (per_second, burst);
        self
    }

    /// Spends one request of `ip`'s budget; `false` when it has none left.
    pub(crate) fn allow_request(&self, ip: std::net::IpAddr) -> bool {
        let (rate, burst) = self.request_rate;
        let mut table = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() > 10_000 {
            // Forget addresses that have been quiet long enough to be full.
            let now = Instant::now();
            table.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let bucket = table.entry(ip).or_insert(RateLimit {
            tokens: burst,
            last: Instant::now(),
        });
        bucket.allow_at(rate, burst)
    }

    /// How often to ping each socket, and how long a silent one lives.
    pub fn with_heartbeat(mut self, every: Duration, idle_timeout: Duration) -> Self {
        self.heartbeat = every;
        self.idle_timeout = idle_timeout;
        self
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

    /// Rooms with participants, on any replica, and who is in them.
    pub(crate) async fn rooms(&self) -> HashMap<String, Vec<String>> {
        self.shared.rooms().await
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// `Some(limit)` when `room` was created with a participant limit and
    /// has reached it (counting everyone present on any replica, WHIP and
    /// WHEP sessions included).
    pub(crate) async fn room_is_full(&self, room: &str) -> Option<u32> {
        let max = self.shared.room_config(room).await?.max_participants?;
        (self.shared.members(room).await.len() >= max as usize).then_some(max)
    }

    /// Who is in `room`, on any replica.
    pub(crate) async fn members(&self, room: &str) -> Vec<String> {
        self.shared.members(room).await
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/info", get(index))
        .route("/ws", get(ws))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::api::routes())
        .merge(crate::whip::routes())
        .merge(crate::web::routes())
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

/// Ready when a join could succeed now; load balancers route by it.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.sfu.ready().await {
        Ok(()) => Json(serde_json::json!({ "ready": true })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ready": false, "reason": reason })),
        )
            .into_response(),
    }
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
        .read_buffer_size(WS_READ_BUFFER_BYTES)
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
    // The closing handshake (RFC 6455 §7.1.1): read until the peer's close.
    // Dropping the socket with its messages still unread would make the
    // kernel reset the connection, and the peer would lose the reason sent
    // above. A task of its own does the reading, so the session (and its
    // address's connection slot) ends now; a peer that keeps sending is
    // cut off after a while.
    tokio::spawn(async move {
        let drain = async {
            while let Some(Ok(m)) = socket.recv().await
                && !matches!(m, Message::Close(_))
            {}
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, drain).await;
    });
}

/// 429 with `Retry-After` for a client IP over its request budget.
pub(crate) fn too_many_requests() -> Response {
    metrics::counter!("veil_signalling_rate_limited_total").increment(1);
    let body = serde_json::json!({ "error": "rate_limited", "detail": "too many requests from this address; retry after a second" });
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::RETRY_AFTER, "1")],
        Json(body),
    )
        .into_response()
}

/// Whether a receive failed because the client's message was over
/// [`MAX_MESSAGE_BYTES`] (tungstenite's capacity error).
fn too_big(e: &axum::Error) -> bool {
    let text = e.to_string();
    text.contains("Space limit exceeded") || text.contains("Message too long")
}

/// Ends a socket whose client sent a message over [`MAX_MESSAGE_BYTES`]:
/// close code 1009 ("message too big", RFC 6455) with a reason.
async fn close_too_big(socket: WebSocket) {
    metrics::counter!("veil_signalling_bad_messages_total").increment(1);
    let message = format!("messages may be at most {MAX_MESSAGE_BYTES} bytes");
    close(
        socket,
        1009,
        ServerMessage::error("message_too_big", message, true),
    )
    .await;
}

/// Token bucket for one connection.
struct RateLimit {
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn allow(&mut self) -> bool {
        self.allow_at(RATE_PER_SEC, RATE_BURST)
    }

    fn allow_at(&mut self, rate: f64, burst: f64) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(burst);
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
        Ok(Some(Err(e))) if too_big(&e) => {
            close_too_big(socket).await;
            return;
        }
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
        Ok(ClientMessage::Join {
            v,
            token,
            offer,
            audio_only,
        }) if v == VERSION => (token.or(url_token), Start::Join { offer, audio_only }),
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
    if state.shared.is_kept_out(&room, &identity).await {
        close(
            socket,
            4403,
            ServerMessage::error(
                "removed",
                format!("a moderator removed {identity:?} from room {room:?}; try again later"),
                true,
            ),
        )
        .await;
        return;
    }

    // 2. A new media session on the SFU node, or the one being resumed.
    let events = match start {
        Start::Join { offer, audio_only } => {
            // Before the SFU announces the newcomer, so the others learn
            // the name with the join.
            if let Some(name) = &claims.name {
                state.shared.remember_name(&room, &identity, name).await;
            }
            if let Some(max) = state.room_is_full(&room).await {
                close(
                    socket,
                    4409,
                    ServerMessage::error(
                        "room_full",
                        format!("room {room:?} is full ({max})"),
                        true,
                    ),
                )
                .await;
                return;
            }
            let grants = &claims.grants;
            let role = sfu::Role::with_permissions(sfu::Permissions {
                publish: grants.publish,
                subscribe: grants.subscribe,
                publish_data: grants.publish_data,
                receive_video: !audio_only,
            });
            let joined = match state.sfu.join_as(&room, &identity, offer, role).await {
                Ok(joined) => joined,
                Err(e) => {
                    if !matches!(e, sfu::JoinError::DuplicateParticipant(_)) {
                        state.shared.forget_name(&room, &identity).await;
                    }
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
            state.shared.save_secret(&room, &identity, &secret).await;
            let session = Session {
                secret: secret.clone(),
                node: state.sfu.owner_url(&room).await,
            };
            let joined_msg = ServerMessage::Joined {
                v: VERSION,
                room: room.clone(),
                participant: identity.clone(),
                answer: joined.answer,
                resume: secret,
            };
            if !send(&mut socket, &joined_msg).await {
                end_session(
                    &state,
                    &room,
                    &identity,
                    &session,
                    Some("signalling closed"),
                )
                .await;
                return;
            }
            info!(%room, participant = %identity, %peer, "joined through signalling");
            (joined.events, session)
        }
        Start::Resume(presented) => {
            let Some(events) = resumable(&state, &room, &identity, &presented).await else {
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
            let session = Session {
                secret: presented,
                node: state.sfu.owner_url(&room).await,
            };
            if !send(&mut socket, &resumed).await {
                detach(&state, room, identity, events, session).await;
                return;
            }
            metrics::counter!("veil_signalling_resumes_total").increment(1);
            info!(%room, participant = %identity, %peer, "resumed through signalling");
            (events, session)
        }
    };
    let (events, session) = events;
    run(
        socket,
        state,
        room,
        identity,
        claims.grants,
        events,
        session,
    )
    .await;
}

/// One media session as its socket knows it: the resume secret (unique to
/// the session; a rejoin of the same identity gets a new one) and the node
/// it joined (cluster mode). Ending it touches only that session, even when
/// a newer one of the same identity runs on another node.
struct Session {
    secret: String,
    node: Option<String>,
}

enum Start {
    Join {
        offer: str0m::change::SdpOffer,
        audio_only: bool,
    },
    Resume(String),
}

/// The event stream of a session that `presented` may resume: parked on
/// this replica (in-process SFU), or re-attached from the remote node that
/// hosts it (any replica can pick up any session).
async fn resumable(
    state: &AppState,
    room: &str,
    identity: &str,
    presented: &str,
) -> Option<mpsc::Receiver<sfu::ParticipantEvent>> {
    if !state.shared.check_secret(room, identity, presented).await {
        return None;
    }
    let key = (room.to_string(), identity.to_string());
    let parked = state
        .detached
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    match parked {
        Some(d) => Some(d.events),
        None => match state.sfu.attach_events(room, identity).await {
            Ok(events) => Some(events),
            Err(e) => {
                debug!(%room, participant = %identity, "cannot resume: {e}");
                None
            }
        },
    }
}

/// Ends a session for good: the SFU drops it (when `leave` says why) and
/// its resume secret stops working.
async fn end_session(
    state: &AppState,
    room: &str,
    identity: &str,
    session: &Session,
    leave: Option<&str>,
) {
    if let Some(reason) = leave {
        let _ = state
            .sfu
            .leave_on(session.node.as_deref(), room, identity, reason)
            .await;
    }
    // Presence belongs to the identity's current session only.
    if state
        .shared
        .forget_secret(room, identity, &session.secret)
        .await
    {
        state.shared.exit(room, identity, false).await;
    }
}

/// A session whose socket dropped; it ends unless resumed in time.
///
/// Remote nodes park the session's events themselves, and end it when no
/// replica attaches within their grace period: dropping `events` is all it
/// takes, and a client may resume on any replica. An in-process SFU has
/// nobody else to do that, so its events wait here.
async fn detach(
    state: &AppState,
    room: String,
    identity: String,
    events: mpsc::Receiver<sfu::ParticipantEvent>,
    session: Session,
) {
    if !state
        .shared
        .is_current(&room, &identity, &session.secret)
        .await
    {
        // A newer session of this identity holds the resume secret (it
        // rejoined elsewhere, as when a node drains, and this socket dropped
        // before its leave came through). Nothing can resume this one, so
        // it ends now instead of holding a seat on its node for the grace.
        metrics::counter!("veil_signalling_replaced_sessions_total").increment(1);
        end_session(
            state,
            &room,
            &identity,
            &session,
            Some("replaced by a newer session"),
        )
        .await;
        return;
    }
    state.shared.exit(&room, &identity, true).await;
    if state.sfu.keeps_detached_sessions() {
        drop(events);
        return;
    }
    let key = (room, identity);
    static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state
        .detached
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), Detached { generation, events });
    let (state, grace) = (state.clone(), state.resume_grace);
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let expired = {
            let mut detached = state.detached.lock().unwrap_or_else(|e| e.into_inner());
            match detached.get(&key) {
                Some(d) if d.generation == generation => detached.remove(&key).is_some(),
                _ => false,
            }
        };
        if expired {
            debug!(room = %key.0, participant = %key.1, "not resumed in time");
            end_session(
                &state,
                &key.0,
                &key.1,
                &session,
                Some("signalling connection lost"),
            )
            .await;
        }
    });
}

/// How a session's socket loop ended.
enum Ending {
    /// Over for good; tell the SFU why (unless it ended the session itself).
    Over(Option<&'static str>),
    /// The socket dropped; the session may be resumed.
    Dropped,
    /// The node hosting the media vanished; the client must join again.
    NodeLost,
}

/// Relays both ways until either side ends.
async fn run(
    mut socket: WebSocket,
    state: AppState,
    room: String,
    identity: String,
    grants: crate::auth::Grants,
    mut events: mpsc::Receiver<sfu::ParticipantEvent>,
    session: Session,
) {
    let (outbound, mut outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
    state.shared.enter(&room, &identity, outbound).await;
    let mut limit = RateLimit {
        tokens: RATE_BURST,
        last: Instant::now(),
    };
    let mut bad = 0u32;
    // Heartbeat: a ping every `heartbeat`; a socket that has sent nothing (not
    // even the pong every client stack sends by itself) for `idle_timeout` is
    // taken as dropped, so a silently dead connection frees the session
    // for a resume instead of holding it until TCP gives up.
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + state.heartbeat,
        state.heartbeat,
    );
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let ending = loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > state.idle_timeout {
                    debug!(%room, participant = %identity, "socket silent; taking it as dropped");
                    break Ending::Dropped;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break Ending::Dropped;
                }
            }
            event = events.recv() => match event {
                Some(sfu::ParticipantEvent::NodeLost { reason }) => {
                    debug!(%room, participant = %identity, %reason, "SFU node lost");
                    break Ending::NodeLost;
                }
                Some(mut event) => {
                    // The SFU knows identities only: add the display name.
                    if let sfu::ParticipantEvent::ParticipantJoined { participant, name: name @ None, .. } = &mut event {
                        *name = state.shared.name_of(&room, participant).await;
                    }
                    let ended = matches!(event, sfu::ParticipantEvent::Disconnected { .. });
                    if !send(&mut socket, &ServerMessage::Event { event }).await {
                        break Ending::Dropped;
                    }
                    if ended {
                        break Ending::Over(None);
                    }
                }
                None => break Ending::Over(None),
            },
            relayed = outbound_rx.recv() => {
                if let Some(message) = relayed
                    && !send(&mut socket, &message).await
                {
                    break Ending::Dropped;
                }
            }
            incoming = socket.recv() => {
                last_heard = Instant::now();
                let frame = match incoming {
                    Some(Ok(Message::Close(_))) | None => break Ending::Dropped,
                    Some(Err(e)) if too_big(&e) => {
                        close_too_big(socket).await;
                        end_session(&state, &room, &identity, &session, Some("message too big")).await;
                        return;
                    }
                    Some(Err(_)) => break Ending::Dropped,
                    Some(Ok(frame)) => frame,
                };
                // Every frame counts against the rate limit, pings and
                // binary frames too: a flood of them costs as much.
                if !limit.allow() {
                    metrics::counter!("veil_signalling_rate_limited_total").increment(1);
                    close(socket, 4429, ServerMessage::error("rate_limited", "too many messages", true)).await;
                    end_session(&state, &room, &identity, &session, Some("rate limited")).await;
                    return;
                }
                let parsed = match frame {
                    Message::Text(text) => serde_json::from_str::<ClientMessage>(&text).map_err(|e| e.to_string()),
                    Message::Binary(_) => Err("binary frames are not part of the protocol; send JSON text".into()),
                    _ => continue, // pings and pongs
                };
                match parsed {
                    Ok(ClientMessage::Leave) => break Ending::Over(Some("left")),
                    Ok(message) => {
                        if let Some(reply) = handle(&state, &room, &identity, &grants, message).await
                            && !send(&mut socket, &reply).await
                        {
                            break Ending::Dropped;
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        metrics::counter!("veil_signalling_bad_messages_total").increment(1);
                        if bad > MAX_BAD_MESSAGES {
                            close(socket, 4400, ServerMessage::error("abuse", "too many malformed messages", true)).await;
                            end_session(&state, &room, &identity, &session, Some("malformed messages")).await;
                            return;
                        }
                        if !send(&mut socket, &ServerMessage::error("bad_message", e, false)).await {
                            break Ending::Dropped;
                        }
                    }
                }
            }
        }
    };
    match ending {
        Ending::Dropped => {
            debug!(%room, participant = %identity, "socket dropped; waiting for a resume");
            detach(&state, room, identity, events, session).await;
        }
        Ending::Over(leave) => {
            debug!(%room, participant = %identity, "signalling session over");
            end_session(&state, &room, &identity, &session, leave).await;
        }
        Ending::NodeLost => {
            metrics::counter!("veil_signalling_node_lost_total").increment(1);
            state.sfu.node_lost(&room).await;
            end_session(&state, &room, &identity, &session, None).await;
            let lost = sfu::ParticipantEvent::NodeLost {
                reason: "the media server hosting this room went away".into(),
            };
            send(&mut socket, &ServerMessage::Event { event: lost }).await;
            close(
                socket,
                4503,
                ServerMessage::error("node_lost", "the media server is gone; join again", true),
            )
            .await;
        }
    }
}

/// `audio` or `video`, as stored for moderator mutes.
pub(crate) fn kind_name(kind: sfu::TrackKind) -> &'static str {
    match kind {
        sfu::TrackKind::Audio => "audio",
        sfu::TrackKind::Video => "video",
    }
}

/// Acts on one client message; returns a reply for the client, if any.
async fn handle(
    state: &AppState,
    room: &str,
    identity: &str,
    grants: &crate::auth::Grants,
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
        ClientMessage::Relay { .. } if !grants.publish_data => Some(ServerMessage::error(
            "forbidden",
            "your token does not allow sending messages (publish-data)",
            false,
        )),
        ClientMessage::Mute { kind, muted } => {
            if !muted
                && state
                    .shared
                    .moderator_muted(room, identity, kind_name(kind))
                    .await
            {
                return Some(ServerMessage::error(
                    "muted_by_moderator",
                    "a moderator muted you; only a moderator can unmute",
                    false,
                ));
            }
            state
                .sfu
                .set_muted(room, identity, kind, muted)
                .await
                .err()
                .and_then(|e| failed("mute_failed", e))
        }
        ClientMessage::Relay { to, payload } => {
            match state
                .shared
                .relay(room, identity, to.as_deref(), payload)
                .await
            {
                Ok(()) => None,
                Err(RelayError::UnknownParticipant(who)) => Some(ServerMessage::error(
                    "unknown_participant",
                    format!("{who:?} is not in the room"),
                    false,
                )),
                Err(e) => Some(ServerMessage::error("relay_failed", e.to_string(), false)),
            }
        }
        ClientMessage::Ping => Some(ServerMessage::Pong),
        ClientMessage::Leave => None,
    }
}
