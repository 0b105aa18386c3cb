//! Moderation and node lifecycle: server-side mute, kick, room caps, drain.

mod common;

use std::time::Duration;

use common::{eventually, init_tracing, join, join_as, secret, start_sfu};
use sfu::{JoinError, Permissions, Role, Sfu, SfuConfig, TrackKind};
use veil_client::{Client, ClientConfig};

fn decrypted(c: &Client, from: &str, kind: &str) -> u64 {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), kind))
            .map_or(0, |r| r.frames_decrypted)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_mutes_and_unmutes_audio_and_kicks() {
    let sfu = start_sfu();
    let room = "moderated";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key)).await;
    eventually(Duration::from_secs(20), "bob hears and sees alice", || {
        decrypted(&bob, "alice", "audio") > 20 && decrypted(&bob, "alice", "video") > 10
    })
    .await;

    sfu.set_muted(room, "alice", TrackKind::Audio, true)
        .await
        .unwrap();
    common::received_counts_settle().await;
    let (audio, video) = (
        decrypted(&bob, "alice", "audio"),
        decrypted(&bob, "alice", "video"),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        decrypted(&bob, "alice", "audio"),
        audio,
        "muted audio is not forwarded"
    );
    assert!(
        decrypted(&bob, "alice", "video") > video + 3,
        "video still flows"
    );

    sfu.set_muted(room, "alice", TrackKind::Audio, false)
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "audio resumes", || {
        decrypted(&bob, "alice", "audio") > audio + 10
    })
    .await;
    assert!(
        sfu.set_muted(room, "nobody", TrackKind::Audio, true)
            .await
            .is_err()
    );

    sfu.leave(room, "alice", "removed by a moderator")
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "alice is told why", || {
        alice.stats().disconnected.as_deref() == Some("removed by a moderator")
    })
    .await;
    assert_eq!(sfu.stats(room).await.participants.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_and_a_duplicate_identity_get_clear_errors() {
    init_tracing();
    let sfu = Sfu::start(SfuConfig {
        max_participants_per_room: 2,
        ..SfuConfig::default()
    })
    .unwrap();
    let room = "small";
    let key = secret(room, "p");
    let _a = join(&sfu, ClientConfig::new("a", room, key.clone())).await;
    let (_p, offer) = Client::prepare(ClientConfig::new("a", room, key.clone())).unwrap();
    assert_eq!(
        sfu.join(room, "a", offer).await.err(),
        Some(JoinError::DuplicateParticipant("a".into()))
    );
    let _b = join(&sfu, ClientConfig::new("b", room, key.clone())).await;
    let (_p, offer) = Client::prepare(ClientConfig::new("c", room, key.clone())).unwrap();
    let err = sfu.join(room, "c", offer).await.err().unwrap();
    assert_eq!(err, JoinError::RoomFull(room.into()));
    assert_eq!(err.to_string(), "room \"small\" is full");
    // Another room is unaffected.
    let (_p, offer) = Client::prepare(ClientConfig::new("c", "other", key)).unwrap();
    assert!(sfu.join("other", "c", offer).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_refuses_joins_tells_everyone_and_keeps_forwarding() {
    let sfu = start_sfu();
    let room = "draining";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key.clone())).await;
    eventually(Duration::from_secs(20), "call is up", || {
        decrypted(&bob, "alice", "video") > 10
    })
    .await;

    sfu.drain().await;
    eventually(Duration::from_secs(5), "both are asked to move", || {
        alice.stats().draining && bob.stats().draining
    })
    .await;
    let (_p, offer) = Client::prepare(ClientConfig::new("carol", room, key)).unwrap();
    assert_eq!(
        sfu.join(room, "carol", offer).await.err(),
        Some(JoinError::Draining)
    );
    let before = decrypted(&bob, "alice", "video");
    eventually(
        Duration::from_secs(5),
        "media keeps flowing while they move",
        || decrypted(&bob, "alice", "video") > before + 15,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_choose_whom_to_receive_and_publishers_can_stop_a_track() {
    let sfu = start_sfu();
    let room = "choice";
    let key = secret(room, "p");
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let bob = join(&sfu, ClientConfig::new("bob", room, key.clone())).await;
    let carol = join(&sfu, ClientConfig::new("carol", room, key)).await;
    eventually(Duration::from_secs(20), "everyone receives alice", || {
        decrypted(&bob, "alice", "video") > 10 && decrypted(&carol, "alice", "video") > 10
    })
    .await;
    let subscribed = |who: &str| {
        let stats = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(sfu.stats(room))
        });
        stats
            .participants
            .iter()
            .find(|p| p.participant == who)
            .map_or(0, |p| p.tracks_subscribed)
    };

    // Bob hides alice: her two tracks leave his session, carol keeps them.
    sfu.subscribe(room, "bob", "alice", false).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "bob's session drops alice's tracks",
        || subscribed("bob") == 2,
    )
    .await;
    // A frame already on the wire may still land; after that, nothing.
    common::received_counts_settle().await;
    let (b, c) = (
        decrypted(&bob, "alice", "video"),
        decrypted(&carol, "alice", "video"),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        decrypted(&bob, "alice", "video"),
        b,
        "nothing from alice reaches bob"
    );
    assert!(decrypted(&carol, "alice", "video") > c + 3);

    sfu.subscribe(room, "bob", "alice", true).await.unwrap();
    eventually(Duration::from_secs(10), "bob receives alice again", || {
        subscribed("bob") == 4 && decrypted(&bob, "alice", "video") > b + 10
    })
    .await;

    // Alice turns her camera off: the video track is unpublished for all.
    alice.unpublish_video().await;
    eventually(
        Duration::from_secs(10),
        "bob and carol are told and lose the track",
        || {
            [&bob, &carol]
                .iter()
                .all(|c| c.with_stats(|s| s.unpublished.iter().any(|(p, _)| p == "alice")))
                && subscribed("bob") == 3
                && subscribed("carol") == 3
        },
    )
    .await;
    let stats = sfu.stats(room).await;
    let alice_stats = stats
        .participants
        .iter()
        .find(|p| p.participant == "alice")
        .unwrap();
    assert_eq!(alice_stats.tracks_published, 1, "audio only now");
    let audio = decrypted(&bob, "alice", "audio");
    eventually(Duration::from_secs(5), "alice's audio still flows", || {
        decrypted(&bob, "alice", "audio") > audio + 20
    })
    .await;
}

