//! Masking: every DTMF key press in the outgoing audio is replaced from its
//! first sample, while the strict detector still decides which digits are
//! reported.
//!
//! Five milliseconds of clean tone identify a key, and confirming one takes
//! 30–40 ms, so masking after confirmation always leaks. The masker instead
//! runs a permissive *candidate* test on every 10 ms analysis window (the
//! same correlator bank and phase-advance frequency measurement as the
//! detector, with wide limits: anything a lenient decoder could still read
//! as a key, including ±3.5 % off-frequency, twisted and 10 ms tones) and
//! masks a span from a little before the first candidate window to a
//! little after the last (`spans.rs` explains the bounds). Audio is
//! released through a look-ahead delay line ([`Masker`]) long enough that
//! the span's start has not been released yet when the candidate is found:
//! 18 ms covers the tone's first sample with a 2 ms guard; the default is
//! 20 ms. Hosts that already buffer audio use [`TwoPhaseMasker`] instead:
//! analyse on arrival, mask at playout, no added latency.
//!
//! Outside masked spans the output is the input delayed by exactly the
//! look-ahead, bit for bit (PCM16 and G.711 codes alike). Inside, the audio
//! is replaced according to [`MaskMode`]; the replacement depends only on
//! the stream position and on unmasked audio, never on the key.

pub(crate) mod candidate;
mod delay;
mod replace;
mod spans;
mod two_phase;

pub use delay::Masker;
pub use replace::{FLAT_TONE_DBM0, FLAT_TONE_HZ};
pub use two_phase::TwoPhaseMasker;

use crate::codec::{Encoding, alaw, ulaw};
use crate::dtmf::{Detector, DetectorConfig, DetectorEvent, KeyDown, KeyPress, Profile, SAMPLE_RATES, UnsupportedRate};
use candidate::Candidates;
use spans::Spans;

/// Longest look-ahead accepted, ms.
pub const MAX_LOOKAHEAD_MS: u32 = 200;
/// Default look-ahead, ms: one 20 ms frame.
pub const DEFAULT_LOOKAHEAD_MS: u32 = 20;
/// The shortest look-ahead that masks a key from 2 ms before its first
/// sample: a span can open three 5 ms sub-blocks and a 2.6 ms guard before
/// the end of the candidate window found (add up to 5 ms for frames that are
/// not whole multiples of 5 ms). Shorter look-aheads mask from as early as
/// they still can. A tone more than 2 % off is found a window later (two
/// pure windows), and its span reaches one sub-block further back as far
/// as the look-ahead allows: from its first sub-block at the default 20 ms,
/// from 2 ms before its first sample at 23 ms. From this look-ahead on the
/// output never depends on frame sizes.
pub const ZERO_LEAK_LOOKAHEAD_MS: u32 = 18;

/// The longest frame the call APIs take, ms (the C ABI refuses longer
/// ones; the maskers themselves take any length and process frames longer
/// than this in pieces).
pub const MAX_FRAME_MS: u32 = 60;

/// A masker's configuration or frame does not suit it. Messages say what
/// went wrong, never with which card data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The sample rate is not one the detector supports.
    #[error("unsupported sample rate {0} Hz (supported: 8000, 16000, 48000)")]
    UnsupportedSampleRate(u32),
    /// G.711 was asked for at a rate other than 8000 Hz.
    #[error("G.711 (μ-law, A-law) is 8000 Hz only, not {0} Hz")]
    G711Rate(u32),
    /// The look-ahead is longer than the masker supports.
    #[error("look-ahead of {0} ms is too long (at most 200 ms)")]
    LookaheadTooLong(u32),
    /// A frame of the wrong sample type was passed (PCM16 to a G.711 masker or the reverse).
    #[error("wrong frame type: this masker was set up for {0:?}")]
    WrongFrameType(Encoding),
}

impl From<UnsupportedRate> for ConfigError {
    fn from(e: UnsupportedRate) -> ConfigError {
        ConfigError::UnsupportedSampleRate(e.0)
    }
}
/// Samples decoded or generated at once in a stack buffer.
const PIECE: usize = 240;

