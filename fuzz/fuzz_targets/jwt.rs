//! Access tokens: whatever arrives in `?token=`, a first message or an
//! `Authorization: Bearer` header. Only a token signed with our secret for
//! the room asked about may pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signalling::auth::Authenticator;

const KEY: &str = "fuzzkey";
const SECRET: &str = "a-fuzzing-secret-that-is-long-enough-0123456789";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let auth = Authenticator::new([(KEY, SECRET)]).unwrap();
    if let Ok(claims) = auth.verify(token, Some("fuzz-room")) {
        // Reaching here means the fuzzer forged an HMAC, or the corpus
        // token was used as is: either way the room must be the one asked.
        assert_eq!(claims.room.as_deref(), Some("fuzz-room"));
    }
    let _ = auth.verify(token, None);
});
