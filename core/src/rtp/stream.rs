//! One RTP stream scrubbed in place: G.711 payloads (PT 0, 8) through the
//! audio masker, telephone-events dropped or neutralised, and every key
//! press reported once whether it came in band, as events, or both.

use super::CLOCK_HZ;
use super::event::{EventKey, EventTracker, TelephoneEvent, neutralise};
use super::header::RtpError;
use super::header::RtpHeader;
use crate::codec::Encoding;
use crate::dtmf::{DetectorEvent, Key};
use crate::mask::{ConfigError, MaskedSpan, Masker, MaskerConfig, MaskerEvent, MaskerKind, TwoPhaseMasker};

/// Static payload type of G.711 μ-law (RFC 3551).
pub const PT_PCMU: u8 = 0;
/// Static payload type of G.711 A-law.
pub const PT_PCMA: u8 = 8;
/// Static payload type of comfort noise (RFC 3389): a level, no audio.
pub const PT_CN: u8 = 13;
/// The usual dynamic payload type of telephone-events.
pub const DEFAULT_EVENT_PT: u8 = 101;
/// The event code that neutralised events carry by default: `D` (15), a
/// key no card field accepts and consumer keypads lack.
pub const DEFAULT_FIXED_EVENT: u8 = 15;

/// What happens to telephone-event packets toward the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// Dropped; later packets' sequence numbers close the gap, so the
    /// receiver sees no loss.
    Drop,
    /// Forwarded with every event code rewritten to this one (timing,
    /// volume and end bits kept): every key looks the same.
    Neutralise(u8),
}

impl EventAction {
    /// `drop`, or `neutralise` (to [`DEFAULT_FIXED_EVENT`]).
    pub fn from_name(name: &str) -> Option<EventAction> {
        match name {
            "drop" => Some(EventAction::Drop),
            "neutralise" | "neutralize" => Some(EventAction::Neutralise(DEFAULT_FIXED_EVENT)),
            _ => None,
        }
    }
}

/// Settings of one RTP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpStreamConfig {
    /// Masker settings for the G.711 payloads (`encoding` and
    /// `sample_rate` are set per payload type: 8000 Hz μ-law or A-law).
    pub masker: MaskerConfig,
    /// The dynamic payload type negotiated for telephone-events.
    pub event_payload_type: u8,
    /// What to do with telephone-event packets.
    pub event_action: EventAction,
}

impl Default for RtpStreamConfig {
    fn default() -> Self {
        RtpStreamConfig {
            masker: MaskerConfig::default(),
            event_payload_type: DEFAULT_EVENT_PT,
            event_action: EventAction::Neutralise(DEFAULT_FIXED_EVENT),
        }
    }
}

/// Where a key press was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Tones in the G.711 audio.
    InBand,
    /// RFC 4733 telephone-events.
    Event,
}

/// A key press of the stream, reported once (the second sighting of the
/// same press from the other source is dropped). Positions are samples of
/// the stream's clock. For capture: never print its key (`Debug` does not).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    /// The key.
    pub key: Key,
    /// Where it was seen first.
    pub source: KeySource,
    /// First sample.
    pub start: u64,
    /// One past the last sample.
    pub end: u64,
}

impl KeySource {
    /// `in-band` or `telephone-event`, as the tools print it.
    pub fn name(self) -> &'static str {
        match self {
            KeySource::InBand => "in-band",
            KeySource::Event => "telephone-event",
        }
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamKey")
            .field("key", &"(hidden)")
            .field("source", &self.source)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish()
    }
}

/// What a stream reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    /// A span of G.711 audio is (or will be) masked.
    Masked(MaskedSpan),
    /// A key press ended (deduplicated across sources).
    Key(StreamKey),
}

/// What to do with a packet once [`RtpStream`] has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on (it may have been rewritten in place).
    Forward,
    /// Do not send it (a dropped telephone-event).
    Drop,
    /// Its payload type is neither G.711, comfort noise nor the event type:
    /// cardveil cannot inspect it. Zero leak means not forwarding it (later
    /// sequence numbers are renumbered as for a drop) — or, on a stream set
    /// to [`RtpStream::keep_unknown_blanked`], keeping it with its payload zeroed.
    Unknown(u8),
}

/// Presses remembered for deduplication.
const RECENT: usize = 4;
/// Consecutive, continuous packets a new SSRC must send before a
/// delay-line stream follows it (one stray packet cannot take over).
const SSRC_TAKEOVER: u8 = 3;
/// A timestamp further behind the expected one than this is a reset
/// (a new numbering), not a duplicate: 1 s at 8 kHz.
const MAX_BEHIND: i32 = 8000;

/// The audio source a delay-line stream follows: its SSRC and the RTP
/// timestamp of the next sample expected from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    ssrc: u32,
    next: u32,
}
/// Two sightings of a key overlapping within this many ms are one press.
const SAME_PRESS_SLACK_MS: u64 = 30;

