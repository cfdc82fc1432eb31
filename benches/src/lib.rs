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

/// 10 s of 8 kHz audio: keyed digits (50 ms on, 50 ms off) over noise at
/// about −40 dBm0, so every code path of the detector runs.
pub fn keyed_input(rate: u32) -> Vec<i16> {
    let n = rate as usize * 10;
    let mut out = vec![0i16; n];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let noise = amplitude_for_dbm0(-40.0);
    for s in out.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *s = (noise * (((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5) * 2.0) as i16;
    }
    let on = rate as usize / 20;
    for (i, chunk) in out.chunks_mut(2 * on).enumerate() {
        let key = Key::ALL[i % 16];
        let mut g = ToneGenerator::for_key(rate, key, -10.0);
        let len = on.min(chunk.len());
        g.add_to(&mut chunk[..len]);
    }
    out
}
