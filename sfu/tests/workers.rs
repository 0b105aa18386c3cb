//! Rooms spread over the node's worker threads and each works on its own.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{eventually, init_tracing, join, secret};
use sfu::{Sfu, SfuConfig};
use veil_client::ClientConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_pinned_to_workers_and_all_forward() {
    init_tracing();
    let sfu = Sfu::start(SfuConfig {
        workers: 2,
        ..SfuConfig::default()
    })
    .unwrap();
    assert_eq!(sfu.workers(), 2);
    let key = secret("any", "p");
    let mut clients = Vec::new();
    let rooms: Vec<String> = (0..8).map(|i| format!("room-{i}")).collect();
    for room in &rooms {
        for who in ["a", "b"] {
            let mut cfg = ClientConfig::new(who, room, key.clone());
            cfg.video = None;
            cfg.record_digests = false;
            clients.push(join(&sfu, cfg).await);
        }
    }
    eventually(
        Duration::from_secs(20),
        "every pair in every room hears the other",
        || {
            clients.iter().all(|c| {
                c.with_stats(|s| s.remote.values().map(|r| r.frames_decrypted).sum::<u64>() > 20)
            })
        },
    )
    .await;
    let mut used = BTreeSet::new();
    for room in &rooms {
        let stats = sfu.stats(room).await;
        assert_eq!(stats.participants.len(), 2, "{room}");
        used.insert(stats.worker);
    }
    assert_eq!(used.len(), 2, "8 rooms land on both workers");
}