fn law(pt: u8) -> Option<Encoding> {
    match pt {
        PT_PCMU => Some(Encoding::Ulaw),
        PT_PCMA => Some(Encoding::Alaw),
        _ => None,
    }
}

/// One RTP stream (one SSRC, one direction), scrubbed in place.
///
/// Delay-line streams (`RtpStream<Masker>`, [`RtpStream::new`]) take each
/// packet once in [`RtpStream::process`]: the audio leaves delayed by the
/// look-ahead. Two-phase streams (`RtpStream<TwoPhaseMasker>`,
/// [`RtpStream::new_two_phase`]) see each packet in [`RtpStream::analyse`]
/// on arrival and [`RtpStream::playout`] when it is sent, with a buffer at
/// least the look-ahead deep in between: nothing is delayed. The type says
/// which calls a stream takes:
///
/// ```compile_fail
/// use cardveil_core::rtp::{RtpStream, RtpStreamConfig};
/// let mut s = RtpStream::new_two_phase(RtpStreamConfig::default()).unwrap();
/// s.process(&mut [0x80; 172], &mut |_| {}); // a two-phase stream has no `process`
/// ```
///
/// All memory is allocated in the constructors; packets never allocate,
/// lock or block.
#[derive(Debug)]
pub struct RtpStream<A: MaskerKind = Masker> {
    /// The masker (one, switched between the G.711 laws if the stream's
    /// payload type changes).
    audio: A,
    event_pt: u8,
    action: EventAction,
    tracker: EventTracker,
    /// Packets not forwarded so far (sequence numbers shift down by this).
    dropped: u16,
    /// RTP timestamp and stream position of the end of the newest audio,
    /// to place events on the audio's clock.
    anchor: Option<(u32, u64)>,
    presses: Presses,
    /// The source followed (delay-line streams), and a new SSRC with the
    /// continuous packets it has sent so far.
    source: Option<Source>,
    challenger: Option<(Source, u8)>,
    /// Whether packets of payload types cardveil cannot inspect stay in
    /// the stream with their payload zeroed (see [`RtpStream::keep_unknown_blanked`]).
    keep_unknown: bool,
}

impl RtpStream<Masker> {
    /// A delay-line stream.
    ///
    /// # Errors
    /// The masker's configuration errors (look-ahead too long).
    pub fn new(config: RtpStreamConfig) -> Result<RtpStream<Masker>, ConfigError> {
        RtpStream::with(config)
    }

    /// Scrubs one packet in place (delay-line streams): G.711 payloads are
    /// masked (delayed by the look-ahead), events rewritten or dropped,
    /// sequence numbers renumbered over dropped events.
    ///
    /// The delay line takes audio in arrival order, so audio that does not
    /// continue the stream is dropped before it reaches the masker: a
    /// packet of the followed SSRC whose timestamps were sent already (a
    /// duplicate, a late or an injected packet), and packets of another
    /// SSRC until it has sent a few continuous packets in a row.
    ///
    /// # Errors
    /// [`RtpError`] if the packet is not RTP (forward nothing).
    pub fn process(&mut self, packet: &mut [u8], on: &mut dyn FnMut(StreamEvent)) -> Result<Verdict, RtpError> {
        let h = RtpHeader::parse(packet)?;
        if let Some(l) = law(h.payload_type) {
            if !admit(&mut self.source, &mut self.challenger, &h) {
                return Ok(self.renumber(packet, &h, Verdict::Drop));
            }
            let m = &mut self.audio;
            m.switch_law(l);
            m.process_frame(h.payload_mut(packet), &mut self.presses.in_band(on));
            self.anchor = Some((h.timestamp.wrapping_add(h.payload_len as u32), m.position()));
            return Ok(self.renumber(packet, &h, Verdict::Forward));
        }
        let verdict = self.other(packet, &h, on);
        Ok(self.renumber(packet, &h, verdict))
    }

    /// Event, comfort-noise and unknown packets of a delay-line stream.
    fn other(&mut self, packet: &mut [u8], h: &RtpHeader, on: &mut dyn FnMut(StreamEvent)) -> Verdict {
        if h.payload_type == self.event_pt {
            self.track(h, packet, on);
            self.rewrite(h, packet)
        } else {
            plain(h.payload_type)
        }
    }
}

impl RtpStream<TwoPhaseMasker> {
    /// A two-phase stream (see [`TwoPhaseMasker`]; `lookahead_ms` is the
    /// depth of the host's buffer between analyse and playout).
    ///
    /// # Errors
    /// The masker's configuration errors.
    pub fn new_two_phase(config: RtpStreamConfig) -> Result<RtpStream<TwoPhaseMasker>, ConfigError> {
        RtpStream::with(config)
    }

