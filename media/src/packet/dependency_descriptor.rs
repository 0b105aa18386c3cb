//! The Dependency Descriptor RTP header extension (AV1 RTP spec, appendix A).
//!
//! DD describes frames and their layers outside the payload, so an E2EE SFU
//! can find frame boundaries, keyframes and spatial/temporal layers of VP8,
//! VP9 and AV1 without reading a byte of (encrypted) media. Chromium sends it
//! on every video packet once negotiated (see `design-notes.md`).
//!
//! The template structure arrives on keyframes only; later packets name a
//! template by id, so parsing is stateful: keep the last [`DependencyStructure`]
//! per stream and pass it to [`DependencyDescriptor::parse`].

/// URI under which the extension is negotiated in SDP.
pub const URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// Most templates a structure may hold (the template id is 6 bits).
const MAX_TEMPLATES: usize = 64;

/// The spatial and temporal layer of one frame template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLayer {
    /// Spatial layer id.
    pub spatial_id: u8,
    /// Temporal layer id.
    pub temporal_id: u8,
}

/// The template dependency structure attached to keyframes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyStructure {
    /// Offset added to template indexes to form template ids.
    pub template_id_offset: u8,
    /// Number of decode targets.
    pub decode_target_count: u8,
    /// Layers of each template, by template index.
    pub templates: Vec<TemplateLayer>,
    /// Highest spatial id among the templates.
    pub max_spatial_id: u8,
    /// Highest temporal id among the templates.
    pub max_temporal_id: u8,
}

/// One packet's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyDescriptor {
    /// First packet of a frame.
    pub start_of_frame: bool,
    /// Last packet of a frame.
    pub end_of_frame: bool,
    /// Frame number, modulo 2^16.
    pub frame_number: u16,
    /// Layers of the frame, when the structure that defines its template is known.
    pub layer: Option<TemplateLayer>,
    /// A new template structure attached to this packet; in practice only
    /// keyframes carry one, so it doubles as the keyframe signal.
    pub structure: Option<DependencyStructure>,
    /// Active decode targets, when the packet says.
    pub active_decode_targets: Option<u32>,
}

impl DependencyDescriptor {
    /// True when the packet starts a frame that carries a new structure,
    /// which is how encoders mark independently decodable (key) frames.
    pub fn is_keyframe_start(&self) -> bool {
        self.start_of_frame && self.structure.is_some()
    }
}

/// Why a descriptor could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DependencyDescriptorError {
    /// The extension ends before its fields do.
    #[error("truncated dependency descriptor")]
    Truncated,
    /// A field has a value the spec forbids (e.g. more than 64 templates).
    #[error("invalid dependency descriptor: {0}")]
    Invalid(&'static str),
}

type Result<T> = std::result::Result<T, DependencyDescriptorError>;

struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    fn f(&mut self, n: usize) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self
                .data
                .get(self.bit / 8)
                .ok_or(DependencyDescriptorError::Truncated)?;
            let b = (byte >> (7 - self.bit % 8)) & 1;
            v = (v << 1) | b as u32;
            self.bit += 1;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool> {
        Ok(self.f(1)? == 1)
    }

    /// Non-symmetric unsigned value in `0..n` (spec §A.8.3 `ns(n)`).
    fn ns(&mut self, n: u32) -> Result<u32> {
        let mut w = 0;
        let mut x = n;
        while x != 0 {
            x >>= 1;
            w += 1;
        }
        if w == 0 {
            return Ok(0);
        }
        let m = (1u32 << w) - n;
        let v = self.f(w - 1)?;
        if v < m {
            return Ok(v);
        }
        let extra = self.f(1)?;
        Ok((v << 1) - m + extra)
    }
}

