//! The streaming DTMF detector.
//!
//! Input is cut into 5 ms sub-blocks (40 samples at 8 kHz) in stream order,
//! so the result never depends on how the caller chunks it. Each sub-block
//! goes through the correlator [`Bank`]; two consecutive sub-blocks form a
//! 10 ms analysis window (hop 5 ms). A window is a *hit* for a key when:
//!
//! * each group's strongest tone beats the others of its group by
//!   `min_dominance_db`;
//! * the phase advance of each tone since the previous window puts its
//!   frequency within `inst_tol_pct` of nominal;
//! * each tone (corrected for the window's response at the measured offset)
//!   is at least `min_level_dbm0`, and their twist is within limits;
//! * the two tones (uncorrected) hold at least `min_fraction` of the
//!   window's AC energy, so a third component or speech fails.
//!
//! Hits of the same key form a *run* that survives up to `max_misses - 1`
//! missing windows (a short interruption). The key is confirmed once the run
//! has `min_hits` hits, the run's accumulated phase advance puts both
//! tones within the profile's frequency tolerance, each tone's level has
//! stayed within `max_level_spread_db`, and each tone's phase advances were
//! coherent — |Σ a_k| ≥ `min_coherence` · Σ |a_k|, i.e. the frequency held
//! still from window to window — and the two tones held on average at least
//! `min_mean_fraction` of the energy. A key's tones are steady and alone;
//! the harmonics and formants of speech glide and come with others. The phase measurements are made on bins with
//! the pair's mutual leakage, their negative-frequency images and DC taken
//! out ([`Bank::unmix`]), which keeps a real tone's per-window frequency
//! within a few hertz even at 8 dB twist. The run ends after
//! `max_misses` windows without the key, or when another key starts.
//!
//! Talk-down: speech, music or noise on top of a key takes the pair's share
//! of the window's energy, so its windows are no hits. The detector keeps
//! its latest 55 ms ([`Lines`]) and, where no key is confirmed, confirms a
//! key whose two tones are steady lines over them (or over 40 ms, for short
//! keys) within the profile's frequency, level and twist limits
//! ([`Detector::talk_down`]); and a confirmed key's windows that are no hit
//! but still hold its bins do not count as misses ([`HELD_SHARE`]).

use super::UnsupportedRate;
use super::bank::{Bank, Cplx, SubBlock, TONES, Tones};
use super::generator::amplitude_for_dbm0;
use super::key::Key;
use super::lines::{LINE_WINDOWS, Lines};
use super::profile::{Params, Profile};

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Samples per second: 8000, 16000 or 48000.
    pub sample_rate: u32,
    /// Which standard's limits to enforce.
    pub profile: Profile,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig { sample_rate: 8000, profile: Profile::Q24 }
    }
}

/// A key has been confirmed (it is still sounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDown {
    /// The key.
    pub key: Key,
    /// Estimated first sample of the tone (stream position).
    pub start: u64,
    /// Stream position at which the confirmation was made.
    pub confirmed_at: u64,
}

/// A complete key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPress {
    /// The key.
    pub key: Key,
    /// Estimated first sample of the tone.
    pub start: u64,
    /// Estimated end of the tone (one past its last sample).
    pub end: u64,
}

/// What [`Detector::process`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorEvent {
    /// A key was confirmed; its [`KeyPress`] follows when it ends.
    Down(KeyDown),
    /// A confirmed key ended.
    Up(KeyPress),
}

/// Receives what the detector finds: its events and, for the masker, each
/// window's measurements.
pub(crate) trait Sink {
    /// A key was confirmed or ended.
    fn event(&mut self, event: DetectorEvent);
    /// A window was measured (only by a detector built with
    /// [`Detector::with_candidates`]); called before the window's hit is
    /// tracked, so the run it shows is the one up to the previous window.
    fn window(&mut self, _window: &Window<'_>) {}
}

/// One analysis window as the detector measured it, for the masker's
/// candidate policy (`crate::mask::candidate`).
pub(crate) struct Window<'a> {
    det: &'a Detector,
    /// The window's correlations and mean (its DC), its newer sub-block
    /// and that sub-block's AC energy.
    pub x: &'a Tones,
    pub mean: f32,
    pub cur: &'a SubBlock,
    pub ac: f32,
    /// The measurement under the loose limits, if it passed them.
    pub loose: Option<&'a Hit>,
    /// Whether that measurement also meets the strict limits (a hit).
    pub strict: bool,
}

