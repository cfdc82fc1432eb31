//! `cardveil detect IN.wav`: one JSON object per line per key,
//! `{"digit":"5","start_ms":120.0,"end_ms":190.0}`, plus `"channel"` for
//! stereo files (each channel is its own stream). Keys are listed by start
//! time (then channel). The file streams through in one-second pieces
//! (`-`: standard input); memory does not grow with its length.

use std::io::{Read, Write};
use std::path::Path;

use cardveil_core::codec::wav::{self, WavFormat, WavReader};
use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, KeyPress, Profile};

use crate::CliError;
use crate::samples::{deinterleave, to_linear};

/// What detection over a stream found.
#[derive(Debug)]
pub struct Detected {
    /// The input's format.
    pub format: WavFormat,
    /// Sample frames (per channel) read.
    pub frames: u64,
    /// Each channel's key presses, in order.
    pub presses: Vec<Vec<KeyPress>>,
}

/// Detects every key in each channel of a WAV stream, one second at a
/// time. `on_piece` sees the format and each piece's linear samples per
/// channel (the first `n` of each; the scrub self-check runs a second
/// analysis over them).
///
/// # Errors
/// [`CliError::Input`] naming `name` if the input is not a WAV cardveil
/// reads, is cut short or cannot be read.
pub fn detect_stream(
    input: impl Read,
    name: &Path,
    profile: Profile,
    mut on_piece: impl FnMut(WavFormat, &[Vec<i16>], usize),
) -> Result<Detected, CliError> {
    let bad = |e: wav::WavReadError| CliError::input(name, e);
    let mut reader = WavReader::new(input).map_err(bad)?;
    let f = reader.format();
    let config = DetectorConfig { sample_rate: f.sample_rate, profile };
    let mut detectors: Vec<Detector> =
        (0..f.channels).map(|_| Detector::new(config).expect("rates were validated by the WAV parser")).collect();
    let mut presses = vec![Vec::new(); f.channels as usize];
    let piece = f.sample_rate as usize;
    let mut bytes = vec![0u8; piece * f.frame_bytes()];
    let mut pcm = vec![vec![0i16; piece]; f.channels as usize];
    let mut codes = vec![0u8; piece];
    let mut frames = 0u64;
    loop {
        let got = reader.read_frames(&mut bytes).map_err(bad)?;
        if got == 0 {
            break;
        }
        let n = deinterleave(f, &bytes[..got], &mut pcm);
        frames += n as u64;
        for ch in pcm.iter_mut() {
            to_linear(f.encoding, &mut ch[..n], &mut codes);
        }
        for ((det, out), p) in detectors.iter_mut().zip(&pcm).zip(presses.iter_mut()) {
            det.process(&out[..n], &mut |e| {
                if let DetectorEvent::Up(k) = e {
                    p.push(k);
                }
            });
        }
        on_piece(f, &pcm, n);
    }
    for (det, p) in detectors.iter_mut().zip(presses.iter_mut()) {
        det.finish(&mut |e| {
            if let DetectorEvent::Up(k) = e {
                p.push(k);
            }
        });
    }
    Ok(Detected { format: f, frames, presses })
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
    let reader = crate::output::open_input(input)?;
    let found = detect_stream(reader, input, profile, |_, _, _| {})?;
    let rate = found.format.sample_rate;
    let stereo = found.presses.len() > 1;
    let mut all: Vec<(usize, KeyPress)> =
        found.presses.into_iter().enumerate().flat_map(|(c, ps)| ps.into_iter().map(move |p| (c, p))).collect();
    all.sort_by_key(|(c, p)| (p.start, *c));
    for (c, p) in all {
        writeln!(out, "{}", json_line(&p, rate, stereo.then_some(c)))
            .map_err(|e| CliError::input(Path::new("<stdout>"), e))?;
    }
    Ok(())
}
