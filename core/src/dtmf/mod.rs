//! DTMF: the key set, the detector and the tone generator.
//!
//! The detector ([`Detector`]) meets ITU-T Q.24 (default), ETSI ES 201 235-3
//! or NTT limits, selected by [`Profile`]. It works on 5 ms sub-blocks: for
//! each it correlates the input with the eight DTMF frequencies, then judges
//! overlapping 10 ms windows (hop 5 ms). Frequencies are measured from the
//! phase advance between consecutive windows, which separates a ±1.5 % tone
//! (accept) from a ±3.5 % one (reject) where a plain 10 ms Goertzel cannot.

mod approx;
mod bank;
mod detector;
mod generator;
mod key;
pub(crate) mod lines;
mod profile;

pub(crate) use bank::{SubBlock, TONES};
pub use detector::{Detector, DetectorConfig, DetectorEvent, KeyDown, KeyPress};
pub(crate) use detector::{Hit, Sink, Window, best_two};
pub use generator::{ToneGenerator, amplitude_for_dbm0};
pub use key::{COL_HZ, Key, ROW_HZ};
pub(crate) use profile::Params;
pub use profile::Profile;

/// Xorshift64, the dtmf tests' source of arbitrary inputs: the next value
/// of `seed` (reproducible from the first).
#[cfg(test)]
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Sample rates the detector supports.
pub const SAMPLE_RATES: [u32; 3] = [8000, 16000, 48000];

/// The detector does not run at this sample rate (see [`SAMPLE_RATES`]):
/// the one error of this module, which imports nothing above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sample rate {0} Hz (supported: 8000, 16000, 48000)")]
pub struct UnsupportedRate(pub u32);

/// Level, in dBm0, of a full-scale sine (peak 32767): the level convention of
/// G.711 and of this crate.
#[allow(clippy::approx_constant)] // 3.14 dB is the G.711 level convention, not π.
pub const FULL_SCALE_DBM0: f64 = 3.14;