impl Window<'_> {
    /// The correlator bank.
    pub fn bank(&self) -> &'static Bank {
        self.det.bank
    }
    /// Index of the window: the sub-blocks completed, so it ends at stream
    /// position `index · len`.
    pub fn index(&self) -> u64 {
        self.det.blocks
    }
    /// The window's older sub-block.
    pub fn prev_block(&self) -> &SubBlock {
        &self.det.prev_block
    }
    /// The previous window's correlations and mean.
    pub fn prev_window(&self) -> (&Tones, f32) {
        (&self.det.prev_window, self.det.prev_window_mean)
    }
    /// If this window hits the key the previous one hit: the hits of the
    /// run it continues (this one not counted).
    pub fn continued_run(&self) -> Option<u32> {
        let h = self.loose.filter(|_| self.strict)?;
        let run = self.det.run.filter(|r| r.key == h.key)?;
        (self.det.prev_hit == Some(h.key)).then_some(run.hits)
    }
    /// Whether the current run has so far met confirmation's guards against
    /// speech (coherence to within `slack` of its threshold).
    pub fn run_is_steady(&self, slack: f32) -> bool {
        self.det.run_is_steady(slack)
    }
    /// The key of the run, if confirmed.
    pub fn confirmed(&self) -> Option<Key> {
        self.det.key_active()
    }
    /// The key the detector confirmed under other audio (by its lines) and
    /// still heard (hit, or found its lines) in the previous window, if any:
    /// the masker masks it whatever its own tiers say. (A key the hits
    /// confirmed is the tiers' own: they masked it from its first window.)
    pub fn detected(&self) -> Option<Key> {
        let previous = self.det.blocks.saturating_sub(2);
        self.det.run.filter(|r| r.confirmed && r.lined && r.last_hit >= previous).map(|r| r.key)
    }
    /// |X|² of the window's eight bins (as its lines recorded them).
    pub fn power(&self) -> &[f32; TONES] {
        self.det.lines.latest_power()
    }
    /// The latest windows' lines (this one recorded).
    pub fn lines(&self) -> &Lines {
        &self.det.lines
    }
}

/// A closure as a [`Sink`] that ignores windows.
struct EventFn<F>(F);

impl<F: FnMut(DetectorEvent)> Sink for EventFn<F> {
    fn event(&mut self, event: DetectorEvent) {
        (self.0)(event)
    }
}

/// Decision thresholds in the units the detector computes in.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Per tone: accumulated offset limit, Hz.
    freq_tol: [f32; TONES],
    /// Per tone: per-window offset limit, Hz.
    inst_tol: [f32; TONES],
    /// Minimum |X|² of a tone's bin: amplitude A gives |X| = A·N/2 over a
    /// window of N samples.
    min_bin_power: f32,
    /// 1/N.
    inv_window: f32,
    /// Twist limits as power ratios high/low.
    min_twist: f32,
    max_twist: f32,
    /// The tones' energy over the window is 2|X|²/N, so "at least
    /// `min_fraction` of the energy" is |X_r|² + |X_c|² ≥ min_fraction·N/2·E.
    fraction_factor: f32,
    /// N/2, the factor between |X|² and a tone's energy over the window.
    half_window: f32,
    min_dominance: f32,
    max_level_spread: f32,
    min_coherence: f32,
    min_mean_fraction: f32,
    min_hits: u32,
    max_misses: u32,
}

impl Limits {
    fn new(p: &Params, bank: &Bank) -> Limits {
        let mut freq_tol = [0f32; TONES];
        let mut inst_tol = [0f32; TONES];
        for t in 0..TONES {
            freq_tol[t] = bank.freq[t] * p.freq_tol_pct / 100.0 + p.freq_tol_hz;
            inst_tol[t] = bank.freq[t] * p.inst_tol_pct / 100.0;
        }
        let a = amplitude_for_dbm0(p.min_level_dbm0 as f64) as f32;
        let window = (2 * bank.len) as f32;
        Limits {
            freq_tol,
            inst_tol,
            min_bin_power: (a * window / 2.0).powi(2),
            inv_window: 1.0 / window,
            min_twist: db_to_power(-p.max_normal_twist_db),
            max_twist: db_to_power(p.max_reverse_twist_db),
            fraction_factor: p.min_fraction * window / 2.0,
            half_window: window / 2.0,
            min_dominance: db_to_power(p.min_dominance_db),
            max_level_spread: db_to_power(p.max_level_spread_db),
            min_coherence: p.min_coherence,
            min_mean_fraction: p.min_mean_fraction,
            min_hits: p.min_hits,
            max_misses: p.max_misses,
        }
    }
}

/// A run whose level spread fails is re-anchored (once) only when both
/// tones are now within this power ratio (1 dB) of the loudest they have
/// been: the tone has risen to its steady level, rather than speech
/// wandering.
const REANCHOR_NEAR_MAX: f32 = 1.26;

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// The run of windows that hit one key.
#[derive(Debug, Clone, Copy)]
struct Run {
    key: Key,
    first_hit: u64,
    last_hit: u64,
    hits: u32,
    misses: u32,
    /// Σ X_k·conj(X_{k−1}) over consecutive hits, for the row and column tone.
    advance: [Cplx; 2],
    confirmed: bool,
    /// Smallest and largest power of each tone over the run's hits.
    level: LevelRange,
    /// Σ advance and Σ |advance| over the pairs after the run's first one
    /// (whose first window may hold the previous key's tail).
    coherent: [Cplx; 2],
    magnitude: [f32; 2],
    /// Σ fraction and count over the run's hits after the first (which a
    /// tone only partly fills, or which may hold the previous key's tail).
    fraction: [f32; 2],
    /// Whether the guards' statistics were restarted once (a tone has one
    /// onset; speech would get a new chance with every restart).
    reanchored: bool,
    /// Confirmed as two steady lines under other audio (talk-down).
    lined: bool,
    /// Windows in a row, since the latest hit, that were no hit but still
    /// held the key's bins (see [`HELD_SHARE`]).
    held: u32,
}

