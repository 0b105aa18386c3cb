//! One participant's WebRTC session and its published and subscribed tracks.
//!
//! A [`Participant`] owns its str0m `Rtc`. Its methods only touch its own
//! state; whatever involves two participants (forwarding, keyframe relay) is
//! the worker's job, which hands each side what it needs.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use str0m::{Input, Rtc};

/// Bytes in flight on a participant's data channel (SCTP's buffer) above
/// which relayed messages wait in the SFU's own backlog instead.
pub(crate) const DATA_HIGH_WATER: usize = 1024 * 1024;
/// When SCTP's buffer falls below this, the backlog drains into it.
pub(crate) const DATA_LOW_WATER: usize = 256 * 1024;
/// Most bytes a participant's backlog may hold; beyond it messages to that
/// participant are dropped (counted): memory per participant stays bounded
/// even when one never reads.
pub(crate) const MAX_DATA_BACKLOG: usize = 16 * 1024 * 1024;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc};
use tracing::warn;
use veil_media::extensions::DependencyDescriptorBytes;

use super::event_queue::{EventQueue, Pushed};
use super::guard::{Panicked, guarded};
use veil_media::packet::dependency_descriptor::{DependencyDescriptor, DependencyStructure};
use veil_media::packet::vp8::Vp8Descriptor;

use super::ParticipantEvent;
use crate::forward::layer::{Layer, LayerDecision, LayerSelector, MAX_LAYER, layer_of_rid};
use crate::forward::quality::ConnectionQuality;
use crate::forward::rewrite::StreamRewriter;

/// Index of a participant in the worker's table plus a generation, so a
/// stale key never reaches a newer participant in a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub index: u32,
    pub generation: u32,
}

/// Bitrate of one simulcast layer over a sliding one-second window.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    last_bps: Option<u64>,
    last_packet: Option<Instant>,
}

impl RateMeter {
    pub fn add(&mut self, bytes: usize, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed.as_millis() >= 1000 {
            self.last_bps = Some(self.bytes * 8 * 1000 / elapsed.as_millis() as u64);
            self.bytes = 0;
            self.window_start = Some(now);
        }
        self.bytes += bytes as u64;
        self.last_packet = Some(now);
    }

    /// Recent bitrate, or `None` if the layer has not arrived for a second.
    pub fn bps(&self, now: Instant) -> Option<u64> {
        let recent = self
            .last_packet
            .is_some_and(|t| now.saturating_duration_since(t).as_millis() < 1000);
        recent.then(|| self.last_bps.unwrap_or(1))
    }
}

/// A track this participant publishes.
#[derive(Debug)]
pub(crate) struct TrackIn {
    pub mid: Mid,
    /// The publisher's own track id (SDP msid), e.g. `screen`.
    pub label: String,
    pub kind: MediaKind,
    pub rids: Vec<Rid>,
    pub rates: [RateMeter; MAX_LAYER as usize + 1],
    pub structures: [Option<DependencyStructure>; MAX_LAYER as usize + 1],
    pub last_keyframe_request: [Option<Instant>; MAX_LAYER as usize + 1],
    /// Muted by a moderator: not forwarded.
    pub muted: bool,
    /// Layers over the node's bitrate cap: not forwarded.
    pub over_cap: [bool; MAX_LAYER as usize + 1],
    /// Highest layer last announced to the publisher as wanted (dynacast);
    /// `Some(None)` means "nobody watches, pause".
    pub announced: Option<Option<Layer>>,
}

impl TrackIn {
    pub fn layer_of(&self, rid: Option<Rid>) -> Layer {
        let Some(rid) = rid else { return 0 };
        let declared: Vec<&str> = self.rids.iter().map(|r| &**r).collect();
        layer_of_rid(&rid, &declared)
    }

    /// Recent bitrate of each layer that subscribers may get: layers not
    /// arriving, or over the bitrate cap, count as absent.
    pub fn layer_rates(&self, now: Instant) -> [Option<u64>; MAX_LAYER as usize + 1] {
        std::array::from_fn(|i| self.rates[i].bps(now).filter(|_| !self.over_cap[i]))
    }

