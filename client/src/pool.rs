//! Many sessions on a few threads: one level-triggered epoll loop each.
//!
//! A session with a tokio task of its own costs, for every datagram it
//! receives, a task wake-up, a `select!` over five futures, and a second
//! `recvfrom` that finds the socket empty: tokio's readiness is
//! edge-triggered, so a socket counts as readable until a read fails. A
//! load-test participant that listens to one audio track gets one datagram
//! per wake, so that overhead is paid on every packet.
//!
//! A [`SessionPool`] thread owns many sessions' sockets in one
//! level-triggered epoll set instead. One `epoll_wait` reports every socket
//! that has data; each gets exactly one `recvfrom` per report (a socket with
//! more data is simply reported again), and the sessions' timers live in one
//! heap. Signalling messages and [`Client`](crate::Client) commands still
//! arrive over the session's tokio channels: each session's waker queues it
//! for its thread and wakes the thread through an eventfd.
//!
//! Every datagram is read with its kernel receive time (`SO_TIMESTAMPNS`),
//! so the pool knows how long datagrams waited in their sockets before it got
//! to them ([`SessionPool::receive_waits`]). A load generator whose threads
//! are saturated shows it there, before its backlog passes for SFU latency.
//!
//! On loopback a pool can go one step further
//! ([`SessionPool::with_shared_sockets`]): each thread has one socket, every
//! session an address of its own on it, and the thread reads up to 64
//! datagrams per `recvmmsg` (see the `shared_socket` module).
//!
//! Only UDP sessions are pooled; an ICE-TCP session keeps a task of its own.
//!
//! # Example
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use veil_client::{ClientConfig, RoomSecret, SessionPool};
//!
//! // Two threads drive every session that is given the pool.
//! let pool = SessionPool::new(2)?;
//! let secret = RoomSecret::from_passphrase("standup", "correct horse battery staple");
//! let mut config = ClientConfig::new("alice", "standup", secret);
//! config.pool = Some(pool.clone());
//! // `Client::prepare(config)` and `PendingClient::start(..)` as usual.
//! # Ok(())
//! # }
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::session::{Command, Driver, FromServer, MediaSocket, ToServer};
use crate::shared_socket::{self, BatchReader, SharedLease, SharedSocket};

/// The epoll key of a thread's eventfd; sessions' keys are
/// `generation << 32 | slot`, and generations stop short of `u32::MAX`.
const WAKE_KEY: u64 = u64::MAX;
/// The epoll key of a thread's shared socket.
const SHARED_KEY: u64 = u64::MAX - 1;
/// The epoll key of a thread's timerfd.
const TIMER_KEY: u64 = u64::MAX - 2;
/// Longest sleep without a timer due, so a stop is never missed for long.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Socket reports handled per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;
/// Buckets of [`SessionPool::receive_waits`]: bucket `i` counts datagrams
/// that waited `[2^i, 2^(i+1))` µs in their socket (bucket 0: under 2 µs).
pub const WAIT_BUCKETS: usize = 32;

/// Threads that drive many client sessions; clones share the threads,
/// which stop when the last clone is dropped (ending their sessions).
#[derive(Clone)]
pub struct SessionPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    threads: Vec<Arc<Shared>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("threads", &self.inner.threads.len())
            .finish()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        for thread in &self.threads {
            thread.notify(|inbox| inbox.stop = true);
        }
    }
}

impl SessionPool {
    /// Starts `threads` threads (at least one); every session keeps a socket
    /// of its own.
    pub fn new(threads: usize) -> std::io::Result<SessionPool> {
        SessionPool::start(threads, false)
    }

    /// Starts `threads` threads (at least one), each with one UDP socket
    /// that its sessions share when they bind `127.0.0.1:0`: each gets an
    /// address of its own in 127.64.0.0/10 on that socket, so the server
    /// still sees one address per participant, and the thread reads many
    /// sessions' datagrams per system call. Sessions that bind anything
    /// else get sockets of their own, as with [`SessionPool::new`].
    pub fn with_shared_sockets(threads: usize) -> std::io::Result<SessionPool> {
        SessionPool::start(threads, true)
    }

