//! Test harness: the signalling server in-process with a real SFU node, and
//! Rust clients speaking the WebSocket protocol over loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sfu::{ParticipantEvent, Sfu, SfuConfig, SfuNode};
use signalling::auth::{Authenticator, Grants, TokenRequest};
use signalling::protocol::{ClientMessage, ServerMessage, VERSION};
use signalling::server::{AppState, router};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use veil_client::{Client, ClientConfig, FromServer, ToServer};

pub const SECRET: &str = "ws-test-secret-0123456789abcdef012345";

pub fn auth() -> Authenticator {
    Authenticator::new([("test", SECRET)]).unwrap()
}

pub fn token(identity: &str, room: &str, grants: Grants, ttl: u64) -> String {
    auth()
        .mint("test", TokenRequest::new(identity, room, grants), ttl)
        .unwrap()
}

pub async fn start_server() -> SocketAddr {
    start_server_with(false).await
}

/// With `open_rooms`, `POST /token` mints tokens with the test key.
pub async fn start_server_with(open_rooms: bool) -> SocketAddr {
    start_server_opts(open_rooms, signalling::server::DEFAULT_RESUME_GRACE).await
}

/// Full control: open rooms, and the resume grace period.
pub async fn start_server_opts(open_rooms: bool, grace: Duration) -> SocketAddr {
    start_server_state(|s| {
        let s = s.with_resume_grace(grace);
        if open_rooms {
            s.with_open_rooms("test")
        } else {
            s
        }
    })
    .await
}

/// Serves `state` on a free loopback port.
pub async fn serve(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A server whose state `configure` adjusts.
pub async fn start_server_state(configure: impl FnOnce(AppState) -> AppState) -> SocketAddr {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let sfu = Sfu::start(SfuConfig::default()).unwrap();
    let app = router(configure(AppState::new(auth(), SfuNode::from(&sfu), None)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _sfu = sfu;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

pub struct Participant {
    pub client: Client,
    pub outgoing: mpsc::Sender<ClientMessage>,
    pub relays: Arc<Mutex<Vec<(String, String)>>>,
}

/// A Rust client speaking the signalling protocol. Err(code) when refused.
pub async fn join(
    addr: SocketAddr,
    token: Option<String>,
    config: ClientConfig,
) -> Result<Participant, String> {
    let (pending, offer) = Client::prepare(config).unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .map_err(|e| e.to_string())?;
    let join = ClientMessage::Join {
        v: VERSION,
        token,
        offer,
    };
    ws.send(Message::Text(serde_json::to_string(&join).unwrap().into()))
        .await
        .unwrap();
    // The first server message is either `joined` or a fatal error.
    let answer = match ws.next().await {
        Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerMessage>(&t).unwrap() {
            ServerMessage::Joined { answer, .. } => answer,
            ServerMessage::Error { code, .. } => return Err(code),
            other => panic!("unexpected before joined: {other:?}"),
        },
        other => return Err(format!("closed before joining: {other:?}")),
    };
    let (to_client, from_server) = mpsc::channel(64);
    let (to_server, mut from_client) = mpsc::channel(64);
    let client = pending.start(answer, from_server, to_server).unwrap();
    let (outgoing, mut outgoing_rx) = mpsc::channel::<ClientMessage>(64);
    let relays: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = relays.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = ws.next() => {
                    let Some(Ok(Message::Text(t))) = msg else { return };
                    let forward = match serde_json::from_str::<ServerMessage>(&t) {
                        Ok(ServerMessage::Event { event }) => match event {
                            ParticipantEvent::Offer { offer } => Some(FromServer::Offer(offer)),
                            ParticipantEvent::ParticipantJoined { participant } => Some(FromServer::ParticipantJoined(participant)),
                            ParticipantEvent::ActiveSpeakers { speakers } => Some(FromServer::ActiveSpeakers(speakers)),
                            ParticipantEvent::LayersWanted { track, max_layer } => Some(FromServer::LayersWanted { track, max_layer }),
                            ParticipantEvent::Disconnected { reason } => Some(FromServer::Disconnected(reason)),
                            _ => None,
                        },
                        Ok(ServerMessage::Answer { answer }) => Some(FromServer::Answer(answer)),
                        Ok(ServerMessage::Relay { from, payload }) => {
                            seen.lock().unwrap().push((from, payload));
                            None
                        }
                        _ => None,
                    };
                    if let Some(f) = forward && to_client.send(f).await.is_err() {
                        return;
                    }
                }
                reply = from_client.recv() => {
                    let msg = match reply {
                        Some(ToServer::Answer(answer)) => ClientMessage::Answer { answer },
                        Some(ToServer::Offer(offer)) => ClientMessage::Offer { offer },
                        None => return,
                    };
                    let _ = ws.send(Message::Text(serde_json::to_string(&msg).unwrap().into())).await;
                }
                out = outgoing_rx.recv() => {
                    let Some(msg) = out else { return };
                    let _ = ws.send(Message::Text(serde_json::to_string(&msg).unwrap().into())).await;
                }
            }
        }
    });
    Ok(Participant {
        client,
        outgoing,
        relays,
    })
}

pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}
