//! The conformance rows of SPEC's detector table, as generated test cases that
//! any detector can be run on: cardveil (every profile, every rate) and, at
//! 8 kHz, spandsp. A case is a long track of trials; each trial sits in its
//! own region of the track (tone(s) plus ≥ 150 ms of silence), starts at a
//! random sample offset (so onsets sweep every block position) with random
//! tone phases, and says which keys it should produce.

use cardveil_core::dtmf::{Key, Profile};

use crate::rng::Rng;
use crate::stimulus::{Tone, Track, noise_rms_for_snr};

/// A generated case: the track and, per trial, its region and expected keys.
#[derive(Debug, Clone)]
pub struct Case {
    /// The signal.
    pub track: Track,
    /// (region start, region end, expected keys) per trial.
    pub regions: Vec<(u64, u64, String)>,
}

impl Case {
    /// Builds `trials` trials with `f`, which appends one trial's signal and
    /// returns the keys it should produce.
    pub fn build(
        rate: u32,
        trials: usize,
        seed: u64,
        mut f: impl FnMut(&mut Track, &mut Rng, usize) -> String,
    ) -> Case {
        let mut rng = Rng::new(seed);
        let mut track = Track::new(rate);
        let mut regions = Vec::with_capacity(trials);
        let hop = rate as u64 / 200;
        for i in 0..trials {
            let start = track.len() as u64;
            // 60 ms of silence plus a random offset of up to two 5 ms hops.
            let lead = track.ms(60.0) + rng.below(2 * hop) as usize;
            track.silence_samples(lead);
            let expected = f(&mut track, &mut rng, i);
            track.silence(150.0);
            regions.push((start, track.len() as u64, expected));
        }
        Case { track, regions }
    }

    /// Scores reports (`key`, stream position of the report).
    pub fn evaluate(&self, reports: &[(char, u64)]) -> Outcome {
        let mut o = Outcome { trials: self.regions.len(), ..Outcome::default() };
        let mut r = 0;
        for (start, end, expected) in &self.regions {
            let mut got = String::new();
            while r < reports.len() && reports[r].1 < *end {
                if reports[r].1 >= *start {
                    got.push(reports[r].0);
                }
                r += 1;
            }
            if got == *expected {
                o.as_expected += 1;
            } else if o.failures.len() < 5 {
                o.failures.push(format!("at {start}: expected {expected:?}, got {got:?}"));
            }
            if got.is_empty() {
                o.silent += 1;
            }
            let wrong = got.chars().filter(|c| !expected.contains(*c)).count();
            o.wrong_keys += wrong;
            o.reported += got.chars().count();
        }
        o
    }
}

/// How a detector did on a case.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Trials in the case.
    pub trials: usize,
    /// Trials whose reported keys equal the expected ones exactly.
    pub as_expected: usize,
    /// Trials with no report at all.
    pub silent: usize,
    /// Reported keys that were not among the trial's expected keys.
    pub wrong_keys: usize,
    /// Keys reported in all.
    pub reported: usize,
    /// The first few failures, for messages.
    pub failures: Vec<String>,
}

impl Outcome {
    /// Share of trials as expected.
    pub fn rate(&self) -> f64 {
        self.as_expected as f64 / self.trials.max(1) as f64
    }
}

/// Runs cardveil on the case; reports are positions of key confirmation.
pub fn run_cardveil(case: &Case, profile: Profile) -> Outcome {
    let d = crate::cardveil_detect(case.track.rate, profile, &case.track.pcm16(), 160);
    let reports: Vec<(char, u64)> = d.downs.iter().map(|k| (k.key.as_char(), k.confirmed_at)).collect();
    case.evaluate(&reports)
}

/// Runs spandsp (default parameters) on an 8 kHz case, if spandsp is installed.
pub fn run_spandsp(case: &Case) -> Option<Outcome> {
    #[cfg(spandsp)]
    {
        if case.track.rate != 8000 {
            return None;
        }
        let reports = crate::spandsp::detect_timed(&case.track.pcm16(), None);
        Some(case.evaluate(&reports))
    }
    #[cfg(not(spandsp))]
    {
        let _ = case;
        None
    }
}

/// What a row demands of the share of trials as expected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Demand {
    /// Every trial as expected.
    All,
    /// At least this share.
    AtLeast(f64),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Short name.
    pub name: &'static str,
    /// What the trials contain and what is expected.
    pub what: &'static str,
    /// The demand on cardveil.
    pub demand: Demand,
    /// The case.
    pub case: Case,
}

fn random_key(rng: &mut Rng) -> Key {
    *rng.pick(&Key::ALL)
}

