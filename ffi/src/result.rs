//! The one result enum of the C ABI, and the panic boundary.

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

/// What every fallible function returns. 0 is success; codes are never
/// renumbered or reused. `cardveil_result_str` describes each one.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_result {
    /// Success.
    CARDVEIL_OK = 0,
    /// A required pointer argument was NULL.
    CARDVEIL_NULL_ARGUMENT = 1,
    /// An argument is out of range (an unknown enum value, a bad rate or look-ahead, a bad string).
    CARDVEIL_INVALID_ARGUMENT = 2,
    /// A frame of the wrong sample type for the engine (PCM16 to a G.711 engine or the reverse).
    CARDVEIL_WRONG_FRAME_TYPE = 3,
    /// The frame length is invalid (more than 60 ms, or overflowing).
    CARDVEIL_INVALID_LENGTH = 4,
    /// No event is waiting (not an error: poll again later).
    CARDVEIL_NO_EVENT = 5,
    /// No token yet (the capture is not complete, or tokenization is still running).
    CARDVEIL_NO_TOKEN = 6,
    /// The caller's buffer is too small; the needed size was written where asked.
    CARDVEIL_BUFFER_TOO_SMALL = 7,
    /// The vault could not be opened or used (file, database, key).
    CARDVEIL_VAULT_ERROR = 8,
    /// A Rust panic was caught; the handle is now poisoned.
    CARDVEIL_PANIC = 9,
    /// The handle panicked earlier and refuses all further use except `_free`.
    CARDVEIL_POISONED = 10,
    /// The engine has no vault (its config said CARDVEIL_VAULT_NONE).
    CARDVEIL_NO_VAULT = 11,
    /// The tokenization worker's queue is full or it stopped: the card was wiped.
    CARDVEIL_WORKER_BUSY = 12,
    /// The operation is not valid now (e.g. a token was asked of a call that never captured).
    CARDVEIL_INVALID_STATE = 13,
    /// A function of another call kind: a delay-line frame function on a two-phase or RTP call,
    /// analyse/mask on a delay-line or RTP call, `cardveil_call_process_rtp` on a frame call.
    CARDVEIL_WRONG_API = 14,
}

pub use cardveil_result::*;

/// A static, NUL-terminated description of `result` (unknown codes get
/// "unknown result code"). Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn cardveil_result_str(result: u32) -> *const c_char {
    let s: &'static str = match result {
        0 => "ok\0",
        1 => "a required pointer argument was NULL\0",
        2 => "an argument is out of range\0",
        3 => "frame of the wrong sample type for this engine\0",
        4 => "invalid frame length\0",
        5 => "no event waiting\0",
        6 => "no token yet\0",
        7 => "buffer too small\0",
        8 => "vault error\0",
        9 => "a panic was caught; the handle is poisoned\0",
        10 => "the handle is poisoned by an earlier panic\0",
        11 => "the engine has no vault\0",
        12 => "tokenization worker busy or stopped; the card was wiped\0",
        13 => "not valid in the current state\0",
        14 => "function of another call kind (delay line, two-phase analyse/mask, RTP)\0",
        _ => "unknown result code\0",
    };
    s.as_ptr().cast()
}

/// Runs `body` inside a panic boundary: a panic poisons `poison` (if
/// given) and returns `CARDVEIL_PANIC`; a poisoned handle returns
/// `CARDVEIL_POISONED` without running `body`.
pub(crate) fn guard(poison: Option<&AtomicBool>, body: impl FnOnce() -> cardveil_result) -> cardveil_result {
    if poison.is_some_and(|p| p.load(Ordering::Acquire)) {
        return CARDVEIL_POISONED;
    }
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(_) => {
            if let Some(p) = poison {
                p.store(true, Ordering::Release);
            }
            CARDVEIL_PANIC
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_poisons_the_handle() {
        let poison = AtomicBool::new(false);
        assert_eq!(guard(Some(&poison), || CARDVEIL_OK), CARDVEIL_OK);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(guard(Some(&poison), || panic!("boom")), CARDVEIL_PANIC);
        std::panic::set_hook(hook);
        assert!(poison.load(Ordering::Acquire));
        let mut ran = false;
        assert_eq!(
            guard(Some(&poison), || {
                ran = true;
                CARDVEIL_OK
            }),
            CARDVEIL_POISONED
        );
        assert!(!ran);
        assert_eq!(guard(None, || panic!("no handle")), CARDVEIL_PANIC);
    }
}
