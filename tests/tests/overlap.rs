//! Keys under other audio (issue 13; SPEC "The masker": masking must hold
//! whatever else is on the line). Generated in the run, nothing checked in:
//! every key, 20–200 ms, twist −8…+4 dB, both tones 0…3.5 % off, under
//! espeak-ng speech, three-voice babble, synthetic hold music, a second
//! voice mixed in as the agent's leg, white and pink noise, at per-tone SNR
//! +30 … −6 dB (a tone's level minus the background's RMS), PCM16, the
//! speech rows in μ-law and A-law too, and every row again at 16 kHz.
//!
//! SPEC's bar — no decoder reads a key from the masked output beyond what
//! it reads in the background alone, and a matched filter that knows where
//! the tones were does no better than the best constant guess + 2 points,
//! at every SNR down to −6 dB; keys at ≥ +6 dB detected exactly — is not
//! met yet (see the README's table, which this test writes to
//! `target/overlap-table.md`). What holds today is asserted, so that it
//! keeps holding:
//! * cardveil and spandsp (default and most sensitive) read nothing from
//!   the masked output beyond the background at every SNR, multimon-ng at
//!   ≥ +3 dB, dtmf2num at ≥ +15 dB (it reads keys from +10 dB down); at
//!   16 kHz cardveil at every SNR, multimon-ng and spandsp (the output
//!   resampled to 8 kHz) at ≥ +6 dB;
//! * from +6 dB up at least 85 % of the tones' time is masked (90 % with
//!   the files' 200 ms look-ahead);
//! * at ≥ +15 dB, the matched filter over each 5 and 10 ms piece of the
//!   tones does no better than the best constant guess + 2 points; with
//!   the files' look-ahead at ≥ +10 dB, and over whole tones at ≥ +15 dB;
//! * cardveil reads no key from any background alone (talk-off), and reads
//!   a track of valid keys under each background exactly at ≥ +10 dB, with
//!   at most 2 of its 32 keys wrong at +6 dB (talk-down).

use cardveil_core::codec::Encoding;
use cardveil_core::mask::{DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS, MaskMode, MaskerConfig};
use cardveil_tests::overlap::{
    EchoRow, Keyed, Keys, RowResult, backgrounds, echo_rows, edits, input_reads, keyed, measure, names,
};
use cardveil_tests::tools;

const SNRS: [f64; 8] = [30.0, 15.0, 10.0, 6.0, 3.0, 0.0, -3.0, -6.0];

/// A row of the table; `detected`: the decoders that read the valid keys
/// exactly, and cardveil's misreadings of them (keys missed, added or read
/// wrong).
fn table_line(row: &RowResult, detected: Option<(&[&str], usize)>) -> String {
    format!(
        "| {} | {} | {:+} | {} | {} | {:.1} % | {} |",
        row.background,
        row.format(),
        row.snr_db,
        row.reads_summary(),
        row.matched_filter_summary(),
        100.0 * row.covered,
        detected.map_or("—".to_owned(), |(d, wrong)| match wrong {
            0 => names(d),
            _ => format!("{} (cardveil: {wrong} wrong)", names(d)),
        }),
    )
}

/// The 5 and 10 ms pieces on which the known-span matched filter beats the
/// best constant guess by more than 2 points, as failures.
fn pieces_named(row: &RowResult, what: &str) -> Vec<String> {
    [("5 ms", row.piece5), ("10 ms", row.piece10)]
        .into_iter()
        .filter(|(_, g)| g.excess_pct() > 2.0)
        .map(|(name, g)| {
            format!(
                "{what}: the matched filter names the key of {:.1} % of the {name} pieces (best constant guess {:.1} %)",
                g.rate_pct(),
                g.constant_pct()
            )
        })
        .collect()
}

