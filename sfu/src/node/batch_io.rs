//! Batched UDP I/O: `recvmmsg`, and `sendmmsg` with UDP GSO.
//!
//! One system call moves up to [`BATCH`] datagrams. The forwarding path is
//! bound by syscalls and SRTP (see `design-notes.md`: plain `sendto` tops out
//! near 0.5M packets/s per core here), so batching is where a blind SFU's
//! throughput comes from. This is the only `unsafe` in the SFU: the two calls
//! need raw `mmsghdr` arrays that point into buffers we own for the duration
//! of the call, and two socket options have no safe wrapper in `socket2`.
//!
//! Measured (`cargo bench -p benches --bench udp_batching`: 32 × 1200 B to
//! one destination over loopback, sent and received; medians of three runs
//! side by side on the 2-core dev machine): one syscall per datagram
//! 43.3 / 46.3 / 45.5 µs; `sendmmsg`+`recvmmsg` without GSO 46.1 / 48.5 /
//! 47.3 µs (no gain, as the design notes predicted); with UDP GSO
//! 21.0 / 21.6 / 21.1 µs, 2.1–2.2× faster. GSO is what pays for the `unsafe`.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Has the kernel stamp each datagram the socket receives with the time it
/// arrived (`SO_TIMESTAMPNS`), which [`recv_batch_stamped`] returns. The
/// SFU times a datagram's stay from there, so the time it waited in the
/// socket's queue counts too. (The kernel switches stamping on from deferred
/// work, so the first datagrams may be stamped when read instead.)
pub fn enable_receive_timestamps(socket: &UdpSocket) -> io::Result<()> {
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Sets the Don't Fragment bit on every datagram the socket sends, and
/// ignores path-MTU hints (`IP_PMTUDISC_PROBE`, as QUIC stacks do).
///
/// Why: str0m keeps its packets under its own MTU, so fragmenting one in
/// the network would only turn a lost fragment into a lost packet. And a
/// datagram without DF needs a fresh IP ID, which Linux draws from a table
/// shared by every socket on the host (`__ip_select_ident`, an atomic per
/// packet); with DF an unconnected socket's ID is simply 0. At 2,000 audio
/// participants that draw was 3.6% of the SFU's worker. A datagram larger
/// than the interface's MTU now fails with `EMSGSIZE` and is dropped like
/// any other send error, instead of leaving in fragments. For an IPv6
/// socket the IPv4 option also covers IPv4-mapped destinations.
pub fn set_dont_fragment(socket: &UdpSocket) -> io::Result<()> {
    match socket.local_addr()? {
        SocketAddr::V4(_) => set_int_option(
            socket,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        ),
        SocketAddr::V6(_) => {
            set_int_option(
                socket,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )?;
            // Dual-stack sockets only; a v6-only socket may refuse it.
            let _ = set_int_option(
                socket,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            );
            Ok(())
        }
    }
}

fn set_int_option(
    socket: &UdpSocket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid descriptor, and a c_int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receives up to `bufs.len()` datagrams, waiting (per the socket's read
/// timeout) for the first. Returns `(length, source)` per filled buffer.
pub fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<(usize, SocketAddr)>,
) -> io::Result<()> {
    receive(socket, bufs, out, None)
}

/// Room for one `SCM_TIMESTAMPNS` control message (a 16-byte header and a
/// 16-byte `timespec`), as u64s for alignment.
const CONTROL_WORDS: usize = 6;

/// [`recv_batch`], also saying when each datagram reached the socket:
/// `arrivals` gets one entry per entry of `out`, `None` where the kernel did
/// not stamp it ([`enable_receive_timestamps`]).
pub fn recv_batch_stamped(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<(usize, SocketAddr)>,
    arrivals: &mut Vec<Option<std::time::SystemTime>>,
) -> io::Result<()> {
    arrivals.clear();
    receive(socket, bufs, out, Some(arrivals))
}

fn receive(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<(usize, SocketAddr)>,
    mut arrivals: Option<&mut Vec<Option<std::time::SystemTime>>>,
) -> io::Result<()> {
    out.clear();
    let n = bufs.len().min(BATCH);
    let mut addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut msgs: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut control = [[0u64; CONTROL_WORDS]; BATCH];
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
        hdr.msg_control = control[i].as_mut_ptr().cast();
        hdr.msg_controllen = std::mem::size_of::<[u64; CONTROL_WORDS]>() as _;
        msgs[i].write(libc::mmsghdr {
            msg_hdr: hdr,
            msg_len: 0,
        });
    }
    // SAFETY: `msgs[..n]` are initialised and point into `bufs`, `iovs`,
    // `addrs` and `control`, all alive and unaliased for the call.
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
            if let Some(arrivals) = arrivals.as_deref_mut() {
                arrivals.push(arrival_stamp(&msg.msg_hdr));
            }
        }
    }
    Ok(())
}