impl DependencyDescriptor {
    /// Parses one extension value. `known` is the most recent structure seen on
    /// this stream; it resolves the frame's template to its layers.
    ///
    /// ```
    /// # use veil_media::packet::dependency_descriptor::DependencyDescriptor;
    /// // start+end of frame, template id 0, frame number 7; no structure known.
    /// let dd = DependencyDescriptor::parse(&[0xC0, 0x00, 0x07], None).unwrap();
    /// assert!(dd.start_of_frame && dd.end_of_frame);
    /// assert_eq!(dd.frame_number, 7);
    /// assert_eq!(dd.layer, None);
    /// ```
    pub fn parse(data: &[u8], known: Option<&DependencyStructure>) -> Result<Self> {
        let mut r = BitReader { data, bit: 0 };
        let start_of_frame = r.flag()?;
        let end_of_frame = r.flag()?;
        let template_id = r.f(6)? as u8;
        let frame_number = r.f(16)? as u16;

        let mut structure = None;
        let mut active_decode_targets = None;
        if data.len() > 3 {
            let structure_present = r.flag()?;
            let active_present = r.flag()?;
            // custom dtis / fdiffs / chains flags: their values are not needed to
            // route, and they follow after the parts we read.
            r.f(3)?;
            if structure_present {
                let s = parse_structure(&mut r)?;
                active_decode_targets = Some(mask(s.decode_target_count));
                structure = Some(s);
            }
            if active_present {
                let count = structure
                    .as_ref()
                    .or(known)
                    .ok_or(DependencyDescriptorError::Invalid(
                        "active decode targets without a structure",
                    ))?
                    .decode_target_count;
                active_decode_targets = Some(r.f(count as usize)?);
            }
        }

        let layer = structure.as_ref().or(known).and_then(|s| {
            let index = (template_id as usize + MAX_TEMPLATES - s.template_id_offset as usize)
                % MAX_TEMPLATES;
            s.templates.get(index).copied()
        });

        Ok(DependencyDescriptor {
            start_of_frame,
            end_of_frame,
            frame_number,
            layer,
            structure,
            active_decode_targets,
        })
    }
}

fn mask(count: u8) -> u32 {
    if count >= 32 {
        u32::MAX
    } else {
        (1u32 << count) - 1
    }
}

fn parse_structure(r: &mut BitReader) -> Result<DependencyStructure> {
    let template_id_offset = r.f(6)? as u8;
    let decode_target_count = r.f(5)? as u8 + 1;

    // template_layers()
    let mut templates = Vec::new();
    let (mut spatial_id, mut temporal_id) = (0u8, 0u8);
    let (mut max_spatial_id, mut max_temporal_id) = (0u8, 0u8);
    loop {
        if templates.len() == MAX_TEMPLATES {
            return Err(DependencyDescriptorError::Invalid("more than 64 templates"));
        }
        templates.push(TemplateLayer {
            spatial_id,
            temporal_id,
        });
        match r.f(2)? {
            0 => {}
            1 => {
                temporal_id += 1;
                max_temporal_id = max_temporal_id.max(temporal_id);
            }
            2 => {
                temporal_id = 0;
                spatial_id += 1;
                max_spatial_id = max_spatial_id.max(spatial_id);
            }
            _ => break,
        }
    }

    // template_dtis(): two bits per template and decode target.
    for _ in 0..templates.len() * decode_target_count as usize {
        r.f(2)?;
    }
    // template_fdiffs()
    for _ in 0..templates.len() {
        while r.flag()? {
            r.f(4)?;
        }
    }
    // template_chains()
    let chain_count = r.ns(decode_target_count as u32 + 1)?;
    if chain_count > 0 {
        for _ in 0..decode_target_count {
            r.ns(chain_count)?;
        }
        for _ in 0..templates.len() * chain_count as usize {
            r.f(4)?;
        }
    }
    // render resolutions, one per spatial layer.
    if r.flag()? {
        for _ in 0..=max_spatial_id {
            r.f(32)?;
        }
    }

    Ok(DependencyStructure {
        template_id_offset,
        decode_target_count,
        templates,
        max_spatial_id,
        max_temporal_id,
    })
}

