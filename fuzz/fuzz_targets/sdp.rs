//! SDP offers as they reach the server in a join, a renegotiation, a WHIP
//! publish or a WHEP view: parsed, then accepted by an `Rtc` configured as
//! the SFU configures one, which writes an answer.
//!
//! The SFU runs `accept_offer` under its panic guard (`sfu/src/node/guard.rs`):
//! str0m can panic on some offers (see `regressions/sdp`), and that costs the
//! offender its join and nothing else. So a panic inside `accept_offer` is
//! contained here the same way; a panic anywhere else (parsing, or an answer
//! we cannot read back) is still a crash.
#![no_main]

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use str0m::change::{SdpAnswer, SdpOffer};

thread_local!(static GUARDED: Cell<bool> = const { Cell::new(false) });

/// libFuzzer's hook aborts on every panic; let the guarded ones unwind.
fn contain_guarded_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                abort(info)
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_guarded_panics();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = SdpAnswer::from_sdp_string(text);
    let Ok(offer) = SdpOffer::from_sdp_string(text) else {
        return;
    };
    let mut rtc = veil_fuzz::sfu_rtc(Instant::now());
    GUARDED.with(|g| g.set(true));
    let accepted = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)));
    GUARDED.with(|g| g.set(false));
    if let Ok(Ok(answer)) = accepted {
        // What we answer must itself be readable SDP.
        let _ = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).unwrap();
    }
});
