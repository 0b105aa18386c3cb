//! What a join costs before any packet flows: building the server's `Rtc`
//! (str0m's DTLS state, with its certificate) and answering the client's
//! offer, as `Worker::join` does; and the client building its own `Rtc` and
//! offer, as every load-test participant does. A join storm (a meeting's
//! start, a node draining its participants to another) is bounded by these.
//!
//! `cargo bench -p benches --bench session_setup`

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use str0m::Candidate;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind};
use veil_media::extensions::base_rtc_config;

fn host(port: u16) -> Candidate {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Candidate::host(addr, "udp").expect("a loopback host candidate")
}

/// The client's side: an `Rtc` and an offer of one audio track and the data
/// channel, like a load-test participant or the Rust client publishing audio.
fn client_offer() -> SdpOffer {
    let mut rtc = base_rtc_config().build(Instant::now());
    rtc.add_local_candidate(host(40_000));
    let mut change = rtc.sdp_api();
    change.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("bench".into()),
        Some("audio".into()),
        None,
    );
    change.add_channel("veil".into());
    let (offer, _pending) = change.apply().expect("an offer");
    offer
}

fn setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_setup");
    g.bench_function("client_rtc_and_offer", |b| {
        b.iter(|| black_box(client_offer()))
    });
    let offer = client_offer().to_sdp_string();
    g.bench_function("server_rtc_and_answer", |b| {
        b.iter_batched(
            || SdpOffer::from_sdp_string(&offer).expect("the offer parses"),
            |offer| {
                let mut rtc = base_rtc_config().set_ice_lite(true).build(Instant::now());
                rtc.add_local_candidate(host(50_000));
                black_box(rtc.sdp_api().accept_offer(offer).expect("an answer"))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, setup);
criterion_main!(benches);
