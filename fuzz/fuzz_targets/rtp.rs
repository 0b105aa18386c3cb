//! RTP headers and packets, header extensions included (audio level, mid,
//! rid, TWCC, abs-send-time…), as str0m parses them for the SFU after SRTP.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = str0m::_internal_test_exports::fuzz::rtp_header(data);
    let _ = str0m::_internal_test_exports::fuzz::rtp_packet(data);
});
