//! The codec-independent layer information the SFU reads in the clear: the
//! Dependency Descriptor extension (alone, and against a template structure
//! from an earlier keyframe), and the VP8 payload descriptor fallback.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_media::extensions::DependencyDescriptorBytes;
use veil_media::packet::dependency_descriptor::DependencyDescriptor;
use veil_media::packet::vp8::Vp8Descriptor;

fuzz_target!(|data: &[u8]| {
    let _ = DependencyDescriptorBytes::new(data);
    let _ = Vp8Descriptor::parse(data);
    // First byte: where a keyframe descriptor (with its structure) ends and
    // a delta descriptor that refers to it begins.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = (split as usize).min(rest.len());
    let (keyframe, delta) = rest.split_at(split);
    let structure = DependencyDescriptor::parse(keyframe, None)
        .ok()
        .and_then(|d| d.structure);
    let _ = DependencyDescriptor::parse(delta, structure.as_ref());
});
