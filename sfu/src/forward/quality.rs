//! Connection quality from loss and round-trip time.
//!
//! The same inputs every WebRTC stack reports (RTCP receiver reports and
//! TWCC): loss in both directions and RTT. The grades match what users feel:
//! below 2% loss and 150 ms RTT a call is clean; past 8% loss or 400 ms RTT
//! audio breaks up and video freezes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a participant's connection feels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionQuality {
    /// Audible and visible trouble.
    Poor,
    /// Noticeable but usable.
    Good,
    /// Clean.
    Excellent,
}

/// Grades a connection from its worst-direction loss fraction (0..1) and RTT.
///
/// ```
/// # use std::time::Duration;
/// # use sfu::forward::quality::{assess, ConnectionQuality};
/// assert_eq!(assess(Some(0.0), Some(0.01), Some(Duration::from_millis(20))), ConnectionQuality::Excellent);
/// assert_eq!(assess(Some(0.05), None, None), ConnectionQuality::Good);
/// assert_eq!(assess(None, Some(0.12), None), ConnectionQuality::Poor);
/// assert_eq!(assess(None, None, Some(Duration::from_millis(500))), ConnectionQuality::Poor);
/// ```
pub fn assess(
    ingress_loss: Option<f32>,
    egress_loss: Option<f32>,
    rtt: Option<Duration>,
) -> ConnectionQuality {
    let loss = ingress_loss.unwrap_or(0.0).max(egress_loss.unwrap_or(0.0));
    let rtt = rtt.unwrap_or_default();
    if loss >= 0.08 || rtt >= Duration::from_millis(400) {
        ConnectionQuality::Poor
    } else if loss >= 0.02 || rtt >= Duration::from_millis(150) {
        ConnectionQuality::Good
    } else {
        ConnectionQuality::Excellent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_at_the_boundaries() {
        let ms = Duration::from_millis;
        assert_eq!(
            assess(Some(0.0199), None, Some(ms(149))),
            ConnectionQuality::Excellent
        );
        assert_eq!(assess(Some(0.02), None, None), ConnectionQuality::Good);
        assert_eq!(assess(None, None, Some(ms(150))), ConnectionQuality::Good);
        assert_eq!(
            assess(Some(0.0799), None, Some(ms(399))),
            ConnectionQuality::Good
        );
        assert_eq!(assess(None, Some(0.08), None), ConnectionQuality::Poor);
        assert_eq!(
            assess(None, None, None),
            ConnectionQuality::Excellent,
            "no data yet is no trouble"
        );
    }
}
