//! `cardveil mask IN.wav -o OUT.wav [--mode silence|noise|tone]
//! [--lookahead-ms N] [--profile P]`: every key press masked, output in the
//! input's format and length and sample-aligned with it (the look-ahead is
//! compensated), one `{"event":"masked","start_ms":..,"end_ms":..}` line per
//! masked span on stdout (plus `"channel"` for stereo), never the key.
//!
//! The file streams through in one-second pieces: memory does not grow
//! with its length (only the list of spans does, a few bytes a key). `-`
//! as input or output is standard input or output; with `-o -` the JSON
//! lines go to standard error, since the audio takes standard output.

use std::io::{Read, Write};
use std::path::Path;

use cardveil_core::capture::{CaptureEvent, Field};
use cardveil_core::codec::Encoding;
use cardveil_core::codec::wav::{self, WavFormat, WavReader};
use cardveil_core::dtmf::{DetectorEvent, Profile};
use cardveil_core::mask::{MAX_LOOKAHEAD_MS, MaskMode, MaskedSpan, Masker, MaskerConfig, MaskerEvent};

use cardveil_core::vault::{VaultConfig, Worker};

use crate::CliError;
use crate::capture::{ChannelCapture, done_line, event_line, parse_fields};
use crate::output::{Output, open_input};
use crate::samples::{deinterleave, interleave, silence};
use crate::vault::{VaultLocation, actor};

/// How long to wait for each token.
const TOKEN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Options of the subcommand, as given on the command line.
#[derive(Debug, Clone)]
pub struct MaskArgs<'a> {
    /// Input WAV (`-`: standard input).
    pub input: &'a Path,
    /// Output WAV (`-`: standard output).
    pub output: &'a Path,
    /// Masker settings (rate and encoding come from the file).
    pub masker: MaskerConfig,
    /// `--capture` fields (`pan,expiry,cvv`), if capturing.
    pub capture: Option<&'a str>,
    /// Where the vault is, when capturing.
    pub vault: VaultLocation,
}

/// One channel's masker (and capture), fed the file piece by piece.
#[derive(Debug)]
pub struct ChannelMasker {
    masker: Masker,
    encoding: Encoding,
    /// 20 ms: the capture advances frame by frame, as a call's would.
    frame: usize,
    codes: Vec<u8>,
    /// The spans masked so far.
    pub spans: Vec<MaskedSpan>,
    /// Key presses the strict detector reported (a count, never a key).
    pub keys: usize,
    /// The capture, with `--capture`.
    pub capture: Option<ChannelCapture>,
}

impl ChannelMasker {
    /// A masker for `config` (the file's rate and encoding set).
    pub fn new(config: MaskerConfig, capture: Option<ChannelCapture>) -> ChannelMasker {
        let frame = config.sample_rate as usize / 50;
        ChannelMasker {
            masker: Masker::new(config).expect("configuration was validated"),
            encoding: config.encoding,
            frame,
            codes: vec![0; frame],
            spans: Vec::new(),
            keys: 0,
            capture,
        }
    }

    /// Samples of output lag behind the input.
    pub fn lookahead(&self) -> usize {
        self.masker.lookahead()
    }