/// The `SCM_TIMESTAMPNS` a received message carries, if any.
fn arrival_stamp(hdr: &libc::msghdr) -> Option<std::time::SystemTime> {
    // SAFETY: `hdr` was filled by recvmmsg, so its control pointer and
    // length describe control messages the kernel wrote into our buffer;
    // the CMSG_* helpers stay inside `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                return Some(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                );
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

/// `now` moved back by how long before `wall_now` `stamp` (a kernel arrival
/// time) was, so a wall-clock stamp can be compared with `Instant`s. The
/// caller reads both clocks once per `recvmmsg`, not per datagram. Falls
/// back to `now` when the wall clock has stepped (a stamp in the future, or
/// more than 10 s ago).
pub fn instant_of(
    stamp: Option<std::time::SystemTime>,
    now: std::time::Instant,
    wall_now: std::time::SystemTime,
) -> std::time::Instant {
    stamp
        .and_then(|s| wall_now.duration_since(s).ok())
        .filter(|ago| *ago < std::time::Duration::from_secs(10))
        .and_then(|ago| now.checked_sub(ago))
        .unwrap_or(now)
}

/// Most datagrams one GSO message may carry (the kernel's UDP_MAX_SEGMENTS).
const MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO message (one IP datagram's worth).
const MAX_GSO_BYTES: usize = 65_000;
/// Set once the kernel refuses GSO; everything then goes one datagram per message.
static GSO_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Splits `datagrams` into runs that one message can carry: with GSO, a run
/// is consecutive datagrams to one destination, all `segment` bytes long
/// except a shorter last one (how the kernel segments); without, one each.
fn plan_runs(datagrams: &[(SocketAddr, Vec<u8>)], gso: bool, runs: &mut Vec<(usize, usize)>) {
    runs.clear();
    let mut i = 0;
    while i < datagrams.len() {
        let (dest, first) = &datagrams[i];
        let segment = first.len();
        let mut bytes = segment;
        let mut j = i + 1;
        while gso && j < datagrams.len() && j - i < MAX_SEGMENTS {
            let (d, data) = &datagrams[j];
            if d != dest
                || data.len() > segment
                || data.is_empty()
                || bytes + data.len() > MAX_GSO_BYTES
            {
                break;
            }
            bytes += data.len();
            j += 1;
            if data.len() < segment {
                break;
            }
        }
        runs.push((i, j - i));
        i = j;
    }
}

/// Sends datagrams without blocking, in as few system calls as it can:
/// `sendmmsg` carries up to [`BATCH`] messages, and each message carries a
/// run of datagrams to one destination with UDP GSO (`UDP_SEGMENT`), which
/// is how one subscriber's burst of video packets leaves in one go.
/// Returns how many datagrams the kernel took; the rest were dropped.
pub fn send_batch(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]) -> usize {
    send_batch_with(socket, datagrams, !GSO_UNAVAILABLE.load(Ordering::Relaxed))
}

/// [`send_batch`] with GSO forced off (`gso = false`), for comparison.
pub fn send_batch_with(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, Vec<u8>)],
    gso: bool,
) -> usize {
    let mut runs = Vec::new();
    plan_runs(datagrams, gso, &mut runs);
    let mut sent = 0;
    for chunk in runs.chunks(BATCH) {
        sent += send_runs(socket, datagrams, chunk);
    }
    sent
}