/// What holds today (see the module's list); the failures, if any.
fn check(row: &RowResult, detected: Option<(&[&str], usize)>) -> Vec<String> {
    let mut failures = Vec::new();
    let what = format!("{} {:+} dB {}", row.background, row.snr_db, row.format());
    let files = row.lookahead_ms == MAX_LOOKAHEAD_MS;
    for r in &row.reads {
        let bar = match (r.decoder, row.rate) {
            // dtmf2num reads nothing beyond the background from +15 dB up
            // (before tier L: with the files' look-ahead but under hold
            // music, with the default from +30 dB).
            ("dtmf2num", _) => 15.0,
            ("multimon-ng", 8000) => 3.0,
            // At 16 kHz multimon-ng and spandsp (on the output resampled to
            // 8 kHz) read a key from +3 dB down (music +3, white noise 0 dB).
            ("multimon-ng" | "spandsp" | "spandsp-sens", 16000) => 6.0,
            _ => f64::NEG_INFINITY,
        };
        if row.snr_db >= bar && r.masked.len() > r.alone.len() {
            failures.push(format!(
                "{what}: {} read {} keys from the masked output ({} from the background alone)",
                r.decoder,
                r.masked.len(),
                r.alone.len()
            ));
        }
        if r.decoder == "cardveil" && !r.alone.is_empty() {
            failures.push(format!("{what}: cardveil read {} keys from the background alone", r.alone.len()));
        }
    }
    if row.snr_db >= 15.0 || files && row.snr_db >= 10.0 {
        failures.extend(pieces_named(row, &what));
    }
    // The share of the tones' time masked from +6 dB up (tier L: before it,
    // 78 % under hold music at +6 dB with the default look-ahead, 80 % with
    // the files').
    let floor = if files { 0.90 } else { 0.85 };
    if row.snr_db >= 6.0 && row.covered < floor {
        failures.push(format!("{what}: {:.1} % of the tones' time masked", 100.0 * row.covered));
    }
    if files && row.snr_db >= 15.0 && row.tone.excess_pct() > 2.0 {
        failures.push(format!(
            "{what}: the matched filter names the key of {:.1} % of the tones (best constant guess {:.1} %)",
            row.tone.rate_pct(),
            row.tone.constant_pct()
        ));
    }
    // Talk-down: exact from +10 dB up (before the detector's lines, +15 dB;
    // at +10 dB music, the agent's leg and babble cost 1–3 keys), and at
    // most 2 of the 32 keys wrong at +6 dB (the shortest keys, 41–52 ms;
    // before, 2–6).
    if let Some((d, wrong)) = detected {
        if row.snr_db >= 10.0 && !d.contains(&"cardveil") {
            failures.push(format!("{what}: cardveil did not read the valid keys exactly ({wrong} wrong)"));
        }
        if row.snr_db >= 6.0 && wrong > 2 {
            failures.push(format!("{what}: cardveil read {wrong} of the valid keys wrong"));
        }
    }
    failures
}

