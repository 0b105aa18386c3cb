//! One UDP socket for many loopback sessions, told apart by address.
//!
//! A pool thread that gives every session a socket of its own pays, for
//! every datagram, an `epoll` report and a `recvmsg` of its own: a load-test
//! participant listening to one audio track gets one datagram per wake. On
//! loopback every address in 127.0.0.0/8 is local, so the sessions of one
//! thread can share a single socket instead, each with an address of its own
//! ([`SharedLease`]): `127.64.x.y` on the socket's port. The SFU still sees one
//! 5-tuple per participant, exactly as before. The thread reads the socket
//! with `recvmmsg`, up to [`BATCH`] datagrams per call, and routes each by
//! the destination address the kernel reports (`IP_PKTINFO`); a session
//! sends with its own address as the source (`IP_PKTINFO` again).
//!
//! The socket is bound to `0.0.0.0` (no single address covers
//! 127.0.0.0/8) and, where the process may, to the loopback device
//! (`SO_BINDTODEVICE`); datagrams for an address no session holds are
//! dropped either way.
//!
//! Only a [`SessionPool`](crate::SessionPool) made with
//! [`SessionPool::with_shared_sockets`](crate::SessionPool::with_shared_sockets)
//! hands out leases, and only to sessions that bind `127.0.0.1:0`.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, SockaddrLike,
    SockaddrStorage, recvmmsg, sendmsg, setsockopt, sockopt,
};
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
use tracing::debug;

/// Datagrams read per `recvmmsg`.
pub(crate) const BATCH: usize = 64;
/// Room per datagram; larger ones are cut (media packets stay under 1,300).
const SLOT: usize = 2048;
/// Socket buffers: one socket carries every session of a thread, so it
/// needs the room their sockets had together. Root may exceed the kernel's
/// `rmem_max`; anyone else gets what that allows.
const BUFFER_BYTES: usize = 8 << 20;
/// The leased addresses: 127.64.0.0/10 (the SFU and everything else on
/// this machine usually sit on 127.0.0.1).
const FIRST_ADDRESS: u32 = u32::from_be_bytes([127, 64, 0, 0]);
const ADDRESSES: u32 = 1 << 22;
static NEXT_ADDRESS: AtomicU32 = AtomicU32::new(0);

sockopt_impl!(
    /// `IP_MTU_DISCOVER`, which `nix` does not wrap.
    IpMtuDiscover,
    Both,
    libc::IPPROTO_IP,
    libc::IP_MTU_DISCOVER,
    libc::c_int
);
sockopt_impl!(
    /// `IPV6_MTU_DISCOVER`, likewise.
    Ipv6MtuDiscover,
    Both,
    libc::IPPROTO_IPV6,
    libc::IPV6_MTU_DISCOVER,
    libc::c_int
);

/// Sets the Don't Fragment bit on what `socket` sends and ignores path-MTU
/// hints (`IP_PMTUDISC_PROBE`), as browsers and QUIC stacks do for UDP:
/// str0m keeps packets under its MTU, and a datagram without DF makes Linux
/// draw a fresh IP ID from a table every socket on the host shares.
pub(crate) fn set_dont_fragment(socket: &UdpSocket) -> nix::Result<()> {
    if socket.local_addr().is_ok_and(|a| a.is_ipv6()) {
        setsockopt(socket, Ipv6MtuDiscover, &libc::IPV6_PMTUDISC_PROBE)?;
        // Dual-stack sockets only: it covers IPv4-mapped destinations.
        let _ = setsockopt(socket, IpMtuDiscover, &libc::IP_PMTUDISC_PROBE);
        Ok(())
    } else {
        setsockopt(socket, IpMtuDiscover, &libc::IP_PMTUDISC_PROBE)
    }
}

/// Whether a session bound to `bind` can share a socket: it asked for any
/// port on IPv4 loopback.
pub(crate) fn shareable(bind: SocketAddr) -> bool {
    matches!(bind, SocketAddr::V4(v4) if v4.ip().is_loopback() && v4.port() == 0)
}

