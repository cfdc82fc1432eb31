//! The correlator bank: for one 5 ms sub-block, the complex correlation with
//! each of the eight DTMF frequencies, plus the block's energy and sum.
//!
//! Straight dot products against precomputed cosine/sine tables (16 of them,
//! 40 samples each at 8 kHz). Each dot product runs on eight independent
//! accumulators so the compiler vectorises it without reassociating floats,
//! and the results are identical however the input was chunked.

use std::sync::LazyLock;

use super::key::{COL_HZ, ROW_HZ};

/// Number of frequencies in the bank: four rows, then four columns.
pub(crate) const TONES: usize = 8;
/// Sub-block duration: 5 ms.
pub(crate) const SUB_BLOCKS_PER_SECOND: u32 = 200;
/// Lanes per dot product.
const LANES: usize = 8;

/// A complex number, just enough for the detector.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Cplx {
    pub re: f32,
    pub im: f32,
}

impl Cplx {
    #[inline]
    pub fn mul(self, o: Cplx) -> Cplx {
        Cplx { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re }
    }
    #[inline]
    pub fn mul_conj(self, o: Cplx) -> Cplx {
        Cplx { re: self.re * o.re + self.im * o.im, im: self.im * o.re - self.re * o.im }
    }
    #[inline]
    pub fn add(self, o: Cplx) -> Cplx {
        Cplx { re: self.re + o.re, im: self.im + o.im }
    }
    #[inline]
    pub fn norm_sqr(self) -> f32 {
        self.re * self.re + self.im * self.im
    }
    #[inline]
    pub fn arg(self) -> f32 {
        self.im.atan2(self.re)
    }
}

/// What the bank measures in one sub-block.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SubBlock {
    /// Correlation with each tone, phase referenced to the sub-block's first sample.
    pub y: [Cplx; TONES],
    /// Σ x².
    pub energy: f32,
    /// Σ x.
    pub sum: f32,
}

/// Tables for one sample rate; shared by every detector at that rate.
#[derive(Debug)]
pub(crate) struct Bank {
    pub sample_rate: u32,
    /// Sub-block length in samples (a multiple of [`LANES`]).
    pub len: usize,
    /// `cos(ω n)`, tone-major.
    cos: Box<[f32]>,
    /// `−sin(ω n)`, tone-major.
    msin: Box<[f32]>,
    /// `e^{−jω·len}`: moves a phase reference forward by one sub-block.
    pub rot: [Cplx; TONES],
    /// Nominal frequencies, Hz.
    pub freq: [f32; TONES],
}

impl Bank {
    fn build(sample_rate: u32) -> Bank {
        let len = (sample_rate / SUB_BLOCKS_PER_SECOND) as usize;
        debug_assert_eq!(len % LANES, 0);
        let freqs: Vec<f64> = ROW_HZ.iter().chain(COL_HZ.iter()).copied().collect();
        let mut cos = vec![0f32; TONES * len];
        let mut msin = vec![0f32; TONES * len];
        let mut rot = [Cplx::default(); TONES];
        let mut freq = [0f32; TONES];
        for (t, &f) in freqs.iter().enumerate() {
            let w = std::f64::consts::TAU * f / sample_rate as f64;
            for n in 0..len {
                cos[t * len + n] = (w * n as f64).cos() as f32;
                msin[t * len + n] = -(w * n as f64).sin() as f32;
            }
            let a = w * len as f64;
            rot[t] = Cplx { re: a.cos() as f32, im: -a.sin() as f32 };
            freq[t] = f as f32;
        }
        Bank {
            sample_rate,
            len,
            cos: cos.into_boxed_slice(),
            msin: msin.into_boxed_slice(),
            rot,
            freq,
        }
    }

    /// The shared bank for a supported rate (8, 16 or 48 kHz), built on first use.
    pub fn for_rate(sample_rate: u32) -> Option<&'static Bank> {
        static B8: LazyLock<Bank> = LazyLock::new(|| Bank::build(8000));
        static B16: LazyLock<Bank> = LazyLock::new(|| Bank::build(16000));
        static B48: LazyLock<Bank> = LazyLock::new(|| Bank::build(48000));
        match sample_rate {
            8000 => Some(&B8),
            16000 => Some(&B16),
            48000 => Some(&B48),
            _ => None,
        }
    }

    /// Analyses one sub-block (`x.len() == self.len`).
    #[inline]
    pub fn analyse(&self, x: &[f32]) -> SubBlock {
        debug_assert_eq!(x.len(), self.len);
        let mut out = SubBlock::default();
        let cos = self.cos.chunks_exact(self.len);
        let msin = self.msin.chunks_exact(self.len);
        for ((y, c), s) in out.y.iter_mut().zip(cos).zip(msin) {
            y.re = dot(x, c);
            y.im = dot(x, s);
        }
        let mut e = [0f32; LANES];
        let mut m = [0f32; LANES];
        for chunk in x.chunks_exact(LANES) {
            for i in 0..LANES {
                e[i] += chunk[i] * chunk[i];
                m[i] += chunk[i];
            }
        }
        out.energy = reduce(e);
        out.sum = reduce(m);
        out
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += ca[i] * cb[i];
        }
    }
    reduce(acc)
}

#[inline(always)]
fn reduce(a: [f32; LANES]) -> f32 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nominal_tone_lands_in_its_bin_with_amplitude_n_over_two() {
        let bank = Bank::for_rate(8000).unwrap();
        let w = std::f64::consts::TAU * 770.0 / 8000.0;
        let x: Vec<f32> = (0..bank.len).map(|n| (1000.0 * (w * n as f64).cos()) as f32).collect();
        let sb = bank.analyse(&x);
        let mag = sb.y[1].norm_sqr().sqrt();
        // 40 samples: |X| ≈ A·N/2 plus a little leakage from the negative frequency.
        assert!((mag - 20_000.0).abs() < 600.0, "{mag}");
        assert!(sb.y[1].re > 0.0);
    }

    #[test]
    fn unsupported_rates_have_no_bank() {
        assert!(Bank::for_rate(44100).is_none());
        assert_eq!(Bank::for_rate(48000).unwrap().len, 240);
    }
}
