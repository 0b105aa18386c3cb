//! The node's internal control API: HTTP + JSON, and a WebSocket per
//! participant for its events.
//!
//! | route | body → reply |
//! |---|---|
//! | `POST /v1/join` | `{room, participant, offer}` → `{answer}` |
//! | `GET /v1/events/{room}/{participant}` (WebSocket) | server → client: [`ParticipantEvent`] JSON messages |
//! | `POST /v1/answer` | `{room, participant, answer}` → 204 |
//! | `POST /v1/offer` | `{room, participant, offer}` → `{answer}` |
//! | `POST /v1/leave` | `{room, participant, reason}` → 204 |
//! | `POST /v1/layer` | `{room, subscriber, publisher, layer}` → 204 |
//! | `POST /v1/subscribe` | `{room, subscriber, publisher, subscribed}` → 204 |
//! | `POST /v1/mute` | `{room, participant, kind, muted}` → 204 |
//! | `GET /v1/rooms/{room}` | → [`crate::RoomStats`] |
//! | `POST /v1/drain` | → 204 |
//! | `GET /v1/health` | → `{ok: true}` (no auth) |
//!
//! Every route but health needs `Authorization: Bearer <node secret>`.
//! Errors are JSON: `{"error": "room_full", "detail": ...}` with 4xx/5xx.
//!
//! A participant's events wait in a bounded queue on the node until some
//! signalling replica attaches to the events WebSocket; if that replica goes
//! away, another can attach and carry on, so the media session outlives any
//! one signalling process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::sync::mpsc;

use crate::forward::layer::Layer;
use crate::node::{ControlError, JoinError, ParticipantEvent, Role, Sfu, TrackKind};

/// How long a session's events wait for a signalling replica to attach
/// before the node gives up on the participant (see [`router_with_grace`]).
pub const DEFAULT_ATTACH_GRACE: Duration = Duration::from_secs(30);

/// Event queues no replica is reading, by (room, participant).
type Parked = Arc<Mutex<HashMap<(String, String), ParkedEvents>>>;

struct ParkedEvents {
    events: mpsc::Receiver<ParticipantEvent>,
    /// Which parking this is, so an old expiry timer leaves a newer one alone.
    generation: u64,
}

#[derive(Clone)]
struct ControlState {
    sfu: Sfu,
    secret: Arc<str>,
    parked: Parked,
    grace: Duration,
    generations: Arc<AtomicU64>,
}

impl ControlState {
    /// Parks `events` until a replica attaches; after the grace period with
    /// nobody attached the participant is removed, so a session whose every
    /// signalling replica died cannot hold a seat forever.
    fn park(&self, key: (String, String), events: mpsc::Receiver<ParticipantEvent>) {
        if events.is_closed() {
            return;
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            parked.retain(|_, p| !p.events.is_closed());
            parked.insert(key.clone(), ParkedEvents { events, generation });
        }
        let state = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(state.grace).await;
            let expired = {
                let mut parked = state.parked.lock().unwrap_or_else(|e| e.into_inner());
                match parked.get(&key) {
                    Some(p) if p.generation == generation => parked.remove(&key).is_some(),
                    _ => false,
                }
            };
            if expired {
                metrics::counter!("veil_sfu_control_unattached_expired_total").increment(1);
                let _ = state
                    .sfu
                    .leave(&key.0, &key.1, "signalling connection lost")
                    .await;
            }
        });
    }
}

/// Body of `POST /v1/join`.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinBody {
    /// Room name.
    pub room: String,
    /// Participant identity.
    pub participant: String,
    /// The participant's SDP offer.
    pub offer: SdpOffer,
    /// Full participant (default), WHIP ingest or WHEP viewer.
    #[serde(default)]
    pub role: Role,
}

/// Reply with an SDP answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnswerReply {
    /// The answer.
    pub answer: SdpAnswer,
}

/// Body of `POST /v1/answer`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnswerBody {
    /// Room name.
    pub room: String,
    /// Participant identity.
    pub participant: String,
    /// Answer to the node's last offer.
    pub answer: SdpAnswer,
}

/// Body of `POST /v1/offer`.
#[derive(Debug, Serialize, Deserialize)]
pub struct OfferBody {
    /// Room name.
    pub room: String,
    /// Participant identity.
    pub participant: String,
    /// A participant-initiated offer.
    pub offer: SdpOffer,
}

/// Body of `POST /v1/leave`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LeaveBody {
    /// Room name.
    pub room: String,
    /// Participant identity.
    pub participant: String,
    /// Told to the participant.
    pub reason: String,
}

/// Body of `POST /v1/layer`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LayerBody {
    /// Room name.
    pub room: String,
    /// Who receives.
    pub subscriber: String,
    /// Whose video.
    pub publisher: String,
    /// Highest layer wanted, 0 = lowest.
    pub layer: Layer,
}

/// Body of `POST /v1/subscribe`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubscribeBody {
    /// Room name.
    pub room: String,
    /// Who receives.
    pub subscriber: String,
    /// Whose tracks.
    pub publisher: String,
    /// Receive them or not.
    pub subscribed: bool,
}

/// Body of `POST /v1/mute`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MuteBody {
    /// Room name.
    pub room: String,
    /// Whose tracks.
    pub participant: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// Mute or unmute.
    pub muted: bool,
}

