//! The node's receive side: reads the one UDP port in batches and hands
//! each datagram to the worker that owns the sender's room.
//!
//! With several workers this is a thread of its own ([`run`]). A node with
//! one worker has nothing to hand over: the worker reads the socket itself
//! through the same [`Router`], which saves a thread hand-off and a second
//! wake-up per batch.
//!
//! All participants share one port, but rooms are pinned to workers (one per
//! core). The receiver keeps the only map from remote address to worker; it
//! learns a new address from the server ufrag in the first STUN request,
//! which the owning worker registered when the participant joined
//! ([`Route::Add`]). Buffers travel to the worker and come back to be reused,
//! so steady-state forwarding allocates nothing here.
//!
//! The receiver is also the first line against floods. Datagrams from
//! unknown addresses cost a hash lookup and a STUN peek before they are
//! dropped. A known address (a joined participant, who may be hostile) gets
//! a packet budget ([`SourceLimit`]): past it, its datagrams are dropped here
//! instead of filling the worker queue that its room shares with everyone
//! else. Drops are counted per batch, so a flood does not also pay a metrics
//! lookup per datagram.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, info};
use veil_media::packet::stun;

use super::batch_io::{BATCH, MAX_DATAGRAM, instant_of, recv_batch_stamped};

/// Remote addresses remembered per ufrag (ICE may try several).
const MAX_ADDRS_PER_UFRAG: usize = 8;

/// One received datagram on its way to a worker.
pub(crate) struct Datagram {
    pub source: SocketAddr,
    pub data: Vec<u8>,
    /// For ICE-TCP frames: where to send the replies.
    pub tcp: Option<mpsc::Sender<Vec<u8>>>,
    /// When it reached the socket (the kernel's stamp, or when it was read),
    /// for the transit-time histogram.
    pub received_at: Instant,
}

/// Routing changes sent by workers.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// A participant with this server ufrag lives on `worker`.
    Add { ufrag: String, worker: usize },
    /// The participant left: forget its ufrag and addresses.
    Remove { ufrag: String },
}

/// Packets per second one remote address may send, and the burst it may
/// save up. Honest peaks sit far below: a 3-layer HD publisher sends about
/// 300 packets/s, a keyframe burst is a few hundred packets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceLimit {
    pub packets_per_s: f64,
    pub burst: f64,
}

/// A known remote address: its worker and its packet budget.
struct Source {
    worker: usize,
    tokens: f64,
    refilled: Instant,
}

impl Source {
    fn new(worker: usize, limit: SourceLimit) -> Self {
        Source {
            worker,
            tokens: limit.burst,
            refilled: Instant::now(),
        }
    }

