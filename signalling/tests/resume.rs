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
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            // The server's heartbeat; tungstenite answers it by itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return None,
        }
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
            audio_only: false,
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
            audio_only: false,
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

type Frozen = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Copies bytes one way until `frozen`; then swallows everything and keeps
/// the socket open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Frozen,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            return;
        }
        if frozen.load(std::sync::atomic::Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A TCP relay in front of the server that can go silent: bytes stop
/// flowing both ways, but neither side sees the connection close (a
/// network that died under a socket).
async fn freezable_relay(server: SocketAddr) -> (SocketAddr, Frozen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let frozen = Frozen::default();
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = tokio::net::TcpStream::connect(server).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (ur, uw) = upstream.into_split();
            tokio::spawn(pipe(cr, uw, f.clone()));
            tokio::spawn(pipe(ur, cw, f.clone()));
        }
    });
    (addr, frozen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_dies_silently_is_noticed_and_resumed() {
    use signalling::client::{ConnectOptions, Connection};
    let addr = common::start_server_state(|s| {
        s.with_heartbeat(Duration::from_millis(300), Duration::from_secs(2))
    })
    .await;
    let (relay, frozen) = freezable_relay(addr).await;
    let room = "dead-wifi";
    let bob = common::join_audio(addr, room, "bob").await;
    // Alice's first server is the relay, her second the server itself.
    let mut options = ConnectOptions::new(
        vec![format!("ws://{relay}/ws"), format!("ws://{addr}/ws")],
        token("alice", room, Grants::participant(), 600),
        common::audio_only("alice", room),
    );
    options.heartbeat = Duration::from_millis(300);
    options.idle_timeout = Duration::from_secs(3);
    let alice = Connection::connect(options).await.unwrap();
    eventually(Duration::from_secs(15), "alice hears bob", || {
        common::heard(&alice, "bob") > 20
    })
    .await;

    frozen.store(true, std::sync::atomic::Ordering::Relaxed);
    // The server lets go of the silent socket after 2 s, alice gives up on
    // it after 3 s and resumes the same media session on the other server.
    eventually(Duration::from_secs(15), "alice resumes", || {
        alice.stats().resumes == 1
    })
    .await;
    assert_eq!(alice.stats().rejoins, 0, "the media session was kept");
    bob.relay(Some("alice"), "still there?").await;
    eventually(Duration::from_secs(5), "bob's relay reaches alice", || {
        alice
            .stats()
            .relays
            .contains(&("bob".into(), "still there?".into()))
    })
    .await;
    let heard = common::heard(&alice, "bob");
    eventually(Duration::from_secs(5), "the call goes on", || {
        common::heard(&alice, "bob") > heard + 20
    })
    .await;
}
