//! Many SFU nodes act as one system: the registry (a real Redis) spreads
//! rooms over two nodes reached through their control APIs, and clients in
//! every room meet as usual.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use signalling::protocol::{ClientMessage, ServerMessage, VERSION};
use tokio_tungstenite::tungstenite::Message;

use sfu::{Sfu, SfuConfig};
use signalling::auth::Grants;
use signalling::nodes::Nodes;
use signalling::registry::testing::RedisServer;
use signalling::registry::{NodeInfo, Registry};
use signalling::server::AppState;
use veil_client::{Client, ClientConfig, RoomSecret};

use common::{admin_token, audio_only, eventually, join, serve, token};

const NODE_SECRET: &str = "cluster-node-secret";

/// An SFU node with its control API on loopback, heartbeating its load.
async fn start_node(id: &str, registry: Registry) -> Sfu {
    start_node_with(id, registry, Arc::default()).await
}

/// [`start_node`] whose heartbeat says it drains while `draining` is set.
async fn start_node_with(id: &str, registry: Registry, draining: Arc<AtomicBool>) -> Sfu {
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
                draining: draining.load(Ordering::Relaxed),
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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins over a raw socket (no SDK: the test decides how it ends) and
/// returns it once the server said `joined`.
async fn join_raw(addr: std::net::SocketAddr, token: &str, room: &str) -> Ws {
    use futures_util::StreamExt;
    let (_pending, offer) = Client::prepare(audio_only("alice", room)).unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let join = ClientMessage::Join {
        v: VERSION,
        token: Some(token.into()),
        offer,
        audio_only: false,
    };
    ws.send(Message::Text(serde_json::to_string(&join).unwrap().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str(&t).unwrap() {
                ServerMessage::Joined { .. } => return ws,
                other => panic!("expected joined, got {other:?}"),
            },
            Some(Ok(_)) => {}
            other => panic!("the socket ended before joined: {other:?}"),
        }
    }
}

/// Whoever rejoined on another node (theirs drains) and then lost the old
/// socket before its leave came through ends on the old node at once:
/// nothing can resume a session whose secret a newer one replaced, so it
/// must not hold a seat there for the 30 s resume grace, keeping a draining
/// node alive. The new session and the identity's presence stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_replaced_by_a_rejoin_ends_on_its_old_node_when_its_socket_drops() {
    let redis = RedisServer::start().await;
    let registry = Registry::redis(redis.url(), "veil:").await.unwrap();
    let ids = ["node-a", "node-b"];
    let draining = [
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    ];
    let nodes = [
        start_node_with(ids[0], registry.clone(), draining[0].clone()).await,
        start_node_with(ids[1], registry.clone(), draining[1].clone()).await,
    ];
    let live = |want: &dyn Fn(&[NodeInfo]) -> bool| {
        let r = registry.clone();
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(r.live_nodes()))
            .is_ok_and(|n| want(&n))
    };
    eventually(Duration::from_secs(5), "both nodes registered", || {
        live(&|n| n.len() == 2)
    })
    .await;
    let state = AppState::with_nodes(
        common::auth(),
        Nodes::cluster(registry.clone(), NODE_SECRET),
        None,
    );
    let addr = serve(state).await;
    let room = "moving-day";
    let alice = token("alice", room, Grants::participant(), 600);

    let first = join_raw(addr, &alice, room).await;
    let owner = registry.room_owner(room).await.unwrap().unwrap();
    let (old, new) = if owner == ids[0] { (0, 1) } else { (1, 0) };
    assert_eq!(nodes[old].participants(), 1);

    // Alice's node drains; she rejoins (make before break: the old session
    // still runs), and the room now lives on the other node.
    draining[old].store(true, Ordering::Relaxed);
    eventually(
        Duration::from_secs(5),
        "the registry sees the drain",
        || live(&|n| n.iter().any(|n| n.id == ids[old] && n.draining)),
    )
    .await;
    let second = join_raw(addr, &alice, room).await;
    assert_eq!(
        registry.room_owner(room).await.unwrap().as_deref(),
        Some(ids[new])
    );
    assert_eq!(nodes[new].participants(), 1);
    assert_eq!(nodes[old].participants(), 1);

    // The old socket dies without a leave or a close frame.
    drop(first);
    eventually(
        Duration::from_secs(5),
        "the old node let the replaced session go",
        || nodes[old].participants() == 0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(nodes[new].participants(), 1, "the new session stays");
    let rooms: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/rooms"))
        .bearer_auth(admin_token(None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        rooms,
        serde_json::json!([{"room": room, "participants": 1}]),
        "alice is still present"
    );
    drop(second);
}

/// A participant removed by a moderator on one replica is kept out on every
/// replica, and only for the period given; locally the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_holds_on_every_replica_until_it_expires() {
    use signalling::shared::Shared;
    let redis = RedisServer::start().await;
    let one = Shared::redis(redis.url(), "veil-test:").await.unwrap();
    let other = Shared::redis(redis.url(), "veil-test:").await.unwrap();
    let local = Shared::local();
    let period = Duration::from_millis(400);
    for (setter, reader) in [(&one, &other), (&local, &local)] {
        setter.keep_out("standup", "bob", period).await;
        assert!(reader.is_kept_out("standup", "bob").await);
        assert!(!reader.is_kept_out("standup", "alice").await, "only bob");
        assert!(!reader.is_kept_out("retro", "bob").await, "only that room");
    }
    tokio::time::sleep(period + Duration::from_millis(300)).await;
    assert!(
        !other.is_kept_out("standup", "bob").await,
        "expired (Redis)"
    );
    assert!(
        !local.is_kept_out("standup", "bob").await,
        "expired (local)"
    );
}
