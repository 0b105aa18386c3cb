use std::mem;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use crate::io::DATAGRAM_MAX_PACKET_SIZE;
use crate::packet::Vp8Patch;
use crate::rtp_::{ExtensionValues, MediaTime, Mid, Pt, Rid, RtpHeader, SenderInfo, SeqNo, Ssrc};
use crate::rtp_::{UserExtensionValues, VideoOrientation};
use crate::util::already_happened;

use super::RtpPacket;
use super::rtx_cache_buf::EvictingBuffer;

const RTX_CACHE_SIZE_QUANTIZER: usize = 25;
const RTX_CACHE_QUANTIZE_SLOTS: usize = DATAGRAM_MAX_PACKET_SIZE / RTX_CACHE_SIZE_QUANTIZER;

#[derive(Debug)]
pub(crate) struct RtxCache {
    // Data, new additions here probably need to be cleared in [`clear`].
    packet_by_seq_no: EvictingBuffer<CachedPacket>,

    // Technically we want [Option<SeqNo>; X] to indicate the absence of
    // a SeqNo. However We can half the storage space by using the sentinel
    // values SeqNo::MAX to indicate None
    seq_no_by_quantized_size: [SeqNo; RTX_CACHE_QUANTIZE_SLOTS],

    /// The packet last looked up, rebuilt from its cached form: the getters
    /// hand out `&mut RtpPacket` as before.
    looked_up: RtpPacket,
}

/// A sent packet as the cache keeps it (Veil patch 4, `VEIL-PATCHES.md`).
///
/// A whole `RtpPacket` is 408 bytes, most of them room for fields a sent
/// packet almost never carries (15 CSRCs, a dozen optional extension
/// values, sender info). A video stream's cache is always full (192 entries
/// in Veil's SFU), so every subscriber held about 84 KiB of it. Here the
/// fields every packet has stay inline and the rest moves to one box,
/// allocated only for a packet that uses any of it.
struct CachedPacket {
    seq_no: SeqNo,
    time: MediaTime,
    timestamp: Instant,
    payload: Arc<[u8]>,
    vp8_patch: Option<Vp8Patch>,
    version: u8,
    has_padding: bool,
    has_extension: bool,
    marker: bool,
    payload_type: Pt,
    sequence_number: u16,
    rtp_time: u32,
    ssrc: Ssrc,
    header_len: usize,
    audio_level: Option<i8>,
    voice_activity: Option<bool>,
    video_orientation: Option<VideoOrientation>,
    // str0m adds MID and RID to every packet until the peer's first report
    // on the SSRC; some peers never send one.
    mid: Option<Mid>,
    rid: Option<Rid>,
    user_values: UserExtensionValues,
    rare: Option<Box<RareFields>>,
}

/// What a sent packet seldom has: CSRCs, extension values other than the
/// inline ones, sender info.
#[derive(Debug)]
struct RareFields {
    csrc_count: usize,
    csrc: [u32; 15],
    ext_vals: ExtensionValues,
    last_sender_info: Option<SenderInfo>,
}

impl std::fmt::Debug for CachedPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedPacket")
            .field("seq_no", &self.seq_no)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl CachedPacket {
    fn new(mut packet: RtpPacket) -> Self {
        let header = &mut packet.header;
        let ext = &mut header.ext_vals;
        let audio_level = ext.audio_level.take();
        let voice_activity = ext.voice_activity.take();
        let video_orientation = ext.video_orientation.take();
        let mid = ext.mid.take();
        let rid = ext.rid.take();
        let user_values = mem::take(&mut ext.user_values);
        let rare = (header.csrc_count != 0
            || header.csrc != [0; 15]
            || *ext != ExtensionValues::default()
            || packet.last_sender_info.is_some())
        .then(|| {
            Box::new(RareFields {
                csrc_count: header.csrc_count,
                csrc: header.csrc,
                ext_vals: mem::take(ext),
                last_sender_info: packet.last_sender_info,
            })
        });
        CachedPacket {
            seq_no: packet.seq_no,
            time: packet.time,
            timestamp: packet.timestamp,
            payload: packet.payload,
            vp8_patch: packet.vp8_patch,
            version: header.version,
            has_padding: header.has_padding,
            has_extension: header.has_extension,
            marker: header.marker,
            payload_type: header.payload_type,
            sequence_number: header.sequence_number,
            rtp_time: header.timestamp,
            ssrc: header.ssrc,
            header_len: header.header_len,
            audio_level,
            voice_activity,
            video_orientation,
            mid,
            rid,
            user_values,
            rare,
        }
    }

    /// Rebuilds the packet as it was cached.
    fn restore_into(&self, packet: &mut RtpPacket) {
        let mut ext_vals = match &self.rare {
            Some(rare) => rare.ext_vals.clone(),
            None => ExtensionValues::default(),
        };
        ext_vals.audio_level = self.audio_level;
        ext_vals.voice_activity = self.voice_activity;
        ext_vals.video_orientation = self.video_orientation;
        ext_vals.mid = self.mid;
        ext_vals.rid = self.rid;
        ext_vals.user_values = self.user_values.clone();
        let rare = self.rare.as_deref();
        packet.seq_no = self.seq_no;
        packet.time = self.time;
        packet.timestamp = self.timestamp;
        packet.payload = self.payload.clone();
        packet.vp8_patch = self.vp8_patch;
        packet.last_sender_info = rare.and_then(|r| r.last_sender_info);
        // Only nackable packets are cached.
        packet.nackable = true;
        packet.header = RtpHeader {
            version: self.version,
            has_padding: self.has_padding,
            has_extension: self.has_extension,
            csrc_count: rare.map_or(0, |r| r.csrc_count),
            marker: self.marker,
            payload_type: self.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.rtp_time,
            ssrc: self.ssrc,
            csrc: rare.map_or([0; 15], |r| r.csrc),
            ext_vals,
            header_len: self.header_len,
        };
    }
}