    /// Spends one packet of the budget, refilled up to `now`.
    fn admit(&mut self, now: Instant, limit: SourceLimit) -> bool {
        if self.tokens < 1.0 {
            let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * limit.packets_per_s).min(limit.burst);
            self.refilled = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Routes {
    by_addr: HashMap<SocketAddr, Source>,
    by_ufrag: HashMap<String, (usize, Vec<SocketAddr>)>,
    limit: SourceLimit,
}

impl Routes {
    fn apply(&mut self, route: Route) {
        match route {
            Route::Add { ufrag, worker } => {
                self.by_ufrag.insert(ufrag, (worker, Vec::new()));
            }
            Route::Remove { ufrag } => {
                if let Some((_, addrs)) = self.by_ufrag.remove(&ufrag) {
                    for addr in addrs {
                        self.by_addr.remove(&addr);
                    }
                }
            }
        }
    }

    fn learn(&mut self, data: &[u8], source: SocketAddr) -> Option<usize> {
        let ufrag = stun::server_ufrag(data)?;
        let (worker, addrs) = self.by_ufrag.get_mut(ufrag)?;
        let worker = *worker;
        addrs.push(source);
        if addrs.len() > MAX_ADDRS_PER_UFRAG {
            let old = addrs.remove(0);
            self.by_addr.remove(&old);
        }
        self.by_addr.insert(source, Source::new(worker, self.limit));
        Some(worker)
    }
}

/// Where workers announce routing changes: the UDP receiver and, when
/// enabled, the ICE-TCP acceptor.
#[derive(Clone)]
pub(crate) struct RouteBus {
    pub udp: std_mpsc::Sender<Route>,
    pub tcp: Option<mpsc::UnboundedSender<Route>>,
}

impl RouteBus {
    pub fn send(&self, route: Route) {
        if let Some(tcp) = &self.tcp {
            let _ = tcp.send(route.clone());
        }
        let _ = self.udp.send(route);
    }
}

/// Drops counted in one batch, added to the metrics once per batch.
#[derive(Default)]
struct Drops {
    unknown_source: u64,
    over_budget: u64,
    queue_full: u64,
}

impl Drops {
    fn flush(&mut self) {
        for (reason, n) in [
            ("unknown_source", self.unknown_source),
            ("source_over_budget", self.over_budget),
            ("worker_queue_full", self.queue_full),
        ] {
            if n > 0 {
                metrics::counter!("veil_sfu_dropped_total", "reason" => reason).increment(n);
            }
        }
        *self = Drops::default();
    }
}

/// Which worker a datagram goes to, if any: the address table, the ufrag
/// routes the workers announce, and each source's packet budget.
pub(crate) struct Router {
    table: Routes,
    routes: std_mpsc::Receiver<Route>,
    drops: Drops,
}

impl Router {
    pub(crate) fn new(routes: std_mpsc::Receiver<Route>, limit: SourceLimit) -> Self {
        Router {
            table: Routes {
                by_addr: HashMap::new(),
                by_ufrag: HashMap::new(),
                limit,
            },
            routes,
            drops: Drops::default(),
        }
    }

    /// Applies the routing changes the workers announced.
    pub(crate) fn update(&mut self) {
        while let Ok(route) = self.routes.try_recv() {
            self.table.apply(route);
        }
    }

    /// The worker for a datagram from `source`; `None` drops it (counted:
    /// an unknown source, or a known one over its budget).
    pub(crate) fn route(&mut self, data: &[u8], source: SocketAddr, now: Instant) -> Option<usize> {
        let limit = self.table.limit;
        let worker = match self.table.by_addr.get_mut(&source) {
            Some(known) => {
                if !known.admit(now, limit) {
                    self.drops.over_budget += 1;
                    return None;
                }
                Some(known.worker)
            }
            None => {
                // A join may have registered its ufrag a moment ago.
                self.update();
                self.table.learn(data, source)
            }
        };
        if worker.is_none() {
            self.drops.unknown_source += 1;
        }
        worker
    }

    /// Adds the batch's drops to the metrics.
    pub(crate) fn flush_drops(&mut self) {
        self.drops.flush();
    }
}

pub(crate) fn run(
    socket: UdpSocket,
    workers: Vec<mpsc::Sender<Datagram>>,
    mut router: Router,
    recycled: std_mpsc::Receiver<Vec<u8>>,
) {
    let mut bufs: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| Vec::with_capacity(MAX_DATAGRAM))
        .collect();
    let mut received = Vec::with_capacity(BATCH);
    let mut arrivals = Vec::with_capacity(BATCH);
    loop {
        if workers.iter().all(|w| w.is_closed()) {
            info!("all workers stopped; receiver stops");
            return;
        }
        router.update();
        match recv_batch_stamped(&socket, &mut bufs, &mut received, &mut arrivals) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors surface here on Linux; they concern one peer only.
                debug!("recv error: {e}");
                metrics::counter!("veil_sfu_socket_errors_total", "op" => "recv").increment(1);
                continue;
            }
        }
        metrics::counter!("veil_sfu_datagrams_in_total").increment(received.len() as u64);
        let (now, wall_now) = (Instant::now(), std::time::SystemTime::now());
        for (i, &(len, source)) in received.iter().enumerate() {
            let Some(worker) = router.route(&bufs[i][..len], source, now) else {
                continue;
            };
            let mut buf = std::mem::replace(
                &mut bufs[i],
                recycled
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(MAX_DATAGRAM)),
            );
            buf.truncate(len);
            if workers[worker]
                .try_send(Datagram {
                    source,
                    data: buf,
                    tcp: None,
                    received_at: instant_of(arrivals[i], now, wall_now),
                })
                .is_err()
            {
                router.drops.queue_full += 1;
            }
        }
        router.flush_drops();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_source_spends_its_burst_then_gets_its_rate() {
        let limit = SourceLimit {
            packets_per_s: 1000.0,
            burst: 10.0,
        };
        let mut source = Source::new(0, limit);
        let t0 = source.refilled;
        let admitted = (0..50).filter(|_| source.admit(t0, limit)).count();
        assert_eq!(admitted, 10, "the burst, then nothing at the same instant");
        // 5 ms later at 1000/s: five more.
        let t1 = t0 + Duration::from_millis(5);
        let admitted = (0..50).filter(|_| source.admit(t1, limit)).count();
        assert_eq!(admitted, 5);
        // A long silence refills the burst, never more.
        let t2 = t1 + Duration::from_secs(60);
        let admitted = (0..50).filter(|_| source.admit(t2, limit)).count();
        assert_eq!(admitted, 10);
    }
}