/// The next unused loopback address, skipping `.0` and `.255`.
fn next_address() -> Ipv4Addr {
    loop {
        let n = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed) % ADDRESSES;
        let ip = Ipv4Addr::from(FIRST_ADDRESS + n);
        if !matches!(ip.octets()[3], 0 | 255) {
            return ip;
        }
    }
}

/// A pool thread's socket.
#[derive(Debug)]
pub(crate) struct SharedSocket {
    pub(crate) socket: UdpSocket,
    /// The pool thread that reads it (and so drives its sessions).
    pub(crate) thread: usize,
    port: u16,
}

impl SharedSocket {
    pub(crate) fn bind(thread: usize) -> std::io::Result<Arc<SharedSocket>> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_nonblocking(true)?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?;
        if let Err(e) = setsockopt(&socket, sockopt::BindToDevice, &"lo".into()) {
            debug!(
                "shared socket not tied to the loopback device ({e}); foreign datagrams are dropped by address"
            );
        }
        if let Err(e) = set_dont_fragment(&socket) {
            debug!("datagrams leave without Don't Fragment: {e}");
        }
        if let Err(e) = setsockopt(&socket, sockopt::ReceiveTimestampns, &true) {
            debug!("no receive timestamps, so no receive-wait figures: {e}");
        }
        if setsockopt(&socket, sockopt::RcvBufForce, &BUFFER_BYTES).is_err() {
            let _ = setsockopt(&socket, sockopt::RcvBuf, &BUFFER_BYTES);
        }
        if setsockopt(&socket, sockopt::SndBufForce, &BUFFER_BYTES).is_err() {
            let _ = setsockopt(&socket, sockopt::SndBuf, &BUFFER_BYTES);
        }
        let port = socket.local_addr()?.port();
        Ok(Arc::new(SharedSocket {
            socket,
            thread,
            port,
        }))
    }

    /// A fresh address on this socket.
    pub(crate) fn lease(self: &Arc<Self>) -> SharedLease {
        SharedLease {
            socket: self.clone(),
            ip: next_address(),
        }
    }
}

/// One session's address on a shared socket.
#[derive(Debug)]
pub(crate) struct SharedLease {
    pub(crate) socket: Arc<SharedSocket>,
    pub(crate) ip: Ipv4Addr,
}

impl SharedLease {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        SocketAddrV4::new(self.ip, self.socket.port).into()
    }

    /// Sends from this lease's address without waiting; a full buffer
    /// drops the datagram, as a congested network would.
    pub(crate) fn send_to(&self, data: &[u8], destination: SocketAddr) {
        let SocketAddr::V4(destination) = destination else {
            return;
        };
        let info = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(self.ip).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let _ = sendmsg(
            self.socket.socket.as_raw_fd(),
            &[IoSlice::new(data)],
            &[ControlMessage::Ipv4PacketInfo(&info)],
            MsgFlags::MSG_DONTWAIT,
            Some(&SockaddrIn::from(destination)),
        );
    }
}

/// A datagram [`BatchReader::read`] got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) source: SocketAddr,
    /// The session address it was sent to.
    pub(crate) destination: Option<Ipv4Addr>,
    /// How long it waited in the socket, when the kernel stamped it.
    pub(crate) waited: Option<Duration>,
}

/// Reads a shared socket in batches; allocated once per pool thread.
pub(crate) struct BatchReader {
    headers: MultiHeaders<SockaddrStorage>,
    buf: Vec<u8>,
    pub(crate) received: Vec<Received>,
}

