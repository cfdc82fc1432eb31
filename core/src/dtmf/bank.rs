//! The correlator bank: for one 5 ms sub-block, the complex correlation with
//! each of the eight DTMF frequencies, plus the block's energy and sum.
//!
//! Straight correlation of the 16-bit samples against a precomputed Q10
//! cosine/sine table (sixteen values per sample, 40 samples at 8 kHz), in
//! exact 32-bit integer arithmetic: two AVX2 multiply-add-pairs instructions
//! per pair of samples where the CPU has AVX2, plain Rust elsewhere, with
//! bit-identical results either way and however the input was chunked.

use std::sync::LazyLock;

use super::key::{COL_HZ, ROW_HZ};

/// Number of frequencies in the bank: four rows, then four columns.
pub(crate) const TONES: usize = 8;
/// Sub-block duration: 5 ms.
pub(crate) const SUB_BLOCKS_PER_SECOND: u32 = 200;

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
    pub fn sub(self, o: Cplx) -> Cplx {
        Cplx { re: self.re - o.re, im: self.im - o.im }
    }
    #[inline]
    pub fn norm_sqr(self) -> f32 {
        self.re * self.re + self.im * self.im
    }
    #[inline]
    pub fn arg(self) -> f32 {
        super::approx::atan2(self.im, self.re)
    }
}

/// One complex value per tone, as separate real and imaginary arrays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Tones {
    pub re: [f32; TONES],
    pub im: [f32; TONES],
}

impl Tones {
    /// Tone `t` as a complex number.
    #[inline]
    pub fn at(&self, t: usize) -> Cplx {
        Cplx { re: self.re[t], im: self.im[t] }
    }

    /// `self + rot · next`, lane by lane: joins two consecutive sub-blocks
    /// into one window referenced to the first one's start.
    #[inline]
    pub fn join(&self, rot: &Tones, next: &Tones) -> Tones {
        let mut out = Tones::default();
        for t in 0..TONES {
            out.re[t] = self.re[t] + (rot.re[t] * next.re[t] - rot.im[t] * next.im[t]);
            out.im[t] = self.im[t] + (rot.re[t] * next.im[t] + rot.im[t] * next.re[t]);
        }
        out
    }

    /// |value|² of every tone.
    #[inline]
    pub fn norm_sqr(&self) -> [f32; TONES] {
        let mut p = [0f32; TONES];
        for t in 0..TONES {
            p[t] = self.re[t] * self.re[t] + self.im[t] * self.im[t];
        }
        p
    }
}

/// The kernels K(Δ) = Σ_{k<N} e^{jΔk} for fitting two tones at given
/// frequencies to two bins ([`Bank::pair_kernels`], [`PairKernels::fit`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairKernels {
    /// The bins (row, column) and N, the samples they were measured over.
    tones: [usize; 2],
    n: f32,
    /// A constant's leakage into each bin (row, column), per unit.
    dc: [Cplx; 2],
    /// Tone b into bin a: `kba` (row r, column c), and their determinant.
    krr: Cplx,
    kcr: Cplx,
    krc: Cplx,
    kcc: Cplx,
    det: Cplx,
    /// `image[a][b]`: tone b's negative frequency into bin a.
    image: [[Cplx; 2]; 2],
    /// For the pair's energy: K(w_r − w_c), K(2w_r), K(2w_c), K(w_r + w_c).
    energy: Option<[Cplx; 4]>,
}