    /// Analyses an arriving packet (two-phase streams): keys and spans are
    /// reported here; nothing is changed.
    ///
    /// # Errors
    /// [`RtpError`] if the packet is not RTP.
    pub fn analyse(&mut self, packet: &[u8], on: &mut dyn FnMut(StreamEvent)) -> Result<(), RtpError> {
        let h = RtpHeader::parse(packet)?;
        if let Some(l) = law(h.payload_type) {
            let m = &mut self.audio;
            m.switch_law(l);
            let before = m.analysed();
            m.analyse_frame(h.payload(packet), h.timestamp, &mut self.presses.in_band(on));
            if m.analysed() != before || self.anchor.is_none() {
                self.anchor = Some((h.timestamp.wrapping_add(h.payload_len as u32), m.analysed()));
            }
        } else if h.payload_type == self.event_pt {
            self.track(&h, packet, on);
        }
        Ok(())
    }

    /// Scrubs a packet in place at playout (two-phase streams): G.711
    /// payloads masked where the analysis found tones (or never saw the
    /// audio), events rewritten or dropped, sequence numbers renumbered.
    ///
    /// # Errors
    /// [`RtpError`] if the packet is not RTP.
    pub fn playout(&mut self, packet: &mut [u8]) -> Result<Verdict, RtpError> {
        let h = RtpHeader::parse(packet)?;
        let verdict = if let Some(l) = law(h.payload_type) {
            let m = &mut self.audio;
            m.switch_law(l);
            m.mask_frame(h.payload_mut(packet), h.timestamp);
            Verdict::Forward
        } else if h.payload_type == self.event_pt {
            self.rewrite(&h, packet)
        } else {
            plain(h.payload_type)
        };
        Ok(self.renumber(packet, &h, verdict))
    }
}

impl<A: MaskerKind> RtpStream<A> {
    fn with(config: RtpStreamConfig) -> Result<RtpStream<A>, ConfigError> {
        Ok(RtpStream {
            audio: A::build(ulaw(config.masker))?,
            event_pt: config.event_payload_type & 0x7F,
            action: config.event_action,
            tracker: EventTracker::new(),
            dropped: 0,
            anchor: None,
            presses: Presses { recent: [None; RECENT], next: 0, slack: SAME_PRESS_SLACK_MS * CLOCK_HZ as u64 / 1000 },
            source: None,
            challenger: None,
            keep_unknown: false,
        })
    }

    /// From now on a packet of a payload type cardveil cannot inspect
    /// ([`Verdict::Unknown`]) keeps its place — its payload zeroed in place,
    /// its sequence number in line with the forwarded ones — instead of
    /// leaving the stream; for a capture, whose records stay where they are.
    pub fn keep_unknown_blanked(&mut self) {
        self.keep_unknown = true;
    }

    /// Replaces masked audio with `mode` from the next packet on (a media
    /// proxy told to change the replacement mid-call; masking itself stays
    /// on). No allocation.
    pub fn set_mask_mode(&mut self, mode: crate::mask::MaskMode) {
        self.audio.replace_with(mode);
    }

    /// Treats telephone-event packets with `action` from the next one on.
    pub fn set_event_action(&mut self, action: EventAction) {
        self.action = action;
    }

    /// Samples of the stream's audio clock reached so far (the clock of the
    /// events' positions; 0 before the first packet).
    pub fn position(&self) -> u64 {
        self.anchor.map_or(0, |(_, pos)| pos)
    }

    /// Ends the stream: reports the key still sounding and pending spans.
    pub fn finish(&mut self, on: &mut dyn FnMut(StreamEvent)) {
        self.audio.end(&mut self.presses.in_band(on));
    }

    fn track(&mut self, h: &RtpHeader, packet: &[u8], on: &mut dyn FnMut(StreamEvent)) {
        let Some(e) = TelephoneEvent::parse(h.payload(packet)) else { return };
        let anchor = *self.anchor.get_or_insert((h.timestamp, 0));
        let presses = &mut self.presses;
        self.tracker.packet(h.timestamp, &e, |k| {
            if let EventKey::Up { key, timestamp, duration, .. } = k {
                let start = (anchor.1 as i64 + timestamp.wrapping_sub(anchor.0) as i32 as i64).max(0) as u64;
                presses.press(key, KeySource::Event, start, start + duration as u64, on);
            }
        });
    }

    fn rewrite(&mut self, h: &RtpHeader, packet: &mut [u8]) -> Verdict {
        match self.action {
            EventAction::Drop => Verdict::Drop,
            EventAction::Neutralise(code) => {
                neutralise(h.payload_mut(packet), code);
                Verdict::Forward
            }
        }
    }

    /// Sequence numbers of forwarded packets close the gaps of the ones not
    /// forwarded (dropped events, payloads that cannot be inspected).
    fn renumber(&mut self, packet: &mut [u8], h: &RtpHeader, verdict: Verdict) -> Verdict {
        if let Verdict::Unknown(_) = verdict
            && self.keep_unknown
        {
            h.payload_mut(packet).fill(0);
        }
        match verdict {
            Verdict::Drop => self.dropped = self.dropped.wrapping_add(1),
            Verdict::Unknown(_) if !self.keep_unknown => self.dropped = self.dropped.wrapping_add(1),
            _ if self.dropped != 0 => {
                packet[2..4].copy_from_slice(&h.sequence.wrapping_sub(self.dropped).to_be_bytes());
            }
            _ => {}
        }
        verdict
    }
}

