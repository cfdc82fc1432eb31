//! One call: a leg per direction and a card capture.
//!
//! Both directions — caller → agent and agent → caller — go through their
//! own masker, so DTMF is always masked whichever side keys it. Keys the
//! caller presses also feed the capture once the host begins one (say,
//! when the agent presses "take payment"); its timeouts run on the caller
//! leg's media time.
//!
//! Each direction is a [`Leg`]: a [`CallerLeg`] (masker and
//! [`CaptureDriver`]) or an [`AgentLeg`] (masker only), owned values that
//! can live on their own threads (a relay runs one per socket). The audio
//! path is a type parameter — [`Masker`] (a delay line), [`TwoPhaseMasker`]
//! (analyse on arrival, mask at playout) or [`RtpStream`] (whole RTP
//! packets) — so a leg offers only the calls its path takes. [`Call`] holds
//! both legs of one call; the C ABI's call, the relay and the CLI's
//! per-channel capture are shells over these.
//!
//! Errors compose by layer: [`ConfigError`] from the maskers (settings, frame
//! type), [`RtpError`] from the RTP streams; [`Error`] is either, for hosts
//! that want one type.

mod driver;
mod leg;

pub use driver::{CaptureCommands, CaptureDriver, Command};
pub use leg::{AgentLeg, CallerLeg, Keys, Leg, NoCapture, Path};

use crate::capture::{CaptureConfig, CaptureEvent, CaptureState, Card};
use crate::mask::{ConfigError, Masker, MaskerConfig, TwoPhaseMasker};
use crate::rtp::{EventAction, RtpError, RtpStream, RtpStreamConfig};

/// The core's errors, composed from its layers'. Messages say what went
/// wrong, never with which card data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A masker's settings or frame type (see [`ConfigError`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A packet is not RTP, or is malformed.
    #[error("not an RTP packet: {0}")]
    Rtp(#[from] RtpError),
}

/// The system's UTC date as (year, month): what [`CaptureConfig::today`]
/// wants when the host does not give its own (the expiry check).
pub fn today() -> (u16, u8) {
    crate::vault::time::year_month(crate::vault::time::now())
}

/// Which way audio flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the caller to the agent (the keys captured come from here).
    CallerToAgent,
    /// From the agent to the caller.
    AgentToCaller,
}

/// Call settings: both legs' masker and the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallConfig {
    /// Masker settings for both directions.
    pub masker: MaskerConfig,
    /// Capture settings.
    pub capture: CaptureConfig,
}

/// A call: its two legs on audio path `P` (see the module docs). All
/// memory is allocated when it is built; processing a frame never
/// allocates, locks or blocks. The legs are public: use them in place, or
/// move them apart (`let Call { caller, agent } = call;`) to run each on
/// its own thread.
///
/// A leg offers only the calls of its path, so the wrong API does not
/// compile (the C ABI, which cannot know at compile time, answers
/// `CARDVEIL_WRONG_API`):
///
/// ```compile_fail
/// # use cardveil_core::call::{Call, CallConfig};
/// # use cardveil_core::{capture::CaptureConfig, mask::MaskerConfig};
/// let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
/// let mut call = Call::new_two_phase(config).unwrap();
/// call.agent.process(&mut [0i16; 160], &mut |_| {}); // two-phase legs analyse and mask
/// ```
///
/// ```compile_fail
/// # use cardveil_core::call::{Call, CallConfig};
/// # use cardveil_core::{capture::CaptureConfig, mask::MaskerConfig};
/// let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
/// let mut call = Call::new(config).unwrap();
/// call.caller.mask(&mut [0i16; 160], 0); // a delay line has no playout step
/// ```
///
/// ```compile_fail
/// # use cardveil_core::call::{Call, CallConfig};
/// # use cardveil_core::{capture::CaptureConfig, mask::MaskerConfig};
/// let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
/// let mut call = Call::new(config).unwrap();
/// call.caller.process_rtp(&mut [0x80; 172], &mut |_| {}); // frames, not packets
/// ```
///
/// ```compile_fail
/// # use cardveil_core::call::{Call, CallConfig};
/// # use cardveil_core::{capture::CaptureConfig, mask::MaskerConfig, rtp::EventAction};
/// let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
/// let mut call = Call::new_rtp(config, 101, EventAction::Drop).unwrap();
/// call.caller.process(&mut [0i16; 160], &mut |_| {}); // packets, not frames
/// ```
///
/// ```compile_fail
/// # use cardveil_core::call::{Call, CallConfig};
/// # use cardveil_core::{capture::CaptureConfig, mask::MaskerConfig};
/// let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
/// let mut call = Call::new(config).unwrap();
/// call.agent.begin_capture(); // the agent's keys are never captured
/// ```
#[derive(Debug)]
pub struct Call<P: Path> {
    /// Caller → agent: masked, and its keys feed the capture.
    pub caller: CallerLeg<P>,
    /// Agent → caller: masked.
    pub agent: AgentLeg<P>,
}

impl Call<Masker> {
    /// A call whose legs mask through a delay line of
    /// `config.masker.lookahead_ms`, no capture running.
    ///
    /// # Errors
    /// The masker's configuration errors.
    pub fn new(config: CallConfig) -> Result<Call<Masker>, ConfigError> {
        Ok(Call::of(Masker::new(config.masker)?, Masker::new(config.masker)?, config.capture))
    }
}