impl Run {
    /// A run of `key` that begins with a hit in window `window`, its tones
    /// at `power`.
    fn start(key: Key, window: u64, power: [f32; 2]) -> Run {
        Run {
            key,
            first_hit: window,
            last_hit: window,
            hits: 1,
            misses: 0,
            advance: [Cplx::default(); 2],
            confirmed: false,
            level: LevelRange::new(power),
            coherent: [Cplx::default(); 2],
            magnitude: [0.0; 2],
            fraction: [0.0; 2],
            reanchored: false,
            lined: false,
            held: 0,
        }
    }

    /// The key's bins (row, column).
    fn tones(&self) -> [u8; 2] {
        [self.key.row() as u8, 4 + self.key.col() as u8]
    }
}

/// A window that is no hit while a confirmed key's bins still hold this
/// share of the loudest the run measured them (−3 dB; at −6 dB the partly
/// filled windows at the edges of an NTT 30 ms pause held, and two presses
/// merged) is not a miss: other
/// audio spoilt it (speech on top of a key fails the energy share for tens
/// of milliseconds, and the key was reported twice). Up to
/// [`HELD_WINDOWS`] such windows in a row (100 ms); a pause between two
/// presses leaves the bins to whatever else is on the line.
const HELD_SHARE: f32 = 0.5;
const HELD_WINDOWS: u32 = 20;

/// Talk-down looks for lines only on a window whose strongest bin in each
/// group is this far (3 dB) above the group's second.
const LINED_DOMINANCE: f32 = 2.0;

/// Smallest and largest (row, column) tone power seen.
#[derive(Debug, Clone, Copy)]
struct LevelRange {
    min: [f32; 2],
    max: [f32; 2],
}

impl LevelRange {
    fn new(p: [f32; 2]) -> LevelRange {
        LevelRange { min: p, max: p }
    }
    fn include(&mut self, p: [f32; 2]) {
        for i in 0..2 {
            self.min[i] = self.min[i].min(p[i]);
            self.max[i] = self.max[i].max(p[i]);
        }
    }
    /// Whether both tones stayed within `ratio` (max/min power).
    fn steady(&self, ratio: f32) -> bool {
        (0..2).all(|i| self.max[i] <= ratio * self.min[i])
    }
}

/// A streaming DTMF detector for one mono channel.
///
/// All memory is allocated in [`Detector::new`]; [`Detector::process`] never
/// allocates, locks or blocks.
#[derive(Debug)]
pub struct Detector {
    bank: &'static Bank,
    limits: Limits,
    /// Samples of the current sub-block so far (the sub-block itself is
    /// filled in place in the history's ring, see [`Lines::pending`]).
    fill: usize,
    /// Sub-blocks completed so far.
    blocks: u64,
    prev_block: SubBlock,
    /// The previous window's correlations (valid once `blocks >= 2`).
    prev_window: Tones,
    /// The previous window's mean (its DC).
    prev_window_mean: f32,
    /// The previous window's two tones after unmixing, if it was measured
    /// (see [`Detector::judge`]).
    prev_unmixed: Option<([usize; 2], [Cplx; 2])>,
    /// The key the previous window hit, if any.
    prev_hit: Option<Key>,
    run: Option<Run>,
    /// The masker's permissive limits, if it asked for window measurements.
    candidate: Option<Limits>,
    /// The latest windows, for keys under other audio (talk-down, see
    /// [`Lines`]).
    lines: Box<Lines>,
}

/// Where a window measured a key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub key: Key,
    /// This window's X·conj(previous X) for the row and column tone.
    pub advance: [Cplx; 2],
    /// Corrected power of the row and column tone.
    pub power: [f32; 2],
    /// Share of the window's (AC) energy in the two tones, corrected for
    /// the window's response at their measured offsets.
    pub fraction: f32,
    /// Row and column: bin indices, frequency offsets (Hz) and |X|² after unmixing.
    pub tones: [usize; 2],
    pub offset: [f32; 2],
    pub bins: [f32; 2],
    /// The two bins after unmixing.
    pub own: [Cplx; 2],
    /// |X|² of the two tones' bins as measured (before unmixing).
    pub raw: [f32; 2],
    /// The uncorrected share of the energy, and the window's AC energy.
    pub raw_fraction: f32,
    pub energy: f32,
    /// |X|² of the runner-up in the row and in the column group.
    pub second: [f32; 2],
}

impl Hit {
    /// The weaker group's dominance (power ratio of best to second tone).
    pub fn dominance(&self) -> f32 {
        (self.raw[0] / self.second[0]).min(self.raw[1] / self.second[1])
    }
}