    /// Whether the packet starts a keyframe, from the Dependency Descriptor
    /// when the sender attaches one, else from the clear VP8 descriptor.
    pub fn is_keyframe_start(&mut self, layer: Layer, packet: &RtpPacket) -> bool {
        if let Some(raw) = DependencyDescriptorBytes::of(&packet.header.ext_vals) {
            let known = self.structures[layer as usize].as_ref();
            return match DependencyDescriptor::parse(raw.as_bytes(), known) {
                Ok(dd) => {
                    let keyframe = dd.is_keyframe_start();
                    if let Some(s) = dd.structure {
                        self.structures[layer as usize] = Some(s);
                    }
                    keyframe
                }
                Err(_) => {
                    metrics::counter!("veil_sfu_malformed_total", "what" => "dependency_descriptor")
                        .increment(1);
                    false
                }
            };
        }
        Vp8Descriptor::parse(&packet.payload).is_ok_and(|d| d.keyframe)
    }
}

/// Stream `(mid, rid, egress)` and its cumulative (NACKs, PLIs+FIRs).
pub(crate) type FeedbackSeen = ((Mid, Option<Rid>, bool), u64, u64);

/// Negotiation state of a remote track sent to this participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    ToOpen,
    Negotiating(Mid),
    Open(Mid, Ssrc),
    ToStop(Mid),
    NegotiatingStop(Mid),
}

/// A remote track this participant receives.
#[derive(Debug)]
pub(crate) struct TrackOut {
    /// msid track id offered to the subscriber: `<publisher>.<publisher's track id>`.
    pub track_id: String,
    pub source: Key,
    pub source_id: String,
    pub source_mid: Mid,
    pub kind: MediaKind,
    pub state: OutState,
    pub rewriter: StreamRewriter,
    pub selector: LayerSelector,
    pub max_layer: Layer,
    /// Last payload type mapping (publisher pt → our pt).
    pub pt_cache: Option<(Pt, Pt)>,
    pub packets: u64,
}

/// One participant.
pub(crate) struct Participant {
    pub id: String,
    pub room: String,
    /// Index of the room in the worker's room table.
    pub room_slot: usize,
    pub rtc: Rtc,
    pub ufrag: String,
    /// Remote addresses learned from ICE, for the demux table.
    pub addrs: Vec<std::net::SocketAddr>,
    pub events: EventQueue,
    /// An event that must arrive found the queue full: the worker ends
    /// the session at its next housekeeping (see [`EventQueue`]).
    pub events_overflowed: bool,
    pub tracks_in: Vec<TrackIn>,
    pub tracks_out: Vec<TrackOut>,
    pub pending: Option<SdpPendingOffer>,
    /// Publishers this participant chose not to receive.
    pub unsubscribed: Vec<Key>,
    /// The participant's data channel, once open.
    pub channel: Option<str0m::channel::ChannelId>,
    /// Relayed messages waiting for room in the data channel, in order.
    pub data_backlog: std::collections::VecDeque<Arc<[u8]>>,
    pub data_backlog_bytes: usize,
    /// The WebRTC stack panicked on this participant's input: its `Rtc` is
    /// not used again, and the worker drops it (see `guard`).
    pub broken: bool,
    /// Data messages dropped because this participant's channel was backed up.
    pub data_dropped: u64,
    /// Incoming SSRC → (index in `tracks_in`, layer).
    pub ssrc_map: Vec<(Ssrc, usize, Layer)>,
    pub egress_estimate_bps: Option<u64>,
    /// Cumulative (NACKs, PLIs+FIRs) per (mid, rid, egress) last seen in
    /// str0m's stats, to turn them into metric increments.
    pub feedback_seen: Vec<FeedbackSeen>,
    /// Latest connection grade, from str0m's peer stats.
    pub quality: Option<ConnectionQuality>,
    /// Last `(minimum, desired)` given to str0m's BWE.
    pub bwe_goals: (u64, u64),
    pub packets_in: u64,
    pub packets_out: u64,
    pub events_dropped: u64,
    /// What kind of session this is (full participant, WHIP, WHEP).
    pub role: super::Role,
    /// Send m-lines the participant offered itself (WHEP), free to carry
    /// remote tracks: (mid, kind).
    pub offered_slots: Vec<(Mid, MediaKind)>,
}

