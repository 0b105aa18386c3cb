//! A room of four over real UDP: everyone publishes encrypted audio and
//! simulcast video and decrypts everyone else; the SFU never alters a byte.

mod common;

use std::time::Duration;

use common::{eventually, join, secret, start_sfu};
use veil_client::ClientConfig;

const ROOM: &str = "standup";
const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_participants_decrypt_each_other_and_payloads_arrive_unchanged() {
    let sfu = start_sfu();
    let key = secret(ROOM, "correct horse battery staple");
    let mut clients = Vec::new();
    for name in NAMES {
        clients.push(join(&sfu, ClientConfig::new(name, ROOM, key.clone())).await);
    }

    // Every client decrypts a steady stream from each of the three others.
    eventually(
        Duration::from_secs(20),
        "every pair decrypts audio and video",
        || {
            clients.iter().enumerate().all(|(i, c)| {
                c.with_stats(|s| {
                    NAMES
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .all(|(_, other)| {
                            ["audio", "video"].iter().all(|kind| {
                                s.remote
                                    .get(&(other.to_string(), *kind))
                                    .is_some_and(|r| r.frames_decrypted >= 20)
                            })
                        })
                })
            })
        },
    )
    .await;

    for (i, c) in clients.iter().enumerate() {
        let stats = c.stats();
        for (j, other) in NAMES.iter().enumerate() {
            if i == j {
                continue;
            }
            for kind in ["audio", "video"] {
                let r = &stats.remote[&(other.to_string(), kind)];
                assert_eq!(
                    r.decrypt_failures, 0,
                    "{} got undecryptable {kind} from {other}",
                    NAMES[i]
                );
                assert_eq!(r.frames_received, r.frames_decrypted);
            }
        }
    }

    // Payload identity: every encrypted frame a receiver reassembled is
    // byte-for-byte a frame some sender produced (same SFrame KID and CTR).
    let mut compared = 0;
    for (i, receiver) in clients.iter().enumerate() {
        let received = receiver.stats().received_digests;
        for (j, sender) in clients.iter().enumerate() {
            if i == j {
                continue;
            }
            let sent = sender.stats().sent_digests;
            let kid = veil_client::keys::key_id(NAMES[j], 0);
            for ((k, ctr), digest) in received.iter().filter(|((k, _), _)| *k == kid) {
                assert_eq!(
                    sent.get(&(*k, *ctr)),
                    Some(digest),
                    "frame {ctr} of {} altered in flight",
                    NAMES[j]
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 200, "compared {compared} frames");

    let stats = sfu.stats(ROOM).await;
    assert_eq!(stats.participants.len(), 4);
    for p in &stats.participants {
        assert_eq!(
            p.tracks_published, 2,
            "{} publishes audio and video",
            p.participant
        );
        assert_eq!(
            p.tracks_subscribed, 6,
            "{} receives 3 x (audio, video)",
            p.participant
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_without_the_key_decrypts_nothing_and_others_are_unaffected() {
    let sfu = start_sfu();
    let room = "locked";
    let key = secret(room, "the real passphrase");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key)).await;
    let mut mallory_cfg = ClientConfig::new("mallory", room, secret(room, "a guess"));
    mallory_cfg.audio = false;
    mallory_cfg.video = None;
    let mallory = join(&sfu, mallory_cfg).await;

    eventually(
        Duration::from_secs(20),
        "mallory receives frames she cannot read",
        || {
            mallory.with_stats(|s| {
                s.remote
                    .get(&("alice".into(), "video"))
                    .is_some_and(|r| r.frames_received >= 20)
            })
        },
    )
    .await;
    eventually(Duration::from_secs(10), "bob decrypts alice", || {
        bob.with_stats(|s| {
            s.remote
                .get(&("alice".into(), "video"))
                .is_some_and(|r| r.frames_decrypted >= 20)
        })
    })
    .await;

    let m = mallory.stats();
    for (who, kind) in [
        ("alice", "audio"),
        ("alice", "video"),
        ("bob", "audio"),
        ("bob", "video"),
    ] {
        let r = &m.remote[&(who.to_string(), kind)];
        assert_eq!(
            r.frames_decrypted, 0,
            "wrong key must not decrypt {who}'s {kind}"
        );
        assert_eq!(r.decrypt_failures, r.frames_received);
    }
    assert_eq!(
        bob.stats().remote[&("alice".to_string(), "video")].decrypt_failures,
        0
    );
    drop(alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_share_is_a_second_encrypted_video_track() {
    let sfu = start_sfu();
    let room = "demo-day";
    let key = secret(room, "p");
    let mut alice_cfg = ClientConfig::new("alice@example.org", room, key.clone());
    alice_cfg.screen = Some(veil_client::VideoConfig {
        simulcast: false,
        fps: 5,
        frame_bytes: [6000, 0, 0],
        ..Default::default()
    });
    let _alice = join(&sfu, alice_cfg).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key)).await;
    eventually(
        Duration::from_secs(20),
        "bob gets alice's camera and her screen, under her real name",
        || {
            bob.with_stats(|s| {
                ["audio", "video", "screen"].iter().all(|k| {
                    s.remote
                        .get(&("alice@example.org".to_string(), *k))
                        .is_some_and(|r| r.frames_decrypted >= 10)
                })
            })
        },
    )
    .await;
    let stats = bob.stats();
    let screen = &stats.remote[&("alice@example.org".to_string(), "screen")];
    assert_eq!(screen.decrypt_failures, 0);
    assert_eq!(
        screen.frames_per_layer[1] + screen.frames_per_layer[2],
        0,
        "the screen is one layer"
    );
    let camera = &stats.remote[&("alice@example.org".to_string(), "video")];
    assert!(
        camera.frames_decrypted > screen.frames_decrypted,
        "15 fps camera vs 5 fps screen"
    );
    let sfu_stats = sfu.stats(room).await;
    let alice = sfu_stats
        .participants
        .iter()
        .find(|p| p.participant == "alice@example.org")
        .unwrap();
    assert_eq!(alice.tracks_published, 3);
}
