//! Keys under other audio (issue 13): the keyed track, the backgrounds
//! (espeak-ng speech, babble, synthetic hold music, a second "agent" leg
//! mixed into the same channel, white and pink noise) and one row of the
//! measurement — what each decoder reads from the masked output and from
//! the background alone, and what a matched filter that knows where the
//! tones were reads from each tone and from each 5 and 10 ms piece of it.
//!
//! Used by `tests/tests/overlap.rs` (which asserts on the figures) and by
//! the `overlap_leaks` tool (which prints them). Per-tone SNR is a tone's
//! level minus the background's RMS level.

use std::path::Path;
use std::process::Command;

use cardveil_core::codec::Encoding;
use cardveil_core::dtmf::{COL_HZ, Key, ROW_HZ, ToneGenerator, amplitude_for_dbm0};
use cardveil_core::mask::MaskerConfig;

use crate::masking::{
    decode, decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive, encode,
    energy_at, mask_codes,
};
use crate::rng::Rng;
use crate::talkoff::{music, speech, voices};
use crate::tools::{run, s16le};

/// One keyed tone: its key, true frequencies and span in samples.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub key: Key,
    pub hz: [f64; 2],
    pub start: usize,
    pub end: usize,
}

/// A track of keyed tones (linear, f64) with their spans, and the level of
/// the low (row) tone every SNR refers to.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub rate: u32,
    pub samples: Vec<f64>,
    pub tones: Vec<Placed>,
    pub low_dbm0: f64,
}

/// Which tones a keyed track holds.
#[derive(Debug, Clone, Copy)]
pub struct Keys {
    /// Tones per key.
    pub per_key: usize,
    /// Level of the low tone, dBm0.
    pub low_dbm0: f64,
    /// Durations, ms.
    pub ms: (f64, f64),
    /// Largest offset of either tone, relative.
    pub offset: f64,
}

impl Keys {
    /// What the masker must take out: 20–200 ms, both tones 0…3.5 % off.
    pub fn masking(per_key: usize) -> Keys {
        Keys { per_key, low_dbm0: -10.0, ms: (20.0, 200.0), offset: 0.035 }
    }
    /// Valid keys, which the detector must report: 40–200 ms, within 1.5 %.
    pub fn valid(per_key: usize) -> Keys {
        Keys { per_key, low_dbm0: -10.0, ms: (40.0, 200.0), offset: 0.015 }
    }
}

/// `keys.per_key` tones of every key, twist −8…+4 dB, 60–140 ms apart,
/// random phases; 300 ms of lead-in and tail.
pub fn keyed(rate: u32, keys: Keys, seed: u64) -> Keyed {
    let Keys { per_key, low_dbm0, ms: (min_ms, max_ms), offset } = keys;
    let mut rng = Rng::new(seed);
    let ms = |v: f64| (v * rate as f64 / 1000.0) as usize;
    let mut x = vec![0f64; ms(300.0)];
    let mut tones = Vec::new();
    for i in 0..per_key * Key::ALL.len() {
        let key = Key::ALL[i % Key::ALL.len()];
        let (lo, hi) = key.frequencies();
        let e = [rng.range(-offset, offset), rng.range(-offset, offset)];
        let hz = [lo * (1.0 + e[0]), hi * (1.0 + e[1])];
        let twist = rng.range(-8.0, 4.0);
        let a = [amplitude_for_dbm0(low_dbm0), amplitude_for_dbm0(low_dbm0 + twist)];
        let mut g = ToneGenerator::new(rate, hz, a, [rng.phase(), rng.phase()]);
        let n = ms(rng.range(min_ms, max_ms));
        let start = x.len();
        x.extend((0..n).map(|_| g.next_f64()));
        tones.push(Placed { key, hz, start, end: x.len() });
        x.extend(std::iter::repeat_n(0.0, ms(rng.range(60.0, 140.0))));
    }
    x.extend(std::iter::repeat_n(0.0, ms(300.0)));
    Keyed { rate, samples: x, tones, low_dbm0 }
}

