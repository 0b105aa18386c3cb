//! The cluster survives its parts dying. Real processes on loopback, as in
//! production: one Redis, two `sfu` nodes and two `signalling` replicas;
//! clients are `signalling::client` connections that know both replicas.
//!
//! * A signalling replica is killed: its clients resume on the other one,
//!   keep their media session (it never went through signalling) and their
//!   room, and relays between replicas keep working.
//! * The SFU node hosting a room is killed: its clients are told, join
//!   again, land on the surviving node and decrypt each other within 5 s,
//!   with SFrame counters that continue rather than repeat.
//! * The same for two browsers running the real page: they reload into
//!   the room by themselves and decode each other again.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use signalling::auth::Grants;
use signalling::client::{ConnectOptions, Connection};
use signalling::registry::Registry;
use signalling::registry::testing::RedisServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use veil_client::{ClientConfig, RoomSecret};

use common::{eventually, heard, token};

const NODE_SECRET: &str = "failover-node-secret";

/// The `sfu` binary of this build (built on demand when only this package's
/// tests were compiled).
fn sfu_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join(format!("sfu{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "sfu", "--bin", "sfu"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the sfu binary failed");
    }
    binary
}

/// Spawns `program` and waits for the stdout line starting with `marker`;
/// returns the child and the rest of that line.
async fn spawn_until(mut command: Command, marker: &str) -> (Child, String) {
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("process starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix(marker) {
                return rest.to_string();
            }
        }
        panic!("exited before printing {marker:?}");
    })
    .await
    .expect("process prints its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, rest)
}

async fn spawn_node(redis: &str, id: &str) -> Child {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = Command::new(sfu_binary());
    command
        .args(["--udp", "127.0.0.1:0", "--tcp", "off"])
        .args(["--control", "127.0.0.1:0"])
        .args(["--metrics", &metrics.to_string()])
        .args(["--control-secret", NODE_SECRET, "--workers", "1"])
        .args(["--registry", redis, "--node-id", id]);
    spawn_until(command, "Control API at ").await.0
}

async fn spawn_replica(redis: &str) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_signalling"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--api-key", common::KEY, "--api-secret", common::SECRET])
        .args(["--redis", redis, "--sfu-secret", NODE_SECRET])
        .arg("--open-rooms");
    let (child, rest) = spawn_until(command, "Veil signalling on http://").await;
    let addr = rest.split_whitespace().next().unwrap().to_string();
    (child, format!("ws://{addr}/ws"))
}

struct Cluster {
    _redis: RedisServer,
    registry: Registry,
    nodes: Vec<(String, Child)>,
    replicas: Vec<(Child, String)>,
}

impl Cluster {
    async fn start() -> Cluster {
        let redis = RedisServer::start().await;
        let registry = Registry::redis(redis.url(), "veil:").await.unwrap();
        let mut nodes = Vec::new();
        for id in ["node-a", "node-b"] {
            nodes.push((id.to_string(), spawn_node(redis.url(), id).await));
        }
        let replicas = vec![
            spawn_replica(redis.url()).await,
            spawn_replica(redis.url()).await,
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        while registry.live_nodes().await.unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "both nodes register");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Cluster {
            _redis: redis,
            registry,
            nodes,
            replicas,
        }
    }

    /// A participant that knows both replicas and prefers `first`.
    async fn connect(&self, who: &str, room: &str, first: usize) -> Connection {
        let mut servers: Vec<String> = self.replicas.iter().map(|(_, u)| u.clone()).collect();
        servers.rotate_left(first);
        let mut config = ClientConfig::new(who, room, RoomSecret::from_passphrase(room, "p"));
        config.video = None;
        let t = token(who, room, Grants::participant(), 600);
        Connection::connect(ConnectOptions::new(servers, t, config))
            .await
            .expect("joins")
    }

    /// Alice (on replica 0) and bob (on replica 1) in `room`, hearing each other.
    async fn call(&self, room: &str) -> (Connection, Connection) {
        let alice = self.connect("alice", room, 0).await;
        let bob = self.connect("bob", room, 1).await;
        eventually(
            Duration::from_secs(20),
            "alice and bob hear each other",
            || heard(&alice, "bob") > 20 && heard(&bob, "alice") > 20,
        )
        .await;
        (alice, bob)
    }

