//! str0m's share of the forwarding path, in memory: a packet coming in
//! (SRTP decrypt, RTP parse, the `RtpPacket` event) and a copy going out
//! (`write_rtp`, then `poll_output` until the SRTP-encrypted datagram
//! appears). Two `Rtc`s are connected without sockets (ICE, DTLS and SRTP
//! keys for real, datagrams handed over in memory), so these are the costs
//! the SFU pays per packet before any system call.
//!
//! The egress cases compare polling after every copy with polling once per
//! batch. (With the egress bandwidth estimate on, str0m's pacer releases
//! packets on its timers, which needs the receiver's TWCC feedback and real
//! time; `sfu-throughput --no-bwe` measures that difference on the real
//! SFU instead.) `cargo bench -p benches --bench srtp_path`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use str0m::media::{MediaKind, Mid, Pt};
use str0m::net::Receive;
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc};

const PAYLOAD: usize = 1200;
const SSRC: u32 = 0x5EED;

/// One `Rtc` with its next deadline and what it transmitted.
struct Peer {
    rtc: Rtc,
    deadline: Instant,
}

/// A sender and a receiver connected in memory, with one video stream
/// declared from the first to the second. `now` advances in virtual time.
struct Link {
    tx: Peer,
    rx: Peer,
    now: Instant,
    pt: Pt,
    seq: u64,
}

fn rtc(now: Instant) -> Rtc {
    Rtc::builder()
        .set_rtp_mode(true)
        .set_send_buffer_video(192)
        .build(now)
}

impl Link {
    fn new() -> Link {
        let now = Instant::now();
        let mut tx = Peer {
            rtc: rtc(now),
            deadline: now,
        };
        let mut rx = Peer {
            rtc: rtc(now),
            deadline: now,
        };
        let a = Candidate::host((Ipv4Addr::new(10, 0, 0, 1), 1000).into(), "udp").unwrap();
        let b = Candidate::host((Ipv4Addr::new(10, 0, 0, 2), 2000).into(), "udp").unwrap();
        tx.rtc.add_local_candidate(a.clone());
        tx.rtc.add_remote_candidate(b.clone());
        rx.rtc.add_local_candidate(b);
        rx.rtc.add_remote_candidate(a);
        let (ft, fr) = (
            tx.rtc.direct_api().local_dtls_fingerprint().clone(),
            rx.rtc.direct_api().local_dtls_fingerprint().clone(),
        );
        tx.rtc.direct_api().set_remote_fingerprint(fr);
        rx.rtc.direct_api().set_remote_fingerprint(ft);
        let (ct, cr) = (
            tx.rtc.direct_api().local_ice_credentials(),
            rx.rtc.direct_api().local_ice_credentials(),
        );
        tx.rtc.direct_api().set_remote_ice_credentials(cr);
        rx.rtc.direct_api().set_remote_ice_credentials(ct);
        tx.rtc.direct_api().set_ice_controlling(true);
        rx.rtc.direct_api().set_ice_controlling(false);
        tx.rtc.direct_api().start_dtls(true).unwrap();
        rx.rtc.direct_api().start_dtls(false).unwrap();

        let mid = Mid::from("v0");
        tx.rtc.direct_api().declare_media(mid, MediaKind::Video);
        tx.rtc
            .direct_api()
            .declare_stream_tx(Ssrc::from(SSRC), None, mid, None);
        rx.rtc.direct_api().declare_media(mid, MediaKind::Video);
        rx.rtc
            .direct_api()
            .expect_stream_rx(Ssrc::from(SSRC), None, mid, None);
        let pt = tx
            .rtc
            .codec_config()
            .find(|c| c.spec().codec == str0m::format::Codec::Vp8)
            .expect("VP8 is configured by default")
            .pt();
        let mut link = Link {
            tx,
            rx,
            now,
            pt,
            seq: 1,
        };
        let give_up = now + Duration::from_secs(30);
        while !(link.tx.rtc.is_connected() && link.rx.rtc.is_connected()) {
            assert!(link.now < give_up, "the in-memory handshake stalls");
            link.step();
        }
        link
    }

    /// Advances to the earlier deadline and moves what either side sends.
    fn step(&mut self) {
        self.now = self.tx.deadline.min(self.rx.deadline).max(self.now);
        let now = self.now;
        for forward in [true, false] {
            let (from, to) = if forward {
                (&mut self.tx, &mut self.rx)
            } else {
                (&mut self.rx, &mut self.tx)
            };
            if from.deadline <= now {
                from.rtc.handle_input(Input::Timeout(now)).unwrap();
            }
            loop {
                match from.rtc.poll_output().unwrap() {
                    Output::Timeout(t) => {
                        from.deadline = t.max(now + Duration::from_micros(100));
                        break;
                    }
                    Output::Transmit(t) => {
                        let contents = (&*t.contents).try_into().unwrap();
                        let _ = to.rtc.handle_input(Input::Receive(
                            now,
                            Receive {
                                proto: t.proto,
                                source: t.source,
                                destination: t.destination,
                                contents,
                            },
                        ));
                    }
                    Output::Event(_) => {}
                }
            }
        }
    }

