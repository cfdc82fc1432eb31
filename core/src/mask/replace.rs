//! What masked audio is replaced with. Every replacement is a function of
//! the stream position and of audio *outside* masked spans only, so it
//! cannot carry anything about the key it hides: with the same timing and
//! surroundings, every key gives bit-identical output.

use super::MaskMode;
use crate::dtmf::amplitude_for_dbm0;

/// Frequency of the flat tone: not a DTMF frequency, and a whole number of
/// periods per 5 ms at every supported rate.
pub const FLAT_TONE_HZ: u32 = 500;
/// Level of the flat tone, dBm0: fixed, so it says nothing about the key's level.
pub const FLAT_TONE_DBM0: f64 = -20.0;
/// Samples of unmasked audio per level update (5 ms at 8 kHz; scaled by rate).
const LEVEL_BLOCK_MS: u32 = 5;
/// Weight of each new 5 ms block in the surrounding level (≈ 50 ms memory).
const LEVEL_WEIGHT: f32 = 0.1;

#[derive(Debug)]
pub(crate) struct Replacer {
    mode: MaskMode,
    /// One period of the flat tone (tone mode only).
    tone: Box<[i16]>,
    /// Surrounding level: mean square of unmasked audio, smoothed.
    mean_square: f32,
    acc: u64,
    count: u32,
    block: u32,
}

impl Replacer {
    /// A replacer; the flat tone's period is built whatever the mode (16
    /// to 96 samples), so that [`Self::set_mode`] never allocates.
    pub fn new(mode: MaskMode, sample_rate: u32) -> Replacer {
        let period = (sample_rate / FLAT_TONE_HZ) as usize;
        let a = amplitude_for_dbm0(FLAT_TONE_DBM0);
        let tone: Box<[i16]> = (0..period)
            .map(|n| (a * (std::f64::consts::TAU * n as f64 / period as f64).sin()).round() as i16)
            .collect();
        Replacer { mode, tone, mean_square: 0.0, acc: 0, count: 0, block: sample_rate * LEVEL_BLOCK_MS / 1000 }
    }

    /// Replaces with `mode` from now on (no allocation). Noise mode starts
    /// from the level last measured (none: silence until 5 ms of unmasked
    /// audio have been heard).
    pub fn set_mode(&mut self, mode: MaskMode) {
        self.mode = mode;
    }

    /// Whether [`Self::observe`] needs the unmasked audio.
    pub fn observes(&self) -> bool {
        self.mode == MaskMode::Noise
    }

    /// Whether the replacement is digital silence (a constant).
    pub fn is_silence(&self) -> bool {
        self.mode == MaskMode::Silence
    }

    /// Takes unmasked (released) samples into the surrounding level.
    pub fn observe(&mut self, samples: &[i16]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let n = rest.len().min((self.block - self.count) as usize);
            let (now, later) = rest.split_at(n);
            // Exact integer squares (|s|² < 2³⁰, at most 240 per block): the
            // sum vectorises and does not depend on how frames were cut.
            self.acc += now.iter().map(|&s| (s as i32 * s as i32) as u64).sum::<u64>();
            self.count += n as u32;
            if self.count == self.block {
                let ms = self.acc as f32 / self.count as f32;
                self.mean_square += LEVEL_WEIGHT * (ms - self.mean_square);
                self.acc = 0;
                self.count = 0;
            }
            rest = later;
        }
    }

    /// The replacement for stream positions `pos..pos + out.len()`.
    pub fn fill(&self, pos: u64, out: &mut [i16]) {
        match self.mode {
            MaskMode::Silence => out.fill(0),
            MaskMode::Tone => {
                let period = self.tone.len() as u64;
                for (i, o) in out.iter_mut().enumerate() {
                    *o = self.tone[(pos.wrapping_add(i as u64) % period) as usize];
                }
            }
            MaskMode::Noise => {
                // Uniform noise in ±√3·rms has the surrounding mean square.
                let scale = (3.0 * self.mean_square).sqrt();
                for (i, o) in out.iter_mut().enumerate() {
                    let u = noise(pos.wrapping_add(i as u64));
                    // `as` saturates; truncating toward zero is as good as rounding for noise.
                    *o = (u * scale) as i16;
                }
            }
        }
    }
}

/// A uniform value in [−1, 1) from the stream position (SplitMix64's
/// finaliser): the noise depends on nothing but where it is.
#[inline]
fn noise(pos: u64) -> f32 {
    let mut z = pos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_follows_the_surrounding_level_and_only_the_position() {
        let mut r = Replacer::new(MaskMode::Noise, 8000);
        let surround: Vec<i16> = (0..4000).map(|n| if n % 2 == 0 { 1000 } else { -1000 }).collect();
        // In uneven pieces: the level is the same however it arrives.
        for piece in surround.chunks(37) {
            r.observe(piece);
        }
        let mut a = vec![0i16; 8000];
        r.fill(123, &mut a);
        let rms = (a.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        assert!((rms - 1000.0).abs() < 30.0, "{rms}");
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 30.0, "{mean}");
        let mut b = vec![0i16; 10];
        r.fill(125, &mut b);
        assert_eq!(&a[2..12], &b[..]);
    }

    #[test]
    fn the_flat_tone_is_500_hz_at_minus_20_dbm0_at_every_rate() {
        for rate in [8000, 16000, 48000] {
            let r = Replacer::new(MaskMode::Tone, rate);
            let mut x = vec![0i16; rate as usize / 10];
            r.fill(0, &mut x);
            let peak = *x.iter().max().unwrap() as f64;
            assert!((peak - amplitude_for_dbm0(-20.0)).abs() < 2.0);
            // 50 periods in 100 ms: 100 zero crossings upwards and down.
            let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
            assert!((99..=101).contains(&crossings), "{rate}: {crossings}");
        }
    }

    #[test]
    fn silence_is_zero() {
        let r = Replacer::new(MaskMode::Silence, 8000);
        let mut x = [7i16; 5];
        r.fill(9, &mut x);
        assert_eq!(x, [0; 5]);
    }
}
