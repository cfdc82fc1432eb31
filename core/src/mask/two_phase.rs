//! The two-phase masker for hosts that buffer audio already: analyse each
//! packet when it arrives, mask it at playout. The jitter buffer is the
//! look-ahead, so nothing is delayed.

use super::replace::Replacer;
use super::{
    Analyser, Bounds, ConfigError, MaskerConfig, MaskerEvent, PIECE, Sample, check_encoding, observe, replace_into,
};
use crate::codec::Encoding;

/// Stream position of the first analysed sample: room below it for
/// timestamps that arrive out of order before the first packet.
const ORIGIN: u64 = 1 << 33;
/// A gap longer than this (silence suppression, a new talk spurt) is not
/// filled sample by sample: the analysis is flushed and jumps.
const MAX_FILLED_GAP_MS: u32 = 1000;
/// Silence fed on such a jump so that a key in progress ends cleanly.
const FLUSH_MS: u32 = 60;
/// Spans are remembered this long behind the analysis head (at least the
/// look-ahead); older positions count as unknown and are masked.
const HISTORY_MS: u32 = 1000;
/// Packets remembered to tell a true duplicate (same timestamp, length and
/// samples) from other audio claiming the same place.
const RECENT_PACKETS: usize = 8;

/// A packet's place and a digest of its samples (64 bits, four samples a
/// step: a multiply-rotate mix — not cryptographic, it only tells a true
/// duplicate from other audio; a collision only leaves that place to the
/// first packet's analysis, as before duplicates were told apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Seen {
    ts: u32,
    len: u32,
    digest: u64,
}

impl Seen {
    fn of<C: Sample>(frame: &[C], ts: u32) -> Seen {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h: u64 = K ^ frame.len() as u64;
        let mut chunks = frame.chunks_exact(4);
        for c in &mut chunks {
            let w = c.iter().fold(0u64, |w, s| (w << 16) | s.store() as u16 as u64);
            h = (h ^ w).wrapping_mul(K).rotate_left(29);
        }
        for s in chunks.remainder() {
            h = (h ^ s.store() as u16 as u64).wrapping_mul(K).rotate_left(29);
        }
        Seen { ts, len: frame.len() as u32, digest: h }
    }
}

/// Positions in the events count samples from the first packet's timestamp
/// (wrapping below it for audio numbered before the first packet).
fn rebase(e: MaskerEvent) -> MaskerEvent {
    use crate::dtmf::{DetectorEvent, KeyDown, KeyPress};
    let b = |x: u64| x.wrapping_sub(ORIGIN);
    match e {
        MaskerEvent::Masked(s) => MaskerEvent::Masked(super::MaskedSpan { start: b(s.start), end: b(s.end) }),
        MaskerEvent::Key(DetectorEvent::Down(d)) => {
            MaskerEvent::Key(DetectorEvent::Down(KeyDown { start: b(d.start), confirmed_at: b(d.confirmed_at), ..d }))
        }
        MaskerEvent::Key(DetectorEvent::Up(k)) => {
            MaskerEvent::Key(DetectorEvent::Up(KeyPress { start: b(k.start), end: b(k.end), ..k }))
        }
    }
}

