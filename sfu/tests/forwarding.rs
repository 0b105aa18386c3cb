//! Forwarding behaviour over real UDP: simulcast switching, NACK recovery
//! through a lossy proxy, active speakers, leaving and rejoining.

mod common;

use std::time::Duration;

use common::{eventually, join, secret, start_sfu};
use veil_client::ClientConfig;
use veil_client::impair::{Impairment, ImpairmentProxy};

fn video_layer(c: &veil_client::Client, from: &str) -> Option<u8> {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), "video"))
            .and_then(|r| r.last_layer)
    })
}

fn frames_on_layer(c: &veil_client::Client, from: &str, layer: usize) -> u64 {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), "video"))
            .map_or(0, |r| r.frames_per_layer[layer])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_switches_down_and_up_at_keyframes() {
    let sfu = start_sfu();
    let room = "simulcast";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    let bob = join(&sfu, bob_cfg).await;

    eventually(
        Duration::from_secs(20),
        "bob gets alice's high layer",
        || video_layer(&bob, "alice") == Some(2),
    )
    .await;

    // The tile shrinks: the subscriber asks for the lowest layer.
    sfu.set_max_layer(room, "bob", "alice", 0).await.unwrap();
    let low_before = frames_on_layer(&bob, "alice", 0);
    eventually(Duration::from_secs(10), "down-switch to layer 0", || {
        video_layer(&bob, "alice") == Some(0) && frames_on_layer(&bob, "alice", 0) > low_before + 10
    })
    .await;

    sfu.set_max_layer(room, "bob", "alice", 2).await.unwrap();
    let high_before = frames_on_layer(&bob, "alice", 2);
    eventually(Duration::from_secs(10), "up-switch back to layer 2", || {
        video_layer(&bob, "alice") == Some(2)
            && frames_on_layer(&bob, "alice", 2) > high_before + 10
    })
    .await;

    let r = bob.stats().remote[&("alice".to_string(), "video")].clone();
    assert_eq!(r.decrypt_failures, 0);
    assert_eq!(
        r.frames_received, r.frames_decrypted,
        "every switch landed on a whole frame"
    );
    // The SFU reads each packet's layer from its Dependency Descriptor and
    // copies the extension into every forwarded packet unchanged.
    assert_eq!(
        r.packets_with_dependency_descriptor, r.packets,
        "every forwarded video packet carries the publisher's Dependency Descriptor"
    );
    let stats = sfu.stats(room).await;
    let bob_stats = stats
        .participants
        .iter()
        .find(|p| p.participant == "bob")
        .unwrap();
    assert!(
        bob_stats.layer_switches >= 3,
        "initial + down + up: {}",
        bob_stats.layer_switches
    );
    assert!(
        alice.stats().keyframe_requests >= 2,
        "switches asked the publisher for keyframes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_recovers_five_percent_loss_through_a_lossy_proxy() {
    let sfu = start_sfu();
    let room = "lossy";
    let key = secret(room, "p");
    let mut alice_cfg = ClientConfig::new("alice", room, key.clone());
    // One stream of two-packet frames: no layer switch can cut the run of
    // frame sequence numbers, so every gap is a loss NACK failed to repair.
    alice_cfg.video = Some(veil_client::VideoConfig {
        simulcast: false,
        fps: 30,
        frame_bytes: [1500, 0, 0],
        ..Default::default()
    });
    let _alice = join(&sfu, alice_cfg).await;

    let proxy = ImpairmentProxy::start(
        sfu.udp_addr(),
        Impairment {
            loss: 0.05,
            seed: 7,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    bob_cfg.audio = false;
    bob_cfg.via_proxy = Some(proxy.addr());
    let bob = join(&sfu, bob_cfg).await;
    eventually(Duration::from_secs(20), "bob receives alice", || {
        video_layer(&bob, "alice").is_some()
    })
    .await;
    let start = frames_on_layer(&bob, "alice", 0);
    eventually(Duration::from_secs(30), "300 more frames", || {
        frames_on_layer(&bob, "alice", 0) >= start + 300
    })
    .await;

    let r = bob.stats().remote[&("alice".to_string(), "video")].clone();
    let mut seqs: Vec<u32> = r.sequences(0).collect();
    seqs.sort_unstable();
    seqs.dedup();
    // The steady part: the last 300 distinct frames and the gaps among them.
    let first = seqs[seqs.len() - 300];
    let last = *seqs.last().unwrap();
    let run: Vec<u32> = seqs.iter().copied().filter(|s| *s >= first).collect();
    let expected = (last - first + 1) as usize;
    let missing = expected - run.len();
    let (forwarded, dropped) = proxy.counts();
    eprintln!(
        "5% loss: {missing} of {expected} frames missing; proxy dropped {dropped} of {}",
        forwarded + dropped
    );
    assert!(
        dropped > 20,
        "the proxy really dropped packets ({dropped} of {forwarded})"
    );
    assert!(
        missing * 100 <= expected,
        "NACK/RTX left {missing} of {expected} frames missing at 5% packet loss"
    );
    assert_eq!(r.decrypt_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_speaker_follows_the_loudest_audio() {
    let sfu = start_sfu();
    let room = "speakers";
    let key = secret(room, "p");
    let mut clients = Vec::new();
    for (name, level) in [("alice", 127), ("bob", 20), ("carol", 127)] {
        let mut cfg = ClientConfig::new(name, room, key.clone());
        cfg.video = None;
        cfg.audio_level = level;
        clients.push(join(&sfu, cfg).await);
    }
    let speakers = |i: usize| clients[i].with_stats(|s| s.active_speakers.clone());
    eventually(Duration::from_secs(15), "bob is the active speaker", || {
        (0..3).all(|i| speakers(i) == vec!["bob".to_string()])
    })
    .await;

    clients[1].set_audio_level(127).await;
    clients[2].set_audio_level(10).await;
    eventually(Duration::from_secs(10), "carol takes over", || {
        (0..3).all(|i| speakers(i) == vec!["carol".to_string()])
    })
    .await;
    assert_eq!(
        sfu.stats(room).await.active_speakers,
        vec!["carol".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_leaves_and_rejoins() {
    let sfu = start_sfu();
    let room = "churn";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key.clone())).await;
    let decrypted = |c: &veil_client::Client, from: &str| {
        c.with_stats(|s| {
            s.remote
                .get(&(from.to_string(), "video"))
                .map_or(0, |r| r.frames_decrypted)
        })
    };
    eventually(Duration::from_secs(20), "both see each other", || {
        decrypted(&alice, "bob") > 10 && decrypted(&bob, "alice") > 10
    })
    .await;

    sfu.leave(room, "bob", "bye").await.unwrap();
    eventually(Duration::from_secs(5), "bob is told", || {
        bob.stats().disconnected.is_some()
    })
    .await;
    eventually(
        Duration::from_secs(5),
        "alice no longer receives bob's tracks",
        || futures_lite_block(sfu.stats(room)).participants.len() == 1,
    )
    .await;
    let stats = sfu.stats(room).await;
    assert_eq!(stats.participants[0].participant, "alice");
    assert_eq!(stats.participants[0].tracks_subscribed, 0);
    drop(bob);

    let before = decrypted(&alice, "bob");
    let bob_again = join(&sfu, ClientConfig::new("bob", room, key)).await;
    eventually(Duration::from_secs(20), "they see each other again", || {
        decrypted(&alice, "bob") > before + 10 && decrypted(&bob_again, "alice") > 10
    })
    .await;
    assert_eq!(sfu.stats(room).await.participants.len(), 2);
    assert!(sfu.leave(room, "nobody", "x").await.is_err());
}

/// Runs a future to completion from a synchronous check closure.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_messages_reach_the_room_end_to_end_encrypted() {
    let sfu = start_sfu();
    let room = "chat";
    let key = secret(room, "p");
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let mut cfg = ClientConfig::new(name, room, key.clone());
        cfg.video = None;
        clients.push(join(&sfu, cfg).await);
    }
    let mut mallory_cfg = ClientConfig::new("mallory", room, secret(room, "guess"));
    mallory_cfg.video = None;
    let mallory = join(&sfu, mallory_cfg).await;
    // Keys for remote senders are set up when their tracks arrive.
    eventually(Duration::from_secs(20), "audio flows between all", || {
        clients.iter().all(|c| {
            c.with_stats(|s| s.remote.values().filter(|r| r.frames_received > 5).count() == 3)
        })
    })
    .await;

    for i in 0..50u32 {
        clients[0]
            .send_data(format!("hello team #{i}").as_bytes())
            .await;
    }
    eventually(
        Duration::from_secs(10),
        "bob and carol get all 50 messages",
        || {
            clients[1..]
                .iter()
                .all(|c| c.with_stats(|s| s.messages.len() == 50))
        },
    )
    .await;
    for c in &clients[1..] {
        let messages = c.stats().messages;
        for (i, (label, owner, plain)) in messages.iter().enumerate() {
            assert_eq!((label.as_str(), owner.as_str()), ("alice", "alice"));
            assert_eq!(
                plain,
                format!("hello team #{i}").as_bytes(),
                "reliable and in order"
            );
        }
    }
    assert!(
        clients[0].stats().messages.is_empty(),
        "no echo to the sender"
    );
    eventually(Duration::from_secs(5), "mallory cannot read them", || {
        mallory.stats().message_failures == 50
    })
    .await;
    assert!(mallory.stats().messages.is_empty());

    // A quiet channel while audio flows: str0m (patched, see
    // third_party/str0m/VEIL-PATCHES.md) stops polling SCTP once it is idle.
    // A message written later must wake it on both hops.
    tokio::time::sleep(Duration::from_secs(3)).await;
    clients[2].send_data(b"after a quiet spell").await;
    eventually(Duration::from_secs(10), "the late message arrives", || {
        clients[0].with_stats(|s| s.messages.len() == 1)
            && clients[1].with_stats(|s| s.messages.len() == 51)
    })
    .await;
    assert_eq!(clients[0].stats().messages[0].2, b"after a quiet spell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_downlink_moves_the_subscriber_down_and_uncapping_moves_it_back_up() {
    let sfu = start_sfu();
    let room = "bwe";
    let key = secret(room, "p");
    let _alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let proxy = ImpairmentProxy::start(sfu.udp_addr(), Impairment::default())
        .await
        .unwrap();
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    bob_cfg.via_proxy = Some(proxy.addr());
    let bob = join(&sfu, bob_cfg).await;
    eventually(Duration::from_secs(20), "bob gets the high layer", || {
        video_layer(&bob, "alice") == Some(2)
    })
    .await;

    // Alice's layers run at about 50, 180 and 480 kbit/s; 250 kbit/s fits
    // only the lower two.
    proxy.set_downlink_bps(Some(250_000));
    let low =
        |c: &veil_client::Client| frames_on_layer(c, "alice", 0) + frames_on_layer(c, "alice", 1);
    eventually(
        Duration::from_secs(30),
        "TWCC estimate pulls bob off the high layer for good",
        || matches!(video_layer(&bob, "alice"), Some(0 | 1)) && low(&bob) >= 45,
    )
    .await;
    let estimate = |sfu: &sfu::Sfu| {
        let stats = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(sfu.stats(room))
        });
        stats
            .participants
            .iter()
            .find(|p| p.participant == "bob")
            .and_then(|p| p.egress_estimate_bps)
    };
    let capped = estimate(&sfu).unwrap();
    assert!(
        capped < 1_000_000,
        "estimate {capped} follows the 250 kbit/s cap"
    );
    assert!(
        proxy.queue_drops() > 0 || capped < 500_000,
        "the bottleneck was felt"
    );

    proxy.set_downlink_bps(None);
    eventually(
        Duration::from_secs(40),
        "estimate recovers and bob returns to the high layer",
        || video_layer(&bob, "alice") == Some(2),
    )
    .await;
    let r = bob.stats().remote[&("alice".to_string(), "video")].clone();
    assert!(r.frames_per_layer[2] > 0 && (r.frames_per_layer[0] + r.frames_per_layer[1]) > 0);
    eprintln!(
        "capped estimate {capped} bit/s; frames per layer {:?}; queue drops {}",
        r.frames_per_layer,
        proxy.queue_drops()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_without_udp_joins_over_ice_tcp() {
    let sfu = start_sfu();
    assert!(sfu.tcp_addr().is_some(), "ICE-TCP is on by default");
    let room = "tcp";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.transport = veil_client::Transport::Tcp;
    let bob = join(&sfu, bob_cfg).await;
    let decrypted = |c: &veil_client::Client, from: &str, kind: &str| {
        c.with_stats(|s| {
            s.remote
                .get(&(from.to_string(), kind))
                .map_or(0, |r| r.frames_decrypted)
        })
    };
    eventually(
        Duration::from_secs(20),
        "media flows both ways over TCP",
        || {
            ["audio", "video"]
                .iter()
                .all(|k| decrypted(&bob, "alice", k) > 20 && decrypted(&alice, "bob", k) > 20)
        },
    )
    .await;
    assert!(bob.with_stats(|s| s.remote.values().all(|r| r.decrypt_failures == 0)));
    let (udp, tcp) = bob.with_stats(|s| (s.udp_datagrams_in, s.tcp_frames_in));
    assert_eq!(udp, 0, "nothing reached bob over UDP");
    assert!(tcp > 50, "{tcp} frames over TCP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynacast_pauses_layers_nobody_watches() {
    let sfu = start_sfu();
    let room = "dynacast";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let sent = |layer: usize| alice.with_stats(|s| s.video_frames_sent[layer]);

    // Alone in the room: nobody watches, so alice is told to pause video.
    eventually(
        Duration::from_secs(10),
        "alice pauses with no audience",
        || alice.with_stats(|s| s.layers_wanted == Some(None)),
    )
    .await;
    let paused_at = (sent(0), sent(1), sent(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        (sent(0), sent(1), sent(2)),
        paused_at,
        "no video while nobody watches"
    );

    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    let bob = join(&sfu, bob_cfg).await;
    eventually(
        Duration::from_secs(20),
        "bob watches the high layer",
        || video_layer(&bob, "alice") == Some(2),
    )
    .await;

    // Bob's tile shrinks: only the low layer is wanted; the others stop.
    sfu.set_max_layer(room, "bob", "alice", 0).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "alice is told only layer 0 is wanted",
        || alice.with_stats(|s| s.layers_wanted == Some(Some(0))),
    )
    .await;
    let (l0, l1, l2) = (sent(0), sent(1), sent(2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(sent(0) > l0 + 5, "layer 0 keeps going");
    assert_eq!((sent(1), sent(2)), (l1, l2), "layers 1 and 2 are paused");
    eventually(
        Duration::from_secs(10),
        "bob still decrypts alice on layer 0",
        || video_layer(&bob, "alice") == Some(0),
    )
    .await;

    // Tile grows again: layer 2 resumes, with a keyframe, and bob gets it.
    sfu.set_max_layer(room, "bob", "alice", 2).await.unwrap();
    eventually(Duration::from_secs(10), "bob is back on layer 2", || {
        video_layer(&bob, "alice") == Some(2)
    })
    .await;
    assert!(sent(2) > l2);
    assert_eq!(
        bob.stats().remote[&("alice".to_string(), "video")].decrypt_failures,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_quality_tells_the_room_who_is_on_a_bad_link() {
    let sfu = start_sfu();
    let room = "quality";
    let key = secret(room, "p");
    let mut alice_cfg = ClientConfig::new("alice", room, key.clone());
    alice_cfg.video = None;
    let alice = join(&sfu, alice_cfg).await;
    let proxy = ImpairmentProxy::start(
        sfu.udp_addr(),
        Impairment {
            loss: 0.15,
            seed: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut bob_cfg = ClientConfig::new("bob", room, key.clone());
    bob_cfg.video = None;
    bob_cfg.via_proxy = Some(proxy.addr());
    let _bob = join(&sfu, bob_cfg).await;

    eventually(
        Duration::from_secs(20),
        "alice hears that bob's link is poor and hers is excellent",
        || {
            alice.with_stats(|s| {
                s.connection_quality.get("bob").map(String::as_str) == Some("poor")
                    && s.connection_quality.get("alice").map(String::as_str) == Some("excellent")
            })
        },
    )
    .await;
    // Grades are sent when they change; someone who joins later still
    // learns the grades already given.
    let mut carol_cfg = ClientConfig::new("carol", room, key);
    carol_cfg.video = None;
    let carol = join(&sfu, carol_cfg).await;
    eventually(
        Duration::from_secs(10),
        "carol, a latecomer, learns bob's and alice's grades",
        || {
            carol.with_stats(|s| {
                s.connection_quality.get("bob").map(String::as_str) == Some("poor")
                    && s.connection_quality.contains_key("alice")
            })
        },
    )
    .await;
    let stats = sfu.stats(room).await;
    let grade = |who: &str| {
        stats
            .participants
            .iter()
            .find(|p| p.participant == who)
            .and_then(|p| p.connection_quality)
    };
    assert_eq!(
        grade("bob"),
        Some(sfu::forward::quality::ConnectionQuality::Poor)
    );
    assert_eq!(
        grade("alice"),
        Some(sfu::forward::quality::ConnectionQuality::Excellent)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_on_a_new_socket_keeps_the_session() {
    let sfu = start_sfu();
    let room = "restart";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key)).await;
    let decrypted = |c: &veil_client::Client, from: &str| {
        c.with_stats(|s| {
            s.remote
                .get(&(from.to_string(), "video"))
                .map_or(0, |r| r.frames_decrypted)
        })
    };
    eventually(Duration::from_secs(20), "call is up", || {
        decrypted(&alice, "bob") > 10 && decrypted(&bob, "alice") > 10
    })
    .await;

    // Bob's network changes: new local port, new ICE credentials.
    bob.ice_restart().await;
    eventually(Duration::from_secs(5), "bob restarted", || {
        bob.stats().ice_restarts == 1
    })
    .await;
    let (a, b) = (decrypted(&alice, "bob"), decrypted(&bob, "alice"));
    eventually(
        Duration::from_secs(15),
        "media flows both ways on the new path",
        || decrypted(&alice, "bob") > a + 20 && decrypted(&bob, "alice") > b + 20,
    )
    .await;
    assert_eq!(
        sfu.stats(room).await.participants.len(),
        2,
        "same session, nobody rejoined"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_data_arrives_complete_and_in_order() {
    let sfu = start_sfu();
    let room = "files";
    let key = secret(room, "p");
    let cfg = |name: &str| {
        let mut c = ClientConfig::new(name, room, key.clone());
        c.video = None;
        c.record_digests = false;
        c
    };
    let alice = join(&sfu, cfg("alice")).await;
    let bob = join(&sfu, cfg("bob")).await;
    eventually(Duration::from_secs(20), "keys are set up", || {
        bob.with_stats(|s| s.remote.values().any(|r| r.frames_decrypted > 5))
    })
    .await;
    // 6 MiB in 16 KiB chunks, as fast as alice can write: more than SCTP's
    // high-water mark, so the SFU's backlog has to keep order and lose nothing.
    const CHUNKS: u32 = 384;
    for i in 0..CHUNKS {
        let mut chunk = vec![(i % 251) as u8; 16 * 1024];
        chunk[..4].copy_from_slice(&i.to_be_bytes());
        alice.send_data(&chunk).await;
    }
    eventually(Duration::from_secs(60), "every chunk reaches bob", || {
        bob.with_stats(|s| s.messages.len() == CHUNKS as usize)
    })
    .await;
    let messages = bob.stats().messages;
    for (i, (_, owner, plain)) in messages.iter().enumerate() {
        assert_eq!(owner, "alice");
        assert_eq!(
            u32::from_be_bytes(plain[..4].try_into().unwrap()),
            i as u32,
            "in order"
        );
        assert!(plain[4..].iter().all(|b| *b == (i % 251) as u8), "intact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_rotates_its_key_and_receivers_follow_without_a_failure() {
    let sfu = start_sfu();
    let room = "rotation";
    let key = secret(room, "p");
    let mut cfg = ClientConfig::new("alice", room, key.clone());
    cfg.video = None;
    let alice = join(&sfu, cfg).await;
    let mut cfg = ClientConfig::new("bob", room, key);
    cfg.video = None;
    let bob = join(&sfu, cfg).await;
    let heard = || {
        bob.with_stats(|s| {
            s.remote
                .get(&("alice".to_string(), "audio"))
                .map_or((0, 0), |r| (r.frames_decrypted, r.decrypt_failures))
        })
    };
    eventually(Duration::from_secs(20), "bob hears alice", || {
        heard().0 > 20
    })
    .await;
    for epoch in 1..=3 {
        alice.set_epoch(epoch).await;
        let before = heard().0;
        eventually(Duration::from_secs(5), "frames under the new key", || {
            heard().0 > before + 20
                && bob.with_stats(|s| {
                    s.received_digests
                        .keys()
                        .any(|(kid, _)| *kid == veil_client::keys::key_id("alice", epoch))
                })
        })
        .await;
    }
    assert_eq!(heard().1, 0, "no frame failed to decrypt across rotations");
}

/// A receiver publishes its counts and samples in batches
/// (`veil_client::session::STATS_EVERY`): the last frames before a sender
/// goes quiet must still be counted, with no later packet to carry them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_frames_before_a_sender_stops_are_counted() {
    let sfu = start_sfu();
    let room = "quiet-end";
    let key = secret(room, "p");
    let audio_only = |name: &str| {
        let mut cfg = ClientConfig::new(name, room, key.clone());
        cfg.video = None;
        cfg
    };
    let alice = join(&sfu, audio_only("alice")).await;
    let bob = join(&sfu, audio_only("bob")).await;
    let last_heard = || {
        bob.with_stats(|s| {
            let r = s.remote.get(&("alice".to_string(), "audio"))?;
            Some((r.sequences(0).max()?, r.frames_decrypted, r.packets))
        })
    };
    eventually(Duration::from_secs(20), "bob hears alice", || {
        last_heard().is_some_and(|(_, frames, _)| frames > 20)
    })
    .await;
    alice.stop_sending();
    // Alice sends audio only, numbered from 0, and encrypts no more now.
    let last_sent = alice.with_stats(|s| s.frames_sent) as u32 - 1;
    eventually(
        Duration::from_secs(5),
        "bob counts alice's last frame",
        || last_heard().is_some_and(|(last, _, _)| last == last_sent),
    )
    .await;
    let (_, frames, packets) = last_heard().unwrap();
    assert_eq!(frames, packets, "one packet per audio frame, all published");
}

/// Median frame latency, µs, of `from`'s video at `c`.
fn median_video_latency_us(c: &veil_client::Client, from: &str) -> Option<u64> {
    let mut latencies: Vec<u64> = c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), "video"))
            .map(|r| r.samples.iter().map(|x| x.latency_us).collect())
            .unwrap_or_default()
    });
    latencies.sort_unstable();
    latencies.get(latencies.len() / 2).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_video_arrives_whole_with_its_frames_spread_out() {
    let sfu = start_sfu();
    let room = "paced";
    let key = secret(room, "p");
    // 8,000-byte frames (9 packets of up to 1,000 bytes) at 30 frames/s.
    // Paced at 2.5× that rate, a frame's last packet leaves about 13 ms
    // after its first. Unpaced, all 9 leave at once.
    let video = |pacing| veil_client::VideoConfig {
        simulcast: false,
        fps: 30,
        frame_bytes: [8_000, 0, 0],
        pacing,
        ..Default::default()
    };
    let mut alice_cfg = ClientConfig::new("alice", room, key.clone());
    alice_cfg.video = Some(video(Some(2.5)));
    let _alice = join(&sfu, alice_cfg).await;
    let mut carol_cfg = ClientConfig::new("carol", room, key.clone());
    carol_cfg.video = Some(video(None));
    let _carol = join(&sfu, carol_cfg).await;
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    bob_cfg.audio = false;
    let bob = join(&sfu, bob_cfg).await;
    eventually(Duration::from_secs(30), "90 frames from each", || {
        frames_on_layer(&bob, "alice", 0) >= 90 && frames_on_layer(&bob, "carol", 0) >= 90
    })
    .await;

    let r = bob.stats().remote[&("alice".to_string(), "video")].clone();
    assert_eq!(r.decrypt_failures, 0);
    let mut seqs: Vec<u32> = r.sequences(0).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let steady = &seqs[seqs.len() - 60..];
    assert_eq!(
        steady.last().unwrap() - steady[0],
        59,
        "the paced frames arrive without gaps: {steady:?}"
    );
    let paced = median_video_latency_us(&bob, "alice").unwrap();
    let burst = median_video_latency_us(&bob, "carol").unwrap();
    eprintln!("median frame latency: paced {paced} µs, unpaced {burst} µs");
    assert!(
        paced >= burst + 5_000,
        "a paced frame's last packet leaves about 13 ms after its first: paced {paced} µs, unpaced {burst} µs"
    );
    assert!(
        paced < 100_000,
        "the pacer keeps up with the frame rate instead of queueing: {paced} µs"
    );
}
