//! A stimulus builder: appends silence, DTMF tones (any level, twist,
//! frequency error, duration, random start phase), noise and other signals
//! to a track, and records where each tone really is.

use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};

use crate::rng::Rng;

/// One DTMF tone.
#[derive(Debug, Clone, Copy)]
pub struct Tone {
    /// The key.
    pub key: Key,
    /// Level of the low (row) tone, dBm0.
    pub level_dbm0: f64,
    /// High tone level minus low tone level, dB.
    pub twist_db: f64,
    /// Relative frequency error of (low, high), e.g. 0.015 for +1.5 %.
    pub freq_error: [f64; 2],
    /// Duration, milliseconds.
    pub duration_ms: f64,
}

impl Tone {
    /// A nominal tone at −10 dBm0 per tone, no twist, for `duration_ms`.
    pub fn new(key: Key, duration_ms: f64) -> Tone {
        Tone { key, level_dbm0: -10.0, twist_db: 0.0, freq_error: [0.0, 0.0], duration_ms }
    }
    /// With level (per tone) `dbm0`.
    pub fn level(mut self, dbm0: f64) -> Tone {
        self.level_dbm0 = dbm0;
        self
    }
    /// With twist (high − low) `db`.
    pub fn twist(mut self, db: f64) -> Tone {
        self.twist_db = db;
        self
    }
    /// With relative frequency errors.
    pub fn freq_error(mut self, low: f64, high: f64) -> Tone {
        self.freq_error = [low, high];
        self
    }
}

/// How a generated key is shaped.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// The first `ms` are `db` quieter, with a 15 dB dip of 8 ms in them
    /// (codec pre-echo, AGC and soft keypads do this).
    Quiet { ms: f64, db: f64 },
    /// The amplitude rises linearly from zero over `ms`.
    Attack { ms: f64 },
    /// A key-click: a 2 ms decaying burst `db` above the tone at its start.
    Click { db: f64 },
    /// The level falls by `db` (linearly in dB) while the key is held.
    Fade { db: f64 },
}

/// Where a tone was placed, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    /// The key.
    pub key: Key,
    /// First sample.
    pub start: u64,
    /// One past the last sample.
    pub end: u64,
}

/// A mono signal under construction, in floating point.
#[derive(Debug, Clone)]
pub struct Track {
    /// Sample rate.
    pub rate: u32,
    /// The samples.
    pub samples: Vec<f64>,
    /// Every tone placed, in order.
    pub truth: Vec<Truth>,
}

impl Track {
    /// An empty track.
    pub fn new(rate: u32) -> Track {
        Track { rate, samples: Vec::new(), truth: Vec::new() }
    }

    /// Samples in `ms` milliseconds.
    pub fn ms(&self, ms: f64) -> usize {
        (ms * self.rate as f64 / 1000.0).round() as usize
    }

    /// Current length in samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Appends `n` samples of silence.
    pub fn silence_samples(&mut self, n: usize) -> &mut Track {
        self.samples.resize(self.samples.len() + n, 0.0);
        self
    }

    /// Appends `ms` of silence.
    pub fn silence(&mut self, ms: f64) -> &mut Track {
        let n = self.ms(ms);
        self.silence_samples(n)
    }

    /// A generator for `tone` with random start phases.
    pub fn generator(&self, tone: &Tone, rng: &mut Rng) -> ToneGenerator {
        let (lo, hi) = tone.key.frequencies();
        let a_lo = amplitude_for_dbm0(tone.level_dbm0);
        let a_hi = amplitude_for_dbm0(tone.level_dbm0 + tone.twist_db);
        ToneGenerator::new(
            self.rate,
            [lo * (1.0 + tone.freq_error[0]), hi * (1.0 + tone.freq_error[1])],
            [a_lo, a_hi],
            [rng.phase(), rng.phase()],
        )
    }