/// The masking and the valid-key tracks at `rate` under every background,
/// PCM16, at every SNR, masked with each look-ahead in turn (the tracks and
/// the backgrounds made once): their table lines and failures. Returns the
/// masking track and the backgrounds.
fn pcm16_rows(
    rate: u32,
    lookaheads_ms: &[u32],
    dir: &std::path::Path,
    lines: &mut Vec<String>,
    failures: &mut Vec<String>,
) -> (Keyed, Vec<(&'static str, Vec<f64>)>) {
    let masking = keyed(rate, Keys::masking(4), 1313);
    let valid = keyed(rate, Keys::valid(2), 1314);
    let bgs = backgrounds(masking.samples.len().max(valid.samples.len()), rate, 1300, dir);
    for &lookahead_ms in lookaheads_ms {
        let config =
            MaskerConfig { sample_rate: rate, mode: MaskMode::Silence, lookahead_ms, ..MaskerConfig::default() };
        for (name, bg) in &bgs {
            for snr in SNRS {
                let row = measure(&masking, (name, bg), snr, config, dir, false);
                // Detection does not depend on the look-ahead: measured once.
                let input = (lookahead_ms == DEFAULT_LOOKAHEAD_MS).then(|| input_reads(&valid, (name, bg), snr, dir));
                let exact = input.as_ref().map(|r| r.exact());
                let wrong = input.as_ref().map(|r| edits(r.read_by("cardveil"), &r.expected));
                let detected = exact.as_deref().zip(wrong);
                failures.extend(check(&row, detected));
                lines.push(table_line(&row, detected));
            }
        }
    }
    (masking, bgs)
}

#[test]
fn keys_under_speech_babble_music_another_leg_and_noise() {
    for tool in ["espeak-ng", "sox", "multimon-ng", "dtmf2num"] {
        if !tools::require(tool, "keys under other audio") {
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("cardveil-overlap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = vec![
        "| background | encoding | SNR dB | masked output: keys read (background alone) | matched filter tone / 5 ms / 10 ms (best constant guess) | tone time masked | valid keys read exactly from the input |".to_owned(),
        "|---|---|---:|---|---:|---:|---|".to_owned(),
    ];
    let mut failures = Vec::new();
    let config = |encoding| MaskerConfig { encoding, mode: MaskMode::Silence, ..MaskerConfig::default() };
    // Again with the files' look-ahead (`cardveil mask`, `pcap`, `scrub`):
    // a sure chain reaches back to the onset its tests found late.
    let (masking, bgs) = pcm16_rows(8000, &[DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS], &dir, &mut lines, &mut failures);
    // G.711: the speech rows again, both laws.
    let speech = bgs.iter().find(|(n, _)| *n == "speech").expect("speech background");
    for encoding in [Encoding::Ulaw, Encoding::Alaw] {
        for snr in SNRS {
            let row = measure(&masking, (speech.0, &speech.1), snr, config(encoding), &dir, false);
            failures.extend(check(&row, None));
            lines.push(table_line(&row, None));
        }
    }
    // 16 kHz (wideband softphones): every background again, PCM16.
    pcm16_rows(16000, &[DEFAULT_LOOKAHEAD_MS], &dir, &mut lines, &mut failures);
    let _ = std::fs::remove_dir_all(&dir);
    let table = lines.join("\n") + "\n";
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/overlap-table.md");
    let _ = std::fs::write(&out, &table);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Line echoes (issue 13): a hybrid returns every key 20–50 dB down,
/// 30–500 ms later — alone, or under and past the next key. They carry the
/// key: multimon-ng and dtmf2num read echoes 45 dB down (−70 dBm0) from the
/// masked output while the masker ignored tones below −45 dBm0. On an
/// otherwise silent line, PCM16 and μ-law: no decoder reads any key from
/// the masked output, at least 98.5 % of the echoes' time is masked, and
/// the matched filter over each 5 and 10 ms piece of the echoes does no
/// better than the best constant guess + 2 points — with the default
/// look-ahead and with the files' 200 ms. (Over a whole echo it
/// still does — 9–16 % against 6 % where the echoes fall next to keys: an
/// echo that starts a few milliseconds before a louder key has no window
/// of its own, and an off-nominal key under its own row's echo is found
/// late; see the README.)
#[test]
fn line_echoes_of_every_key_are_masked() {
    for tool in ["sox", "multimon-ng", "dtmf2num"] {
        if !tools::require(tool, "line echoes") {
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("cardveil-echo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = keyed(8000, Keys::masking(2), 1315);
    let config = MaskerConfig { mode: MaskMode::Silence, ..MaskerConfig::default() };
    let mut failures = Vec::new();
    let mut lines = vec![EchoRow::HEADER.to_owned()];
    // Also with the files' look-ahead, where an echo found late is masked from its onset.
    let long = MaskerConfig { lookahead_ms: MAX_LOOKAHEAD_MS, ..config };
    for echo in echo_rows(&keys, config, &dir, false).into_iter().chain(echo_rows(&keys, long, &dir, false)) {
        let row = &echo.row;
        let what = format!("echo {} ms later, {} dB down, {}", echo.delay_ms, echo.loss_db, row.format());
        lines.push(echo.table_line());
        for r in row.reads.iter().filter(|r| !r.masked.is_empty()) {
            failures.push(format!("{what}: {} read {} keys from the masked output", r.decoder, r.masked.len()));
        }
        if row.covered < 0.985 {
            failures.push(format!("{what}: {:.1} % of the echoes' time masked", 100.0 * row.covered));
        }
        failures.extend(pieces_named(row, &what));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", lines.join("\n"));
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
