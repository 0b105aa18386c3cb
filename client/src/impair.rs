//! A seeded user-space UDP impairment proxy: loss, delay and jitter.
//!
//! The kernel here has no netem, and a seeded proxy is more repeatable
//! anyway. Clients send to the proxy instead of the server (see
//! [`crate::ClientConfig::via_proxy`]); the proxy relays each client through
//! its own upstream socket, dropping and delaying datagrams in both directions
//! by a random generator seeded from the config, so a run can be replayed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// Probability (0..1) that a datagram is dropped, each direction.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra uniform random delay in `0..jitter` (reorders packets).
    pub jitter: Duration,
    /// Random seed.
    pub seed: u64,
}

/// Counters of a running proxy.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Datagrams passed on.
    pub forwarded: AtomicU64,
    /// Datagrams dropped on purpose.
    pub dropped: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct ImpairmentProxy {
    addr: SocketAddr,
    counters: Arc<ProxyCounters>,
    task: JoinHandle<()>,
}

struct Shared {
    impairment: Impairment,
    rng: Mutex<StdRng>,
    counters: Arc<ProxyCounters>,
}

impl Shared {
    /// Decides the fate of one datagram: `None` drops it, else its delay.
    fn fate(&self) -> Option<Duration> {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if self.impairment.loss > 0.0 && rng.random::<f64>() < self.impairment.loss {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        let jitter = if self.impairment.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.impairment.jitter.mul_f64(rng.random::<f64>())
        };
        Some(self.impairment.delay + jitter)
    }

    fn send(&self, socket: &Arc<UdpSocket>, data: &[u8], to: SocketAddr) {
        let Some(delay) = self.fate() else { return };
        if delay.is_zero() {
            let _ = socket.try_send_to(data, to);
            return;
        }
        let (socket, data) = (socket.clone(), data.to_vec());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&data, to).await;
        });
    }
}

impl ImpairmentProxy {
    /// Starts relaying between clients and `target`, listening on loopback.
    pub async fn start(target: SocketAddr, impairment: Impairment) -> std::io::Result<Self> {
        let listen = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = listen.local_addr()?;
        let counters = Arc::new(ProxyCounters::default());
        let shared = Arc::new(Shared {
            impairment,
            rng: Mutex::new(StdRng::seed_from_u64(impairment.seed)),
            counters: counters.clone(),
        });
        let task = tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, (Arc<UdpSocket>, JoinHandle<()>)> =
                HashMap::new();
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, client)) = listen.recv_from(&mut buf).await else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = upstreams.entry(client) {
                    let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else {
                        continue;
                    };
                    let up = Arc::new(up);
                    let (up_rx, listen_tx, shared_rx) =
                        (up.clone(), listen.clone(), shared.clone());
                    let back = tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        while let Ok((n, _)) = up_rx.recv_from(&mut buf).await {
                            shared_rx.send(&listen_tx, &buf[..n], client);
                        }
                    });
                    slot.insert((up, back));
                }
                if let Some((up, _)) = upstreams.get(&client) {
                    shared.send(up, &buf[..n], target);
                }
            }
        });
        Ok(ImpairmentProxy {
            addr,
            counters,
            task,
        })
    }

    /// Where clients should send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams forwarded and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counters.forwarded.load(Ordering::Relaxed),
            self.counters.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for ImpairmentProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