impl PairKernels {
    /// [`Bank::unmix`] for tones at the frequencies these kernels were
    /// computed for instead of the bins' nominal ones: the two tones'
    /// complex amplitudes are fitted to both bins with the leakage and images
    /// at their true frequencies. Returns each bin's own tone alone, and the
    /// pair's energy (zero if the kernels were computed without `energy`).
    /// Mistuned tones' leakage otherwise swings the phase, and so the
    /// per-window frequency, by up to ±1 %. `x` holds correlations over the
    /// kernels' length of samples whose mean is `mean`.
    pub fn fit(&self, x: &Tones, mean: f32) -> PairFit {
        let div = |a: Cplx, b: Cplx| {
            let d = b.norm_sqr().max(f32::MIN_POSITIVE);
            let q = a.mul_conj(b);
            Cplx { re: q.re / d, im: q.im / d }
        };
        let conj = |z: Cplx| Cplx { re: z.re, im: -z.im };
        let dc = |a: usize| Cplx { re: mean * self.dc[a].re, im: mean * self.dc[a].im };
        let (xr, xc) = (x.at(self.tones[0]).sub(dc(0)), x.at(self.tones[1]).sub(dc(1)));
        // x_a = Σ_b A_b·K(w_b − bin_a) + conj(A_b)·K(−w_b − bin_a): solve the
        // 2×2 system for the tones' amplitudes A (images from the first
        // solution, then once more), so each bin's own tone is exact even
        // where the pair's mutual leakage is large (5 ms sub-blocks).
        let (krr, kcr, krc, kcc, det) = (self.krr, self.kcr, self.krc, self.kcc, self.det);
        let solve =
            |yr: Cplx, yc: Cplx| (div(yr.mul(kcc).sub(yc.mul(kcr)), det), div(yc.mul(krr).sub(yr.mul(krc)), det));
        let (ar, ac) = solve(xr, xc);
        let images = |a: usize| conj(ar).mul(self.image[a][0]).add(conj(ac).mul(self.image[a][1]));
        let (ar, ac) = solve(xr.sub(images(0)), xc.sub(images(1)));
        // The fitted pair's energy over the n samples, cross terms included
        // (over 5 ms two tones a few hundred hertz apart beat by ±20 %):
        // Σ|s|² = 2·Re Σ_{a,b} [A_a·conj(A_b)·K(w_a − w_b) + A_a·A_b·K(w_a + w_b)],
        // where K(0) = N, K(w_c − w_r) = conj K(w_r − w_c), and the two
        // cross terms of each sum are equal.
        let energy = self.energy.map_or(0.0, |[diff, twice_r, twice_c, sum]| {
            let cross = ar.mul(conj(ac)).mul(diff).re;
            let e = self.n * (ar.norm_sqr() + ac.norm_sqr())
                + 2.0 * cross
                + ar.mul(ar).mul(twice_r).re
                + ac.mul(ac).mul(twice_c).re
                + 2.0 * ar.mul(ac).mul(sum).re;
            2.0 * e
        });
        PairFit { own: (ar.mul(krr), ac.mul(kcc)), energy }
    }
}

/// Two tones fitted to their bins by [`PairKernels::fit`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairFit {
    /// Each bin's own tone, the other's leakage and both images removed.
    pub own: (Cplx, Cplx),
    /// Energy of the fitted pair over the analysed samples.
    pub energy: f32,
}

/// What the bank measures in one sub-block.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SubBlock {
    /// Correlation with each tone, phase referenced to the sub-block's first
    /// sample (structure of arrays, so the per-window maths vectorises).
    pub y: Tones,
    /// Σ x².
    pub energy: f32,
    /// Σ x.
    pub sum: f32,
}

/// Correlations per sub-block: real and imaginary part for each tone.
const LANES: usize = 2 * TONES;
/// Fixed-point scale of the table: cos/sin in Q10.
const TABLE_ONE: f32 = 1024.0;
/// Samples per exact integer partial sum (see [`simd`] for the bound).
const CHUNK: usize = 40;

