//! A seeded user-space UDP impairment proxy: loss, delay, jitter and a
//! bandwidth bottleneck.
//!
//! The kernel here has no netem, and a seeded proxy is more repeatable
//! anyway. Clients send to the proxy instead of the server (see
//! [`crate::ClientConfig::via_proxy`]); the proxy relays each client through
//! its own upstream socket, dropping and delaying datagrams in both directions
//! by a random generator seeded from the config, so a run can be replayed.
//!
//! The bottleneck models a slow downlink (server → client) the way a router
//! does: a FIFO drained at a fixed bit rate, tail-dropping what would wait
//! longer than [`MAX_QUEUE_DELAY`]. Congestion control sees both the rising
//! delay and the drops, as on a real link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Longest a datagram may queue at the bottleneck before it is dropped.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_millis(200);

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
    /// Downlink (server → client) capacity in bits/s; `None` is unlimited.
    pub downlink_bps: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Up,
    Down,
}

#[derive(Debug)]
struct Bottleneck {
    rate_bps: Option<u64>,
    busy_until: Instant,
}

/// Counters of a running proxy.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Datagrams passed on.
    pub forwarded: AtomicU64,
    /// Datagrams dropped on purpose (random loss).
    pub dropped: AtomicU64,
    /// Datagrams dropped because the bottleneck queue was full.
    pub queue_dropped: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct ImpairmentProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    impairment: Impairment,
    rng: Mutex<StdRng>,
    counters: ProxyCounters,
    downlink: Mutex<Bottleneck>,
}

impl Shared {
    /// Decides the fate of one datagram: `None` drops it, else its delay.
    fn fate(&self, way: Way, len: usize) -> Option<Duration> {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if self.impairment.loss > 0.0 && rng.random::<f64>() < self.impairment.loss {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let queued = if way == Way::Down {
            self.queue(len)?
        } else {
            Duration::ZERO
        };
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        let jitter = if self.impairment.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.impairment.jitter.mul_f64(rng.random::<f64>())
        };
        Some(queued + self.impairment.delay + jitter)
    }

    /// Time the datagram waits at the bottleneck, or `None` when the queue is full.
    fn queue(&self, len: usize) -> Option<Duration> {
        let mut b = self.downlink.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rate) = b.rate_bps.filter(|r| *r > 0) else {
            return Some(Duration::ZERO);
        };
        let now = Instant::now();
        let start = b.busy_until.max(now);
        if start - now > MAX_QUEUE_DELAY {
            self.counters.queue_dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let transmit = Duration::from_nanos(len as u64 * 8 * 1_000_000_000 / rate);
        b.busy_until = start + transmit;
        Some(b.busy_until - now)
    }

    fn send(&self, way: Way, socket: &Arc<UdpSocket>, data: &[u8], to: SocketAddr) {
        let Some(delay) = self.fate(way, data.len()) else {
            return;
        };
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
        let shared = Arc::new(Shared {
            impairment,
            rng: Mutex::new(StdRng::seed_from_u64(impairment.seed)),
            counters: ProxyCounters::default(),
            downlink: Mutex::new(Bottleneck {
                rate_bps: impairment.downlink_bps,
                busy_until: Instant::now(),
            }),
        });
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            let shared = task_shared;
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
                            shared_rx.send(Way::Down, &listen_tx, &buf[..n], client);
                        }
                    });
                    slot.insert((up, back));
                }
                if let Some((up, _)) = upstreams.get(&client) {
                    shared.send(Way::Up, up, &buf[..n], target);
                }
            }
        });
        Ok(ImpairmentProxy { addr, shared, task })
    }

    /// Where clients should send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams forwarded and dropped (random loss) so far.
    pub fn counts(&self) -> (u64, u64) {
        let c = &self.shared.counters;
        (
            c.forwarded.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
        )
    }

    /// Datagrams dropped by the full bottleneck queue so far.
    pub fn queue_drops(&self) -> u64 {
        self.shared.counters.queue_dropped.load(Ordering::Relaxed)
    }

    /// Changes the downlink capacity while traffic flows (`None`: unlimited).
    pub fn set_downlink_bps(&self, rate: Option<u64>) {
        self.shared
            .downlink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate_bps = rate;
    }
}

impl Drop for ImpairmentProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
