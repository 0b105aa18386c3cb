//! Client messages on the signalling WebSocket: JSON with embedded SDP,
//! relayed opaque payloads, layer requests. Anything the server accepts must
//! serialize again (it is logged and relayed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signalling::protocol::ClientMessage;

fuzz_target!(|data: &[u8]| {
    if data.len() > signalling::protocol::MAX_MESSAGE_BYTES {
        return;
    }
    if let Ok(message) = serde_json::from_slice::<ClientMessage>(data) {
        serde_json::to_string(&message).expect("an accepted message serializes");
    }
});
