//! The REST API with admin tokens, and open-room tokens.

mod common;

use std::time::Duration;

use common::{eventually, join, start_server_with, token};
use signalling::api::{OpenRoomToken, RoomSummary};
use signalling::auth::Grants;
use veil_client::{ClientConfig, RoomSecret};

fn admin_token() -> String {
    common::admin_token(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_kick_mute_and_close_rooms() {
    let addr = start_server_with(false).await;
    let room = "ops-room";
    let secret = RoomSecret::from_passphrase(room, "p");
    // Joins `who` with a fresh participant token, audio only.
    let join_as = |who: &str| {
        let mut c = ClientConfig::new(who, room, secret.clone());
        c.video = None;
        join(addr, Some(token(who, room, Grants::participant(), 600)), c)
    };
    let alice = join_as("alice").await.unwrap();
    let _bob = join_as("bob").await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    // Every admin route refuses a missing token (401) and a participant token (403).
    let participant = token("alice", room, Grants::participant(), 600);
    for (method, path) in [
        ("GET", "/api/rooms".to_string()),
        ("POST", "/api/rooms".to_string()),
        ("POST", format!("/api/rooms/{room}/participants/bob/mute")),
        ("GET", format!("/api/rooms/{room}/participants")),
        ("DELETE", format!("/api/rooms/{room}")),
        ("POST", format!("/api/rooms/{room}/participants/bob/kick")),
    ] {
        let url = format!("{base}{path}");
        let req = |m: &str| match m {
            "GET" => http.get(&url),
            "DELETE" => http.delete(&url),
            _ => http.post(&url),
        };
        assert_eq!(
            req(method).send().await.unwrap().status(),
            401,
            "{method} {path} without a token"
        );
        let r = req(method).bearer_auth(&participant).send().await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path} with a participant token");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_granted");
    }

    let admin = admin_token();
    // A session is listed once its socket loop runs, just after the client
    // has its answer: ask until both are there (or give up after 5 s).
    let list = || async {
        http.get(format!("{base}/api/rooms"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json::<Vec<RoomSummary>>()
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut rooms = list().await;
    while rooms.first().is_some_and(|r| r.participants < 2) && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        rooms = list().await;
    }
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].room.as_str(), rooms[0].participants), (room, 2));
    let stats: serde_json::Value = http
        .get(format!("{base}/api/rooms/{room}/participants"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["participants"].as_array().unwrap().len(), 2);

    let muted = http
        .post(format!("{base}/api/rooms/{room}/participants/alice/mute"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"kind": "audio", "muted": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(muted.status(), 204);
    // A moderator's mute holds: alice cannot lift it herself.
    alice
        .send(signalling::protocol::ClientMessage::Mute {
            kind: sfu::TrackKind::Audio,
            muted: false,
        })
        .await;
    eventually(
        Duration::from_secs(5),
        "alice is told she cannot unmute",
        || alice.with_stats(|s| s.errors.iter().any(|e| e.contains("muted_by_moderator"))),
    )
    .await;
    let kicked = http
        .post(format!("{base}/api/rooms/{room}/participants/bob/kick"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 204);
    // Bob's token is still valid, but the removal keeps him out; carol,
    // not removed, still gets in.
    let again = join_as("bob").await;
    assert_eq!(again.err().as_deref(), Some("removed"));
    let _carol = join_as("carol").await.unwrap();
    let missing = http
        .post(format!("{base}/api/rooms/{room}/participants/nobody/kick"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let closed = http
        .delete(format!("{base}/api/rooms/{room}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 204);
    eventually(Duration::from_secs(5), "alice's session ends", || {
        alice.with_stats(|s| s.disconnected.is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_rooms_mint_tokens_only_when_enabled() {
    let closed = start_server_with(false).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{closed}/token"))
        .json(&serde_json::json!({"room": "r", "name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let open = start_server_with(true).await;
    let r = http
        .post(format!("http://{open}/token"))
        .json(&serde_json::json!({"room": "", "name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let t: OpenRoomToken = http
        .post(format!("http://{open}/token"))
        .json(&serde_json::json!({"room": "lobby", "name": "Ann Lee"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(t.identity.starts_with("Ann Lee#"));
    let claims = common::auth().verify(&t.token, Some("lobby")).unwrap();
    assert_eq!(claims.sub, t.identity);
    // The token works for a real join, under an identity with spaces and '#'.
    let mut cfg = ClientConfig::new(
        &t.identity,
        "lobby",
        RoomSecret::from_passphrase("lobby", "p"),
    );
    cfg.video = None;
    let ann = join(open, Some(t.token), cfg).await.unwrap();
    eventually(Duration::from_secs(10), "Ann connects", || {
        ann.with_stats(|s| s.connected)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_covers_every_rest_route() {
    let addr = start_server_with(false).await;
    let doc: serde_json::Value = reqwest::get(format!("http://{addr}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/rooms", "get"),
        ("/api/rooms", "post"),
        ("/api/rooms/{room}", "delete"),
        ("/api/rooms/{room}/participants", "get"),
        ("/api/rooms/{room}/participants/{id}/kick", "post"),
        ("/api/rooms/{room}/participants/{id}/mute", "post"),
        ("/token", "post"),
        ("/whip/{room}", "post"),
        ("/whip/{room}/{identity}", "delete"),
        ("/whep/{room}/{participant}", "post"),
        ("/whep/{room}/{participant}/{viewer}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} documented"
        );
    }
    // Every $ref points at something that exists.
    let text = doc.to_string();
    for reference in text
        .split("\"$ref\":\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
    {
        let pointer = reference.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_create_rooms_with_a_participant_limit() {
    let addr = start_server_with(false).await;
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let admin = admin_token();
    let create = |body: serde_json::Value| {
        http.post(format!("{base}/api/rooms"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let created = create(serde_json::json!({"room": "standup", "max_participants": 2}))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let again = create(serde_json::json!({"room": "standup", "max_participants": 1}))
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "creating again updates");
    for bad in [
        serde_json::json!({"room": ""}),
        serde_json::json!({"room": "x", "max_participants": 0}),
        serde_json::json!({"name": "no room field"}),
    ] {
        let r = create(bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "bad_request");
    }
    let rooms: Vec<RoomSummary> = http
        .get(format!("{base}/api/rooms"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rooms.len(), 1, "a created room is listed while empty");
    assert_eq!(
        (
            rooms[0].room.as_str(),
            rooms[0].participants,
            rooms[0].max_participants
        ),
        ("standup", 0, Some(1))
    );

    // The limit holds at join.
    let room = "standup";
    let cfg = |who: &str| {
        let mut c = ClientConfig::new(who, room, RoomSecret::from_passphrase(room, "p"));
        c.video = None;
        c
    };
    let _first = join(
        addr,
        Some(token("first", room, Grants::participant(), 600)),
        cfg("first"),
    )
    .await
    .unwrap();
    let second = join(
        addr,
        Some(token("second", room, Grants::participant(), 600)),
        cfg("second"),
    )
    .await;
    assert_eq!(second.err().as_deref(), Some("room_full"));

    // Deleting forgets the settings (and ends the sessions).
    let deleted = http
        .delete(format!("{base}/api/rooms/{room}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The sessions end asynchronously (each signalling session task hears
    // its SFU session end and only then leaves the presence list); until
    // then a second delete still finds members and closes them again.
    let mut status = 0;
    for _ in 0..100 {
        let gone = http
            .delete(format!("{base}/api/rooms/{room}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        status = gone.status().as_u16();
        if status != 204 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 404, "the deleted room is forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_sfu_nodes() {
    use signalling::nodes::Nodes;
    use signalling::registry::{NodeInfo, Registry};
    use signalling::server::AppState;
    let registry = Registry::memory();
    let state = AppState::with_nodes(
        common::auth(),
        Nodes::cluster(registry.clone(), "secret"),
        None,
    );
    let addr = common::serve(state).await;
    let readyz = || async {
        let r = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    };
    let (status, body) = readyz().await;
    assert_eq!(status, 503, "no SFU node yet: {body}");
    assert_eq!(body["ready"], false);
    let node = |draining| NodeInfo {
        id: "n1".into(),
        control_url: "http://127.0.0.1:9".into(),
        load: 0,
        draining,
    };
    registry
        .heartbeat(&node(true), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(readyz().await.0, 503, "a draining node takes no rooms");
    registry
        .heartbeat(&node(false), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(readyz().await.0, 200);
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "liveness does not depend on the nodes"
    );
}

/// Every authenticated route, REST and WHIP/WHEP, refuses every kind of bad
/// token with its status and a JSON reason, and a room-scoped admin token
/// reaches its own room only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_bad_token_with_a_reason() {
    let addr = start_server_with(false).await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let room = "guarded";
    let expired = common::auth()
        .mint(
            "test",
            signalling::auth::TokenRequest::new("eve", room, Grants::participant()),
            1,
        )
        .unwrap();
    let forged =
        signalling::auth::Authenticator::new([("test", "not-the-server-secret-0123456789abcdef")])
            .unwrap()
            .mint(
                "test",
                signalling::auth::TokenRequest::new("eve", room, Grants::participant()),
                600,
            )
            .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await; // `expired` is now
    let elsewhere = token("eve", "another-room", Grants::participant(), 600);
    let other_admin = common::admin_token(Some("another-room"));
    let sdp = "v=0\r\n";
    let routes: Vec<(&str, String)> = vec![
        ("GET", "/api/rooms".into()),
        ("POST", "/api/rooms".into()),
        ("GET", format!("/api/rooms/{room}/participants")),
        ("DELETE", format!("/api/rooms/{room}")),
        ("POST", format!("/api/rooms/{room}/participants/bob/kick")),
        ("POST", format!("/api/rooms/{room}/participants/bob/mute")),
        ("POST", format!("/whip/{room}")),
        ("DELETE", format!("/whip/{room}/eve")),
        ("POST", format!("/whep/{room}/bob")),
        ("DELETE", format!("/whep/{room}/bob/eve")),
    ];
    for (method, path) in &routes {
        let url = format!("{base}{path}");
        let cases: [(&str, Option<&str>, u16); 6] = [
            ("no token", None, 401),
            ("a malformed token", Some("not.a.jwt"), 401),
            ("an expired token", Some(&expired), 401),
            ("a token signed with another secret", Some(&forged), 401),
            ("a token for another room", Some(&elsewhere), 403),
            ("an admin token for another room", Some(&other_admin), 403),
        ];
        for (what, bearer, status) in cases {
            let mut req = match *method {
                "GET" => http.get(&url),
                "DELETE" => http.delete(&url),
                _ => http.post(&url),
            };
            if path.starts_with("/wh") {
                req = req.header("content-type", "application/sdp").body(sdp);
            } else if *method == "POST" {
                req = req.json(&serde_json::json!({ "room": room }));
            }
            if let Some(t) = bearer {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), status, "{method} {path} with {what}");
            let body: serde_json::Value = r
                .json()
                .await
                .unwrap_or_else(|e| panic!("{method} {path} with {what}: no JSON body ({e})"));
            assert!(
                body["error"].is_string(),
                "{method} {path} with {what}: {body}"
            );
        }
    }
    // A room-scoped admin token gets past authorization in its own room
    // (which is empty, so the answer is about the room, not the token).
    let own_admin = common::admin_token(Some(room));
    let r = http
        .get(format!("{base}/api/rooms/{room}/participants"))
        .bearer_auth(&own_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unknown_room");
}

/// The routes that start something (`POST /token`, WHIP, WHEP) have a
/// request budget per client address: past it, 429 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_a_budget_of_token_requests() {
    let addr =
        common::start_server_state(|s| s.with_open_rooms("test").with_request_rate(2.0, 5.0)).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = http
            .post(format!("http://{addr}/token"))
            .json(&serde_json::json!({ "room": "busy", "name": format!("p{i}") }))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..5], [200; 5], "the burst: {statuses:?}");
    assert!(
        statuses[5..].contains(&429),
        "then the budget: {statuses:?}"
    );
    // A malformed body is refused with a JSON reason too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = http
        .post(format!("http://{addr}/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
}
