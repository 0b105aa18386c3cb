//! Clients meet through the signalling WebSocket: tokens checked, SDP and SFU
//! events relayed, opaque E2EE messages relayed, bad input refused.

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
use veil_client::{Client, ClientConfig, FromServer, RoomSecret, ToServer};

const SECRET: &str = "ws-test-secret-0123456789abcdef012345";

fn auth() -> Authenticator {
    Authenticator::new([("test", SECRET)]).unwrap()
}

fn token(identity: &str, room: &str, grants: Grants, ttl: u64) -> String {
    auth()
        .mint("test", TokenRequest::new(identity, room, grants), ttl)
        .unwrap()
}

async fn start_server() -> SocketAddr {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let sfu = Sfu::start(SfuConfig::default()).unwrap();
    let app = router(AppState::new(auth(), SfuNode::from(&sfu), None));
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

struct Participant {
    client: Client,
    outgoing: mpsc::Sender<ClientMessage>,
    relays: Arc<Mutex<Vec<(String, String)>>>,
}

/// A Rust client speaking the signalling protocol. Err(code) when refused.
async fn join(
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

async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_meet_through_signalling_and_relay_messages() {
    let addr = start_server().await;
    let room = "standup";
    let secret = RoomSecret::from_passphrase(room, "p");
    let alice = join(
        addr,
        Some(token("alice", room, Grants::participant(), 600)),
        ClientConfig::new("alice", room, secret.clone()),
    )
    .await
    .unwrap();
    let bob = join(
        addr,
        Some(token("bob", room, Grants::participant(), 600)),
        ClientConfig::new("bob", room, secret),
    )
    .await
    .unwrap();
    let decrypted = |c: &Client, from: &str, kind: &str| {
        c.with_stats(|s| {
            s.remote
                .get(&(from.to_string(), kind))
                .map_or(0, |r| r.frames_decrypted)
        })
    };
    eventually(
        Duration::from_secs(20),
        "alice and bob decrypt each other via signalling",
        || {
            ["audio", "video"].iter().all(|k| {
                decrypted(&alice.client, "bob", k) > 10 && decrypted(&bob.client, "alice", k) > 10
            })
        },
    )
    .await;

    // Opaque relay, to the room and to one participant.
    let to_room = ClientMessage::Relay {
        to: None,
        payload: "c2VhbGVkIGtleSBvZmZlcg".into(),
    };
    alice.outgoing.send(to_room).await.unwrap();
    let direct = ClientMessage::Relay {
        to: Some("alice".into()),
        payload: "b3BhcXVl".into(),
    };
    bob.outgoing.send(direct).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "relays arrive, labelled with the sender",
        || {
            bob.relays
                .lock()
                .unwrap()
                .contains(&("alice".into(), "c2VhbGVkIGtleSBvZmZlcg".into()))
                && alice
                    .relays
                    .lock()
                    .unwrap()
                    .contains(&("bob".into(), "b3BhcXVl".into()))
        },
    )
    .await;
    assert!(
        alice
            .relays
            .lock()
            .unwrap()
            .iter()
            .all(|(from, _)| from != "alice"),
        "no echo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_bad_messages_are_refused_clearly() {
    let addr = start_server().await;
    let room = "locked";
    let cfg = |who: &str| {
        let mut c = ClientConfig::new(who, room, RoomSecret::from_passphrase(room, "p"));
        c.video = None;
        c
    };
    assert_eq!(
        join(addr, None, cfg("a")).await.err().as_deref(),
        Some("unauthorized")
    );
    assert_eq!(
        join(addr, Some("not-a-jwt".into()), cfg("a"))
            .await
            .err()
            .as_deref(),
        Some("unauthorized")
    );
    let forged = Authenticator::new([("test", "another secret that is 32+ bytes long")])
        .unwrap()
        .mint(
            "test",
            TokenRequest::new("a", room, Grants::participant()),
            60,
        )
        .unwrap();
    assert_eq!(
        join(addr, Some(forged), cfg("a")).await.err().as_deref(),
        Some("unauthorized")
    );
    let no_join = token("a", room, Grants::parse("subscribe").unwrap(), 60);
    assert_eq!(
        join(addr, Some(no_join), cfg("a")).await.err().as_deref(),
        Some("forbidden")
    );
    let expired = token("a", room, Grants::participant(), 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        join(addr, Some(expired), cfg("a")).await.err().as_deref(),
        Some("unauthorized")
    );

    // A bad token in the URL is refused before the upgrade, with a JSON body.
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token=bogus"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // Garbage as the first message, and a duplicate identity.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send(Message::Text("{not json".into())).await.unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("an error message first")
    };
    assert!(
        matches!(serde_json::from_str(&t).unwrap(), ServerMessage::Error { code, fatal: true, .. } if code == "bad_message")
    );
    let _a = join(
        addr,
        Some(token("a", room, Grants::participant(), 60)),
        cfg("a"),
    )
    .await
    .unwrap();
    let again = join(
        addr,
        Some(token("a", room, Grants::participant(), 60)),
        cfg("a"),
    )
    .await;
    assert_eq!(again.err().as_deref(), Some("duplicate_participant"));

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert!(health.status().is_success());
}