/// One trial: a single tone for a random key, expected to be accepted (`accept`) or not.
fn single(track: &mut Track, rng: &mut Rng, make: impl FnOnce(Key) -> Tone, accept: bool) -> String {
    let tone = make(random_key(rng));
    track.tone(&tone, rng);
    if accept { tone.key.as_char().to_string() } else { String::new() }
}

/// One trial: a random key, `on_ms` on, a `gap_ms` dropout during which the
/// oscillator keeps running (the tone resumes in phase), `on_ms` on again.
fn dropout(t: &mut Track, r: &mut Rng, on_ms: f64, gap_ms: f64) -> String {
    let k = random_key(r);
    let mut g = t.generator(&Tone::new(k, 0.0), r);
    let (on, gap) = (t.ms(on_ms), t.ms(gap_ms));
    t.push_from(&mut g, on);
    for _ in 0..gap {
        g.next_f64();
    }
    t.silence_samples(gap);
    t.push_from(&mut g, on);
    k.as_char().to_string()
}

/// One trial: the same random key twice, 50 ms on, `pause_ms` off.
fn repeat(t: &mut Track, r: &mut Rng, pause_ms: f64) -> String {
    let k = random_key(r);
    t.tone(&Tone::new(k, 50.0), r);
    t.silence(pause_ms);
    t.tone(&Tone::new(k, 50.0), r);
    format!("{0}{0}", k.as_char())
}

/// Signs for frequency-error trials: cycles through (−,−) (−,+) (+,−) (+,+).
fn signs(i: usize) -> (f64, f64) {
    (if i & 1 == 0 { -1.0 } else { 1.0 }, if i & 2 == 0 { -1.0 } else { 1.0 })
}

