//! A one-worker node's UDP socket, read by its worker.
//!
//! With several workers, a receive thread reads the port and hands each
//! datagram to the worker that owns its room. With one worker there is
//! nothing to hand over, and the hand-off cost a wake-up of each thread per
//! batch: on a one-core node, two context switches (about a tenth of the
//! SFU's CPU in the audio load test's profile). So the worker waits for the
//! socket in its own loop and routes the batch through the same
//! [`Router`]: the same unknown-source and per-source budget checks.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Instant, SystemTime};

use tokio::io::Interest;
use tracing::{debug, warn};

use super::batch_io::{BATCH, MAX_DATAGRAM, instant_of, recv_batch_stamped};
use super::receiver::Router;

/// Most datagrams read per wake-up: as many as the worker takes from its
/// queue per turn when a receive thread feeds it.
const READ_MAX: usize = 256;

pub(crate) struct SocketReader {
    /// The socket as tokio watches it, for readiness.
    watched: tokio::net::UdpSocket,
    /// A handle on the same socket for `recvmmsg`.
    socket: UdpSocket,
    router: Router,
    bufs: Vec<Vec<u8>>,
    /// The batch read last, not yet routed: (length, source) per buffer.
    received: Vec<(usize, SocketAddr)>,
    /// One `recvmmsg`'s worth.
    chunk: Vec<(usize, SocketAddr)>,
    /// When each datagram of `received` reached the socket (the kernel's
    /// stamp, or when it was read), for the transit time.
    arrivals: Vec<Instant>,
    /// The kernel's stamps for `chunk`.
    chunk_arrivals: Vec<Option<SystemTime>>,
}

impl SocketReader {
    /// Takes a non-blocking socket; must be called inside the worker's
    /// runtime, which then watches the socket.
    pub(crate) fn new(socket: UdpSocket, router: Router) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(SocketReader {
            watched: tokio::net::UdpSocket::from_std(socket.try_clone()?)?,
            socket,
            router,
            bufs: (0..READ_MAX).map(|_| vec![0; MAX_DATAGRAM]).collect(),
            received: Vec::with_capacity(READ_MAX),
            chunk: Vec::with_capacity(BATCH),
            arrivals: Vec::with_capacity(READ_MAX),
            chunk_arrivals: Vec::with_capacity(BATCH),
        })
    }

    /// Waits until the socket has data and reads what is there, up to
    /// [`READ_MAX`] datagrams. Cancel-safe: the only wait is for readiness.
    pub(crate) async fn read(&mut self) {
        loop {
            if let Err(e) = self.watched.readable().await {
                warn!("the UDP socket cannot be watched: {e}");
                return std::future::pending().await;
            }
            let (socket, bufs, chunk, stamps) = (
                &self.socket,
                &mut self.bufs,
                &mut self.chunk,
                &mut self.chunk_arrivals,
            );
            match self.watched.try_io(Interest::READABLE, || {
                recv_batch_stamped(socket, &mut bufs[..BATCH], chunk, stamps)
            }) {
                Ok(()) => {
                    self.take_chunk();
                    self.read_more();
                    return;
                }
                // Nothing there after all: tokio clears the readiness.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    // ICMP errors surface here on Linux; they concern one peer only.
                    debug!("recv error: {e}");
                    metrics::counter!("veil_sfu_socket_errors_total", "op" => "recv").increment(1);
                    return;
                }
            }
        }
    }

    /// After a full `recvmmsg`, the next ones until the socket is empty or
    /// [`READ_MAX`] is reached. (Readiness stays set; the next wait finds
    /// out whether anything is left.)
    fn read_more(&mut self) {
        while self.received.len().is_multiple_of(BATCH) && self.received.len() < READ_MAX {
            let start = self.received.len();
            match recv_batch_stamped(
                &self.socket,
                &mut self.bufs[start..start + BATCH],
                &mut self.chunk,
                &mut self.chunk_arrivals,
            ) {
                Ok(()) if !self.chunk.is_empty() => self.take_chunk(),
                _ => return,
            }
        }
    }

    /// Moves the last `recvmmsg`'s datagrams, and when each arrived, to the batch.
    fn take_chunk(&mut self) {
        let (now, wall_now) = (Instant::now(), SystemTime::now());
        self.arrivals.extend(
            self.chunk_arrivals
                .iter()
                .map(|&stamp| instant_of(stamp, now, wall_now)),
        );
        self.received.append(&mut self.chunk);
    }

    /// Routes the batch read last, handing each admitted datagram to
    /// `deliver` with when it reached the socket.
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        mut deliver: impl FnMut(&[u8], SocketAddr, Instant),
    ) {
        if self.received.is_empty() {
            return;
        }
        metrics::counter!("veil_sfu_datagrams_in_total").increment(self.received.len() as u64);
        self.router.update();
        for i in 0..self.received.len() {
            let (len, source) = self.received[i];
            let data = &self.bufs[i][..len];
            if self.router.route(data, source, now).is_some() {
                deliver(data, source, self.arrivals[i]);
            }
        }
        self.received.clear();
        self.arrivals.clear();
        self.router.flush_drops();
    }
}
