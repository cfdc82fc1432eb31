//! Helpers for the masking tests: run a masker over a whole signal with the
//! look-ahead compensated, the four decoders the masked output must defeat,
//! and the measurements of what is left of a tone.

use std::path::Path;
use std::process::Command;

use cardveil_core::codec::{Encoding, alaw, ulaw};
use cardveil_core::dtmf::{DetectorEvent, Key, KeyPress, Profile};
use cardveil_core::mask::{MaskedSpan, Masker, MaskerConfig, MaskerEvent};

use crate::tools::run;

/// A masker's output over a whole signal, aligned sample for sample with its input.
#[derive(Debug, Clone)]
pub struct Masked {
    /// The output in the input's encoding (PCM16 samples, or G.711 codes widened).
    pub codes: Vec<i16>,
    /// The output decoded to linear PCM.
    pub linear: Vec<i16>,
    /// Masked spans reported.
    pub spans: Vec<MaskedSpan>,
    /// Key presses the strict detector reported.
    pub presses: Vec<KeyPress>,
}

impl Masked {
    /// Whether output sample `n` lies in a reported masked span.
    pub fn is_masked(&self, n: u64) -> bool {
        self.spans.iter().any(|s| s.start <= n && n < s.end)
    }

    /// For each of the first `len` output samples, whether it is masked
    /// (`is_masked` for all of them at once).
    pub fn flags(&self, len: usize) -> Vec<bool> {
        let mut v = vec![false; len];
        for s in &self.spans {
            let (a, b) = ((s.start as usize).min(len), (s.end as usize).min(len));
            v[a..b].fill(true);
        }
        v
    }

    /// Total masked samples.
    pub fn masked_samples(&self) -> u64 {
        self.spans.iter().map(|s| s.end - s.start).sum()
    }
}

/// Encodes linear samples as the encoding's codes (widened to i16).
pub fn encode(encoding: Encoding, x: &[i16]) -> Vec<i16> {
    match encoding {
        Encoding::Pcm16 => x.to_vec(),
        Encoding::Ulaw => x.iter().map(|&s| ulaw::encode(s) as i16).collect(),
        Encoding::Alaw => x.iter().map(|&s| alaw::encode(s) as i16).collect(),
    }
}

/// Decodes codes (widened to i16) to linear samples.
pub fn decode(encoding: Encoding, codes: &[i16]) -> Vec<i16> {
    match encoding {
        Encoding::Pcm16 => codes.to_vec(),
        Encoding::Ulaw => codes.iter().map(|&c| ulaw::decode(c as u8)).collect(),
        Encoding::Alaw => codes.iter().map(|&c| alaw::decode(c as u8)).collect(),
    }
}

/// Runs a [`Masker`] over `codes` in frames whose sizes `frame` chooses,
/// then flushes the look-ahead: the output is aligned with the input.
pub fn mask_codes(config: MaskerConfig, codes: &[i16], mut frame: impl FnMut() -> usize) -> Masked {
    let mut m = Masker::new(config).expect("masker config");
    let delay = m.lookahead();
    let silence = encode(config.encoding, &[0])[0];
    let mut input = codes.to_vec();
    input.extend(std::iter::repeat_n(silence, delay));
    let mut spans = Vec::new();
    let mut presses = Vec::new();
    let mut on = |e: MaskerEvent| match e {
        MaskerEvent::Masked(s) => spans.push(s),
        MaskerEvent::Key(DetectorEvent::Up(p)) => presses.push(p),
        MaskerEvent::Key(DetectorEvent::Down(_)) => {}
    };
    let mut pos = 0;
    while pos < input.len() {
        let n = frame().clamp(1, input.len() - pos);
        let piece = &mut input[pos..pos + n];
        if config.encoding == Encoding::Pcm16 {
            m.process_pcm16(piece, &mut on).expect("pcm16 frame");
        } else {
            let mut bytes: Vec<u8> = piece.iter().map(|&c| c as u8).collect();
            m.process_g711(&mut bytes, &mut on).expect("g711 frame");
            for (p, b) in piece.iter_mut().zip(bytes) {
                *p = b as i16;
            }
        }
        pos += n;
    }
    m.finish(&mut on);
    let out = input[delay..].to_vec();
    Masked { linear: decode(config.encoding, &out), codes: out, spans, presses }
}

/// [`mask_codes`] on linear input, encoded first.
pub fn mask_linear(config: MaskerConfig, x: &[i16], frame: impl FnMut() -> usize) -> Masked {
    mask_codes(config, &encode(config.encoding, x), frame)
}

/// Keys cardveil's own (strict, Q.24) detector finds.
pub fn decode_cardveil(rate: u32, x: &[i16]) -> String {
    crate::keys_of(&crate::cardveil_detect(rate, Profile::Q24, x, 160).presses)
}

/// Keys spandsp finds with default parameters (`None` if not installed).
pub fn decode_spandsp(x: &[i16]) -> Option<String> {
    decode_spandsp_with(x, None)
}