    fn start(threads: usize, share_sockets: bool) -> std::io::Result<SessionPool> {
        let mut shared = Vec::new();
        for i in 0..threads.max(1) {
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
            let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
            epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE_KEY))?;
            let timer = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?;
            epoll.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER_KEY))?;
            let socket = match share_sockets {
                true => {
                    let socket = SharedSocket::bind(i)?;
                    epoll.add(
                        &socket.socket,
                        EpollEvent::new(EpollFlags::EPOLLIN, SHARED_KEY),
                    )?;
                    Some(socket)
                }
                false => None,
            };
            let thread = Arc::new(Shared {
                wake,
                inbox: Mutex::new(Inbox::default()),
                waits: Default::default(),
                socket,
            });
            let reactor = Reactor {
                by_ip: HashMap::new(),
                shared: thread.clone(),
                epoll,
                slots: Vec::new(),
                free: Vec::new(),
                timers: BinaryHeap::new(),
                timer,
                armed: None,
                due: Vec::new(),
                buf: vec![0; 2048],
                cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
            };
            std::thread::Builder::new()
                .name(format!("veil-session-pool-{i}"))
                .spawn(move || reactor.run())?;
            shared.push(thread);
        }
        Ok(SessionPool {
            inner: Arc::new(PoolInner {
                threads: shared,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// How many threads drive the sessions.
    pub fn threads(&self) -> usize {
        self.inner.threads.len()
    }

    /// How long the datagrams read so far waited in their sockets before a
    /// pool thread read them, as counts in log2 buckets of microseconds
    /// (see [`WAIT_BUCKETS`]). Counts only grow: subtract an earlier
    /// snapshot for a window.
    pub fn receive_waits(&self) -> [u64; WAIT_BUCKETS] {
        let mut total = [0; WAIT_BUCKETS];
        for thread in &self.inner.threads {
            for (sum, count) in total.iter_mut().zip(&thread.waits) {
                *sum += count.load(Ordering::Relaxed);
            }
        }
        total
    }

    /// An address on the next thread's shared socket for a session that
    /// would bind `bind`, if this pool shares sockets and `bind` allows it.
    pub(crate) fn lease(&self, bind: SocketAddr) -> Option<SharedLease> {
        if !shared_socket::shareable(bind) {
            return None;
        }
        let threads = &self.inner.threads;
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % threads.len();
        threads[i].socket.as_ref().map(|s| s.lease())
    }

    /// Hands a session to the thread that reads its shared socket, or else
    /// to the next thread in turn.
    pub(crate) fn add(&self, session: PooledSession) {
        let threads = &self.inner.threads;
        let i = match &session.driver.socket {
            MediaSocket::Shared(lease) => lease.socket.thread,
            _ => self.inner.next.fetch_add(1, Ordering::Relaxed),
        } % threads.len();
        threads[i].notify(|inbox| inbox.added.push(session));
    }
}

/// A started session and the channels its task would otherwise poll.
pub(crate) struct PooledSession {
    pub(crate) driver: Driver,
    pub(crate) from_server: mpsc::Receiver<FromServer>,
    pub(crate) to_server: mpsc::Sender<ToServer>,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// Dropped when the session ends, which [`crate::Client::stop`] waits for.
    pub(crate) _done: oneshot::Sender<()>,
}

/// What other threads hand a pool thread.
struct Shared {
    wake: EventFd,
    inbox: Mutex<Inbox>,
    /// Receive waits, by log2 bucket of µs (written by the thread only).
    waits: [AtomicU64; WAIT_BUCKETS],
    /// The socket this thread's sessions share, if the pool shares them.
    socket: Option<Arc<SharedSocket>>,
}

#[derive(Default)]
struct Inbox {
    added: Vec<PooledSession>,
    /// Sessions whose channels have something (or closed).
    woken: Vec<u64>,
    stop: bool,
    /// The eventfd was written and the thread has not taken the inbox yet.
    signalled: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the inbox and wakes the thread, once per batch of changes.
    fn notify(&self, change: impl FnOnce(&mut Inbox)) {
        let mut inbox = self.lock();
        change(&mut inbox);
        if !inbox.signalled {
            inbox.signalled = true;
            drop(inbox);
            let _ = self.wake.write(1);
        }
    }
}

/// Wakes a pool thread for one session's channels.
struct SessionWaker {
    shared: Arc<Shared>,
    key: u64,
}

impl Wake for SessionWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let key = self.key;
        self.shared.notify(|inbox| inbox.woken.push(key));
    }
}

struct Slot {
    session: Option<PooledSession>,
    /// Bumped when the slot is emptied, so stale keys find nothing.
    generation: u32,
    /// The socket registered with epoll (it changes on an ICE restart).
    fd: RawFd,
    /// The session's address on the shared socket (it changes on an ICE
    /// restart).
    ip: Option<Ipv4Addr>,
    timer: SlotTimer,
    server_open: bool,
    waker: Waker,
}

/// One pool thread's state.
struct Reactor {
    shared: Arc<Shared>,
    /// The session each shared-socket address belongs to.
    by_ip: HashMap<Ipv4Addr, u64>,
    epoll: Epoll,
    slots: Vec<Slot>,
    free: Vec<u32>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Wakes the thread at the earliest timer, to the microsecond:
    /// `epoll_wait` counts whole milliseconds, so a paced sender woken by
    /// it would release everything due within a millisecond together, and
    /// every pooled sender on the same millisecond ticks.
    timer: TimerFd,
    /// The deadline `timer` is set for.
    armed: Option<Instant>,
    /// Timers taken from the heap this turn.
    due: Vec<u64>,
    buf: Vec<u8>,
    /// Room for the receive timestamp.
    cmsg: Vec<u8>,
}

fn split(key: u64) -> (usize, u32) {
    ((key & 0xffff_ffff) as usize, (key >> 32) as u32)
}

/// Reads one datagram with the time it waited in the socket (when the
/// kernel stamped it).
fn receive(
    socket: &std::net::UdpSocket,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<Duration>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_DONTWAIT,
    )?;
    let source = message.address.and_then(|a| match a.family() {
        Some(nix::sys::socket::AddressFamily::Inet) => a.as_sockaddr_in().map(|a| (*a).into()),
        Some(nix::sys::socket::AddressFamily::Inet6) => a.as_sockaddr_in6().map(|a| (*a).into()),
        _ => None,
    });
    let Some(source) = source else {
        return Err(std::io::Error::other("datagram without an IP source"));
    };
    let stamped = message.cmsgs().ok().and_then(|mut all| {
        all.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(t) => {
                Some(UNIX_EPOCH + Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
            }
            _ => None,
        })
    });
    let waited = stamped.and_then(|at| SystemTime::now().duration_since(at).ok());
    Ok((message.bytes, source, waited))
}