/// Tables for one sample rate; shared by every detector at that rate.
#[derive(Debug)]
pub(crate) struct Bank {
    pub sample_rate: u32,
    /// Sub-block length in samples (a multiple of [`CHUNK`]).
    pub len: usize,
    /// For each pair of samples (2p, 2p+1) and each lane j (cos of the eight
    /// tones, then −sin of the eight tones), the two Q10 table values side by
    /// side: `[T[2p][0], T[2p+1][0], T[2p][1], T[2p+1][1], …]`. This is the
    /// operand layout of a 16-bit multiply-add-pairs instruction.
    pairs: Box<[[i16; 2 * LANES]]>,
    /// `e^{−jω·len}`: moves a phase reference forward by one sub-block.
    pub rot: Tones,
    /// Nominal frequencies, Hz.
    pub freq: [f32; TONES],
    /// Whether this CPU runs the AVX2 build of the correlator.
    avx2: bool,
    /// Leakage over one 10 ms window (two sub-blocks), see [`Bank::unmix`]:
    /// `leak[a][b]` = K(ω_b − ω_a)/N (tone b's positive frequency into bin a),
    /// `image[a][b]` = K(−ω_b − ω_a)/N (its negative frequency), where
    /// K(Δ) = Σ_{n<N} e^{jΔn}.
    leak: [[Cplx; TONES]; TONES],
    image: [[Cplx; TONES]; TONES],
    /// K(−ω_a): a constant's leakage into bin a, per unit of the constant.
    dc: [Cplx; TONES],
}