/// Builds the control router for `sfu`, guarded by `secret`.
pub fn router(sfu: Sfu, secret: &str) -> Router {
    router_with_grace(sfu, secret, DEFAULT_ATTACH_GRACE)
}

/// [`router`], removing participants whose events no signalling replica has
/// read for `grace` (every replica that served them went away).
pub fn router_with_grace(sfu: Sfu, secret: &str, grace: Duration) -> Router {
    let state = ControlState {
        sfu,
        secret: secret.into(),
        parked: Arc::default(),
        grace,
        generations: Arc::default(),
    };
    let authed = Router::new()
        .route("/v1/join", post(join))
        .route("/v1/events/{room}/{participant}", get(events))
        .route("/v1/answer", post(answer))
        .route("/v1/offer", post(offer))
        .route("/v1/leave", post(leave))
        .route("/v1/layer", post(layer))
        .route("/v1/mute", post(mute))
        .route("/v1/subscribe", post(subscribe))
        .route("/v1/rooms/{room}", get(room_stats))
        .route("/v1/drain", post(drain))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_secret,
        ));
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .merge(authed)
        .with_state(state)
}

async fn require_secret(
    State(state): State<ControlState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), state.secret.as_bytes()) {
        metrics::counter!("veil_sfu_control_rejected_total").increment(1);
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "unauthorized", "detail": "missing or wrong node secret" })),
        )
            .into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn join_status(e: &JoinError) -> StatusCode {
    match e {
        JoinError::RoomFull(_) | JoinError::DuplicateParticipant(_) => StatusCode::CONFLICT,
        JoinError::BadOffer(_) => StatusCode::BAD_REQUEST,
        JoinError::Draining | JoinError::NodeDown | JoinError::Unreachable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

fn control_status(e: &ControlError) -> StatusCode {
    match e {
        ControlError::UnknownParticipant { .. } => StatusCode::NOT_FOUND,
        ControlError::NoPendingOffer => StatusCode::CONFLICT,
        ControlError::BadSdp(_) => StatusCode::BAD_REQUEST,
        ControlError::NodeDown | ControlError::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn control_reply<T: Serialize>(result: Result<T, ControlError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => (control_status(&e), Json(e)).into_response(),
    }
}

fn no_content(result: Result<(), ControlError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (control_status(&e), Json(e)).into_response(),
    }
}

async fn join(State(state): State<ControlState>, Json(body): Json<JoinBody>) -> Response {
    match state
        .sfu
        .join_as(&body.room, &body.participant, body.offer, body.role)
        .await
    {
        Ok(joined) => {
            state.park((body.room, body.participant), joined.events);
            Json(AnswerReply {
                answer: joined.answer,
            })
            .into_response()
        }
        Err(e) => (join_status(&e), Json(e)).into_response(),
    }
}

async fn events(
    State(state): State<ControlState>,
    Path((room, participant)): Path<(String, String)>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let key = (room, participant);
    let taken = state
        .parked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    let Some(ParkedEvents { events: rx, .. }) = taken else {
        let e = ControlError::UnknownParticipant {
            room: key.0,
            participant: key.1,
        };
        return (StatusCode::NOT_FOUND, Json(e)).into_response();
    };
    upgrade
        .read_buffer_size(super::EVENT_SOCKET_READ_BUFFER)
        .on_upgrade(move |socket| pump_events(socket, rx, key, state))
}

/// Streams events until the session ends or the consumer goes away; in the
/// latter case the queue is parked again for the next consumer.
async fn pump_events(
    mut socket: WebSocket,
    mut rx: mpsc::Receiver<ParticipantEvent>,
    key: (String, String),
    state: ControlState,
) {
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                };
                let Ok(text) = serde_json::to_string(&event) else { continue };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    state.park(key, rx);
}

async fn answer(State(state): State<ControlState>, Json(body): Json<AnswerBody>) -> Response {
    no_content(
        state
            .sfu
            .answer(&body.room, &body.participant, body.answer)
            .await,
    )
}

async fn offer(State(state): State<ControlState>, Json(body): Json<OfferBody>) -> Response {
    let result = state
        .sfu
        .offer(&body.room, &body.participant, body.offer)
        .await;
    control_reply(result.map(|answer| AnswerReply { answer }))
}

async fn leave(State(state): State<ControlState>, Json(body): Json<LeaveBody>) -> Response {
    no_content(
        state
            .sfu
            .leave(&body.room, &body.participant, &body.reason)
            .await,
    )
}

async fn layer(State(state): State<ControlState>, Json(body): Json<LayerBody>) -> Response {
    no_content(
        state
            .sfu
            .set_max_layer(&body.room, &body.subscriber, &body.publisher, body.layer)
            .await,
    )
}

async fn subscribe(State(state): State<ControlState>, Json(b): Json<SubscribeBody>) -> Response {
    no_content(
        state
            .sfu
            .subscribe(&b.room, &b.subscriber, &b.publisher, b.subscribed)
            .await,
    )
}

async fn mute(State(state): State<ControlState>, Json(body): Json<MuteBody>) -> Response {
    no_content(
        state
            .sfu
            .set_muted(&body.room, &body.participant, body.kind, body.muted)
            .await,
    )
}

async fn room_stats(State(state): State<ControlState>, Path(room): Path<String>) -> Response {
    Json(state.sfu.stats(&room).await).into_response()
}

async fn drain(State(state): State<ControlState>) -> Response {
    state.sfu.drain().await;
    StatusCode::NO_CONTENT.into_response()
}
