//! WHIP and WHEP with a second, independent WebRTC stack: headless Chromium
//! (libwebrtc) publishes its fake camera and microphone over WHIP and plays
//! them back over WHEP, decoding real frames, while a Rust participant in the
//! same room receives the WHIP publisher's tracks like any other.
//!
//! Needs Node.js, `npm ci --prefix web` and Debian's `chromium`; `.ci/run`
//! installs all three.

mod common;

use std::time::Duration;

use signalling::auth::Grants;
use veil_client::{ClientConfig, RoomSecret};

use common::{browser_script, eventually, join, start_server_with, token, web_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_over_whip_and_watches_over_whep() {
    web_dir();
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists() || std::env::var("CHROMIUM").is_ok(),
        "chromium is missing: apt-get install chromium (bash .ci/run does)"
    );
    let addr = start_server_with(true).await;
    let room = "browser-broadcast";

    // A Rust participant already in the room.
    let mut cfg = ClientConfig::new("bob", room, RoomSecret::from_passphrase(room, "p"));
    cfg.record_digests = false;
    let bob = join(
        addr,
        Some(token("bob", room, Grants::participant(), 600)),
        cfg,
    )
    .await
    .unwrap();

    let publisher = token("chromium-encoder", room, Grants::participant(), 600);
    let viewer = token("chromium-viewer", room, Grants::participant(), 600);
    let base = format!("http://{addr}");
    let result = browser_script(
        "whip-whep.mjs",
        &[&base, room, &publisher, &viewer, "a passphrase"],
        &[],
        Duration::from_secs(150),
    )
    .await;
    println!("browser: {result}");
    assert!(result.get("error").is_none(), "browser error: {result}");

    assert_eq!(result["whip_status"], 201);
    assert_eq!(result["whip_content_type"], "application/sdp");
    assert_eq!(
        result["whip_location"],
        format!("/whip/{room}/chromium-encoder")
    );
    assert_eq!(result["whep_status"], 201);
    assert!(
        result["frames_decoded"].as_u64().unwrap() >= 30,
        "the WHEP viewer decodes the WHIP publisher's video: {result}"
    );
    assert!(result["width"].as_u64().unwrap() > 0);
    assert!(
        result["audio_samples"].as_u64().unwrap() >= 48_000,
        "and plays its audio: {result}"
    );
    // Samples alone prove little (garbage decodes too): the fake microphone's
    // tone must be audible and barely concealed.
    assert!(result["audio_level"].as_f64().unwrap() > 0.0, "{result}");
    assert!(
        result["concealed_samples"].as_u64().unwrap() * 10
            < result["audio_samples"].as_u64().unwrap(),
        "{result}"
    );
    // On the page, the WHIP publisher's media plays, labelled as not end-to-
    // end encrypted; it is not mistaken for a wrong passphrase.
    let seen = &result["member_sees_publisher"];
    assert!(seen["framesDecoded"].as_u64().unwrap_or(0) > 10, "{result}");
    assert!(seen["plain"].as_u64().unwrap_or(0) > 10, "{result}");
    assert_eq!(seen["notE2ee"], true, "{result}");
    assert_eq!(seen["undecryptable"], false, "{result}");
    assert!(
        result["member_text"]
            .as_str()
            .unwrap()
            .contains("not end-to-end encrypted"),
        "{result}"
    );
    assert_eq!(result["delete_statuses"], serde_json::json!([200, 200]));

    // The ordinary participant received the WHIP tracks too. (Chromium sends
    // them without SFrame, so they arrive but do not decrypt: WHIP ingest is
    // not end-to-end encrypted, and the receiver can tell.)
    eventually(
        Duration::from_secs(5),
        "bob received the WHIP video",
        || {
            bob.with_stats(|s| {
                s.remote
                    .get(&("chromium-encoder".to_string(), "video"))
                    .is_some_and(|r| r.packets > 30 && r.frames_decrypted == 0)
            })
        },
    )
    .await;
}
