//! WHIP and WHEP over real HTTP and UDP on loopback.
//!
//! A WHIP publisher (a str0m peer that only makes one offer, as OBS or
//! GStreamer do) publishes into a room; a participant who joined through
//! the WebSocket protocol receives and decrypts its frames. A WHEP viewer
//! (a plain str0m peer offering two recvonly m-lines) receives one chosen
//! participant's audio and video, and only theirs, with the SFrame
//! ciphertext untouched. The HTTP semantics follow RFC 9725: 201 with
//! `Location` and `application/sdp`, DELETE to end, 405 for trickle, and
//! clear 4xx errors.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use signalling::auth::Grants;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use veil_client::keys::key_id;
use veil_client::{Client, ClientConfig, RoomSecret};
use veil_media::packet::sframe_header::SframeHeader;

use common::{eventually, join, start_server, token};

async fn post_sdp(url: &str, bearer: Option<&str>, sdp: String) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp);
    if let Some(t) = bearer {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

/// What a WHEP viewer received: packets per kind, and the SFrame key ids
/// seen on audio (one frame per packet, so each payload starts with the
/// SFrame header).
#[derive(Default)]
struct Viewed {
    packets: HashMap<&'static str, u64>,
    audio_key_ids: Vec<u64>,
}

/// A minimal WHEP player: one offer with recvonly audio and video.
async fn whep_viewer(
    addr: SocketAddr,
    room: &str,
    publisher: &str,
    bearer: &str,
) -> (Arc<Mutex<Viewed>>, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = veil_media::extensions::base_rtc_config().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let audio_mid = change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let video_mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let response = post_sdp(
        &format!("http://{addr}/whep/{room}/{publisher}"),
        Some(bearer),
        offer.to_sdp_string(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let answer = SdpAnswer::from_sdp_string(&response.text().await.unwrap()).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).unwrap();
    let viewed: Arc<Mutex<Viewed>> = Arc::default();
    let seen = viewed.clone();
    tokio::spawn(async move {
        let kinds: HashMap<Mid, &'static str> = [(audio_mid, "audio"), (video_mid, "video")].into();
        let mut buf = vec![0u8; 2000];
        loop {
            let timeout = loop {
                match rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(Event::RtpPacket(p))) => {
                        let mid = rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid());
                        let kind = mid
                            .and_then(|m| kinds.get(&m).copied())
                            .unwrap_or("unknown");
                        let mut v = seen.lock().unwrap();
                        *v.packets.entry(kind).or_default() += 1;
                        if kind == "audio"
                            && let Ok(h) = SframeHeader::parse(&p.payload)
                        {
                            v.audio_key_ids.push(h.key_id);
                        }
                    }
                    Ok(Output::Event(_)) => {}
                    Err(_) => return,
                }
            };
            let wait = timeout.saturating_duration_since(Instant::now());
            let input = match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
                Ok(Ok((n, source))) => match buf[..n].try_into() {
                    Ok(contents) => Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents,
                        },
                    ),
                    Err(_) => continue,
                },
                Ok(Err(_)) => return,
                Err(_) => Input::Timeout(Instant::now()),
            };
            if rtc.handle_input(input).is_err() {
                return;
            }
        }
    });
    (viewed, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publishes_into_a_room_and_whep_watches_one_participant() {
    let addr = start_server().await;
    let room = "broadcast";
    let secret = RoomSecret::from_passphrase(room, "p");

    // Bob is an ordinary participant (WebSocket protocol).
    let mut bob_cfg = ClientConfig::new("bob", room, secret.clone());
    bob_cfg.record_digests = false;
    let bob = join(
        addr,
        Some(token("bob", room, Grants::participant(), 600)),
        bob_cfg,
    )
    .await
    .unwrap();

    // The encoder publishes over WHIP: one offer, one answer, no socket.
    let encoder_token = token("encoder", room, Grants::participant(), 600);
    let mut cfg = ClientConfig::new("encoder", room, secret.clone());
    cfg.record_digests = false;
    let (pending, offer) = Client::prepare(cfg).unwrap();
    let response = post_sdp(
        &format!("http://{addr}/whip/{room}"),
        Some(&encoder_token),
        offer.to_sdp_string(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-type"], "application/sdp");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("/whip/{room}/encoder"));
    let answer = SdpAnswer::from_sdp_string(&response.text().await.unwrap()).unwrap();
    // Nothing ever comes from the server: WHIP has no signalling channel.
    let (_never, from_server) = mpsc::channel(1);
    let (to_server, mut ignored) = mpsc::channel(8);
    tokio::spawn(async move { while ignored.recv().await.is_some() {} });
    let encoder = pending.start(answer, from_server, to_server).unwrap();

    let from = |c: &signalling::client::Connection, who: &str, kind: &'static str| {
        c.with_stats(|s| {
            s.remote
                .get(&(who.to_string(), kind))
                .map_or(0, |r| r.frames_decrypted)
        })
    };
    eventually(
        Duration::from_secs(20),
        "bob decrypts the WHIP publisher's audio and video",
        || from(&bob, "encoder", "audio") > 20 && from(&bob, "encoder", "video") > 10,
    )
    .await;
    assert_eq!(
        encoder.with_stats(|s| s.remote.len()),
        0,
        "an ingest receives nothing"
    );

    // A WHEP viewer of bob gets bob's audio and video, and only bob's.
    let viewer_token = token("viewer", room, Grants::participant(), 600);
    let (viewed, viewer_location) = whep_viewer(addr, room, "bob", &viewer_token).await;
    assert!(viewer_location.starts_with(&format!("/whep/{room}/bob/viewer%23whep-")));
    eventually(
        Duration::from_secs(20),
        "the viewer receives bob's audio and video",
        || {
            let v = viewed.lock().unwrap();
            v.packets.get("audio").copied().unwrap_or(0) > 50
                && v.packets.get("video").copied().unwrap_or(0) > 20
        },
    )
    .await;
    {
        let v = viewed.lock().unwrap();
        let bob_kid = key_id("bob", 0);
        assert!(
            v.audio_key_ids.iter().all(|k| *k == bob_kid),
            "only bob's frames, still sealed under bob's SFrame key"
        );
    }

    // WHIP and WHEP sessions are in the room like anyone: listed and
    // counted (bob, the encoder, the viewer).
    let http = reqwest::Client::new();
    let admin = common::admin_token(None);
    let rooms: serde_json::Value = http
        .get(format!("http://{addr}/api/rooms"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == room)
        .unwrap_or_else(|| panic!("the room is listed: {rooms}"));
    assert_eq!(listed["participants"], 3, "{rooms}");

    // Ending: trickle is not offered, a stranger cannot delete, the owner can.
    let url = format!("http://{addr}{location}");
    let patch = http
        .patch(&url)
        .bearer_auth(&encoder_token)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::METHOD_NOT_ALLOWED);
    let stranger = http
        .delete(&url)
        .bearer_auth(token("mallory", room, Grants::participant(), 600))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
    let ended = http
        .delete(&url)
        .bearer_auth(&encoder_token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    let again = http
        .delete(&url)
        .bearer_auth(&encoder_token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let viewer_end = http
        .delete(format!("http://{addr}{viewer_location}"))
        .bearer_auth(&viewer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(viewer_end.status(), StatusCode::OK);
    let audio_now = viewed.lock().unwrap().packets["audio"];
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        viewed.lock().unwrap().packets["audio"] <= audio_now + 5,
        "no media after DELETE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_refuses_bad_requests_clearly() {
    let addr = start_server().await;
    let room = "guarded";
    let url = format!("http://{addr}/whip/{room}");
    let (_pending, offer) = Client::prepare(ClientConfig::new(
        "x",
        room,
        RoomSecret::from_passphrase(room, "p"),
    ))
    .unwrap();
    let sdp = offer.to_sdp_string();

    let missing = post_sdp(&url, None, sdp.clone()).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");

    let other_room = token("x", "elsewhere", Grants::participant(), 600);
    let wrong = post_sdp(&url, Some(&other_room), sdp.clone()).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    let mut no_publish = Grants::participant();
    no_publish.publish = false;
    let watcher = token("x", room, no_publish, 600);
    let refused = post_sdp(&url, Some(&watcher), sdp.clone()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let good = token("x", room, Grants::participant(), 600);
    let json = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&good)
        .json(&serde_json::json!({ "sdp": sdp }))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let garbage = post_sdp(&url, Some(&good), "v=0\r\nthis is not sdp".into()).await;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = garbage.json().await.unwrap();
    assert_eq!(body["error"], "bad_offer");

    let huge = post_sdp(&url, Some(&good), "a".repeat(200_000)).await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = huge.json().await.unwrap();
    assert_eq!(body["error"], "offer_too_large", "a JSON reason: {body}");

    // WHEP checks its token the same way (and wants `subscribe`).
    let whep = format!("http://{addr}/whep/{room}/someone");
    assert_eq!(
        post_sdp(&whep, None, sdp.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_sdp(&whep, Some(&other_room), sdp.clone())
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let mut no_subscribe = Grants::participant();
    no_subscribe.subscribe = false;
    let deaf = token("x", room, no_subscribe, 600);
    assert_eq!(
        post_sdp(&whep, Some(&deaf), sdp.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    let http = reqwest::Client::new();
    let forged_delete = http
        .delete(format!(
            "http://{addr}/whep/{room}/someone/x%23whep-00000000"
        ))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged_delete.status(), StatusCode::UNAUTHORIZED);
    let not_a_viewer = http
        .delete(format!("http://{addr}/whep/{room}/someone/x"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(
        not_a_viewer.status(),
        StatusCode::FORBIDDEN,
        "only viewer sessions end here"
    );

    // The server still serves a good offer after all that.
    let ok = post_sdp(&url, Some(&good), sdp.clone()).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let twice = post_sdp(&url, Some(&good), sdp).await;
    assert_eq!(
        twice.status(),
        StatusCode::CONFLICT,
        "one session per identity"
    );
}
