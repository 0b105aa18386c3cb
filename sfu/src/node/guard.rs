//! A panic inside the WebRTC stack on one participant's input stays with
//! that participant.
//!
//! str0m is careful, but it is a large parser and state machine fed by
//! strangers: fuzzing found an SDP offer that makes `accept_offer` panic
//! ("Pt locked multiple times"). A worker thread hosts many participants,
//! so an unwinding panic there would drop all of them, and any client could
//! repeat it at will. Every call into a participant's `Rtc` with outside
//! input (SDP, datagrams, timeouts, polling) therefore runs through
//! [`guarded`]: a panic becomes an error, the offending participant is
//! dropped (its `Rtc` may be half-updated), it is counted in
//! `veil_sfu_stack_panics_total{in}`, and the worker carries on with
//! everyone else.
//!
//! `catch_unwind` costs nothing on the path that does not panic; the
//! workspace builds with `panic = "unwind"` (the default) for it to work.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing::warn;

/// The WebRTC stack panicked; the message it panicked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panicked(pub String);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the WebRTC stack failed on this input ({})", self.0)
    }
}

/// Runs `f`, turning a panic into [`Panicked`]. `what` names the call for
/// the metric and the log.
///
/// The closure may leave what it touched half-updated when it panics; the
/// caller must stop using that state (drop the participant).
pub(crate) fn guarded<T>(what: &'static str, f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        metrics::counter!("veil_sfu_stack_panics_total", "in" => what).increment(1);
        warn!(what, %message, "the WebRTC stack panicked; dropping the participant");
        Panicked(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_a_value_passes_through() {
        assert_eq!(guarded("test", || 7), Ok(7));
        let err = guarded("test", || -> u8 { panic!("Pt locked multiple times: 100") });
        assert_eq!(err, Err(Panicked("Pt locked multiple times: 100".into())));
        let formatted = guarded("test", || -> u8 { panic!("{} and {}", 1, 2) }).unwrap_err();
        assert!(formatted.to_string().contains("1 and 2"), "{formatted}");
    }
}
