//! STUN: str0m's parser, and the SFU's own first look at a datagram from an
//! unknown address (which ufrag, so which participant, it claims).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = str0m::_internal_test_exports::fuzz::stun(data);
    if let Some(ufrag) = veil_media::packet::stun::server_ufrag(data) {
        // The ufrag is a view into the datagram, never past it.
        assert!(ufrag.len() < data.len());
    }
});
