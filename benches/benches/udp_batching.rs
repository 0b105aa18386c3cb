//! Does batching pay for its `unsafe`? `sendmmsg`/`recvmmsg`, with and
//! without UDP GSO, against one syscall per datagram: 32 datagrams of 1200
//! bytes to one destination over loopback (one subscriber's video burst).
//!
//! `cargo bench -p benches --bench udp_batching`

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sfu::node::batch_io::{BATCH, recv_batch, send_batch_with};

fn sockets() -> (UdpSocket, UdpSocket, SocketAddr) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = rx.local_addr().unwrap();
    (tx, rx, dest)
}

fn udp(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp_32x1200B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (tx, rx, dest) = sockets();
    let datagrams: Vec<(SocketAddr, Vec<u8>)> =
        (0..BATCH).map(|_| (dest, vec![7u8; 1200])).collect();
    let mut bufs = vec![Vec::new(); BATCH];
    let mut out = Vec::new();
    let mut one = vec![0u8; 2048];

    g.bench_function("send_to+recv_from (one syscall each)", |b| {
        b.iter(|| {
            for (d, data) in &datagrams {
                tx.send_to(data, d).unwrap();
            }
            for _ in 0..BATCH {
                rx.recv_from(&mut one).unwrap();
            }
        })
    });
    for (name, gso) in [
        ("sendmmsg+recvmmsg", false),
        ("sendmmsg with GSO+recvmmsg", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                assert_eq!(send_batch_with(&tx, &datagrams, gso), BATCH);
                let mut got = 0;
                while got < BATCH {
                    recv_batch(&rx, &mut bufs, &mut out).unwrap();
                    got += out.len();
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, udp);
criterion_main!(benches);
