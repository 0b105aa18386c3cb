//! A media worker: one thread per core, owning whole rooms and every
//! participant's `Rtc` in them.
//!
//! The loop is the str0m recipe: feed each datagram and timeout into the
//! `Rtc` it belongs to, then poll every touched `Rtc` until it yields a
//! timeout, sending what it transmits and acting on its events. Acting on an
//! `RtpPacket` event writes into other participants' `Rtc`s, which are then
//! polled in turn. Commands from the control handle arrive on a channel and
//! run between batches, so no state is ever shared.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::mpsc as std_mpsc;
use str0m::bwe::{Bitrate, BweKind};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::RtpPacket;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use veil_media::extensions::base_rtc_config;
use veil_media::packet::stun;

use super::batch_io::send_batch;
use super::event_queue::EventQueue;
use super::guard::guarded;
use super::participant::{
    DATA_LOW_WATER, Inbound, Key, OutState, Participant, RoomStats, TrackIn, data_envelope,
    new_track_out,
};
use super::receiver::{Datagram, Route, RouteBus, Router};
use super::socket_reader::SocketReader;
use super::{Command, ControlError, JoinError, Joined, ParticipantEvent, Role, TrackKind};
use crate::config::SfuConfig;
use crate::forward::layer::{Layer, MAX_LAYER, allocate_layers, bitrate_goals};
use crate::forward::quality::assess;
use crate::forward::speaker::{SpeakerConfig, SpeakerDetector};

/// Datagrams read per wake-up before timers and commands get a turn.
const RECV_BATCH: usize = 256;
/// Remote addresses remembered per participant (ICE may try several).
const MAX_ADDRS_PER_PARTICIPANT: usize = 8;
/// How often layer targets and speaker rankings are re-evaluated.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// How often str0m reports loss and RTT (connection quality, NACK/PLI metrics).
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Audio bitrate reserved per audio track when splitting a subscriber's estimate.
const AUDIO_RESERVE_BPS: u64 = 64_000;

/// What a worker is given at start.
pub(crate) struct WorkerSetup {
    pub config: SfuConfig,
    pub index: usize,
    /// A clone of the node's socket, used for sending only.
    pub send_socket: std::net::UdpSocket,
    pub candidate_addr: SocketAddr,
    pub inbound: mpsc::Receiver<Datagram>,
    pub commands: mpsc::Receiver<Command>,
    pub routes: RouteBus,
    pub recycle: std_mpsc::Sender<Vec<u8>>,
    /// Our passive ICE-TCP candidate, when TCP is enabled.
    pub tcp_candidate: Option<SocketAddr>,
    /// The node's participant count, shared by all workers.
    pub participants: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// A one-worker node's socket and routing: the worker reads the port
    /// itself instead of a receive thread (see `socket_reader`).
    pub own_socket: Option<(std::net::UdpSocket, Router)>,
}

pub(crate) fn run(setup: WorkerSetup) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("cannot start the SFU worker runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let WorkerSetup {
            config,
            index,
            send_socket,
            candidate_addr,
            inbound,
            commands,
            routes,
            recycle,
            tcp_candidate,
            participants,
            own_socket,
        } = setup;
        let reader = match own_socket.map(|(socket, router)| SocketReader::new(socket, router)) {
            Some(Ok(reader)) => Some(reader),
            Some(Err(e)) => {
                warn!("the SFU worker cannot watch its UDP socket: {e}");
                return;
            }
            None => None,
        };
        let mut worker = Worker::new(config, index, send_socket, candidate_addr, routes, recycle);
        worker.tcp_candidate = tcp_candidate;
        worker.load = participants;
        worker.run(inbound, commands, reader).await
    });
}

struct Slot {
    generation: u32,
    /// Boxed because a `Participant` is about 11 KB (str0m's `Rtc` alone is
    /// 10 KB) and `slots` grows by doubling: inline, the spare capacity
    /// held up to that much per slot never used (11 KB per subscriber in
    /// `sfu-throughput`), and every growth moved the live sessions.
    participant: Option<Box<Participant>>,
    dirty: bool,
    /// Packets were written to the session since it was last polled.
    written: bool,
}

struct Room {
    name: String,
    members: Vec<Key>,
    speakers: SpeakerDetector<Key>,
    /// Loudest audio publishers, refreshed every housekeeping tick.
    loudest: Vec<Key>,
    active_speakers: Vec<String>,
}

/// The counters the media path bumps on every packet, looked up once: a
/// `metrics::counter!` call hashes its name and labels each time, which
/// the profile of `sfu-throughput` showed at about 4% of the worker's CPU.
/// They bind to the recorder installed when the worker starts.
struct HotCounters {
    rtp_in: metrics::Counter,
    rtp_bytes_in: metrics::Counter,
    rtp_forwarded: metrics::Counter,
    rtp_bytes_out: metrics::Counter,
    datagrams_out: metrics::Counter,
    loop_seconds: metrics::Histogram,
    transit_seconds: metrics::Histogram,
}

impl HotCounters {
    fn new() -> Self {
        HotCounters {
            rtp_in: metrics::counter!("veil_sfu_rtp_in_total"),
            rtp_bytes_in: metrics::counter!("veil_sfu_rtp_bytes_in_total"),
            rtp_forwarded: metrics::counter!("veil_sfu_rtp_forwarded_total"),
            rtp_bytes_out: metrics::counter!("veil_sfu_rtp_bytes_out_total"),
            datagrams_out: metrics::counter!("veil_sfu_datagrams_out_total"),
            loop_seconds: metrics::histogram!("veil_sfu_loop_seconds"),
            transit_seconds: metrics::histogram!(crate::telemetry::TRANSIT_SECONDS),
        }
    }
}

struct Worker {
    config: SfuConfig,
    counters: HotCounters,
    index: usize,
    send_socket: std::net::UdpSocket,
    /// Datagrams produced in this batch, sent with one `sendmmsg` per 32.
    outbox: Vec<(SocketAddr, Vec<u8>)>,
    /// When each datagram read this turn reached the socket.
    arrivals: Vec<Instant>,
    /// ICE-TCP frames to send, and the connections they go out on.
    tcp_outbox: Vec<(SocketAddr, Vec<u8>)>,
    tcp_conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    tcp_candidate: Option<SocketAddr>,
    /// The node's participant count (shared with the other workers).
    load: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    routes: RouteBus,
    recycle: std_mpsc::Sender<Vec<u8>>,
    /// The address in our ICE candidate; str0m matches datagrams against it.
    candidate_addr: SocketAddr,
    slots: Vec<Slot>,
    /// When each slot's session next needs `handle_timeout` (`None`: empty
    /// slot). Kept apart from `slots` because the timer scans walk it every
    /// turn: a `Slot` holds a whole `Rtc` (kilobytes), so reading one
    /// `Instant` per participant from `slots` cost a cache miss each.
    deadlines: Vec<Option<Instant>>,
    free: Vec<u32>,
    by_addr: HashMap<SocketAddr, Key>,
    by_ufrag: HashMap<String, Key>,
    rooms: Vec<Option<Room>>,
    room_index: HashMap<String, usize>,
    dirty: Vec<Key>,
    /// Sessions that ended while being polled; removed after the batch.
    dead: Vec<Key>,
    events: Vec<(Key, Event)>,
    draining: bool,
    next_housekeeping: Instant,
}