/// Keys spandsp finds with its most sensitive settings:
/// `dtmf_rx_parms(s, 0, 15.0, 15.0, -50.0)` (no filter, 15 dB twist both
/// ways, −50 dBm0 threshold).
pub fn decode_spandsp_sensitive(x: &[i16]) -> Option<String> {
    decode_spandsp_with(x, Some((false, 15, 15, -50)))
}

fn decode_spandsp_with(x: &[i16], parms: Option<(bool, i32, i32, i32)>) -> Option<String> {
    #[cfg(spandsp)]
    {
        Some(crate::spandsp::detect_timed(x, parms).into_iter().map(|(c, _)| c).collect())
    }
    #[cfg(not(spandsp))]
    {
        let _ = (x, parms);
        None
    }
}

fn write_wav(path: &Path, rate: u32, x: &[i16]) {
    use cardveil_core::codec::wav::{WavFormat, header};
    let fmt = WavFormat { encoding: Encoding::Pcm16, sample_rate: rate, channels: 1 };
    let mut bytes = header(fmt, (x.len() * 2) as u32);
    for s in x {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write wav");
}

/// Keys `multimon-ng -a DTMF` finds (input resampled to its 22 050 Hz by sox).
pub fn decode_multimon(rate: u32, x: &[i16], dir: &Path, tag: &str) -> String {
    let wav = dir.join(format!("{tag}-mm.wav"));
    let raw = dir.join(format!("{tag}-mm.raw"));
    write_wav(&wav, rate, x);
    run(Command::new("sox")
        .arg(&wav)
        .args(["-t", "raw", "-r", "22050", "-e", "signed", "-b", "16", "-c", "1"])
        .arg(&raw));
    let out = run(Command::new("multimon-ng").args(["-q", "-c", "-a", "DTMF", "-t", "raw"]).arg(&raw));
    let _ = std::fs::remove_file(&wav);
    let _ = std::fs::remove_file(&raw);
    String::from_utf8_lossy(&out).lines().filter_map(|l| l.strip_prefix("DTMF: ")).map(|k| k.trim()).collect()
}

/// Keys `dtmf2num` finds (its "DTMF numbers" line; it normalises the file first).
pub fn decode_dtmf2num(rate: u32, x: &[i16], dir: &Path, tag: &str) -> String {
    let wav = dir.join(format!("{tag}-d2n.wav"));
    write_wav(&wav, rate, x);
    let out = Command::new("dtmf2num").arg(&wav).output().expect("run dtmf2num");
    let _ = std::fs::remove_file(&wav);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("- DTMF numbers:"))
        .map(|s| s.trim().to_string())
        .filter(|s| s != "none")
        .unwrap_or_default()
}

/// Energy of `x[range]` at `hz` as a sinusoid's energy over the range:
/// (2/N)·|Σ x[n] e^{−jωn}|².
pub fn energy_at(x: &[i16], rate: u32, hz: f64, range: std::ops::Range<usize>) -> f64 {
    let w = std::f64::consts::TAU * hz / rate as f64;
    let (mut re, mut im) = (0.0, 0.0);
    for (k, &s) in x[range.clone()].iter().enumerate() {
        let a = w * k as f64;
        re += s as f64 * a.cos();
        im -= s as f64 * a.sin();
    }
    2.0 * (re * re + im * im) / range.len() as f64
}

/// The largest tone energy left in `out` at the frequencies `hz` over 5 ms
/// windows (hop 1 ms) covering `[start − 2 ms, end + 2 ms)`, in dB relative
/// to the input tone's energy over a 5 ms window (`power`: the tone's mean
/// power, Σ A²/2).
pub fn residual_db(out: &[i16], rate: u32, hz: [f64; 2], power: f64, start: usize, end: usize) -> f64 {
    let ms = rate as usize / 1000;
    let win = 5 * ms;
    let from = start.saturating_sub(2 * ms);
    let to = (end + 2 * ms).min(out.len());
    let reference = power * win as f64;
    let mut worst = 0f64;
    let mut a = from;
    while a < to {
        let b = (a + win).min(to);
        if b - a >= ms {
            let e: f64 = hz.iter().map(|&f| energy_at(out, rate, f, a..b)).sum();
            // A shorter last window is scaled up to a full window's worth.
            worst = worst.max(e * win as f64 / (b - a) as f64);
        }
        a += ms;
    }
    if worst == 0.0 { f64::NEG_INFINITY } else { 10.0 * (worst / reference).log10() }
}

/// The key a 5 ms-window matched filter reads from `x[range]`: the row and
/// column frequencies with the most energy in any 5 ms window.
pub fn matched_filter_guess(x: &[i16], rate: u32, range: std::ops::Range<usize>) -> Key {
    use cardveil_core::dtmf::{COL_HZ, ROW_HZ};
    let win = 5 * rate as usize / 1000;
    let mut best = [0f64; 8];
    let mut a = range.start;
    while a + win <= range.end.max(range.start + win).min(x.len()) {
        for (i, &f) in ROW_HZ.iter().chain(COL_HZ.iter()).enumerate() {
            best[i] = best[i].max(energy_at(x, rate, f, a..a + win));
        }
        a += win / 5;
    }
    let argmax = |v: &[f64]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
    Key::from_row_col(argmax(&best[..4]), argmax(&best[4..]))
}
