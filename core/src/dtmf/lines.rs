//! The detector's history of the latest windows, and the test on it for a
//! pair of steady lines under other audio: the masker's tier L and the
//! detector's talk-down.
//!
//! Speech, babble or music on top of a key takes away the pair's share of
//! a 10 ms window's energy, which every other tier wants; but the key's two
//! tones stay what they were — two lines whose phase turns at one steady
//! rate, window after window — while speech harmonics glide and noise turns
//! at random. Tier L keeps the latest windows' correlations and asks, per
//! bin, how coherent the phase advance is over a long lag (see
//! [`LINE_LAG`]): a pair of bins, one per group, each far more coherent
//! than its group's other bins and steady in level for [`LINE_WINDOWS`]
//! windows, with no harmonics of its own (music) and not two harmonics of
//! one voice (see [`VOICE_F0`]), is a key whatever else is on the line.

use super::bank::{Bank, Cplx, SUB_BLOCKS_PER_SECOND, TONES, Tones};

/// Windows (5 ms apart, 10 ms long) over which the lines must hold:
/// 10 windows span 55 ms of audio. (12, 65 ms, before the voice test:
/// speech at 0 dB per-tone SNR 84.3 → 90.3 % of the tones' time masked
/// with 10, 200 ms look-ahead, `overlap_leaks --quick --per-key 4`; at 8,
/// 45 ms, a voice's two formant lines held a key's bins steadily enough
/// for a 70 ms span in speech without keys, not two harmonics of one
/// fundamental.)
pub(crate) const LINE_WINDOWS: usize = 10;
/// The long lag, in windows, whose phase advance must be steady: 30 ms.
const LINE_LAG: usize = 6;

/// The detector's short lines (see [`Lines::find_short`]): 7 windows (40 ms),
/// the phase advance over 4 (20 ms).
const SHORT_WINDOWS: usize = 7;
const SHORT_LAG: usize = 4;

/// The short lines' music test: a tone is the `h`-th harmonic of a note
/// (`h` up to this) when the power at (h − 1)/h of its frequency, the note's
/// next harmonic down, is at least [`NOTE_BELOW`] of its own.
const NOTE_HARMONICS: u32 = 6;
const NOTE_BELOW: f32 = 0.25;

/// Tier L's limits (see [`FIND`] and [`KEEP`]).
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The coherence of each tone's phase advance over [`LINE_LAG`]
    /// (|Σ z| / Σ |z| of the advances over the windows): voiced speech that
    /// glides a few hertz over the lag falls below it.
    coherence: f32,
    /// Each tone's coherent power over every other bin's of its group: a
    /// chord with two notes in a group is not a key.
    dominance: f32,
    /// Each tone's weakest window power over its strongest across the
    /// windows: a key holds its level under other audio; a voice's
    /// harmonics swell and fade with its syllables.
    level: f32,
    /// Largest power at twice a tone's frequency over the tone's: a note
    /// of music has its own harmonics (the second 6 dB down), a key's tones
    /// have none. Without this test 7–15 % of the hold music was masked.
    harmonic: f32,
}

/// The limits that find a pair: coherence 0.95, 6 dB over the group, level
/// within 7 dB, second harmonic 13 dB down. Measured on the over-masking
/// test (34 minutes of speech and music, no keys) and `overlap_leaks
/// --quick --lookahead-ms 200`: coherence 0.95 and 0.98 masked the same
/// speech and music without keys, 0.95 more keys under babble at 0 dB
/// per-tone SNR (79.5 against 76.4 % of their time). The level limit:
/// before the voice test (65 ms of lines), 0.2 let a high voice's harmonics
/// make 90 ms spans and 0.25 did not; with it (55 ms), 0.15–0.3 mask
/// nothing more than without tier L (0.2: babble at 0 dB 82.4 → 83.7 %).
const FIND: Limits = Limits { coherence: 0.95, dominance: 4.0, level: 0.2, harmonic: 0.05 };

/// A pair is found only on a window in which each tone has at least this
/// share of its loudest power over the windows.
const FIND_WHOLE: f32 = 0.5;