enum Wake {
    Datagram(Option<Datagram>),
    /// The worker's own socket gave a batch (one-worker nodes).
    Read,
    Command(Option<Command>),
    Timer,
}

/// A batch from the worker's own socket, or never without one.
async fn read_own(reader: &mut Option<SocketReader>) {
    match reader {
        Some(reader) => reader.read().await,
        None => std::future::pending().await,
    }
}

impl Worker {
    fn new(
        config: SfuConfig,
        index: usize,
        send_socket: std::net::UdpSocket,
        candidate_addr: SocketAddr,
        routes: RouteBus,
        recycle: std_mpsc::Sender<Vec<u8>>,
    ) -> Self {
        info!(worker = index, %candidate_addr, "SFU worker started");
        Worker {
            config,
            counters: HotCounters::new(),
            index,
            send_socket,
            outbox: Vec::new(),
            arrivals: Vec::new(),
            tcp_outbox: Vec::new(),
            tcp_conns: HashMap::new(),
            tcp_candidate: None,
            load: Default::default(),
            routes,
            recycle,
            candidate_addr,
            slots: Vec::new(),
            deadlines: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            rooms: Vec::new(),
            room_index: HashMap::new(),
            dirty: Vec::new(),
            dead: Vec::new(),
            events: Vec::new(),
            draining: false,
            next_housekeeping: Instant::now(),
        }
    }

    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Datagram>,
        mut commands: mpsc::Receiver<Command>,
        mut reader: Option<SocketReader>,
    ) {
        let mut pending: Option<Datagram> = None;
        // Closed when nothing feeds the queue: a one-worker node without
        // ICE-TCP reads its socket itself and has no receive thread.
        let mut inbound_open = true;
        loop {
            let now = Instant::now();
            if let Some(reader) = reader.as_mut() {
                let udp_addr = self.candidate_addr;
                reader.drain(now, |data, source, arrived| {
                    self.arrivals.push(arrived);
                    self.on_bytes(data, source, Protocol::Udp, udp_addr, now)
                });
            }
            let batch = pending
                .take()
                .into_iter()
                .chain(std::iter::from_fn(|| inbound.try_recv().ok()))
                .take(RECV_BATCH + 1);
            for d in batch {
                self.arrivals.push(d.received_at);
                self.on_datagram(d, now);
            }
            while let Ok(command) = commands.try_recv() {
                self.on_command(command, now);
            }
            self.on_timeouts(now);
            if now >= self.next_housekeeping {
                self.housekeeping(now);
                self.next_housekeeping = now + HOUSEKEEPING;
            }
            self.drive(now);
            if self.flush() > 0 {
                // Each datagram read this turn waited for all of the turn's
                // output: its transit ends here.
                let sent = Instant::now();
                for &arrived in &self.arrivals {
                    self.counters
                        .transit_seconds
                        .record(sent.saturating_duration_since(arrived).as_secs_f64());
                }
            }
            self.arrivals.clear();
            self.counters
                .loop_seconds
                .record(now.elapsed().as_secs_f64());

            let deadline = self.next_deadline();
            let wake = tokio::select! {
                d = inbound.recv(), if inbound_open => Wake::Datagram(d),
                () = read_own(&mut reader) => Wake::Read,
                c = commands.recv() => Wake::Command(c),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Datagram(d) => {
                    inbound_open = d.is_some();
                    pending = d;
                }
                Wake::Read => {}
                Wake::Command(Some(command)) => self.on_command(command, Instant::now()),
                Wake::Command(None) => {
                    info!(worker = self.index, "SFU handle dropped; worker stops");
                    return;
                }
                Wake::Timer => {}
            }
        }
    }

    /// Sends everything the batch produced; returns how many UDP datagrams
    /// the kernel took.
    fn flush(&mut self) -> usize {
        for (destination, frame) in self.tcp_outbox.drain(..) {
            let delivered = self
                .tcp_conns
                .get(&destination)
                .is_some_and(|c| c.try_send(frame).is_ok());
            if !delivered {
                metrics::counter!("veil_sfu_dropped_total", "reason" => "tcp_send_failed")
                    .increment(1);
            }
        }
        if self.outbox.is_empty() {
            return 0;
        }
        let sent = send_batch(&self.send_socket, &self.outbox);
        let dropped = self.outbox.len() - sent;
        self.counters.datagrams_out.increment(sent as u64);
        if dropped > 0 {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "send_failed")
                .increment(dropped as u64);
        }
        self.outbox.clear();
        sent
    }

    fn next_deadline(&self) -> Instant {
        self.deadlines
            .iter()
            .flatten()
            .fold(self.next_housekeeping, |a, b| a.min(*b))
    }

    /// The participant at `key`, unless gone or broken (a broken one waits
    /// in `dead` for removal and is not touched again).
    fn get(&self, key: Key) -> Option<&Participant> {
        let slot = self.slots.get(key.index as usize)?;
        (slot.generation == key.generation)
            .then_some(slot.participant.as_deref()?)
            .filter(|p| !p.broken)
    }

    fn get_mut(&mut self, key: Key) -> Option<&mut Participant> {
        let slot = self.slots.get_mut(key.index as usize)?;
        (slot.generation == key.generation)
            .then_some(slot.participant.as_deref_mut()?)
            .filter(|p| !p.broken)
    }

    fn mark_dirty(&mut self, key: Key) {
        if let Some(slot) = self.slots.get_mut(key.index as usize)
            && slot.generation == key.generation
            && !slot.dirty
        {
            slot.dirty = true;
            self.dirty.push(key);
        }
    }

    fn find(&self, room: &str, participant: &str) -> Option<Key> {
        let r = self.rooms[*self.room_index.get(room)?].as_ref()?;
        r.members
            .iter()
            .copied()
            .find(|k| self.get(*k).is_some_and(|p| p.id == participant))
    }

    fn unknown(room: &str, participant: &str) -> ControlError {
        ControlError::UnknownParticipant {
            room: room.into(),
            participant: participant.into(),
        }
    }

    // ---- network input ----------------------------------------------------

    fn on_datagram(&mut self, datagram: Datagram, now: Instant) {
        match (datagram.tcp, self.tcp_candidate) {
            (Some(reply), Some(tcp_addr)) => {
                self.tcp_conns.insert(datagram.source, reply);
                self.on_bytes(
                    &datagram.data,
                    datagram.source,
                    Protocol::Tcp,
                    tcp_addr,
                    now,
                );
            }
            (Some(_), None) => {}
            (None, _) => {
                let udp_addr = self.candidate_addr;
                self.on_bytes(
                    &datagram.data,
                    datagram.source,
                    Protocol::Udp,
                    udp_addr,
                    now,
                );
                let _ = self.recycle.send(datagram.data);
            }
        }
    }

    fn on_bytes(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        proto: Protocol,
        destination: SocketAddr,
        now: Instant,
    ) {
        let key = match self.by_addr.get(&source) {
            Some(key) => *key,
            None => {
                let Some(key) = stun::server_ufrag(data)
                    .and_then(|u| self.by_ufrag.get(u))
                    .copied()
                else {
                    metrics::counter!("veil_sfu_dropped_total", "reason" => "unknown_source")
                        .increment(1);
                    return;
                };
                self.by_addr.insert(source, key);
                let Some(p) = self.get_mut(key) else { return };
                p.addrs.push(source);
                if p.addrs.len() > MAX_ADDRS_PER_PARTICIPANT {
                    let old = p.addrs.remove(0);
                    self.by_addr.remove(&old);
                }
                key
            }
        };
        let Ok(contents) = data.try_into() else {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "malformed").increment(1);
            return;
        };
        let Some(p) = self.get_mut(key) else { return };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        match p.guarded("handle_input", |rtc| rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(participant = %p.id, "rejected datagram: {e}");
                metrics::counter!("veil_sfu_dropped_total", "reason" => "rejected").increment(1);
            }
            Err(_) => {
                self.dead.push(key);
                return;
            }
        }
        // str0m holds at most one received RTP packet until the next
        // poll_output, so the sender is polled right away. Subscribers it
        // writes to are only marked dirty and polled once per batch.
        self.poll(key, now);
        self.handle_events(now);
    }

    fn handle_events(&mut self, now: Instant) {
        let mut events = std::mem::take(&mut self.events);
        for (from, event) in events.drain(..) {
            self.on_event(from, event, now);
        }
        self.events = events;
    }

    fn on_timeouts(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (index, deadline) in self.deadlines.iter().enumerate() {
            if deadline.is_none_or(|d| d > now) {
                continue;
            }
            let slot = &mut self.slots[index];
            if let Some(p) = slot.participant.as_mut()
                && !p.broken
            {
                let key = Key {
                    index: index as u32,
                    generation: slot.generation,
                };
                if !p.handle_timeout(now) {
                    self.dead.push(key);
                    continue;
                }
                due.push(key);
            }
        }
        for key in due {
            self.mark_dirty(key);
        }
    }

    // ---- polling ----------------------------------------------------------

    /// Polls every touched participant until all are quiet, acting on events.
    fn drive(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            if let Some(slot) = self.slots.get_mut(key.index as usize) {
                slot.dirty = false;
            }
            if let Some(p) = self.get_mut(key) {
                p.negotiate();
            }
            self.poll(key, now);
            self.handle_events(now);
        }
        while let Some(key) = self.dead.pop() {
            self.remove(key, "connection closed", true);
        }
    }

    fn poll(&mut self, key: Key, now: Instant) {
        let Worker {
            slots,
            deadlines,
            outbox,
            tcp_outbox,
            events,
            dead,
            ..
        } = self;
        let Some(slot) = slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
        else {
            return;
        };
        let written = std::mem::take(&mut slot.written);
        let Some(p) = slot.participant.as_mut().filter(|p| !p.broken) else {
            return;
        };
        // Packets written to a session wait in str0m until its next
        // `handle_timeout`, so after a write `poll_output` asks for a
        // timeout that is already due. Serving it here, once, sends them in
        // this turn instead of the worker's next one (another wake-up, two
        // timer scans and the added latency). After a write it is served
        // first, without the `poll_output` (a walk of every subsystem for
        // the next deadline) that would only say it is due.
        let mut served_due_timeout = false;
        if written {
            served_due_timeout = true;
            if !p.handle_timeout(now) {
                dead.push(key);
                return;
            }
        }
        loop {
            if !p.rtc.is_alive() {
                dead.push(key);
                return;
            }
            let Ok(output) = p.guarded("poll_output", Rtc::poll_output) else {
                dead.push(key);
                return;
            };
            match output {
                Ok(Output::Transmit(t)) => match t.proto {
                    Protocol::Udp => outbox.push((t.destination, t.contents.into())),
                    _ => tcp_outbox.push((t.destination, t.contents.into())),
                },
                Ok(Output::Timeout(t)) if t <= now && !served_due_timeout => {
                    served_due_timeout = true;
                    if !p.handle_timeout(now) {
                        dead.push(key);
                        return;
                    }
                }
                Ok(Output::Timeout(t)) => {
                    deadlines[key.index as usize] = Some(t);
                    return;
                }
                Ok(Output::Event(e)) => events.push((key, e)),
                Err(e) => {
                    warn!(participant = %p.id, "session failed: {e}");
                    p.rtc.disconnect();
                    dead.push(key);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, from: Key, event: Event, now: Instant) {
        match event {
            Event::RtpPacket(packet) => self.forward(from, packet, now),
            Event::Connected => {
                if let Some(p) = self.get(from) {
                    info!(participant = %p.id, room = %p.room, "connected");
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.remove(from, "connection lost", true);
            }
            Event::MediaAdded(m)
                if matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) =>
            {
                let rids = m
                    .simulcast
                    .map(|s| s.recv.iter().map(|l| l.rid).collect())
                    .unwrap_or_default();
                self.publish(from, m.mid, m.kind, rids);
            }
            Event::MediaAdded(m) if m.direction == Direction::SendOnly => {
                // An m-line the participant offered to receive on (WHEP).
                if let Some(p) = self.get_mut(from)
                    && matches!(p.role, Role::Viewer { .. })
                {
                    p.offered_slots.push((m.mid, m.kind));
                    self.mark_dirty(from);
                }
            }
            Event::MediaChanged(change)
                if matches!(change.direction, Direction::Inactive | Direction::SendOnly) =>
            {
                self.unpublish(from, change.mid);
            }
            Event::KeyframeRequest(req) => {
                let Some(p) = self.get(from) else { return };
                let Some(out) = p
                    .tracks_out
                    .iter()
                    .find(|t| matches!(t.state, OutState::Open(mid, _) if mid == req.mid))
                else {
                    return;
                };
                let (source, mid) = (out.source, out.source_mid);
                let layer = out.selector.current().unwrap_or(out.selector.target());
                self.request_keyframe(source, mid, layer, req.kind, now);
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Some(p) = self.get_mut(from) {
                    p.egress_estimate_bps = Some(estimate.as_u64());
                }
                self.update_layers(from, now);
            }
            Event::PeerStats(stats) => {
                let quality = assess(
                    stats.ingress_loss_fraction,
                    stats.egress_loss_fraction,
                    stats.rtt,
                );
                let Some(p) = self.get_mut(from) else { return };
                if p.quality == Some(quality) {
                    return;
                }
                p.quality = Some(quality);
                let (participant, room) = (p.id.clone(), p.room_slot);
                for member in self.members(room) {
                    if let Some(m) = self.get_mut(member) {
                        m.notify(ParticipantEvent::ConnectionQuality {
                            participant: participant.clone(),
                            quality,
                        });
                    }
                }
            }
            Event::MediaEgressStats(stats) => {
                if let Some(p) = self.get_mut(from) {
                    p.record_feedback(
                        stats.mid,
                        stats.rid,
                        true,
                        stats.nacks,
                        stats.plis + stats.firs,
                    );
                }
            }
            Event::MediaIngressStats(stats) => {
                if let Some(p) = self.get_mut(from) {
                    p.record_feedback(
                        stats.mid,
                        stats.rid,
                        false,
                        stats.nacks,
                        stats.plis + stats.firs,
                    );
                }
            }
            Event::ChannelOpen(id, _) => {
                if let Some(p) = self.get_mut(from) {
                    p.channel = Some(id);
                    if let Some(mut channel) = p.rtc.channel(id) {
                        channel.set_buffered_amount_low_threshold(DATA_LOW_WATER);
                    }
                    p.drain_data();
                }
            }
            Event::ChannelBufferedAmountLow(_)
                if self.get_mut(from).is_some_and(|p| p.drain_data()) =>
            {
                self.mark_dirty(from);
            }
            Event::ChannelData(data) => self.relay_data(from, &data.data),
            Event::StreamPaused(paused) if paused.paused => {
                let Some(p) = self.get(from) else { return };
                let Some(track) = p.tracks_in.iter().find(|t| t.mid == paused.mid) else {
                    return;
                };
                let layer = track.layer_of(paused.rid);
                let room = p.room_slot;
                for sub in self.members(room) {
                    if let Some(s) = self.get_mut(sub) {
                        for out in s
                            .tracks_out
                            .iter_mut()
                            .filter(|t| t.source == from && t.source_mid == paused.mid)
                        {
                            out.selector.layer_stopped(layer);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn members(&self, room: usize) -> Vec<Key> {
        self.rooms
            .get(room)
            .and_then(|r| r.as_ref())
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    // ---- media ------------------------------------------------------------

    fn publish(&mut self, from: Key, mid: Mid, kind: MediaKind, rids: Vec<str0m::media::Rid>) {
        let max_tracks = self.config.max_tracks_per_participant;
        let Some(p) = self.get_mut(from) else { return };
        if p.tracks_in.iter().any(|t| t.mid == mid) {
            return;
        }
        if !p.role.may_publish() {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "not_allowed_to_publish")
                .increment(1);
            p.notify(ParticipantEvent::Error {
                message: format!(
                    "your token does not allow publishing: track {mid} is not forwarded"
                ),
            });
            return;
        }
        if p.tracks_in.len() >= max_tracks {
            warn!(participant = %p.id, "track limit reached; not forwarding mid {mid}");
            metrics::counter!("veil_sfu_dropped_total", "reason" => "track_limit").increment(1);
            p.notify(ParticipantEvent::Error {
                message: format!(
                    "track limit of {max_tracks} reached: track {mid} is not forwarded"
                ),
            });
            return;
        }
        let label = p
            .rtc
            .media(mid)
            .map(|m| m.track_id().to_string())
            .unwrap_or_else(|| mid.to_string());
        p.tracks_in.push(TrackIn {
            mid,
            label,
            kind,
            rids,
            rates: Default::default(),
            structures: Default::default(),
            last_keyframe_request: Default::default(),
            announced: None,
            muted: false,
            over_cap: Default::default(),
        });
        let id = p.id.clone();
        let room = p.room_slot;
        let (kind_name, track_kind) = if kind == MediaKind::Audio {
            ("audio", TrackKind::Audio)
        } else {
            ("video", TrackKind::Video)
        };
        metrics::counter!("veil_sfu_tracks_published_total", "kind" => kind_name).increment(1);
        for sub in self.members(room) {
            if sub == from {
                continue;
            }
            let track_out = {
                let Some(p) = self.get(from) else { return };
                let Some(track) = p.tracks_in.last() else {
                    return;
                };
                new_track_out(from, &id, track)
            };
            if let Some(s) = self.get_mut(sub) {
                if !s.unsubscribed.contains(&from) && s.role.receives(&id, track_out.kind) {
                    s.tracks_out.push(track_out);
                }
                s.notify(ParticipantEvent::TrackPublished {
                    participant: id.clone(),
                    track: mid.to_string(),
                    kind: track_kind,
                });
            }
            self.mark_dirty(sub);
        }
    }

    /// The publisher stopped sending a track (renegotiated it inactive).
    fn unpublish(&mut self, from: Key, mid: Mid) {
        let Some(p) = self.get_mut(from) else { return };
        let before = p.tracks_in.len();
        p.tracks_in.retain(|t| t.mid != mid);
        if p.tracks_in.len() == before {
            return;
        }
        // Indexes into tracks_in moved; the cache refills on the next packet.
        p.ssrc_map.clear();
        let (id, room) = (p.id.clone(), p.room_slot);
        for sub in self.members(room) {
            if sub == from {
                continue;
            }
            if let Some(s) = self.get_mut(sub) {
                s.drop_source(from, Some(mid));
                s.notify(ParticipantEvent::TrackUnpublished {
                    participant: id.clone(),
                    track: mid.to_string(),
                });
            }
            self.mark_dirty(sub);
        }
    }

    /// Starts or stops sending `publisher`'s tracks to `subscriber`.
    fn subscribe(&mut self, subscriber: Key, publisher: Key, subscribed: bool) {
        let Some(publ) = self.get(publisher) else {
            return;
        };
        let new_outs: Vec<_> = publ
            .tracks_in
            .iter()
            .map(|t| new_track_out(publisher, &publ.id, t))
            .collect();
        let publisher_id = publ.id.clone();
        let Some(s) = self.get_mut(subscriber) else {
            return;
        };
        if !s.role.receives_from(&publisher_id) {
            return;
        }
        if subscribed {
            s.unsubscribed.retain(|k| *k != publisher);
            for out in new_outs {
                if !s.role.receives(&publisher_id, out.kind) {
                    continue;
                }
                let present = s.tracks_out.iter().any(|t| {
                    t.source == publisher
                        && t.source_mid == out.source_mid
                        && !matches!(t.state, OutState::ToStop(_) | OutState::NegotiatingStop(_))
                });
                if !present {
                    s.tracks_out.push(out);
                }
            }
        } else {
            if !s.unsubscribed.contains(&publisher) {
                s.unsubscribed.push(publisher);
            }
            s.drop_source(publisher, None);
        }
        self.mark_dirty(subscriber);
    }

    /// Forwards one packet from `from` to every subscriber in its room.
    fn forward(&mut self, from: Key, packet: RtpPacket, now: Instant) {
        // Everything that arrived counts as received, dropped or not.
        self.counters.rtp_in.increment(1);
        self.counters
            .rtp_bytes_in
            .increment(packet.payload.len() as u64);
        let Some(p) = self.get_mut(from) else { return };
        p.packets_in += 1;
        let Some((index, layer)) = p.resolve_ssrc(packet.header.ssrc) else {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "unknown_ssrc").increment(1);
            return;
        };
        let Some(params) = p
            .rtc
            .codec_config()
            .find(|c| c.pt() == packet.header.payload_type)
            .copied()
        else {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "unknown_payload_type")
                .increment(1);
            return;
        };
        let room_slot = p.room_slot;
        let track = &mut p.tracks_in[index];
        track.rates[layer as usize].add(packet.payload.len(), now);
        let (mid, kind) = (track.mid, track.kind);
        if track.muted {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "muted").increment(1);
            return;
        }
        if track.over_cap[layer as usize] {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "over_bitrate_cap")
                .increment(1);
            return;
        }
        let keyframe = kind == MediaKind::Video && track.is_keyframe_start(layer, &packet);

        let Some(room) = self.rooms.get_mut(room_slot).and_then(|r| r.as_mut()) else {
            return;
        };
        if kind == MediaKind::Audio {
            if let Some(level) = packet.header.ext_vals.audio_level {
                room.speakers.observe(from, level.unsigned_abs(), now);
            }
            if room.members.len() > self.config.loudest_audio_threshold
                && !room
                    .loudest
                    .iter()
                    .take(self.config.loudest_audio)
                    .any(|k| *k == from)
            {
                metrics::counter!("veil_sfu_dropped_total", "reason" => "not_loudest").increment(1);
                return;
            }
        }
        let members = std::mem::take(&mut room.members);
        let mut wanted: [bool; MAX_LAYER as usize + 1] = [false; MAX_LAYER as usize + 1];
        let inbound = Inbound {
            source: from,
            source_mid: mid,
            layer,
            keyframe_start: keyframe,
            params: &params,
            packet: &packet,
        };
        let mut written = 0u64;
        for &sub in &members {
            if sub == from {
                continue;
            }
            let Some(s) = self.get_mut(sub) else { continue };
            let result = s.forward(&inbound, now);
            if let Some(l) = result.wants_keyframe {
                wanted[l as usize] = true;
            }
            if result.switched {
                metrics::counter!("veil_sfu_layer_switches_total").increment(1);
            }
            if result.written {
                written += 1;
                self.mark_dirty(sub);
                if let Some(slot) = self.slots.get_mut(sub.index as usize) {
                    slot.written = true;
                }
            }
        }
        self.counters.rtp_forwarded.increment(written);
        self.counters
            .rtp_bytes_out
            .increment(written * packet.payload.len() as u64);
        if let Some(room) = self.rooms.get_mut(room_slot).and_then(|r| r.as_mut()) {
            room.members = members;
        }
        for (l, want) in wanted.iter().enumerate() {
            if *want {
                self.request_keyframe(from, mid, l as Layer, KeyframeRequestKind::Pli, now);
            }
        }
    }

    /// Relays an opaque data-channel message to everyone else in the room.
    fn relay_data(&mut self, from: Key, payload: &[u8]) {
        let Some(p) = self.get(from) else { return };
        metrics::counter!("veil_sfu_data_messages_in_total").increment(1);
        if !p.role.may_send_data() {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "not_allowed_to_send_data")
                .increment(1);
            return;
        }
        let framed = data_envelope(&p.id, payload);
        for sub in self.members(p.room_slot) {
            if sub == from {
                continue;
            }
            // WHIP/WHEP sessions have no data channel to queue for.
            let relayed = self
                .get_mut(sub)
                .is_some_and(|s| s.role.has_data_channel() && s.relay_data(&framed));
            if relayed {
                self.mark_dirty(sub);
            }
        }
    }

    /// Asks a publisher for a keyframe on one layer, at most once per interval.
    fn request_keyframe(
        &mut self,
        publisher: Key,
        mid: Mid,
        layer: Layer,
        kind: KeyframeRequestKind,
        now: Instant,
    ) {
        let interval = self.config.keyframe_request_interval;
        let Some(p) = self.get_mut(publisher) else {
            return;
        };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        let last = &mut track.last_keyframe_request[layer as usize];
        if last.is_some_and(|t| now.saturating_duration_since(t) < interval) {
            return;
        }
        *last = Some(now);
        let rid = track
            .rids
            .iter()
            .copied()
            .find(|r| track.layer_of(Some(*r)) == layer);
        if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(kind);
            metrics::counter!("veil_sfu_keyframe_requests_total").increment(1);
        }
        self.mark_dirty(publisher);
    }

    /// Recomputes the target layer of each video track a subscriber receives.
    fn update_layers(&mut self, subscriber: Key, now: Instant) {
        let Some(s) = self.get(subscriber) else {
            return;
        };
        // (publisher, its mid, the highest layer this subscriber wants)
        let sources: Vec<(Key, Mid, Layer)> = s
            .tracks_out
            .iter()
            .filter(|t| t.kind == MediaKind::Video)
            .map(|t| (t.source, t.source_mid, t.max_layer))
            .collect();
        let audio_reserve = (s.tracks_out.len() - sources.len()) as u64 * AUDIO_RESERVE_BPS;
        let budget = s
            .egress_estimate_bps
            .map(|e| e.saturating_sub(audio_reserve));
        // Per video track: (wanted layer, its publisher's layer rates).
        let tracks: Vec<(Layer, [Option<u64>; MAX_LAYER as usize + 1])> = sources
            .iter()
            .map(|(src, mid, max_layer)| {
                let rates = self
                    .get(*src)
                    .and_then(|p| p.tracks_in.iter().find(|t| t.mid == *mid))
                    .map(|t| t.layer_rates(now))
                    .unwrap_or_default();
                (*max_layer, rates)
            })
            .collect();
        let layers = allocate_layers(budget, &tracks);
        let mut wanted = Vec::new();
        let Some(s) = self.get_mut(subscriber) else {
            return;
        };
        let (mut minimum, mut desired) = (audio_reserve, audio_reserve);
        for (((src, mid, _), (_, rates)), layer) in sources.iter().zip(&tracks).zip(layers) {
            if let Some(out) = s
                .tracks_out
                .iter_mut()
                .find(|t| t.source == *src && t.source_mid == *mid)
            {
                if out.selector.set_target(layer) {
                    wanted.push((*src, *mid, layer));
                }
                let (min, want) = bitrate_goals(out.max_layer, layer, rates);
                minimum += min;
                desired += want;
            }
        }
        // Tell the congestion controller what to probe for; only on real
        // changes, since repeating the goal does not probe again anyway.
        let (old_min, old_desired) = s.bwe_goals;
        let moved = |old: u64, new: u64| old.abs_diff(new) * 10 > old.max(1);
        if moved(old_min, minimum) || moved(old_desired, desired) {
            s.bwe_goals = (minimum, desired);
            s.rtc
                .bwe()
                .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
            self.mark_dirty(subscriber);
        }
        for (src, mid, layer) in wanted {
            self.request_keyframe(src, mid, layer, KeyframeRequestKind::Pli, now);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        for room_slot in 0..self.rooms.len() {
            let Some(room) = self.rooms[room_slot].as_mut() else {
                continue;
            };
            room.loudest = room.speakers.ranking(now);
            let Some(ranking) = room.speakers.poll(now) else {
                continue;
            };
            let names: Vec<String> = ranking
                .iter()
                .filter_map(|k| {
                    let slot = self.slots.get(k.index as usize)?;
                    (slot.generation == k.generation)
                        .then(|| slot.participant.as_ref().map(|p| p.id.clone()))?
                })
                .collect();
            if let Some(room) = self.rooms[room_slot].as_mut() {
                room.active_speakers = names.clone();
            }
            for member in self.members(room_slot) {
                if let Some(p) = self.get_mut(member) {
                    p.notify(ParticipantEvent::ActiveSpeakers {
                        speakers: names.clone(),
                    });
                }
            }
        }
        let keys: Vec<Key> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.participant.is_some())
            .map(|(i, s)| Key {
                index: i as u32,
                generation: s.generation,
            })
            .collect();
        for key in keys {
            if self.get(key).is_some_and(|p| p.events_overflowed) {
                self.remove(key, "its signalling stopped reading events", true);
                continue;
            }
            self.update_layers(key, now);
            // SCTP frees room without always saying so; retry backlogs here.
            if self
                .get_mut(key)
                .is_some_and(|p| !p.data_backlog.is_empty() && p.drain_data())
            {
                self.mark_dirty(key);
            }
        }
        self.dynacast();
        self.enforce_bitrate_cap(now);
        // One series per worker: each knows only its own rooms, and a
        // shared series would show whichever worker wrote last. Sum them.
        let worker = self.index.to_string();
        metrics::gauge!("veil_sfu_participants", "worker" => worker.clone())
            .set(self.by_ufrag.len() as f64);
        metrics::gauge!("veil_sfu_rooms", "worker" => worker.clone())
            .set(self.room_index.len() as f64);
        let tracks: usize = self
            .slots
            .iter()
            .filter_map(|s| s.participant.as_ref())
            .map(|p| p.tracks_in.len())
            .sum();
        metrics::gauge!("veil_sfu_tracks_published", "worker" => worker).set(tracks as f64);
    }

    /// Stops forwarding streams above the per-stream bitrate cap (a broken
    /// or hostile publisher must not flood its room), asks the publisher to
    /// slow down (REMB) and tells it why.
    fn enforce_bitrate_cap(&mut self, now: Instant) {
        let cap = self.config.max_stream_bitrate_bps;
        for slot in &mut self.slots {
            let Some(p) = slot.participant.as_mut() else {
                continue;
            };
            let mut changes = Vec::new();
            for track in &mut p.tracks_in {
                let rates: Vec<Option<u64>> = track.rates.iter().map(|r| r.bps(now)).collect();
                for (layer, rate) in rates.iter().enumerate() {
                    let over = rate.is_some_and(|r| r > cap);
                    if over != track.over_cap[layer] {
                        track.over_cap[layer] = over;
                        let rid = track
                            .rids
                            .iter()
                            .copied()
                            .find(|r| track.layer_of(Some(*r)) as usize == layer);
                        changes.push((track.mid, rid, over, rate.unwrap_or(0)));
                    }
                }
            }
            for (mid, rid, over, rate) in changes {
                if over {
                    metrics::counter!("veil_sfu_bitrate_cap_hits_total").increment(1);
                    if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, rid) {
                        rx.request_remb(Bitrate::bps(cap));
                    }
                    let layer = rid.map(|r| format!(" layer {r}")).unwrap_or_default();
                    p.notify(ParticipantEvent::Error {
                        message: format!(
                            "track {mid}{layer} sends {} kbit/s, over the {} kbit/s cap: not forwarded until it slows down",
                            rate / 1000,
                            cap / 1000
                        ),
                    });
                }
            }
        }
    }

    /// Tells each publisher which of its video layers anyone still wants.
    ///
    /// A subscriber's wish is its size preference (`max_layer`), not its
    /// bandwidth: a layer the network cannot carry today may fit tomorrow, and
    /// a paused layer could never be measured again.
    fn dynacast(&mut self) {
        let mut wanted: HashMap<(Key, Mid), Layer> = HashMap::new();
        for slot in &self.slots {
            let Some(p) = slot.participant.as_ref() else {
                continue;
            };
            for out in p.tracks_out.iter().filter(|t| t.kind == MediaKind::Video) {
                if matches!(
                    out.state,
                    OutState::ToStop(_) | OutState::NegotiatingStop(_)
                ) {
                    continue;
                }
                let layer = wanted.entry((out.source, out.source_mid)).or_insert(0);
                *layer = (*layer).max(out.max_layer);
            }
        }
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let generation = slot.generation;
            let Some(p) = slot.participant.as_mut() else {
                continue;
            };
            let key = Key {
                index: index as u32,
                generation,
            };
            let mut announce = Vec::new();
            for track in p
                .tracks_in
                .iter_mut()
                .filter(|t| t.kind == MediaKind::Video)
            {
                let max_layer = wanted.get(&(key, track.mid)).copied();
                if track.announced != Some(max_layer) {
                    track.announced = Some(max_layer);
                    announce.push((track.mid.to_string(), max_layer));
                }
            }
            for (track, max_layer) in announce {
                metrics::counter!("veil_sfu_dynacast_updates_total").increment(1);
                p.notify(ParticipantEvent::LayersWanted { track, max_layer });
            }
        }
    }

    // ---- control ----------------------------------------------------------

    fn on_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Join {
                room,
                participant,
                offer,
                role,
                reply,
            } => {
                let _ = reply.send(self.join(room, participant, offer, role, now));
            }
            Command::Answer {
                room,
                participant,
                answer,
                reply,
            } => {
                let result = match self.find(&room, &participant) {
                    None => Err(Self::unknown(&room, &participant)),
                    Some(key) => match self.get_mut(key) {
                        None => Err(Self::unknown(&room, &participant)),
                        Some(p) => {
                            let r = p.accept_answer(answer);
                            if p.broken {
                                self.dead.push(key);
                            }
                            self.mark_dirty(key);
                            r
                        }
                    },
                };
                let _ = reply.send(result);
            }
            Command::Offer {
                room,
                participant,
                offer,
                reply,
            } => {
                let result = match self
                    .find(&room, &participant)
                    .and_then(|k| Some((k, self.get_mut(k)?)))
                {
                    None => Err(Self::unknown(&room, &participant)),
                    Some((key, p)) => {
                        let r = match p
                            .guarded("accept_offer", |rtc| rtc.sdp_api().accept_offer(offer))
                        {
                            Ok(r) => r.map_err(|e| ControlError::BadSdp(e.to_string())),
                            Err(panicked) => {
                                self.dead.push(key);
                                let _ = reply.send(Err(ControlError::BadSdp(panicked.to_string())));
                                return;
                            }
                        };
                        if r.is_ok() {
                            p.reset_negotiation();
                        }
                        // An ICE restart gives us new credentials: demux by the new ufrag.
                        let ufrag = p.rtc.direct_api().local_ice_credentials().ufrag;
                        if ufrag != p.ufrag {
                            let old = std::mem::replace(&mut p.ufrag, ufrag.clone());
                            self.by_ufrag.remove(&old);
                            self.by_ufrag.insert(ufrag.clone(), key);
                            self.routes.send(Route::Remove { ufrag: old });
                            self.routes.send(Route::Add {
                                ufrag,
                                worker: self.index,
                            });
                            metrics::counter!("veil_sfu_ice_restarts_total").increment(1);
                        }
                        self.mark_dirty(key);
                        r
                    }
                };
                let _ = reply.send(result);
            }
            Command::Leave {
                room,
                participant,
                reason,
                reply,
            } => {
                let result = match self.find(&room, &participant) {
                    None => Err(Self::unknown(&room, &participant)),
                    Some(key) => {
                        self.remove(key, &reason, false);
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Command::SetMaxLayer {
                room,
                subscriber,
                publisher,
                layer,
                reply,
            } => {
                let result = match (self.find(&room, &subscriber), self.find(&room, &publisher)) {
                    (Some(sub), Some(publ)) => {
                        if let Some(s) = self.get_mut(sub) {
                            for out in s.tracks_out.iter_mut().filter(|t| t.source == publ) {
                                out.max_layer = layer.min(MAX_LAYER);
                            }
                        }
                        self.update_layers(sub, now);
                        Ok(())
                    }
                    (None, _) => Err(Self::unknown(&room, &subscriber)),
                    (_, None) => Err(Self::unknown(&room, &publisher)),
                };
                let _ = reply.send(result);
            }
            Command::Subscribe {
                room,
                subscriber,
                publisher,
                subscribed,
                reply,
            } => {
                let result = match (self.find(&room, &subscriber), self.find(&room, &publisher)) {
                    (Some(sub), Some(publ)) if sub != publ => {
                        self.subscribe(sub, publ, subscribed);
                        Ok(())
                    }
                    (None, _) | (Some(_), Some(_)) => Err(Self::unknown(&room, &subscriber)),
                    (_, None) => Err(Self::unknown(&room, &publisher)),
                };
                let _ = reply.send(result);
            }
            Command::SetMuted {
                room,
                participant,
                kind,
                muted,
                reply,
            } => {
                let result = match self.find(&room, &participant) {
                    None => Err(Self::unknown(&room, &participant)),
                    Some(key) => {
                        let media = match kind {
                            TrackKind::Audio => MediaKind::Audio,
                            TrackKind::Video => MediaKind::Video,
                        };
                        let room_slot = self.get_mut(key).map(|p| {
                            for t in p.tracks_in.iter_mut().filter(|t| t.kind == media) {
                                t.muted = muted;
                            }
                            p.room_slot
                        });
                        for member in room_slot.map(|r| self.members(r)).unwrap_or_default() {
                            if let Some(m) = self.get_mut(member) {
                                m.notify(ParticipantEvent::TrackMuted {
                                    participant: participant.clone(),
                                    kind,
                                    muted,
                                });
                            }
                        }
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Command::Stats { room, reply } => {
                let stats = self
                    .room_index
                    .get(&room)
                    .and_then(|i| self.rooms[*i].as_ref())
                    .map(|r| RoomStats {
                        room: r.name.clone(),
                        participants: r
                            .members
                            .iter()
                            .filter_map(|k| self.get(*k))
                            .map(|p| p.stats())
                            .collect(),
                        active_speakers: r.active_speakers.clone(),
                        worker: self.index,
                    })
                    .unwrap_or_else(|| RoomStats {
                        room,
                        worker: self.index,
                        ..Default::default()
                    });
                let _ = reply.send(stats);
            }
            Command::Rooms { reply } => {
                let rooms = self
                    .room_index
                    .iter()
                    .filter_map(|(name, &slot)| {
                        let r = self.rooms.get(slot)?.as_ref()?;
                        Some((name.clone(), r.members.len()))
                    })
                    .collect();
                let _ = reply.send(rooms);
            }
            Command::MoveRoom { room, reply } => {
                let members = self
                    .room_index
                    .get(&room)
                    .map(|&slot| self.members(slot))
                    .unwrap_or_default();
                let mut told = 0;
                for key in members {
                    if let Some(p) = self.get_mut(key) {
                        p.notify(ParticipantEvent::NodeDraining);
                        told += 1;
                    }
                }
                info!(%room, told, "room moved elsewhere: its participants were told to rejoin");
                let _ = reply.send(told);
            }
            Command::Drain => {
                self.draining = true;
                info!("draining: no new participants; asking everyone to move");
                for slot in &mut self.slots {
                    if let Some(p) = slot.participant.as_mut() {
                        p.notify(ParticipantEvent::NodeDraining);
                    }
                }
            }
        }
    }

    fn join(
        &mut self,
        room: String,
        id: String,
        offer: str0m::change::SdpOffer,
        role: Role,
        now: Instant,
    ) -> Result<Joined, JoinError> {
        if self.draining {
            return Err(JoinError::Draining);
        }
        if let Some(&slot) = self.room_index.get(&room)
            && let Some(r) = self.rooms[slot].as_ref()
        {
            if r.members.len() >= self.config.max_participants_per_room {
                return Err(JoinError::RoomFull(room));
            }
            if self.find(&room, &id).is_some() {
                return Err(JoinError::DuplicateParticipant(id));
            }
        }
        // The egress estimate (and str0m's pacer with it) chooses video
        // layers; a session sent no video gets neither. Transport-wide
        // feedback serves that estimate here and the client's own for the
        // video it sends, so it is negotiated only when one of them runs.
        // Without it str0m keeps no per-packet send record (80 KiB per
        // session) and the peer sends no feedback every 50 ms.
        let estimates_egress = self.config.bandwidth_estimation && role.receives_video();
        let mut config = base_rtc_config();
        if !estimates_egress && !offers_video(&offer) {
            config = without_transport_wide_feedback(config);
        }
        let mut rtc = config
            .set_ice_lite(true)
            .enable_bwe(estimates_egress.then(|| Bitrate::bps(self.config.initial_bandwidth_bps)))
            .set_bwe_pace_media(self.config.pace_media)
            .set_stats_interval(Some(STATS_INTERVAL))
            .set_send_buffer_video(self.config.resend_buffer_video.max(1))
            .build(now);
        let candidate = Candidate::host(self.candidate_addr, "udp")
            .map_err(|e| JoinError::BadOffer(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        if let Some(tcp_addr) = self.tcp_candidate {
            let tcp = Candidate::builder()
                .tcp()
                .host(tcp_addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| JoinError::BadOffer(e.to_string()))?;
            rtc.add_local_candidate(tcp);
        }
        let answer = guarded("accept_offer", || rtc.sdp_api().accept_offer(offer))
            .map_err(|e| JoinError::BadOffer(e.to_string()))?
            .map_err(|e| JoinError::BadOffer(e.to_string()))?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;

        let room_slot = match self.room_index.get(&room) {
            Some(slot) => *slot,
            None => {
                let slot = self
                    .rooms
                    .iter()
                    .position(|r| r.is_none())
                    .unwrap_or_else(|| {
                        self.rooms.push(None);
                        self.rooms.len() - 1
                    });
                self.rooms[slot] = Some(Room {
                    name: room.clone(),
                    members: Vec::new(),
                    speakers: SpeakerDetector::new(SpeakerConfig::default()),
                    loudest: Vec::new(),
                    active_speakers: Vec::new(),
                });
                self.room_index.insert(room.clone(), slot);
                slot
            }
        };

        let (events_tx, events) = EventQueue::new(self.config.event_queue);
        let mut participant = Participant {
            id: id.clone(),
            room: room.clone(),
            room_slot,
            rtc,
            ufrag: ufrag.clone(),
            addrs: Vec::new(),
            events: events_tx,
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            pending: None,
            channel: None,
            data_backlog: Default::default(),
            data_backlog_bytes: 0,
            broken: false,
            data_dropped: 0,
            unsubscribed: Vec::new(),
            ssrc_map: Vec::new(),
            egress_estimate_bps: None,
            bwe_goals: (0, 0),
            quality: None,
            feedback_seen: Vec::new(),
            packets_in: 0,
            packets_out: 0,
            events_dropped: 0,
            events_overflowed: false,
            role,
            offered_slots: Vec::new(),
        };
        let existing = self.members(room_slot);
        for &other in &existing {
            let Some(o) = self.get_mut(other) else {
                continue;
            };
            o.notify(ParticipantEvent::ParticipantJoined {
                participant: id.clone(),
                e2ee: participant.role.end_to_end_encrypted(),
                name: None,
            });
            participant.notify(ParticipantEvent::ParticipantJoined {
                participant: o.id.clone(),
                e2ee: o.role.end_to_end_encrypted(),
                name: None,
            });
            // Grades go out only when they change, so a latecomer would
            // otherwise never learn the grade of a member whose link is steady.
            if let Some(quality) = o.quality {
                participant.notify(ParticipantEvent::ConnectionQuality {
                    participant: o.id.clone(),
                    quality,
                });
            }
            for track in o
                .tracks_in
                .iter()
                .filter(|t| participant.role.receives(&o.id, t.kind))
            {
                participant
                    .tracks_out
                    .push(new_track_out(other, &o.id, track));
            }
        }

        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    participant: None,
                    dirty: false,
                    written: false,
                });
                self.deadlines.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.participant = Some(Box::new(participant));
        self.deadlines[index as usize] = Some(now);
        let key = Key {
            index,
            generation: slot.generation,
        };
        self.by_ufrag.insert(ufrag.clone(), key);
        self.routes.send(Route::Add {
            ufrag,
            worker: self.index,
        });
        if let Some(r) = self.rooms[room_slot].as_mut() {
            r.members.push(key);
        }
        self.mark_dirty(key);
        info!(%room, participant = %id, "joined");
        metrics::counter!("veil_sfu_joins_total").increment(1);
        self.load.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Joined { answer, events })
    }

    /// Ends a participant's session and tells the room. `rejoin`: the
    /// session was lost rather than ended on purpose, so joining again
    /// makes sense (see [`ParticipantEvent::Disconnected`]).
    fn remove(&mut self, key: Key, reason: &str, rejoin: bool) {
        let Some(slot) = self
            .slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
        else {
            return;
        };
        let Some(mut p) = slot.participant.take() else {
            return;
        };
        self.deadlines[key.index as usize] = None;
        self.load.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        slot.generation = slot.generation.wrapping_add(1);
        slot.dirty = false;
        slot.written = false;
        self.free.push(key.index);
        self.by_ufrag.remove(&p.ufrag);
        self.routes.send(Route::Remove {
            ufrag: p.ufrag.clone(),
        });
        for addr in &p.addrs {
            self.by_addr.remove(addr);
            self.tcp_conns.remove(addr);
        }
        p.notify(ParticipantEvent::Disconnected {
            reason: reason.to_string(),
            rejoin,
        });
        // A participant whose stack panicked is not touched again.
        if !p.broken {
            p.rtc.disconnect();
        }
        info!(room = %p.room, participant = %p.id, reason, "left");

        let room_slot = p.room_slot;
        let Some(room) = self.rooms.get_mut(room_slot).and_then(|r| r.as_mut()) else {
            return;
        };
        room.members.retain(|k| *k != key);
        room.speakers.remove(&key);
        if room.members.is_empty() {
            self.room_index.remove(&room.name);
            self.rooms[room_slot] = None;
            return;
        }
        for other in self.members(room_slot) {
            if let Some(o) = self.get_mut(other) {
                o.drop_source(key, None);
                o.notify(ParticipantEvent::ParticipantLeft {
                    participant: p.id.clone(),
                });
            }
            self.mark_dirty(other);
        }
    }
}

/// Whether an offer has a video m-line (in either direction).
fn offers_video(offer: &str0m::change::SdpOffer) -> bool {
    offer
        .to_sdp_string()
        .lines()
        .any(|line| line.starts_with("m=video"))
}

/// `config` without the transport-wide sequence number extension: the
/// session's packets then carry no such number and its peer sends no
/// transport-wide feedback (an RTCP packet every 50 ms per receiving peer).
fn without_transport_wide_feedback(mut config: str0m::RtcConfig) -> str0m::RtcConfig {
    let mut kept = str0m::rtp::ExtensionMap::empty();
    for (id, extension) in config.extension_map().iter() {
        if *extension != str0m::rtp::Extension::TransportSequenceNumber {
            kept.set(id, extension.clone());
        }
    }
    config.set_extension_map(kept)
}