/// Per-participant counters in [`RoomStats`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ParticipantStats {
    /// Identity.
    pub participant: String,
    /// Published tracks.
    pub tracks_published: usize,
    /// Remote tracks negotiated to this participant.
    pub tracks_subscribed: usize,
    /// RTP packets received from this participant.
    pub packets_in: u64,
    /// RTP packets forwarded to this participant.
    pub packets_out: u64,
    /// Current egress bandwidth estimate towards them (TWCC), bits/s.
    pub egress_estimate_bps: Option<u64>,
    /// Video layer (0 = lowest) forwarded to them per remote publisher.
    pub video_layers: Vec<(String, Option<Layer>)>,
    /// Simulcast layer switches made for them.
    pub layer_switches: u64,
    /// Connection grade, once measured.
    pub connection_quality: Option<ConnectionQuality>,
}

/// A room snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomStats {
    /// Room name.
    pub room: String,
    /// Everyone present.
    pub participants: Vec<ParticipantStats>,
    /// Current active speakers, loudest first.
    pub active_speakers: Vec<String>,
    /// The media worker (thread) that hosts the room.
    pub worker: usize,
}

impl Participant {
    /// Queues an event for the participant's signalling; never blocks the
    /// media path. A consumer that does not keep up loses replaceable
    /// snapshots (counted); one that does not read at all loses its session
    /// (see [`EventQueue`]).
    pub fn notify(&mut self, event: ParticipantEvent) {
        match self.events.push(event) {
            Pushed::Queued => {}
            Pushed::Dropped => {
                self.events_dropped += 1;
                metrics::counter!("veil_sfu_events_dropped_total").increment(1);
            }
            Pushed::Overflowed => {
                if !self.events_overflowed {
                    metrics::counter!("veil_sfu_event_overflows_total").increment(1);
                    warn!(room = %self.room, participant = %self.id, "signalling is not reading this session's events");
                }
                self.events_overflowed = true;
            }
        }
    }

    /// Counts NACK and keyframe-request feedback from a stats report.
    /// `egress`: on a stream we send (feedback from the participant);
    /// otherwise on one we receive (feedback we sent).
    pub fn record_feedback(
        &mut self,
        mid: Mid,
        rid: Option<Rid>,
        egress: bool,
        nacks: u64,
        plis: u64,
    ) {
        let key = (mid, rid, egress);
        let (old_nacks, old_plis) = match self.feedback_seen.iter_mut().find(|(k, _, _)| *k == key)
        {
            Some(entry) => {
                let old = (entry.1, entry.2);
                (entry.1, entry.2) = (nacks, plis);
                old
            }
            None => {
                self.feedback_seen.push((key, nacks, plis));
                (0, 0)
            }
        };
        let direction = if egress { "received" } else { "sent" };
        metrics::counter!("veil_sfu_nacks_total", "direction" => direction)
            .increment(nacks.saturating_sub(old_nacks));
        metrics::counter!("veil_sfu_keyframe_feedback_total", "direction" => direction)
            .increment(plis.saturating_sub(old_plis));
    }

    /// Maps an incoming SSRC to (published track index, layer), caching it.
    pub fn resolve_ssrc(&mut self, ssrc: Ssrc) -> Option<(usize, Layer)> {
        if let Some((_, t, l)) = self.ssrc_map.iter().find(|(s, _, _)| *s == ssrc) {
            return Some((*t, *l));
        }
        let (mid, rid) = {
            let mut api = self.rtc.direct_api();
            let rx = api.stream_rx(&ssrc)?;
            (rx.mid(), rx.rid())
        };
        let index = self.tracks_in.iter().position(|t| t.mid == mid)?;
        let layer = self.tracks_in[index].layer_of(rid);
        self.ssrc_map.push((ssrc, index, layer));
        Some((index, layer))
    }

