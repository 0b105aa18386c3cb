//! Many SFU nodes act as one system: the registry (a real Redis) spreads
//! rooms over two nodes reached through their control APIs, and clients in
//! every room meet as usual.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use sfu::{Sfu, SfuConfig};
use signalling::auth::Grants;
use signalling::nodes::Nodes;
use signalling::registry::testing::RedisServer;
use signalling::registry::{NodeInfo, Registry};
use signalling::server::AppState;
use veil_client::{ClientConfig, RoomSecret};

use common::{eventually, join, serve, token};

const NODE_SECRET: &str = "cluster-node-secret";

/// An SFU node with its control API on loopback, heartbeating its load.
async fn start_node(id: &str, registry: Registry) -> Sfu {
    let sfu = Sfu::start(SfuConfig::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    let app = sfu::control::server::router(sfu.clone(), NODE_SECRET);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (node, id) = (sfu.clone(), id.to_string());
    tokio::spawn(async move {
        loop {
            let info = NodeInfo {
                id: id.clone(),
                control_url: control_url.clone(),
                load: node.participants() as u32,
                draining: false,
            };
            let _ = registry.heartbeat(&info, Duration::from_secs(3)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    sfu
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_spread_over_two_nodes_and_every_room_works() {
    let redis = RedisServer::start().await;
    let registry = Registry::redis(redis.url(), "veil:").await.unwrap();
    let _a = start_node("node-a", registry.clone()).await;
    let _b = start_node("node-b", registry.clone()).await;
    eventually(Duration::from_secs(5), "both nodes registered", || {
        let r = registry.clone();
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(r.live_nodes()))
            .map_or(0, |n| n.len())
            == 2
    })
    .await;
    // Two signalling replicas over the same registry.
    let replica = |r: &Registry| {
        AppState::with_nodes(common::auth(), Nodes::cluster(r.clone(), NODE_SECRET), None)
    };
    let addrs = [
        serve(replica(&registry)).await,
        serve(replica(&registry)).await,
    ];

    let mut clients = Vec::new();
    let rooms: Vec<String> = (0..4).map(|i| format!("room-{i}")).collect();
    for (i, room) in rooms.iter().enumerate() {
        let secret = RoomSecret::from_passphrase(room, "p");
        for (j, who) in ["a", "b"].iter().enumerate() {
            let mut cfg = ClientConfig::new(who, room, secret.clone());
            cfg.video = None;
            cfg.record_digests = false;
            // The two participants of a room use different replicas.
            let addr = addrs[(i + j) % 2];
            clients.push(
                join(
                    addr,
                    Some(token(who, room, Grants::participant(), 600)),
                    cfg,
                )
                .await
                .unwrap(),
            );
        }
        // Let the heartbeats carry the new load before the next room is placed.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eventually(
        Duration::from_secs(20),
        "everyone hears their room partner",
        || {
            clients.iter().all(|c| {
                c.with_stats(|s| s.remote.values().map(|r| r.frames_decrypted).sum::<u64>() > 20)
            })
        },
    )
    .await;
    let mut owners = BTreeSet::new();
    for room in &rooms {
        owners.insert(registry.room_owner(room).await.unwrap().unwrap());
    }
    assert_eq!(
        owners.into_iter().collect::<Vec<_>>(),
        vec!["node-a", "node-b"],
        "rooms spread over both nodes"
    );
}
