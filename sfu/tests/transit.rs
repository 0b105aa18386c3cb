//! The node's transit-time histogram counts forwarded packets in the turn
//! that received them.
//!
//! str0m queues a written packet until its session's next timeout. Before
//! the worker served that timeout at once, a forwarded packet left in the
//! worker's next turn, woken by the timer with no datagram in hand, so the
//! transit histogram never saw it and understated the SFU's latency. This
//! test needs its own process: it installs the global metrics recorder.

mod common;

use std::time::Duration;

use common::{eventually, join, secret, start_sfu};
use metrics_exporter_prometheus::PrometheusBuilder;
use sfu::telemetry::{TRANSIT_SECONDS, buckets_in, with_buckets};
use veil_client::ClientConfig;

/// The sum of a counter's samples over its label sets.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}

/// Observations in the histogram (its `+Inf` bucket).
fn observations(text: &str) -> f64 {
    buckets_in(text, TRANSIT_SECONDS)
        .last()
        .map_or(0.0, |(_, count)| *count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forwarded_packet_is_in_the_transit_time() {
    let metrics = with_buckets(PrometheusBuilder::new())
        .expect("buckets")
        .install_recorder()
        .expect("the only recorder in this test process");
    let sfu = start_sfu();
    let room = "transit";
    let key = secret(room, "p");
    let mut alice_cfg = ClientConfig::new("alice", room, key.clone());
    alice_cfg.video = None;
    let mut bob_cfg = ClientConfig::new("bob", room, key);
    bob_cfg.video = None;
    bob_cfg.audio = false;
    let _alice = join(&sfu, alice_cfg).await;
    let bob = join(&sfu, bob_cfg).await;
    eventually(Duration::from_secs(20), "bob hears alice", || {
        bob.with_stats(|s| s.remote.values().any(|r| r.frames_decrypted > 10))
    })
    .await;

    let before = metrics.render();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = metrics.render();

    let forwarded = counter(&after, "veil_sfu_rtp_forwarded_total")
        - counter(&before, "veil_sfu_rtp_forwarded_total");
    let observed = observations(&after) - observations(&before);
    // Alice sends 50 audio packets a second and bob is her only listener.
    assert!(forwarded >= 50.0, "{forwarded} packets forwarded in 2 s");
    // One observation per turn that sent something. At this rate a turn
    // holds one of alice's packets, so nearly every forwarded packet has
    // its own; a packet sent in a later turn would have none.
    assert!(
        observed >= 0.8 * forwarded,
        "{observed} transit observations for {forwarded} forwarded packets"
    );
}