/// `keyed` with its line echo: the whole track again `delay_ms` later and
/// `loss_db` down, as a hybrid returns it (one echo path, so an echo may
/// fall under the next key or outlast it). The echoes carry the keys as
/// well; they become the tones to measure (`tones`), the keys themselves
/// stay in the samples.
pub fn with_echo(keyed: &Keyed, delay_ms: f64, loss_db: f64) -> Keyed {
    let d = (delay_ms * keyed.rate as f64 / 1000.0) as usize;
    let g = 10f64.powf(-loss_db / 20.0);
    let mut samples = keyed.samples.clone();
    samples.resize(keyed.samples.len() + d, 0.0);
    for (i, v) in keyed.samples.iter().enumerate() {
        samples[i + d] += g * v;
    }
    let tones = keyed.tones.iter().map(|t| Placed { start: t.start + d, end: t.end + d, ..*t }).collect();
    Keyed { rate: keyed.rate, samples, tones, low_dbm0: keyed.low_dbm0 - loss_db }
}

/// RMS of `x`.
pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The backgrounds, each `n` samples long at `rate`: speech (one voice),
/// babble (three voices summed), hold music, the agent leg (another voice),
/// white noise and pink noise. Needs espeak-ng and sox (for the speech).
pub fn backgrounds(n: usize, rate: u32, seed: u64, dir: &Path) -> Vec<(&'static str, Vec<f64>)> {
    let seconds = n as f64 / rate as f64 + 0.5;
    let vs = voices();
    let fit = |mut b: Vec<i16>| -> Vec<f64> {
        b.resize(n, 0);
        b.iter().map(|&s| s as f64).collect()
    };
    let sum = |parts: Vec<Vec<f64>>| -> Vec<f64> { (0..n).map(|i| parts.iter().map(|p| p[i]).sum()).collect() };
    let mut rng = Rng::new(seed);
    let white: Vec<f64> = (0..n).map(|_| rng.gauss()).collect();
    // Pink: white noise through Paul Kellet's economy filter (−3 dB/octave
    // within ±0.5 dB over the band; the coefficients are his published ones).
    let mut b = [0f64; 3];
    let pink: Vec<f64> = (0..n)
        .map(|_| {
            let w = rng.gauss();
            b[0] = 0.99765 * b[0] + w * 0.0990460;
            b[1] = 0.96300 * b[1] + w * 0.2965164;
            b[2] = 0.57000 * b[2] + w * 1.0526913;
            b[0] + b[1] + b[2] + w * 0.1848
        })
        .collect();
    vec![
        ("speech", fit(speech(&vs[0], seconds, rate, seed + 1, dir))),
        (
            "babble",
            sum(vec![
                fit(speech(&vs[1], seconds, rate, seed + 2, dir)),
                fit(speech(&vs[2], seconds, rate, seed + 3, dir)),
                fit(speech(&vs[5], seconds, rate, seed + 4, dir)),
            ]),
        ),
        ("music", fit(music(seconds, rate, -15.0, seed + 5))),
        ("agent leg", fit(speech(&vs[11], seconds, rate, seed + 6, dir))),
        ("white noise", white),
        ("pink noise", pink),
    ]
}

/// The key an 8-frequency matched filter reads from `x[range]`: the row and
/// the column frequency with the most energy over the whole range
/// (coherently, at the nominal frequencies).
pub fn matched_filter_key(x: &[i16], rate: u32, range: std::ops::Range<usize>) -> Key {
    let e: Vec<f64> = ROW_HZ.iter().chain(COL_HZ.iter()).map(|&f| energy_at(x, rate, f, range.clone())).collect();
    let argmax = |v: &[f64]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
    Key::from_row_col(argmax(&e[..4]), argmax(&e[4..]))
}

/// Hits of the known-span matched filter, and the best constant guess's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guesses {
    pub trials: usize,
    pub hits: usize,
    pub constant: usize,
}

impl Guesses {
    /// Hit rate minus the best constant guess's, in percentage points.
    pub fn excess_pct(&self) -> f64 {
        100.0 * (self.hits as f64 - self.constant as f64) / self.trials.max(1) as f64
    }
    /// Hit rate, %.
    pub fn rate_pct(&self) -> f64 {
        100.0 * self.hits as f64 / self.trials.max(1) as f64
    }
    /// The best constant guess's hit rate, %.
    pub fn constant_pct(&self) -> f64 {
        100.0 * self.constant as f64 / self.trials.max(1) as f64
    }
}

