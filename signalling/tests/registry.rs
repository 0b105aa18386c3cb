//! The registry's rules, against the in-memory one and a real Redis server
//! started by the test (CI installs `redis-server`).

use std::time::Duration;

use signalling::registry::testing::RedisServer;
use signalling::registry::{NodeInfo, Registry, RegistryError};

fn node(id: &str, load: u32, draining: bool) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        control_url: format!("http://{id}"),
        load,
        draining,
    }
}

/// The same rules for every backend. `replicas` are handles on one shared
/// registry, as several signalling processes would hold.
async fn check_rules(replicas: Vec<Registry>, short_ttl: Duration) {
    let r = &replicas[0];
    let long = Duration::from_secs(60);
    assert!(matches!(
        r.assign_room("early").await,
        Err(RegistryError::NoNode)
    ));

    r.heartbeat(&node("a", 10, false), long).await.unwrap();
    r.heartbeat(&node("b", 1, false), long).await.unwrap();
    r.heartbeat(&node("c", 0, true), long).await.unwrap();
    assert_eq!(r.live_nodes().await.unwrap().len(), 3);
    assert_eq!(
        r.assign_room("standup").await.unwrap().id,
        "b",
        "least loaded, not draining"
    );

    // Replicas race for 30 rooms at once: every room ends with one owner,
    // and every replica agrees on it.
    let mut tasks = Vec::new();
    for room in 0..30 {
        for replica in &replicas {
            let replica = replica.clone();
            tasks.push(tokio::spawn(async move {
                (
                    room,
                    replica
                        .assign_room(&format!("race-{room}"))
                        .await
                        .unwrap()
                        .id,
                )
            }));
        }
    }
    let mut owners = std::collections::HashMap::new();
    for t in tasks {
        let (room, owner) = t.await.unwrap();
        let first = owners.entry(room).or_insert(owner.clone());
        assert_eq!(*first, owner, "room race-{room} has one owner");
    }
    // A burst of new rooms spreads: each assignment counts against its node
    // at once, without waiting for the node's next heartbeat. Node a started
    // at load 10 and b at 2 (1 + standup); 30 rooms even them out.
    let to = |id: &str| owners.values().filter(|o| *o == id).count();
    assert_eq!(to("a") + to("b"), 30);
    assert!(
        (10 + to("a")).abs_diff(2 + to("b")) <= 1,
        "balanced: a {} rooms, b {}",
        to("a"),
        to("b")
    );
    for room in 0..30 {
        assert_eq!(
            r.room_owner(&format!("race-{room}"))
                .await
                .unwrap()
                .as_ref(),
            owners.get(&room)
        );
    }

    // Node b stops heartbeating: it is declared dead and its rooms re-home.
    r.heartbeat(&node("b", 1, false), short_ttl).await.unwrap();
    tokio::time::sleep(short_ttl + Duration::from_millis(1200)).await;
    let live: Vec<String> = r
        .live_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(live, vec!["a", "c"]);
    let orphans = r.rooms_of("b").await.unwrap();
    // Exactly b's rooms, by name, sorted.
    let mut expected: Vec<String> = owners
        .iter()
        .filter(|(_, o)| *o == "b")
        .map(|(room, _)| format!("race-{room}"))
        .chain(["standup".to_string()])
        .collect();
    expected.sort();
    assert_eq!(orphans, expected);
    for room in &orphans {
        assert_eq!(
            r.assign_room(room).await.unwrap().id,
            "a",
            "re-homed to the live, undrained node"
        );
    }
    assert!(r.rooms_of("b").await.unwrap().is_empty());

    // A draining owner gives its rooms up on the next assignment, so
    // participants told to move land on another node.
    r.heartbeat(&node("c", 0, false), long).await.unwrap();
    r.assign_room("moving").await.unwrap();
    let first = r.room_owner("moving").await.unwrap().unwrap();
    assert_eq!(first, "c", "least loaded");
    r.heartbeat(&node("c", 0, true), long).await.unwrap();
    assert_eq!(r.assign_room("moving").await.unwrap().id, "a");
    assert_eq!(r.room_owner("moving").await.unwrap().as_deref(), Some("a"));

    // Empty rooms are released only by their owner.
    r.release_room("standup", "b").await.unwrap();
    assert_eq!(r.room_owner("standup").await.unwrap().as_deref(), Some("a"));
    r.release_room("standup", "a").await.unwrap();
    assert_eq!(r.room_owner("standup").await.unwrap(), None);
    r.remove_node("a").await.unwrap();
    assert!(
        matches!(r.assign_room("late").await, Err(RegistryError::NoNode)),
        "only a draining node left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_registry_follows_the_rules() {
    let r = Registry::memory();
    check_rules(vec![r.clone(), r], Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_registry_follows_the_rules_across_replicas() {
    let server = RedisServer::start().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Registry::redis(server.url(), "veil-test:").await.unwrap());
    }
    // Redis expiry has one-second granularity.
    check_rules(replicas, Duration::from_secs(1)).await;
}