/// The stream's recent key presses, from either source: each press is
/// reported once (the second sighting of the same press is dropped).
#[derive(Debug)]
struct Presses {
    recent: [Option<(Key, u64, u64)>; RECENT],
    next: usize,
    slack: u64,
}

impl Presses {
    /// The masker's event sink: spans pass straight through, in-band key
    /// presses once.
    fn in_band<'a>(&'a mut self, on: &'a mut dyn FnMut(StreamEvent)) -> impl FnMut(MaskerEvent) + 'a {
        move |e| match e {
            MaskerEvent::Masked(s) => on(StreamEvent::Masked(s)),
            MaskerEvent::Key(DetectorEvent::Up(p)) => self.press(p.key, KeySource::InBand, p.start, p.end, on),
            MaskerEvent::Key(_) => {}
        }
    }

    /// Reports a press unless the other source reported the same one.
    fn press(&mut self, key: Key, source: KeySource, start: u64, end: u64, on: &mut dyn FnMut(StreamEvent)) {
        let s = self.slack;
        let seen = self.recent.iter().flatten().any(|&(k, a, b)| k == key && start < b + s && a < end + s);
        if seen {
            return;
        }
        self.recent[self.next] = Some((key, start, end));
        self.next = (self.next + 1) % RECENT;
        on(StreamEvent::Key(StreamKey { key, source, start, end }));
    }
}

/// Whether a delay-line stream's G.711 packet continues the audio it
/// follows (see [`RtpStream::process`]); moves the expected timestamp on.
fn admit(source: &mut Option<Source>, challenger: &mut Option<(Source, u8)>, h: &RtpHeader) -> bool {
    let next = h.timestamp.wrapping_add(h.payload_len as u32);
    let Some(s) = source else {
        *source = Some(Source { ssrc: h.ssrc, next });
        return true;
    };
    if h.ssrc == s.ssrc {
        let behind = h.timestamp.wrapping_sub(s.next) as i32;
        if behind >= 0 {
            // On time, or after a gap (loss, silence suppression).
            *challenger = None;
            s.next = next;
            return true;
        }
        if behind >= -MAX_BEHIND {
            return false; // its place was played out already
        }
        // Far behind: a new numbering of the same source, followed only
        // once it goes on (as a new SSRC is).
    }
    let count = match challenger {
        Some((c, n)) if c.ssrc == h.ssrc && c.next == h.timestamp => *n + 1,
        _ => 1,
    };
    if count >= SSRC_TAKEOVER {
        *source = Some(Source { ssrc: h.ssrc, next });
        *challenger = None;
        return true;
    }
    *challenger = Some((Source { ssrc: h.ssrc, next }, count));
    false
}

/// Comfort noise passes; anything else is unknown.
fn plain(pt: u8) -> Verdict {
    if pt == PT_CN { Verdict::Forward } else { Verdict::Unknown(pt) }
}

