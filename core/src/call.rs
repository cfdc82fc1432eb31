//! One call: two masked streams and a card capture.
//!
//! Both directions — caller → agent and agent → caller — go through their
//! own [`Masker`], so DTMF is always masked whichever side keys it. Keys the
//! caller presses also feed the [`Capture`] once the host begins one (say,
//! when the agent presses "take payment"); its timeouts run on the caller
//! stream's media time. This is the type the C ABI wraps.

use crate::Error;
use crate::capture::{Capture, CaptureConfig, CaptureEvent, CaptureState, Card};
use crate::dtmf::DetectorEvent;
use crate::mask::{MaskedSpan, Masker, MaskerConfig, MaskerEvent, TwoPhaseMasker};
use crate::rtp::{EventAction, RtpStream, RtpStreamConfig, StreamEvent, Verdict};

/// Which way audio flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the caller to the agent (the keys captured come from here).
    CallerToAgent,
    /// From the agent to the caller.
    AgentToCaller,
}

/// Call settings: both streams' masker and the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallConfig {
    /// Masker settings for both directions.
    pub masker: MaskerConfig,
    /// Capture settings.
    pub capture: CaptureConfig,
}

/// A call. All memory is allocated in [`Call::new`]; processing a frame
/// never allocates, locks or blocks.
#[derive(Debug)]
pub struct Call {
    legs: Legs,
    capture: Capture,
    capturing: bool,
}

/// The two directions' maskers: delay lines, two-phase (analyse on
/// arrival, mask at playout), or RTP streams (packets scrubbed in place).
#[derive(Debug)]
enum Legs {
    Delay { caller: Masker, agent: Masker },
    TwoPhase { caller: TwoPhaseMasker, agent: TwoPhaseMasker },
    Rtp { caller: Box<RtpStream>, agent: Box<RtpStream> },
}