/// Runs one session's step; `None` if it panicked. The thread drives many
/// sessions, so a panic in one (a bug in the WebRTC stack, say) must end
/// that session, not the thread and everyone on it; the session's state
/// may be half-updated, so the caller drops it.
fn unwind_safely<T>(step: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(value) => Some(value),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            warn!(%message, "a pooled session panicked; it ends, the others go on");
            None
        }
    }
}

/// The slot `key` names, if it still holds that session.
fn live(slots: &mut [Slot], key: u64) -> Option<&mut Slot> {
    let (index, generation) = split(key);
    slots
        .get_mut(index)
        .filter(|s| s.generation == generation && s.session.is_some())
}

impl Reactor {
    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        // Made on this thread: its headers hold raw pointers, so it cannot
        // be handed over.
        let mut reader = self.shared.socket.as_ref().map(|_| BatchReader::new());
        loop {
            self.fire_timers();
            let wait = match self.timers.peek() {
                Some(&Reverse((at, _))) => match self.arm(at) {
                    // The timerfd wakes us; epoll's own timeout is a backstop.
                    true => IDLE_WAIT,
                    false => at.saturating_duration_since(Instant::now()),
                },
                None => IDLE_WAIT,
            };
            // epoll counts whole milliseconds; round up so a timer is never
            // served early and spun on.
            let wait_ms = wait.min(IDLE_WAIT).as_micros().div_ceil(1000) as u16;
            let n = match self.epoll.wait(&mut events, wait_ms) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    warn!("session pool: epoll_wait failed, its sessions end: {e}");
                    return;
                }
            };
            for event in &events[..n] {
                if event.data() == WAKE_KEY {
                    if self.take_inbox() {
                        return;
                    }
                } else if event.data() == TIMER_KEY {
                    // Clears the expiry; the timers themselves fire at the
                    // top of the loop.
                    let _ = self.timer.wait();
                    self.armed = None;
                } else if event.data() == SHARED_KEY {
                    if let Some(reader) = reader.as_mut() {
                        self.on_shared_readable(reader);
                    }
                } else {
                    self.on_readable(event.data());
                }
            }
        }
    }

    /// Sets the timerfd to fire at `at` unless it already does. False if
    /// the kernel refused, so the caller falls back to epoll's timeout.
    fn arm(&mut self, at: Instant) -> bool {
        if self.armed == Some(at) {
            return true;
        }
        // A zero expiry would disarm the timer: a deadline already due
        // fires after a nanosecond instead.
        let wait = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let set = self.timer.set(
            Expiration::OneShot(TimeSpec::from_duration(wait)),
            TimerSetTimeFlags::empty(),
        );
        self.armed = set.is_ok().then_some(at);
        set.is_ok()
    }

    /// Takes what other threads handed over; true when the pool stopped.
    fn take_inbox(&mut self) -> bool {
        let _ = self.shared.wake.read();
        let (added, woken) = {
            let mut inbox = self.shared.lock();
            inbox.signalled = false;
            if inbox.stop {
                return true;
            }
            (
                std::mem::take(&mut inbox.added),
                std::mem::take(&mut inbox.woken),
            )
        };
        for session in added {
            self.insert(session);
        }
        for key in woken {
            self.poll_channels(key);
        }
        false
    }

    fn insert(&mut self, session: PooledSession) {
        match &session.driver.socket {
            MediaSocket::Pooled(_) => {}
            MediaSocket::Shared(lease) if self.owns(lease) => {}
            MediaSocket::Shared(_) => {
                warn!(
                    "session pool: a session on another thread's socket was handed over; ignored"
                );
                return;
            }
            MediaSocket::Task(_) => {
                warn!("session pool: a task-driven session was handed over; ignored");
                return;
            }
        }
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Slot {
                    session: None,
                    generation: 0,
                    fd: -1,
                    ip: None,
                    timer: SlotTimer::default(),
                    server_open: false,
                    waker: Waker::noop().clone(),
                });
                self.slots.len() - 1
            }
        };
        let generation = self.slots[index].generation;
        let key = (generation as u64) << 32 | index as u64;
        let slot = &mut self.slots[index];
        match &session.driver.socket {
            MediaSocket::Pooled(socket) => {
                if let Err(e) = setsockopt(socket, sockopt::ReceiveTimestampns, &true) {
                    debug!("no receive timestamps, so no receive-wait figures: {e}");
                }
                if let Err(e) = self
                    .epoll
                    .add(socket.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, key))
                {
                    warn!("session pool: cannot watch the session's socket: {e}");
                    self.free.push(index as u32);
                    return;
                }
                slot.fd = socket.as_raw_fd();
            }
            MediaSocket::Shared(lease) => {
                self.by_ip.insert(lease.ip, key);
                slot.ip = Some(lease.ip);
            }
            MediaSocket::Task(_) => return,
        }
        slot.timer = SlotTimer::default();
        slot.server_open = true;
        slot.waker = Waker::from(Arc::new(SessionWaker {
            shared: self.shared.clone(),
            key,
        }));
        slot.session = Some(session);
        // The first poll registers the waker with both channels.
        self.poll_channels(key);
    }

    /// Reads one datagram (level-triggered: more data is reported again).
    fn on_readable(&mut self, key: u64) {
        let Some(slot) = live(&mut self.slots, key) else {
            return;
        };
        let Some(session) = slot.session.as_mut() else {
            return;
        };
        let MediaSocket::Pooled(socket) = &session.driver.socket else {
            return;
        };
        let (buf, waits) = (&mut self.buf, &self.shared.waits);
        let read = match receive(socket, buf, &mut self.cmsg) {
            Ok((n, source, waited)) => {
                if let Some(waited) = waited {
                    record_wait(waits, waited);
                }
                let driver = &mut session.driver;
                unwind_safely(|| driver.on_datagram(&buf[..n], source, Instant::now()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                debug!("recv: {e}");
                Some(())
            }
        };
        match read {
            Some(()) => self.finish(key),
            None => self.remove(key),
        }
    }

    /// Whether `lease` is on this thread's socket.
    fn owns(&self, lease: &SharedLease) -> bool {
        self.shared
            .socket
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &lease.socket))
    }

    /// Reads one batch from the shared socket and hands each datagram to the
    /// session whose address it was sent to (level-triggered: a socket with
    /// more is reported again). The session acts after each one: str0m
    /// holds one received packet until it is polled, so a second input
    /// before the poll would overwrite the first.
    fn on_shared_readable(&mut self, reader: &mut BatchReader) {
        let Some(socket) = self.shared.socket.as_ref() else {
            return;
        };
        match reader.read(&socket.socket) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                debug!("recvmmsg: {e}");
                return;
            }
        }
        let now = Instant::now();
        for (i, received) in reader.received.iter().enumerate() {
            if let Some(waited) = received.waited {
                record_wait(&self.shared.waits, waited);
            }
            let Some(&key) = received.destination.and_then(|ip| self.by_ip.get(&ip)) else {
                continue;
            };
            let Some(session) = live(&mut self.slots, key).and_then(|s| s.session.as_mut()) else {
                continue;
            };
            let driver = &mut session.driver;
            let data = reader.datagram(i);
            match unwind_safely(|| driver.on_datagram(data, received.source, now)) {
                Some(()) => self.finish(key),
                None => self.remove(key),
            }
        }
    }

    /// Drains the session's channels; the waker is registered again by the
    /// poll that finds them empty.
    fn poll_channels(&mut self, key: u64) {
        let Some(slot) = live(&mut self.slots, key) else {
            return;
        };
        let mut cx = Context::from_waker(&slot.waker);
        let Some(session) = slot.session.as_mut() else {
            return;
        };
        let server_open = &mut slot.server_open;
        let alive = unwind_safely(|| {
            while *server_open {
                match session.from_server.poll_recv(&mut cx) {
                    Poll::Ready(Some(message)) => session.driver.on_server(message),
                    Poll::Ready(None) => *server_open = false,
                    Poll::Pending => break,
                }
            }
            while let Poll::Ready(command) = session.commands.poll_recv(&mut cx) {
                if !session.driver.on_command(command) {
                    return false;
                }
            }
            true
        });
        match alive {
            Some(true) => self.finish(key),
            _ => self.remove(key),
        }
    }

    /// Serves every timer due now; timers armed while serving wait for the
    /// next turn, so a deadline that stays due cannot spin this loop.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = live(&mut self.slots, key) else {
                continue;
            };
            match slot.timer.came_up(at, now) {
                Entry::Stale => {}
                Entry::Due => self.due.push(key),
                Entry::Rearm(deadline) => self.timers.push(Reverse((deadline, key))),
            }
        }
        for key in std::mem::take(&mut self.due) {
            self.finish(key);
        }
    }

    /// After any wake: lets the session act, sends what it has for the
    /// server, and arms its next timer (or lets it go if it ended).
    fn finish(&mut self, key: u64) {
        let Some(slot) = live(&mut self.slots, key) else {
            return;
        };
        let Some(session) = slot.session.as_mut() else {
            return;
        };
        let settled = unwind_safely(|| {
            session.driver.after_wake(Instant::now());
            session.driver.settle()
        });
        for message in session.driver.outbox.drain(..) {
            if session.to_server.try_send(message).is_err() {
                warn!("signalling channel full or closed; a message to the server is dropped");
            }
        }
        let Some(Some(deadline)) = settled else {
            self.remove(key);
            return;
        };
        // An ICE restart replaced the address on the shared socket.
        if let MediaSocket::Shared(lease) = &session.driver.socket
            && slot.ip != Some(lease.ip)
        {
            if let Some(old) = slot.ip.replace(lease.ip) {
                self.by_ip.remove(&old);
            }
            self.by_ip.insert(lease.ip, key);
        }
        // An ICE restart replaced the socket; the old one left the epoll
        // set when it was closed.
        if let MediaSocket::Pooled(socket) = &session.driver.socket
            && socket.as_raw_fd() != slot.fd
        {
            let _ = setsockopt(socket, sockopt::ReceiveTimestampns, &true);
            match self
                .epoll
                .add(socket.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, key))
            {
                Ok(()) => slot.fd = socket.as_raw_fd(),
                Err(e) => warn!("session pool: cannot watch the new socket: {e}"),
            }
        }
        if let Some(entry) = slot.timer.set(deadline) {
            self.timers.push(Reverse((entry, key)));
        }
    }

    /// Ends a session: its socket leaves the epoll set and closes, and
    /// [`crate::Client::stop`] returns.
    fn remove(&mut self, key: u64) {
        let (index, _) = split(key);
        let Some(slot) = live(&mut self.slots, key) else {
            return;
        };
        if let Some(session) = slot.session.take()
            && let MediaSocket::Pooled(socket) = &session.driver.socket
        {
            let _ = self.epoll.delete(socket.as_fd());
        }
        if let Some(ip) = slot.ip.take()
            && self.by_ip.get(&ip) == Some(&key)
        {
            self.by_ip.remove(&ip);
        }
        slot.generation = (slot.generation + 1) % (u32::MAX - 1);
        slot.timer = SlotTimer::default();
        slot.fd = -1;
        slot.waker = Waker::noop().clone();
        self.free.push(index as u32);
    }
}

