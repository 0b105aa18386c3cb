//! Node configuration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How one SFU node runs. [`SfuConfig::default`] suits a laptop: loopback only.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Local UDP address all participants' media arrives on.
    pub udp_bind: SocketAddr,
    /// Local TCP address for ICE-TCP fallback (RFC 6544); `None` disables it.
    pub tcp_bind: Option<SocketAddr>,
    /// Address put in ICE candidates, when it differs from the bound one
    /// (NAT, Kubernetes node address). The port is always the bound port.
    pub advertised_ip: Option<IpAddr>,
    /// Most participants in one room; more get [`crate::JoinError::RoomFull`].
    pub max_participants_per_room: usize,
    /// Most media tracks one participant may publish.
    pub max_tracks_per_participant: usize,
    /// Most bits/s one published stream (one simulcast layer) may carry;
    /// above it the layer is not forwarded and the publisher is told.
    pub max_stream_bitrate_bps: u64,
    /// When a room has more than this many participants, forward only the
    /// audio of the loudest [`SfuConfig::loudest_audio`] of them.
    pub loudest_audio_threshold: usize,
    /// How many audio streams to forward in large rooms.
    pub loudest_audio: usize,
    /// Shortest interval between two keyframe requests for one layer.
    pub keyframe_request_interval: Duration,
    /// Video packets kept per outgoing stream for answering NACKs (str0m's
    /// send buffer; it also holds a burst between forwarding and sending).
    /// str0m keeps up to 1000 for 3 s by default: about 600 KiB per HD
    /// subscription at 160 packets/s. 192 covers about 1.2 s of that, far
    /// past any useful resend.
    pub resend_buffer_video: usize,
    /// Estimate each subscriber's downlink from TWCC feedback, so simulcast
    /// layers follow the bandwidth. Turning it off leaves layer choice to
    /// the subscribers' requests alone.
    pub bandwidth_estimation: bool,
    /// With estimation on, hold forwarded media in str0m's leaky-bucket
    /// pacer as well. Off by default: publishers already pace what they
    /// send, and queueing it again cost about 1.5× the CPU per packet and
    /// milliseconds of latency (`BENCHMARKS.md`). Padding and bandwidth
    /// probes, which raise the estimate, are paced either way.
    pub pace_media: bool,
    /// Initial egress bandwidth estimate per subscriber (bits/s).
    pub initial_bandwidth_bps: u64,
    /// Queue depth of each participant's event channel. Past three
    /// quarters full, replaceable snapshots (active speakers, connection
    /// quality) are dropped; a session whose signalling lets it fill is
    /// ended, since an event it must get (an offer, a join) cannot wait.
    pub event_queue: usize,
    /// Media worker threads; rooms are spread over them. One per core.
    pub workers: usize,
    /// Datagrams queued from the receiver to each worker before drops.
    pub worker_queue: usize,
    /// Datagrams per second one remote address may send before the rest
    /// are dropped at the receiver (`veil_sfu_dropped_total{reason=
    /// "source_over_budget"}`), so a flooding participant cannot fill the
    /// worker queue its room shares. A 3-layer HD publisher sends about 300.
    pub source_packets_per_s: u32,
    /// Datagrams one address may send at once above that rate (keyframes).
    pub source_packet_burst: u32,
    /// Kernel receive and send buffer asked for on the UDP socket. It
    /// absorbs bursts and floods while the receiver catches up; the kernel
    /// grants at most `net.core.rmem_max` / `wmem_max`.
    pub socket_buffer_bytes: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            udp_bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tcp_bind: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            advertised_ip: None,
            max_participants_per_room: 100,
            max_tracks_per_participant: 8,
            max_stream_bitrate_bps: 10_000_000,
            loudest_audio_threshold: 8,
            loudest_audio: 3,
            keyframe_request_interval: Duration::from_millis(500),
            initial_bandwidth_bps: 3_000_000,
            bandwidth_estimation: true,
            pace_media: false,
            resend_buffer_video: 192,
            event_queue: 1024,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            worker_queue: 8192,
            source_packets_per_s: 5_000,
            source_packet_burst: 2_500,
            socket_buffer_bytes: 8 * 1024 * 1024,
        }
    }
}