impl Detector {
    /// A detector for `config`.
    pub fn new(config: DetectorConfig) -> Result<Detector, UnsupportedRate> {
        let bank = Bank::for_rate(config.sample_rate).ok_or(UnsupportedRate(config.sample_rate))?;
        Ok(Detector {
            bank,
            limits: Limits::new(&config.profile.params(), bank),
            fill: 0,
            blocks: 0,
            prev_block: SubBlock::default(),
            prev_window: Tones::default(),
            prev_window_mean: 0.0,
            prev_unmixed: None,
            prev_hit: None,
            run: None,
            candidate: None,
            lines: Box::new(Lines::new(config.sample_rate)),
        })
    }

    /// A detector that also measures every window under the permissive
    /// limits `loose` and hands the measurements to its [`Sink`] (the
    /// masker's candidate policy).
    pub(crate) fn with_candidates(config: DetectorConfig, loose: &Params) -> Result<Detector, UnsupportedRate> {
        let mut d = Detector::new(config)?;
        d.candidate = Some(Limits::new(loose, d.bank));
        Ok(d)
    }

    /// The sample rate this detector was built for.
    pub fn sample_rate(&self) -> u32 {
        self.bank.sample_rate
    }

    /// Samples per analysis hop (5 ms): the detector's time resolution.
    pub fn block_len(&self) -> usize {
        self.bank.len
    }

    /// Samples consumed so far.
    pub fn position(&self) -> u64 {
        self.blocks * self.bank.len as u64 + self.fill as u64
    }

    /// The latest windows (talk-down).
    #[cfg(test)]
    pub(crate) fn lines(&self) -> &Lines {
        &self.lines
    }

    /// Whether a key is confirmed and still sounding.
    pub fn key_active(&self) -> Option<Key> {
        self.run.filter(|r| r.confirmed).map(|r| r.key)
    }

    /// Feeds samples; `on_event` is called for every key confirmed or ended.
    pub fn process<F: FnMut(DetectorEvent)>(&mut self, samples: &[i16], on_event: F) {
        self.process_into(samples, &mut EventFn(on_event));
    }

    /// Bytes of the history it keeps of the latest windows (55 ms of
    /// correlations and 40 ms of samples, for keys under other audio): at
    /// 8 kHz 1,632 bytes, at 48 kHz 4,832.
    pub fn history_bytes(&self) -> usize {
        self.lines.bytes()
    }

    /// [`Self::process`] with a [`Sink`].
    pub(crate) fn process_into<S: Sink>(&mut self, samples: &[i16], sink: &mut S) {
        let mut rest = samples;
        let len = self.bank.len;
        while !rest.is_empty() {
            if self.fill == 0 && rest.len() >= len {
                // A whole sub-block in the caller's buffer: analyse it in place.
                let sb = self.bank.analyse(&rest[..len]);
                self.block(sb, Some(&rest[..len]), sink);
                rest = &rest[len..];
                continue;
            }
            let take = (len - self.fill).min(rest.len());
            let next = self.blocks + 1;
            self.lines.pending(next)[self.fill..self.fill + take].copy_from_slice(&rest[..take]);
            self.fill += take;
            rest = &rest[take..];
            if self.fill == len {
                self.fill = 0;
                let sb = self.bank.analyse(self.lines.pending(next));
                self.block(sb, None, sink);
            }
        }
    }

    /// Ends the stream: reports the key still sounding, if any. The detector
    /// can keep going afterwards as if silence had separated the two parts.
    pub fn finish<F: FnMut(DetectorEvent)>(&mut self, on_event: F) {
        self.finish_into(&mut EventFn(on_event));
    }

    /// [`Self::finish`] with a [`Sink`].
    pub(crate) fn finish_into<S: Sink>(&mut self, sink: &mut S) {
        if let Some(run) = self.run.take() {
            self.end_run(run, sink);
        }
        self.prev_hit = None;
    }

    /// The next sub-block, analysed (`sb`): its `samples`, or `None` if they
    /// were gathered in the history's ring already.
    fn block<S: Sink>(&mut self, sb: SubBlock, samples: Option<&[i16]>, sink: &mut S) {
        self.blocks += 1;
        if let Some(samples) = samples {
            self.lines.pending(self.blocks).copy_from_slice(samples);
        }
        if self.blocks >= 2 {
            // Window k = (blocks − 1) covers sub-blocks k−1 and k.
            let x = self.prev_block.y.join(&self.bank.rot, &sb.y);
            self.lines.record(self.blocks, &x);
            let mean = (self.prev_block.sum + sb.sum) * self.limits.inv_window;
            // The hit, and the measurement whose unmixed bins the next window
            // may reuse.
            let (hit, measured) = if self.blocks < 3 {
                (None, None)
            } else if let Some(cand) = self.candidate {
                // The strict limits lie inside the loose ones and both judge
                // the same tones, so the strict verdict is the loose
                // measurement checked against tighter limits.
                let loose = self.judge(&cand, &x, &sb);
                let hit = loose.filter(|h| self.within(&self.limits, h));
                let ac = sb.energy - sb.sum * sb.sum / self.bank.len as f32;
                let strict = hit.is_some();
                sink.window(&Window { det: self, x: &x, mean, cur: &sb, ac, loose: loose.as_ref(), strict });
                (hit, loose)
            } else {
                let hit = self.judge(&self.limits, &x, &sb);
                (hit, hit)
            };
            self.prev_unmixed = measured.map(|h| (h.tones, h.own));
            self.prev_window = x;
            self.prev_window_mean = mean;
            self.prev_block = sb;
            self.track(hit, sink);
            self.talk_down(sink);
        } else {
            self.prev_block = sb;
        }
    }

