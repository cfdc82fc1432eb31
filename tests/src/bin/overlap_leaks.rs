//! Measures what masking leaves and what detection finds when other audio
//! overlaps the tones (issue 13's tables): keys of every key (durations
//! 20–200 ms, twist −8…+4 dB, both tones 0…3.5 % off, the low tone at
//! −10 dBm0) under espeak-ng speech, babble (three voices summed),
//! synthetic hold music, a second "agent" leg mixed in, white and pink
//! noise, at per-tone SNR +30 … −6 dB (SNR: a tone's level minus the
//! background's RMS level). The same rows `tests/tests/overlap.rs` asserts
//! on, with more tones.
//!
//! For each row: the keys each decoder (cardveil, spandsp default and most
//! sensitive, multimon-ng, dtmf2num) reads from the masked output and from
//! the background alone; the known-span matched filter's hit rate over the
//! tones and over their 5 and 10 ms pieces, against the best constant
//! guess's; the share of the tones' samples the masker covered; and which
//! decoders read a second track's keys exactly from the unmasked input
//! (valid keys: 40–200 ms, within ±1.5 %, under the same background).
//!
//! `cargo run --release -p cardveil-tests --bin overlap_leaks [-- --quick]
//! [--per-key N] [--seed N] [--lookahead-ms N] [--rate HZ] [--background NAME] [--background-seed N] [--echoes] [--gaps] [--detect]` (needs espeak-ng, sox,
//! multimon-ng, dtmf2num; prints a Markdown table; `--gaps` lists on
//! stderr, per row and tone, the parts of the tone the masker left
//! unmasked, in ms from its onset; `--rate` runs the rows at another
//! sample rate; `--detect` prints on stderr the valid track's keys and
//! what cardveil's detector read from them; `--background` runs one background's rows only, `--quick`
//! without it speech's and babble's; `--echoes` measures, instead of the backgrounds, the track's
//! line echo — 20, 35 and 50 dB down, 30…500 ms later — on a silent line).
//! A measurement, not a test.

use cardveil_core::mask::{MaskMode, MaskerConfig};
use cardveil_tests::overlap::{EchoRow, Keys, backgrounds, echo_rows, edits, input_reads, keyed, measure, names};

fn arg(name: &str) -> Option<u32> {
    std::env::args().skip_while(|a| a != name).nth(1).map(|v| v.parse().unwrap_or_else(|_| panic!("{name} N")))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let gaps = std::env::args().any(|a| a == "--gaps");
    let detect = std::env::args().any(|a| a == "--detect");
    let lookahead_ms = arg("--lookahead-ms").unwrap_or(cardveil_core::mask::DEFAULT_LOOKAHEAD_MS);
    let per_key = arg("--per-key").unwrap_or(if quick { 2 } else { 4 }) as usize;
    let rate = arg("--rate").unwrap_or(8000);
    let dir = std::env::temp_dir().join(format!("cardveil-overlap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The masking track's seed (the valid track's is the next): the test's
    // rows are `--seed 1313 --per-key 4 --background-seed 1300` (its valid
    // track `--per-key 2`), its echoes `--seed 1315 --per-key 2`.
    let seed = arg("--seed").map_or(13, u64::from);
    let k = keyed(rate, Keys::masking(per_key), seed);
    if std::env::args().any(|a| a == "--echoes") {
        echoes(&k, lookahead_ms, &dir, gaps);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let valid = keyed(rate, Keys::valid(per_key), seed + 1);
    let bg_seed = arg("--background-seed").map_or(100, u64::from);
    let mut bgs = backgrounds(k.samples.len().max(valid.samples.len()), rate, bg_seed, &dir);
    if let Some(only) = std::env::args().skip_while(|a| a != "--background").nth(1) {
        bgs.retain(|(name, _)| *name == only);
        assert!(!bgs.is_empty(), "--background: one of speech, babble, music, agent leg, white noise, pink noise");
    } else if quick {
        bgs.truncate(2);
    }
    let snrs: &[f64] = if quick { &[15.0, 6.0, 0.0] } else { &[30.0, 15.0, 10.0, 6.0, 3.0, 0.0, -3.0, -6.0] };
    println!(
        "| background | SNR dB | masked output: keys read (background alone) | matched filter tone / 5 ms / 10 ms (constant guess) | tone time masked | input read exactly |"
    );
    println!("|---|---:|---|---:|---:|---|");
    let config = MaskerConfig { mode: MaskMode::Silence, lookahead_ms, sample_rate: rate, ..MaskerConfig::default() };
    for (name, bg) in &bgs {
        for &snr in snrs {
            let row = measure(&k, (name, bg), snr, config, &dir, gaps);
            let input = input_reads(&valid, (name, bg), snr, &dir);
            let detected = input.exact();
            if detect {
                let (read, expected) = (input.read_by("cardveil"), &input.expected);
                eprintln!(
                    "{name} {snr:+} dB: cardveil {} edits from {} keys\n  read     {read}\n  expected {expected}",
                    edits(read, expected),
                    expected.len()
                );
                if snr == snrs[0] && std::ptr::eq(bg, &bgs[0].1) {
                    let ms = |n: usize| n as f64 * 1000.0 / rate as f64;
                    let spans: Vec<String> =
                        valid.tones.iter().map(|t| format!("{}{:.0}", t.key.as_char(), ms(t.end - t.start))).collect();
                    eprintln!("  valid keys (ms): {}", spans.join(" "));
                }
            }
            println!(
                "| {name} | {snr:+} | {} | {} | {:.1} % | {} |",
                row.reads_summary(),
                row.matched_filter_summary(),
                100.0 * row.covered,
                names(&detected),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--echoes`: the keyed track with its line echo (one path: delay, loss)
/// on an otherwise silent line; the rows measure the echoes.
fn echoes(k: &cardveil_tests::overlap::Keyed, lookahead_ms: u32, dir: &std::path::Path, gaps: bool) {
    println!("{}", EchoRow::HEADER);
    let config = MaskerConfig { mode: MaskMode::Silence, lookahead_ms, sample_rate: k.rate, ..MaskerConfig::default() };
    for row in echo_rows(k, config, dir, gaps) {
        println!("{}", row.table_line());
    }
}
