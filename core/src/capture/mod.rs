//! Card capture: keys from the detector become PAN, expiry and CVV fields,
//! validated (IIN brand table, Luhn, expiry not past), with agent-safe
//! events — field started, digit count, valid with brand and last four,
//! invalid with reason, complete — in a bounded ring the host polls.
//!
//! Card digits live only in zeroizing buffers ([`Digits`], [`Pan`],
//! [`Expiry`], [`Cvv`]): wiped when dropped, cleared, cancelled or taken;
//! their `Debug` shows a digit count only and there is no `Display`.
//! Timeouts count media time (samples), not the wall clock.

mod card;
mod machine;

pub use card::{Brand, Cvv, Digits, Expiry, PAN_DIGITS, Pan, expiry_ok, last_four, luhn};
pub use machine::{Capture, CaptureConfig, CaptureEvent, CaptureState, Card, Field, Invalid};