/// What replaces masked audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaskMode {
    /// Digital silence.
    #[default]
    Silence,
    /// White noise at the level of the surrounding (unmasked) audio.
    Noise,
    /// One flat 500 Hz tone at −20 dBm0, the same for every key: the agent
    /// hears that a key was pressed, not which.
    Tone,
}

impl MaskMode {
    /// Parses `silence`, `noise` or `tone` (any case).
    pub fn from_name(name: &str) -> Option<MaskMode> {
        match name.to_ascii_lowercase().as_str() {
            "silence" => Some(MaskMode::Silence),
            "noise" => Some(MaskMode::Noise),
            "tone" => Some(MaskMode::Tone),
            _ => None,
        }
    }
}

/// Masker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskerConfig {
    /// Samples per second: 8000, 16000 or 48000 (G.711: 8000).
    pub sample_rate: u32,
    /// The encoding of the frames.
    pub encoding: Encoding,
    /// Look-ahead (delay) in ms, 0 to [`MAX_LOOKAHEAD_MS`]. For
    /// [`TwoPhaseMasker`] this is the jitter-buffer depth the host promises.
    pub lookahead_ms: u32,
    /// Replacement.
    pub mode: MaskMode,
    /// The strict detector's profile (which digits are reported).
    pub profile: Profile,
}

impl Default for MaskerConfig {
    fn default() -> Self {
        MaskerConfig {
            sample_rate: 8000,
            encoding: Encoding::Pcm16,
            lookahead_ms: DEFAULT_LOOKAHEAD_MS,
            mode: MaskMode::Silence,
            profile: Profile::Q24,
        }
    }
}

impl MaskerConfig {
    /// Whether a masker can be built for this configuration (the checks of
    /// [`Masker::new`] and [`TwoPhaseMasker::new`], without building one).
    ///
    /// # Errors
    /// The first setting a masker refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !SAMPLE_RATES.contains(&self.sample_rate) {
            return Err(ConfigError::UnsupportedSampleRate(self.sample_rate));
        }
        if self.lookahead_ms > MAX_LOOKAHEAD_MS {
            return Err(ConfigError::LookaheadTooLong(self.lookahead_ms));
        }
        if self.encoding != Encoding::Pcm16 && self.sample_rate != 8000 {
            return Err(ConfigError::G711Rate(self.sample_rate));
        }
        Ok(())
    }

    fn ms_to_samples(&self, ms: u32) -> usize {
        (self.sample_rate as u64 * ms as u64 / 1000) as usize
    }
}

/// A masked span of the stream, `[start, end)` in input sample positions.
/// It says when, never which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedSpan {
    /// First masked sample.
    pub start: u64,
    /// One past the last masked sample.
    pub end: u64,
}

/// What the maskers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskerEvent {
    /// The strict detector confirmed or ended a key (positions are input
    /// stream positions). For capture; never print its key.
    Key(DetectorEvent),
    /// A span is final: it will be (or has been) masked.
    Masked(MaskedSpan),
}

mod sealed {
    /// Only this crate implements [`super::Sample`] and [`super::MaskerKind`].
    pub trait Sealed {}
    impl Sealed for i16 {}
    impl Sealed for u8 {}
    impl Sealed for super::Masker {}
    impl Sealed for super::TwoPhaseMasker {}
}

/// The two maskers — the delay line ([`Masker`]) and two-phase
/// ([`TwoPhaseMasker`]) — for code generic over them (an RTP stream, a
/// call's leg). Sealed.
pub trait MaskerKind: sealed::Sealed + std::fmt::Debug + Send + Sized {
    /// A masker for `config`.
    ///
    /// # Errors
    /// The first setting it refuses (see [`MaskerConfig::validate`]).
    fn build(config: MaskerConfig) -> Result<Self, ConfigError>;
    /// Input samples taken in so far: processed (delay line) or analysed
    /// (two-phase); the clock of the events' positions.
    fn taken(&self) -> u64;
    /// Ends the stream (see [`Masker::finish`], [`TwoPhaseMasker::finish`]).
    fn end(&mut self, on_event: &mut dyn FnMut(MaskerEvent));
    /// Switches a G.711 masker to the other law (an RTP stream whose
    /// payload type changed).
    #[doc(hidden)]
    fn switch_to(&mut self, encoding: Encoding);
    /// Changes the replacement (see [`Masker::set_mode`]).
    fn replace_with(&mut self, mode: MaskMode);
}

