//! RTCP compound packets (reports, NACK, PLI/FIR, TWCC feedback, REMB), as
//! str0m parses them from subscribers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = str0m::_internal_test_exports::fuzz::rtcp(data);
});
