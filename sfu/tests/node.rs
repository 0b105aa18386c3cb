//! Node-level behaviour: loudest-N audio in big rooms, advertised addresses.

mod common;

use std::time::Duration;

use common::{eventually, init_tracing, join, secret};
use sfu::{ParticipantEvent, Sfu, SfuConfig};
use veil_client::{Client, ClientConfig};

fn audio_from(c: &Client, from: &str) -> u64 {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), "audio"))
            .map_or(0, |r| r.frames_decrypted)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rooms_forward_only_the_loudest_audio() {
    init_tracing();
    let sfu = Sfu::start(SfuConfig {
        loudest_audio_threshold: 2,
        loudest_audio: 1,
        ..SfuConfig::default()
    })
    .unwrap();
    let room = "town hall";
    let key = secret(room, "p");
    let mut clients = Vec::new();
    for (name, level) in [("loud", 10), ("murmur", 60), ("listener", 127)] {
        let mut cfg = ClientConfig::new(name, room, key.clone());
        cfg.video = None;
        cfg.audio_level = level;
        clients.push(join(&sfu, cfg).await);
    }
    let listener = &clients[2];
    eventually(
        Duration::from_secs(20),
        "the listener hears the loudest",
        || audio_from(listener, "loud") > 50,
    )
    .await;
    // Let the ranking and the listener's counts settle, then watch a window.
    common::received_counts_settle().await;
    let (loud, murmur) = (audio_from(listener, "loud"), audio_from(listener, "murmur"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        audio_from(listener, "loud") > loud + 30,
        "the loudest is forwarded"
    );
    assert_eq!(
        audio_from(listener, "murmur"),
        murmur,
        "the second speaker is held back"
    );

    // The murmur gets loud: the room follows.
    clients[1].set_audio_level(0).await;
    clients[0].set_audio_level(127).await;
    let murmur = audio_from(listener, "murmur");
    eventually(
        Duration::from_secs(10),
        "the new loudest is forwarded",
        || audio_from(listener, "murmur") > murmur + 30,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advertised_address_is_what_clients_are_told() {
    init_tracing();
    // 203.0.113.0/24 is documentation space: nothing is sent there, the test
    // only reads the SDP answer.
    let sfu = Sfu::start(SfuConfig {
        advertised_ip: Some("203.0.113.7".parse().unwrap()),
        ..SfuConfig::default()
    })
    .unwrap();
    let key = secret("r", "p");
    let (_pending, offer) = Client::prepare(ClientConfig::new("a", "r", key)).unwrap();
    let joined = sfu.join("r", "a", offer).await.unwrap();
    let sdp = joined.answer.to_sdp_string();
    let udp = format!("203.0.113.7 {} typ host", sfu.udp_addr().port());
    let tcp = format!(
        "203.0.113.7 {} typ host tcptype passive",
        sfu.tcp_addr().unwrap().port()
    );
    assert!(sdp.contains(&udp), "UDP candidate advertised:\n{sdp}");
    assert!(sdp.contains(&tcp), "TCP candidate advertised:\n{sdp}");
    assert!(
        !sdp.contains("127.0.0.1"),
        "the bound address is not leaked"
    );
}

/// Whether `who` is in the SFU's snapshot of `room`.
async fn present(sfu: &Sfu, room: &str, who: &str) -> bool {
    sfu.stats(room)
        .await
        .participants
        .iter()
        .any(|p| p.participant == who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_signalling_stops_reading_events_is_ended_not_left_stuck() {
    init_tracing();
    // A small queue, so a few arrivals fill it.
    let sfu = Sfu::start(SfuConfig {
        event_queue: 4,
        ..SfuConfig::default()
    })
    .unwrap();
    let room = "busy";
    let key = secret(room, "p");
    // Two sessions whose events nobody reads: "deaf" in a room others join,
    // "idle" alone in another room, where nothing happens to tell it.
    let (_deaf, offer) = Client::prepare(ClientConfig::new("deaf", room, key.clone())).unwrap();
    let mut deaf = sfu.join(room, "deaf", offer).await.unwrap();
    let (_idle, offer) =
        Client::prepare(ClientConfig::new("idle", "quiet", secret("quiet", "p"))).unwrap();
    let _idle_joined = sfu.join("quiet", "idle", offer).await.unwrap();
    // Every arrival is news deaf must get: who joined, their tracks, the
    // offer that adds them.
    let mut others = Vec::new();
    for name in ["a", "b", "c"] {
        let mut cfg = ClientConfig::new(name, room, key.clone());
        cfg.video = None;
        others.push(join(&sfu, cfg).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while present(&sfu, room, "deaf").await {
        assert!(
            std::time::Instant::now() < deadline,
            "a session that cannot be told anything stays in the room"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its signalling, should it read again, finds the queued events and
    // then the end of the session, with why: nothing after the overflow
    // slipped in, and the last slot was kept for the ending.
    let mut queued = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), deaf.events.recv()).await {
            Ok(Some(event)) => queued.push(event),
            Ok(None) => break,
            Err(_) => panic!("the event stream did not end with the session"),
        }
    }
    assert_eq!(queued.len(), 4, "the queue held what fitted: {queued:?}");
    assert!(
        queued[..3]
            .iter()
            .all(|e| !matches!(e, ParticipantEvent::Disconnected { .. })),
        "{queued:?}"
    );
    match &queued[3] {
        ParticipantEvent::Disconnected { reason, rejoin } => {
            assert!(reason.contains("stopped reading"), "{reason}");
            assert!(rejoin, "a lost session may join again");
        }
        other => panic!("the stream ended without saying why: {other:?}"),
    }
    // Not a media timeout: "idle" never connected either, and stays.
    assert!(present(&sfu, "quiet", "idle").await);
    // The room goes on without it.
    let heard = audio_from(&others[0], "b");
    eventually(Duration::from_secs(10), "a still hears b", || {
        audio_from(&others[0], "b") > heard + 20
    })
    .await;
}
