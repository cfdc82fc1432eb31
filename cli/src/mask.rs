//! `cardveil mask IN.wav -o OUT.wav [--mode silence|noise|tone]
//! [--lookahead-ms N] [--profile P]`: every key press masked, output in the
//! input's format and length and sample-aligned with it (the look-ahead is
//! compensated), one `{"event":"masked","start_ms":..,"end_ms":..}` line per
//! masked span on stdout (plus `"channel"` for stereo), never the key.

use std::io::Write;
use std::path::Path;

use cardveil_core::capture::CaptureEvent;
use cardveil_core::codec::{Encoding, wav};
use cardveil_core::dtmf::Profile;
use cardveil_core::mask::{MAX_LOOKAHEAD_MS, MaskMode, MaskedSpan, Masker, MaskerConfig, MaskerEvent};

use cardveil_core::vault::{VaultConfig, Worker};

use crate::CliError;
use crate::capture::{ChannelCapture, done_line, event_line, parse_fields};
use crate::detect::read_wav;
use crate::output::write_atomically;
use crate::vault::{VaultLocation, actor};

/// How long a CVV is held for the payment step (the command exits sooner).
pub(crate) const CVV_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long to wait for each token.
const TOKEN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Options of the subcommand, as given on the command line.
#[derive(Debug, Clone)]
pub struct MaskArgs<'a> {
    /// Input WAV.
    pub input: &'a Path,
    /// Output WAV.
    pub output: &'a Path,
    /// Masker settings (rate and encoding come from the file).
    pub masker: MaskerConfig,
    /// `--capture` fields (`pan,expiry,cvv`), if capturing.
    pub capture: Option<&'a str>,
    /// Where the vault is, when capturing.
    pub vault: VaultLocation,
}

/// Masks one channel's samples (in the file's encoding, widened to i16) in
/// place; returns the spans masked. With `capture`, its keys feed it and
/// it advances frame by frame.
pub fn mask_channel(
    config: MaskerConfig,
    samples: &mut [i16],
    mut capture: Option<&mut ChannelCapture>,
) -> Vec<MaskedSpan> {
    let mut masker = Masker::new(config).expect("configuration was validated");
    let delay = masker.lookahead();
    let frame = config.sample_rate as usize / 50; // 20 ms
    let mut spans = Vec::new();
    let mut on_event = |e: MaskerEvent, capture: &mut Option<&mut ChannelCapture>| {
        if let Some(c) = capture.as_deref_mut() {
            c.on_event(&e);
        }
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
        let mut on = |e| on_event(e, &mut capture);
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
        if let Some(c) = capture.as_deref_mut() {
            c.advance(masker.position());
        }
    }
    masker.finish(&mut |e| on_event(e, &mut capture));
    if let Some(c) = capture {
        c.advance(masker.position());
    }
    samples.copy_from_slice(&buf[delay..]);
    spans
}

/// Formats one masked span as SPEC's JSON line.
pub fn json_line(s: &MaskedSpan, rate: u32, channel: Option<usize>) -> String {
    let ms = |x: u64| x as f64 * 1000.0 / rate as f64;
    let line = crate::json::Obj::event("masked").ms("start_ms", ms(s.start)).ms("end_ms", ms(s.end));
    match channel {
        Some(c) => line.count("channel", c).finish(),
        None => line.finish(),
    }
}

/// Masker settings from the command line's mode, look-ahead and profile
/// (8 kHz PCM16; the caller sets the input's rate and encoding).
pub fn masker_config(mode: &str, lookahead_ms: u32, profile: &str) -> Result<MaskerConfig, CliError> {
    let mode = MaskMode::from_name(mode)
        .ok_or_else(|| CliError::Usage(format!("unknown mode '{mode}' (expected silence, noise or tone)")))?;
    let profile = Profile::from_name(profile)
        .ok_or_else(|| CliError::Usage(format!("unknown profile '{profile}' (expected q24, etsi or ntt)")))?;
    if lookahead_ms > MAX_LOOKAHEAD_MS {
        return Err(CliError::Usage(format!("--lookahead-ms {lookahead_ms} is too long (0 to {MAX_LOOKAHEAD_MS})")));
    }
    Ok(MaskerConfig { lookahead_ms, mode, profile, ..MaskerConfig::default() })
}