impl MaskerKind for Masker {
    fn build(config: MaskerConfig) -> Result<Masker, ConfigError> {
        Masker::new(config)
    }
    fn taken(&self) -> u64 {
        self.position()
    }
    fn end(&mut self, on_event: &mut dyn FnMut(MaskerEvent)) {
        self.finish(on_event);
    }
    fn switch_to(&mut self, encoding: Encoding) {
        self.switch_law(encoding);
    }
    fn replace_with(&mut self, mode: MaskMode) {
        self.set_mode(mode);
    }
}

impl MaskerKind for TwoPhaseMasker {
    fn build(config: MaskerConfig) -> Result<TwoPhaseMasker, ConfigError> {
        TwoPhaseMasker::new(config)
    }
    fn taken(&self) -> u64 {
        self.analysed()
    }
    fn end(&mut self, on_event: &mut dyn FnMut(MaskerEvent)) {
        self.finish(on_event);
    }
    fn switch_to(&mut self, encoding: Encoding) {
        self.switch_law(encoding);
    }
    fn replace_with(&mut self, mode: MaskMode) {
        self.set_mode(mode);
    }
}

/// A frame of either sample type, as [`Sample::frame`] hands it over.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// PCM16 samples.
    Pcm16(&'a [i16]),
    /// G.711 codes (μ-law or A-law, as the masker was set up).
    G711(&'a [u8]),
}

/// The sample types of the frame APIs: `i16` (PCM16) and `u8` (G.711
/// codes), each stored in the encoding's own representation so unmasked
/// audio leaves exactly as it came (G.711 codes are never re-encoded).
/// Sealed: implemented for these two only.
pub trait Sample: Copy + sealed::Sealed {
    /// Whether this is PCM16 (else G.711 codes).
    const PCM16: bool;
    /// The frame, typed.
    fn frame(frame: &[Self]) -> Frame<'_>;
    #[doc(hidden)]
    fn store(self) -> i16;
    #[doc(hidden)]
    fn load(raw: i16) -> Self;
}

impl Sample for i16 {
    const PCM16: bool = true;
    fn frame(frame: &[i16]) -> Frame<'_> {
        Frame::Pcm16(frame)
    }
    #[inline]
    fn store(self) -> i16 {
        self
    }
    #[inline]
    fn load(raw: i16) -> i16 {
        raw
    }
}

impl Sample for u8 {
    const PCM16: bool = false;
    fn frame(frame: &[u8]) -> Frame<'_> {
        Frame::G711(frame)
    }
    #[inline]
    fn store(self) -> i16 {
        self as i16
    }
    #[inline]
    fn load(raw: i16) -> u8 {
        raw as u8
    }
}

/// Linear value of a stored sample.
#[inline]
fn decode(encoding: Encoding, raw: i16) -> i16 {
    match encoding {
        Encoding::Pcm16 => raw,
        Encoding::Ulaw => ulaw::decode(raw as u8),
        Encoding::Alaw => alaw::decode(raw as u8),
    }
}

/// Stored representation of a linear value.
#[inline]
fn encode(encoding: Encoding, v: i16) -> i16 {
    match encoding {
        Encoding::Pcm16 => v,
        Encoding::Ulaw => ulaw::encode(v) as i16,
        Encoding::Alaw => alaw::encode(v) as i16,
    }
}

/// Overwrites `out` with the replacement for stream positions `pos..`.
fn replace_into<C: Sample>(replacer: &replace::Replacer, encoding: Encoding, out: &mut [C], pos: u64) {
    if replacer.is_silence() {
        out.fill(C::load(encode(encoding, 0)));
        return;
    }
    let mut buf = [0i16; PIECE];
    for (i, piece) in out.chunks_mut(PIECE).enumerate() {
        let fill = &mut buf[..piece.len()];
        replacer.fill(pos.wrapping_add((i * PIECE) as u64), fill);
        for (d, &v) in piece.iter_mut().zip(fill.iter()) {
            *d = C::load(encode(encoding, v));
        }
    }
}