/// The transport-wide congestion control extension, as SDP names it.
const TRANSPORT_WIDE_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_session_is_sent_voices_but_no_video_and_no_congestion_feedback() {
    let sfu = start_sfu();
    let room = "audio-only";
    let key = secret(room, "p");
    let audio_only = Role::with_permissions(Permissions {
        publish: true,
        subscribe: true,
        publish_data: true,
        receive_video: false,
    });
    assert!(!audio_only.receives_video());
    let no_video = |who: &str| {
        let mut c = ClientConfig::new(who, room, key.clone());
        c.video = None;
        c
    };
    // Alice publishes audio and simulcast video before bob joins; dave does
    // after. Bob asked for audio only; carol did not.
    let alice = join(&sfu, ClientConfig::new("alice", room, key.clone())).await;
    let (bob, bob_answer) = join_as(&sfu, no_video("bob"), audio_only).await;
    let (carol, carol_answer) = join_as(&sfu, no_video("carol"), Role::Participant).await;
    let _dave = join(&sfu, ClientConfig::new("dave", room, key.clone())).await;

    assert!(
        !bob_answer.contains(TRANSPORT_WIDE_CC),
        "no transport-wide feedback for a session with no video either way:\n{bob_answer}"
    );
    assert!(
        carol_answer.contains(TRANSPORT_WIDE_CC),
        "a session that receives video keeps it:\n{carol_answer}"
    );

    eventually(
        Duration::from_secs(20),
        "carol sees alice's and dave's video; everyone hears everyone",
        || {
            decrypted(&carol, "alice", "video") > 10
                && decrypted(&carol, "dave", "video") > 10
                && decrypted(&bob, "alice", "audio") > 20
                && decrypted(&bob, "dave", "audio") > 20
                && decrypted(&alice, "bob", "audio") > 20
        },
    )
    .await;
    assert!(
        bob.with_stats(|s| s.remote.keys().all(|(_, kind)| *kind == "audio")),
        "bob was sent video: {:?}",
        bob.with_stats(|s| s.remote.keys().cloned().collect::<Vec<_>>())
    );
    assert!(
        bob.with_stats(|s| s.remote.values().all(|r| r.decrypt_failures == 0)),
        "bob's voices decrypt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_egress_estimate_only_video_senders_negotiate_congestion_feedback() {
    init_tracing();
    let sfu = Sfu::start(SfuConfig {
        bandwidth_estimation: false,
        ..SfuConfig::default()
    })
    .unwrap();
    let room = "no-estimate";
    let key = secret(room, "p");
    let (_alice, alice_answer) = join_as(
        &sfu,
        ClientConfig::new("alice", room, key.clone()),
        Role::Participant,
    )
    .await;
    let mut viewer = ClientConfig::new("bob", room, key);
    viewer.video = None;
    let (bob, bob_answer) = join_as(&sfu, viewer, Role::Participant).await;
    assert!(
        alice_answer.contains(TRANSPORT_WIDE_CC),
        "alice sends video, and her own estimate needs the node's feedback:\n{alice_answer}"
    );
    assert!(
        !bob_answer.contains(TRANSPORT_WIDE_CC),
        "nothing estimates bob's downlink, so no feedback is negotiated:\n{bob_answer}"
    );
    eventually(
        Duration::from_secs(20),
        "bob still receives alice's video and voice",
        || decrypted(&bob, "alice", "video") > 10 && decrypted(&bob, "alice", "audio") > 20,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_over_their_limits_are_told_and_contained() {
    init_tracing();
    let sfu = Sfu::start(SfuConfig {
        // Alice's layers run at about 50, 180 and 480 kbit/s.
        max_stream_bitrate_bps: 300_000,
        max_tracks_per_participant: 2,
        ..SfuConfig::default()
    })
    .unwrap();
    let room = "limits";
    let key = secret(room, "p");
    let mut alice_cfg = ClientConfig::new("alice", room, key.clone());
    alice_cfg.screen = Some(veil_client::VideoConfig {
        simulcast: false,
        ..Default::default()
    });
    let alice = join(&sfu, alice_cfg).await;
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    let bob = join(&sfu, bob_cfg).await;

    eventually(
        Duration::from_secs(20),
        "alice hears about both limits",
        || {
            alice.with_stats(|s| {
                s.errors.iter().any(|e| e.contains("track limit of 2"))
                    && s.errors
                        .iter()
                        .any(|e| e.contains("over the 300 kbit/s cap"))
            })
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "bob gets alice's video below the cap",
        || {
            bob.with_stats(|s| {
                s.remote
                    .get(&("alice".to_string(), "video"))
                    .is_some_and(|r| r.frames_decrypted > 20)
            })
        },
    )
    .await;
    common::received_counts_settle().await;
    let high = bob.with_stats(|s| s.remote[&("alice".to_string(), "video")].frames_per_layer[2]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = bob.stats();
    let r = &stats.remote[&("alice".to_string(), "video")];
    assert_eq!(
        r.frames_per_layer[2], high,
        "the over-cap layer is not forwarded"
    );
    assert!(r.last_layer.is_some_and(|l| l < 2));
    assert!(
        !stats.remote.contains_key(&("alice".to_string(), "screen")),
        "the third track was refused"
    );
    let sfu_stats = sfu.stats(room).await;
    let a = sfu_stats
        .participants
        .iter()
        .find(|p| p.participant == "alice")
        .unwrap();
    assert_eq!(a.tracks_published, 2);
}