/// A stream's masker settings: 8000 Hz G.711 (μ-law until an A-law packet comes).
fn ulaw(m: MaskerConfig) -> MaskerConfig {
    MaskerConfig { sample_rate: 8000, encoding: Encoding::Ulaw, ..m }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ulaw;
    use crate::dtmf::{Detector, DetectorConfig, ToneGenerator, amplitude_for_dbm0};

    /// μ-law audio of `keys`, 60 ms on / 60 ms off after 300 ms of quiet,
    /// and where each tone starts and ends (samples).
    fn keyed(keys: &str) -> (Vec<u8>, Vec<(Key, usize, usize)>) {
        let mut x = vec![0i16; 2400];
        let mut at = Vec::new();
        for ch in keys.chars() {
            let key = Key::from_char(ch).unwrap();
            let (lo, hi) = key.frequencies();
            let a = amplitude_for_dbm0(-10.0);
            let mut g = ToneGenerator::new(8000, [lo, hi], [a, a], [0.0, 0.0]);
            let start = x.len();
            x.resize(start + 480, 0);
            g.fill(&mut x[start..]);
            at.push((key, start, start + 480));
            x.resize(x.len() + 480, 0);
        }
        x.resize(x.len() + 2400, 0);
        (x.iter().map(|&s| ulaw::encode(s)).collect(), at)
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// The packets of a call keying `keys`: 20 ms μ-law packets and, if
    /// `events`, the RFC 4733 packets of each key (start, 2 updates, 3 ends)
    /// interleaved where a sender would put them.
    fn packets(keys: &str, events: bool) -> Vec<Vec<u8>> {
        let (audio, at) = keyed(keys);
        let ts0 = 4_294_960_000u32; // wraps during the call
        let mut out = Vec::new();
        let mut seq = 65_500u16;
        for (i, chunk) in audio.chunks(160).enumerate() {
            let t = (i * 160) as u32;
            out.push(rtp(PT_PCMU, seq, ts0.wrapping_add(t), chunk));
            seq = seq.wrapping_add(1);
            for &(key, start, end) in at.iter().filter(|_| events) {
                let code = b"0123456789*#ABCD".iter().position(|&c| c as char == key.as_char()).unwrap() as u8;
                let ts = ts0.wrapping_add(start as u32);
                let pkt_end = t as usize + 160;
                let mut send = |end_bit: bool, dur: u16| {
                    let e = [code, if end_bit { 0x8A } else { 0x0A }, (dur >> 8) as u8, dur as u8];
                    out.push(rtp(DEFAULT_EVENT_PT, seq, ts, &e));
                    seq = seq.wrapping_add(1);
                };
                if pkt_end > start && pkt_end <= end {
                    send(false, (pkt_end - start) as u16);
                } else if pkt_end > end && pkt_end - end <= 160 {
                    for _ in 0..3 {
                        send(true, (end - start) as u16);
                    }
                }
            }
        }
        out
    }

    fn keys_in(audio: &[u8]) -> usize {
        let pcm: Vec<i16> = audio.iter().map(|&c| ulaw::decode(c)).collect();
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let mut n = 0;
        d.process(&pcm, |e| n += matches!(e, DetectorEvent::Up(_)) as usize);
        d.finish(|e| n += matches!(e, DetectorEvent::Up(_)) as usize);
        n
    }

    fn payload_of(p: &[u8]) -> &[u8] {
        RtpHeader::parse(p).unwrap().payload(p)
    }

    const PAN: &str = "4111111111111111";

    #[test]
    fn in_band_keys_are_masked_and_reported_once_each() {
        for events in [false, true] {
            let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
            let mut keys = Vec::new();
            let mut out_audio = Vec::new();
            let mut event_codes = Vec::new();
            let mut seqs = Vec::new();
            for mut p in packets(PAN, events) {
                let v = s
                    .process(&mut p, &mut |e| {
                        if let StreamEvent::Key(k) = e {
                            keys.push(k)
                        }
                    })
                    .unwrap();
                assert_eq!(v, Verdict::Forward);
                let h = RtpHeader::parse(&p).unwrap();
                seqs.push(h.sequence);
                match h.payload_type {
                    PT_PCMU => out_audio.extend_from_slice(payload_of(&p)),
                    _ => event_codes.push(payload_of(&p)[0]),
                }
            }
            s.finish(&mut |e| {
                if let StreamEvent::Key(k) = e {
                    keys.push(k)
                }
            });
            let got: String = keys.iter().map(|k| k.key.as_char()).collect();
            assert_eq!(got, PAN, "events: {events}");
            if events {
                assert!(keys.iter().any(|k| k.source == KeySource::Event));
                assert_eq!(event_codes.len(), 16 * 6);
                assert!(event_codes.iter().all(|&c| c == DEFAULT_FIXED_EVENT));
            }
            assert_eq!(keys_in(&out_audio), 0);
            // Sequence numbers untouched when nothing is dropped.
            assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        }
    }

    #[test]
    fn the_replacement_and_the_event_action_change_mid_stream() {
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let all = packets(PAN, true);
        let half = all.len() / 2;
        let (mut tone_payloads, mut codes, mut verdicts) = (0usize, Vec::new(), Vec::new());
        for (i, mut p) in all.into_iter().enumerate() {
            if i == half {
                s.set_mask_mode(crate::mask::MaskMode::Tone);
                s.set_event_action(EventAction::Drop);
            }
            let v = s.process(&mut p, &mut |_| {}).unwrap();
            let h = RtpHeader::parse(&p).unwrap();
            if h.payload_type == DEFAULT_EVENT_PT {
                verdicts.push((i >= half, v));
                codes.push(payload_of(&p)[0]);
            } else if i >= half && payload_of(&p).iter().any(|&c| c != ulaw::encode(0)) {
                tone_payloads += 1;
            }
        }
        // Before the switch events were neutralised and forwarded, after it dropped.
        assert!(verdicts.iter().all(|&(after, v)| v == if after { Verdict::Drop } else { Verdict::Forward }));
        assert!(verdicts.iter().any(|&(after, _)| after) && verdicts.iter().any(|&(after, _)| !after));
        assert!(codes.iter().zip(&verdicts).all(|(&c, &(after, _))| after || c == DEFAULT_FIXED_EVENT));
        // The keys of the second half are masked with the flat tone: audible, not digital silence.
        assert!(tone_payloads > 10, "{tone_payloads} packets carry the flat tone");
    }

    #[test]
    fn a_capture_fed_from_both_sources_sees_each_digit_once() {
        use crate::capture::{Brand, Capture, CaptureConfig, CaptureEvent, Field};
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let mut capture = Capture::new(CaptureConfig::standard(8000, (2026, 11)));
        capture.begin(0);
        let keyed = format!("{PAN}#");
        for mut p in packets(&keyed, true) {
            s.process(&mut p, &mut |e| {
                if let StreamEvent::Key(k) = e {
                    capture.key(k.key, k.end)
                }
            })
            .unwrap();
        }
        let events: Vec<_> = std::iter::from_fn(|| capture.poll()).collect();
        let digits = events.iter().filter(|e| matches!(e, CaptureEvent::Digit { .. })).count();
        assert_eq!(digits, PAN.len(), "{events:?}");
        assert!(events.contains(&CaptureEvent::Valid {
            field: Field::Pan,
            digits: 16,
            brand: Some(Brand::Visa),
            last4: Some(*b"1111")
        }));
    }

    #[test]
    fn a_stream_switching_from_ulaw_to_alaw_stays_masked() {
        use crate::codec::alaw;
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let (audio, _) = keyed(PAN);
        let pcm: Vec<i16> = audio.iter().map(|&c| ulaw::decode(c)).collect();
        let half = pcm.len() / 160 / 2;
        let mut keys = String::new();
        let mut out = Vec::new();
        for (i, chunk) in pcm.chunks(160).enumerate() {
            let (pt, codes): (u8, Vec<u8>) = if i < half {
                (PT_PCMU, chunk.iter().map(|&x| ulaw::encode(x)).collect())
            } else {
                (PT_PCMA, chunk.iter().map(|&x| alaw::encode(x)).collect())
            };
            let mut p = rtp(pt, i as u16, (i * 160) as u32, &codes);
            s.process(&mut p, &mut |e| {
                if let StreamEvent::Key(k) = e {
                    keys.push(k.key.as_char())
                }
            })
            .unwrap();
            let dec = |c: &u8| if pt == PT_PCMU { ulaw::decode(*c) } else { alaw::decode(*c) };
            out.extend(payload_of(&p).iter().map(dec));
        }
        assert_eq!(keys, PAN, "keys on both sides of the switch");
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let mut n = 0;
        d.process(&out, |e| n += matches!(e, DetectorEvent::Up(_)) as usize);
        assert_eq!(n, 0);
        // The delayed audio crossing the switch was transcoded, not replayed as the old law.
        assert!(out[half * 160..half * 160 + 160].iter().all(|&x| x.abs() < 100));
    }

    #[test]
    fn dropped_events_leave_no_gap_in_the_sequence() {
        let config = RtpStreamConfig { event_action: EventAction::Drop, ..RtpStreamConfig::default() };
        let mut s = RtpStream::new(config).unwrap();
        let mut forwarded = Vec::new();
        let mut dropped = 0;
        let mut keys = 0;
        for mut p in packets("1234", true) {
            match s.process(&mut p, &mut |e| keys += matches!(e, StreamEvent::Key(_)) as usize).unwrap() {
                Verdict::Forward => forwarded.push(p),
                Verdict::Drop => dropped += 1,
                v => panic!("{v:?}"),
            }
        }
        assert_eq!(dropped, 4 * 6);
        assert_eq!(keys, 4);
        let seqs: Vec<u16> = forwarded.iter().map(|p| RtpHeader::parse(p).unwrap().sequence).collect();
        assert_eq!(seqs[0], 65_500);
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "{seqs:?}");
        assert!(forwarded.iter().all(|p| RtpHeader::parse(p).unwrap().payload_type == PT_PCMU));
    }

    #[test]
    fn a_lost_end_and_an_end_only_event_in_one_packet_are_both_reported() {
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let mut keys = String::new();
        let mut on = |e: StreamEvent| {
            if let StreamEvent::Key(k) = e {
                keys.push(k.key.as_char())
            }
        };
        // '3' starts, its end is lost; '7' arrives as an end packet only.
        let mut a = rtp(DEFAULT_EVENT_PT, 1, 8000, &[3, 0x0A, 0x01, 0x40]);
        let mut b = rtp(DEFAULT_EVENT_PT, 2, 9600, &[7, 0x8A, 0x02, 0x80]);
        s.process(&mut a, &mut on).unwrap();
        s.process(&mut b, &mut on).unwrap();
        assert_eq!(keys, "37");
    }

    #[test]
    fn a_key_press_does_not_show_its_key_in_debug_output() {
        let k = StreamKey { key: Key::from_char('7').unwrap(), source: KeySource::Event, start: 1, end: 2 };
        let text = format!("{k:?} {:?}", StreamEvent::Key(k));
        assert!(!text.contains('7') && !text.contains("D7"), "{text}");
    }

    #[test]
    fn events_alone_are_reported_and_neutralised() {
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let mut keys = Vec::new();
        for mut p in packets("59#", true).into_iter().filter(|p| p[1] & 0x7F == DEFAULT_EVENT_PT) {
            assert_eq!(s.process(&mut p, &mut |e| keys.push(e)).unwrap(), Verdict::Forward);
            assert_eq!(payload_of(&p)[0], DEFAULT_FIXED_EVENT);
        }
        let got: String = keys
            .iter()
            .map(|e| match e {
                StreamEvent::Key(k) if k.source == KeySource::Event => k.key.as_char(),
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(got, "59#");
    }

    #[test]
    fn two_phase_masks_at_playout_without_delay() {
        let mut s = RtpStream::new_two_phase(RtpStreamConfig::default()).unwrap();
        let input = packets(PAN, true);
        let mut out = input.clone();
        let mut keys = 0;
        // Playout three packets behind the analysis (≥ 40 ms of audio).
        for i in 0..input.len() + 3 {
            if let Some(p) = input.get(i) {
                s.analyse(p, &mut |e| keys += matches!(e, StreamEvent::Key(_)) as usize).unwrap();
            }
            if i >= 3 {
                assert_eq!(s.playout(&mut out[i - 3]).unwrap(), Verdict::Forward);
            }
        }
        assert_eq!(keys, 16);
        let audio = |ps: &[Vec<u8>]| -> Vec<u8> {
            ps.iter().filter(|p| p[1] & 0x7F == PT_PCMU).flat_map(|p| payload_of(p).to_vec()).collect()
        };
        let (a_in, a_out) = (audio(&input), audio(&out));
        assert_eq!(keys_in(&a_in), 16);
        assert_eq!(keys_in(&a_out), 0);
        // Not delayed: the quiet start is unchanged in place.
        assert_eq!(a_out[..2000], a_in[..2000]);
        // The wrong API is refused: by the type (see `RtpStream`'s
        // compile_fail example).
    }

    #[test]
    fn other_payloads_and_malformed_packets() {
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let mut cn = rtp(PT_CN, 1, 0, &[40]);
        assert_eq!(s.process(&mut cn, &mut |_| {}).unwrap(), Verdict::Forward);
        let mut g722 = rtp(9, 2, 160, &[0; 160]);
        assert_eq!(s.process(&mut g722, &mut |_| {}).unwrap(), Verdict::Unknown(9));
        assert!(matches!(s.process(&mut [0x80, 0], &mut |_| {}), Err(RtpError::TooShort(2))));
        // A-law packets go through the A-law masker.
        let mut alaw = rtp(PT_PCMA, 3, 320, &[0xD5; 160]);
        assert_eq!(s.process(&mut alaw, &mut |_| {}).unwrap(), Verdict::Forward);
        assert_eq!(EventAction::from_name("drop"), Some(EventAction::Drop));
        assert_eq!(EventAction::from_name("mute"), None);
    }

    fn with_ssrc(mut p: Vec<u8>, ssrc: u32) -> Vec<u8> {
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    #[test]
    fn a_delay_line_stream_follows_one_source_in_order() {
        let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
        let mut verdict = |p: Vec<u8>| s.process(&mut p.clone(), &mut |_| {}).unwrap();
        let quiet = [0xFFu8; 160];
        assert_eq!(verdict(rtp(PT_PCMU, 1, 1000, &quiet)), Verdict::Forward);
        // A duplicate, a one-sample packet on a place already sent, and a
        // late packet: dropped before the masker.
        assert_eq!(verdict(rtp(PT_PCMU, 1, 1000, &quiet)), Verdict::Drop);
        assert_eq!(verdict(rtp(PT_PCMU, 9, 1159, &quiet[..1])), Verdict::Drop);
        assert_eq!(verdict(rtp(PT_PCMU, 2, 1160, &quiet)), Verdict::Forward);
        assert_eq!(verdict(rtp(PT_PCMU, 0, 840, &quiet)), Verdict::Drop);
        // After a gap (loss, silence suppression) it goes on.
        assert_eq!(verdict(rtp(PT_PCMU, 5, 1960, &quiet)), Verdict::Forward);
        // Another SSRC: dropped until it has sent three continuous packets;
        // interleaved with the followed source, it never takes over.
        for i in 0..4u32 {
            assert_eq!(verdict(with_ssrc(rtp(PT_PCMU, 20, 50_000 + i, &quiet[..1]), 99)), Verdict::Drop);
            assert_eq!(verdict(rtp(PT_PCMU, 6, 2120 + 160 * i, &quiet)), Verdict::Forward);
        }
        for (i, want) in [Verdict::Drop, Verdict::Drop, Verdict::Forward, Verdict::Forward].into_iter().enumerate() {
            let p = with_ssrc(rtp(PT_PCMU, 30 + i as u16, 90_000 + 160 * i as u32, &quiet), 77);
            assert_eq!(verdict(p), want, "packet {i} of the new SSRC");
        }
        // The old one is now the stranger.
        assert_eq!(verdict(rtp(PT_PCMU, 10, 2760, &quiet)), Verdict::Drop);
        // Far behind (a new numbering of the same SSRC): followed once it goes on.
        let again = |i: u32| with_ssrc(rtp(PT_PCMU, 40, 10 + 160 * i, &quiet), 77);
        assert_eq!(
            (verdict(again(0)), verdict(again(1)), verdict(again(2))),
            (Verdict::Drop, Verdict::Drop, Verdict::Forward)
        );
    }

    #[test]
    fn interleaved_one_sample_packets_do_not_unmask_a_key() {
        let (audio, _) = keyed(PAN);
        for mode in 0..3 {
            let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
            let mut out = Vec::new();
            for (i, c) in audio.chunks(160).enumerate() {
                let ts = (i * 160) as u32;
                let extra = match mode {
                    0 => rtp(PT_PCMU, 0, ts + 160, &c[..1]),
                    1 => rtp(PT_PCMU, 0, ts + 159, &c[..1]),
                    _ => with_ssrc(rtp(PT_PCMU, 0, ts + 160, &c[..1]), 9),
                };
                for mut p in [rtp(PT_PCMU, 0, ts, c), extra] {
                    if s.process(&mut p, &mut |_| {}).unwrap() == Verdict::Forward {
                        out.extend_from_slice(payload_of(&p));
                    }
                }
            }
            assert_eq!(keys_in(&out), 0, "mode {mode}");
        }
    }

    #[test]
    fn a_capture_keeps_uninspectable_packets_blanked_in_line() {
        let mut s = RtpStream::new_two_phase(RtpStreamConfig::default()).unwrap();
        s.keep_unknown_blanked();
        let mut g722 = rtp(9, 7, 0, &[0x5A; 160]);
        s.analyse(&g722, &mut |_| {}).unwrap();
        assert_eq!(s.playout(&mut g722).unwrap(), Verdict::Unknown(9));
        assert!(payload_of(&g722).iter().all(|&b| b == 0), "payload zeroed");
        let mut next = rtp(PT_PCMU, 8, 160, &[0xFF; 160]);
        s.analyse(&next, &mut |_| {}).unwrap();
        assert_eq!(s.playout(&mut next).unwrap(), Verdict::Forward);
        assert_eq!(u16::from_be_bytes([next[2], next[3]]), 8, "not renumbered: the blanked packet kept its place");
    }

    #[test]
    fn two_phase_masks_other_audio_claiming_an_analysed_place() {
        let (audio, _) = keyed(PAN);
        let quiet = vec![0xFFu8; audio.len()];
        let mut s = RtpStream::new_two_phase(RtpStreamConfig::default()).unwrap();
        // A second source with the same timestamps: its keyed audio arrives
        // after the quiet audio of the first (and a true duplicate of that).
        let mut out = Vec::new();
        for (i, (q, k)) in quiet.chunks(160).zip(audio.chunks(160)).enumerate() {
            let ts = (i * 160) as u32;
            let (mut a, mut b, mut d) =
                (rtp(PT_PCMU, 0, ts, q), with_ssrc(rtp(PT_PCMU, 0, ts, k), 5), rtp(PT_PCMU, 0, ts, q));
            s.analyse(&a, &mut |_| {}).unwrap();
            s.analyse(&d, &mut |_| {}).unwrap();
            s.analyse(&b, &mut |_| {}).unwrap();
            for p in [&mut a, &mut d, &mut b] {
                assert_eq!(s.playout(p).unwrap(), Verdict::Forward);
            }
            out.extend_from_slice(payload_of(&b));
        }
        assert_eq!(keys_in(&audio), 16);
        assert_eq!(keys_in(&out), 0, "the second source's keys never pass");
        assert!(out.iter().all(|&c| c == 0xFF), "its place is masked (silence)");
    }

    #[test]
    fn two_phase_passes_true_duplicates_and_masks_a_copy_that_differs() {
        // Quiet audio that is not silence (masking would show as 0xFF).
        let audio: Vec<u8> = (0..8000u32).map(|i| 0xE0 | (i.wrapping_mul(2_654_435_761) >> 28) as u8).collect();
        for differs in [false, true] {
            let mut s = RtpStream::new_two_phase(RtpStreamConfig::default()).unwrap();
            let mut out = Vec::new();
            let packets: Vec<Vec<u8>> =
                audio.chunks(160).enumerate().map(|(i, c)| rtp(PT_PCMU, i as u16, (i * 160) as u32, c)).collect();
            let mut held = std::collections::VecDeque::new();
            for (i, p) in packets.iter().enumerate() {
                let mut copy = p.clone();
                if differs && i == 20 {
                    let last = copy.len() - 1;
                    copy[last] ^= 1;
                }
                s.analyse(p, &mut |_| {}).unwrap();
                s.analyse(&copy, &mut |_| {}).unwrap();
                held.push_back(p.clone());
                if held.len() > 3 {
                    let mut q = held.pop_front().unwrap();
                    assert_eq!(s.playout(&mut q).unwrap(), Verdict::Forward);
                    out.push(q);
                }
            }
            let changed: Vec<usize> =
                out.iter().zip(&packets).enumerate().filter(|(_, (o, p))| o != p).map(|(i, _)| i).collect();
            if differs {
                assert_eq!(changed, vec![20], "the place the differing copy claimed is masked, and only it");
                assert!(payload_of(&out[20]).iter().all(|&c| c == 0xFF));
            } else {
                assert!(changed.is_empty(), "true duplicates change nothing: {changed:?}");
            }
        }
    }
}