/// Lets the replacer hear unmasked output (noise mode measures its level).
fn observe<C: Sample>(replacer: &mut replace::Replacer, encoding: Encoding, out: &[C]) {
    if replacer.observes() {
        let mut buf = [0i16; PIECE];
        for piece in out.chunks(PIECE) {
            let linear = &mut buf[..piece.len()];
            for (l, c) in linear.iter_mut().zip(piece) {
                *l = decode(encoding, c.store());
            }
            replacer.observe(linear);
        }
    }
}

/// Checks that a frame of `S` suits a masker for `expected`.
fn check_encoding<S: Sample>(expected: Encoding) -> Result<(), ConfigError> {
    if (expected == Encoding::Pcm16) == S::PCM16 { Ok(()) } else { Err(ConfigError::WrongFrameType(expected)) }
}

/// The analysis side shared by both maskers: the detector, the candidate
/// policy judging its windows, and the spans.
#[derive(Debug)]
struct Analyser {
    detector: Detector,
    candidates: Candidates,
    spans: Spans,
    encoding: Encoding,
    /// Stream position of the detector's position 0.
    offset: u64,
}

/// Connects the detector's [`crate::dtmf::detector`] sink to the spans and
/// the caller's callback, translating positions.
struct Feed<'a, F> {
    candidates: &'a mut Candidates,
    spans: &'a mut Spans,
    offset: u64,
    bounds: Bounds,
    on_event: &'a mut F,
}

/// How far back a new span may reach when a window is analysed.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// The first position not yet released (what this call's frame allows).
    floor: u64,
    /// The look-ahead in samples: what any frame allows. A span that
    /// reaches further back than the usual bound (see `spans.rs`) stops
    /// there, so that the output never depends on frame sizes.
    reach: u64,
}

impl<F: FnMut(MaskerEvent)> crate::dtmf::Sink for Feed<'_, F> {
    fn event(&mut self, event: DetectorEvent) {
        let o = self.offset;
        let shifted = match event {
            DetectorEvent::Down(d) => {
                DetectorEvent::Down(KeyDown { start: d.start + o, confirmed_at: d.confirmed_at + o, ..d })
            }
            DetectorEvent::Up(p) => DetectorEvent::Up(KeyPress { start: p.start + o, end: p.end + o, ..p }),
        };
        (self.on_event)(MaskerEvent::Key(shifted));
    }

    fn window(&mut self, w: &crate::dtmf::Window<'_>) {
        let verdict = self.candidates.judge(w);
        let end = w.index() * w.bank().len as u64;
        let end = end + self.offset;
        let late_floor = end.saturating_sub(self.bounds.reach);
        self.spans.window(end, verdict, late_floor, w.ac, self.bounds.floor, self.on_event);
    }
}

impl Analyser {
    /// An analyser whose spans cover `window_ms` of stream.
    fn new(config: &MaskerConfig, window_ms: u32) -> Result<Analyser, ConfigError> {
        config.validate()?;
        let detector = Detector::with_candidates(
            DetectorConfig { sample_rate: config.sample_rate, profile: config.profile },
            &candidate::loose_params(),
        )?;
        let spans = Spans::new(detector.block_len(), config.sample_rate, window_ms);
        let candidates = Candidates::new(config.lookahead_ms);
        Ok(Analyser { detector, candidates, spans, encoding: config.encoding, offset: 0 })
    }

    /// Bytes allocated besides the struct itself, but for the candidate
    /// policy's window history (see [`Self::history_bytes`]).
    fn heap_bytes(&self) -> usize {
        self.spans.heap_bytes()
    }

    /// Bytes of the window histories: the candidate policy's, which grows
    /// with the look-ahead (32 bytes per 5 ms), a look-ahead buffer like the
    /// delay line; and the detector's latest 55 ms (see
    /// [`Detector::history_bytes`](crate::dtmf::Detector)).
    fn history_bytes(&self) -> usize {
        self.candidates.heap_bytes() + self.detector.history_bytes()
    }