    /// Writes a packet from another participant's track to this one, if it is
    /// subscribed and the layer logic lets it through. Returns whether a
    /// keyframe of `(source, layer)` is wanted and whether anything was written.
    pub fn forward(&mut self, inbound: &Inbound, now: Instant) -> ForwardResult {
        let Inbound {
            source,
            source_mid,
            layer,
            keyframe_start,
            params,
            packet,
        } = *inbound;
        // Until ICE and DTLS are up, packets would only queue in str0m and
        // reach the subscriber seconds late; the keyframe it asks for once
        // connected starts its video instead.
        if !self.rtc.is_connected() {
            return ForwardResult::default();
        }
        let Some(out) = self
            .tracks_out
            .iter_mut()
            .find(|t| t.source == source && t.source_mid == source_mid)
        else {
            return ForwardResult::default();
        };
        let OutState::Open(_, ssrc) = out.state else {
            return ForwardResult::default();
        };
        let decision = match out.kind {
            MediaKind::Video => out.selector.on_packet(layer, keyframe_start),
            MediaKind::Audio => LayerDecision::Forward,
        };
        let mut switched = false;
        let wants_keyframe = out
            .selector
            .pending()
            .filter(|_| out.kind == MediaKind::Video);
        match decision {
            LayerDecision::Drop => {
                return ForwardResult {
                    wants_keyframe,
                    ..Default::default()
                };
            }
            LayerDecision::SwitchAndForward => {
                out.rewriter.switch_source();
                switched = true;
            }
            LayerDecision::Forward => {}
        }
        let Some(rewritten) = out
            .rewriter
            .rewrite(*packet.seq_no, packet.header.timestamp, now)
        else {
            return ForwardResult::default();
        };
        let pt = match out.pt_cache {
            Some((from, to)) if from == packet.header.payload_type => to,
            _ => {
                let Some(to) = self
                    .rtc
                    .codec_config()
                    .match_params(*params)
                    .map(|p| p.pt())
                else {
                    metrics::counter!("veil_sfu_dropped_total", "reason" => "no_common_codec")
                        .increment(1);
                    return ForwardResult::default();
                };
                out.pt_cache = Some((packet.header.payload_type, to));
                to
            }
        };
        let src = &packet.header.ext_vals;
        let ext = ExtensionValues {
            audio_level: src.audio_level,
            voice_activity: src.voice_activity,
            video_orientation: src.video_orientation,
            user_values: src.user_values.clone(),
            ..Default::default()
        };
        let nackable = out.kind == MediaKind::Video;
        out.packets += 1;
        let seq: SeqNo = rewritten.seq.into();
        let write = RtpWrite::new(
            pt,
            seq,
            rewritten.timestamp,
            packet.timestamp,
            packet.payload.clone(),
        )
        .marker(packet.header.marker)
        .ext_vals(ext)
        .nackable(nackable);
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx(&ssrc) else {
            return ForwardResult::default();
        };
        stream.write_rtp(write);
        self.packets_out += 1;
        ForwardResult {
            wants_keyframe,
            written: true,
            switched,
        }
    }

