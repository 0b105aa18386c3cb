//! DTLS implementation using dimpl with AWS-LC-RS backend.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use str0m_proto::crypto::CryptoError;
use str0m_proto::crypto::DtlsVersion;
use str0m_proto::crypto::dtls::ProtocolVersion;
use str0m_proto::crypto::dtls::{DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider};

// ============================================================================
// DTLS Provider Implementation
// ============================================================================

#[derive(Debug)]
pub(super) struct AwsLcRsDtlsProvider;

/// The dimpl settings every session gets; only the MTU varies.
fn dimpl_config(mtu: Option<usize>) -> dimpl::ConfigBuilder {
    // ICE verifies return routability before DTLS, making server cookies redundant.
    let builder = dimpl::Config::builder().use_server_cookie(false);
    match mtu {
        Some(mtu) => builder.mtu(mtu),
        None => builder,
    }
}

/// One dimpl `Config` per MTU, built on first use and shared by every
/// session after it (Veil patch 1, see `VEIL-PATCHES.md`).
///
/// `ConfigBuilder::build` validates the whole crypto provider each time it
/// runs (a key agreement in every group, a signature check), about 1 ms of
/// CPU: nine tenths of what building an `Rtc` and answering an offer cost.
/// Its result depends only on the settings, which are the same for every
/// session with the same MTU, and dimpl seeds each connection's random
/// numbers itself, so sharing the config shares nothing a connection owns.
fn shared_config(mtu: Option<usize>) -> Result<Arc<dimpl::Config>, dimpl::Error> {
    static BUILT: Mutex<Vec<(Option<usize>, Arc<dimpl::Config>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, config)) = built.iter().find(|(m, _)| *m == mtu) {
        return Ok(config.clone());
    }
    let config = Arc::new(dimpl_config(mtu).build()?);
    built.push((mtu, config.clone()));
    Ok(config)
}

impl DtlsProvider for AwsLcRsDtlsProvider {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        // Use dimpl's rcgen-based certificate generation (with aws-lc-rs backend)
        dimpl::certificate::generate_self_signed_certificate()
            .ok()
            .map(|cert| DtlsCert {
                certificate: cert.certificate,
                private_key: cert.private_key,
            })
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let dimpl_cert = dimpl::DtlsCertificate {
            certificate: cert.certificate.clone(),
            private_key: cert.private_key.clone(),
        };

        // Create a default dimpl Config with AWS-LC-RS crypto provider
        let config = if self.is_test() {
            // We need the DTLS impl to be deterministic for the BWE tests.
            let seeded = dimpl_config(mtu).dangerously_set_rng_seed(42).build();
            seeded.map(Arc::new)
        } else {
            shared_config(mtu)
        }
        .map_err(|e| CryptoError::Other(format!("dimpl config creation failed: {}", e)))?;

        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, dimpl_cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, dimpl_cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, dimpl_cert, now),
            _ => {
                return Err(CryptoError::Other(format!(
                    "Unsupported DTLS version: {dtls_version}"
                )));
            }
        };

        Ok(Box::new(AwsLcRsDtlsInstance { dtls }))
    }
}

// ============================================================================
// DTLS Instance Wrapper
// ============================================================================

struct AwsLcRsDtlsInstance {
    dtls: dimpl::Dtls,
}

impl std::fmt::Debug for AwsLcRsDtlsInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsLcRsDtlsInstance").finish()
    }
}

impl DtlsInstance for AwsLcRsDtlsInstance {
    fn set_active(&mut self, active: bool) {
        self.dtls.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.dtls.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.dtls.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.dtls.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.dtls.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.dtls.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.dtls.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.dtls.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.dtls.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.dtls.close()
    }
}
