//! The browser client served by signalling, in headless Chromium: four
//! participants join through the real page (invite links with the
//! passphrase in the URL fragment), and a Rust client. The three browsers
//! that share the passphrase decode each other's end-to-end encrypted video
//! and audio, chat, and pass a 20 MB file; the one with a wrong passphrase
//! decodes nothing, sees "cannot decrypt", and is seen that way.
//! A screenshot of the call is saved under the target dir.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{browser_script, join, start_server_with, token, web_dir};
use signalling::auth::Grants;
use veil_client::{ClientConfig, RoomSecret};

fn artifact(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_browsers_and_a_rust_client_in_one_room() {
    web_dir();
    let addr = start_server_with(true).await;
    let (room, passphrase) = ("browser room", "correct horse battery staple");
    // A Rust client in the same room, with the same passphrase.
    let mut cfg = ClientConfig::new("rusty", room, RoomSecret::from_passphrase(room, passphrase));
    cfg.record_digests = false;
    let rusty = join(
        addr,
        Some(token("rusty", room, Grants::participant(), 600)),
        cfg,
    )
    .await
    .unwrap();
    let rusty = std::sync::Arc::new(rusty);
    // It says something in the chat, again and again, so the browsers hear
    // it whenever they are in.
    let chatter = {
        let rusty = rusty.clone();
        tokio::spawn(async move {
            for _ in 0..900 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                rusty.with_client(|c| {
                    c.try_send_data(br#"{"type":"chat","text":"hello from rust"}"#)
                });
            }
        })
    };
    let screenshot = artifact("browser-call.png");
    let _ = std::fs::remove_file(&screenshot);
    let base = format!("http://{addr}");
    let screenshot_path = screenshot.to_string_lossy();
    let result = browser_script(
        "call.mjs",
        &[&base, room, passphrase, &screenshot_path],
        &[
            ("RUST_PEER", "rusty"),
            ("ADMIN_TOKEN", &common::admin_token(Some(room))),
        ],
        Duration::from_secs(450),
    )
    .await;
    chatter.abort();
    assert!(result.get("error").is_none(), "browser error: {result}");
    assert!(result.get("page_errors").is_none(), "page errors: {result}");
    let pages = &result["pages"];
    let find = |remotes: &serde_json::Value, page: &str, who: &str| -> serde_json::Value {
        remotes
            .as_object()
            .unwrap()
            .iter()
            .find(|(id, _)| {
                *id == who || (id.starts_with(&format!("{who}#")) && !id.contains(" ("))
            })
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{page} does not see {who}: {result}"))
    };
    let remote = |page: &str, who: &str| find(&pages[page]["remotes"], page, who);
    // Each page's remotes just before bob muted his microphone.
    let heard_before_mute = |page: &str, who: &str| find(&result["hearing"][page], page, who);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    for (page, other) in [
        ("alice", "bob"),
        ("alice", "carol"),
        ("bob", "alice"),
        ("bob", "carol"),
        ("carol", "alice"),
        ("carol", "bob"),
    ] {
        let r = remote(page, other);
        assert!(
            n(&r, "framesDecoded") > 20,
            "{page} decodes {other}'s video: {r}"
        );
        assert!(n(&r, "audioSamples") > 48_000, "{page} hears {other}: {r}");
        // Samples alone prove nothing: garbage also "decodes". The beeps
        // come out audible, and the decoder rarely had to invent audio.
        let h = heard_before_mute(page, other);
        let f = |k: &str| h[k].as_f64().unwrap_or(0.0);
        assert!(f("audioEnergy") > 0.0, "{page} hears {other}'s beeps: {h}");
        assert!(
            f("concealedSamples") < 0.25 * f("audioSamples"),
            "{page} hears {other} mostly without concealment: {h}"
        );
        assert!(n(&r, "decrypted") > 50, "through SFrame: {r}");
        // The fake microphone beeps: everyone is highlighted as an active
        // speaker at some point, and every tile shows a connection grade.
        assert_eq!(r["spoke"], true, "{page} saw {other} speak: {r}");
        assert!(
            ["excellent", "good", "poor"].contains(&r["quality"].as_str().unwrap_or("")),
            "{page} grades {other}'s connection: {r}"
        );
        assert_eq!(n(&r, "failed"), 0, "{r}");
        assert_eq!(r["undecryptable"], false);
        assert_eq!(r["label"], other, "the tile shows the name {other} typed");
    }
    // Mallory's passphrase is wrong: nothing of hers opens, nothing opens for her.
    for (page, other) in [
        ("alice", "mallory"),
        ("mallory", "alice"),
        ("mallory", "bob"),
    ] {
        let r = remote(page, other);
        assert_eq!(
            n(&r, "decrypted"),
            0,
            "{page} decrypts nothing of {other}: {r}"
        );
        assert!(n(&r, "failed") > 0, "{r}");
        assert_eq!(
            r["undecryptable"], true,
            "{page} shows {other} as cannot-decrypt"
        );
        assert_eq!(
            n(&r, "framesDecoded"),
            0,
            "{page} decodes no video of {other}: {r}"
        );
        assert_eq!(
            r["audioEnergy"].as_f64().unwrap_or(0.0),
            0.0,
            "{page} hears nothing of {other}: {r}"
        );
    }
    // The Rust client and the browsers open each other's frames.
    for page in ["alice", "bob"] {
        let r = remote(page, "rusty");
        assert!(
            n(&r, "decrypted") > 20,
            "{page} decrypts the Rust client: {r}"
        );
        assert_eq!(n(&r, "failed"), 0);
    }
    for who in ["alice", "bob"] {
        let from_browser = rusty.with_stats(|s| {
            s.remote
                .iter()
                .filter(|((id, _), _)| id.starts_with(&format!("{who}#")))
                .map(|(_, r)| r.frames_decrypted)
                .sum::<u64>()
        });
        assert!(
            from_browser > 20,
            "the Rust client decrypts {who}: {from_browser}"
        );
    }
    // Chat, end to end: bob reads alice; the browsers read the Rust client;
    // nobody reads mallory, and mallory reads nobody.
    let chat = |page: &str| pages[page]["chat"].as_array().unwrap().clone();
    assert!(
        chat("bob").iter().any(|c| c["text"] == "hello from alice"
            && c["from"].as_str().unwrap().starts_with("alice#")),
        "{result}"
    );
    assert!(
        chat("alice")
            .iter()
            .any(|c| c["text"] == "hello from rust" && c["from"] == "rusty")
    );
    assert!(
        chat("alice")
            .iter()
            .all(|c| c["text"] != "mallory was here")
    );
    assert!(
        n(&pages["alice"], "messageFailures") > 0,
        "mallory's message did not open"
    );
    assert!(
        chat("mallory")
            .iter()
            .all(|c| c["from"].as_str().unwrap().starts_with("mallory#")),
        "mallory reads only herself"
    );
    assert!(n(&pages["mallory"], "messageFailures") > 0);
    rusty.with_stats(|s| {
        assert!(
            s.messages
                .iter()
                .any(|(_, owner, text)| owner.starts_with("alice#")
                    && String::from_utf8_lossy(text).contains("hello from alice")),
            "the Rust client reads alice's chat: {:?}",
            s.messages
        );
    });
    // A 20 MB file: bob has it, whole and with the sender's SHA-256.
    let sent = &result["file_sent"];
    assert_eq!(sent["size"], 20 * 1024 * 1024);
    let got = pages["bob"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "random.bin")
        .unwrap_or_else(|| panic!("bob got no file: {result}"))
        .clone();
    assert_eq!(got["done"], true, "{got}");
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["sha256"], sent["sha256"]);
    assert_eq!(
        sent["sha256"], sent["expected"],
        "the streamed hash is WebCrypto's SHA-256 of the file"
    );
    assert!(got["from"].as_str().unwrap().starts_with("alice#"));
    assert!(
        pages["mallory"]["files"].as_array().unwrap().is_empty(),
        "mallory cannot even read the offer"
    );
    println!("20 MB file through the SFU in {} ms", result["file_ms"]);
    // Every page joined once and stayed (no reload into the call).
    for page in ["alice", "bob", "carol", "mallory"] {
        assert_eq!(result["loads"][page], 1, "{page} reloaded: {result}");
    }
    // A screen share arrives as a second, decodable video.
    if n(&result["screen"], "framesDecoded") <= 10 {
        // Say where the frames stopped: the pages' view and the SFU's counts.
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .map(|r| r.text());
        let metrics = match metrics {
            Ok(text) => text.await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        let sfu: Vec<&str> = metrics
            .lines()
            .filter(|l| l.contains("dropped") || l.contains("keyframe") || l.contains("negotiat"))
            .collect();
        panic!(
            "bob decodes alice's screen: {}\npages: {}\nSFU: {sfu:#?}",
            result["screen"], result["screen_debug"]
        );
    }
    // A dropped signalling socket is resumed; the call never stopped.
    assert_eq!(result["after_drop"]["resumes"], 1, "{result}");
    assert!(n(&result["after_drop"], "decoded") > 30, "{result}");
    // Mute shows on the others' tiles; tile size picks the simulcast layer.
    assert_eq!(remote("alice", "bob")["mutedAudio"], true, "{result}");
    assert_eq!(remote("alice", "carol")["mutedVideo"], true, "{result}");
    assert_eq!(
        result["camera_off"]["framesSince"], 0,
        "no video of carol arrives while her camera is off: {result}"
    );
    // Tile size picks the simulcast layer (alice's tile for bob shrunk to
    // 200 px, then widened to 640 px): alice receives exactly what bob's
    // encoder sends on the layer asked for, as wide as it is at the moment
    // (Chrome scales layers down under CPU load, as four browsers on two
    // cores are).
    let (small, large) = (&result["layer_small"], &result["layer_large"]);
    println!("smallest layer {small}, top layer {large}");
    assert!(n(small, "got") > 0, "{result}");
    assert_eq!(
        small["got"], small["sent"],
        "alice gets bob's smallest layer: {result}"
    );
    assert_eq!(
        large["got"], large["sent"],
        "alice gets the highest layer bob sends: {result}"
    );
    assert!(n(large, "got") > n(small, "got"), "{result}");
    let text = result["page_text"].as_str().unwrap_or_default();
    assert!(text.contains("cannot decrypt"), "{text}");
    // Same passphrase, same safety number; a different one differs.
    let fp = |p: &str| pages[p]["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp("alice"), fp("bob"));
    assert_ne!(fp("alice"), fp("mallory"));
    // The footer's E2EE status stays on screen: alice encrypts, and says
    // that one tile (mallory's) cannot be decrypted.
    let badge = pages["alice"]["e2eeBadge"].as_str().unwrap_or_default();
    assert!(
        badge.starts_with("End-to-end encrypted") && badge.contains("1 cannot decrypt"),
        "alice's E2EE status: {badge:?}"
    );
    assert!(
        chat("carol")
            .iter()
            .any(|c| c["text"] == "hello from alice"),
        "carol reads alice's chat too: {result}"
    );
    // Tile-size layer requests only ever name participants (never a
    // screen-share tile), so the server refused none of them.
    for page in ["alice", "bob", "carol", "mallory"] {
        let errors = pages[page]["serverErrors"].as_array().unwrap();
        assert!(
            errors.iter().all(|e| e != "layer_failed"),
            "{page} asked for layers of someone who is not there: {errors:?}"
        );
    }
    // "Copy invite link" gives the room and passphrase without alice's
    // name; opening it asks the invitee for theirs.
    let invite = result["invite"].as_str().unwrap_or_default();
    assert_eq!(
        invite,
        format!(
            "{base}/r/{}#{}",
            room.replace(' ', "%20"),
            passphrase.replace(' ', "%20")
        ),
        "{result}"
    );
    let invitee = &result["invitee"];
    assert_eq!(invitee["formShown"], true, "{result}");
    assert_eq!(invitee["name"], "", "{result}");
    assert_eq!(invitee["room"], room, "{result}");
    assert_eq!(invitee["passphraseFilled"], true, "{result}");
    // Dora joined audio-only: she hears alice and carol, alice hears her,
    // and the SFU offered her no video at all.
    let dora = &result["audio_only"];
    assert_eq!(
        dora["checkbox"], true,
        "the address kept the choice: {dora}"
    );
    assert_eq!(dora["cameraButtonHidden"], true, "{dora}");
    assert_eq!(
        dora["videoTransceivers"], 0,
        "dora was offered video: {dora}"
    );
    for who in ["alice", "carol"] {
        let heard = &dora["hears"][who];
        assert!(n(heard, "decrypted") > 50, "dora decrypts {who}: {dora}");
        assert!(
            heard["audioEnergy"].as_f64().unwrap_or(0.0) > 0.0,
            "dora hears {who}: {dora}"
        );
        assert_eq!(
            n(heard, "framesDecoded"),
            0,
            "dora decoded video of {who}: {dora}"
        );
    }
    assert!(
        n(&dora["heardByAlice"], "decrypted") > 50,
        "alice decrypts dora: {dora}"
    );
    // A moderator removed dora: her page says why and stays out (no
    // reload, no resume), her devices are released, the room sees her go.
    let kicked = &result["kicked"];
    assert_eq!(kicked["kick"], 204, "{kicked}");
    assert_eq!(kicked["ended"], "removed by a moderator", "{kicked}");
    assert!(
        kicked["status"]
            .as_str()
            .is_some_and(|s| s.contains("removed by a moderator")),
        "{kicked}"
    );
    assert_eq!(kicked["loads"], 1, "dora's page reloaded: {kicked}");
    assert_eq!(kicked["resumes"], 0, "dora tried to resume: {kicked}");
    assert_eq!(kicked["connection"], "closed", "{kicked}");
    assert_eq!(kicked["liveTracks"], 0, "{kicked}");
    assert_eq!(kicked["aliceStillShowsDora"], false, "{kicked}");
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 1000,
        "screenshot saved at {}",
        screenshot.display()
    );
}