impl BatchReader {
    pub(crate) fn new() -> BatchReader {
        let cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec, libc::in_pktinfo);
        BatchReader {
            headers: MultiHeaders::preallocate(BATCH, Some(cmsg)),
            buf: vec![0; BATCH * SLOT],
            received: Vec::with_capacity(BATCH),
        }
    }

    /// Reads what is queued, up to [`BATCH`] datagrams, without waiting.
    pub(crate) fn read(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        self.received.clear();
        let mut slots = self.buf.chunks_exact_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(
                slots.next().expect("the buffer holds BATCH slots"),
            )]
        });
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        let now = SystemTime::now();
        for message in results {
            let source = message.address.and_then(|a| match a.family() {
                Some(nix::sys::socket::AddressFamily::Inet) => {
                    a.as_sockaddr_in().map(|a| (*a).into())
                }
                Some(nix::sys::socket::AddressFamily::Inet6) => {
                    a.as_sockaddr_in6().map(|a| (*a).into())
                }
                _ => None,
            });
            let (mut destination, mut waited) = (None, None);
            if let Ok(cmsgs) = message.cmsgs() {
                for cmsg in cmsgs {
                    match cmsg {
                        ControlMessageOwned::Ipv4PacketInfo(info) => {
                            destination = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
                        }
                        ControlMessageOwned::ScmTimestampns(t) => {
                            let at =
                                UNIX_EPOCH + Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32);
                            waited = now.duration_since(at).ok();
                        }
                        _ => {}
                    }
                }
            }
            // Keeps the index in step with the buffer slots even for a
            // datagram without an IP source (impossible on this socket).
            self.received.push(Received {
                len: message.bytes.min(SLOT),
                source: source.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                destination: source.and(destination),
                waited,
            });
        }
        Ok(self.received.len())
    }

    /// The bytes of datagram `i` of the last [`BatchReader::read`].
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        let len = self.received.get(i).map_or(0, |r| r.len);
        &self.buf[i * SLOT..i * SLOT + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_any_port_ipv4_loopback_binds_are_shareable() {
        assert!(shareable("127.0.0.1:0".parse().unwrap()));
        assert!(!shareable("127.0.0.1:5000".parse().unwrap()));
        assert!(!shareable("0.0.0.0:0".parse().unwrap()));
        assert!(!shareable("[::1]:0".parse().unwrap()));
    }

    #[test]
    fn shared_and_own_sockets_send_with_dont_fragment() {
        use nix::sys::socket::getsockopt;
        let shared = SharedSocket::bind(0).unwrap();
        assert_eq!(
            getsockopt(&shared.socket, IpMtuDiscover).unwrap(),
            libc::IP_PMTUDISC_PROBE
        );
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_ne!(
            getsockopt(&v4, IpMtuDiscover).unwrap(),
            libc::IP_PMTUDISC_PROBE
        );
        set_dont_fragment(&v4).unwrap();
        assert_eq!(
            getsockopt(&v4, IpMtuDiscover).unwrap(),
            libc::IP_PMTUDISC_PROBE
        );
        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        set_dont_fragment(&v6).unwrap();
        assert_eq!(
            getsockopt(&v6, Ipv6MtuDiscover).unwrap(),
            libc::IPV6_PMTUDISC_PROBE
        );
    }

    #[test]
    fn leased_addresses_are_distinct_loopback_hosts() {
        let a: Vec<Ipv4Addr> = (0..600).map(|_| next_address()).collect();
        let mut unique = a.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), a.len());
        assert!(a.iter().all(|ip| ip.is_loopback() && ip.octets()[1] >= 64));
        assert!(a.iter().all(|ip| !matches!(ip.octets()[3], 0 | 255)));
    }

    #[test]
    fn two_leases_on_one_socket_are_told_apart_by_destination() {
        let shared = SharedSocket::bind(0).unwrap();
        let (alice, bob) = (shared.lease(), shared.lease());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"to alice", alice.local_addr()).unwrap();
        peer.send_to(b"to bob", bob.local_addr()).unwrap();
        // And the leases send from their own addresses.
        alice.send_to(b"from alice", peer.local_addr().unwrap());
        let mut buf = [0; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"from alice"[..], alice.local_addr()));

        let mut reader = BatchReader::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < 2 && std::time::Instant::now() < deadline {
            if let Ok(n) = reader.read(&shared.socket) {
                for i in 0..n {
                    let r = reader.received[i];
                    got.push((r.destination, reader.datagram(i).to_vec(), r.source));
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let peer_addr = peer.local_addr().unwrap();
        assert_eq!(
            got,
            vec![
                (Some(alice.ip), b"to alice".to_vec(), peer_addr),
                (Some(bob.ip), b"to bob".to_vec(), peer_addr),
            ]
        );
    }
}
