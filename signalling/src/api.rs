//! The server REST API (admin tokens) and open-room token issuance.
//!
//! | route | auth | |
//! |---|---|---|
//! | `POST /api/rooms` | admin | `{room, max_participants?}`: create (201) or update (200) a room |
//! | `GET /api/rooms` | admin | rooms with participant counts |
//! | `GET /api/rooms/{room}/participants` | admin | identities and SFU stats |
//! | `DELETE /api/rooms/{room}` | admin | end everyone's session in the room and forget its settings |
//! | `POST /api/rooms/{room}/participants/{id}/kick` | admin | end one session |
//! | `POST /api/rooms/{room}/participants/{id}/mute` | admin | `{kind, muted}` |
//! | `POST /token` | none, open-room mode only | `{room, name}` → `{token, identity}` |
//! | `GET /openapi.json` | none | this API as OpenAPI 3.1 |
//!
//! Admin calls take `Authorization: Bearer <token with the admin grant>`.
//! Errors are JSON `{"error": ..., "detail": ...}` with 400/401/403/404.

use axum::extract::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sfu::TrackKind;

use crate::auth::{AuthError, Grants, TokenRequest};
use crate::server::AppState;
use crate::shared::RoomConfig;

/// Lifetime of open-room tokens.
const OPEN_ROOM_TTL_SECS: u64 = 6 * 3600;
/// How long a participant removed by a moderator (`kick`) is kept out of
/// the room. Their token is still valid, so without it they could rejoin at
/// once; a moderator who wants them back sooner mints a new identity.
pub const REMOVAL_PERIOD: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The REST routes, merged into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(list_rooms).post(create_room))
        .route("/api/rooms/{room}", delete(close_room))
        .route("/api/rooms/{room}/participants", get(list_participants))
        .route("/api/rooms/{room}/participants/{id}/kick", post(kick))
        .route("/api/rooms/{room}/participants/{id}/mute", post(mute))
        .route("/token", post(open_room_token))
        .route("/openapi.json", get(openapi))
}

/// The OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

fn refuse(e: AuthError) -> Response {
    metrics::counter!("veil_signalling_auth_failures_total").increment(1);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    (status, Json(e)).into_response()
}

/// Checks an admin token for a call about `room` (`None`: about every room,
/// as listing and creating are). A token that names a room administers that
/// room only; one without a room administers all of them.
fn admin(state: &AppState, headers: &HeaderMap, room: Option<&str>) -> Result<(), AuthError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let claims = state.auth().verify(token, None)?;
    if !claims.grants.admin {
        return Err(AuthError::NotGranted("admin"));
    }
    match (&claims.room, room) {
        (None, _) => Ok(()),
        (Some(own), Some(asked)) if own == asked => Ok(()),
        (Some(own), asked) => Err(AuthError::WrongRoom {
            token_room: own.clone(),
            requested: asked.unwrap_or("every room").into(),
        }),
    }
}

fn error(status: StatusCode, kind: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": kind, "detail": detail.into() })),
    )
        .into_response()
}

/// One room in `GET /api/rooms`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomSummary {
    /// Name.
    pub room: String,
    /// Participants connected, through any signalling replica.
    pub participants: usize,
    /// Most participants at once, if the room was created with a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u32>,
}

/// Body of `POST /api/rooms`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateRoom {
    /// Room name (1 to 64 printable characters).
    pub room: String,
    /// Most participants at once.
    #[serde(default)]
    pub max_participants: Option<u32>,
}

/// A JSON body, read after the caller is authorized (so a bad token gets
/// its 401/403 before any complaint about the body).
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    parsed.map(|Json(t)| t).map_err(|e| {
        metrics::counter!("veil_signalling_bad_messages_total").increment(1);
        Box::new(error(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))
    })
}

async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    parsed: Result<Json<CreateRoom>, JsonRejection>,
) -> Response {
    if let Err(e) = admin(&state, &headers, None) {
        return refuse(e);
    }
    let body = match body(parsed) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let name = body.room.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "room must be 1 to 64 printable characters",
        );
    }
    if body.max_participants == Some(0) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "max_participants must be at least 1",
        );
    }
    let config = RoomConfig {
        max_participants: body.max_participants,
    };
    let summary = RoomSummary {
        room: name.to_string(),
        participants: state.members(name).await.len(),
        max_participants: config.max_participants,
    };
    match state.shared().create_room(name, &config).await {
        Ok(true) => (StatusCode::CREATED, Json(summary)).into_response(),
        Ok(false) => (StatusCode::OK, Json(summary)).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable", e),
    }
}