    /// Starts an SDP renegotiation if remote tracks must be added or removed
    /// and none is in flight. Returns true when an offer was sent.
    pub fn negotiate(&mut self) -> bool {
        // The common case first, on what `forward` just touched: no track
        // is waiting to open or close, for either kind of session.
        let changing = self.tracks_out.iter().any(|t| {
            matches!(
                t.state,
                OutState::ToOpen | OutState::ToStop(_) | OutState::NegotiatingStop(_)
            )
        });
        if !changing {
            return false;
        }
        if matches!(self.role, super::Role::Viewer { .. }) {
            self.bind_offered_slots();
            return false;
        }
        if self.pending.is_some() {
            return false;
        }
        let needed = self
            .tracks_out
            .iter()
            .any(|t| matches!(t.state, OutState::ToOpen | OutState::ToStop(_)));
        if !needed {
            return false;
        }
        let mut change = self.rtc.sdp_api();
        for track in &mut self.tracks_out {
            match track.state {
                OutState::ToOpen => {
                    let mid = change.add_media(
                        track.kind,
                        Direction::SendOnly,
                        Some(track.source_id.clone()),
                        Some(track.track_id.clone()),
                        None,
                    );
                    track.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(mid) => {
                    change.stop_media(mid);
                    track.state = OutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        let Some((offer, pending)) = change.apply() else {
            return false;
        };
        self.pending = Some(pending);
        self.notify(ParticipantEvent::Offer { offer });
        true
    }

    /// A viewer (WHEP) cannot be renegotiated: remote tracks go into the
    /// send m-lines of its own offer, one track per free m-line of the same
    /// kind; a track that ends frees its m-line for the next.
    fn bind_offered_slots(&mut self) {
        self.tracks_out
            .retain(|t| !matches!(t.state, OutState::ToStop(_) | OutState::NegotiatingStop(_)));
        for i in 0..self.tracks_out.len() {
            if !matches!(self.tracks_out[i].state, OutState::ToOpen) {
                continue;
            }
            let kind = self.tracks_out[i].kind;
            let free = self.offered_slots.iter().find(|(mid, k)| {
                *k == kind
                    && !self
                        .tracks_out
                        .iter()
                        .any(|t| matches!(t.state, OutState::Open(m, _) if m == *mid))
            });
            let Some(&(mid, _)) = free else { continue };
            let ssrc = self
                .rtc
                .direct_api()
                .stream_tx_by_mid(mid, None)
                .map(|s| s.ssrc());
            if let Some(ssrc) = ssrc {
                self.tracks_out[i].state = OutState::Open(mid, ssrc);
            }
        }
    }

    /// Hands `now` to the session's timers under [`guarded`]. Returns false
    /// when str0m panicked: the participant is then broken.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        self.guarded("timeout", |rtc| rtc.handle_input(Input::Timeout(now)))
            .is_ok()
    }

    /// Runs `f` on this participant's `Rtc` under [`guarded`]; a panic
    /// marks the participant broken (the worker then drops it).
    pub fn guarded<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&mut Rtc) -> T,
    ) -> Result<T, Panicked> {
        let result = guarded(what, || f(&mut self.rtc));
        self.broken |= result.is_err();
        result
    }

    /// Applies the participant's answer to our last offer.
    ///
    /// A refused answer puts the offered changes back to "to do", so the
    /// next offer carries them again: the tracks must not wait forever for
    /// an answer that already came and failed.
    pub fn accept_answer(&mut self, answer: SdpAnswer) -> Result<(), super::ControlError> {
        let pending = self
            .pending
            .take()
            .ok_or(super::ControlError::NoPendingOffer)?;
        let accepted = self
            .guarded("accept_answer", |rtc| {
                rtc.sdp_api().accept_answer(pending, answer)
            })
            .map_err(|panicked| super::ControlError::BadSdp(panicked.to_string()))
            .and_then(|r| r.map_err(|e| super::ControlError::BadSdp(e.to_string())));
        if let Err(e) = accepted {
            self.reset_negotiation();
            return Err(e);
        }
        for track in &mut self.tracks_out {
            if let OutState::Negotiating(mid) = track.state {
                let ssrc = self
                    .rtc
                    .direct_api()
                    .stream_tx_by_mid(mid, None)
                    .map(|s| s.ssrc());
                track.state = match ssrc {
                    Some(ssrc) => OutState::Open(mid, ssrc),
                    None => OutState::ToStop(mid),
                };
            }
        }
        self.tracks_out
            .retain(|t| !matches!(t.state, OutState::NegotiatingStop(_)));
        Ok(())
    }

    /// After accepting a remote offer, roll our own half-done changes back to
    /// "to do" so they are offered again.
    pub fn reset_negotiation(&mut self) {
        self.pending = None;
        for track in &mut self.tracks_out {
            track.state = match track.state {
                OutState::Negotiating(_) => OutState::ToOpen,
                OutState::NegotiatingStop(mid) => OutState::ToStop(mid),
                s => s,
            };
        }
    }

    /// Stops everything received from `source` (it left or unpublished).
    pub fn drop_source(&mut self, source: Key, mid: Option<Mid>) {
        self.tracks_out.retain_mut(|t| {
            if t.source != source || mid.is_some_and(|m| m != t.source_mid) {
                return true;
            }
            match t.state {
                OutState::ToOpen => false,
                OutState::Negotiating(m) | OutState::Open(m, _) => {
                    t.state = OutState::ToStop(m);
                    true
                }
                _ => true,
            }
        });
    }

    /// Relays a data message (already framed with [`data_envelope`]),
    /// keeping order: straight into SCTP while it has room, else into the
    /// backlog. Returns whether anything was written to the channel.
    pub fn relay_data(&mut self, framed: &Arc<[u8]>) -> bool {
        if self.data_backlog_bytes + framed.len() > MAX_DATA_BACKLOG {
            self.data_dropped += 1;
            metrics::counter!("veil_sfu_dropped_total", "reason" => "data_backlog_full")
                .increment(1);
            return false;
        }
        self.data_backlog_bytes += framed.len();
        self.data_backlog.push_back(framed.clone());
        self.drain_data()
    }

    /// Moves backlog into the data channel until SCTP's buffer is high.
    pub fn drain_data(&mut self) -> bool {
        let Some(mut channel) = self.channel.and_then(|id| self.rtc.channel(id)) else {
            return false;
        };
        let mut wrote = false;
        while channel.buffered_amount() < DATA_HIGH_WATER {
            let Some(next) = self.data_backlog.front() else {
                break;
            };
            match channel.write(true, next) {
                // SCTP has no room for it yet: keep it first in line.
                Ok(false) => break,
                Ok(true) => wrote = true,
                Err(_) => {
                    metrics::counter!("veil_sfu_dropped_total", "reason" => "data_write_failed")
                        .increment(1);
                }
            }
            if let Some(done) = self.data_backlog.pop_front() {
                self.data_backlog_bytes -= done.len();
            }
        }
        wrote
    }

    pub fn stats(&self) -> ParticipantStats {
        ParticipantStats {
            participant: self.id.clone(),
            tracks_published: self.tracks_in.len(),
            tracks_subscribed: self
                .tracks_out
                .iter()
                .filter(|t| matches!(t.state, OutState::Open(..)))
                .count(),
            packets_in: self.packets_in,
            packets_out: self.packets_out,
            egress_estimate_bps: self.egress_estimate_bps,
            video_layers: self
                .tracks_out
                .iter()
                .filter(|t| t.kind == MediaKind::Video)
                .map(|t| (t.source_id.clone(), t.selector.current()))
                .collect(),
            layer_switches: self.tracks_out.iter().map(|t| t.selector.switches()).sum(),
            connection_quality: self.quality,
        }
    }
}

/// One received packet on its way to subscribers, with what the SFU
/// learned about it once for all of them.
#[derive(Clone, Copy)]
pub(crate) struct Inbound<'a> {
    pub source: Key,
    pub source_mid: Mid,
    pub layer: Layer,
    pub keyframe_start: bool,
    pub params: &'a PayloadParams,
    pub packet: &'a RtpPacket,
}