/// One direction's masker, as `on_leg` hands it to a frame function.
enum Leg<'a> {
    Delay(&'a mut Masker),
    TwoPhase(&'a mut TwoPhaseMasker),
}

const DELAY_API: Error = Error::WrongApi("delay-line (process)");
const TWO_PHASE_API: Error = Error::WrongApi("two-phase (analyse/mask)");
const RTP_API: Error = Error::WrongApi("RTP (process_rtp)");

impl Call {
    /// A call with no capture running.
    pub fn new(config: CallConfig) -> Result<Call, Error> {
        let legs = Legs::Delay { caller: Masker::new(config.masker)?, agent: Masker::new(config.masker)? };
        Ok(Call { legs, capture: Capture::new(config.capture), capturing: false })
    }

    /// A call for hosts with a jitter buffer: each direction is analysed
    /// when a packet arrives ([`Call::analyse_pcm16`]) and masked at playout
    /// ([`Call::mask_pcm16`]), adding no delay when the buffer is at least
    /// [`crate::mask::ZERO_LEAK_LOOKAHEAD_MS`] deep (`config.masker.lookahead_ms`
    /// is that depth). Capture timeouts count the caller's analysed samples.
    pub fn new_two_phase(config: CallConfig) -> Result<Call, Error> {
        let legs =
            Legs::TwoPhase { caller: TwoPhaseMasker::new(config.masker)?, agent: TwoPhaseMasker::new(config.masker)? };
        Ok(Call { legs, capture: Capture::new(config.capture), capturing: false })
    }

    /// A call for hosts that hand over whole RTP packets
    /// ([`Call::process_rtp`]): G.711 payloads (PT 0 and 8, whatever
    /// `config.masker.encoding` says; 8000 Hz) masked in place behind the
    /// look-ahead, telephone-events of `event_payload_type` neutralised or
    /// dropped, and the caller's keys — in band or as events, each press
    /// once — feeding the capture (its timeouts count samples at 8000 Hz:
    /// build `config.capture` for that rate).
    ///
    /// # Errors
    /// The masker's configuration errors.
    pub fn new_rtp(config: CallConfig, event_payload_type: u8, event_action: EventAction) -> Result<Call, Error> {
        let stream = RtpStreamConfig { masker: config.masker, event_payload_type, event_action };
        let legs = Legs::Rtp { caller: Box::new(RtpStream::new(stream)?), agent: Box::new(RtpStream::new(stream)?) };
        Ok(Call { legs, capture: Capture::new(config.capture), capturing: false })
    }

    /// Scrubs one RTP packet of one direction in place (see
    /// [`Call::new_rtp`] and [`RtpStream::process`]), reporting this
    /// direction's masked spans; says whether to send it on.
    ///
    /// # Errors
    /// [`Error::Rtp`] if the packet is not RTP (it is left untouched);
    /// [`Error::WrongApi`] on a call not made by [`Call::new_rtp`].
    pub fn process_rtp(
        &mut self,
        direction: Direction,
        packet: &mut [u8],
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<Verdict, Error> {
        let Legs::Rtp { caller, agent } = &mut self.legs else { return Err(RTP_API) };
        match direction {
            Direction::AgentToCaller => agent.process(packet, &mut |e| {
                if let StreamEvent::Masked(s) = e {
                    spans(s)
                }
            }),
            Direction::CallerToAgent => {
                let (capture, capturing) = (&mut self.capture, self.capturing);
                let verdict = caller.process(packet, &mut |e| match e {
                    StreamEvent::Masked(s) => spans(s),
                    StreamEvent::Key(k) if capturing => capture.key(k.key, k.end),
                    StreamEvent::Key(_) => {}
                })?;
                self.tick();
                Ok(verdict)
            }
        }
    }

    /// Analyses an arriving PCM16 packet of one direction (`ts`: the RTP
    /// timestamp of its first sample), reporting masked spans; the caller's
    /// keys feed the capture.
    ///
    /// # Errors
    /// [`Error::WrongApi`] for a delay-line call; [`Error::WrongFrameType`] for G.711.
    pub fn analyse_pcm16(
        &mut self,
        direction: Direction,
        frame: &[i16],
        ts: u32,
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<(), Error> {
        self.on_leg(direction, spans, |leg, on| match leg {
            Leg::TwoPhase(m) => m.analyse_pcm16(frame, ts, on),
            Leg::Delay(_) => Err(DELAY_API),
        })
    }

    /// Analyses an arriving G.711 packet (see [`Call::analyse_pcm16`]).
    ///
    /// # Errors
    /// [`Error::WrongApi`] for a delay-line call; [`Error::WrongFrameType`] for PCM16.
    pub fn analyse_g711(
        &mut self,
        direction: Direction,
        frame: &[u8],
        ts: u32,
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<(), Error> {
        self.on_leg(direction, spans, |leg, on| match leg {
            Leg::TwoPhase(m) => m.analyse_g711(frame, ts, on),
            Leg::Delay(_) => Err(DELAY_API),
        })
    }

    /// Masks a PCM16 frame of one direction in place at playout.
    ///
    /// # Errors
    /// [`Error::WrongApi`] for a delay-line call; [`Error::WrongFrameType`] for G.711.
    pub fn mask_pcm16(&mut self, direction: Direction, frame: &mut [i16], ts: u32) -> Result<(), Error> {
        self.two_phase_leg(direction)?.mask_pcm16(frame, ts)
    }

    /// Masks a G.711 frame of one direction in place at playout.
    ///
    /// # Errors
    /// [`Error::WrongApi`] for a delay-line call; [`Error::WrongFrameType`] for PCM16.
    pub fn mask_g711(&mut self, direction: Direction, frame: &mut [u8], ts: u32) -> Result<(), Error> {
        self.two_phase_leg(direction)?.mask_g711(frame, ts)
    }

    fn two_phase_leg(&mut self, direction: Direction) -> Result<&mut TwoPhaseMasker, Error> {
        match (&mut self.legs, direction) {
            (Legs::TwoPhase { caller, .. }, Direction::CallerToAgent) => Ok(caller),
            (Legs::TwoPhase { agent, .. }, Direction::AgentToCaller) => Ok(agent),
            (Legs::Delay { .. }, _) => Err(DELAY_API),
            (Legs::Rtp { .. }, _) => Err(RTP_API),
        }
    }

    /// Whether the call uses the two-phase API.
    pub fn is_two_phase(&self) -> bool {
        matches!(self.legs, Legs::TwoPhase { .. })
    }

    /// Masks a PCM16 frame of one direction in place.
    ///
    /// # Errors
    /// [`Error::WrongFrameType`] if the call was set up for G.711.
    pub fn process_pcm16(&mut self, direction: Direction, frame: &mut [i16]) -> Result<(), Error> {
        self.on_leg(direction, &mut |_| {}, |leg, on| match leg {
            Leg::Delay(m) => m.process_pcm16(frame, on),
            Leg::TwoPhase(_) => Err(TWO_PHASE_API),
        })
    }

    /// [`Call::process_pcm16`], also reporting each masked span of this
    /// direction once it is final (positions in the direction's input).
    pub fn process_pcm16_spans(
        &mut self,
        direction: Direction,
        frame: &mut [i16],
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<(), Error> {
        self.on_leg(direction, spans, |leg, on| match leg {
            Leg::Delay(m) => m.process_pcm16(frame, on),
            Leg::TwoPhase(_) => Err(TWO_PHASE_API),
        })
    }

    /// [`Call::process_g711`], also reporting each masked span.
    pub fn process_g711_spans(
        &mut self,
        direction: Direction,
        frame: &mut [u8],
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<(), Error> {
        self.on_leg(direction, spans, |leg, on| match leg {
            Leg::Delay(m) => m.process_g711(frame, on),
            Leg::TwoPhase(_) => Err(TWO_PHASE_API),
        })
    }

    /// Masks a G.711 frame of one direction in place.
    ///
    /// # Errors
    /// [`Error::WrongFrameType`] if the call was set up for PCM16.
    pub fn process_g711(&mut self, direction: Direction, frame: &mut [u8]) -> Result<(), Error> {
        self.on_leg(direction, &mut |_| {}, |leg, on| match leg {
            Leg::Delay(m) => m.process_g711(frame, on),
            Leg::TwoPhase(_) => Err(TWO_PHASE_API),
        })
    }

    /// Runs `process` on one direction's masker: the caller's key presses
    /// feed the capture, whose timeouts then advance; the agent's are only
    /// masked.
    fn on_leg<P>(&mut self, direction: Direction, spans: &mut dyn FnMut(MaskedSpan), process: P) -> Result<(), Error>
    where
        P: FnOnce(Leg<'_>, &mut dyn FnMut(MaskerEvent)) -> Result<(), Error>,
    {
        let leg = match (&mut self.legs, direction) {
            (Legs::Rtp { .. }, _) => return Err(RTP_API),
            (Legs::Delay { caller, .. }, Direction::CallerToAgent) => Leg::Delay(caller),
            (Legs::Delay { agent, .. }, Direction::AgentToCaller) => Leg::Delay(agent),
            (Legs::TwoPhase { caller, .. }, Direction::CallerToAgent) => Leg::TwoPhase(caller),
            (Legs::TwoPhase { agent, .. }, Direction::AgentToCaller) => Leg::TwoPhase(agent),
        };
        match direction {
            Direction::CallerToAgent => {
                let (capture, capturing) = (&mut self.capture, self.capturing);
                process(leg, &mut |e| match e {
                    MaskerEvent::Masked(s) => spans(s),
                    e => feed(capture, capturing, e),
                })?;
                self.tick();
                Ok(())
            }
            Direction::AgentToCaller => process(leg, &mut |e| {
                if let MaskerEvent::Masked(s) = e {
                    spans(s);
                }
            }),
        }
    }

    /// Starts a capture now (wiping any earlier one).
    pub fn begin_capture(&mut self) {
        self.capture.begin(self.position());
        self.capturing = true;
    }

    /// Cancels the capture, wiping what it held.
    pub fn cancel_capture(&mut self) {
        self.capture.cancel();
        self.capturing = false;
    }

    /// The next agent-safe capture event.
    pub fn poll(&mut self) -> Option<CaptureEvent> {
        self.capture.poll()
    }

    /// The card, once the capture is complete (taken once).
    pub fn take_card(&mut self) -> Option<Card> {
        let card = self.capture.take_card();
        if card.is_some() {
            self.capturing = false;
        }
        card
    }

    /// The card once complete, copied in place into `out` (see
    /// [`Capture::take_card_into`]): no allocation, for the audio thread.
    pub fn take_card_into(&mut self, out: &mut Card) -> bool {
        let taken = self.capture.take_card_into(out);
        if taken {
            self.capturing = false;
        }
        taken
    }

    /// Where the capture is.
    pub fn capture_state(&self) -> CaptureState {
        self.capture.state()
    }

    /// Samples of the caller → agent input processed (or analysed) so far.
    pub fn position(&self) -> u64 {
        match &self.legs {
            Legs::Delay { caller, .. } => caller.position(),
            Legs::TwoPhase { caller, .. } => caller.analysed(),
            Legs::Rtp { caller, .. } => caller.position(),
        }
    }

    fn tick(&mut self) {
        if self.capturing {
            self.capture.tick(self.position());
        }
    }
}

/// A completed key press on the caller stream goes to the capture.
fn feed(capture: &mut Capture, capturing: bool, e: MaskerEvent) {
    if let (true, MaskerEvent::Key(DetectorEvent::Up(press))) = (capturing, e) {
        capture.key(press.key, press.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Brand, Field};
    use crate::dtmf::{Detector, DetectorConfig, Key, ToneGenerator, amplitude_for_dbm0};

    fn keyed(keys: &str) -> Vec<i16> {
        let mut x = vec![0i16; 2400];
        for ch in keys.chars() {
            let (lo, hi) = Key::from_char(ch).unwrap().frequencies();
            let a = amplitude_for_dbm0(-10.0);
            let mut g = ToneGenerator::new(8000, [lo, hi], [a, a], [0.0, 0.0]);
            let start = x.len();
            x.resize(start + 480, 0);
            g.fill(&mut x[start..]);
            x.resize(x.len() + 480, 0);
        }
        x.resize(x.len() + 4000, 0);
        x
    }

    #[test]
    fn a_card_keyed_by_the_caller_is_captured_and_masked_both_ways() {
        let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
        let mut call = Call::new(config).unwrap();
        let mut caller = keyed("5#4111111111111111#1229#123#");
        let mut agent = keyed("1234");
        // Keys before the capture begins are masked but not captured.
        let (first, rest) = caller.split_at_mut(2400 + 960 * 2);
        for f in first.chunks_mut(160) {
            call.process_pcm16(Direction::CallerToAgent, f).unwrap();
        }
        call.begin_capture();
        for f in rest.chunks_mut(160) {
            call.process_pcm16(Direction::CallerToAgent, f).unwrap();
        }
        for f in agent.chunks_mut(160) {
            call.process_pcm16(Direction::AgentToCaller, f).unwrap();
        }
        let events: Vec<_> = std::iter::from_fn(|| call.poll()).collect();
        assert!(events.contains(&CaptureEvent::Valid {
            field: Field::Pan,
            digits: 16,
            brand: Some(Brand::Visa),
            last4: Some(*b"1111")
        }));
        assert_eq!(events.last(), Some(&CaptureEvent::Complete));
        let card = call.take_card().unwrap();
        assert_eq!(card.pan.unwrap().len(), 16);
        // Neither direction carries a key any more.
        for leg in [&caller, &agent] {
            let mut d = Detector::new(DetectorConfig::default()).unwrap();
            let mut n = 0;
            d.process(leg, |_| n += 1);
            d.finish(|_| n += 1);
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn a_two_phase_call_captures_and_masks_at_playout_without_delay() {
        let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
        let mut call = Call::new_two_phase(config).unwrap();
        assert!(call.is_two_phase());
        let input = keyed("4111111111111111#1229#123#");
        let mut out = input.clone();
        let mut spans = 0;
        call.begin_capture();
        // A 40 ms jitter buffer: packets are analysed two ahead of playout.
        let packets: Vec<_> = (0..input.len() / 160).collect();
        for &p in &packets {
            let ts = 1000 + (p * 160) as u32;
            call.analyse_pcm16(Direction::CallerToAgent, &input[p * 160..][..160], ts, &mut |_| spans += 1).unwrap();
            if p >= 2 {
                let q = p - 2;
                call.mask_pcm16(Direction::CallerToAgent, &mut out[q * 160..][..160], 1000 + (q * 160) as u32).unwrap();
            }
        }
        let events: Vec<_> = std::iter::from_fn(|| call.poll()).collect();
        assert_eq!(events.last(), Some(&CaptureEvent::Complete), "{events:?}");
        assert_eq!(call.take_card().unwrap().pan.unwrap().len(), 16);
        assert!(spans >= 26);
        // Played-out audio carries no key, and is not delayed: quiet stays in place.
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let mut n = 0;
        let played = &out[..(packets.len() - 2) * 160];
        d.process(played, |_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(&played[..2000], &input[..2000]);
        // The other API is refused, and the reverse.
        assert_eq!(call.process_pcm16(Direction::AgentToCaller, &mut [0; 160]), Err(TWO_PHASE_API));
        let mut delay = Call::new(config).unwrap();
        assert_eq!(delay.mask_pcm16(Direction::CallerToAgent, &mut [0; 160], 0), Err(DELAY_API));
        assert_eq!(delay.analyse_pcm16(Direction::CallerToAgent, &[0; 160], 0, &mut |_| {}), Err(DELAY_API));
    }

    #[test]
    fn an_rtp_call_scrubs_packets_and_captures_each_key_once() {
        use crate::codec::ulaw;
        use crate::rtp::{DEFAULT_EVENT_PT, RtpHeader, TelephoneEvent};
        let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
        let mut call = Call::new_rtp(config, DEFAULT_EVENT_PT, EventAction::Drop).unwrap();
        let keys = "4111111111111111#1229#123#";
        let codes: Vec<u8> = keyed(keys).iter().map(|&x| ulaw::encode(x)).collect();
        let rtp = |pt: u8, seq: u16, ts: u32, payload: &[u8]| {
            let mut p = vec![0x80, pt];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 9]);
            p.extend_from_slice(payload);
            p
        };
        // Each key also as one telephone-event end packet at its tone's start.
        let mut packets = Vec::new();
        let mut seq = 0u16;
        for (i, chunk) in codes.chunks(160).enumerate() {
            packets.push(rtp(0, seq, (i * 160) as u32, chunk));
            seq += 1;
            let end = i * 160 + 160;
            for (k, ch) in keys.chars().enumerate() {
                let start = 2400 + k * 960;
                if end > start + 480 && end - (start + 480) <= 160 {
                    let code = b"0123456789*#".iter().position(|&c| c as char == ch).unwrap() as u8;
                    packets.push(rtp(DEFAULT_EVENT_PT, seq, start as u32, &[code, 0x8A, 0x01, 0xE0]));
                    seq += 1;
                }
            }
        }
        call.begin_capture();
        let (mut audio, mut forwarded, mut spans) = (Vec::new(), Vec::new(), 0);
        for mut p in packets {
            match call.process_rtp(Direction::CallerToAgent, &mut p, &mut |_| spans += 1).unwrap() {
                Verdict::Forward => {
                    let h = RtpHeader::parse(&p).unwrap();
                    assert!(TelephoneEvent::parse(h.payload(&p)).is_none() || h.payload_type != DEFAULT_EVENT_PT);
                    forwarded.push(h.sequence);
                    audio.extend(h.payload(&p).iter().map(|&c| ulaw::decode(c)));
                }
                v => assert_eq!(v, Verdict::Drop),
            }
        }
        let events: Vec<_> = std::iter::from_fn(|| call.poll()).collect();
        assert_eq!(events.last(), Some(&CaptureEvent::Complete), "{events:?}");
        assert_eq!(call.take_card().unwrap().pan.unwrap().len(), 16, "each digit once");
        assert!(spans >= keys.len());
        assert!(forwarded.windows(2).all(|w| w[1] == w[0] + 1), "renumbered over dropped events");
        let mut d = Detector::new(DetectorConfig::default()).unwrap();
        let mut n = 0;
        d.process(&audio, |_| n += 1);
        assert_eq!(n, 0);
        // Frame APIs are refused on an RTP call, and RTP on the others.
        assert_eq!(call.process_pcm16(Direction::CallerToAgent, &mut [0; 160]), Err(RTP_API));
        assert_eq!(call.mask_g711(Direction::CallerToAgent, &mut [0; 160], 0), Err(RTP_API));
        assert!(matches!(call.process_rtp(Direction::AgentToCaller, &mut [1, 2], &mut |_| {}), Err(Error::Rtp(_))));
        let mut delay = Call::new(config).unwrap();
        assert_eq!(delay.process_rtp(Direction::CallerToAgent, &mut [0x80; 20], &mut |_| {}), Err(RTP_API));
    }
}
