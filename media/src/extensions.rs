//! RTP header extensions Veil negotiates, and the shared `RtcConfig`.
//!
//! str0m parses the standard extensions itself (audio level, TWCC, mid, rid,
//! abs-send-time). The Dependency Descriptor it does not know, so Veil
//! registers it as a user extension that carries the raw bytes through
//! unchanged: the SFU parses them with [`crate::packet::dependency_descriptor`]
//! and forwards them as they came.

use str0m::RtcConfig;
use str0m::rtp::{Extension, ExtensionSerializer, ExtensionValues};

use crate::packet::dependency_descriptor;

/// Extension id Veil offers for the Dependency Descriptor.
pub const DEPENDENCY_DESCRIPTOR_ID: u8 = 12;

/// Raw Dependency Descriptor bytes of one packet, stored inline so the value
/// costs a single allocation in str0m's user-extension map.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DependencyDescriptorBytes {
    len: u8,
    buf: [u8; 255],
}

impl std::fmt::Debug for DependencyDescriptorBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DependencyDescriptorBytes({:02x?})", self.as_bytes())
    }
}

impl DependencyDescriptorBytes {
    /// Wraps up to 255 bytes (the extension's maximum length); `None` if longer.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let len = u8::try_from(bytes.len()).ok()?;
        let mut buf = [0; 255];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(DependencyDescriptorBytes { len, buf })
    }

    /// The descriptor as it appeared on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The descriptor attached to a packet, if any.
    pub fn of(ext: &ExtensionValues) -> Option<&Self> {
        ext.user_values.get::<Self>()
    }
}

/// Pass-through serializer for the Dependency Descriptor.
#[derive(Debug)]
pub struct DependencyDescriptorSerializer;

impl ExtensionSerializer for DependencyDescriptorSerializer {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        match DependencyDescriptorBytes::of(ev) {
            Some(dd) if buf.len() >= dd.len as usize => {
                buf[..dd.len as usize].copy_from_slice(dd.as_bytes());
                dd.len as usize
            }
            _ => 0,
        }
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        match DependencyDescriptorBytes::new(buf) {
            Some(dd) => {
                ev.user_values.set(dd);
                true
            }
            None => false,
        }
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        false
    }

    fn requires_two_byte_form(&self, ev: &ExtensionValues) -> bool {
        DependencyDescriptorBytes::of(ev).is_some_and(|dd| dd.len > 16)
    }
}

/// The `RtcConfig` every Veil peer starts from: RTP mode (the SFU forwards
/// packets and the clients packetize their own encrypted frames), Opus and
/// VP8/VP9, and the Dependency Descriptor extension.
pub fn base_rtc_config() -> RtcConfig {
    RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .set_extension(
            DEPENDENCY_DESCRIPTOR_ID,
            Extension::with_serializer(dependency_descriptor::URI, DependencyDescriptorSerializer),
        )
}
