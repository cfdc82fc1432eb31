//! Benchmark inputs shared by the criterion benches in `benches/`.

use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};

/// 10 s of noise at about −20 dBm0 with slow level changes: the detector's
/// common case (no tone-like windows), as in speech between key presses.
pub fn noise_input(rate: u32) -> Vec<i16> {
    let mut out = vec![0i16; rate as usize * 10];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for (i, s) in out.iter_mut().enumerate() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let level = amplitude_for_dbm0(-20.0) * (1.0 + 0.8 * (i as f64 / rate as f64 * 3.0).sin());
        *s = (level * (((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5) * 2.0) as i16;
    }
    out
}

/// `n` samples of uniform white noise peaking at `amplitude` (xorshift64 from `seed`).
fn white(n: usize, amplitude: f64, seed: u64) -> Vec<i16> {
    let mut seed = seed;
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (amplitude * (((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5) * 2.0) as i16
        })
        .collect()
}

/// Adds `keys` to `out` from sample `at` on, 50 ms on and 50 ms off each,
/// at −10 dBm0 per tone.
fn key_in(out: &mut [i16], rate: u32, at: usize, keys: impl Iterator<Item = Key>) {
    let on = rate as usize / 20;
    for (i, key) in keys.enumerate() {
        let start = at + 2 * i * on;
        let len = on.min(out.len().saturating_sub(start));
        ToneGenerator::for_key(rate, key, -10.0).add_to(&mut out[start..start + len]);
    }
}

/// 10 s of 8 kHz audio: keyed digits (50 ms on, 50 ms off) over noise at
/// about −40 dBm0, so every code path of the detector runs.
pub fn keyed_input(rate: u32) -> Vec<i16> {
    let n = rate as usize * 10;
    let mut out = white(n, amplitude_for_dbm0(-40.0), 0x9E37_79B9_7F4A_7C15);
    let count = n.div_ceil(rate as usize / 10);
    key_in(&mut out, rate, 0, (0..count).map(|i| Key::ALL[i % 16]));
    out
}

/// 60 s of a card-entry call: the noise of [`noise_input`] (speech's
/// stand-in) except from 20 s on, where a caller keys 26 digits at 10 per
/// second over quiet noise at about −40 dBm0 (a 16-digit PAN, expiry and
/// CVV, each with its `#`). Keys sound 2 % of the time: what a channel
/// costs on average over such a call.
pub fn call_input(rate: u32) -> Vec<i16> {
    let ten = noise_input(rate);
    let mut out: Vec<i16> = ten.iter().copied().cycle().take(ten.len() * 6).collect();
    let keys = "4111111111111111#1229#123#";
    let (at, len) = (20 * rate as usize, keys.len() * rate as usize / 10);
    out[at..at + len].copy_from_slice(&white(len, amplitude_for_dbm0(-40.0), 0x5851_F42D_4C95_7F2D));
    key_in(&mut out, rate, at, keys.chars().map(|c| Key::from_char(c).expect("a DTMF key")));
    out
}