impl RtxCache {
    pub fn new(max_packet_count: usize, max_packet_age: Duration) -> Self {
        Self {
            packet_by_seq_no: EvictingBuffer::new(10, max_packet_age, max_packet_count),
            seq_no_by_quantized_size: [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS],
            looked_up: RtpPacket {
                seq_no: SeqNo::MAX,
                time: MediaTime::ZERO,
                header: RtpHeader::default(),
                payload: Arc::from(&[][..]),
                vp8_patch: None,
                timestamp: already_happened(),
                last_sender_info: None,
                nackable: true,
            },
        }
    }

    pub fn cache_sent_packet(&mut self, packet: RtpPacket, now: Instant) {
        assert!(packet.nackable);
        let seq_no = packet.seq_no;
        let quantized_size = packet.payload.len() / RTX_CACHE_SIZE_QUANTIZER;
        self.packet_by_seq_no
            .push(*seq_no, now, CachedPacket::new(packet));
        self.seq_no_by_quantized_size[quantized_size] = seq_no;
        self.remove_old_packets(now);
    }

    pub fn last_cached_seq_no(&self) -> Option<SeqNo> {
        Some(self.packet_by_seq_no.last_position()?.into())
    }

    /// Payload size of a cached packet, without rebuilding it.
    pub fn cached_payload_len(&self, seq_no: SeqNo) -> Option<usize> {
        Some(self.packet_by_seq_no.get(*seq_no)?.payload.len())
    }

    pub fn get_cached_packet_by_seq_no(&mut self, seq_no: SeqNo) -> Option<&mut RtpPacket> {
        let cached = self.packet_by_seq_no.get(*seq_no)?;
        cached.restore_into(&mut self.looked_up);
        Some(&mut self.looked_up)
    }

    pub fn get_cached_packet_smaller_than(&mut self, max_size: usize) -> Option<&mut RtpPacket> {
        let quantized_size = max_size / RTX_CACHE_SIZE_QUANTIZER;

        let seq_no = self.seq_no_by_quantized_size[..quantized_size]
            .iter()
            .rev()
            .filter(|seq_no| !seq_no.is_max())
            .find(|seq_no| self.packet_by_seq_no.contains(***seq_no))?;

        self.get_cached_packet_by_seq_no(*seq_no)
    }

    fn remove_old_packets(&mut self, now: Instant) {
        self.packet_by_seq_no.maybe_evict(now);
    }

    pub(crate) fn last_packet(&self) -> Option<&[u8]> {
        let packet = self.packet_by_seq_no.last()?;
        Some(packet.payload.as_ref())
    }

    pub(crate) fn clear(&mut self) {
        self.packet_by_seq_no.clear();
        self.seq_no_by_quantized_size = [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS];
    }
}

#[cfg(test)]
mod test {
    use crate::rtp_::MediaTime;
    use crate::rtp_::RtpHeader;

    use super::*;

    fn after(now: Instant, millis: u64) -> Instant {
        now + Duration::from_millis(millis)
    }

    fn packet(now: Instant, seq_no: u64, millis: u64) -> RtpPacket {
        RtpPacket {
            header: RtpHeader::default(),
            seq_no: seq_no.into(),
            time: MediaTime::from_90khz(0),
            payload: millis.to_be_bytes().into(),
            vp8_patch: None,
            timestamp: after(now, millis),
            last_sender_info: None,
            nackable: true,
        }
    }

    #[test]
    fn rtx_cache_0_sized() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(0, Duration::from_secs(3));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_by_seq_no(1.into())
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(1000)
        );
    }

    #[test]
    fn rtx_cache_0_duration() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(10, Duration::from_secs(0));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(1.into()));
        assert_eq!(None, rtx_cache.get_cached_packet_smaller_than(1000));
    }

    #[test]
    fn rtx_cache_1_sized() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(1, Duration::from_secs(3));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_by_seq_no(1.into())
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(1000)
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(25)
        );
        assert_eq!(None, rtx_cache.get_cached_packet_smaller_than(24));
        rtx_cache.cache_sent_packet(packet(now, 2, 20), after(now, 20));
        assert_eq!(
            Some(&mut packet(now, 2, 20)),
            rtx_cache.get_cached_packet_by_seq_no(2.into())
        );
    }

    #[test]
    fn rtx_cache_100_sized_backwards() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(100, Duration::from_secs(3));

        for i in 1..=200 {
            let seq_no = 201 - i;
            let pkt = packet(now, seq_no, (201 - i) * 10);
            let now = after(now, i * 10);
            rtx_cache.cache_sent_packet(pkt, now);
        }

        assert_eq!(
            Some(&mut packet(now, 200, 2000)),
            rtx_cache.get_cached_packet_by_seq_no(200.into())
        );
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(100.into()));
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(101.into()));
    }

    #[test]
    fn rtx_cache_eviction() {
        let now = Instant::now();
        // Cache can take all entries
        let mut rtx_cache = RtxCache::new(400, Duration::from_secs(1));
        for i in 1..=200 {
            let seq_no = i;
            let pkt = packet(now, seq_no, i * 10);
            let now = after(now, i * 10);
            rtx_cache.cache_sent_packet(pkt, now);
        }

        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(99.into()));

        assert_eq!(
            Some(&mut packet(now, 100, 1000)),
            rtx_cache.get_cached_packet_by_seq_no(100.into())
        );
        assert_eq!(
            Some(&mut packet(now, 200, 2000)),
            rtx_cache.get_cached_packet_by_seq_no(200.into())
        );
    }
}
