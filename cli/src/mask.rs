//! `cardveil mask IN.wav -o OUT.wav [--mode silence|noise|tone]
//! [--lookahead-ms N] [--profile P]`: every key press masked, output in the
//! input's format and length and sample-aligned with it (the look-ahead is
//! compensated), one `{"event":"masked","start_ms":..,"end_ms":..}` line per
//! masked span on stdout (plus `"channel"` for stereo), never the key.

use std::io::Write;
use std::path::Path;

use cardveil_core::codec::{Encoding, wav};
use cardveil_core::dtmf::Profile;
use cardveil_core::mask::{MAX_LOOKAHEAD_MS, MaskMode, MaskedSpan, Masker, MaskerConfig, MaskerEvent};

use crate::CliError;
use crate::detect::read_wav;
use crate::output::write_atomically;

/// Options of the subcommand, as given on the command line.
#[derive(Debug, Clone)]
pub struct MaskArgs<'a> {
    /// Input WAV.
    pub input: &'a Path,
    /// Output WAV.
    pub output: &'a Path,
    /// `silence`, `noise` or `tone`.
    pub mode: &'a str,
    /// Look-ahead, ms.
    pub lookahead_ms: u32,
    /// Detector profile name.
    pub profile: &'a str,
}

/// Masks one channel's samples (in the file's encoding, widened to i16) in
/// place; returns the spans masked.
pub fn mask_channel(config: MaskerConfig, samples: &mut [i16]) -> Vec<MaskedSpan> {
    let mut masker = Masker::new(config).expect("configuration was validated");
    let delay = masker.lookahead();
    let frame = config.sample_rate as usize / 50; // 20 ms
    let mut spans = Vec::new();
    let mut on = |e: MaskerEvent| {
        if let MaskerEvent::Masked(s) = e {
            spans.push(s);
        }
    };
    let silence: i16 = match config.encoding {
        Encoding::Pcm16 => 0,
        Encoding::Ulaw => cardveil_core::codec::ulaw::encode(0) as i16,
        Encoding::Alaw => cardveil_core::codec::alaw::encode(0) as i16,
    };
    // The output lags the input by `delay` samples: feed `delay` samples of
    // silence after the end and drop the first `delay` outputs.
    let mut buf: Vec<i16> = samples.iter().copied().chain(std::iter::repeat_n(silence, delay)).collect();
    let mut bytes = vec![0u8; frame];
    for chunk in buf.chunks_mut(frame) {
        match config.encoding {
            Encoding::Pcm16 => masker.process_pcm16(chunk, &mut on),
            Encoding::Ulaw | Encoding::Alaw => {
                let b = &mut bytes[..chunk.len()];
                for (b, &c) in b.iter_mut().zip(chunk.iter()) {
                    *b = c as u8;
                }
                let r = masker.process_g711(b, &mut on);
                for (c, &b) in chunk.iter_mut().zip(b.iter()) {
                    *c = b as i16;
                }
                r
            }
        }
        .expect("frame type matches the configured encoding");
    }
    masker.finish(&mut on);
    samples.copy_from_slice(&buf[delay..]);
    spans
}

/// Formats one masked span as SPEC's JSON line.
pub fn json_line(s: &MaskedSpan, rate: u32, channel: Option<usize>) -> String {
    let ms = |x: u64| x as f64 * 1000.0 / rate as f64;
    let mut line = format!(r#"{{"event":"masked","start_ms":{:.1},"end_ms":{:.1}"#, ms(s.start), ms(s.end));
    if let Some(c) = channel {
        line.push_str(&format!(r#","channel":{c}"#));
    }
    line.push('}');
    line
}

/// Runs the subcommand.
pub fn run(args: &MaskArgs<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let mode = MaskMode::from_name(args.mode)
        .ok_or_else(|| CliError::Usage(format!("unknown mode '{}' (expected silence, noise or tone)", args.mode)))?;
    let profile = Profile::from_name(args.profile)
        .ok_or_else(|| CliError::Usage(format!("unknown profile '{}' (expected q24, etsi or ntt)", args.profile)))?;
    if args.lookahead_ms > MAX_LOOKAHEAD_MS {
        return Err(CliError::Usage(format!(
            "--lookahead-ms {} is too long (0 to {MAX_LOOKAHEAD_MS})",
            args.lookahead_ms
        )));
    }
    let bytes = read_wav(args.input)?;
    let w = wav::parse(&bytes).map_err(|e| CliError::input(args.input, e))?;
    let f = w.format;
    let config = MaskerConfig {
        sample_rate: f.sample_rate,
        encoding: f.encoding,
        lookahead_ms: args.lookahead_ms,
        mode,
        profile,
    };
    let bps = f.encoding.bytes_per_sample();
    let channels = f.channels as usize;
    let mut data = w.data.to_vec();
    let mut events: Vec<(usize, MaskedSpan)> = Vec::new();
    for ch in 0..channels {
        let at = |i: usize| i * f.frame_bytes() + ch * bps;
        let n = data.len() / f.frame_bytes();
        let mut samples: Vec<i16> = (0..n)
            .map(|i| match f.encoding {
                Encoding::Pcm16 => i16::from_le_bytes([data[at(i)], data[at(i) + 1]]),
                _ => data[at(i)] as i16,
            })
            .collect();
        events.extend(mask_channel(config, &mut samples).into_iter().map(|s| (ch, s)));
        for (i, s) in samples.iter().enumerate() {
            match f.encoding {
                Encoding::Pcm16 => data[at(i)..at(i) + 2].copy_from_slice(&s.to_le_bytes()),
                _ => data[at(i)] = *s as u8,
            }
        }
    }
    let header = wav::header(f, data.len() as u32);
    let pad: &[u8] = if data.len() % 2 == 1 { &[0] } else { &[] };
    write_atomically(args.output, &[&header, &data, pad])?;
    events.sort_by_key(|(c, s)| (s.start, *c));
    let stereo = channels > 1;
    for (c, s) in events {
        writeln!(out, "{}", json_line(&s, f.sample_rate, stereo.then_some(c)))
            .map_err(|e| CliError::input(Path::new("<stdout>"), e))?;
    }
    Ok(())
}