/// A per-stream masker driven by RTP timestamps: [`Self::analyse_pcm16`] (or
/// `_g711`) when a packet arrives, [`Self::mask_pcm16`] (or `_g711`) when
/// it is played out.
///
/// With a jitter buffer at least [`super::ZERO_LEAK_LOOKAHEAD_MS`] deep, a
/// key is masked from 2 ms before its first sample and nothing is delayed.
/// Robustness, all without leaking:
/// * a true duplicate (the same timestamp, length and samples as one of the
///   last few packets) is ignored by the analysis; a packet that arrives
///   after its place was passed was a gap there, so it is masked at playout
///   anyway; any *other* audio claiming a place already analysed (a second
///   source on the same timestamps, an injected packet) makes that place
///   masked — what was not analysed is never played out as it came;
/// * a gap (loss) is analysed as silence and masked at playout, whatever
///   the host conceals it with, since nothing about it is known;
/// * audio never analysed (played before it was analysed, before the first
///   packet or more than a second behind the analysis) is masked;
/// * a packet more than a second behind the analysis means the timestamps
///   were reset: the analysis goes on from there.
///
/// All memory is allocated in [`TwoPhaseMasker::new`]; no call allocates,
/// locks or blocks.
#[derive(Debug)]
pub struct TwoPhaseMasker {
    analyser: Analyser,
    replacer: Replacer,
    encoding: Encoding,
    /// RTP timestamp and stream position of the next sample to analyse.
    head: Option<(u32, u64)>,
    /// Positions before this are unknown.
    known_from: u64,
    history: u64,
    /// The jitter-buffer depth in samples (`config.lookahead_ms`): how far
    /// back of an analysed window a span may reach (see `Bounds`).
    depth: u64,
    max_gap: u64,
    flush: u64,
    /// The last packets analysed, to recognise true duplicates.
    recent: Box<[Seen; RECENT_PACKETS]>,
    next_recent: usize,
    /// Where the analysis last jumped ahead over a long gap (RTP timestamp).
    landed: Option<u32>,
    /// RTP timestamps `[start, end)` analysed under a numbering abandoned
    /// at a reset: audio of the new numbering on them is masked, since a
    /// packet of the old one played out there would meet the new one's spans.
    retired: Option<(u32, u32)>,
}

impl TwoPhaseMasker {
    /// A two-phase masker; `config.lookahead_ms` is the jitter-buffer depth
    /// the host keeps (it sizes the span history, nothing is delayed).
    pub fn new(config: MaskerConfig) -> Result<TwoPhaseMasker, ConfigError> {
        let history_ms = HISTORY_MS.max(config.lookahead_ms);
        let analyser = Analyser::new(&config, history_ms)?;
        let flush = config.ms_to_samples(FLUSH_MS);
        Ok(TwoPhaseMasker {
            analyser,
            replacer: Replacer::new(config.mode, config.sample_rate),
            encoding: config.encoding,
            head: None,
            known_from: ORIGIN,
            history: config.ms_to_samples(history_ms) as u64,
            depth: config.ms_to_samples(config.lookahead_ms) as u64,
            max_gap: config.ms_to_samples(MAX_FILLED_GAP_MS) as u64,
            flush: flush as u64,
            recent: Box::new([Seen::default(); RECENT_PACKETS]),
            next_recent: 0,
            landed: None,
            retired: None,
        })
    }

    /// Replaces masked audio with `mode` from the next playout on (see
    /// `Masker::set_mode`). No allocation.
    pub fn set_mode(&mut self, mode: super::MaskMode) {
        self.replacer.set_mode(mode);
    }

    /// Switches a G.711 masker to the other law (see `Masker::switch_law`).
    pub(crate) fn switch_law(&mut self, encoding: Encoding) {
        debug_assert!(encoding != Encoding::Pcm16 && self.encoding != Encoding::Pcm16);
        self.encoding = encoding;
        self.analyser.encoding = encoding;
    }

    /// Stream position of RTP timestamp `ts`, relative to the analysis head
    /// (wrap-around safe within ±2³¹ samples).
    /// Samples analysed so far, counted from the first packet's timestamp
    /// (the clock of the events; 0 before the first packet).
    pub fn analysed(&self) -> u64 {
        self.head.map_or(0, |(_, pos)| pos.saturating_sub(ORIGIN))
    }

    fn position(&self, ts: u32) -> Option<u64> {
        self.head.map(|(hts, hpos)| (hpos as i64 + ts.wrapping_sub(hts) as i32 as i64) as u64)
    }

    /// Analyses an arriving packet (PCM16 samples or G.711 codes, as set
    /// up) whose first sample has RTP timestamp `ts`.
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for the other sample type.
    pub fn analyse<S: Sample, F: FnMut(MaskerEvent)>(
        &mut self,
        frame: &[S],
        ts: u32,
        mut on_event: F,
    ) -> Result<(), ConfigError> {
        check_encoding::<S>(self.encoding)?;
        self.analyse_frame(frame, ts, &mut on_event);
        Ok(())
    }