    /// Appends a tone with random start phases and records its truth.
    pub fn tone(&mut self, tone: &Tone, rng: &mut Rng) -> &mut Track {
        let mut g = self.generator(tone, rng);
        let n = self.ms(tone.duration_ms);
        self.push_from(&mut g, n);
        let end = self.samples.len() as u64;
        self.truth.push(Truth { key: tone.key, start: end - n as u64, end });
        self
    }

    /// Appends a tone (recording its truth) shaped by `shape`.
    pub fn shaped_tone(&mut self, tone: &Tone, shape: Shape, rng: &mut Rng) -> &mut Track {
        let start = self.samples.len();
        self.tone(tone, rng);
        let ms = self.rate as f64 / 1000.0;
        for (i, s) in self.samples[start..].iter_mut().enumerate() {
            let at = i as f64 / ms;
            let gain_db = match shape {
                Shape::Quiet { ms: q, db } if at < q => {
                    // The dip sits in the middle of the quiet part.
                    let dip = (q / 2.0 - 4.0..q / 2.0 + 4.0).contains(&at);
                    -db - if dip { 15.0 } else { 0.0 }
                }
                Shape::Attack { ms: a } if at < a => 20.0 * (at / a).max(1e-6).log10(),
                Shape::Fade { db } => -db * at / tone.duration_ms,
                _ => 0.0,
            };
            *s *= 10f64.powf(gain_db / 20.0);
        }
        if let Shape::Click { db } = shape {
            let a = amplitude_for_dbm0(tone.level_dbm0 + db);
            let n = (2.0 * ms) as usize;
            for i in 0..n {
                let decay = 1.0 - i as f64 / n as f64;
                self.samples[start + i] += a * decay * rng.gauss();
            }
        }
        self
    }

    /// Appends `n` samples from a generator (recording no truth).
    pub fn push_from(&mut self, g: &mut ToneGenerator, n: usize) -> &mut Track {
        self.samples.extend((0..n).map(|_| g.next_f64()));
        self
    }

    /// Appends a single sine.
    pub fn sine(&mut self, hz: f64, dbm0: f64, ms: f64, rng: &mut Rng) -> &mut Track {
        let mut g = ToneGenerator::new(self.rate, [hz, 0.0], [amplitude_for_dbm0(dbm0), 0.0], [rng.phase(), 0.0]);
        let n = self.ms(ms);
        self.push_from(&mut g, n)
    }

    /// Adds white Gaussian noise of RMS `rms` (16-bit units) over the whole track.
    pub fn add_noise(&mut self, rms: f64, rng: &mut Rng) -> &mut Track {
        for s in &mut self.samples {
            *s += rms * rng.gauss();
        }
        self
    }

    /// Adds a continuous two-tone signal (e.g. dial tone) over the whole track.
    pub fn add_pair(&mut self, hz: [f64; 2], dbm0: f64, rng: &mut Rng) -> &mut Track {
        let a = amplitude_for_dbm0(dbm0);
        let mut g = ToneGenerator::new(self.rate, hz, [a, a], [rng.phase(), rng.phase()]);
        for s in &mut self.samples {
            *s += g.next_f64();
        }
        self
    }

    /// Adds a constant.
    pub fn add_dc(&mut self, dc: f64) -> &mut Track {
        for s in &mut self.samples {
            *s += dc;
        }
        self
    }

    /// The track as 16-bit PCM, rounded and saturated (so loud signals clip).
    pub fn pcm16(&self) -> Vec<i16> {
        self.samples.iter().map(|&s| s.round().clamp(-32768.0, 32767.0) as i16).collect()
    }
}

/// RMS of white noise that gives `snr_db` against one sine of `dbm0`.
pub fn noise_rms_for_snr(dbm0: f64, snr_db: f64) -> f64 {
    let a = amplitude_for_dbm0(dbm0);
    (a * a / 2.0 / 10f64.powf(snr_db / 10.0)).sqrt()
}
