//! WHIP (RFC 9725) and WHEP: standard tools publish into and watch a room.
//!
//! | route | |
//! |---|---|
//! | `POST /whip/{room}` | `application/sdp` offer → `201 Created`, SDP answer, `Location` |
//! | `DELETE /whip/{room}/{identity}` | ends that ingest session |
//! | `POST /whep/{room}/{participant}` | recvonly offer → `201`, answer with `participant`'s tracks |
//! | `DELETE /whep/{room}/{participant}/{viewer}` | ends that viewer session |
//! | `PATCH` on a resource | `405`: no trickle ICE needed, the SFU is ICE-lite and its answer holds its candidates |
//!
//! Every request carries `Authorization: Bearer <access token>` for the
//! room: `publish` for WHIP, `subscribe` for WHEP. A WHIP publisher joins
//! as the token's identity and receives nothing; a WHEP viewer joins as
//! `<identity>#whep-<random>` and receives one participant's audio and video
//! in the m-lines of its own offer, so neither ever needs a renegotiation.
//!
//! Resources are named by identity, and deleting one needs a token for that
//! identity, so any replica can serve the `DELETE`.
//!
//! What WHIP tools send is not end-to-end encrypted (they do not speak
//! SFrame): a room that takes WHIP ingest trusts the ingest, and viewers of
//! end-to-end encrypted participants receive ciphertext only.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use sfu::{JoinError, ParticipantEvent, Role};
use str0m::change::SdpOffer;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::auth::{AuthError, Claims};
use crate::server::AppState;

/// Largest SDP offer accepted.
const MAX_OFFER_BYTES: usize = 64 * 1024;
/// Separates a viewer's token identity from its per-session suffix.
const VIEWER_MARK: &str = "#whep-";

/// The WHIP and WHEP routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/whip/{room}", post(whip))
        .route(
            "/whip/{room}/{identity}",
            delete(end_ingest).patch(no_trickle),
        )
        .route("/whep/{room}/{participant}", post(whep))
        .route(
            "/whep/{room}/{participant}/{viewer}",
            delete(end_viewer).patch(no_trickle),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_OFFER_BYTES))
}

fn problem(status: StatusCode, kind: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": kind, "detail": detail.into() })),
    )
        .into_response()
}

fn refuse(e: AuthError) -> Response {
    metrics::counter!("veil_signalling_auth_failures_total").increment(1);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = (status, Json(e)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// The token's claims, if it admits to `room` with `grant`.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    room: &str,
    grant: &'static str,
) -> Result<Claims, Box<Response>> {
    let claims = state
        .auth()
        .verify(bearer(headers), Some(room))
        .map_err(|e| Box::new(refuse(e)))?;
    let granted = match grant {
        "publish" => claims.grants.publish,
        _ => claims.grants.subscribe,
    };
    if !granted {
        return Err(Box::new(refuse(AuthError::NotGranted(grant))));
    }
    Ok(claims)
}

/// The offer in the body, if it is `application/sdp` and parses.
/// A body that could not be read, as a JSON problem (413 past the limit).
fn unreadable_body(e: BytesRejection) -> Box<Response> {
    metrics::counter!("veil_signalling_bad_messages_total").increment(1);
    Box::new(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "offer_too_large",
            format!("SDP offers may be at most {MAX_OFFER_BYTES} bytes"),
        )
    } else {
        problem(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
    })
}

fn offer(headers: &HeaderMap, body: &Bytes) -> Result<SdpOffer, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(Box::new(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the offer must be sent as application/sdp",
        )));
    }
    let parsed = std::str::from_utf8(body)
        .map_err(|_| "the SDP is not UTF-8".to_string())
        .and_then(|text| {
            SdpOffer::from_sdp_string(text).map_err(|e| format!("unreadable SDP offer: {e}"))
        });
    parsed.map_err(|detail| {
        metrics::counter!("veil_signalling_bad_messages_total").increment(1);
        Box::new(problem(StatusCode::BAD_REQUEST, "bad_offer", detail))
    })
}

fn join_failed(e: JoinError) -> Response {
    let (status, kind) = match &e {
        JoinError::RoomFull(_) => (StatusCode::CONFLICT, "room_full"),
        JoinError::DuplicateParticipant(_) => (StatusCode::CONFLICT, "duplicate_participant"),
        JoinError::BadOffer(_) => (StatusCode::BAD_REQUEST, "bad_offer"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "sfu_unavailable"),
    };
    problem(status, kind, e.to_string())
}

