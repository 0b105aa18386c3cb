//! Batched UDP I/O: `recvmmsg` and `sendmmsg`.
//!
//! One system call moves up to [`BATCH`] datagrams. The forwarding path is
//! bound by syscalls and SRTP (see `design-notes.md`: plain `sendto` tops out
//! near 0.5M packets/s per core here), so batching is where a blind SFU's
//! throughput comes from. This is the only `unsafe` in the SFU: the two calls
//! need raw `mmsghdr` arrays that point into buffers we own for the duration
//! of the call.
//!
//! Measured (`cargo bench -p benches --bench udp_batching`, 32 × 1200 B over
//! loopback, send and receive, three runs side by side on the 2-core dev
//! machine): one syscall per datagram 50.5 / 57.8 / 71.5 µs, batched
//! 46.0 / 48.7 / 64.9 µs, i.e. 9–16% less per run. Modest, as the design
//! notes predicted for `sendmmsg` alone; UDP GSO for several datagrams to one
//! subscriber is the larger win and belongs to the performance work.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram (the largest UDP payload we accept).
pub const MAX_DATAGRAM: usize = 2048;

fn to_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receives up to `bufs.len()` datagrams, waiting (per the socket's read
/// timeout) for the first. Returns `(length, source)` per filled buffer.
pub fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<(usize, SocketAddr)>,
) -> io::Result<()> {
    out.clear();
    let n = bufs.len().min(BATCH);
    let mut addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut msgs: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::uninit(); BATCH];
    for i in 0..n {
        bufs[i].resize(MAX_DATAGRAM, 0);
        iovs[i].write(libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: MAX_DATAGRAM,
        });
        // SAFETY: an all-zero msghdr is valid; the pointers set below live
        // until recvmmsg returns.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_name = addrs[i].as_mut_ptr().cast();
        hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_iov = iovs[i].as_mut_ptr();
        hdr.msg_iovlen = 1;
        msgs[i].write(libc::mmsghdr {
            msg_hdr: hdr,
            msg_len: 0,
        });
    }
    // SAFETY: `msgs[..n]` are initialised and point into `bufs`, `iovs` and
    // `addrs`, all alive and unaliased for the call.
    let got = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr().cast(),
            n as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    for i in 0..got as usize {
        // SAFETY: the kernel filled the first `got` entries.
        let msg = unsafe { msgs[i].assume_init_ref() };
        let addr = unsafe { addrs[i].assume_init_ref() };
        if let Some(source) = from_sockaddr(addr) {
            out.push((msg.msg_len as usize, source));
        }
    }
    Ok(())
}

/// Sends datagrams without blocking, as many per call as fit in a batch.
/// Returns how many the kernel took; the rest were dropped (full buffer).
pub fn send_batch(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]) -> usize {
    let mut sent = 0;
    for chunk in datagrams.chunks(BATCH) {
        let mut addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH] =
            [MaybeUninit::uninit(); BATCH];
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        let mut msgs: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::uninit(); BATCH];
        for (i, (dest, data)) in chunk.iter().enumerate() {
            // SAFETY: zeroed sockaddr_storage is valid; to_sockaddr fills it.
            let storage = addrs[i].write(unsafe { std::mem::zeroed() });
            let len = to_sockaddr(dest, storage);
            iovs[i].write(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
            // SAFETY: as in recv_batch.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_name = addrs[i].as_mut_ptr().cast();
            hdr.msg_namelen = len;
            hdr.msg_iov = iovs[i].as_mut_ptr();
            hdr.msg_iovlen = 1;
            msgs[i].write(libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            });
        }
        let mut offset = 0;
        while offset < chunk.len() {
            // SAFETY: `msgs[offset..chunk.len()]` are initialised and point
            // into `chunk`, `iovs` and `addrs`, alive for the call. The
            // kernel only reads the payloads.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    msgs.as_mut_ptr().add(offset).cast(),
                    (chunk.len() - offset) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // Full send buffer, or an error for the datagram at `offset`
                // (e.g. ICMP-unreachable peer): skip it, keep the rest.
                offset += 1;
                continue;
            }
            sent += n as usize;
            offset += n as usize;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order_with_sources() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = rx.local_addr().unwrap();
        let datagrams: Vec<(SocketAddr, Vec<u8>)> = (0..40u8)
            .map(|i| (dest, vec![i; 10 + i as usize]))
            .collect();
        assert_eq!(send_batch(&tx, &datagrams), 40, "two sendmmsg calls");

        let mut bufs = vec![Vec::new(); BATCH];
        let mut out = Vec::new();
        let mut got = Vec::new();
        while got.len() < 40 {
            recv_batch(&rx, &mut bufs, &mut out).unwrap();
            for (i, (len, source)) in out.iter().enumerate() {
                assert_eq!(*source, tx.local_addr().unwrap());
                got.push(bufs[i][..*len].to_vec());
            }
        }
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![i as u8; 10 + i]);
        }
    }

    #[test]
    fn ipv6_addresses_round_trip() {
        let rx = UdpSocket::bind("[::1]:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        assert_eq!(
            send_batch(&tx, &[(rx.local_addr().unwrap(), b"hi".to_vec())]),
            1
        );
        let mut bufs = vec![Vec::new(); 4];
        let mut out = Vec::new();
        recv_batch(&rx, &mut bufs, &mut out).unwrap();
        assert_eq!(out, vec![(2, tx.local_addr().unwrap())]);
    }

    #[test]
    fn a_timeout_is_an_error_not_a_hang() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut bufs = vec![Vec::new(); 4];
        let mut out = Vec::new();
        let err = recv_batch(&rx, &mut bufs, &mut out).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }
}