/// Outcome of [`Participant::forward`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ForwardResult {
    pub wants_keyframe: Option<Layer>,
    pub written: bool,
    /// The subscriber's layer changed with this packet.
    pub switched: bool,
}

/// Frames a relayed data message: `[identity length: u8][identity][payload]`.
/// The payload is opaque (end-to-end encrypted by the clients); the SFU only
/// adds who sent it, which it knows from the session the message came on.
pub(crate) fn data_envelope(identity: &str, payload: &[u8]) -> Arc<[u8]> {
    let id = &identity.as_bytes()[..identity.len().min(255)];
    let mut framed = Vec::with_capacity(1 + id.len() + payload.len());
    framed.push(id.len() as u8);
    framed.extend_from_slice(id);
    framed.extend_from_slice(payload);
    framed.into()
}

/// Builds the state of a remote track as one subscriber receives it.
pub(crate) fn new_track_out(source: Key, source_id: &str, track: &TrackIn) -> TrackOut {
    let clock_rate = match track.kind {
        MediaKind::Audio => 48_000,
        MediaKind::Video => 90_000,
    };
    TrackOut {
        track_id: format!("{source_id}.{}", track.label),
        source,
        source_id: source_id.to_string(),
        source_mid: track.mid,
        kind: track.kind,
        state: OutState::ToOpen,
        rewriter: StreamRewriter::new(clock_rate),
        selector: LayerSelector::new(MAX_LAYER),
        max_layer: MAX_LAYER,
        pt_cache: None,
        packets: 0,
    }
}