    /// Decides whether the current window (correlations `x`, just recorded
    /// in the lines, whose |X|² it reads) hits a key under limits `l`.
    fn judge(&self, l: &Limits, x: &Tones, cur: &SubBlock) -> Option<Hit> {
        let sum = self.prev_block.sum + cur.sum;
        let energy = self.prev_block.energy + cur.energy - sum * sum * l.inv_window;
        let p = *self.lines.latest_power();
        debug_assert_eq!(TONES, 8);
        // The energy-share test below on the groups' largest powers alone,
        // before finding which tones they are: most windows of speech and
        // noise stop here, and the verdict is the same either way.
        let max = |a: f32, b: f32| if a > b { a } else { b };
        let top = |g: &[f32]| max(max(g[0], g[1]), max(g[2], g[3]));
        if top(&p[0..4]) + top(&p[4..8]) < l.fraction_factor * energy {
            return None;
        }
        let (row, row2) = best_two(&p[0..4]);
        let (col, col2) = best_two(&p[4..8]);
        let (r, c) = (row, 4 + col);
        // Cheap tests first (most windows of speech, music or silence stop
        // here); the trigonometry below runs only for tone-like windows.
        // The offset correction can at most double a power, so a tone that
        // fails the level test even when doubled fails for good.
        if 2.0 * p[r] < l.min_bin_power || 2.0 * p[c] < l.min_bin_power {
            return None;
        }
        if p[r] < l.min_dominance * row2 || p[c] < l.min_dominance * col2 {
            return None;
        }
        // Tone energy over the window = A²/2·N = 2|X|²/N. Measured on the raw
        // bins: the offset correction must not let a third component in.
        if p[r] + p[c] < l.fraction_factor * energy {
            return None;
        }
        // Per-window frequency from the phase advance since the last window.
        // With the other tone's leakage (and each tone's negative-frequency
        // image) taken out of both bins, in this window and the previous one.
        let (xr, xc) = self.bank.unmix(x, sum * l.inv_window, r, c);
        // The previous window was unmixed for the same tones if it measured
        // the same key (the same values: kept rather than computed again).
        let (yr, yc) = match self.prev_unmixed {
            Some((tones, own)) if tones == [r, c] => (own[0], own[1]),
            _ => self.bank.unmix(&self.prev_window, self.prev_window_mean, r, c),
        };
        let adv_r = xr.mul_conj(yr);
        let adv_c = xc.mul_conj(yc);
        let off_r = self.bank.offset_hz(adv_r, r);
        let off_c = self.bank.offset_hz(adv_c, c);
        // Tone power corrected for the window's response at that offset, so
        // level and twist are measured right even at ±1.5 %.
        let pr = xr.norm_sqr() * self.bank.gain_correction(off_r);
        let pc = xc.norm_sqr() * self.bank.gain_correction(off_c);
        let hit = Hit {
            key: Key::from_row_col(row, col),
            advance: [adv_r, adv_c],
            power: [pr, pc],
            fraction: (pr + pc) / (l.half_window * energy),
            tones: [r, c],
            offset: [off_r, off_c],
            bins: [xr.norm_sqr(), xc.norm_sqr()],
            own: [xr, xc],
            raw: [p[r], p[c]],
            raw_fraction: (p[r] + p[c]) / (l.half_window * energy),
            energy,
            second: [row2, col2],
        };
        // The frequency, level and twist tests (and again the cheap ones).
        self.within(l, &hit).then_some(hit)
    }

    /// Whether the current run has so far met the guards confirmation
    /// applies against speech — coherent phase advances (with a little
    /// slack), steady levels, tones holding most of the energy — though not
    /// necessarily the frequency tolerance; true until there is anything to judge.
    fn run_is_steady(&self, slack: f32) -> bool {
        let Some(run) = &self.run else { return true };
        let l = &self.limits;
        let slack = slack * l.min_coherence;
        let coherent =
            (0..2).all(|k| run.magnitude[k] == 0.0 || run.coherent[k].norm_sqr() >= (slack * run.magnitude[k]).powi(2));
        let clean = run.fraction[1] == 0.0 || run.fraction[0] >= l.min_mean_fraction * run.fraction[1];
        coherent && clean && run.level.steady(l.max_level_spread)
    }