    /// The id and process of the node hosting `room`.
    async fn owner(&mut self, room: &str) -> (String, &mut Child) {
        let owner = self.registry.room_owner(room).await.unwrap().unwrap();
        let (_, child) = self.nodes.iter_mut().find(|(id, _)| *id == owner).unwrap();
        (owner, child)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_replica_resume_on_the_other_and_keep_their_call() {
    let mut cluster = Cluster::start().await;
    let room = "replica-failover";
    let (alice, bob) = cluster.call(room).await;
    // Relays cross replicas (alice on replica 0, bob on replica 1).
    alice.relay(Some("bob"), "before").await;
    eventually(Duration::from_secs(5), "a relay crosses replicas", || {
        bob.stats()
            .relays
            .contains(&("alice".into(), "before".into()))
    })
    .await;

    // Replica 0 dies without a goodbye.
    cluster.replicas[0].0.kill().await.unwrap();
    let heard_before = heard(&bob, "alice");
    eventually(
        Duration::from_secs(10),
        "alice resumes on replica 1",
        || alice.stats().resumes == 1 && alice.stats().server == 1,
    )
    .await;
    assert_eq!(alice.generation(), 0, "same media session, no rejoin");
    assert_eq!(alice.stats().rejoins, 0);
    eventually(Duration::from_secs(5), "media kept flowing", || {
        heard(&bob, "alice") > heard_before + 50 && heard(&alice, "bob") > heard_before + 50
    })
    .await;
    // Signalling works again for her: relays both ways, via the survivor.
    bob.relay(Some("alice"), "after").await;
    alice.relay(None, "to the room").await;
    eventually(Duration::from_secs(5), "relays after the resume", || {
        alice
            .stats()
            .relays
            .contains(&("bob".into(), "after".into()))
            && bob
                .stats()
                .relays
                .contains(&("alice".into(), "to the room".into()))
    })
    .await;
    assert!(alice.stats().closed.is_none() && bob.stats().closed.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_rejoin_elsewhere_within_five_seconds() {
    let mut cluster = Cluster::start().await;
    let room = "node-failover";
    let (alice, bob) = cluster.call(room).await;
    let counter_before = alice.with_stats(|s| s.next_counter);

    // The node hosting the room dies.
    let killed = Instant::now();
    let (owner, child) = cluster.owner(room).await;
    child.kill().await.unwrap();
    eventually(
        Duration::from_secs(5),
        "both rejoin and hear each other again within 5 s",
        || {
            alice.generation() == 1
                && bob.generation() == 1
                && heard(&alice, "bob") > 5
                && heard(&bob, "alice") > 5
        },
    )
    .await;
    let recovered = killed.elapsed();
    let new_owner = cluster.registry.room_owner(room).await.unwrap().unwrap();
    assert_ne!(new_owner, owner, "the room moved to the surviving node");
    for c in [&alice, &bob] {
        let stats = c.stats();
        assert_eq!(stats.rejoins, 1);
        assert!(stats.last_rejoin.unwrap() < Duration::from_secs(5));
        assert!(stats.closed.is_none());
    }
    // The new session encrypts under the same key, so its counters must
    // continue past the old session's instead of starting over at zero.
    let first_new_counter = alice.with_stats(|s| s.sent_digests.keys().map(|k| k.1).min());
    assert!(
        first_new_counter.unwrap() >= counter_before,
        "counter went back: {first_new_counter:?} < {counter_before}"
    );
    println!("recovered {recovered:?} after the node was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_frozen_node_rejoin_elsewhere() {
    let mut cluster = Cluster::start().await;
    let room = "frozen-node";
    let (alice, bob) = cluster.call(room).await;
    let (owner, child) = cluster.owner(room).await;
    // SIGSTOP: the process hangs with its sockets open, so nothing breaks
    // by itself; the replicas' keepalives must notice.
    let pid = child.id().unwrap().to_string();
    let frozen = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(
        Duration::from_secs(15),
        "both rejoin on the live node and hear each other",
        || {
            alice.generation() == 1
                && bob.generation() == 1
                && heard(&alice, "bob") > 5
                && heard(&bob, "alice") > 5
        },
    )
    .await;
    println!("recovered {:?} after the node froze", frozen.elapsed());
    assert_ne!(
        cluster.registry.room_owner(room).await.unwrap().unwrap(),
        owner
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_rejoin_by_themselves_when_their_node_dies() {
    let web = common::web_dir();
    let mut cluster = Cluster::start().await;
    let room = "browser-failover";
    let base = cluster.replicas[0]
        .1
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_string();
    let mut script = Command::new("node")
        .arg("tests/rejoin.mjs")
        .args([base.as_str(), room, "a passphrase"])
        .current_dir(&web)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
    let mut last = String::new();
    let run = async {
        let mut killed = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if line == "ready" {
                let (owner, child) = cluster.owner(room).await;
                child.kill().await.unwrap();
                killed = Some(owner);
            } else {
                last = line;
            }
        }
        killed
    };
    let killed = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser script finishes");
    let result: serde_json::Value = serde_json::from_str(&last)
        .unwrap_or_else(|_| panic!("no JSON from the browser script: {last}"));
    let killed = killed.unwrap_or_else(|| panic!("the call never started: {result}"));
    assert!(result.get("error").is_none(), "{result}");
    assert!(result.get("page_errors").is_none(), "{result}");
    for who in ["alice", "bob"] {
        assert!(
            result["loads"][who].as_u64().unwrap() >= 2,
            "{who}'s page reloaded into the room: {result}"
        );
        assert!(
            result["decoded"][who].as_u64().unwrap() > 10,
            "{who} decodes again: {result}"
        );
    }
    let new_owner = cluster.registry.room_owner(room).await.unwrap().unwrap();
    assert_ne!(new_owner, killed, "the room moved to the surviving node");
    println!(
        "browsers decoded each other again {} ms after their node was killed",
        result["recovered_ms"]
    );
}
