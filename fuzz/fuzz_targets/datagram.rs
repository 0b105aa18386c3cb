//! Whole datagrams into an `Rtc` configured as the SFU configures one
//! (ICE-lite, the extension map, our codecs): the demultiplexer, STUN, DTLS
//! records and (S)RTP/RTCP framing, with timers run in between.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Output};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut rtc = veil_fuzz::sfu_rtc(start);
    let local: SocketAddr = (Ipv4Addr::new(127, 0, 0, 1), 7882).into();
    let remote: SocketAddr = (Ipv4Addr::new(127, 0, 0, 2), 40000).into();
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut now = start;
    // Records of [milliseconds to wait: u8][length: u16 BE][datagram], so
    // one input is a whole exchange (STUN, then DTLS, then SRTP…).
    let mut rest = data;
    while let [step, hi, lo, tail @ ..] = rest {
        let len = (u16::from_be_bytes([*hi, *lo]) as usize).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(*step as u64);
        let Ok(contents) = datagram.try_into() else {
            continue;
        };
        let _ = rtc.handle_input(Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: remote,
                destination: local,
                contents,
            },
        ));
        let _ = rtc.handle_input(Input::Timeout(now));
        for _ in 0..64 {
            match rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});