/// The limits within which the pair found in the previous window goes on
/// (coherence 0.8, 3 dB over the group, level within 10 dB, second
/// harmonic 10 dB down): other audio on top of a long key spoils a window
/// now and then, and the chain's hold alone lost the key part-way (speech
/// at 0 dB per-tone SNR, 200 ms look-ahead: 83.9 → 84.3 % of the tones'
/// time masked, babble 81.1 → 81.9 %, at +6 dB 94.6 → 95.0 % and 95.6 →
/// 96.0 %; `overlap_leaks --quick --per-key 4`).
/// Only a pair found within [`FIND`] goes on, so audio without keys is
/// never judged by these.
const KEEP: Limits = Limits { coherence: 0.8, dominance: 2.0, level: 0.1, harmonic: 0.1 };

/// Largest offset of each tone (the lenient decoders' ±3.5 %).
const LINE_OFFSET: f32 = 0.035;
/// Two bins whose measured frequencies are this close hear one line (Hz).
const SAME_LINE_HZ: f32 = 10.0;
/// The voice test (see `Lines::voiced`): fundamentals of voices, Hz; the
/// highest harmonic of one the row tone may be; how close (Hz) the column
/// tone must be to a harmonic of the same fundamental; and how loud the
/// loudest of that fundamental's other harmonics next to the two (and the
/// fundamental itself) must be, over the weaker tone. With the lines held
/// 45 ms instead of 65, a high voice (en-us+belinda) put two harmonics on
/// a key's bins steadily enough for 2.9 % of its speech to be masked, in
/// spans up to 115 ms; 95 % of those pairs fit one fundamental within
/// 0.5 %. Measured at 55 ms (the over-masking test): without the test a
/// 105 ms span; comb limits of 0.02–0.2 pass, 0.3 does not (0.05 for a
/// margin); the test costs babble at 0 dB per-tone SNR 84.2 → 83.6 % of
/// the tones' time masked (`overlap_leaks --quick --per-key 4 --lookahead-ms 200`).
const VOICE_F0: std::ops::RangeInclusive<f32> = 100.0..=450.0;
const VOICE_MAX_HARMONIC: u32 = 8;
const VOICE_FIT_HZ: f32 = 10.0;
const VOICE_COMB: f32 = 0.05;
/// Twist within ±16 dB, as the loose limits.
const LINE_TWIST: f32 = 39.8;

/// A pair of steady lines: the bins (row, column), their loudest window
/// power and their offsets, Hz.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub tones: [u8; 2],
    pub power: [f32; 2],
    pub hz: [f32; 2],
}

/// The latest windows' correlations.
#[derive(Clone)]
pub(crate) struct Lines {
    /// The windows' correlations and their |X|², by window index modulo
    /// [`LINE_WINDOWS`].
    x: [Tones; LINE_WINDOWS],
    p: [[f32; TONES]; LINE_WINDOWS],
    /// The latest window's index, and its slot in `x` and `p` (the
    /// samples' sub-block is `k` modulo [`HARMONIC_BLOCKS`]).
    k: u64,
    slot: usize,
    /// The latest [`HARMONIC_BLOCKS`] sub-blocks' samples, by sub-block
    /// index modulo that.
    samples: Box<[i16]>,
}

/// Audio and what measures it stay out of `Debug` output (a key's tones
/// are in them).
impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines").field("window", &self.k).finish_non_exhaustive()
    }
}

/// Sub-blocks over which the harmonics are measured: 40 ms (a power of
/// two: the slot is the sub-block index's low bits).
const HARMONIC_BLOCKS: usize = 8;
const _: () = assert!(HARMONIC_BLOCKS.is_power_of_two());

impl Lines {
    /// Tier L for a stream at `sample_rate`.
    pub fn new(sample_rate: u32) -> Lines {
        let len = (sample_rate / SUB_BLOCKS_PER_SECOND) as usize;
        Lines {
            x: [Tones::default(); LINE_WINDOWS],
            p: [[0.0; TONES]; LINE_WINDOWS],
            k: 0,
            slot: 0,
            samples: vec![0; HARMONIC_BLOCKS * len].into_boxed_slice(),
        }
    }

