//! What the fuzz targets share: an `Rtc` set up the way the SFU sets one up
//! for each participant.

use std::sync::OnceLock;
use std::time::Instant;

use str0m::Rtc;
use str0m::config::DtlsCert;

/// One certificate for every input: key generation is not what any target
/// is about, and it need not be paid again for each input.
fn cert() -> DtlsCert {
    static CERT: OnceLock<DtlsCert> = OnceLock::new();
    CERT.get_or_init(|| {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .expect("a DTLS certificate")
    })
    .clone()
}

/// An ICE-lite `Rtc` with the SFU's codecs and extensions
/// (`veil_media::extensions::base_rtc_config`), as a join of a participant
/// who receives video creates it: egress estimate on, media unpaced.
pub fn sfu_rtc(now: Instant) -> Rtc {
    veil_media::extensions::base_rtc_config()
        .set_ice_lite(true)
        .enable_bwe(Some(str0m::bwe::Bitrate::mbps(3)))
        .set_bwe_pace_media(false)
        .set_dtls_cert(cert())
        .build(now)
}
