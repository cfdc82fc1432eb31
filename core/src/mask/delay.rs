//! The look-ahead delay line: frames in, the same frames out in place,
//! delayed by the look-ahead and masked.

use super::replace::Replacer;
use super::{
    Analyser, Bounds, ConfigError, MAX_FRAME_MS, MaskerConfig, MaskerEvent, Sample, check_encoding, decode, encode,
    observe, replace_into,
};
use crate::codec::Encoding;

/// A per-stream masker with a look-ahead delay line.
///
/// Each call overwrites the caller's frame with the delayed, masked audio:
/// output sample `n` of the stream is input sample `n − lookahead` (digital
/// silence for the first `lookahead` samples), replaced inside masked spans.
/// Frames of any length (1 sample to 60 ms and beyond) may change from call
/// to call. All memory is allocated in [`Masker::new`]; processing never
/// allocates, locks or blocks.
#[derive(Debug)]
pub struct Masker {
    analyser: Analyser,
    replacer: Replacer,
    encoding: Encoding,
    /// Look-ahead in samples (at most 200 ms).
    delay: u32,
    /// Stored samples, indexed by stream position modulo its length.
    ring: Box<[i16]>,
    /// Input samples taken so far.
    written: u64,
    /// `written` modulo the ring's length (kept, not divided out per call).
    write_at: u32,
    /// Largest piece processed at once (the ring holds delay + chunk).
    chunk: u32,
    /// Stored representation of digital silence.
    silence: i16,
}

impl Masker {
    /// A masker for `config`.
    pub fn new(config: MaskerConfig) -> Result<Masker, ConfigError> {
        let analyser = Analyser::new(&config, config.lookahead_ms + MAX_FRAME_MS)?;
        let delay = config.ms_to_samples(config.lookahead_ms);
        let chunk = config.ms_to_samples(MAX_FRAME_MS);
        Ok(Masker {
            analyser,
            replacer: Replacer::new(config.mode, config.sample_rate),
            encoding: config.encoding,
            delay: delay as u32,
            ring: vec![encode(config.encoding, 0); delay + chunk].into_boxed_slice(),
            written: 0,
            write_at: 0,
            chunk: chunk as u32,
            silence: encode(config.encoding, 0),
        })
    }

    /// Replaces masked audio with `mode` from the next call on (a media
    /// proxy told to change its DTMF replacement mid-call): the replacement
    /// is made as audio leaves, so what the delay line holds leaves with
    /// the new one too. No allocation.
    pub fn set_mode(&mut self, mode: super::MaskMode) {
        self.replacer.set_mode(mode);
    }

    /// Switches a G.711 masker to the other law (an RTP stream whose payload
    /// type changed between PCMU and PCMA): the audio in the delay line is
    /// transcoded, so it leaves in the new law. No allocation.
    pub(crate) fn switch_law(&mut self, encoding: Encoding) {
        debug_assert!(encoding != Encoding::Pcm16 && self.encoding != Encoding::Pcm16);
        if encoding == self.encoding {
            return;
        }
        for c in self.ring.iter_mut() {
            *c = encode(encoding, decode(self.encoding, *c));
        }
        self.encoding = encoding;
        self.silence = encode(encoding, 0);
        self.analyser.encoding = encoding;
    }

    /// The look-ahead in samples: how far the output lags the input.
    pub fn lookahead(&self) -> usize {
        self.delay as usize
    }

    /// Per-stream memory in bytes: `(state, look-ahead buffers)`. The state
    /// is this struct, the detector and the span queue; the look-ahead
    /// buffers are the delay line (the look-ahead plus one 60 ms chunk) and
    /// the candidate policy's history of the look-ahead's windows (32 bytes
    /// per 5 ms).
    pub fn memory(&self) -> (usize, usize) {
        let state = std::mem::size_of::<Masker>() + self.analyser.heap_bytes();
        (state, std::mem::size_of_val(&*self.ring) + self.analyser.history_bytes())
    }

    /// Input samples taken so far.
    pub fn position(&self) -> u64 {
        self.written
    }

    /// Masks a frame in place: PCM16 samples, or G.711 codes (μ-law or
    /// A-law, as set up).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for the other sample type.
    pub fn process<S: Sample, F: FnMut(MaskerEvent)>(
        &mut self,
        frame: &mut [S],
        mut on_event: F,
    ) -> Result<(), ConfigError> {
        check_encoding::<S>(self.encoding)?;
        self.process_frame(frame, &mut on_event);
        Ok(())
    }