/// The Q.24 rows of SPEC's detector table at `rate`, `n` trials per row
/// (the noise row uses `noise_n`).
pub fn q24_rows(rate: u32, n: usize, noise_n: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |name, what, demand, case| rows.push(Row { name, what, demand, case });
    push(
        "freq ±1.5 %",
        "both tones off by exactly ±1.5 % (all sign pairs), 50 ms: accept",
        Demand::All,
        Case::build(rate, n, 1, |t, r, i| {
            let (a, b) = signs(i);
            single(t, r, |k| Tone::new(k, 50.0).freq_error(0.015 * a, 0.015 * b), true)
        }),
    );
    push(
        "freq ±3.5 %",
        "one tone off by exactly ±3.5 %, 50 ms: reject",
        Demand::All,
        Case::build(rate, n, 2, |t, r, i| {
            let (a, _) = signs(i);
            let e = 0.035 * a;
            let tone = Tone::new(random_key(r), 50.0);
            let tone = if i % 8 < 4 { tone.freq_error(e, 0.0) } else { tone.freq_error(0.0, e) };
            single(t, r, |_| tone, false)
        }),
    );
    push(
        "40 ms tone",
        "40 ms tone: accept",
        Demand::All,
        Case::build(rate, n, 3, |t, r, _| single(t, r, |k| Tone::new(k, 40.0), true)),
    );
    push(
        "23 ms tone",
        "23 ms tone: reject",
        Demand::All,
        Case::build(rate, n, 4, |t, r, _| single(t, r, |k| Tone::new(k, 23.0), false)),
    );
    push(
        "level 0…−25 dBm0",
        "each tone at 0, −5 … −25 dBm0, 50 ms: accept",
        Demand::All,
        Case::build(rate, n, 5, |t, r, i| {
            let level = -5.0 * (i % 6) as f64;
            single(t, r, |k| Tone::new(k, 50.0).level(level), true)
        }),
    );
    push(
        "level −30 dBm0",
        "each tone at −30 dBm0, 50 ms: accept (SPEC's aim)",
        Demand::All,
        Case::build(rate, n, 6, |t, r, _| single(t, r, |k| Tone::new(k, 50.0).level(-30.0), true)),
    );
    push(
        "level −55 dBm0",
        "each tone at −55 dBm0, 100 ms: reject",
        Demand::All,
        Case::build(rate, n, 7, |t, r, _| single(t, r, |k| Tone::new(k, 100.0).level(-55.0), false)),
    );
    push(
        "twist −8 dB",
        "high tone exactly 8 dB below the low one (low at −10 dBm0), 50 ms: accept",
        Demand::All,
        Case::build(rate, n, 8, |t, r, _| single(t, r, |k| Tone::new(k, 50.0).twist(-8.0), true)),
    );
    push(
        "twist +4 dB",
        "high tone exactly 4 dB above the low one (low at −10 dBm0), 50 ms: accept",
        Demand::All,
        Case::build(rate, n, 28, |t, r, _| single(t, r, |k| Tone::new(k, 50.0).twist(4.0), true)),
    );
    push(
        "twist ±10.5 dB",
        "twist −10.5 / +10.5 dB, 50 ms: reject",
        Demand::All,
        Case::build(rate, n, 9, |t, r, i| {
            let tw = if i % 2 == 0 { -10.5 } else { 10.5 };
            single(t, r, |k| Tone::new(k, 50.0).twist(tw), false)
        }),
    );
    push(
        "40 ms pause",
        "the same key twice, 50 ms on, 40 ms off: two digits",
        Demand::All,
        Case::build(rate, n, 10, |t, r, _| repeat(t, r, 40.0)),
    );
    push(
        "10 ms interruption",
        "50 ms on, 10 ms dropout, 50 ms on (phase continues): one digit",
        Demand::All,
        Case::build(rate, n, 11, |t, r, _| dropout(t, r, 50.0, 10.0)),
    );
    push(
        "93 ms per digit",
        "runs of 8 random keys, 45 ms on, 48 ms off: every key",
        Demand::All,
        Case::build(rate, n, 12, |t, r, _| {
            let mut s = String::new();
            for j in 0..8 {
                if j > 0 {
                    t.silence(48.0);
                }
                let k = random_key(r);
                t.tone(&Tone::new(k, 45.0), r);
                s.push(k.as_char());
            }
            s
        }),
    );
    push(
        "back-to-back keys",
        "two different keys, 50 ms each, no gap: both",
        Demand::All,
        Case::build(rate, n, 13, |t, r, _| {
            let a = random_key(r);
            let mut b = random_key(r);
            while b == a {
                b = random_key(r);
            }
            t.tone(&Tone::new(a, 50.0), r);
            t.tone(&Tone::new(b, 50.0), r);
            format!("{}{}", a.as_char(), b.as_char())
        }),
    );
    push("DC offset", "50 ms tone at −20 dBm0 riding on a +4000 DC offset: accept", Demand::All, {
        let mut c = Case::build(rate, n, 14, |t, r, _| single(t, r, |k| Tone::new(k, 50.0).level(-20.0), true));
        c.track.add_dc(4000.0);
        c
    });
    push(
        "clipped",
        "50 ms tone at +3 dBm0 per tone, hard-clipped at 16 bits: accept",
        Demand::All,
        Case::build(rate, n, 15, |t, r, _| single(t, r, |k| Tone::new(k, 50.0).level(3.0), true)),
    );
    push("dial tone under", "350+440 Hz dial tone 10 dB below the DTMF tones throughout: accept", Demand::All, {
        let mut c = Case::build(rate, n, 16, |t, r, _| single(t, r, |k| Tone::new(k, 50.0), true));
        let mut rng = Rng::new(160);
        c.track.add_pair([350.0, 440.0], -20.0, &mut rng);
        c
    });
    push(
        "third tone",
        "two keys of one row or column at once (three DTMF tones, equal level): reject",
        Demand::All,
        Case::build(rate, n, 17, |t, r, i| {
            let tone = Tone::new(random_key(r), 60.0);
            let (row, col) = (tone.key.row(), tone.key.col());
            let third = if i % 2 == 0 {
                cardveil_core::dtmf::ROW_HZ[(row + 1 + r.below(3) as usize) % 4]
            } else {
                cardveil_core::dtmf::COL_HZ[(col + 1 + r.below(3) as usize) % 4]
            };
            let start = t.len();
            t.tone(&tone, r);
            let mut extra = Track::new(t.rate);
            extra.sine(third, tone.level_dbm0, 60.0, r);
            for (s, e) in t.samples[start..].iter_mut().zip(&extra.samples) {
                *s += e;
            }
            String::new()
        }),
    );
    push(
        "single tones",
        "one DTMF frequency alone (any of the 8, ±1 %), 200 ms, −30…0 dBm0: reject",
        Demand::All,
        Case::build(rate, n, 18, |t, r, _| {
            let f = if r.below(2) == 0 {
                *r.pick(&cardveil_core::dtmf::ROW_HZ)
            } else {
                *r.pick(&cardveil_core::dtmf::COL_HZ)
            };
            let level = r.range(-30.0, 0.0);
            t.sine(f * r.range(0.99, 1.01), level, 200.0, r);
            String::new()
        }),
    );
    push(
        "call progress",
        "dial, ringback, busy, congestion, UK ring, SIT tones, 500 ms: reject",
        Demand::All,
        Case::build(rate, n, 19, |t, r, i| {
            const PAIRS: [[f64; 2]; 6] =
                [[350.0, 440.0], [440.0, 480.0], [480.0, 620.0], [400.0, 450.0], [425.0, 0.0], [950.0, 1400.0]];
            let p = PAIRS[i % PAIRS.len()];
            let mut tr = Track::new(t.rate);
            tr.silence(500.0);
            tr.add_pair([p[0], if p[1] == 0.0 { p[0] } else { p[1] }], -10.0, r);
            t.samples.extend(tr.samples);
            if i % PAIRS.len() == 5 {
                t.sine(1800.0, -10.0, 330.0, r);
            }
            String::new()
        }),
    );
    push(
        "noise, 15 dB SNR",
        "white noise at 15 dB SNR per tone, 50 ms tones: correct, 0 wrong digits",
        Demand::AtLeast(0.999),
        {
            let mut c = Case::build(rate, noise_n, 20, |t, r, _| single(t, r, |k| Tone::new(k, 50.0), true));
            let mut rng = Rng::new(200);
            c.track.add_noise(noise_rms_for_snr(-10.0, 15.0), &mut rng);
            c
        },
    );
    rows
}

