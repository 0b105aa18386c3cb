//! The node's receive thread: reads the one UDP port in batches and hands
//! each datagram to the worker that owns the sender's room.
//!
//! All participants share one port, but rooms are pinned to workers (one per
//! core). The receiver keeps the only map from remote address to worker; it
//! learns a new address from the server ufrag in the first STUN request,
//! which the owning worker registered when the participant joined
//! ([`Route::Add`]). Buffers travel to the worker and come back to be reused,
//! so steady-state forwarding allocates nothing here.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;
use tracing::{debug, info};
use veil_media::packet::stun;

use super::batch_io::{BATCH, MAX_DATAGRAM, recv_batch};

/// Remote addresses remembered per ufrag (ICE may try several).
const MAX_ADDRS_PER_UFRAG: usize = 8;

/// One received datagram on its way to a worker.
pub(crate) struct Datagram {
    pub source: SocketAddr,
    pub data: Vec<u8>,
    /// For ICE-TCP frames: where to send the replies.
    pub tcp: Option<mpsc::Sender<Vec<u8>>>,
}

/// Routing changes sent by workers.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// A participant with this server ufrag lives on `worker`.
    Add { ufrag: String, worker: usize },
    /// The participant left: forget its ufrag and addresses.
    Remove { ufrag: String },
}

struct Routes {
    by_addr: HashMap<SocketAddr, usize>,
    by_ufrag: HashMap<String, (usize, Vec<SocketAddr>)>,
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
        self.by_addr.insert(source, worker);
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

pub(crate) fn run(
    socket: UdpSocket,
    workers: Vec<mpsc::Sender<Datagram>>,
    routes: std_mpsc::Receiver<Route>,
    recycled: std_mpsc::Receiver<Vec<u8>>,
) {
    let mut table = Routes {
        by_addr: HashMap::new(),
        by_ufrag: HashMap::new(),
    };
    let mut bufs: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| Vec::with_capacity(MAX_DATAGRAM))
        .collect();
    let mut received = Vec::with_capacity(BATCH);
    loop {
        if workers.iter().all(|w| w.is_closed()) {
            info!("all workers stopped; receiver stops");
            return;
        }
        while let Ok(route) = routes.try_recv() {
            table.apply(route);
        }
        match recv_batch(&socket, &mut bufs, &mut received) {
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
        for (i, &(len, source)) in received.iter().enumerate() {
            let data = &bufs[i][..len];
            let worker = match table.by_addr.get(&source) {
                Some(w) => Some(*w),
                None => {
                    // A join may have registered its ufrag a moment ago.
                    while let Ok(route) = routes.try_recv() {
                        table.apply(route);
                    }
                    table.learn(data, source)
                }
            };
            let Some(worker) = worker else {
                metrics::counter!("veil_sfu_dropped_total", "reason" => "unknown_source")
                    .increment(1);
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
                })
                .is_err()
            {
                metrics::counter!("veil_sfu_dropped_total", "reason" => "worker_queue_full")
                    .increment(1);
            }
        }
    }
}