    /// Analyses an arriving PCM16 packet ([`TwoPhaseMasker::analyse`]).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for G.711.
    pub fn analyse_pcm16<F: FnMut(MaskerEvent)>(
        &mut self,
        frame: &[i16],
        ts: u32,
        on_event: F,
    ) -> Result<(), ConfigError> {
        self.analyse(frame, ts, on_event)
    }

    /// Analyses an arriving G.711 packet ([`TwoPhaseMasker::analyse`]).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for PCM16.
    pub fn analyse_g711<F: FnMut(MaskerEvent)>(
        &mut self,
        frame: &[u8],
        ts: u32,
        on_event: F,
    ) -> Result<(), ConfigError> {
        self.analyse(frame, ts, on_event)
    }

    /// Masks a frame in place at playout (`ts`: its first sample's RTP timestamp).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for the other sample type.
    pub fn mask<S: Sample>(&mut self, frame: &mut [S], ts: u32) -> Result<(), ConfigError> {
        check_encoding::<S>(self.encoding)?;
        self.mask_frame(frame, ts);
        Ok(())
    }

    /// Masks a PCM16 frame in place at playout ([`TwoPhaseMasker::mask`]).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for G.711.
    pub fn mask_pcm16(&mut self, frame: &mut [i16], ts: u32) -> Result<(), ConfigError> {
        self.mask(frame, ts)
    }