impl Bank {
    fn build(sample_rate: u32) -> Bank {
        let len = (sample_rate / SUB_BLOCKS_PER_SECOND) as usize;
        debug_assert_eq!(len % CHUNK, 0);
        let freqs: Vec<f64> = ROW_HZ.iter().chain(COL_HZ.iter()).copied().collect();
        let mut pairs = vec![[0i16; 2 * LANES]; len / 2];
        let mut rot = Tones::default();
        let mut freq = [0f32; TONES];
        let q = |v: f64| (v * TABLE_ONE as f64).round() as i16;
        for (t, &f) in freqs.iter().enumerate() {
            let w = std::f64::consts::TAU * f / sample_rate as f64;
            for (p, pair) in pairs.iter_mut().enumerate() {
                for k in 0..2 {
                    let n = (2 * p + k) as f64;
                    pair[2 * t + k] = q((w * n).cos());
                    pair[2 * (TONES + t) + k] = q(-(w * n).sin());
                }
            }
            let a = w * len as f64;
            rot.re[t] = a.cos() as f32;
            rot.im[t] = -a.sin() as f32;
            freq[t] = f as f32;
        }
        let n = 2 * len;
        let kernel = |delta: f64| {
            let (mut re, mut im) = (0f64, 0f64);
            for k in 0..n {
                re += (delta * k as f64).cos();
                im += (delta * k as f64).sin();
            }
            Cplx { re: (re / n as f64) as f32, im: (im / n as f64) as f32 }
        };
        let w: Vec<f64> = freqs.iter().map(|f| std::f64::consts::TAU * f / sample_rate as f64).collect();
        let mut leak = [[Cplx::default(); TONES]; TONES];
        let mut image = [[Cplx::default(); TONES]; TONES];
        for a in 0..TONES {
            for b in 0..TONES {
                leak[a][b] = kernel(w[b] - w[a]);
                image[a][b] = kernel(-w[b] - w[a]);
            }
        }
        let dc: [Cplx; TONES] = std::array::from_fn(|a| {
            let k = kernel(-w[a]);
            Cplx { re: k.re * n as f32, im: k.im * n as f32 }
        });
        Bank { sample_rate, len, pairs: pairs.into_boxed_slice(), rot, freq, avx2: simd::has_avx2(), leak, image, dc }
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

    /// Window values of row tone `r` and column tone `c` (indices into the
    /// bank) with the other tone's leakage and both tones' negative-frequency
    /// images removed. In a 10 ms rectangular window the other tone of a pair
    /// leaks 20 dB or less below itself into a bin and would swing the phase
    /// (so the frequency estimate) by several hertz from window to window;
    /// each tone's complex amplitude is its own bin value / N, so its leakage
    /// into the other bin is known and subtracted. What remains is the
    /// second-order error of using leaky values to estimate the leakage.
    #[inline]
    pub fn unmix(&self, x: &Tones, mean: f32, r: usize, c: usize) -> (Cplx, Cplx) {
        // A DC offset leaks too: mean · K(−ω_a).
        let dc = |a: usize| Cplx { re: mean * self.dc[a].re, im: mean * self.dc[a].im };
        let (xr, xc) = (x.at(r).sub(dc(r)), x.at(c).sub(dc(c)));
        let conj = |z: Cplx| Cplx { re: z.re, im: -z.im };
        let clean = |a: usize, xa: Cplx, b: usize, xb: Cplx| {
            let l = self.leak[a][b].mul(xb).add(self.image[a][b].mul(conj(xb))).add(self.image[a][a].mul(conj(xa)));
            Cplx { re: xa.re - l.re, im: xa.im - l.im }
        };
        (clean(r, xr, c, xc), clean(c, xc, r, xr))
    }

    /// The kernels that [`PairKernels::fit`] needs to fit tones at `hz` (row,
    /// column) to bins `r` and `c` of correlations over `n` samples (a
    /// window, 2·len, or a sub-block, len) — computed once for every set of
    /// bins measured over the same length at the same frequencies. With
    /// `energy`, also those of the fitted pair's energy. Costs a few dozen
    /// sines; the masker's candidate test uses it on the few windows that
    /// need it.
    pub fn pair_kernels(&self, n: usize, r: usize, c: usize, hz: [f32; 2], energy: bool) -> PairKernels {
        let n = n as f32;
        let tau = std::f32::consts::TAU / self.sample_rate as f32;
        // K(Δ) = Σ_{k<N} e^{jΔk} = e^{jΔ(N−1)/2} · sin(NΔ/2) / sin(Δ/2), with
        // sin(NΔ/2) = sin(φ + Δ/2) for φ = Δ(N−1)/2: two sin/cos pairs.
        let kernel = |d: f32| {
            let half = 0.5 * d;
            let (s, c) = half.sin_cos();
            let phase = half * (n - 1.0);
            let (ps, pc) = phase.sin_cos();
            let m = if s.abs() < 1e-6 { n } else { (ps * c + pc * s) / s };
            Cplx { re: m * pc, im: m * ps }
        };
        let w = [hz[0] * tau, hz[1] * tau];
        let bin = [self.freq[r] * tau, self.freq[c] * tau];
        let k = |b: usize, a: usize| kernel(w[b] - bin[a]);
        let im = |b: usize, a: usize| kernel(-w[b] - bin[a]);
        let (krr, kcr, krc, kcc) = (k(0, 0), k(1, 0), k(0, 1), k(1, 1));
        PairKernels {
            tones: [r, c],
            n,
            dc: [kernel(-bin[0]), kernel(-bin[1])],
            krr,
            kcr,
            krc,
            kcc,
            det: krr.mul(kcc).sub(kcr.mul(krc)),
            image: [[im(0, 0), im(1, 0)], [im(0, 1), im(1, 1)]],
            energy: energy.then(|| [kernel(w[0] - w[1]), kernel(2.0 * w[0]), kernel(2.0 * w[1]), kernel(w[0] + w[1])]),
        }
    }

    /// Frequency offset (Hz) from the phase advance over one hop at tone `t`.
    #[inline]
    pub fn offset_hz(&self, advance: Cplx, t: usize) -> f32 {
        const HZ_PER_RADIAN: f32 = SUB_BLOCKS_PER_SECOND as f32 / std::f32::consts::TAU;
        advance.mul(self.rot.at(t)).arg() * HZ_PER_RADIAN
    }

    /// 1 / |window response|² at `offset` Hz, capped at 2 (3 dB).
    #[inline]
    pub fn gain_correction(&self, offset: f32) -> f32 {
        // The 10 ms window's response is sin(u)/u with u = π·offset·10 ms;
        // u²/sin²u = 1 + u²/3 + u⁴/15 + 2u⁶/189 (within 1 % to u = 1.3,
        // beyond which the cap applies anyway).
        let u2 = {
            let u = std::f32::consts::PI * offset * 0.01;
            u * u
        };
        (1.0 + u2 * (1.0 / 3.0 + u2 * (1.0 / 15.0 + u2 * (2.0 / 189.0)))).min(2.0)
    }

    /// Analyses one sub-block (`x.len() == self.len`).
    #[inline]
    pub fn analyse(&self, x: &[i16]) -> SubBlock {
        debug_assert_eq!(x.len(), self.len);
        let mut out = SubBlock::default();
        simd::analyse(self.avx2, x, &self.pairs, &mut out);
        out
    }
}

/// One sub-block's analysis — the correlations, exact in 32-bit integers
/// per [`CHUNK`] of samples, then Σx² and Σx — and its AVX2 build chosen at
/// run time.
///
/// Bound: |x| ≤ 2^15 and |table| ≤ 2^10, so each product is at most 2^25 in
/// magnitude and a sum of 40 of them at most 1.35·10^9 < 2^31: no overflow.
/// Integer sums are exact, so the portable and AVX2 builds agree bit for bit.
///
/// With `codec::simd` one of the two modules of the core that need
/// `unsafe`: calling a `#[target_feature]` function and its unaligned vector
/// loads/stores.
#[allow(unsafe_code)]
mod simd {
    use super::{CHUNK, LANES, SubBlock, TABLE_ONE, TONES};