impl Call<TwoPhaseMasker> {
    /// A call for hosts with a jitter buffer: each leg is analysed when a
    /// packet arrives ([`Leg::analyse`]) and masked at playout
    /// ([`Leg::mask`]), adding no delay when the buffer is at least
    /// [`crate::mask::ZERO_LEAK_LOOKAHEAD_MS`] deep (`config.masker.lookahead_ms`
    /// is that depth). Capture timeouts count the caller's analysed samples.
    ///
    /// # Errors
    /// The masker's configuration errors.
    pub fn new_two_phase(config: CallConfig) -> Result<Call<TwoPhaseMasker>, ConfigError> {
        Ok(Call::of(TwoPhaseMasker::new(config.masker)?, TwoPhaseMasker::new(config.masker)?, config.capture))
    }
}

impl Call<RtpStream> {
    /// A call for hosts that hand over whole RTP packets
    /// ([`Leg::process_rtp`]): G.711 payloads (PT 0 and 8,
    /// whatever `config.masker.encoding` says; 8000 Hz) masked in place
    /// behind the look-ahead, telephone-events of `event_payload_type`
    /// neutralised or dropped, and the caller's keys — in band or as
    /// events, each press once — feeding the capture (its timeouts count
    /// samples at [`crate::rtp::CLOCK_HZ`]: build `config.capture` for that rate).
    ///
    /// # Errors
    /// The masker's configuration errors.
    pub fn new_rtp(
        config: CallConfig,
        event_payload_type: u8,
        event_action: EventAction,
    ) -> Result<Call<RtpStream>, ConfigError> {
        let stream = RtpStreamConfig { masker: config.masker, event_payload_type, event_action };
        Ok(Call::of(RtpStream::new(stream)?, RtpStream::new(stream)?, config.capture))
    }
}

impl<P: Path> Call<P> {
    fn of(caller: P, agent: P, capture: CaptureConfig) -> Call<P> {
        Call { caller: CallerLeg::caller(caller, capture), agent: AgentLeg::agent(agent) }
    }

    /// Starts a capture now (wiping any earlier one).
    pub fn begin_capture(&mut self) {
        self.caller.begin_capture();
    }

    /// Cancels the capture, wiping what it held.
    pub fn cancel_capture(&mut self) {
        self.caller.cancel_capture();
    }

    /// The next agent-safe capture event.
    pub fn poll(&mut self) -> Option<CaptureEvent> {
        self.caller.poll()
    }

    /// The card, once the capture is complete (taken once).
    pub fn take_card(&mut self) -> Option<Card> {
        self.caller.take_card()
    }

    /// The card once complete, copied in place into `out` (see
    /// [`crate::capture::Capture::take_card_into`]): no allocation, for the audio thread.
    pub fn take_card_into(&mut self, out: &mut Card) -> bool {
        self.caller.take_card_into(out)
    }

    /// Where the capture is.
    pub fn capture_state(&self) -> CaptureState {
        self.caller.capture_state()
    }

    /// Samples of the caller → agent input processed (or analysed) so far.
    pub fn position(&self) -> u64 {
        self.caller.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Brand, Field};
    use crate::dtmf::{Detector, DetectorConfig, Key, ToneGenerator, amplitude_for_dbm0};
    use crate::mask::MaskerEvent;
    use crate::rtp::{StreamEvent, Verdict};

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
            call.caller.process(f, &mut |_| {}).unwrap();
        }
        call.begin_capture();
        for f in rest.chunks_mut(160) {
            call.caller.process(f, &mut |_| {}).unwrap();
        }
        for f in agent.chunks_mut(160) {
            call.agent.process(f, &mut |_| {}).unwrap();
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
        let input = keyed("4111111111111111#1229#123#");
        let mut out = input.clone();
        let mut spans = 0;
        call.begin_capture();
        // A 40 ms jitter buffer: packets are analysed two ahead of playout.
        let packets: Vec<_> = (0..input.len() / 160).collect();
        for &p in &packets {
            let ts = 1000 + (p * 160) as u32;
            call.caller
                .analyse(&input[p * 160..][..160], ts, &mut |e| spans += matches!(e, MaskerEvent::Masked(_)) as usize)
                .unwrap();
            if p >= 2 {
                let q = p - 2;
                call.caller.mask(&mut out[q * 160..][..160], 1000 + (q * 160) as u32).unwrap();
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
        // The other API is refused, and the reverse: by the types (the
        // compile_fail examples on `Call`); the wrong sample type at run time.
        assert_eq!(
            call.agent.mask(&mut [0u8; 160], 0),
            Err(ConfigError::WrongFrameType(crate::codec::Encoding::Pcm16))
        );
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
            match call
                .caller
                .process_rtp(&mut p, &mut |e| spans += matches!(e, StreamEvent::Masked(_)) as usize)
                .unwrap()
            {
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
        // Frame APIs are refused on an RTP call, and RTP on the others: by
        // the types (the compile_fail examples on `Call`). A packet that is
        // not RTP is an error.
        assert_eq!(call.agent.process_rtp(&mut [1, 2], &mut |_| {}), Err(RtpError::TooShort(2)));
    }
}
