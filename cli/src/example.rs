//! `cardveil example OUT.wav`: a caller keying the Visa test number
//! 4111 1111 1111 1111, `#`, expiry 12/29, `#`, CVV 123, `#`, with uneven
//! timing and levels, over faint line noise. Deterministic.

use std::path::Path;

use cardveil_core::codec::wav::{self, WavFormat};
use cardveil_core::codec::{Encoding, alaw, ulaw};
use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};

use crate::CliError;
use crate::output::write_atomically;

/// The keys the example contains, in order.
pub const KEYS: &str = "4111111111111111#1229#123#";

/// The example's samples at `rate`, with the truth (key, start, end in samples).
pub fn synthesize(rate: u32) -> (Vec<i16>, Vec<(Key, u64, u64)>) {
    keyed(rate, KEYS)
}

/// A caller keying `keys` at `rate` the way the example does (uneven
/// timing, levels and twist, 600 ms after each `#`, faint line noise),
/// with the truth (key, start, end in samples). Deterministic.
///
/// # Panics
/// If `keys` has a character that is not a DTMF key.
pub fn keyed(rate: u32, keys: &str) -> (Vec<i16>, Vec<(Key, u64, u64)>) {
    let ms = |v: f64| (v * rate as f64 / 1000.0) as usize;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut pcm: Vec<i16> = Vec::new();
    let mut truth = Vec::new();
    pcm.resize(ms(400.0), 0);
    for c in keys.chars() {
        let key = Key::from_char(c).expect("keys are DTMF keys");
        let (lo, hi) = key.frequencies();
        let level = -8.0 - 10.0 * rand();
        let twist = -3.0 * rand();
        let mut g = ToneGenerator::new(
            rate,
            [lo * (1.0 + 0.01 * (rand() - 0.5)), hi * (1.0 + 0.01 * (rand() - 0.5))],
            [amplitude_for_dbm0(level), amplitude_for_dbm0(level + twist)],
            [std::f64::consts::TAU * rand(), std::f64::consts::TAU * rand()],
        );
        let start = pcm.len();
        pcm.resize(start + ms(60.0 + 80.0 * rand()), 0);
        g.fill(&mut pcm[start..]);
        truth.push((key, start as u64, pcm.len() as u64));
        let gap = if c == '#' { 600.0 } else { 80.0 + 250.0 * rand() };
        pcm.resize(pcm.len() + ms(gap), 0);
    }
    pcm.resize(pcm.len() + ms(400.0), 0);
    // Faint line noise (about −60 dBm0), so the file is not digital silence.
    let noise = amplitude_for_dbm0(-60.0);
    for s in &mut pcm {
        *s = (*s as f64 + noise * (rand() - 0.5) * 2.0).round().clamp(-32768.0, 32767.0) as i16;
    }
    (pcm, truth)
}

/// Runs the subcommand.
pub fn run(output: &Path, encoding: &str, rate: u32) -> Result<(), CliError> {
    let encoding = match encoding {
        "pcm16" | "pcm" => Encoding::Pcm16,
        "ulaw" | "mulaw" | "pcmu" => Encoding::Ulaw,
        "alaw" | "pcma" => Encoding::Alaw,
        other => return Err(CliError::Usage(format!("unknown encoding '{other}' (expected pcm16, ulaw or alaw)"))),
    };
    wav::check_rate(encoding, rate).map_err(|e| CliError::Usage(format!("unsupported rate: {e}")))?;
    let (pcm, _) = synthesize(rate);
    let data: Vec<u8> = match encoding {
        Encoding::Pcm16 => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
        Encoding::Ulaw => pcm.iter().map(|&s| ulaw::encode(s)).collect(),
        Encoding::Alaw => pcm.iter().map(|&s| alaw::encode(s)).collect(),
    };
    let format = WavFormat { encoding, sample_rate: rate, channels: 1 };
    let pad: &[u8] = if data.len() % 2 == 1 { &[0] } else { &[] };
    write_atomically(output, &[&wav::header(format, data.len() as u32), &data, pad])
}