/// One decoder's keys from the masked output and from the background alone.
#[derive(Debug, Clone)]
pub struct Read {
    pub decoder: &'static str,
    pub masked: String,
    pub alone: String,
}

/// One row: a background at one SNR, in one encoding.
#[derive(Debug, Clone)]
pub struct RowResult {
    pub background: &'static str,
    pub snr_db: f64,
    pub encoding: Encoding,
    pub rate: u32,
    pub lookahead_ms: u32,
    pub reads: Vec<Read>,
    /// The matched filter over each tone, and over each 5 ms and 10 ms piece.
    pub tone: Guesses,
    pub piece5: Guesses,
    pub piece10: Guesses,
    /// Share of the tones' samples inside masked spans.
    pub covered: f64,
}

impl RowResult {
    /// `Pcm16`, `Ulaw`, …, the rate if it is not 8 kHz and the look-ahead
    /// if it is not the default.
    pub fn format(&self) -> String {
        let mut f = match self.rate {
            8000 => format!("{:?}", self.encoding),
            r => format!("{:?} {} kHz", self.encoding, r / 1000),
        };
        if self.lookahead_ms != cardveil_core::mask::DEFAULT_LOOKAHEAD_MS {
            f += &format!(", {} ms look-ahead", self.lookahead_ms);
        }
        f
    }

    /// Whether the row meets SPEC's bar: no decoder reads more keys from the
    /// masked output than from the background alone, and the matched filter
    /// beats the best constant guess by no more than 2 points anywhere.
    pub fn leak_free(&self) -> bool {
        self.reads.iter().all(|r| r.masked.len() <= r.alone.len())
            && [self.tone, self.piece5, self.piece10].iter().all(|g| g.excess_pct() <= 2.0)
    }

    /// `multimon-ng 0 (0), …` — keys read from the masked output (and from the background alone).
    pub fn reads_summary(&self) -> String {
        let v: Vec<String> =
            self.reads.iter().map(|r| format!("{} {} ({})", r.decoder, r.masked.len(), r.alone.len())).collect();
        v.join(", ")
    }

    /// `tone / 5 ms / 10 ms % (the same for the best constant guess)`: the
    /// known-span matched filter's hit rates.
    pub fn matched_filter_summary(&self) -> String {
        format!(
            "{:.0} / {:.0} / {:.0} % ({:.0} / {:.0} / {:.0} %)",
            self.tone.rate_pct(),
            self.piece5.rate_pct(),
            self.piece10.rate_pct(),
            self.tone.constant_pct(),
            self.piece5.constant_pct(),
            self.piece10.constant_pct()
        )
    }
}

/// `a, b` — or `none`.
pub fn names(v: &[&str]) -> String {
    if v.is_empty() { "none".to_owned() } else { v.join(", ") }
}

fn decoders(rate: u32, x: &[i16], dir: &Path, tag: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("cardveil", decode_cardveil(rate, x)),
        ("multimon-ng", decode_multimon(rate, x, dir, tag)),
        ("dtmf2num", decode_dtmf2num(rate, x, dir, tag)),
    ];
    // spandsp runs at 8 kHz only: an attacker resamples first.
    let narrow = if rate == 8000 { x.to_vec() } else { resample(x, rate, 8000, dir, tag) };
    if let (Some(a), Some(b)) = (decode_spandsp(&narrow), decode_spandsp_sensitive(&narrow)) {
        v.push(("spandsp", a));
        v.push(("spandsp-sens", b));
    }
    v
}

/// The best constant guess's hits over `keys`.
fn constant_hits(keys: &[Key]) -> usize {
    Key::ALL.iter().map(|k| keys.iter().filter(|&&x| x == *k).count()).max().unwrap_or(0)
}

/// One row of the line-echo measurement ([`echo_rows`]).
#[derive(Debug, Clone)]
pub struct EchoRow {
    pub delay_ms: f64,
    pub loss_db: f64,
    pub row: RowResult,
}

