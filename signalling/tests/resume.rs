//! A dropped signalling socket does not end the call: the client resumes on
//! a new socket within the grace period and misses no event; without a
//! resume the session ends when the grace period runs out.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sfu::ParticipantEvent;
use signalling::auth::Grants;
use signalling::protocol::{ClientMessage, ServerMessage, VERSION};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use veil_client::{Client, ClientConfig, FromServer, RoomSecret, ToServer};

use common::{eventually, join, start_server_opts, token};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, msg: &ClientMessage) {
    ws.send(Message::Text(serde_json::to_string(msg).unwrap().into()))
        .await
        .unwrap();
}

async fn next(ws: &mut Ws) -> Option<ServerMessage> {
    match ws.next().await {
        Some(Ok(Message::Text(t))) => Some(serde_json::from_str(&t).unwrap()),
        _ => None,
    }
}

/// Bridges one socket until `drop_now` fires (the socket is then dropped
/// without a close frame, like a lost connection) or the client goes away.
async fn bridge(
    mut ws: Ws,
    to_client: mpsc::Sender<FromServer>,
    from_client: &mut mpsc::Receiver<ToServer>,
    mut drop_now: mpsc::Receiver<()>,
) {
    loop {
        tokio::select! {
            msg = next(&mut ws) => {
                let Some(msg) = msg else { return };
                let forward = match msg {
                    ServerMessage::Event { event: ParticipantEvent::Offer { offer } } => Some(FromServer::Offer(offer)),
                    ServerMessage::Event { event: ParticipantEvent::ParticipantJoined { participant, .. } } => Some(FromServer::ParticipantJoined(participant)),
                    ServerMessage::Answer { answer } => Some(FromServer::Answer(answer)),
                    _ => None,
                };
                if let Some(f) = forward {
                    let _ = to_client.send(f).await;
                }
            }
            reply = from_client.recv() => match reply {
                Some(ToServer::Answer(answer)) => send(&mut ws, &ClientMessage::Answer { answer }).await,
                Some(ToServer::Offer(offer)) => send(&mut ws, &ClientMessage::Offer { offer }).await,
                None => return,
            },
            _ = drop_now.recv() => return,
        }
    }
}

async fn connect(addr: SocketAddr) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap()
        .0
}

fn decrypted(c: &Client, from: &str) -> u64 {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), "audio"))
            .map_or(0, |r| r.frames_decrypted)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_resumes_without_losing_the_call_or_events() {
    let addr = start_server_opts(false, Duration::from_secs(10)).await;
    let room = "flaky-wifi";
    let secret = RoomSecret::from_passphrase(room, "p");
    let cfg = |who: &str| {
        let mut c = ClientConfig::new(who, room, secret.clone());
        c.video = None;
        c
    };
    let bob = join(
        addr,
        Some(token("bob", room, Grants::participant(), 600)),
        cfg("bob"),
    )
    .await
    .unwrap();

    // Alice joins over a socket she controls.
    let alice_token = token("alice", room, Grants::participant(), 600);
    let (pending, offer) = Client::prepare(cfg("alice")).unwrap();
    let mut ws = connect(addr).await;
    send(
        &mut ws,
        &ClientMessage::Join {
            v: VERSION,
            token: Some(alice_token.clone()),
            offer,
        },
    )
    .await;
    let Some(ServerMessage::Joined { answer, resume, .. }) = next(&mut ws).await else {
        panic!("joined")
    };
    let (to_client, from_server) = mpsc::channel(64);
    let (to_server, mut from_client) = mpsc::channel(64);
    let alice = pending.start(answer, from_server, to_server).unwrap();
    let (drop_tx, drop_rx) = mpsc::channel(1);
    let to_client2 = to_client.clone();
    let first = tokio::spawn(async move {
        bridge(ws, to_client2, &mut from_client, drop_rx).await;
        from_client
    });
    eventually(
        Duration::from_secs(20),
        "alice and bob hear each other",
        || decrypted(&alice, "bob") > 20 && bob.with_client(|c| decrypted(c, "alice")) > 20,
    )
    .await;

    // Alice's signalling connection dies. Media goes on regardless.
    drop_tx.send(()).await.unwrap();
    let mut from_client = first.await.unwrap();
    let before = decrypted(&alice, "bob");
    eventually(
        Duration::from_secs(5),
        "media flows without signalling",
        || decrypted(&alice, "bob") > before + 20,
    )
    .await;

    // Meanwhile carol joins: alice's renegotiation offer waits in the queue.
    let carol = join(
        addr,
        Some(token("carol", room, Grants::participant(), 600)),
        cfg("carol"),
    )
    .await
    .unwrap();

    // A wrong resume secret is refused; the right one resumes.
    let mut bad = connect(addr).await;
    send(
        &mut bad,
        &ClientMessage::Resume {
            v: VERSION,
            token: Some(alice_token.clone()),
            resume: "guess".into(),
        },
    )
    .await;
    assert!(
        matches!(next(&mut bad).await, Some(ServerMessage::Error { code, .. }) if code == "resume_failed")
    );
    let mut ws = connect(addr).await;
    send(
        &mut ws,
        &ClientMessage::Resume {
            v: VERSION,
            token: Some(alice_token),
            resume,
        },
    )
    .await;
    assert!(matches!(
        next(&mut ws).await,
        Some(ServerMessage::Resumed { .. })
    ));
    let (_keep, drop_rx) = mpsc::channel(1);
    tokio::spawn(async move { bridge(ws, to_client, &mut from_client, drop_rx).await });

    eventually(
        Duration::from_secs(15),
        "alice gets carol's tracks through the resumed socket",
        || decrypted(&alice, "carol") > 20 && carol.with_client(|c| decrypted(c, "alice")) > 20,
    )
    .await;
    assert!(
        alice.stats().disconnected.is_none(),
        "the media session never ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_not_resumed_in_time_ends() {
    let addr = start_server_opts(false, Duration::from_millis(500)).await;
    let room = "gone";
    let secret = RoomSecret::from_passphrase(room, "p");
    let mut cfg = ClientConfig::new("dave", room, secret.clone());
    cfg.video = None;
    let dave_token = token("dave", room, Grants::participant(), 600);
    let (pending, offer) = Client::prepare(cfg).unwrap();
    let mut ws = connect(addr).await;
    send(
        &mut ws,
        &ClientMessage::Join {
            v: VERSION,
            token: Some(dave_token.clone()),
            offer,
        },
    )
    .await;
    let Some(ServerMessage::Joined { answer, resume, .. }) = next(&mut ws).await else {
        panic!("joined")
    };
    let (_to_client, from_server) = mpsc::channel(8);
    let (to_server, _from_client) = mpsc::channel(8);
    let dave = pending.start(answer, from_server, to_server).unwrap();
    eventually(Duration::from_secs(10), "dave connects", || {
        dave.stats().connected
    })
    .await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut late = connect(addr).await;
    send(
        &mut late,
        &ClientMessage::Resume {
            v: VERSION,
            token: Some(dave_token),
            resume,
        },
    )
    .await;
    assert!(
        matches!(next(&mut late).await, Some(ServerMessage::Error { code, .. }) if code == "resume_failed")
    );
    // The media session is gone too: the same identity can join afresh.
    let mut again = ClientConfig::new("dave", room, secret);
    again.video = None;
    assert!(
        join(
            addr,
            Some(token("dave", room, Grants::participant(), 600)),
            again
        )
        .await
        .is_ok()
    );
}