    fn correlate_portable(x: &[i16], pairs: &[[i16; 2 * LANES]]) -> [i32; LANES] {
        let mut acc = [0i32; LANES];
        for (xs, p) in x.chunks_exact(2).zip(pairs) {
            let (x0, x1) = (xs[0] as i32, xs[1] as i32);
            for j in 0..LANES {
                acc[j] += x0 * p[2 * j] as i32 + x1 * p[2 * j + 1] as i32;
            }
        }
        acc
    }

    /// One sub-block, whole: each chunk's exact integer correlations
    /// converted to `f32` and summed chunk by chunk, scaled from the table's
    /// Q10 (a power of two: exact), then Σx² and Σx. The AVX2 build below
    /// does the same operations in the same order.
    #[inline(always)]
    fn analyse_body(x: &[i16], pairs: &[[i16; 2 * LANES]], out: &mut SubBlock) {
        let mut acc = [0f32; LANES];
        for (xs, ps) in x.chunks_exact(CHUNK).zip(pairs.chunks_exact(CHUNK / 2)) {
            let part = correlate_portable(xs, ps);
            for (a, p) in acc.iter_mut().zip(part) {
                *a += p as f32;
            }
        }
        for t in 0..TONES {
            out.y.re[t] = acc[t] * (1.0 / TABLE_ONE);
            out.y.im[t] = acc[TONES + t] * (1.0 / TABLE_ONE);
        }
        finish_energy(x, out);
    }

    /// Σx² and Σx of the sub-block into `out`.
    #[inline(always)]
    fn finish_energy(x: &[i16], out: &mut SubBlock) {
        let (e, m) = energy_body(x);
        out.energy = sum8(e);
        out.sum = sum8(m);
    }

    /// The eight lanes' total, in a fixed order.
    #[inline(always)]
    fn sum8(a: [f32; 8]) -> f32 {
        ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
    }

