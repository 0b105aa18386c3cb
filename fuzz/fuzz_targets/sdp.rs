//! SDP offers as they reach the server in a join, a renegotiation, a WHIP
//! publish or a WHEP view: parsed, then accepted by an `Rtc` configured as
//! the SFU configures one, which writes an answer.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use str0m::change::{SdpAnswer, SdpOffer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = SdpAnswer::from_sdp_string(text);
    let Ok(offer) = SdpOffer::from_sdp_string(text) else {
        return;
    };
    let mut rtc = veil_fuzz::sfu_rtc(Instant::now());
    if let Ok(answer) = rtc.sdp_api().accept_offer(offer) {
        // What we answer must itself be readable SDP.
        let _ = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).unwrap();
    }
});