    /// Masks a G.711 frame in place at playout ([`TwoPhaseMasker::mask`]).
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] if the masker was set up for PCM16.
    pub fn mask_g711(&mut self, frame: &mut [u8], ts: u32) -> Result<(), ConfigError> {
        self.mask(frame, ts)
    }

    /// Ends the stream: reports the key still sounding and every pending span.
    pub fn finish<F: FnMut(MaskerEvent)>(&mut self, mut on_event: F) {
        self.analyser.finish(&mut |e| on_event(rebase(e)));
    }

    /// [`TwoPhaseMasker::analyse`] without the frame type check (the RTP
    /// streams set the law themselves).
    pub(crate) fn analyse_frame<C: Sample, F: FnMut(MaskerEvent)>(&mut self, frame: &[C], ts: u32, on_event: &mut F) {
        self.analyse_raw(frame, ts, &mut |e| on_event(rebase(e)));
    }

    /// The analysis, positions counted from the internal origin.
    fn analyse_raw<C: Sample, F: FnMut(MaskerEvent)>(&mut self, frame: &[C], ts: u32, on_event: &mut F) {
        if frame.is_empty() {
            return;
        }
        let seen = Seen::of(frame, ts);
        let duplicate = self.recent.contains(&seen);
        self.recent[self.next_recent] = seen;
        self.next_recent = (self.next_recent + 1) % RECENT_PACKETS;
        let Some(p) = self.position(ts) else {
            self.head = Some((ts, ORIGIN));
            self.analyser.offset = ORIGIN;
            self.analyser.feed(frame, Bounds { floor: 0, reach: self.depth }, on_event);
            self.head = Some((ts.wrapping_add(frame.len() as u32), ORIGIN + frame.len() as u64));
            return;
        };
        let (_, mut h) = self.head.expect("position() found a head");
        let (mut p, mut end) = (p, p + frame.len() as u64);
        if end <= h {
            if h - p <= self.max_gap {
                // A duplicate, or too late (its place is a gap span
                // already) — or other audio on the same place: masked.
                if !duplicate {
                    self.analyser.spans.gap(p.max(self.known_from), end);
                }
                return;
            }
            // Far behind the analysis: the timestamps were reset (a new
            // source). End what was sounding and go on from the head; audio
            // of the old numbering still played out maps far off and is
            // masked as unknown.
            // The old numbering's timestamps analysed last — back to where it
            // last jumped ahead, at most the span history — are retired.
            let (old_ts, _) = self.head.expect("a head");
            let back = (old_ts.wrapping_sub(ts) as u64).min(self.history) as u32;
            let mut start = old_ts.wrapping_sub(back);
            if let Some(l) = self.landed.take()
                && (l.wrapping_sub(start) as i32) > 0
                && (old_ts.wrapping_sub(l) as i32) > 0
            {
                start = l;
            }
            self.retired = Some((start, old_ts));
            self.fill_gap(h, h + self.flush, on_event);
            h += self.flush;
            self.head = Some((ts, h));
            (p, end) = (h, h + frame.len() as u64);
        }
        if p < h && !duplicate {
            // Partly over audio analysed already: that part is unknown.
            self.analyser.spans.gap(p.max(self.known_from), h);
        }
        let new = if p < h { &frame[(h - p) as usize..] } else { frame };
        if p > h {
            if p - h > self.max_gap {
                self.landed = Some(ts);
            }
            self.fill_gap(h, p, on_event);
        }
        self.analyser.feed(new, Bounds { floor: 0, reach: self.depth }, on_event);
        self.head = Some((ts.wrapping_add(frame.len() as u32), end));
        self.mask_retired(ts, frame.len() as u32);
        let forgotten = self.analyser.spans.evict(end.saturating_sub(self.history));
        self.known_from = self.known_from.max(forgotten).max(end.saturating_sub(self.history));
    }

    /// Masks the part of a packet (`len` samples from timestamp `ts`, just
    /// analysed) that lies on retired timestamps; forgets them once passed.
    fn mask_retired(&mut self, ts: u32, len: u32) {
        let Some((a, b)) = self.retired else { return };
        let e = ts.wrapping_add(len);
        let lo = if (ts.wrapping_sub(a) as i32) > 0 { ts } else { a };
        let hi = if (e.wrapping_sub(b) as i32) < 0 { e } else { b };
        if (hi.wrapping_sub(lo) as i32) > 0
            && let (Some(pl), Some(ph)) = (self.position(lo), self.position(hi))
        {
            self.analyser.spans.gap(pl, ph);
        }
        if (e.wrapping_sub(b) as i32) >= 0 {
            self.retired = None;
        }
    }

    /// Audio `[from, to)` never arrived: analysed as silence, masked at playout.
    fn fill_gap<F: FnMut(MaskerEvent)>(&mut self, from: u64, to: u64, on_event: &mut F) {
        self.analyser.spans.gap(from, to);
        let gap = to - from;
        let filled = if gap <= self.max_gap { gap } else { self.flush };
        const ZEROS: [i16; PIECE] = [0; PIECE];
        let mut left = filled;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            self.analyser.feed_linear(&ZEROS[..n], Bounds { floor: 0, reach: self.depth }, on_event);
            left -= n as u64;
        }
        // After a long gap the analysis jumps to `to`.
        self.analyser.offset += gap - filled;
    }

    /// [`TwoPhaseMasker::mask`] without the frame type check.
    pub(crate) fn mask_frame<C: Sample>(&mut self, frame: &mut [C], ts: u32) {
        let n = frame.len() as u64;
        let Some(p) = self.position(ts) else {
            // Nothing analysed yet: nothing is known.
            replace_into(&self.replacer, self.encoding, frame, 0);
            return;
        };
        let (_, head) = self.head.expect("position() found a head");
        let known_from = self.known_from;
        let mut pos = p;
        let end = p + n;
        while pos < end {
            let (masked, until) = if pos < known_from {
                (true, known_from.min(end))
            } else if pos >= head {
                (true, end)
            } else {
                self.analyser.spans.segment(pos, end.min(head))
            };
            let range = (pos - p) as usize..(until - p) as usize;
            if masked {
                // Replacements are keyed by the position in the stream as
                // the host numbers it from its first packet.
                replace_into(&self.replacer, self.encoding, &mut frame[range], pos.wrapping_sub(ORIGIN));
            } else {
                observe(&mut self.replacer, self.encoding, &frame[range]);
            }
            pos = until;
        }
    }
}