async fn list_rooms(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = admin(&state, &headers, None) {
        return refuse(e);
    }
    let mut rooms = Vec::new();
    for (room, members) in state.rooms().await {
        let max_participants = state
            .shared()
            .room_config(&room)
            .await
            .and_then(|c| c.max_participants);
        rooms.push(RoomSummary {
            room,
            participants: members.len(),
            max_participants,
        });
    }
    rooms.sort_by(|a, b| a.room.cmp(&b.room));
    Json(rooms).into_response()
}

async fn list_participants(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> Response {
    if let Err(e) = admin(&state, &headers, Some(&room)) {
        return refuse(e);
    }
    match state.sfu().stats(&room).await {
        Ok(stats) if !stats.participants.is_empty() => Json(stats).into_response(),
        Ok(_) => error(
            StatusCode::NOT_FOUND,
            "unknown_room",
            format!("no room {room:?}"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "sfu_unavailable",
            e.to_string(),
        ),
    }
}

async fn close_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> Response {
    if let Err(e) = admin(&state, &headers, Some(&room)) {
        return refuse(e);
    }
    let members = state.members(&room).await;
    let created = state.shared().delete_room(&room).await;
    if members.is_empty() && !created {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_room",
            format!("no room {room:?}"),
        );
    }
    for id in members {
        let _ = state.sfu().leave(&room, &id, "the room was closed").await;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn kick(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((room, id)): Path<(String, String)>,
) -> Response {
    if let Err(e) = admin(&state, &headers, Some(&room)) {
        return refuse(e);
    }
    match state
        .sfu()
        .leave(&room, &id, "removed by a moderator")
        .await
    {
        Ok(()) => {
            state.shared().keep_out(&room, &id, REMOVAL_PERIOD).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, "unknown_participant", e.to_string()),
    }
}

/// Body of the mute call.
#[derive(Debug, Serialize, Deserialize)]
pub struct MuteRequest {
    /// `audio` or `video`.
    pub kind: TrackKind,
    /// Mute or unmute.
    pub muted: bool,
}

async fn mute(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((room, id)): Path<(String, String)>,
    parsed: Result<Json<MuteRequest>, JsonRejection>,
) -> Response {
    if let Err(e) = admin(&state, &headers, Some(&room)) {
        return refuse(e);
    }
    let body = match body(parsed) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match state
        .sfu()
        .set_muted(&room, &id, body.kind, body.muted)
        .await
    {
        Ok(()) => {
            let kind = crate::server::kind_name(body.kind);
            state
                .shared()
                .set_moderator_mute(&room, &id, kind, body.muted)
                .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, "unknown_participant", e.to_string()),
    }
}

/// Body of `POST /token`.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenRoomRequest {
    /// Room to join.
    pub room: String,
    /// Display name; the identity is derived from it plus a random suffix.
    pub name: String,
}

/// Reply of `POST /token`.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenRoomToken {
    /// Access token for `/ws`.
    pub token: String,
    /// The identity it names.
    pub identity: String,
}

async fn open_room_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    parsed: Result<Json<OpenRoomRequest>, JsonRejection>,
) -> Response {
    if !state.allow_request(peer.ip()) {
        return crate::server::too_many_requests();
    }
    let body = match body(parsed) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(key) = state.open_rooms_key() else {
        return error(
            StatusCode::FORBIDDEN,
            "open_rooms_disabled",
            "this server only accepts tokens minted by the app's backend",
        );
    };
    let valid = |s: &str, max: usize| {
        !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
    };
    if !valid(&body.room, 64) || !valid(&body.name, 64) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "room and name must be 1 to 64 printable characters",
        );
    }
    let identity = format!(
        "{}#{}",
        body.name.trim(),
        &crate::auth::random_secret()[..6]
    );
    let request = TokenRequest {
        identity: identity.clone(),
        name: Some(body.name.trim().to_string()),
        room: Some(body.room.trim().to_string()),
        grants: Grants::participant(),
    };
    match state.auth().mint(&key, request, OPEN_ROOM_TTL_SECS) {
        Ok(token) => Json(OpenRoomToken { token, identity }).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "token_failed",
            e.to_string(),
        ),
    }
}