    /// Whether a window's measurement meets `l`: the one statement of the
    /// hit tests. [`Self::judge`] applies it (after its cheap early exits);
    /// the masker applies it to the loose measurement for the strict verdict.
    fn within(&self, l: &Limits, h: &Hit) -> bool {
        let [r, c] = h.tones;
        let [pr, pc] = h.raw;
        let twist = h.power[1] / h.power[0];
        !(2.0 * pr < l.min_bin_power
            || 2.0 * pc < l.min_bin_power
            || pr < l.min_dominance * h.second[0]
            || pc < l.min_dominance * h.second[1]
            || pr + pc < l.fraction_factor * h.energy
            || h.offset[0].abs() > l.inst_tol[r]
            || h.offset[1].abs() > l.inst_tol[c]
            || h.power[0] < l.min_bin_power
            || h.power[1] < l.min_bin_power
            || twist < l.min_twist
            || twist > l.max_twist)
    }

    fn track<S: Sink>(&mut self, hit: Option<Hit>, sink: &mut S) {
        let window = self.blocks - 1;
        let prev_hit = self.prev_hit;
        self.prev_hit = hit.map(|h| h.key);
        match (hit, self.run.as_mut()) {
            (Some(h), Some(run)) if run.key == h.key => {
                run.hits += 1;
                run.misses = 0;
                run.held = 0;
                run.last_hit = window;
                run.level.include(h.power);
                run.fraction[0] += h.fraction;
                run.fraction[1] += 1.0;
                if prev_hit == Some(h.key) {
                    run.advance[0] = run.advance[0].add(h.advance[0]);
                    run.advance[1] = run.advance[1].add(h.advance[1]);
                    if run.hits >= 3 {
                        for k in 0..2 {
                            run.coherent[k] = run.coherent[k].add(h.advance[k]);
                            run.magnitude[k] += h.advance[k].norm_sqr().sqrt();
                        }
                    }
                }
            }
            (Some(h), _) => {
                if let Some(old) = self.run.take() {
                    self.end_run(old, sink);
                }
                self.run = Some(Run::start(h.key, window, h.power));
            }
            (None, Some(run)) => {
                let holds = run.confirmed && {
                    let p = self.lines.latest_power();
                    let [r, c] = run.tones().map(usize::from);
                    p[r] >= HELD_SHARE * run.level.max[0] && p[c] >= HELD_SHARE * run.level.max[1]
                };
                if holds && run.lined && self.lines.find(self.bank, Some(run.tones())).is_some() {
                    // The lines go on: the key is still there.
                    (run.misses, run.held, run.last_hit) = (0, 0, window);
                    return;
                }
                if holds && run.held < HELD_WINDOWS {
                    // Other audio spoilt the window, not the key's end.
                    run.held += 1;
                    return;
                }
                run.misses += 1;
                if run.misses >= self.limits.max_misses {
                    let old = *run;
                    self.run = None;
                    self.end_run(old, sink);
                }
                return;
            }
            (None, None) => return,
        }
        // A hit extended or started a run: can it be confirmed now?
        let Some(run) = self.run else { return };
        if run.confirmed || run.hits < self.limits.min_hits {
            return;
        }
        let (r, c) = (run.key.row(), 4 + run.key.col());
        let (adv_r, adv_c) = (run.advance[0], run.advance[1]);
        if adv_r.norm_sqr() == 0.0 || adv_c.norm_sqr() == 0.0 {
            return;
        }
        let off_r = self.bank.offset_hz(adv_r, r);
        let off_c = self.bank.offset_hz(adv_c, c);
        let l = &self.limits;
        let steady = run.level.steady(l.max_level_spread);
        let coherent = (0..2).all(|k| run.coherent[k].norm_sqr() >= (l.min_coherence * run.magnitude[k]).powi(2));
        let clean = run.fraction[0] >= l.min_mean_fraction * run.fraction[1];
        if steady && coherent && clean && off_r.abs() <= l.freq_tol[r] && off_c.abs() <= l.freq_tol[c] {
            let (key, first_hit) = (run.key, run.first_hit);
            if let Some(active) = self.run.as_mut() {
                active.confirmed = true;
            }
            let down = KeyDown {
                key,
                start: self.window_start_estimate(first_hit),
                confirmed_at: (window + 1) * self.bank.len as u64,
            };
            sink.event(DetectorEvent::Down(down));
        } else if !steady
            && !run.reanchored
            && let Some(h) = hit
            && (0..2).all(|i| h.power[i] * REANCHOR_NEAR_MAX >= run.level.max[i])
            && let Some(active) = self.run.as_mut()
        {
            // Re-anchor: a tone whose first windows were quieter, dipped or
            // still rising (codec pre-echo, AGC, soft keypads, slow attacks)
            // fails the level guard once it reaches its full level; it is
            // judged again on that steady part, from this hit on — as if the
            // run had started here, though its start stays the first hit.
            active.hits = 1;
            active.level = LevelRange::new(h.power);
            active.advance = [Cplx::default(); 2];
            active.coherent = [Cplx::default(); 2];
            active.magnitude = [0.0; 2];
            active.fraction = [0.0; 2];
            active.reanchored = true;
        }
    }