    /// [`analyse_body`] with the correlations kept in vector registers:
    /// `vcvtdq2ps` rounds like `as f32`, and the adds and the scaling are
    /// the same IEEE operations lane by lane.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn analyse_avx2(x: &[i16], pairs: &[[i16; 2 * LANES]], out: &mut SubBlock) {
        use std::arch::x86_64::*;
        let mut re = _mm256_setzero_ps();
        let mut im = _mm256_setzero_ps();
        for (xs, ps) in x.chunks_exact(CHUNK).zip(pairs.chunks_exact(CHUNK / 2)) {
            let (lo, hi) = correlate_avx2_regs(xs, ps);
            re = _mm256_add_ps(re, _mm256_cvtepi32_ps(lo));
            im = _mm256_add_ps(im, _mm256_cvtepi32_ps(hi));
        }
        let scale = _mm256_set1_ps(1.0 / TABLE_ONE);
        // Σx² and Σx per lane as in `energy_body`: a multiply and an add
        // (never fused), eight samples at a time.
        let mut e = _mm256_setzero_ps();
        let mut m = _mm256_setzero_ps();
        for c in x.chunks_exact(8) {
            // SAFETY: `c` is 8 i16 = 16 bytes; unaligned loads are allowed.
            let v = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(unsafe { _mm_loadu_si128(c.as_ptr().cast::<__m128i>()) }));
            e = _mm256_add_ps(e, _mm256_mul_ps(v, v));
            m = _mm256_add_ps(m, v);
        }
        let (mut el, mut ml) = ([0f32; 8], [0f32; 8]);
        // SAFETY: `re` and `im` of `out.y`, `el` and `ml` are 8 f32 = 32
        // bytes each; unaligned stores are allowed.
        unsafe {
            _mm256_storeu_ps(out.y.re.as_mut_ptr(), _mm256_mul_ps(re, scale));
            _mm256_storeu_ps(out.y.im.as_mut_ptr(), _mm256_mul_ps(im, scale));
            _mm256_storeu_ps(el.as_mut_ptr(), e);
            _mm256_storeu_ps(ml.as_mut_ptr(), m);
        }
        out.energy = sum8(el);
        out.sum = sum8(ml);
    }

    /// One sub-block through the AVX2 build where the CPU has it.
    #[inline]
    pub(super) fn analyse(avx2: bool, x: &[i16], pairs: &[[i16; 2 * LANES]], out: &mut SubBlock) {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` is true only when `has_avx2()` found the CPU
            // feature at run time, which is all `analyse_avx2` requires.
            return unsafe { analyse_avx2(x, pairs, out) };
        }
        let _ = avx2;
        analyse_body(x, pairs, out)
    }

    /// Two `vpmaddwd` and two `vpaddd` per pair of samples.
    #[cfg(all(test, target_arch = "x86_64"))]
    #[target_feature(enable = "avx2")]
    fn correlate_avx2(x: &[i16], pairs: &[[i16; 2 * LANES]]) -> [i32; LANES] {
        use std::arch::x86_64::*;
        let (lo, hi) = correlate_avx2_regs(x, pairs);
        let mut out = [0i32; LANES];
        // SAFETY: `out` is 16 i32 = 64 bytes; the stores write its two halves.
        unsafe {
            _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), lo);
            _mm256_storeu_si256(out.as_mut_ptr().add(8).cast::<__m256i>(), hi);
        }
        out
    }

    /// The correlations of one chunk: lanes 0–7 (cosines) and 8–15 (sines).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    fn correlate_avx2_regs(
        x: &[i16],
        pairs: &[[i16; 2 * LANES]],
    ) -> (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i) {
        use std::arch::x86_64::*;
        let mut lo = _mm256_setzero_si256();
        let mut hi = _mm256_setzero_si256();
        for (xs, p) in x.chunks_exact(2).zip(pairs) {
            // The two samples side by side, repeated in every 32-bit lane.
            let both = (xs[0] as u16 as u32 | (xs[1] as u16 as u32) << 16) as i32;
            let b = _mm256_set1_epi32(both);
            // SAFETY: `p` is 32 i16 = 64 bytes; the loads read bytes 0..32
            // and 32..64 of it, unaligned loads being allowed.
            let (t0, t1) = unsafe {
                (
                    _mm256_loadu_si256(p.as_ptr().cast::<__m256i>()),
                    _mm256_loadu_si256(p.as_ptr().add(16).cast::<__m256i>()),
                )
            };
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(b, t0));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(b, t1));
        }
        (lo, hi)
    }

    pub(super) fn has_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Σx² and Σx on eight lanes, fixed summation order (identical in both builds).
    #[inline(always)]
    fn energy_body(x: &[i16]) -> ([f32; 8], [f32; 8]) {
        let (mut e, mut m) = ([0f32; 8], [0f32; 8]);
        for c in x.chunks_exact(8) {
            for i in 0..8 {
                let v = c[i] as f32;
                e[i] += v * v;
                m[i] += v;
            }
        }
        (e, m)
    }

    /// Correlates one chunk (`x.len() == CHUNK`, `pairs.len() == CHUNK / 2`).
    #[cfg(test)]
    fn correlate(avx2: bool, x: &[i16], pairs: &[[i16; 2 * LANES]]) -> [i32; LANES] {
        debug_assert!(x.len() == CHUNK && pairs.len() == CHUNK / 2);
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` is true only when `has_avx2()` found the CPU
            // feature at run time, which is all `correlate_avx2` requires.
            return unsafe { correlate_avx2(x, pairs) };
        }
        let _ = avx2;
        correlate_portable(x, pairs)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn both_builds_analyse_a_sub_block_bit_for_bit_at_every_rate() {
            for rate in [8000, 16000, 48000] {
                let bank = super::super::Bank::for_rate(rate).unwrap();
                let mut seed = 0x1234_5678_9ABC_DEF0u64 ^ rate as u64;
                for round in 0..50 {
                    let x: Vec<i16> = (0..bank.len)
                        .map(|n| {
                            let seed = crate::dtmf::xorshift(&mut seed);
                            match round % 3 {
                                0 => (seed >> 48) as i16,
                                1 => ((seed >> 52) as i16) - 2048 + (n as i16 % 7) * 300,
                                _ => {
                                    if n % 2 == 0 {
                                        i16::MIN
                                    } else {
                                        i16::MAX
                                    }
                                }
                            }
                        })
                        .collect();
                    let (mut a, mut b) = (SubBlock::default(), SubBlock::default());
                    analyse(false, &x, &bank.pairs, &mut a);
                    analyse(has_avx2(), &x, &bank.pairs, &mut b);
                    assert_eq!(a.y, b.y, "{rate} Hz round {round}");
                    assert_eq!((a.energy.to_bits(), a.sum.to_bits()), (b.energy.to_bits(), b.sum.to_bits()));
                }
            }
        }

        #[test]
        fn both_builds_agree_bit_for_bit_even_at_the_overflow_bound() {
            let table: Vec<[i16; 2 * LANES]> = (0..CHUNK / 2)
                .map(|p| std::array::from_fn(|j| (((p * 7 + j * 13) % 2049) as i32 - 1024) as i16))
                .collect();
            let extreme: Vec<[i16; 2 * LANES]> = (0..CHUNK / 2).map(|_| [-1024; 2 * LANES]).collect();
            let signals: [Vec<i16>; 3] = [
                (0..CHUNK).map(|n| (((n * 31) % 23) as i32 * 2000 - 22000) as i16).collect(),
                vec![i16::MIN; CHUNK],
                (0..CHUNK).map(|n| if n % 2 == 0 { i16::MIN } else { i16::MAX }).collect(),
            ];
            for x in &signals {
                for t in [&table, &extreme] {
                    let a = correlate(false, x, t);
                    assert_eq!(a, correlate(has_avx2(), x, t));
                    // And both equal the sum in 64-bit arithmetic: nothing overflowed.
                    for j in 0..LANES {
                        let exact: i64 = (0..CHUNK).map(|n| x[n] as i64 * t[n / 2][2 * j + n % 2] as i64).sum();
                        assert_eq!(a[j] as i64, exact);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nominal_tone_lands_in_its_bin_with_amplitude_n_over_two() {
        let bank = Bank::for_rate(8000).unwrap();
        let w = std::f64::consts::TAU * 770.0 / 8000.0;
        let x: Vec<i16> = (0..bank.len).map(|n| (1000.0 * (w * n as f64).cos()).round() as i16).collect();
        let sb = bank.analyse(&x);
        let mag = sb.y.at(1).norm_sqr().sqrt();
        // 40 samples: |X| ≈ A·N/2 plus a little leakage from the negative frequency.
        assert!((mag - 20_000.0).abs() < 600.0, "{mag}");
        assert!(sb.y.re[1] > 0.0);
    }

    #[test]
    fn two_mistuned_tones_are_fitted_over_a_window_and_over_a_sub_block() {
        // 852 Hz + 2 % and 1477 Hz − 1.5 %, 6 dB apart, on a DC offset: the
        // fit at the true frequencies gives each bin its own tone alone —
        // (A/2)·e^{jφ}·K(w − bin) — and the pair's energy without the DC.
        use std::f64::consts::TAU;
        for rate in [8000, 16000, 48000] {
            let bank = Bank::for_rate(rate).unwrap();
            let (r, c) = (2, 6);
            let hz = [852.0 * 1.02, 1477.0 * 0.985];
            let (amp, phase) = ([6000.0, 3000.0], [0.7, -2.1]);
            let w = hz.map(|f| TAU * f / rate as f64);
            let tone = |t: usize, n: usize| amp[t] * (w[t] * n as f64 + phase[t]).cos();
            let x: Vec<i16> = (0..2 * bank.len).map(|n| (tone(0, n) + tone(1, n) + 400.0).round() as i16).collect();
            let (a, b) = (bank.analyse(&x[..bank.len]), bank.analyse(&x[bank.len..]));
            let window = a.y.join(&bank.rot, &b.y);
            let hz32 = [hz[0] as f32, hz[1] as f32];
            for (n, bins, mean) in [
                (2 * bank.len, window, (a.sum + b.sum) / (2 * bank.len) as f32),
                (bank.len, a.y, a.sum / bank.len as f32),
            ] {
                let with_energy = bank.pair_kernels(n, r, c, hz32, true).fit(&bins, mean);
                let own_only = bank.pair_kernels(n, r, c, hz32, false).fit(&bins, mean);
                assert_eq!(own_only.own, with_energy.own);
                assert_eq!(own_only.energy, 0.0);
                for (t, (got, bin)) in [(0, (with_energy.own.0, r)), (1, (with_energy.own.1, c))] {
                    let d = w[t] - TAU * bank.freq[bin] as f64 / rate as f64;
                    let k =
                        (0..n).fold((0.0, 0.0), |(re, im), i| (re + (d * i as f64).cos(), im + (d * i as f64).sin()));
                    let (h, p) = (amp[t] / 2.0, phase[t]);
                    let want = (h * (p.cos() * k.0 - p.sin() * k.1), h * (p.cos() * k.1 + p.sin() * k.0));
                    let err = (got.re as f64 - want.0).hypot(got.im as f64 - want.1);
                    assert!(err < 0.01 * want.0.hypot(want.1), "{rate} Hz, n {n}, tone {t}: {got:?} vs {want:?}");
                }
                let exact: f64 = (0..n).map(|i| (tone(0, i) + tone(1, i)).powi(2)).sum();
                let rel = with_energy.energy as f64 / exact - 1.0;
                assert!(rel.abs() < 0.01, "{rate} Hz, n {n}: energy off by {rel}");
            }
        }
    }

    #[test]
    fn unsupported_rates_have_no_bank() {
        assert!(Bank::for_rate(44100).is_none());
        assert_eq!(Bank::for_rate(48000).unwrap().len, 240);
    }
}