/// Rows that only the ETSI and NTT profiles add (cardveil only).
pub fn profile_rows(rate: u32, n: usize) -> Vec<(Profile, Row)> {
    let mut rows = Vec::new();
    let mut push = |p, name, what, case| rows.push((p, Row { name, what, demand: Demand::All, case }));
    push(
        Profile::Etsi,
        "ETSI freq ±(1.5 % + 2 Hz)",
        "both tones off by 1.5 % + 2 Hz: accept",
        Case::build(rate, n, 31, |t, r, i| {
            let k = random_key(r);
            let (a, b) = signs(i);
            let (lo, hi) = k.frequencies();
            let tone = Tone::new(k, 50.0).freq_error(a * (0.015 + 2.0 / lo), b * (0.015 + 2.0 / hi));
            single(t, r, |_| tone, true)
        }),
    );
    push(
        Profile::Etsi,
        "ETSI twist ±6 dB",
        "twist −6 / +6 dB: accept",
        Case::build(rate, n, 32, |t, r, i| {
            let tw = if i % 2 == 0 { -6.0 } else { 6.0 };
            single(t, r, |k| Tone::new(k, 50.0).twist(tw), true)
        }),
    );
    push(
        Profile::Etsi,
        "ETSI 19 ms interruption",
        "50 ms on, 19 ms dropout, 50 ms on (phase continues): one digit",
        Case::build(rate, n, 33, |t, r, _| dropout(t, r, 50.0, 19.0)),
    );
    push(
        Profile::Etsi,
        "ETSI 19 ms tone",
        "19 ms tone: reject",
        Case::build(rate, n, 34, |t, r, _| single(t, r, |k| Tone::new(k, 19.0), false)),
    );
    push(
        Profile::Ntt,
        "NTT freq ±1.8 %",
        "both tones off by 1.8 %: accept",
        Case::build(rate, n, 41, |t, r, i| {
            let (a, b) = signs(i);
            single(t, r, |k| Tone::new(k, 50.0).freq_error(0.018 * a, 0.018 * b), true)
        }),
    );
    push(
        Profile::Ntt,
        "NTT freq ±3.0 %",
        "one tone off by 3.0 %: reject",
        Case::build(rate, n, 42, |t, r, i| {
            let (a, _) = signs(i);
            let tone = Tone::new(random_key(r), 50.0);
            let tone = if i % 8 < 4 { tone.freq_error(0.03 * a, 0.0) } else { tone.freq_error(0.0, 0.03 * a) };
            single(t, r, |_| tone, false)
        }),
    );
    push(
        Profile::Ntt,
        "NTT twist ±5 dB",
        "twist −5 / +5 dB: accept",
        Case::build(rate, n, 43, |t, r, i| {
            let tw = if i % 2 == 0 { -5.0 } else { 5.0 };
            single(t, r, |k| Tone::new(k, 50.0).twist(tw), true)
        }),
    );
    push(
        Profile::Ntt,
        "NTT 24 ms tone",
        "24 ms tone: reject",
        Case::build(rate, n, 44, |t, r, _| single(t, r, |k| Tone::new(k, 24.0), false)),
    );
    push(
        Profile::Ntt,
        "NTT 30 ms pause",
        "same key twice, 50 ms on, 30 ms off: two digits",
        Case::build(rate, n, 45, |t, r, _| repeat(t, r, 30.0)),
    );
    rows
}
