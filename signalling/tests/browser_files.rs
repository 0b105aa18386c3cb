//! Two browsers in a call, one on each of Chrome's encoded-transform APIs
//! (`RTCRtpScriptTransform`, and the page's fallback `createEncodedStreams`),
//! decode each other, through two key rotations (a third participant
//! leaves, then one asks for a new key); then a 100 MB file goes between them: the real page
//! chunks it, seals every chunk with the sender's SFrame key, streams it
//! through the SFU's data channels with backpressure, and the receiver
//! verifies the SHA-256 that it computed as the chunks arrived.

mod common;

use std::time::Duration;

use common::{browser_script, start_server_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_transform_apis_interoperate_and_a_100_mb_file_arrives_verified() {
    let addr = start_server_with(true).await;
    let base = format!("http://{addr}");
    let result = browser_script(
        "files.mjs",
        &[&base, "file room", "file passphrase", "100"],
        &[],
        Duration::from_secs(450),
    )
    .await;
    assert!(result.get("error").is_none(), "{result}");
    assert!(result.get("page_errors").is_none(), "{result}");
    assert_eq!(
        result["transform_api"],
        serde_json::json!(["script-transform", "encoded-streams"]),
        "{result}"
    );
    for who in ["alice", "bob"] {
        let video = &result["video"][who];
        let n = |k: &str| video[k].as_u64().unwrap_or(0);
        assert!(
            n("framesDecoded") > 20 && n("decrypted") > 20,
            "{who}: {result}"
        );
        assert_eq!(n("failed"), 0, "{who}: {result}");
    }
    // On a phone-sized screen the page fits: no sideways scrolling, every
    // control and tile inside the screen.
    let phone = &result["phone"];
    assert_eq!(phone["width"], 390, "{result}");
    assert!(phone["scrollWidth"].as_u64().unwrap() <= 390, "{result}");
    assert_eq!(phone["tiles"], 3, "own tile and two others: {result}");
    assert_eq!(phone["outside"], serde_json::json!([]), "{result}");
    // Keys rotate when someone leaves and on demand; nobody misses a frame.
    let rotation = &result["rotation"];
    assert_eq!(rotation["epochs"], serde_json::json!([1, 2]), "{result}");
    // And the frames really moved to the new keys: bob's latest frame from
    // alice is under her epoch 1, alice's from bob under his epoch 2.
    assert_eq!(rotation["seen"], serde_json::json!([1, 2]), "{result}");
    for i in 0..2 {
        assert!(
            rotation["decrypted_after"][i].as_u64().unwrap() > 30,
            "{result}"
        );
        assert_eq!(rotation["failed"][i], 0, "{result}");
    }
    let (sent, got) = (&result["file_sent"], &result["file_received"]);
    assert_eq!(sent["size"], 100 * 1024 * 1024);
    assert_eq!(
        sent["sha256"], sent["expected"],
        "the streamed hash is WebCrypto's SHA-256 of the file"
    );
    assert_eq!(got["done"], true, "{result}");
    assert_eq!(got["received"], sent["size"], "{result}");
    assert_eq!(got["sha256"], sent["sha256"]);
    assert_eq!(got["verified"], true, "{result}");
    assert!(got["from"].as_str().unwrap().starts_with("alice#"));
    // Flow control: bob acknowledged every MiB (the last few may arrive
    // after alice finished sending), and alice
    // never ran more than the window (512 chunks, 8 MiB) ahead of him, so
    // the SFU's bounded backlog for a slow receiver never overflows.
    assert!(sent["ack_messages"].as_u64().unwrap() >= 90, "{result}");
    let ahead = sent["max_ahead"].as_u64().unwrap();
    assert!(ahead > 0 && ahead < 512, "{result}");
    let ms = result["file_ms"].as_f64().unwrap();
    println!(
        "100 MB through the SFU in {ms} ms ({:.1} Mbit/s)",
        100.0 * 8.388_608 / (ms / 1000.0)
    );
}
