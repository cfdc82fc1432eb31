//! `cardveil detect IN.wav`: one JSON object per line per key,
//! `{"digit":"5","start_ms":120.0,"end_ms":190.0}`, plus `"channel"` for
//! stereo files (each channel is its own stream). Keys are listed by start
//! time (then channel).

use std::io::Write;
use std::path::Path;

use cardveil_core::codec::wav;
use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, KeyPress, Profile};

use crate::CliError;

/// Reads and validates a WAV file.
pub fn read_wav(path: &Path) -> Result<Vec<u8>, CliError> {
    crate::output::read_input(path)
}

/// Detects every key in each channel of a parsed WAV file.
pub fn detect_channels(w: &wav::Wav<'_>, profile: Profile) -> Vec<Vec<KeyPress>> {
    (0..w.format.channels as usize)
        .map(|ch| {
            let pcm = wav::channel_pcm16(w, ch);
            let config = DetectorConfig { sample_rate: w.format.sample_rate, profile };
            let mut det = Detector::new(config).expect("rates were validated by the WAV parser");
            let mut presses = Vec::new();
            let mut on = |e| {
                if let DetectorEvent::Up(p) = e {
                    presses.push(p);
                }
            };
            det.process(&pcm, &mut on);
            det.finish(&mut on);
            presses
        })
        .collect()
}

/// Formats one key press as SPEC's JSON line.
pub fn json_line(p: &KeyPress, rate: u32, channel: Option<usize>) -> String {
    let ms = |s: u64| s as f64 * 1000.0 / rate as f64;
    let line = crate::json::Obj::new().str("digit", p.key.as_char().encode_utf8(&mut [0; 4]));
    let line = line.ms("start_ms", ms(p.start)).ms("end_ms", ms(p.end));
    match channel {
        Some(c) => line.count("channel", c).finish(),
        None => line.finish(),
    }
}

/// Runs the subcommand.
pub fn run(input: &Path, profile: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let profile = Profile::from_name(profile)
        .ok_or_else(|| CliError::Usage(format!("unknown profile '{profile}' (expected q24, etsi or ntt)")))?;
    let bytes = read_wav(input)?;
    let w = wav::parse(&bytes).map_err(|e| CliError::input(input, e))?;
    let rate = w.format.sample_rate;
    let per_channel = detect_channels(&w, profile);
    let stereo = per_channel.len() > 1;
    let mut all: Vec<(usize, KeyPress)> =
        per_channel.into_iter().enumerate().flat_map(|(c, ps)| ps.into_iter().map(move |p| (c, p))).collect();
    all.sort_by_key(|(c, p)| (p.start, *c));
    for (c, p) in all {
        writeln!(out, "{}", json_line(&p, rate, stereo.then_some(c)))
            .map_err(|e| CliError::input(Path::new("<stdout>"), e))?;
    }
    Ok(())
}
