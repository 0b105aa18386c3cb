//! SFrame: the header the SFU reads for metrics (KID, CTR), and a full
//! decryption attempt as every receiver makes one, which must fail cleanly
//! on anything not made with the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sframe::CipherSuite;
use sframe::frame::EncryptedFrameView;
use sframe::key::DecryptionKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = veil_media::packet::sframe_header::SframeHeader::parse(data) {
        assert!(header.len <= data.len(), "header longer than the frame");
    }
    if let Ok(frame) = EncryptedFrameView::try_new(data) {
        let key = DecryptionKey::derive_from(
            CipherSuite::AesGcm128Sha256,
            frame.header().key_id(),
            b"a base key the fuzzer cannot know",
        )
        .unwrap();
        assert!(
            frame.decrypt(&key).is_err(),
            "a forged frame decrypted under a key it was not made with"
        );
    }
});