    /// Writes the next packet into the sender's stream (no polling).
    fn write(&mut self) {
        self.seq += 1;
        let write = RtpWrite::new(
            self.pt,
            SeqNo::from(self.seq),
            (self.seq * 3000) as u32,
            self.now,
            vec![0xA5; PAYLOAD],
        )
        .nackable(true);
        self.tx
            .rtc
            .direct_api()
            .stream_tx(&Ssrc::from(SSRC))
            .expect("declared stream")
            .write_rtp(write);
    }

    /// Polls the sender until it waits, returning the datagrams it made.
    fn poll_tx(&mut self, out: &mut Vec<Vec<u8>>) {
        loop {
            match self.tx.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.tx.deadline = t;
                    return;
                }
                Output::Transmit(t) => out.push(t.contents.into()),
                Output::Event(_) => {}
            }
        }
    }

    /// Feeds one datagram to the receiver and polls it; true when it
    /// yielded the RTP packet.
    fn receive(&mut self, datagram: &[u8]) -> bool {
        let contents = datagram.try_into().unwrap();
        self.rx
            .rtc
            .handle_input(Input::Receive(
                self.now,
                Receive {
                    proto: str0m::net::Protocol::Udp,
                    source: (Ipv4Addr::new(10, 0, 0, 1), 1000).into(),
                    destination: (Ipv4Addr::new(10, 0, 0, 2), 2000).into(),
                    contents,
                },
            ))
            .unwrap();
        let mut got = false;
        loop {
            match self.rx.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return got,
                Output::Event(Event::RtpPacket(_)) => got = true,
                _ => {}
            }
        }
    }

    /// Polls the sender and runs its timers that are due by now.
    fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        for _ in 0..100 {
            self.poll_tx(out);
            if self.tx.deadline > self.now {
                return;
            }
            self.tx.rtc.handle_input(Input::Timeout(self.now)).unwrap();
        }
    }
}

fn egress(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp_egress_1200B");
    g.throughput(Throughput::Elements(1));
    for (name, batch) in [("poll_per_packet", 1), ("poll_per_10", 10)] {
        let mut link = Link::new();
        let mut out = Vec::new();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                let mut left = iters;
                let mut sent = 0;
                while left > 0 {
                    let n = left.min(batch);
                    for _ in 0..n {
                        link.write();
                    }
                    link.drain(&mut out);
                    // A millisecond of virtual time per batch: 10 packets
                    // per ms is 100 Mbit/s, well under the pacer's rate.
                    link.now += Duration::from_millis(1);
                    left -= n;
                    sent += out.len() as u64;
                    out.clear();
                }
                let took = started.elapsed();
                // Every packet written went out (plus the odd RTCP report).
                assert!(sent >= iters, "{sent} datagrams for {iters} packets");
                took
            })
        });
    }
    // The same per packet, but round robin over many sessions, as an SFU's
    // worker sends: each session's state is cold in the cache by its turn
    // (2,000 sessions hold far more than the 32 MiB L3 of the machines in
    // BENCHMARKS.md), which is what per-session costs look like at scale.
    let sessions = cold_sessions();
    let mut links: Vec<Link> = (0..sessions).map(|_| Link::new()).collect();
    let mut out = Vec::new();
    let mut next = 0;
    g.bench_function(format!("poll_per_packet_{sessions}_sessions"), |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            let mut sent = 0;
            for _ in 0..iters {
                let count = links.len();
                let link = &mut links[next];
                next = (next + 1) % count;
                link.write();
                link.drain(&mut out);
                link.now += Duration::from_millis(1);
                sent += out.len() as u64;
                out.clear();
            }
            let took = started.elapsed();
            assert!(sent >= iters, "{sent} datagrams for {iters} packets");
            took
        })
    });
    g.finish();
}

/// Sessions in the cold egress benchmark: `VEIL_BENCH_SESSIONS`, else
/// 2,000 under `cargo bench` and 20 in `cargo test`'s one quick pass (CI),
/// which only checks that it runs.
fn cold_sessions() -> usize {
    let measuring = std::env::args().any(|a| a == "--bench");
    std::env::var("VEIL_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 2000 } else { 20 })
}

fn ingress(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp_ingress_1200B");
    g.throughput(Throughput::Elements(1));
    let mut link = Link::new();
    g.bench_function("decrypt_parse_event", |b| {
        b.iter_custom(|iters| {
            // Fresh datagrams (SRTP rejects replays), made outside the clock.
            let mut datagrams = Vec::with_capacity(iters as usize);
            for _ in 0..iters {
                link.write();
                link.drain(&mut datagrams);
                link.now += Duration::from_micros(100);
            }
            let started = Instant::now();
            let mut got = 0;
            for d in &datagrams {
                got += link.receive(d) as u64;
            }
            let took = started.elapsed();
            assert!(got * 10 >= iters * 9, "{got} of {iters} packets arrived");
            took
        })
    });
    g.finish();
}

criterion_group!(benches, egress, ingress);
criterion_main!(benches);
