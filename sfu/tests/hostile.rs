//! Bad input at the SFU's UDP port never disturbs a running call.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, join, secret, start_sfu};
use sfu::Sfu;
use veil_client::{Client, ClientConfig};

/// Frames alice or bob decrypted so far.
fn decrypted(c: &Client) -> u64 {
    c.with_stats(|s| s.remote.values().map(|r| r.frames_decrypted).sum::<u64>())
}

/// A fresh SFU with alice and bob in a call in `room`, media flowing.
async fn call(room: &str) -> (Sfu, Client, Client) {
    let sfu = start_sfu();
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key)).await;
    eventually(Duration::from_secs(20), "call is up", || {
        decrypted(&alice) > 50 && decrypted(&bob) > 50
    })
    .await;
    (sfu, alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_dropped_and_the_call_goes_on() {
    let room = "hostile";
    let (sfu, alice, bob) = call(room).await;
    let (a0, b0) = (decrypted(&alice), decrypted(&bob));

    // A bounded flood from a stranger on loopback: random bytes, RTP-shaped
    // junk, DTLS-shaped junk, truncated and oversized STUN with unknown ufrags.
    let target = sfu.udp_addr();
    let flood = tokio::task::spawn_blocking(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut sent = 0u32;
        while sent < 20_000 && Instant::now() < deadline {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 1400) as usize;
            let mut d: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
            match sent % 4 {
                0 if len > 12 => d[0] = 0x80, // RTP version bits
                1 if len > 13 => d[0] = 22,   // DTLS handshake
                2 if len > 24 => d[..8].copy_from_slice(&[0, 1, 0, 40, 0x21, 0x12, 0xA4, 0x42]), // STUN
                _ => {}
            }
            let _ = sock.send_to(&d, target);
            sent += 1;
        }
        sent
    });
    let sent = flood.await.unwrap();
    assert!(sent > 1000, "flood sent {sent}");

    eventually(
        Duration::from_secs(10),
        "media keeps flowing after the flood",
        || decrypted(&alice) > a0 + 50 && decrypted(&bob) > b0 + 50,
    )
    .await;
    for c in [&alice, &bob] {
        assert_eq!(
            c.with_stats(|s| s.remote.values().map(|r| r.decrypt_failures).sum::<u64>()),
            0
        );
    }
    assert_eq!(
        sfu.stats(room).await.participants.len(),
        2,
        "nobody was kicked"
    );
}

/// An SDP offer that makes the WebRTC stack itself panic (found by the
/// `sdp` fuzz target: str0m's "Pt locked multiple times") is refused with a
/// clear error; the worker hosting the room survives and the call goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_that_panics_the_webrtc_stack_is_refused_and_the_call_goes_on() {
    let room = "panicky";
    let (sfu, alice, bob) = call(room).await;

    let text =
        include_str!("../../fuzz/regressions/sdp/crash-556be42f324b1d71c3815fca215335986b1f0c2a");
    for attempt in 0..3 {
        let offer = str0m::change::SdpOffer::from_sdp_string(text).expect("it parses");
        match sfu.join(room, &format!("mallory-{attempt}"), offer).await {
            Err(sfu::JoinError::BadOffer(why)) => {
                assert!(why.contains("WebRTC stack"), "{why}")
            }
            other => panic!("expected a refused offer, got {:?}", other.map(|_| ())),
        }
    }
    let (a0, b0) = (decrypted(&alice), decrypted(&bob));
    eventually(
        Duration::from_secs(10),
        "media keeps flowing on the same worker",
        || decrypted(&alice) > a0 + 50 && decrypted(&bob) > b0 + 50,
    )
    .await;
    assert_eq!(sfu.participants(), 2, "nobody half-joined");
}

/// The next SFU offer in `events`, within 10 s.
async fn next_offer(
    events: &mut tokio::sync::mpsc::Receiver<sfu::ParticipantEvent>,
) -> str0m::change::SdpOffer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(sfu::ParticipantEvent::Offer { offer })) => return offer,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the session ended"),
            Err(_) => panic!("no offer within 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_answer_leaves_nothing_stuck_the_tracks_are_offered_again() {
    let sfu = start_sfu();
    let room = "answers";
    let key = secret(room, "p");
    let mut cfg = ClientConfig::new("alice", room, key.clone());
    cfg.video = None;
    let _alice = join(&sfu, cfg).await;
    let (_x, offer) = Client::prepare(ClientConfig::new("x", room, key.clone())).unwrap();
    let mut x = sfu.join(room, "x", offer).await.unwrap();
    // The SFU offers x alice's audio; x answers with something that does
    // not answer that offer (the SFU's answer to someone else).
    let first = next_offer(&mut x.events).await.to_sdp_string();
    assert!(first.contains("m=audio"), "{first}");
    let (_y, offer) = Client::prepare(ClientConfig::new("y", "elsewhere", key)).unwrap();
    let unrelated = sfu.join("elsewhere", "y", offer).await.unwrap().answer;
    let refused = sfu.answer(room, "x", unrelated).await;
    assert!(
        matches!(refused, Err(sfu::ControlError::BadSdp(_))),
        "{refused:?}"
    );
    // The track is offered again rather than left waiting for an answer
    // that already came.
    let again = next_offer(&mut x.events).await.to_sdp_string();
    let audio_lines = |sdp: &str| sdp.lines().filter(|l| l.starts_with("m=audio")).count();
    assert_eq!(audio_lines(&again), audio_lines(&first), "{again}");
    assert!(again.contains("a=msid:alice "), "{again}");
}
