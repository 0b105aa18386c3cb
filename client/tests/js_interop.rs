//! The browser's SFrame and key derivation (`web/src/crypto`, run under
//! Node.js) and this crate's interoperate both ways: frames the Rust client
//! encrypts open in JS, frames JS encrypts open in Rust, with the keys both
//! derive from the same passphrase.

use std::path::PathBuf;

use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use veil_client::RoomSecret;
use veil_client::keys::{decryption_key, encryption_key};

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

#[test]
fn rust_and_javascript_open_each_others_frames() {
    let (room, passphrase, epoch) = ("interop room ✓", "a shared passphrase", 2u64);
    let secret = RoomSecret::from_passphrase(room, passphrase);

    // Rust encrypts three frames as "rust-sender" (counters 0, 1, 2).
    let key = encryption_key(&secret, "rust-sender", epoch).unwrap();
    let mut counter = MonotonicCounter::default();
    let plaintexts: Vec<Vec<u8>> =
        vec![b"".to_vec(), b"hello from rust".to_vec(), vec![0xab; 1500]];
    let frames: Vec<String> = plaintexts
        .iter()
        .map(|p| {
            let frame = MediaFrameView::try_new(&mut counter, p).unwrap();
            hex::encode(frame.encrypt(&key).unwrap().as_ref())
        })
        .collect();
    // One tampered frame must not open.
    let mut tampered = hex::decode(&frames[1]).unwrap();
    *tampered.last_mut().unwrap() ^= 1;

    let input = serde_json::json!({
        "room": room,
        "passphrase": passphrase,
        "epoch": epoch,
        "decrypt": { "sender": "rust-sender", "frames": [&frames[0], &frames[1], &frames[2], hex::encode(&tampered)] },
        "encrypt": { "sender": "js-sender", "frames": [
            { "ctr": 0, "pt": hex::encode(b"hello from js") },
            { "ctr": 1u64 << 40, "pt": hex::encode([7u8; 900]) },
        ] },
    });
    let output = std::process::Command::new("node")
        .arg("tests/interop.mjs")
        .arg(input.to_string())
        .current_dir(web_dir())
        .output()
        .expect("node runs (bash .ci/run needs Node.js >= 20)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    // JS opened Rust's frames, and refused the tampered one.
    let decrypted = out["decrypted"].as_array().unwrap();
    for (i, p) in plaintexts.iter().enumerate() {
        assert_eq!(decrypted[i].as_str().unwrap(), hex::encode(p), "frame {i}");
    }
    assert!(
        decrypted[3].is_null(),
        "the tampered frame does not open in JS"
    );
    assert_eq!(out["fingerprint"].as_str().unwrap(), secret.fingerprint());

    // Rust opens JS's frames.
    let theirs = decryption_key(&secret, "js-sender", epoch).unwrap();
    let expected: [Vec<u8>; 2] = [b"hello from js".to_vec(), vec![7u8; 900]];
    for (i, hex_frame) in out["encrypted"].as_array().unwrap().iter().enumerate() {
        let bytes = hex::decode(hex_frame.as_str().unwrap()).unwrap();
        let view = EncryptedFrameView::try_new(&bytes).unwrap();
        let plain = view.decrypt(&theirs).unwrap();
        assert_eq!(plain.payload(), expected[i].as_slice(), "JS frame {i}");
    }
    // And a key for another sender does not open them.
    let wrong = decryption_key(&secret, "rust-sender", epoch).unwrap();
    let first = hex::decode(out["encrypted"][0].as_str().unwrap()).unwrap();
    assert!(
        EncryptedFrameView::try_new(&first)
            .unwrap()
            .decrypt(&wrong)
            .is_err()
    );
}