    /// Stream position of the next sample to analyse.
    fn position(&self) -> u64 {
        self.detector.position() + self.offset
    }

    /// Analyses a frame of either sample type, spans within `bounds`.
    fn feed<S: Sample, F: FnMut(MaskerEvent)>(&mut self, frame: &[S], bounds: Bounds, on_event: &mut F) {
        match S::frame(frame) {
            Frame::Pcm16(x) => self.feed_linear(x, bounds, on_event),
            Frame::G711(codes) => self.feed_g711(codes, bounds, on_event),
        }
    }

    /// Analyses linear samples, spans within `bounds`.
    fn feed_linear<F: FnMut(MaskerEvent)>(&mut self, x: &[i16], bounds: Bounds, on_event: &mut F) {
        let mut feed =
            Feed { candidates: &mut self.candidates, spans: &mut self.spans, offset: self.offset, bounds, on_event };
        self.detector.process_into(x, &mut feed);
    }

    /// Analyses G.711 codes, decoding them piece by piece on the stack.
    fn feed_g711<F: FnMut(MaskerEvent)>(&mut self, codes: &[u8], bounds: Bounds, on_event: &mut F) {
        let mut buf = [0i16; PIECE];
        for piece in codes.chunks(PIECE) {
            let decoded = &mut buf[..piece.len()];
            match self.encoding {
                Encoding::Alaw => alaw::decode_into(piece, decoded),
                _ => ulaw::decode_into(piece, decoded),
            }
            let mut feed = Feed {
                candidates: &mut self.candidates,
                spans: &mut self.spans,
                offset: self.offset,
                bounds,
                on_event,
            };
            self.detector.process_into(decoded, &mut feed);
        }
    }

    /// Ends the stream: the key still sounding ends, every span is final.
    fn finish<F: FnMut(MaskerEvent)>(&mut self, on_event: &mut F) {
        let bounds = Bounds { floor: self.position(), reach: 0 };
        let mut feed =
            Feed { candidates: &mut self.candidates, spans: &mut self.spans, offset: self.offset, bounds, on_event };
        self.detector.finish_into(&mut feed);
        self.spans.report_final(u64::MAX, on_event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configurations_are_refused_with_their_reason() {
        let bad = |c: MaskerConfig| Masker::new(c).unwrap_err();
        let d = MaskerConfig::default();
        assert_eq!(bad(MaskerConfig { lookahead_ms: 201, ..d }), ConfigError::LookaheadTooLong(201));
        assert_eq!(bad(MaskerConfig { sample_rate: 44100, ..d }), ConfigError::UnsupportedSampleRate(44100));
        assert_eq!(
            bad(MaskerConfig { encoding: Encoding::Alaw, sample_rate: 16000, ..d }),
            ConfigError::G711Rate(16000)
        );
        assert!(TwoPhaseMasker::new(MaskerConfig { lookahead_ms: 1000, ..d }).is_err());
        let mut m = Masker::new(d).unwrap();
        assert_eq!(m.process_g711(&mut [0u8; 4], |_| {}), Err(ConfigError::WrongFrameType(Encoding::Pcm16)));
        assert_eq!(MaskMode::from_name("NOISE"), Some(MaskMode::Noise));
        assert_eq!(MaskMode::from_name("beep"), None);
    }

    #[test]
    fn the_output_is_the_input_delayed_by_the_lookahead() {
        for lookahead_ms in [0, 1, 20, 200] {
            let mut m = Masker::new(MaskerConfig { lookahead_ms, ..MaskerConfig::default() }).unwrap();
            let delay = m.lookahead();
            assert_eq!(delay, 8 * lookahead_ms as usize);
            // Quiet noise-like input, no tones: nothing is masked.
            let input: Vec<i16> = (0..8000).map(|n| ((n * 7919 % 61) as i16) - 30).collect();
            let mut out = input.clone();
            for chunk in out.chunks_mut(37) {
                m.process_pcm16(chunk, |_| panic!("no events expected")).unwrap();
            }
            assert!(out[..delay].iter().all(|&s| s == 0));
            assert_eq!(&out[delay..], &input[..input.len() - delay]);
        }
    }
}