    /// Masks the next samples (in the file's encoding, G.711 codes widened
    /// to i16) in place: the output is the input [`Self::lookahead`]
    /// samples earlier, masked.
    pub fn process(&mut self, samples: &mut [i16]) {
        let ChannelMasker { masker, encoding, frame, codes, spans, keys, capture } = self;
        for chunk in samples.chunks_mut(*frame) {
            let mut on = |e: MaskerEvent| on_event(e, spans, keys, capture);
            match encoding {
                Encoding::Pcm16 => masker.process_pcm16(chunk, &mut on),
                Encoding::Ulaw | Encoding::Alaw => {
                    let b = &mut codes[..chunk.len()];
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
            if let Some(c) = capture.as_mut() {
                c.advance(masker.position());
            }
        }
    }

    /// Ends the channel: the key still sounding and the pending spans.
    pub fn finish(&mut self) {
        let ChannelMasker { masker, spans, keys, capture, .. } = self;
        masker.finish(|e: MaskerEvent| on_event(e, spans, keys, capture));
        if let Some(c) = capture.as_mut() {
            c.advance(masker.position());
        }
    }
}

/// A masker event: spans kept, keys counted, both fed to the capture.
fn on_event(e: MaskerEvent, spans: &mut Vec<MaskedSpan>, keys: &mut usize, capture: &mut Option<ChannelCapture>) {
    if let Some(c) = capture.as_mut() {
        c.on_event(&e);
    }
    match e {
        MaskerEvent::Masked(s) => spans.push(s),
        MaskerEvent::Key(DetectorEvent::Up(_)) => *keys += 1,
        MaskerEvent::Key(_) => {}
    }
}

/// What masking a stream produced.
#[derive(Debug)]
pub struct Masked {
    /// The input's format.
    pub format: WavFormat,
    /// Sample frames (per channel) read and written.
    pub frames: u64,
    /// Each channel's masker, finished (spans, capture).
    pub channels: Vec<ChannelMasker>,
}

/// Masks a WAV stream into `out` in one-second pieces: a header, then the
/// data, sample-aligned with the input. A header of unknown length (the
/// input's was unknown) is rewritten with the real sizes when `out` can
/// seek. `captures` makes each channel's capture (with its rate).
///
/// # Errors
/// [`CliError::Input`] naming `name` if the input is not a WAV cardveil
/// reads or is cut short, or naming the output if writing fails. The
/// output is not committed: the caller does that.
pub fn mask_stream(
    input: impl Read,
    name: &Path,
    base: MaskerConfig,
    mut captures: impl FnMut(u32) -> Option<ChannelCapture>,
    out: &mut Output,
) -> Result<Masked, CliError> {
    let bad = |e: wav::WavReadError| CliError::input(name, e);
    let mut reader = WavReader::new(input).map_err(bad)?;
    let f = reader.format();
    let config = MaskerConfig { sample_rate: f.sample_rate, encoding: f.encoding, ..base };
    let mut maskers: Vec<ChannelMasker> =
        (0..f.channels).map(|_| ChannelMasker::new(config, captures(f.sample_rate))).collect();
    let header = match reader.data_len() {
        Some(n) => wav::header(f, n as u32),
        None => wav::header_of_unknown_length(f),
    };
    out.write_all(&header).map_err(|e| out.error(e))?;
    let piece = f.sample_rate as usize; // one second of frames
    let mut bytes = vec![0u8; piece * f.frame_bytes()];
    let mut channels = vec![vec![0i16; piece]; f.channels as usize];
    let mut encoded = Vec::with_capacity(bytes.len());
    let delay = maskers[0].lookahead();
    let mut to_drop = delay;
    let mut frames = 0u64;
    let mut write = |channels: &mut [Vec<i16>], n: usize, to_drop: &mut usize, out: &mut Output| {
        let skip = (*to_drop).min(n);
        *to_drop -= skip;
        encoded.clear();
        interleave(f, channels, skip..n, &mut encoded);
        out.write_all(&encoded).map_err(|e| out.error(e))
    };
    loop {
        let got = reader.read_frames(&mut bytes).map_err(bad)?;
        if got == 0 {
            break;
        }
        let n = deinterleave(f, &bytes[..got], &mut channels);
        frames += n as u64;
        for (m, ch) in maskers.iter_mut().zip(channels.iter_mut()) {
            m.process(&mut ch[..n]);
        }
        write(&mut channels, n, &mut to_drop, out)?;
    }
    // The delay line still holds the last `delay` samples: push them out
    // with silence, and drop what is left of the first `delay` outputs.
    let mut left = delay;
    while left > 0 {
        let n = left.min(piece);
        left -= n;
        for (m, ch) in maskers.iter_mut().zip(channels.iter_mut()) {
            ch[..n].fill(silence(f.encoding));
            m.process(&mut ch[..n]);
        }
        write(&mut channels, n, &mut to_drop, out)?;
    }
    for m in &mut maskers {
        m.finish();
    }
    let data_len = frames * f.frame_bytes() as u64;
    // A header of unknown length is put right where the output can seek;
    // a data chunk of known length is padded to an even size.
    let known = reader.data_len().is_some()
        || (data_len <= wav::MAX_DATA_LEN as u64 && out.rewrite_at(0, &wav::header(f, data_len as u32))?);
    if known && data_len % 2 == 1 {
        out.write_all(&[0]).map_err(|e| out.error(e))?;
    }
    Ok(Masked { format: f, frames, channels: maskers })
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
    let fields: Option<[Option<Field>; 3]> = args.capture.map(parse_fields).transpose()?;
    let input = open_input(args.input)?;
    // The vault opens before any work, so a vault problem costs nothing.
    let worker = match fields {
        None => None,
        Some(_) => {
            let vault = args.vault.open(VaultConfig::default(), true, &mut std::io::stderr())?.into_boxed();
            let w = Worker::spawn(vault, &actor(), cardveil_core::vault::CVV_HOLD)
                .map_err(|e| CliError::input(Path::new("tokenization worker"), e))?;
            Some(w)
        }
    };
    let today = cardveil_core::call::today();
    let mut output = Output::create(args.output)?;
    let masked = mask_stream(
        input,
        args.input,
        args.masker,
        |rate| fields.map(|fields| ChannelCapture::new(fields, rate, today)),
        &mut output,
    )?;
    let f = masked.format;
    let stereo = f.channels > 1;
    // Lines: (input position, channel, order, line); spans are formatted
    // as they are written, so an archive's many keys cost 24 bytes each.
    let mut lines: Vec<(u64, usize, usize, Line)> = Vec::new();
    let mut completed_at = vec![None; f.channels as usize];
    for (ch, m) in masked.channels.into_iter().enumerate() {
        for s in m.spans {
            lines.push((s.start, ch, lines.len(), Line::Span(s)));
        }
        if let (Some(c), Some(w)) = (m.capture, &worker) {
            for (at, e) in &c.events {
                if *e == CaptureEvent::Complete {
                    completed_at[ch] = Some(*at);
                }
                lines.push((*at, ch, lines.len(), Line::Text(event_line(e, stereo.then_some(ch)))));
            }
            if let Some(card) = c.card {
                w.submit(ch as u64, card).map_err(|e| CliError::input(Path::new("tokenization worker"), e))?;
            }
        }
    }
    // Tokens follow their capture's `complete` line.
    let mut failure = None;
    if let Some(w) = worker {
        for _ in completed_at.iter().flatten() {
            let done = w.wait(TOKEN_WAIT).ok_or_else(|| CliError::input(Path::new("vault"), "no token within 60 s"))?;
            let (ch, line, error) = done_line(&done, stereo);
            let at = completed_at.get(ch).copied().flatten().unwrap_or(u64::MAX);
            lines.push((at, ch, usize::MAX, Line::Text(line)));
            failure = failure.or(error);
        }
    }
    // A command that fails writes no output: the file only once every token is in.
    if let Some(e) = failure {
        return Err(CliError::input(Path::new("vault"), format!("tokenization failed: {e}")));
    }
    let to_stdout = output.is_stdout();
    output.commit()?;
    lines.sort_by_key(|(at, ch, order, _)| (*at, *ch, *order));
    let mut stderr = std::io::stderr();
    let out: &mut dyn Write = if to_stdout { &mut stderr } else { out };
    for (_, ch, _, line) in lines {
        let text = match line {
            Line::Span(s) => json_line(&s, f.sample_rate, stereo.then_some(ch)),
            Line::Text(t) => t,
        };
        writeln!(out, "{text}").map_err(|e| CliError::input(Path::new("<stdout>"), e))?;
    }
    Ok(())
}

/// A line of the command's output, before it is written.
enum Line {
    Span(MaskedSpan),
    Text(String),
}
