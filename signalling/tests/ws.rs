//! Clients meet through the signalling WebSocket: tokens checked, SDP and SFU
//! events relayed, opaque E2EE messages relayed, bad input refused.

mod common;

use std::time::Duration;

use common::{eventually, heard, join, start_server, token};
use futures_util::{SinkExt, StreamExt};
use signalling::auth::{Authenticator, Grants, TokenRequest};
use signalling::client::{ConnectOptions, Connection};
use signalling::protocol::{ClientMessage, ServerMessage};
use tokio_tungstenite::tungstenite::Message;
use veil_client::{ClientConfig, RoomSecret};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_meet_through_signalling_and_relay_messages() {
    let addr = start_server().await;
    let room = "standup";
    let secret = RoomSecret::from_passphrase(room, "p");
    // Alice's token carries a display name; bob's does not.
    let mut named = TokenRequest::new("alice", room, Grants::participant());
    named.name = Some("Alice Liddell".into());
    let alice = join(
        addr,
        Some(common::auth().mint(common::KEY, named, 600).unwrap()),
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
    let decrypted = |c: &Connection, from: &str, kind: &str| {
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
            ["audio", "video"]
                .iter()
                .all(|k| decrypted(&alice, "bob", k) > 10 && decrypted(&bob, "alice", k) > 10)
        },
    )
    .await;

    // Who joined, by name where the token gave one.
    assert_eq!(
        bob.stats().names.get("alice").map(String::as_str),
        Some("Alice Liddell")
    );
    assert_eq!(alice.stats().names.get("bob"), None);

    // Opaque relay, to the room and to one participant.
    let to_room = ClientMessage::Relay {
        to: None,
        payload: "c2VhbGVkIGtleSBvZmZlcg".into(),
    };
    alice.send(to_room).await;
    let direct = ClientMessage::Relay {
        to: Some("alice".into()),
        payload: "b3BhcXVl".into(),
    };
    bob.send(direct).await;
    eventually(
        Duration::from_secs(5),
        "relays arrive, labelled with the sender",
        || {
            bob.stats()
                .relays
                .contains(&("alice".into(), "c2VhbGVkIGtleSBvZmZlcg".into()))
                && alice
                    .stats()
                    .relays
                    .contains(&("bob".into(), "b3BhcXVl".into()))
        },
    )
    .await;
    assert!(
        alice.stats().relays.iter().all(|(from, _)| from != "alice"),
        "no echo"
    );

    // A message five times the sockets' read buffer still arrives whole:
    // the buffer is kept small for memory, not as a limit.
    let large: String = "QUJD".repeat(10 * 1024);
    assert!(large.len() > 4 * signalling::protocol::WS_READ_BUFFER_BYTES);
    alice
        .send(ClientMessage::Relay {
            to: Some("bob".into()),
            payload: large.clone(),
        })
        .await;
    eventually(
        Duration::from_secs(5),
        "a 40 KiB relay arrives intact",
        || {
            bob.stats()
                .relays
                .contains(&("alice".into(), large.clone()))
        },
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_sockets() {
    let addr = common::start_server_state(|s| s.with_max_connections_per_ip(2)).await;
    let url = format!("ws://{addr}/ws");
    let (_a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let err = tokio_tungstenite::connect_async(&url).await.unwrap_err();
    assert!(err.to_string().contains("429"), "{err}");
    // A closed socket frees its slot (slow-loris sockets time out the same way).
    drop(b);
    let mut freed = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(&url).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the slot comes back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_grants_and_self_mute_decide_what_flows() {
    let addr = start_server().await;
    let room = "grants";
    let cfg = |who: &str| {
        let mut c = ClientConfig::new(who, room, RoomSecret::from_passphrase(room, "p"));
        c.video = None;
        c.record_digests = false;
        c
    };
    let alice = join(
        addr,
        Some(token("alice", room, Grants::participant(), 600)),
        cfg("alice"),
    )
    .await
    .unwrap();
    // Bob may listen but not speak or write; carol may speak but not listen.
    let listener = Grants {
        publish: false,
        publish_data: false,
        ..Grants::participant()
    };
    let bob = join(addr, Some(token("bob", room, listener, 600)), cfg("bob"))
        .await
        .unwrap();
    let speaker = Grants {
        subscribe: false,
        ..Grants::participant()
    };
    let carol = join(addr, Some(token("carol", room, speaker, 600)), cfg("carol"))
        .await
        .unwrap();

    eventually(
        Duration::from_secs(20),
        "bob and alice hear who may speak",
        || heard(&bob, "alice") > 20 && heard(&bob, "carol") > 20 && heard(&alice, "carol") > 20,
    )
    .await;
    assert_eq!(heard(&alice, "bob"), 0, "bob's track is not forwarded");
    assert!(bob.with_stats(|s| {
        s.errors
            .iter()
            .any(|e| e.contains("does not allow publishing"))
    }));
    assert!(
        carol.with_stats(|s| s.remote.is_empty()),
        "carol receives nothing"
    );

    // Messages: bob's relay is refused, his data-channel message dropped;
    // carol's data message reaches alice.
    bob.relay(None, "let me talk").await;
    eventually(Duration::from_secs(5), "bob's relay is refused", || {
        bob.with_stats(|s| s.errors.iter().any(|e| e.starts_with("forbidden")))
    })
    .await;
    assert!(bob.with_client(|c| c.try_send_data(b"from bob")));
    assert!(carol.with_client(|c| c.try_send_data(b"from carol")));
    eventually(Duration::from_secs(5), "carol's message arrives", || {
        alice.with_stats(|s| s.messages.iter().any(|m| m.2 == b"from carol"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        alice.with_stats(|s| s.messages.iter().all(|m| m.2 != b"from bob")),
        "bob's message is not relayed"
    );

    // Alice mutes her microphone: the SFU stops forwarding it; unmuting
    // brings it back.
    alice
        .send(ClientMessage::Mute {
            kind: sfu::TrackKind::Audio,
            muted: true,
        })
        .await;
    // Received counts reach the stats in batches, at the latest
    // `STATS_EVERY` after a track goes quiet: wait that out for a baseline.
    tokio::time::sleep(veil_client::session::STATS_EVERY + Duration::from_millis(250)).await;
    let at_mute = heard(&bob, "alice");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        heard(&bob, "alice") <= at_mute + 2,
        "muted audio is not forwarded"
    );
    alice
        .send(ClientMessage::Mute {
            kind: sfu::TrackKind::Audio,
            muted: false,
        })
        .await;
    eventually(Duration::from_secs(5), "unmuted audio flows again", || {
        heard(&bob, "alice") > at_mute + 20
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_join_hears_everyone_and_is_sent_no_video() {
    let addr = start_server().await;
    let room = "listeners";
    let secret = RoomSecret::from_passphrase(room, "p");
    let alice = join(
        addr,
        Some(token("alice", room, Grants::participant(), 600)),
        ClientConfig::new("alice", room, secret.clone()),
    )
    .await
    .unwrap();
    let mut options = ConnectOptions::new(
        vec![format!("ws://{addr}/ws")],
        token("bob", room, Grants::participant(), 600),
        common::audio_only("bob", room),
    );
    options.audio_only = true;
    let bob = Connection::connect(options).await.unwrap();
    let carol = join(
        addr,
        Some(token("carol", room, Grants::participant(), 600)),
        common::audio_only("carol", room),
    )
    .await
    .unwrap();
    let video_from_alice = |c: &Connection| {
        c.with_stats(|s| {
            s.remote
                .get(&("alice".to_string(), "video"))
                .map_or(0, |r| r.frames_decrypted)
        })
    };
    eventually(
        Duration::from_secs(20),
        "bob hears alice, alice hears bob, carol sees alice",
        || heard(&bob, "alice") > 20 && heard(&alice, "bob") > 20 && video_from_alice(&carol) > 10,
    )
    .await;
    assert_eq!(video_from_alice(&bob), 0, "bob joined audio-only");
    assert!(
        bob.with_stats(|s| s.remote.keys().all(|(_, kind)| *kind == "audio")),
        "bob was sent video"
    );
}

/// Reads until the server closes: the error codes it sent (with their
/// `fatal` flags) and the close code.
async fn until_closed(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (Vec<(String, bool)>, Option<u16>) {
    let mut errors = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Ok(ServerMessage::Error { code, fatal, .. }) = serde_json::from_str(&t) {
                    errors.push((code, fatal));
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (errors, frame.map(|f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            _ => return (errors, None),
        }
    }
}

/// A joined socket that sends what the protocol does not know is told so
/// and kept; one that keeps at it, or floods, is closed with a reason; an
/// unknown version is refused. The room's call goes on throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_sockets_are_told_then_closed_and_the_room_goes_on() {
    let addr = start_server().await;
    let room = "unruly";
    let alice = common::join_audio(addr, room, "alice").await;
    let bob = common::join_audio(addr, room, "bob").await;
    eventually(
        Duration::from_secs(20),
        "alice and bob hear each other",
        || heard(&alice, "bob") > 20 && heard(&bob, "alice") > 20,
    )
    .await;
    let before = (heard(&alice, "bob"), heard(&bob, "alice"));

    // A joined socket: raw, with a real offer.
    let joined = |who: &'static str, v: u32| {
        let cfg = common::audio_only(who, room);
        async move {
            let (_pending, offer) = veil_client::Client::prepare(cfg).unwrap();
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                .await
                .unwrap();
            let join = ClientMessage::Join {
                v,
                token: Some(token(who, room, Grants::participant(), 600)),
                offer,
                audio_only: false,
            };
            ws.send(Message::Text(serde_json::to_string(&join).unwrap().into()))
                .await
                .unwrap();
            ws
        }
    };

    // Unknown types and binary frames: a non-fatal error each, then, past
    // 20 malformed messages, a close for abuse.
    let mut ws = joined("mallory", 1).await;
    ws.send(Message::Text(r#"{"type":"dance"}"#.into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    for _ in 0..20 {
        ws.send(Message::Text("{not json".into())).await.unwrap();
    }
    let (errors, close) = until_closed(&mut ws).await;
    assert_eq!(
        errors.first(),
        Some(&("bad_message".to_string(), false)),
        "{errors:?}"
    );
    assert_eq!(
        errors
            .iter()
            .filter(|(c, fatal)| c == "bad_message" && !fatal)
            .count(),
        20,
        "each of the first 20 is answered and forgiven: {errors:?}"
    );
    assert_eq!(
        errors.last(),
        Some(&("abuse".to_string(), true)),
        "{errors:?}"
    );
    assert_eq!(close, Some(4400));

    // A flood of well-formed messages: closed for its rate.
    let mut ws = joined("flooder", 1).await;
    for _ in 0..400 {
        if ws
            .send(Message::Text(r#"{"type":"ping"}"#.into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (errors, close) = until_closed(&mut ws).await;
    assert_eq!(
        errors.last(),
        Some(&("rate_limited".to_string(), true)),
        "{errors:?}"
    );
    assert_eq!(close, Some(4429));

    // A protocol version this server does not speak.
    let mut ws = joined("future", 2).await;
    let (errors, close) = until_closed(&mut ws).await;
    assert_eq!(errors, [("unsupported_version".to_string(), true)]);
    assert_eq!(close, Some(4400));

    // Alice and bob never noticed.
    eventually(Duration::from_secs(5), "the call goes on", || {
        heard(&alice, "bob") > before.0 + 20 && heard(&bob, "alice") > before.1 + 20
    })
    .await;
}
