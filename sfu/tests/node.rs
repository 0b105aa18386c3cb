//! Node-level behaviour: loudest-N audio in big rooms, advertised addresses.

mod common;

use std::time::Duration;

use common::{eventually, init_tracing, join, secret};
use sfu::{Sfu, SfuConfig};
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
