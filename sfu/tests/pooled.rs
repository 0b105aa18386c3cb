//! Sessions driven by a shared `SessionPool` thread behave like sessions
//! with a tokio task each: they call each other, renegotiate when someone
//! joins, take commands, survive an ICE restart onto a new socket, and end
//! when stopped or dropped.

mod common;

use std::time::Duration;

use common::{eventually, join, secret, start_sfu};
use veil_client::{Client, ClientConfig, SessionPool};

fn decrypted(c: &Client, from: &str, kind: &'static str) -> u64 {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), kind))
            .map_or(0, |r| r.frames_decrypted)
    })
}

/// Restarts `bob`'s ICE (a new socket or address) and waits until audio
/// flows both ways between him and `carol` again.
async fn restart_ice_and_keep_talking(bob: &Client, carol: &Client, path: &str) {
    bob.ice_restart().await;
    eventually(Duration::from_secs(5), "bob restarted", || {
        bob.stats().ice_restarts == 1
    })
    .await;
    let (to_bob, from_bob) = (
        decrypted(bob, "carol", "audio"),
        decrypted(carol, "bob", "audio"),
    );
    eventually(
        Duration::from_secs(15),
        &format!("media flows both ways on {path}"),
        || {
            decrypted(bob, "carol", "audio") > to_bob + 20
                && decrypted(carol, "bob", "audio") > from_bob + 20
        },
    )
    .await;
}

fn failures(c: &Client) -> u64 {
    c.with_stats(|s| s.remote.values().map(|r| r.decrypt_failures).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_sessions_call_task_sessions_restart_ice_and_end_cleanly() {
    let sfu = start_sfu();
    let room = "pooled";
    let key = secret(room, "p");
    // One thread for two sessions: both sockets share one epoll loop.
    let pool = SessionPool::new(1).unwrap();
    let pooled = |name: &str| {
        let mut config = ClientConfig::new(name, room, key.clone());
        config.pool = Some(pool.clone());
        config
    };
    let alice = join(&sfu, pooled("alice")).await;
    let bob = join(&sfu, pooled("bob")).await;
    eventually(Duration::from_secs(20), "the pooled pair call", || {
        decrypted(&alice, "bob", "video") > 10 && decrypted(&bob, "alice", "audio") > 10
    })
    .await;

    // A session with a task of its own joins: the SFU renegotiates with
    // the pooled ones (its offer arrives over their channels, their answers
    // leave through the pool), and media flows every way.
    let carol = join(&sfu, ClientConfig::new("carol", room, key.clone())).await;
    eventually(
        Duration::from_secs(20),
        "pooled and task sessions hear each other",
        || {
            decrypted(&alice, "carol", "audio") > 10
                && decrypted(&bob, "carol", "video") > 10
                && decrypted(&carol, "alice", "video") > 10
                && decrypted(&carol, "bob", "audio") > 10
        },
    )
    .await;

    // Commands reach a pooled session: a message over the data channel.
    eventually(
        Duration::from_secs(10),
        "alice's data channel opens",
        || {
            alice.try_send_data(b"probe")
                && carol.with_stats(|s| s.messages.iter().any(|m| m.2 == b"probe"))
        },
    )
    .await;
    alice.send_data(b"from the pool").await;
    eventually(
        Duration::from_secs(10),
        "carol reads alice's message",
        || carol.with_stats(|s| s.messages.iter().any(|m| m.2 == b"from the pool")),
    )
    .await;

    // Bob moves to a new socket: the pool must watch it instead.
    let old_addr = bob.local_addr();
    restart_ice_and_keep_talking(&bob, &carol, "bob's new socket").await;
    assert!(
        std::net::UdpSocket::bind(old_addr).is_ok(),
        "bob's old socket is closed"
    );
    for c in [&alice, &bob, &carol] {
        assert_eq!(failures(c), 0);
    }
    // The pool read every datagram with its kernel timestamp.
    let waits = pool.receive_waits();
    assert!(waits.iter().sum::<u64>() > 500, "{waits:?}");

    // A stopped session ends: `stop` returns, and the SFU's other members
    // stop hearing it.
    let bob_addr = bob.local_addr();
    tokio::time::timeout(Duration::from_secs(5), bob.stop())
        .await
        .expect("a pooled session stops");
    assert!(
        std::net::UdpSocket::bind(bob_addr).is_ok(),
        "the stopped session's socket is closed"
    );
    common::received_counts_settle().await;
    let heard = decrypted(&carol, "bob", "audio");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(decrypted(&carol, "bob", "audio"), heard, "bob is silent");

    // A dropped handle ends its session too: the pool closes the socket.
    let alice_addr = alice.local_addr();
    drop(alice);
    eventually(Duration::from_secs(5), "alice's socket is closed", || {
        std::net::UdpSocket::bind(alice_addr).is_ok()
    })
    .await;
    // Carol, who never used the pool, carries on.
    common::received_counts_settle().await;
    let before = decrypted(&carol, "alice", "audio");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(decrypted(&carol, "alice", "audio"), before);
    assert!(carol.stats().disconnected.is_none());
    assert!(decrypted(&carol, "bob", "video") > 10);
}

/// A pool that shares one socket per thread: each session has its own
/// loopback address on it, so the SFU still sees one address per
/// participant, and an ICE restart moves a session to a new address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_sharing_a_socket_are_told_apart_by_address() {
    let sfu = start_sfu();
    let room = "shared";
    let key = secret(room, "s");
    let pool = SessionPool::with_shared_sockets(1).unwrap();
    let shared = |name: &str| {
        let mut config = ClientConfig::new(name, room, key.clone());
        config.pool = Some(pool.clone());
        config
    };
    let alice = join(&sfu, shared("alice")).await;
    let bob = join(&sfu, shared("bob")).await;
    let (a, b) = (alice.local_addr(), bob.local_addr());
    assert_eq!(a.port(), b.port(), "one socket: {a} {b}");
    assert_ne!(a.ip(), b.ip(), "one address each: {a} {b}");
    assert!(a.ip().is_loopback() && a.ip() != std::net::Ipv4Addr::LOCALHOST);

    let carol = join(&sfu, ClientConfig::new("carol", room, key.clone())).await;
    eventually(
        Duration::from_secs(20),
        "shared-socket and task sessions hear each other",
        || {
            decrypted(&alice, "bob", "video") > 10
                && decrypted(&bob, "alice", "audio") > 10
                && decrypted(&alice, "carol", "audio") > 10
                && decrypted(&carol, "alice", "video") > 10
                && decrypted(&carol, "bob", "audio") > 10
        },
    )
    .await;

    restart_ice_and_keep_talking(&bob, &carol, "bob's new address").await;
    let moved = bob.with_stats(|s| s.udp_datagrams_in);
    for c in [&alice, &bob, &carol] {
        assert_eq!(failures(c), 0);
    }
    let waits = pool.receive_waits();
    assert!(waits.iter().sum::<u64>() > 500, "{waits:?}");

    // Stopping one session leaves the other on the same socket running.
    tokio::time::timeout(Duration::from_secs(5), bob.stop())
        .await
        .expect("a shared-socket session stops");
    assert!(moved > 0);
    let before = decrypted(&alice, "carol", "audio");
    eventually(Duration::from_secs(5), "alice still hears carol", || {
        decrypted(&alice, "carol", "audio") > before + 20
    })
    .await;
    common::received_counts_settle().await;
    let heard = decrypted(&carol, "bob", "audio");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(decrypted(&carol, "bob", "audio"), heard, "bob is silent");
}