/// A session's place in its thread's timer heap.
///
/// Almost every wake moves a session's deadline a little later: a received
/// datagram pushes str0m's next report or check back. Re-arming on each
/// move pushed one heap entry per received datagram, and popping that many
/// stale entries cost the load generator about 4% of its core at 2,000
/// participants. So a later deadline leaves the entry already in the heap
/// alone; when that entry comes up, it is armed again for the real deadline.
/// Only an earlier deadline pushes at once.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct SlotTimer {
    /// The slot's one live heap entry; others are stale. Never later than
    /// `deadline`.
    armed: Option<Instant>,
    /// When the session next wants to act.
    deadline: Option<Instant>,
}

/// What to do with a heap entry that came up.
#[derive(Debug, PartialEq)]
enum Entry {
    /// Superseded by an earlier entry (or the timer was cleared): drop it.
    Stale,
    /// The session's deadline is here: wake it.
    Due,
    /// The deadline moved later: push this entry instead.
    Rearm(Instant),
}

impl SlotTimer {
    /// Records the session's next deadline; returns the entry to push, if
    /// the heap needs one.
    fn set(&mut self, deadline: Instant) -> Option<Instant> {
        self.deadline = Some(deadline);
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return None;
        }
        self.armed = Some(deadline);
        Some(deadline)
    }

    /// The heap entry `at` came up at `now`.
    fn came_up(&mut self, at: Instant, now: Instant) -> Entry {
        if self.armed != Some(at) {
            return Entry::Stale;
        }
        match self.deadline {
            Some(deadline) if deadline > now => {
                self.armed = Some(deadline);
                Entry::Rearm(deadline)
            }
            _ => {
                self.armed = None;
                Entry::Due
            }
        }
    }
}