    /// Bytes it takes, allocations included.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Lines>() + std::mem::size_of_val(&*self.samples)
    }

    /// |Σ x e^{−jωn}|² over the latest [`HARMONIC_BLOCKS`] sub-blocks, in
    /// order, at `hz`.
    fn power_at(&self, k: u64, rate: f32, hz: f32) -> f32 {
        let len = self.samples.len() / HARMONIC_BLOCKS;
        let w = std::f32::consts::TAU * hz / rate;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0f32, 0f32);
        for b in (k + 1 - HARMONIC_BLOCKS as u64)..=k {
            let slot = (b as usize) & (HARMONIC_BLOCKS - 1);
            for &v in &self.samples[slot * len..(slot + 1) * len] {
                let s0 = v as f32 + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    }

    /// Whether two lines at `hz` (row, column), the weaker of which has
    /// power `weaker` (as [`Lines::power_at`] measures it), are two
    /// harmonics of one voice: both multiples of a fundamental between
    /// [`VOICE_F0`]'s bounds, and that fundamental, or its harmonics next
    /// to the two, there too.
    fn voiced(&self, k: u64, rate: f32, hz: [f32; 2], weaker: f32) -> bool {
        let [fr, fc] = hz;
        for n in 1..=VOICE_MAX_HARMONIC {
            let f0 = fr / n as f32;
            if !VOICE_F0.contains(&f0) {
                continue;
            }
            let m = (fc / f0).round();
            if (fc - m * f0).abs() > VOICE_FIT_HZ {
                continue;
            }
            let m = m as u32;
            let loudest = [1, n - 1, n + 1, m - 1, m + 1]
                .into_iter()
                .filter(|&h| h >= 1 && h != n && h != m && h as f32 * f0 < 0.45 * rate)
                .map(|h| self.power_at(k, rate, h as f32 * f0))
                .fold(0f32, f32::max);
            if loudest >= VOICE_COMB * weaker {
                return true;
            }
        }
        false
    }

    /// The power of a tone at bin `t`'s frequency plus `hz` over the latest
    /// `m` windows (at most [`LINE_WINDOWS`]), summed coherently: the mean
    /// of the windows' correlations, each turned back by the tone's phase
    /// advance since, |·|², corrected for the window's response at `hz`. A
    /// tone that goes on keeps its power; other audio in the bin, whose
    /// phase does not turn at the tone's rate, averages down.
    pub fn coherent_power(&self, bank: &Bank, t: usize, hz: f32, m: usize) -> f32 {
        let m = m.min(LINE_WINDOWS);
        // The tone's advance per window is conj(rot) · e^{j2π·hz·hop}: turn
        // each window on by it as many times as it is old.
        let (sin, cos) = (std::f32::consts::TAU * hz / SUB_BLOCKS_PER_SECOND as f32).sin_cos();
        let advance = Cplx { re: cos, im: sin }.mul_conj(bank.rot.at(t));
        let (mut turn, mut s) = (Cplx { re: 1.0, im: 0.0 }, Cplx::default());
        let mut slot = self.slot;
        for _ in 0..m {
            s = s.add(self.x[slot].at(t).mul(turn));
            turn = turn.mul(advance);
            slot = if slot == 0 { LINE_WINDOWS - 1 } else { slot - 1 };
        }
        s.norm_sqr() / (m * m) as f32 * bank.gain_correction(hz)
    }

    /// |X|² of the eight bins in the latest window.
    pub fn latest_power(&self) -> &[f32; TONES] {
        &self.p[self.slot]
    }

    /// Takes window `k` in — its correlations `x` — every window (cheap);
    /// its newer sub-block's samples are in [`Lines::pending`]`(k)` already.
    pub fn record(&mut self, k: u64, x: &Tones) {
        // Windows come one after the other (the slots need no division).
        let slot = if self.slot + 1 == LINE_WINDOWS { 0 } else { self.slot + 1 };
        self.x[slot] = *x;
        self.p[slot] = x.norm_sqr();
        (self.k, self.slot) = (k, slot);
    }

    /// The slot of the samples of sub-block `k` (the detector fills it as
    /// they arrive: its only sub-block buffer).
    pub fn pending(&mut self, k: u64) -> &mut [i16] {
        let len = self.samples.len() / HARMONIC_BLOCKS;
        let block = (k as usize) & (HARMONIC_BLOCKS - 1);
        &mut self.samples[block * len..(block + 1) * len]
    }

    /// The pair of steady lines over the latest [`LINE_WINDOWS`] windows
    /// (up to window `w`, [`Lines::record`]ed), if there is one. `keep`:
    /// the pair tier L found in the previous window, which goes on within
    /// [`KEEP`]'s wider limits.
    pub fn find(&self, bank: &Bank, keep: Option<[u8; 2]>) -> Option<Line> {
        self.find_over(bank, keep, LINE_WINDOWS, LINE_LAG)
    }

    /// [`Lines::find`] over the latest [`SHORT_WINDOWS`] windows only (40 ms,
    /// a lag of 20 ms): the detector's talk-down for keys of 40–55 ms, on
    /// which its caller puts the profile's tighter frequency limits.
    pub fn find_short(&self, bank: &Bank) -> Option<Line> {
        self.find_over(bank, None, SHORT_WINDOWS, SHORT_LAG)
    }

    /// [`Lines::find`] over the latest `n` windows, the phase advance over a
    /// lag of `lag` windows.
    fn find_over(&self, bank: &Bank, keep: Option<[u8; 2]>, n: usize, lag: usize) -> Option<Line> {
        let k = self.k;
        if k < LINE_WINDOWS as u64 {
            return None;
        }
        let limits = if keep.is_some() { KEEP } else { FIND };
        // The windows oldest first.
        let order: [usize; LINE_WINDOWS] = std::array::from_fn(|i| (self.slot + 1 + i) % LINE_WINDOWS);
        let order = &order[LINE_WINDOWS - n..];
        // Each bin's level over the windows first (cheap): most audio has
        // no steady bin in one group or the other.
        let (mut lo, mut hi) = ([f32::MAX; TONES], [0f32; TONES]);
        for &o in order {
            let p = &self.p[o];
            for t in 0..TONES {
                // Selects, not `f32::min`/`max` (whose NaN rules keep the
                // loop from vectorising; no NaN reaches here).
                lo[t] = if p[t] < lo[t] { p[t] } else { lo[t] };
                hi[t] = if p[t] > hi[t] { p[t] } else { hi[t] };
            }
        }
        let steady: [bool; TONES] = std::array::from_fn(|t| hi[t] > 0.0 && lo[t] >= limits.level * hi[t]);
        if !(steady[..4].iter().any(|&s| s) && steady[4..].iter().any(|&s| s)) {
            return None;
        }
        let at = |i: usize, t: usize| self.x[order[i]].at(t);
        let mut coherent = [0f32; TONES];
        let mut coherence = [0f32; TONES];
        let mut hz = [0f32; TONES];
        for t in 0..TONES {
            // rot^lag: the nominal tone's phase turn over the lag.
            let rot = bank.rot.at(t);
            let mut rot_lag = Cplx { re: 1.0, im: 0.0 };
            for _ in 0..lag {
                rot_lag = rot_lag.mul(rot);
            }
            let (mut s1, mut s, mut a) = (Cplx::default(), Cplx::default(), 0f32);
            for i in 1..n {
                s1 = s1.add(at(i, t).mul_conj(at(i - 1, t)));
            }
            for i in lag..n {
                let z = at(i, t).mul_conj(at(i - lag, t));
                s = s.add(z);
                a += z.norm_sqr().sqrt();
            }
            let s = s.mul(rot_lag);
            let m = s.norm_sqr().sqrt();
            coherent[t] = m;
            coherence[t] = if a > 0.0 { m / a } else { 0.0 };
            hz[t] = bank.offset_hz(s1, t);
        }
        let best = |from: usize| {
            let mut b = from;
            for t in from..from + 4 {
                if coherent[t] > coherent[b] {
                    b = t;
                }
            }
            b
        };
        let [r, c] = keep.map_or([best(0), best(4)], |p| p.map(usize::from));
        let good = |t: usize, from: usize| {
            coherence[t] >= limits.coherence
                && steady[t]
                && hz[t].abs() <= LINE_OFFSET * bank.freq[t]
                && (from..from + 4).all(|u| {
                    // A bin that hears the same line (a tone off its own
                    // bin leaks into the next, coherently) is no rival.
                    let same = (bank.freq[u] + hz[u] - bank.freq[t] - hz[t]).abs() <= SAME_LINE_HZ;
                    u == t || same || coherent[t] >= limits.dominance * coherent[u]
                })
        };
        if !(good(r, 0) && good(c, 4)) {
            return None;
        }
        let p = [hi[r], hi[c]];
        // A pair is found on a window that holds it whole: not on the
        // window a key ends in, whose tail the spans' guard covers (a
        // chain that went on there swallowed the key's line echo outlasting
        // it, whose own windows then had to meet the long chain's rule).
        let now = &self.p[order[n - 1]];
        if keep.is_none() && (now[r] < FIND_WHOLE * p[0] || now[c] < FIND_WHOLE * p[1]) {
            return None;
        }
        if p[1] > LINE_TWIST * p[0] || p[0] > LINE_TWIST * p[1] {
            return None;
        }
        // A note of music, or a harmonic of a voice, has its own
        // harmonics; a key's tones have none.
        let rate = bank.sample_rate as f32;
        let tones = [bank.freq[r] + hz[r], bank.freq[c] + hz[c]];
        let power = tones.map(|f| self.power_at(k, rate, f));
        for (f, p) in tones.into_iter().zip(power) {
            if 2.0 * f < 0.5 * rate && self.power_at(k, rate, 2.0 * f) >= limits.harmonic * p {
                return None;
            }
        }
        if keep.is_none() && self.voiced(k, rate, tones, power[0].min(power[1])) {
            return None;
        }
        // Over a short span the upper harmonics of a note (whose own second
        // harmonic is beyond the note's last) pass for a key's tone: a tone
        // must not be the harmonic of a lower line.
        if n < LINE_WINDOWS
            && tones.into_iter().zip(power).any(|(f, p)| {
                (2..=NOTE_HARMONICS).any(|h| self.power_at(k, rate, f * (h - 1) as f32 / h as f32) >= NOTE_BELOW * p)
            })
        {
            return None;
        }
        Some(Line { tones: [r as u8, c as u8], power: p, hz: [hz[r], hz[c]] })
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;
    use crate::dtmf::{DetectorConfig, DetectorEvent, Sink, ToneGenerator, Window, amplitude_for_dbm0};

    /// Counts the windows in which tier L finds a pair.
    struct Probe {
        found: usize,
    }

    impl Sink for Probe {
        fn event(&mut self, _: DetectorEvent) {}
        fn window(&mut self, w: &Window<'_>) {
            self.found += w.lines().find(w.bank(), None).is_some() as usize;
        }
    }

    /// Windows of `x` (8 kHz) in which tier L finds a pair.
    fn found(x: &[i16]) -> usize {
        let config = DetectorConfig { sample_rate: 8000, ..DetectorConfig::default() };
        let mut d = crate::dtmf::Detector::with_candidates(config, &crate::mask::candidate::loose_params()).unwrap();
        let mut probe = Probe { found: 0 };
        d.process_into(x, &mut probe);
        probe.found
    }

    /// White noise with the RMS of one −10 dBm0 tone (0 dB per-tone SNR),
    /// from a fixed linear congruential sequence.
    fn noise(n: usize) -> Vec<f64> {
        let rms = amplitude_for_dbm0(-10.0) / std::f64::consts::SQRT_2;
        let mut s = 0x2545_f491u32;
        (0..n)
            .map(|_| {
                // A sum of four uniforms: near enough Gaussian for a background.
                (0..4)
                    .map(|_| {
                        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (s >> 8) as f64 / (1u32 << 24) as f64 - 0.5
                    })
                    .sum::<f64>()
                    * rms
                    * 3f64.sqrt()
            })
            .collect()
    }

    fn pcm(x: impl Iterator<Item = f64>) -> Vec<i16> {
        x.map(|v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
    }

    /// Two steady tones at a key's frequencies (1 % off), 300 ms at
    /// −10 dBm0 each, with their harmonics at `h`·(1/h) of their level
    /// (`h` = 0: none, as a key; 1: a note of music), under noise as loud
    /// as one tone.
    fn pair(harmonics: f64) -> Vec<i16> {
        let bg = noise(2400);
        let a = amplitude_for_dbm0(-10.0);
        let mut partials: Vec<ToneGenerator> = (1..=6)
            .map(|h| {
                let f = [697.0 * 1.01 * h as f64, 1336.0 * 0.99 * h as f64].map(|f| if f < 3900.0 { f } else { 0.0 });
                let g = if h == 1 { a } else { harmonics * a / h as f64 };
                ToneGenerator::new(8000, f, [g, g], [0.3 * h as f64, 1.1 * h as f64])
            })
            .collect();
        pcm((0..bg.len()).map(|i| bg[i] + partials.iter_mut().map(|g| g.next_f64()).sum::<f64>()))
    }

    #[test]
    fn a_key_under_noise_as_loud_as_its_tones_is_found() {
        // 300 ms of tone: every window from the 13th on could be found.
        let n = found(&pair(0.0));
        assert!(n >= 30, "found in {n} windows");
        // The noise alone: never.
        assert_eq!(found(&pcm(noise(8000).into_iter())), 0);
    }

    /// The detector's latest windows after `x` (8 kHz), and the bank.
    fn recorded(x: &[i16]) -> (Lines, &'static super::super::bank::Bank) {
        let config = DetectorConfig { sample_rate: 8000, ..DetectorConfig::default() };
        let mut d = crate::dtmf::Detector::new(config).unwrap();
        d.process(x, |_| {});
        (d.lines().clone(), super::super::bank::Bank::for_rate(8000).unwrap())
    }

    #[test]
    fn coherent_power_keeps_a_tone_and_averages_other_audio_down() {
        // One tone at 697 Hz + 1.5 % (10.5 Hz), −10 dBm0: its power over
        // six windows, summed coherently at its frequency, is its window
        // power (the window's response corrected).
        let a = amplitude_for_dbm0(-10.0);
        let mut g = ToneGenerator::new(8000, [697.0 * 1.015, 0.0], [a, 0.0], [0.4, 0.0]);
        let tone = pcm((0..800).map(|_| g.next_f64()));
        let (lines, bank) = recorded(&tone);
        let window = lines.x[lines.slot].at(0).norm_sqr() * bank.gain_correction(10.5);
        let p = lines.coherent_power(bank, 0, 10.455, 6);
        assert!((p / window - 1.0).abs() < 0.05, "{p} against {window}");
        // Asked at the wrong frequency (30 Hz off), the windows cancel.
        assert!(lines.coherent_power(bank, 0, 40.0, 6) < 0.2 * window);
        // Noise as loud as the tone: far below the tone's power.
        let (lines, bank) = recorded(&pcm(noise(800).into_iter()));
        assert!(lines.coherent_power(bank, 0, 10.455, 6) < 0.25 * window);
    }

    #[test]
    fn notes_of_music_on_a_key_are_not_found() {
        // The same pair with the harmonics of a note: not a key.
        assert_eq!(found(&pair(1.0)), 0);
    }

    #[test]
    fn a_gliding_pair_is_not_found() {
        // Voiced speech's harmonics glide: two tones whose frequencies rise
        // from 5 % below the key's to 5 % above over 300 ms (a pitch glide of
        // 3.3 % per 100 ms, about half a semitone, the slow end of
        // intonation) in silence. (Over 55 ms of
        // lines a glide of half that rate still passes as steady.)
        let a = amplitude_for_dbm0(-10.0);
        let mut ph = [0f64; 2];
        let x = pcm((0..2400).map(|i| {
            let rise = 0.95 + 0.1 * i as f64 / 2400.0;
            let mut v = 0.0;
            for (p, f) in ph.iter_mut().zip([697.0, 1336.0]) {
                *p += std::f64::consts::TAU * f * rise / 8000.0;
                v += a * p.sin();
            }
            v
        }));
        assert_eq!(found(&x), 0);
    }

    /// A steady voice on 232.3 Hz whose 3rd and 7th harmonics sit on key 3
    /// (697 and 1626 Hz, −10 dBm0 each; their second harmonics, the 6th and
    /// 14th, 20 dB down), its 2nd and 4th harmonics `neighbours` × as loud,
    /// the rest 26 dB down, 300 ms.
    fn voice(neighbours: f64) -> Vec<i16> {
        let a = amplitude_for_dbm0(-10.0);
        let f0 = 697.0 / 3.0;
        let mut partials: Vec<ToneGenerator> = (1..=16)
            .filter(|h| (*h as f64) * f0 < 3900.0)
            .map(|h| {
                let g = match h {
                    3 | 7 => 1.0,
                    2 | 4 => neighbours,
                    6 | 14 => 0.1,
                    _ => 0.05,
                };
                ToneGenerator::new(8000, [h as f64 * f0, 0.0], [g * a, 0.0], [0.7 * h as f64, 0.0])
            })
            .collect();
        pcm((0..2400).map(|_| partials.iter_mut().map(|g| g.next_f64()).sum::<f64>()))
    }

    #[test]
    fn two_harmonics_of_one_voice_are_not_a_key() {
        // With the voice's other harmonics next to them: a voice.
        assert_eq!(found(&voice(0.5)), 0);
        // The same two lines without them, nothing but a faint comb: a key
        // (the voice test is what tells the two apart).
        assert!(found(&voice(0.05)) > 0);
    }
}