/// Writes the descriptor of a frame from a single-layer stream: used by the
/// Rust client so that SFUs can find keyframes without reading its payload.
///
/// A keyframe's first packet carries a one-template structure (one decode
/// target, no chains); every other packet carries the three mandatory bytes.
/// Returns the number of bytes written (3, or 6 with a structure).
pub fn write_single_layer(
    out: &mut [u8; 6],
    start_of_frame: bool,
    end_of_frame: bool,
    frame_number: u16,
    attach_structure: bool,
) -> usize {
    out[0] = (start_of_frame as u8) << 7 | (end_of_frame as u8) << 6; // template id 0
    out[1..3].copy_from_slice(&frame_number.to_be_bytes());
    if !attach_structure {
        return 3;
    }
    // Bits: structure_present=1, active=0, custom flags 000,
    // template_id_offset=0 (6), dt_cnt_minus_one=0 (5), next_layer_idc=3 (2),
    // template_dti=2 "switch" (2), fdiff_follows=0 (1), chain_cnt ns(2)=0 (1),
    // resolutions_present=0 (1): 23 bits, padded with one zero bit to 3 bytes.
    #[allow(clippy::unusual_byte_groupings)] // grouped by field, as listed above
    let bits: u32 = 0b1_0_000_000000_00000_11_10_0_0_0;
    let packed = bits << 1;
    out[3..6].copy_from_slice(&packed.to_be_bytes()[1..4]);
    6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_layer_writer_round_trips() {
        let mut buf = [0u8; 6];
        let n = write_single_layer(&mut buf, true, false, 513, true);
        let dd = DependencyDescriptor::parse(&buf[..n], None).unwrap();
        assert!(dd.is_keyframe_start());
        assert_eq!(dd.frame_number, 513);
        let s = dd.structure.clone().unwrap();
        assert_eq!(s.templates.len(), 1);
        assert_eq!(s.decode_target_count, 1);
        assert_eq!(dd.active_decode_targets, Some(1));

        let n = write_single_layer(&mut buf, false, true, 514, false);
        let next = DependencyDescriptor::parse(&buf[..n], Some(&s)).unwrap();
        assert!(!next.is_keyframe_start());
        assert!(next.end_of_frame);
        assert_eq!(
            next.layer,
            Some(TemplateLayer {
                spatial_id: 0,
                temporal_id: 0
            })
        );
    }

    /// An L1T3 keyframe descriptor of the shape Chromium sends for VP8 with three
    /// temporal layers: 5 templates, 3 decode targets, one chain.
    #[test]
    fn parses_three_temporal_layer_structure() {
        let mut w = BitWriter::default();
        // mandatory: start, end, template id 1, frame 100
        w.put(1, 1);
        w.put(1, 1);
        w.put(1, 6);
        w.put(100, 16);
        // extended flags: structure present, no active mask, custom flags 0
        w.put(1, 1);
        w.put(0, 1);
        w.put(0, 3);
        // structure: offset 1, dt count 3
        w.put(1, 6);
        w.put(2, 5);
        // templates: T0, T0, T1, T2, T2 -> idc: 0, 1, 1, 0, 3
        for idc in [0, 1, 1, 0, 3] {
            w.put(idc, 2);
        }
        for _ in 0..5 * 3 {
            w.put(2, 2);
        }
        for _ in 0..5 {
            w.put(0, 1);
        }
        // chains: ns(4) = 1 -> w=3, m=4, v<m: f(2)=1
        w.put(1, 2);
        // decode_target_protected_by: ns(1) reads nothing; fdiffs 5 x f(4)
        for _ in 0..5 {
            w.put(0, 4);
        }
        w.put(0, 1); // no resolutions
        let bytes = w.finish();

        let dd = DependencyDescriptor::parse(&bytes, None).unwrap();
        let s = dd.structure.as_ref().unwrap();
        assert_eq!(s.templates.len(), 5);
        assert_eq!(s.max_temporal_id, 2);
        assert_eq!(s.max_spatial_id, 0);
        // template id 1 with offset 1 is index 0: T0
        assert_eq!(dd.layer.unwrap().temporal_id, 0);

        // Later packet: template id 4 -> index 3 -> T2.
        let later = [0x84, 0x00, 0x65];
        let dd2 = DependencyDescriptor::parse(&later, Some(s)).unwrap();
        assert_eq!(dd2.layer.unwrap().temporal_id, 2);
        assert!(dd2.start_of_frame && !dd2.end_of_frame);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as u8
                    })
                    .collect();
                let _ = DependencyDescriptor::parse(&bytes, None);
            }
        }
        assert_eq!(
            DependencyDescriptor::parse(&[0x80, 0x00], None),
            Err(DependencyDescriptorError::Truncated)
        );
    }

    #[derive(Default)]
    struct BitWriter {
        bits: Vec<bool>,
    }

    impl BitWriter {
        fn put(&mut self, v: u32, n: usize) {
            for i in (0..n).rev() {
                self.bits.push((v >> i) & 1 == 1);
            }
        }
        fn finish(self) -> Vec<u8> {
            self.bits
                .chunks(8)
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .fold(0u8, |acc, (i, b)| acc | ((*b as u8) << (7 - i)))
                })
                .collect()
        }
    }
}
