//! A DTMF tone generator: two phase-continuous sines, each with its own level,
//! frequency and start phase. The tests use it for stimuli; the masker uses it
//! for its key-independent "flat" tone.

use super::FULL_SCALE_DBM0;
use super::key::Key;

/// Peak amplitude (in 16-bit units) of a sine at `dbm0`.
pub fn amplitude_for_dbm0(dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((dbm0 - FULL_SCALE_DBM0) / 20.0)
}

/// Generates the sum of two sines sample by sample.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    freq: [f64; 2],
    amp: [f64; 2],
    phase: [f64; 2],
    step: [f64; 2],
}

impl ToneGenerator {
    /// A generator for arbitrary frequencies (Hz), amplitudes (16-bit peak)
    /// and start phases (radians).
    pub fn new(sample_rate: u32, freq: [f64; 2], amp: [f64; 2], phase: [f64; 2]) -> Self {
        let step = [
            std::f64::consts::TAU * freq[0] / sample_rate as f64,
            std::f64::consts::TAU * freq[1] / sample_rate as f64,
        ];
        ToneGenerator { freq, amp, phase, step }
    }

    /// The key's nominal pair, each tone at `level_dbm0`, zero start phase.
    pub fn for_key(sample_rate: u32, key: Key, level_dbm0: f64) -> Self {
        let (lo, hi) = key.frequencies();
        let a = amplitude_for_dbm0(level_dbm0);
        Self::new(sample_rate, [lo, hi], [a, a], [0.0, 0.0])
    }

    /// The two frequencies in Hz.
    pub fn frequencies(&self) -> [f64; 2] {
        self.freq
    }

    /// The next sample, unquantised.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        let v = self.amp[0] * self.phase[0].sin() + self.amp[1] * self.phase[1].sin();
        for i in 0..2 {
            self.phase[i] += self.step[i];
            if self.phase[i] > std::f64::consts::TAU {
                self.phase[i] -= std::f64::consts::TAU;
            }
        }
        v
    }

    /// Adds the next `out.len()` samples to `out`, saturating at the 16-bit range.
    pub fn add_to(&mut self, out: &mut [i16]) {
        for o in out {
            let v = *o as f64 + self.next_f64();
            *o = v.round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// Writes the next `out.len()` samples to `out`, saturating.
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out {
            *o = self.next_f64().round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}