/// Path segments are percent-encoded so identities with any character fit.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn created(location: String, answer: String) -> Response {
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// Nobody reads a WHIP/WHEP session's events (it cannot renegotiate), but
/// the stream must be consumed: remote nodes end sessions nobody attaches
/// to. The session is over when the stream ends.
/// Keeps a WHIP/WHEP session in the room's presence until the SFU ends it:
/// it is listed and counted like any participant, against the room's limit
/// too, and closing the room ends it.
fn attend(
    state: &AppState,
    mut events: mpsc::Receiver<ParticipantEvent>,
    room: String,
    identity: String,
) {
    let state = state.clone();
    tokio::spawn(async move {
        // Relays to a WHIP/WHEP client have nowhere to go: they are read
        // here and dropped.
        let (outbound, mut discard) = mpsc::channel(16);
        state.shared().enter(&room, &identity, outbound).await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(ParticipantEvent::Disconnected { reason, .. }) => {
                        debug!(%room, %identity, %reason, "WHIP/WHEP session ended");
                        break;
                    }
                    None => break,
                    Some(_) => {}
                },
                _ = discard.recv() => {}
            }
        }
        state.shared().exit(&room, &identity, false).await;
    });
}

/// 409 when the room was created with a participant limit it has reached.
async fn refuse_if_full(state: &AppState, room: &str) -> Result<(), Box<Response>> {
    match state.room_is_full(room).await {
        Some(max) => Err(Box::new(problem(
            StatusCode::CONFLICT,
            "room_full",
            format!("room {room:?} is full ({max})"),
        ))),
        None => Ok(()),
    }
}

async fn whip(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.allow_request(peer.ip()) {
        return crate::server::too_many_requests();
    }
    let claims = match authorize(&state, &headers, &room, "publish") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let offer = match body
        .map_err(unreadable_body)
        .and_then(|b| offer(&headers, &b))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let identity = claims.sub;
    if let Err(r) = refuse_if_full(&state, &room).await {
        return *r;
    }
    match state
        .sfu()
        .join_as(&room, &identity, offer, Role::Ingest)
        .await
    {
        Ok(joined) => {
            metrics::counter!("veil_signalling_whip_sessions_total").increment(1);
            info!(%room, %identity, "WHIP ingest started");
            attend(&state, joined.events, room.clone(), identity.clone());
            let location = format!("/whip/{}/{}", segment(&room), segment(&identity));
            created(location, joined.answer.to_sdp_string())
        }
        Err(e) => join_failed(e),
    }
}

async fn whep(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.allow_request(peer.ip()) {
        return crate::server::too_many_requests();
    }
    let claims = match authorize(&state, &headers, &room, "subscribe") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let offer = match body
        .map_err(unreadable_body)
        .and_then(|b| offer(&headers, &b))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let viewer = format!(
        "{}{VIEWER_MARK}{}",
        claims.sub,
        &crate::auth::random_secret()[..8]
    );
    let role = Role::Viewer {
        of: participant.clone(),
    };
    if let Err(r) = refuse_if_full(&state, &room).await {
        return *r;
    }
    match state.sfu().join_as(&room, &viewer, offer, role).await {
        Ok(joined) => {
            metrics::counter!("veil_signalling_whep_sessions_total").increment(1);
            info!(%room, %viewer, of = %participant, "WHEP viewer started");
            attend(&state, joined.events, room.clone(), viewer.clone());
            let location = format!(
                "/whep/{}/{}/{}",
                segment(&room),
                segment(&participant),
                segment(&viewer)
            );
            created(location, joined.answer.to_sdp_string())
        }
        Err(e) => join_failed(e),
    }
}

async fn end(state: &AppState, room: &str, identity: &str) -> Response {
    match state
        .sfu()
        .leave(room, identity, "ended by its client")
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(sfu::ControlError::UnknownParticipant { .. }) => problem(
            StatusCode::NOT_FOUND,
            "unknown_session",
            format!("no session {identity:?} in room {room:?}"),
        ),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "sfu_unavailable",
            e.to_string(),
        ),
    }
}

/// Whether `claims` speak for `room`: a token for that room, or an admin
/// token for every room (an admin token naming a room covers that room only).
fn in_room(claims: &Claims, room: &str) -> bool {
    match claims.room.as_deref() {
        Some(own) => own == room,
        None => claims.grants.admin,
    }
}

/// Whether `claims` may end `identity`'s session: its own, or an admin's.
fn owns(claims: &Claims, identity: &str) -> bool {
    claims.grants.admin || claims.sub == identity
}

async fn end_ingest(
    State(state): State<AppState>,
    Path((room, identity)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let claims = match state.auth().verify(bearer(&headers), None) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    let in_room = in_room(&claims, &room);
    if !in_room || !owns(&claims, &identity) {
        return refuse(AuthError::NotGranted("admin"));
    }
    end(&state, &room, &identity).await
}

async fn end_viewer(
    State(state): State<AppState>,
    Path((room, _participant, viewer)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let claims = match state.auth().verify(bearer(&headers), None) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    let in_room = in_room(&claims, &room);
    let owner = viewer.split(VIEWER_MARK).next().unwrap_or_default();
    if !in_room || !viewer.contains(VIEWER_MARK) || !owns(&claims, owner) {
        return refuse(AuthError::NotGranted("admin"));
    }
    end(&state, &room, &viewer).await
}

async fn no_trickle() -> Response {
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "no_trickle",
        "trickle ICE is not needed: the answer carries the server's candidates",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("DELETE"));
    response
}
