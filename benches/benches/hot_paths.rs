//! Per-packet costs of the blind forwarding path and the client's SFrame work.
//!
//! `cargo bench -p benches --bench hot_paths`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sfu::forward::layer::{LayerSelector, choose_layer};
use sfu::forward::rewrite::StreamRewriter;
use sfu::forward::speaker::{SpeakerConfig, SpeakerDetector};
use str0m::rtp::ExtensionValues;
use veil_client::keys::{self, RoomSecret};
use veil_media::extensions::DependencyDescriptorBytes;
use veil_media::packet::dependency_descriptor::{DependencyDescriptor, write_single_layer};
use veil_media::packet::sframe_header::SframeHeader;
use veil_media::packet::stun::server_ufrag;
use veil_media::packet::vp8::Vp8Descriptor;

fn parsers(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let mut keyframe = [0u8; 6];
    let n = write_single_layer(&mut keyframe, true, false, 7, true);
    let keyframe = keyframe[..n].to_vec();
    let structure = DependencyDescriptor::parse(&keyframe, None)
        .unwrap()
        .structure
        .unwrap();
    let delta = [0x40, 0x00, 0x08];
    g.bench_function("dependency_descriptor/keyframe_with_structure", |b| {
        b.iter(|| DependencyDescriptor::parse(black_box(&keyframe), None))
    });
    g.bench_function("dependency_descriptor/delta", |b| {
        b.iter(|| DependencyDescriptor::parse(black_box(&delta), Some(&structure)))
    });
    let vp8 = [0x90, 0xE0, 0x81, 0x23, 0x05, 0x80, 0x00, 0x9d];
    g.bench_function("vp8_descriptor", |b| {
        b.iter(|| Vp8Descriptor::parse(black_box(&vp8)))
    });
    let sframe = [0x99, 0x01, 0x23, 0x45, 0x67, 0, 0, 0];
    g.bench_function("sframe_header", |b| {
        b.iter(|| SframeHeader::parse(black_box(&sframe)))
    });
    let mut stun = vec![0x00, 0x01, 0x00, 0x18, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[0; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x11]);
    stun.extend_from_slice(b"abcdefgh:ijklmnop\0\0\0");
    g.bench_function("stun_server_ufrag", |b| {
        b.iter(|| server_ufrag(black_box(&stun)))
    });
    g.finish();
}

fn forwarding_decisions(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(1));
    let t0 = Instant::now();
    g.bench_function("rewrite", |b| {
        let mut r = StreamRewriter::new(90_000);
        let mut seq = 0u64;
        b.iter(|| {
            seq += 1;
            r.rewrite(black_box(seq), black_box(seq as u32 * 3000), t0)
        })
    });
    g.bench_function("layer_selector", |b| {
        let mut s = LayerSelector::new(2);
        let mut i = 0u32;
        b.iter(|| {
            i += 1;
            s.on_packet(black_box((i % 3) as u8), black_box(i.is_multiple_of(90)))
        })
    });
    let rates = [Some(150_000), Some(500_000), Some(1_500_000)];
    g.bench_function("choose_layer", |b| {
        b.iter(|| choose_layer(2, black_box(Some(900_000)), &rates))
    });
    // What `Participant::forward` copies from the packet in into every copy
    // out (and str0m keeps with each sent packet for resends): the header
    // extension values with a Dependency Descriptor in the user values.
    let mut received = ExtensionValues {
        audio_level: Some(-30),
        ..Default::default()
    };
    let dd = DependencyDescriptorBytes::new(&[0x80, 0x01, 0x02]).expect("a short descriptor");
    received.user_values.set(dd);
    g.bench_function("copy_extension_values", |b| {
        b.iter(|| {
            let src = black_box(&received);
            ExtensionValues {
                audio_level: src.audio_level,
                voice_activity: src.voice_activity,
                video_orientation: src.video_orientation,
                user_values: src.user_values.clone(),
                ..Default::default()
            }
        })
    });
    g.bench_function("speaker_observe", |b| {
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        let mut i = 0u32;
        b.iter(|| {
            i += 1;
            d.observe(
                black_box(i % 8),
                black_box((i % 100) as u8),
                t0 + Duration::from_millis(i as u64),
            )
        })
    });
    g.finish();
}

fn sframe(c: &mut Criterion) {
    let mut g = c.benchmark_group("sframe");
    // A fixed secret: PBKDF2 is not what is measured here.
    let secret = RoomSecret::from_passphrase("bench", "bench");
    let enc = keys::encryption_key(&secret, "alice", 0).unwrap();
    let dec = keys::decryption_key(&secret, "alice", 0).unwrap();
    let mut counter = MonotonicCounter::default();
    for size in [80usize, 1200, 6000] {
        let plain = vec![0x5a; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("encrypt/{size}B"), |b| {
            b.iter(|| {
                MediaFrameView::try_new(&mut counter, &plain)
                    .unwrap()
                    .encrypt(&enc)
                    .unwrap()
            })
        });
        let frame = MediaFrameView::try_new(&mut counter, &plain)
            .unwrap()
            .encrypt(&enc)
            .unwrap();
        let bytes = frame.as_ref().to_vec();
        g.bench_function(format!("decrypt/{size}B"), |b| {
            b.iter_batched(
                || bytes.clone(),
                |bytes| {
                    EncryptedFrameView::try_new(&bytes)
                        .unwrap()
                        .decrypt(&dec)
                        .unwrap()
                        .payload()
                        .len()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, parsers, forwarding_decisions, sframe);
criterion_main!(benches);
