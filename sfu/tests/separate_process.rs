//! An SFU node as its own process: the real `sfu` binary, driven through its
//! control API over HTTP and WebSocket, forwarding media between clients.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{eventually, join, secret};
use sfu::{JoinError, RemoteSfu, SfuNode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use veil_client::{Client, ClientConfig};

const SECRET: &str = "test-node-secret";

/// Starts `sfu` on free loopback ports; returns the child and its control URL.
async fn spawn_node() -> (Child, String, String) {
    spawn_node_with(&[]).await
}

async fn spawn_node_with(extra: &[&str]) -> (Child, String, String) {
    // A free port for metrics (the exporter does not report a bound port 0).
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args([
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .args(["--metrics", &metrics.to_string()])
        .args(["--control-secret", SECRET, "--drain-timeout", "1"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sfu binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let control = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("Control API at ") {
                return url.to_string();
            }
        }
        panic!("sfu exited before printing its control URL");
    })
    .await
    .expect("sfu prints its control URL");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, control, format!("http://{metrics}/metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_meet_on_an_sfu_running_as_its_own_process() {
    common::init_tracing();
    let (_child, control, metrics) = spawn_node().await;
    let node = RemoteSfu::new(&control, SECRET);
    let room = "remote room";
    let key = secret(room, "p");
    let alice: Client = join(node.clone(), ClientConfig::new("alice", room, key.clone())).await;
    let bob: Client = join(node.clone(), ClientConfig::new("bob", room, key)).await;
    let decrypted = |c: &Client, from: &str| {
        c.with_stats(|s| {
            ["audio", "video"]
                .iter()
                .map(|k| {
                    s.remote
                        .get(&(from.to_string(), *k))
                        .map_or(0, |r| r.frames_decrypted)
                })
                .min()
                .unwrap_or(0)
        })
    };
    eventually(
        Duration::from_secs(20),
        "alice and bob decrypt each other through the remote node",
        || decrypted(&alice, "bob") > 20 && decrypted(&bob, "alice") > 20,
    )
    .await;

    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    for metric in [
        "veil_sfu_rtp_forwarded_total",
        "veil_sfu_datagrams_in_total",
        "veil_sfu_joins_total",
        "veil_sfu_loop_seconds",
        "veil_sfu_rtp_bytes_out_total",
        "veil_sfu_layer_switches_total",
        "veil_sfu_tracks_published",
    ] {
        assert!(text.contains(metric), "{metric} missing from /metrics");
    }

    let stats = SfuNode::from(node.clone()).stats(room).await.unwrap();
    assert_eq!(stats.participants.len(), 2);
    assert!(stats.participants.iter().all(|p| p.tracks_subscribed == 2));

    // Node errors travel back typed.
    let (_pending, offer) =
        Client::prepare(ClientConfig::new("alice", room, secret(room, "p"))).unwrap();
    assert_eq!(
        node.join(room, "alice", offer).await.err(),
        Some(JoinError::DuplicateParticipant("alice".into()))
    );
    node.leave(room, "bob", "done").await.unwrap();
    eventually(
        Duration::from_secs(5),
        "bob is told over the event socket",
        || bob.stats().disconnected.is_some(),
    )
    .await;
    assert!(
        node.leave(room, "bob", "again").await.is_err(),
        "bob is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_rejects_a_wrong_secret() {
    let (_child, control, _metrics) = spawn_node().await;
    let intruder = RemoteSfu::new(&control, "not the secret");
    let (_pending, offer) =
        Client::prepare(ClientConfig::new("eve", "r", secret("r", "p"))).unwrap();
    match intruder.join("r", "eve", offer).await {
        Err(JoinError::Unreachable(why)) => assert!(why.contains("401"), "{why}"),
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(intruder.drain().await.is_err());
    let stats = RemoteSfu::new(&control, SECRET).stats("r").await.unwrap();
    assert!(stats.participants.is_empty(), "nothing was created");
    let health = reqwest::get(format!("{control}/v1/health")).await.unwrap();
    assert!(health.status().is_success(), "health needs no secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits() {
    common::init_tracing();
    let (mut child, control, _metrics) = spawn_node().await;
    let node = RemoteSfu::new(&control, SECRET);
    let room = "closing";
    let key = secret(room, "p");
    let alice: Client = join(node.clone(), ClientConfig::new("alice", room, key.clone())).await;
    eventually(Duration::from_secs(10), "alice connected", || {
        alice.stats().connected
    })
    .await;

    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(Duration::from_secs(5), "alice is asked to move", || {
        alice.stats().draining
    })
    .await;
    let (_pending, offer) = Client::prepare(ClientConfig::new("bob", room, key)).unwrap();
    assert_eq!(
        node.join(room, "bob", offer).await.err(),
        Some(JoinError::Draining)
    );
    // --drain-timeout 1: the node then exits on its own, cleanly.
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_announces_itself_and_its_load_in_the_registry() {
    common::init_tracing();
    let redis = veil_registry::testing::RedisServer::start().await;
    let (mut child, control, _metrics) =
        spawn_node_with(&["--registry", redis.url(), "--node-id", "node-a"]).await;
    let registry = veil_registry::Registry::redis(redis.url(), "veil:")
        .await
        .unwrap();
    let node = |nodes: Vec<veil_registry::NodeInfo>| nodes.into_iter().find(|n| n.id == "node-a");
    let mut seen = None;
    for _ in 0..60 {
        seen = node(registry.live_nodes().await.unwrap());
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.expect("the node registers");
    assert_eq!(
        seen.control_url, control,
        "signalling reaches it where it listens"
    );
    assert_eq!((seen.load, seen.draining), (0, false));
    assert_eq!(registry.assign_room("standup").await.unwrap().id, "node-a");

    // Load follows participants.
    let node_api = RemoteSfu::new(&control, SECRET);
    let room = "standup";
    let _alice: Client = join(
        node_api,
        ClientConfig::new("alice", room, secret(room, "p")),
    )
    .await;
    let mut load = 0;
    for _ in 0..40 {
        load = node(registry.live_nodes().await.unwrap()).map_or(0, |n| n.load);
        if load == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(load, 1);

    // Draining is announced, then the node leaves the registry and exits.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(exit.success());
    assert!(
        node(registry.live_nodes().await.unwrap()).is_none(),
        "a drained node deregisters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_no_replica_reads_can_be_picked_up_and_else_expires() {
    let (_child, control, _) = spawn_node_with(&["--attach-grace", "2"]).await;
    let node = RemoteSfu::new(&control, SECRET);
    let room = "orphans";
    let stay: Client = join(
        node.clone(),
        ClientConfig::new("stays", room, secret(room, "p")),
    )
    .await;
    let (_pending, offer) =
        Client::prepare(ClientConfig::new("orphan", room, secret(room, "p"))).unwrap();
    let joined = node.join(room, "orphan", offer).await.unwrap();
    // The replica that joined goes away: nobody reads the events now.
    drop(joined.events);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another replica picks the session up within the grace period...
    let events = node.attach_events(room, "orphan").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let names = |stats: sfu::RoomStats| -> Vec<String> {
        let mut v: Vec<String> = stats
            .participants
            .into_iter()
            .map(|p| p.participant)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(node.stats(room).await.unwrap()),
        ["orphan", "stays"],
        "an attached session outlives the grace period"
    );
    // ...and once that one is gone too, the node ends the session itself.
    drop(events);
    eventually(Duration::from_secs(6), "the unread session expires", || {
        let n = node.clone();
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(n.stats(room)))
            .map(names)
            .is_ok_and(|v| v == ["stays"])
    })
    .await;
    assert!(stay.with_stats(|s| s.disconnected.is_none()));
    assert!(
        node.attach_events(room, "orphan").await.is_err(),
        "nothing left to attach to"
    );
}