/// One `sendmmsg` for up to [`BATCH`] runs.
fn send_runs(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, Vec<u8>)],
    runs: &[(usize, usize)],
) -> usize {
    let total: usize = runs.iter().map(|(_, n)| n).sum();
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(total);
    for (start, count) in runs {
        for (_, data) in &datagrams[*start..start + count] {
            iovs.push(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
        }
    }
    let mut addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH] = [MaybeUninit::uninit(); BATCH];
    // Room for one cmsghdr carrying a u16, aligned for cmsghdr.
    let mut controls = [[0u64; 4]; BATCH];
    let mut msgs: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut iov_at = 0;
    for (m, (start, count)) in runs.iter().enumerate() {
        // SAFETY: zeroed sockaddr_storage is valid; to_sockaddr fills it.
        let storage = addrs[m].write(unsafe { std::mem::zeroed() });
        let namelen = to_sockaddr(&datagrams[*start].0, storage);
        // SAFETY: an all-zero msghdr is valid; every pointer set below lives
        // until sendmmsg returns.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_name = addrs[m].as_mut_ptr().cast();
        hdr.msg_namelen = namelen;
        hdr.msg_iov = iovs[iov_at..].as_mut_ptr();
        hdr.msg_iovlen = *count as _;
        iov_at += count;
        if *count > 1 {
            let segment = datagrams[*start].1.len() as u16;
            // SAFETY: `controls[m]` is 32 bytes, 8-aligned, enough for
            // CMSG_SPACE(2) = 24; CMSG_FIRSTHDR/CMSG_DATA stay inside it.
            unsafe {
                hdr.msg_control = controls[m].as_mut_ptr().cast();
                hdr.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as _;
                let cmsg = libc::CMSG_FIRSTHDR(&hdr);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
            }
        }
        msgs[m].write(libc::mmsghdr {
            msg_hdr: hdr,
            msg_len: 0,
        });
    }
    let mut sent = 0;
    let mut offset = 0;
    while offset < runs.len() {
        // SAFETY: `msgs[offset..runs.len()]` are initialised and point into
        // `datagrams`, `iovs`, `addrs` and `controls`, all alive and not
        // moved during the call. The kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr().add(offset).cast(),
                (runs.len() - offset) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            sent += runs[offset..offset + n as usize]
                .iter()
                .map(|(_, c)| c)
                .sum::<usize>();
            offset += n as usize;
            continue;
        }
        let error = io::Error::last_os_error();
        let (start, count) = runs[offset];
        if count > 1
            && matches!(
                error.raw_os_error(),
                Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP)
            )
        {
            // No GSO on this path: remember, and send this run plainly.
            GSO_UNAVAILABLE.store(true, Ordering::Relaxed);
            sent += send_batch(socket, &datagrams[start..start + count]);
        }
        // Otherwise a full buffer or an error for this destination (e.g.
        // ICMP-unreachable peer): skip it, keep the rest.
        offset += 1;
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
    fn stamped_receives_say_when_each_datagram_arrived() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = rx.local_addr().unwrap();
        let (mut bufs, mut out) = (vec![Vec::new(); BATCH], Vec::new());

        let mut arrivals = Vec::new();

        // Without the option the kernel stamps nothing.
        tx.send_to(b"plain", dest).unwrap();
        recv_batch_stamped(&rx, &mut bufs, &mut out, &mut arrivals).unwrap();
        assert_eq!((out.len(), arrivals.as_slice()), (1, &[None][..]));

        enable_receive_timestamps(&rx).unwrap();
        // The kernel turns arrival stamping on for the first socket that
        // asks from a deferred work item; until then a datagram is stamped
        // when it is read. Give it a moment, and read one datagram past it.
        std::thread::sleep(Duration::from_millis(50));
        tx.send_to(b"warm-up", dest).unwrap();
        recv_batch_stamped(&rx, &mut bufs, &mut out, &mut arrivals).unwrap();
        let before = std::time::SystemTime::now();
        tx.send_to(b"first", dest).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        tx.send_to(b"second", dest).unwrap();
        let read = std::time::SystemTime::now();
        let mut stamps = Vec::new();
        while stamps.len() < 2 {
            recv_batch_stamped(&rx, &mut bufs, &mut out, &mut arrivals).unwrap();
            assert_eq!(arrivals.len(), out.len());
            stamps.extend(arrivals.iter().map(|a| a.expect("a kernel stamp")));
        }
        // Each datagram carries its own arrival, not the time it was read.
        assert!(stamps[0] >= before - Duration::from_millis(5), "{stamps:?}");
        assert!(
            read.duration_since(stamps[0]).unwrap() >= Duration::from_millis(25),
            "stamped at arrival, not at the read"
        );
        assert!(
            stamps[1].duration_since(stamps[0]).unwrap() >= Duration::from_millis(25),
            "{stamps:?}"
        );
    }

    #[test]
    fn kernel_stamps_become_instants_unless_the_clock_stepped() {
        let now = std::time::Instant::now();
        let wall = std::time::SystemTime::now();
        assert_eq!(instant_of(None, now, wall), now);
        let ago = std::time::SystemTime::now() - Duration::from_millis(40);
        let at = instant_of(Some(ago), now, std::time::SystemTime::now());
        assert!(now - at >= Duration::from_millis(40), "{:?}", now - at);
        assert!(now - at < Duration::from_secs(2), "{:?}", now - at);
        let future = std::time::SystemTime::now() + Duration::from_secs(60);
        assert_eq!(instant_of(Some(future), now, wall), now);
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(instant_of(Some(long_ago), now, wall), now);
    }

    #[test]
    fn runs_to_one_destination_leave_as_gso_and_arrive_as_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        other
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (rx.local_addr().unwrap(), other.local_addr().unwrap());
        // 70 equal datagrams (more than one GSO message holds), a short last
        // one, then a run to another destination.
        let mut datagrams: Vec<(SocketAddr, Vec<u8>)> =
            (0..70u8).map(|i| (a, vec![i; 900])).collect();
        datagrams.push((a, vec![70; 100]));
        datagrams.extend((0..5u8).map(|i| (b, vec![i; 300])));
        let mut runs = Vec::new();
        plan_runs(&datagrams, true, &mut runs);
        assert_eq!(runs, vec![(0, 64), (64, 7), (71, 5)]);
        assert_eq!(send_batch(&tx, &datagrams), 76);
        assert!(
            !GSO_UNAVAILABLE.load(Ordering::Relaxed),
            "loopback takes GSO here"
        );

        let mut bufs = vec![Vec::new(); BATCH];
        let mut out = Vec::new();
        let mut got = Vec::new();
        while got.len() < 71 {
            recv_batch(&rx, &mut bufs, &mut out).unwrap();
            got.extend(
                out.iter()
                    .enumerate()
                    .map(|(i, (len, _))| bufs[i][..*len].to_vec()),
            );
        }
        for (i, d) in got.iter().enumerate() {
            let expected = if i < 70 {
                vec![i as u8; 900]
            } else {
                vec![70; 100]
            };
            assert_eq!(d, &expected, "datagram {i} intact and in order");
        }
        let mut other_got = 0;
        while other_got < 5 {
            recv_batch(&other, &mut bufs, &mut out).unwrap();
            other_got += out.iter().filter(|(len, _)| *len == 300).count();
        }
    }

    /// Reads an integer socket option back, to see what the kernel kept.
    fn int_option(socket: &UdpSocket, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid descriptor and a c_int buffer of the length given.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn dont_fragment_sockets_still_send_gso_runs_and_single_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (ip, mtu) = (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER);
        assert_ne!(int_option(&tx, ip, mtu), libc::IP_PMTUDISC_PROBE);
        set_dont_fragment(&tx).unwrap();
        assert_eq!(int_option(&tx, ip, mtu), libc::IP_PMTUDISC_PROBE);

        // A GSO run (its total is far above any MTU) and a lone datagram.
        let dest = rx.local_addr().unwrap();
        let mut datagrams: Vec<(SocketAddr, Vec<u8>)> =
            (0..20u8).map(|i| (dest, vec![i; 1200])).collect();
        datagrams.push((dest, vec![20; 80]));
        assert_eq!(send_batch(&tx, &datagrams), 21);
        let (mut bufs, mut out, mut got) = (vec![Vec::new(); BATCH], Vec::new(), Vec::new());
        while got.len() < 21 {
            recv_batch(&rx, &mut bufs, &mut out).unwrap();
            got.extend(
                out.iter()
                    .enumerate()
                    .map(|(i, (len, _))| bufs[i][..*len].to_vec()),
            );
        }
        assert_eq!(
            got,
            datagrams.into_iter().map(|(_, d)| d).collect::<Vec<_>>()
        );

        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        set_dont_fragment(&v6).unwrap();
        assert_eq!(
            int_option(&v6, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
            libc::IPV6_PMTUDISC_PROBE
        );
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