/// Runs the subcommand.
pub fn run(args: &MaskArgs<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let base = args.masker;
    let fields = args.capture.map(parse_fields).transpose()?;
    let bytes = read_wav(args.input)?;
    let w = wav::parse(&bytes).map_err(|e| CliError::input(args.input, e))?;
    let f = w.format;
    let config = MaskerConfig { sample_rate: f.sample_rate, encoding: f.encoding, ..base };
    // The vault opens before any work, so a vault problem costs nothing.
    let worker = match fields {
        None => None,
        Some(_) => {
            let vault = args.vault.open(VaultConfig::default(), true, &mut std::io::stderr())?.into_boxed();
            let w = Worker::spawn(vault, &actor(), CVV_TTL)
                .map_err(|e| CliError::input(Path::new("tokenization worker"), e))?;
            Some(w)
        }
    };
    let today = cardveil_core::vault::time::year_month(cardveil_core::vault::time::now());
    let bps = f.encoding.bytes_per_sample();
    let channels = f.channels as usize;
    let mut data = w.data.to_vec();
    let mut events: Vec<(usize, MaskedSpan)> = Vec::new();
    // Capture lines: (input position, channel, order, line).
    let mut lines: Vec<(u64, usize, usize, String)> = Vec::new();
    let mut completed_at = vec![None; channels];
    let stereo = channels > 1;
    for ch in 0..channels {
        let at = |i: usize| i * f.frame_bytes() + ch * bps;
        let n = data.len() / f.frame_bytes();
        let mut samples: Vec<i16> = (0..n)
            .map(|i| match f.encoding {
                Encoding::Pcm16 => i16::from_le_bytes([data[at(i)], data[at(i) + 1]]),
                _ => data[at(i)] as i16,
            })
            .collect();
        let mut capture = fields.map(|fields| ChannelCapture::new(fields, f.sample_rate, today));
        events.extend(mask_channel(config, &mut samples, capture.as_mut()).into_iter().map(|s| (ch, s)));
        if let (Some(c), Some(w)) = (capture, &worker) {
            for (at, e) in &c.events {
                if *e == CaptureEvent::Complete {
                    completed_at[ch] = Some(*at);
                }
                lines.push((*at, ch, lines.len(), event_line(e, stereo.then_some(ch))));
            }
            if let Some(card) = c.card {
                w.submit(ch as u64, card).map_err(|e| CliError::input(Path::new("tokenization worker"), e))?;
            }
        }
        for (i, s) in samples.iter().enumerate() {
            match f.encoding {
                Encoding::Pcm16 => data[at(i)..at(i) + 2].copy_from_slice(&s.to_le_bytes()),
                _ => data[at(i)] = *s as u8,
            }
        }
    }
    for (c, s) in events {
        lines.push((s.start, c, lines.len(), json_line(&s, f.sample_rate, stereo.then_some(c))));
    }
    // Tokens follow their capture's `complete` line.
    let mut failure = None;
    if let Some(w) = worker {
        for _ in completed_at.iter().flatten() {
            let done = w.wait(TOKEN_WAIT).ok_or_else(|| CliError::input(Path::new("vault"), "no token within 60 s"))?;
            let (ch, line, error) = done_line(&done, stereo);
            let at = completed_at.get(ch).copied().flatten().unwrap_or(u64::MAX);
            lines.push((at, ch, usize::MAX, line));
            failure = failure.or(error);
        }
    }
    // A command that fails writes no output: the file only once every token is in.
    if let Some(e) = failure {
        return Err(CliError::input(Path::new("vault"), format!("tokenization failed: {e}")));
    }
    let header = wav::header(f, data.len() as u32);
    let pad: &[u8] = if data.len() % 2 == 1 { &[0] } else { &[] };
    write_atomically(args.output, &[&header, &data, pad])?;
    lines.sort_by_key(|(at, ch, order, _)| (*at, *ch, *order));
    for (.., line) in lines {
        writeln!(out, "{line}").map_err(|e| CliError::input(Path::new("<stdout>"), e))?;
    }
    Ok(())
}