    /// Talk-down: a key under other audio, which fails the hit tests' share
    /// of the window's energy, confirmed as two steady lines ([`Lines`])
    /// within the profile's frequency, twist and level limits — when no key
    /// is confirmed, and only on a window whose strongest bins dominate
    /// their groups (cheap; most windows stop there).
    fn talk_down<S: Sink>(&mut self, sink: &mut S) {
        // A key confirmed and hit (or lined) in this window goes on; a run
        // hit in this window that meets the hits' guards so far is theirs
        // to confirm (a clean key costs nothing here).
        let window = self.blocks - 1;
        if self.run.is_some_and(|r| r.last_hit == window && (r.confirmed || r.hits >= 2)) && self.run_is_steady(1.0) {
            return;
        }
        let p = self.lines.latest_power();
        let l = &self.limits;
        let (row, row2) = best_two(&p[0..4]);
        let (col, col2) = best_two(&p[4..8]);
        if p[row] < LINED_DOMINANCE * row2 || p[4 + col] < LINED_DOMINANCE * col2 {
            return;
        }
        if 2.0 * p[row] < l.min_bin_power || 2.0 * p[4 + col] < l.min_bin_power {
            return;
        }
        // The confirmed key's own bins (its end, under other audio or not):
        // the lines would find it again.
        if self.run.is_some_and(|r| r.confirmed && r.key == Key::from_row_col(row, col)) {
            return;
        }
        let Some(line) = self.lines.find(self.bank, None).or_else(|| self.lines.find_short(self.bank)) else {
            return;
        };
        let [r, c] = line.tones.map(usize::from);
        if line.hz[0].abs() > l.freq_tol[r] || line.hz[1].abs() > l.freq_tol[c] {
            return;
        }
        // Level and twist from the tones' coherent power over the lines'
        // windows: the loudest window's power reads other audio too (a
        // −10.5 dB twist in noise read −8 dB).
        let power =
            [0, 1].map(|i| self.lines.coherent_power(self.bank, line.tones[i] as usize, line.hz[i], LINE_WINDOWS));
        let twist = power[1] / power[0];
        if power[0] < l.min_bin_power || power[1] < l.min_bin_power || twist < l.min_twist || twist > l.max_twist {
            return;
        }
        let key = Key::from_row_col(r, c - 4);
        // The lines held over the latest windows; a run of the key that
        // began earlier began the key. A confirmed key no longer hit that
        // is still the one lined goes on; another has ended.
        let first_hit = match self.run {
            Some(run) if run.key == key && run.confirmed => return,
            Some(run) if run.key == key => run.first_hit,
            Some(run) => {
                self.run = None;
                self.end_run(run, sink);
                (window + 1).saturating_sub(LINE_WINDOWS as u64)
            }
            None => (window + 1).saturating_sub(LINE_WINDOWS as u64),
        };
        self.run = Some(Run {
            first_hit,
            hits: LINE_WINDOWS as u32,
            confirmed: true,
            reanchored: true,
            lined: true,
            ..Run::start(key, window, power)
        });
        let down = KeyDown {
            key,
            start: self.window_start_estimate(first_hit),
            confirmed_at: (window + 1) * self.bank.len as u64,
        };
        sink.event(DetectorEvent::Down(down));
    }

    fn end_run<S: Sink>(&self, run: Run, sink: &mut S) {
        if run.confirmed {
            let start = self.window_start_estimate(run.first_hit);
            let end = self.window_end_estimate(run.last_hit).max(start + 1);
            sink.event(DetectorEvent::Up(KeyPress { key: run.key, start, end }));
        }
    }

    /// The first hit window (k) covers sub-blocks k−1, k; a tone that fills
    /// between 3/4 and all of it started ≈ 7/8 of a window before its end.
    fn window_start_estimate(&self, k: u64) -> u64 {
        let s = self.bank.len as u64;
        (k * s).saturating_sub(3 * s / 4)
    }

    /// Mirror image of [`Self::window_start_estimate`] for the last hit window.
    fn window_end_estimate(&self, k: u64) -> u64 {
        let s = self.bank.len as u64;
        k * s + 3 * s / 4
    }
}

/// Index of the largest of four powers, and the second-largest value;
/// written with selects rather than branches (the winner changes with every
/// key, which a branch predictor cannot learn).
#[inline]
pub(crate) fn best_two(p: &[f32]) -> (usize, f32) {
    let (p0, p1, p2, p3) = (p[0], p[1], p[2], p[3]);
    let (i01, hi01, lo01) = if p1 > p0 { (1, p1, p0) } else { (0, p0, p1) };
    let (i23, hi23, lo23) = if p3 > p2 { (3, p3, p2) } else { (2, p2, p3) };
    let (best, second) = if hi23 > hi01 { (i23, hi01.max(lo23)) } else { (i01, hi23.max(lo01)) };
    (best, second)
}

#[cfg(test)]
mod best_two_tests {
    use super::best_two;