impl EchoRow {
    /// The Markdown header of [`EchoRow::table_line`]s.
    pub const HEADER: &'static str = "| echo delay ms | echo loss dB | encoding | masked output: keys read | matched filter over the echoes: tone / 5 ms / 10 ms (constant guess) | echo time masked |\n|---:|---:|---|---|---:|---:|";

    /// `| delay | loss | encoding | keys read | matched filter | time masked |`.
    pub fn table_line(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {:.1} % |",
            self.delay_ms,
            self.loss_db,
            self.row.format(),
            self.row.reads_summary(),
            self.row.matched_filter_summary(),
            100.0 * self.row.covered
        )
    }
}

/// `keyed` with its line echo ([`with_echo`]) 30, 120, 250 and 500 ms later
/// and 20, 35 and 50 dB down, on an otherwise silent line, masked through
/// `config` in PCM16 and in μ-law (its encoding is set per row; its rate
/// must be the track's); the echoes are the tones measured.
pub fn echo_rows(keyed: &Keyed, config: MaskerConfig, dir: &Path, gaps: bool) -> Vec<EchoRow> {
    let silence = vec![0.0; keyed.samples.len() + keyed.rate as usize];
    let mut rows = Vec::new();
    for delay_ms in [30.0, 120.0, 250.0, 500.0] {
        for loss_db in [20.0, 35.0, 50.0] {
            let echoed = with_echo(keyed, delay_ms, loss_db);
            for encoding in [Encoding::Pcm16, Encoding::Ulaw] {
                let config = MaskerConfig { encoding, ..config };
                let row = measure(&echoed, ("silence", &silence), f64::INFINITY, config, dir, gaps);
                rows.push(EchoRow { delay_ms, loss_db, row });
            }
        }
    }
    rows
}

/// `x` at `from` Hz resampled to `to` Hz by sox.
fn resample(x: &[i16], from: u32, to: u32, dir: &Path, tag: &str) -> Vec<i16> {
    let (a, b) = (dir.join(format!("{tag}-rs-in.raw")), dir.join(format!("{tag}-rs-out.raw")));
    std::fs::write(&a, x.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>()).expect("write raw");
    let raw = |r: u32| {
        ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r"].map(str::to_owned).into_iter().chain([r.to_string()])
    };
    // `-D`: no dither, so the same input resamples the same every run.
    run(Command::new("sox").arg("-D").args(raw(from)).arg(&a).args(raw(to)).arg(&b));
    let out = s16le(&std::fs::read(&b).expect("read raw"));
    let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
    out
}