    /// Masks a PCM16 frame in place ([`Masker::process`]).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for G.711.
    pub fn process_pcm16<F: FnMut(MaskerEvent)>(&mut self, frame: &mut [i16], on_event: F) -> Result<(), ConfigError> {
        self.process(frame, on_event)
    }

    /// Masks a G.711 frame (μ-law or A-law codes, as set up) in place ([`Masker::process`]).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for PCM16.
    pub fn process_g711<F: FnMut(MaskerEvent)>(&mut self, frame: &mut [u8], on_event: F) -> Result<(), ConfigError> {
        self.process(frame, on_event)
    }

    /// Ends the stream: reports the key still sounding and every pending
    /// span. To release the audio still in the delay line first, process
    /// [`Self::lookahead`] samples of silence.
    pub fn finish<F: FnMut(MaskerEvent)>(&mut self, mut on_event: F) {
        self.analyser.finish(&mut on_event);
    }

    /// [`Masker::process`] without the frame type check (the RTP streams
    /// set the law themselves).
    pub(crate) fn process_frame<C: Sample, F: FnMut(MaskerEvent)>(&mut self, frame: &mut [C], on_event: &mut F) {
        let chunk = self.chunk as usize;
        for piece in frame.chunks_mut(chunk) {
            self.step(piece, on_event);
        }
    }

    /// One piece of at most `chunk` samples: store and analyse the input,
    /// then overwrite it with the output.
    fn step<C: Sample, F: FnMut(MaskerEvent)>(&mut self, piece: &mut [C], on_event: &mut F) {
        let n = piece.len() as u64;
        let pos0 = self.written;
        ring_write(&mut self.ring, self.write_at as usize, piece);
        // Output positions pos0 + i carry input positions pos0 + i − delay.
        let first_out = pos0 as i64 - self.delay as i64;
        let floor = first_out.max(0) as u64;
        self.analyser.feed(piece, Bounds { floor, reach: self.delay as u64 }, on_event);
        self.written += n;
        // The ring is shorter than 260 ms of 48 kHz samples.
        self.write_at = wrap(self.write_at as usize + piece.len(), self.ring.len()) as u32;

        // The first `delay` outputs of the stream are silence.
        let lead = (-first_out).clamp(0, n as i64) as usize;
        for c in &mut piece[..lead] {
            *c = C::load(self.silence);
        }
        let mut src = floor;
        let end = (pos0 + n).saturating_sub(self.delay as u64);
        let mut out = lead;
        while src < end {
            let (masked, until) = self.analyser.spans.segment(src, end);
            let len = (until - src) as usize;
            let dst = &mut piece[out..out + len];
            if masked {
                replace_into(&self.replacer, self.encoding, dst, src);
            } else {
                // `src` is within the ring's length behind `written`.
                let back = (self.written - src) as usize;
                ring_read(&self.ring, wrap(self.write_at as usize + self.ring.len() - back, self.ring.len()), dst);
                observe(&mut self.replacer, self.encoding, dst);
            }
            src = until;
            out += len;
        }
        self.analyser.spans.evict(end);
    }
}

/// `i` (less than twice `len`) modulo `len`.
#[inline]
fn wrap(i: usize, len: usize) -> usize {
    if i >= len { i - len } else { i }
}

/// Stores `src` from slot `at` of the ring on, wrapping (at most its length).
fn ring_write<C: Sample>(ring: &mut [i16], at: usize, src: &[C]) {
    let first = src.len().min(ring.len() - at);
    for (r, c) in ring[at..at + first].iter_mut().zip(&src[..first]) {
        *r = c.store();
    }
    for (r, c) in ring.iter_mut().zip(&src[first..]) {
        *r = c.store();
    }
}

/// Loads `dst.len()` samples from slot `at` of the ring on, wrapping.
fn ring_read<C: Sample>(ring: &[i16], at: usize, dst: &mut [C]) {
    let first = dst.len().min(ring.len() - at);
    let (head, tail) = dst.split_at_mut(first);
    for (d, &r) in head.iter_mut().zip(&ring[at..at + first]) {
        *d = C::load(r);
    }
    for (d, &r) in tail.iter_mut().zip(ring.iter()) {
        *d = C::load(r);
    }
}
