//! A node keeps its rooms in line with the registry: a room the registry
//! gave to another node (this one was thought dead) is moved there, and a
//! room that emptied is released for the next least-loaded choice.

mod common;

use std::time::Duration;

use common::{eventually, join, secret, start_sfu};
use sfu::announce::{Announcer, Reconciled};
use veil_client::ClientConfig;
use veil_registry::{NodeInfo, Registry};

const TTL: Duration = Duration::from_secs(60);

fn node(id: &str, load: u32) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        control_url: format!("http://{id}.invalid"),
        load,
        draining: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_moves_rooms_given_away_and_releases_empty_ones() {
    let sfu = start_sfu();
    let registry = Registry::memory();
    let mut announcer = Announcer::new(sfu.clone(), registry.clone(), "a", "http://a.invalid");
    announcer.heartbeat(TTL).await.unwrap();
    registry.heartbeat(&node("b", 100), TTL).await.unwrap();

    // Two rooms land on "a", the least loaded, and fill up.
    for room in ["kept", "emptied"] {
        assert_eq!(registry.assign_room(room).await.unwrap().id, "a");
    }
    let cfg = |who: &str, room: &str| {
        let mut c = ClientConfig::new(who, room, secret(room, "p"));
        c.video = None;
        c
    };
    let alice = join(&sfu, cfg("alice", "kept")).await;
    let bob = join(&sfu, cfg("bob", "kept")).await;
    let carol = join(&sfu, cfg("carol", "emptied")).await;
    assert_eq!(announcer.reconcile().await.unwrap(), Reconciled::default());

    // "a" was declared dead for a moment and "kept" went to "b" at its next
    // join: the room must not live on two nodes. Its participants are told
    // to move; "emptied" stays.
    registry.remove_node("a").await.unwrap();
    assert_eq!(registry.assign_room("kept").await.unwrap().id, "b");
    announcer.heartbeat(TTL).await.unwrap();
    let pass = announcer.reconcile().await.unwrap();
    assert_eq!(pass.moved, ["kept"]);
    eventually(
        Duration::from_secs(5),
        "alice and bob are told to move",
        || alice.with_stats(|s| s.draining) && bob.with_stats(|s| s.draining),
    )
    .await;
    assert!(!carol.with_stats(|s| s.draining), "carol's room stays");

    // Everyone leaves. "emptied" is released; "kept" belongs to "b" and
    // keeps that owner.
    for (who, room) in [("alice", "kept"), ("bob", "kept"), ("carol", "emptied")] {
        sfu.leave(room, who, "done").await.unwrap();
    }
    eventually(Duration::from_secs(5), "the rooms are empty", || {
        sfu.participants() == 0
    })
    .await;
    let pass = announcer.reconcile().await.unwrap();
    assert_eq!(pass.released, ["emptied", "kept"]);
    assert_eq!(registry.room_owner("emptied").await.unwrap(), None);
    assert_eq!(
        registry.room_owner("kept").await.unwrap().as_deref(),
        Some("b")
    );
}