/// `keyed` plus `background` scaled to `snr_db` per tone, and the scaled
/// background alone, as 16-bit PCM.
fn mix(keyed: &Keyed, bg: &[f64], snr_db: f64) -> (Vec<i16>, Vec<i16>) {
    let n = keyed.samples.len();
    let tone_rms = amplitude_for_dbm0(keyed.low_dbm0) / std::f64::consts::SQRT_2;
    // No background at all (a silent line): the keyed track alone.
    let level = rms(&bg[..n]);
    let gain = if level > 0.0 { tone_rms / 10f64.powf(snr_db / 20.0) / level } else { 0.0 };
    let to_pcm = |x: &mut dyn Iterator<Item = f64>| -> Vec<i16> {
        x.map(|v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
    };
    (to_pcm(&mut (0..n).map(|i| keyed.samples[i] + gain * bg[i])), to_pcm(&mut (0..n).map(|i| gain * bg[i])))
}

/// What each decoder reads from `keyed` under `background` at `snr_db`
/// per tone (PCM16, unmasked), and the keys it should read.
#[derive(Debug, Clone)]
pub struct InputReads {
    pub expected: String,
    pub reads: Vec<(&'static str, String)>,
}

impl InputReads {
    /// The decoders that read the keys exactly.
    pub fn exact(&self) -> Vec<&'static str> {
        self.reads.iter().filter(|(_, read)| *read == self.expected).map(|(d, _)| *d).collect()
    }

    /// What `decoder` read ("" if it did not run).
    pub fn read_by(&self, decoder: &str) -> &str {
        self.reads.iter().find(|(d, _)| *d == decoder).map_or("", |(_, read)| read)
    }
}

/// The decoders' reads of `keyed` under `background` at `snr_db` per tone.
pub fn input_reads(keyed: &Keyed, background: (&'static str, &[f64]), snr_db: f64, dir: &Path) -> InputReads {
    let (name, bg) = background;
    let (pcm_in, _) = mix(keyed, bg, snr_db);
    let expected: String = keyed.tones.iter().map(|t| t.key.as_char()).collect();
    let tag = format!("{}-{snr_db}-in", name.replace(' ', "-"));
    InputReads { expected, reads: decoders(keyed.rate, &pcm_in, dir, &tag) }
}

/// Levenshtein distance: keys missed, added or read wrong.
pub fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j])).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Measures one row: `keyed` under `background` scaled to `snr_db` per
/// tone, through `config` (its encoding and rate; the track's rate must
/// match), 20 ms frames. With `gaps`, prints (stderr) the unmasked parts
/// of each tone, in ms from its onset.
pub fn measure(
    keyed: &Keyed,
    background: (&'static str, &[f64]),
    snr_db: f64,
    config: MaskerConfig,
    dir: &Path,
    gaps: bool,
) -> RowResult {
    let (name, bg) = background;
    let rate = keyed.rate;
    let (pcm_in, pcm_bg) = mix(keyed, bg, snr_db);
    // The encoding's own codes in, decoded out (G.711 rows quantise both).
    let codes = encode(config.encoding, &pcm_in);
    let heard_bg = decode(config.encoding, &encode(config.encoding, &pcm_bg));
    let frame = 20 * rate as usize / 1000;
    let masked = mask_codes(config, &codes, || frame);
    let tag = format!("{}-{snr_db}-{:?}", name.replace(' ', "-"), config.encoding);
    let out = decoders(rate, &masked.linear, dir, &format!("{tag}-out"));
    let alone = decoders(rate, &heard_bg, dir, &format!("{tag}-bg"));
    let reads =
        out.into_iter().zip(alone).map(|((decoder, masked), (_, alone))| Read { decoder, masked, alone }).collect();
    let mut guesses = [Guesses::default(); 3];
    let mut keys: [Vec<Key>; 3] = Default::default();
    let ms = rate as usize / 1000;
    for t in &keyed.tones {
        let mut try_range = |slot: usize, range: std::ops::Range<usize>| {
            guesses[slot].trials += 1;
            guesses[slot].hits += (matched_filter_key(&masked.linear, rate, range) == t.key) as usize;
            keys[slot].push(t.key);
        };
        try_range(0, t.start..t.end);
        for (slot, len) in [(1, 5 * ms), (2, 10 * ms)] {
            let mut a = t.start;
            while a + len <= t.end {
                try_range(slot, a..a + len);
                a += len;
            }
        }
    }
    for (g, k) in guesses.iter_mut().zip(&keys) {
        g.constant = constant_hits(k);
    }
    if gaps {
        eprintln!("{name} {snr_db:+} dB {:?}:", config.encoding);
        for t in &keyed.tones {
            let mut open = Vec::new();
            let mut i = t.start;
            while i < t.end {
                let g = i;
                while i < t.end && !masked.is_masked(i as u64) {
                    i += 1;
                }
                if i > g {
                    open.push(format!("{}..{} ms", (g - t.start) / ms, (i - t.start) / ms));
                }
                i += 1;
            }
            if !open.is_empty() {
                eprintln!(
                    "  {:?} {} ms (from {} ms): unmasked {}",
                    t.key,
                    (t.end - t.start) / ms,
                    t.start / ms,
                    open.join(", ")
                );
            }
        }
    }
    let tone_samples: usize = keyed.tones.iter().map(|t| t.end - t.start).sum();
    let covered: usize =
        keyed.tones.iter().map(|t| (t.start..t.end).filter(|&i| masked.is_masked(i as u64)).count()).sum();
    RowResult {
        background: name,
        snr_db,
        encoding: config.encoding,
        rate,
        lookahead_ms: config.lookahead_ms,
        reads,
        tone: guesses[0],
        piece5: guesses[1],
        piece10: guesses[2],
        covered: covered as f64 / tone_samples.max(1) as f64,
    }
}