    #[test]
    fn finds_the_winner_and_runner_up_in_every_order() {
        let vals = [1.0f32, 5.0, 3.0, 4.0];
        for perm in 0..24usize {
            let mut idx: Vec<usize> = (0..4).collect();
            let mut k = perm;
            let mut p = [0f32; 4];
            for slot in &mut p {
                let i = idx.remove(k % idx.len());
                k /= 4;
                *slot = vals[i];
            }
            let (b, s) = best_two(&p);
            assert_eq!(p[b], 5.0, "{p:?}");
            assert_eq!(s, 4.0, "{p:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_correction_series_matches_the_window_response() {
        for rate in [8000, 16000, 48000] {
            let det = Detector::new(DetectorConfig { sample_rate: rate, profile: Profile::Q24 }).unwrap();
            let n = (2 * det.block_len()) as f64;
            for i in 0..=400 {
                let offset = i as f64 * 0.1; // up to 40 Hz (2.5 % of 1633 Hz)
                let x = std::f64::consts::PI * offset / rate as f64;
                let d = if i == 0 { 1.0 } else { (x * n).sin() / (n * x.sin()) };
                let exact = (1.0 / (d * d)).min(2.0);
                let approx = det.bank.gain_correction(offset as f32) as f64;
                assert!((approx / exact - 1.0).abs() < 0.01, "{rate} Hz, {offset} Hz: {approx} vs {exact}");
            }
        }
    }

    #[test]
    fn unsupported_rates_are_refused() {
        assert_eq!(
            Detector::new(DetectorConfig { sample_rate: 44100, profile: Profile::Q24 }).unwrap_err(),
            UnsupportedRate(44100)
        );
    }

    /// Gaussian-ish noise of RMS `rms` from a fixed sequence.
    fn noise(n: usize, rms: f64, seed: u32) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let u: f64 = (0..4)
                    .map(|_| {
                        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (s >> 8) as f64 / (1u32 << 24) as f64 - 0.5
                    })
                    .sum();
                u * rms * 3f64.sqrt()
            })
            .collect()
    }

    /// Keys reported over `x` (8 kHz), each with its start and end, ms.
    fn presses(x: &[f64]) -> Vec<(Key, u64, u64)> {
        let pcm: Vec<i16> = x.iter().map(|v| v.round().clamp(-32768.0, 32767.0) as i16).collect();
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let mut out = Vec::new();
        let mut on = |e| {
            if let DetectorEvent::Up(p) = e {
                out.push((p.key, p.start / 8, p.end / 8));
            }
        };
        d.process(&pcm, &mut on);
        d.finish(&mut on);
        out
    }

    /// `x` with key 5 (−10 dBm0 per tone) added over samples `on`.
    fn with_key(mut x: Vec<f64>, on: std::ops::Range<usize>) -> Vec<f64> {
        let a = amplitude_for_dbm0(-10.0);
        let mut g = crate::dtmf::ToneGenerator::new(8000, [770.0, 1336.0], [a, a], [0.3, 1.2]);
        for v in &mut x[on] {
            *v += g.next_f64();
        }
        x
    }

    #[test]
    fn a_key_under_noise_as_loud_as_its_tones_is_reported_once_by_its_lines() {
        // Noise with the RMS of one tone (0 dB per-tone SNR): the pair holds
        // half the window's energy at best, far from the hits' 70 %.
        let rms = amplitude_for_dbm0(-10.0) / std::f64::consts::SQRT_2;
        let bg = noise(8000, rms, 7);
        assert_eq!(presses(&bg), vec![]);
        let found = presses(&with_key(bg, 2000..3200));
        assert_eq!(found.len(), 1, "{found:?}");
        let (key, start, end) = found[0];
        assert_eq!(key, Key::from_row_col(1, 1));
        // Found on its lines 55 ms into the key, from where they began.
        assert!((240..=275).contains(&start) && (380..=420).contains(&end), "{start}..{end} ms");
    }

    #[test]
    fn other_audio_over_part_of_a_key_does_not_split_it_and_a_pause_does() {
        // A 300 ms key with 30 ms of noise 6 dB above its tones in the
        // middle: one press.
        let rms = 2.0 * amplitude_for_dbm0(-10.0);
        let mut x = vec![0.0; 6000];
        x[2400..2640].copy_from_slice(&noise(240, rms, 9));
        let x = with_key(x, 1200..3600);
        assert_eq!(presses(&x).len(), 1, "{:?}", presses(&x));
        // The same key pressed twice, 40 ms apart, under noise 6 dB below
        // its tones: two presses.
        let bg = noise(6000, amplitude_for_dbm0(-16.0) / std::f64::consts::SQRT_2, 11);
        let x = with_key(with_key(bg, 1200..2000), 2320..3200);
        assert_eq!(presses(&x).len(), 2, "{:?}", presses(&x));
    }

    #[test]
    fn silence_and_empty_input_report_nothing() {
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let mut n = 0;
        d.process(&[], |_| n += 1);
        d.process(&[0; 8000], |_| n += 1);
        d.finish(|_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(d.position(), 8000);
    }
}