/// Counts one datagram's wait in its log2 bucket.
fn record_wait(waits: &[AtomicU64; WAIT_BUCKETS], waited: Duration) {
    let us = waited.as_micros().min(u64::MAX as u128) as u64;
    let bucket = (63 - (us | 1).leading_zeros() as usize).min(WAIT_BUCKETS - 1);
    waits[bucket].fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_step_is_contained_and_a_value_passes_through() {
        assert_eq!(unwind_safely(|| 7), Some(7));
        assert_eq!(unwind_safely(|| -> u8 { panic!("str0m bug") }), None);
    }

    #[test]
    fn a_later_deadline_keeps_the_heap_entry_and_rearms_when_it_comes_up() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timer = SlotTimer::default();
        assert_eq!(timer.set(ms(10)), Some(ms(10)));
        // Later deadlines push nothing.
        assert_eq!(timer.set(ms(12)), None);
        assert_eq!(timer.set(ms(15)), None);
        // The entry comes up before the deadline: armed for the deadline.
        assert_eq!(timer.came_up(ms(10), ms(10)), Entry::Rearm(ms(15)));
        assert_eq!(timer.armed, Some(ms(15)));
        assert_eq!(timer.came_up(ms(15), ms(15)), Entry::Due);
        assert_eq!(timer.armed, None);
        // With nothing armed, the next deadline pushes.
        assert_eq!(timer.set(ms(40)), Some(ms(40)));
    }

    #[test]
    fn an_earlier_deadline_pushes_and_the_old_entry_goes_stale() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timer = SlotTimer::default();
        assert_eq!(timer.set(ms(30)), Some(ms(30)));
        assert_eq!(timer.set(ms(20)), Some(ms(20)));
        // An equal deadline is already covered.
        assert_eq!(timer.set(ms(20)), None);
        assert_eq!(timer.came_up(ms(20), ms(21)), Entry::Due);
        assert_eq!(timer.came_up(ms(30), ms(30)), Entry::Stale);
        // An entry served late, after the deadline it stands for moved
        // but is already past too, wakes the session instead of re-arming.
        assert_eq!(timer.set(ms(50)), Some(ms(50)));
        assert_eq!(timer.set(ms(55)), None);
        assert_eq!(timer.came_up(ms(50), ms(56)), Entry::Due);
    }

    #[test]
    fn keys_carry_slot_and_generation() {
        let key = (7u64 << 32) | 42;
        assert_eq!(split(key), (42, 7));
        assert_ne!(key, WAKE_KEY);
    }
}
