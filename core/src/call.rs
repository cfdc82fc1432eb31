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
use crate::mask::{MaskedSpan, Masker, MaskerConfig, MaskerEvent};

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
    caller: Masker,
    agent: Masker,
    capture: Capture,
    capturing: bool,
}

impl Call {
    /// A call with no capture running.
    pub fn new(config: CallConfig) -> Result<Call, Error> {
        Ok(Call {
            caller: Masker::new(config.masker)?,
            agent: Masker::new(config.masker)?,
            capture: Capture::new(config.capture),
            capturing: false,
        })
    }

    /// Masks a PCM16 frame of one direction in place.
    ///
    /// # Errors
    /// [`Error::WrongFrameType`] if the call was set up for G.711.
    pub fn process_pcm16(&mut self, direction: Direction, frame: &mut [i16]) -> Result<(), Error> {
        self.on_leg(direction, &mut |_| {}, |m, on| m.process_pcm16(frame, on))
    }

    /// [`Call::process_pcm16`], also reporting each masked span of this
    /// direction once it is final (positions in the direction's input).
    pub fn process_pcm16_spans(
        &mut self,
        direction: Direction,
        frame: &mut [i16],
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<(), Error> {
        self.on_leg(direction, spans, |m, on| m.process_pcm16(frame, on))
    }

    /// [`Call::process_g711`], also reporting each masked span.
    pub fn process_g711_spans(
        &mut self,
        direction: Direction,
        frame: &mut [u8],
        spans: &mut dyn FnMut(MaskedSpan),
    ) -> Result<(), Error> {
        self.on_leg(direction, spans, |m, on| m.process_g711(frame, on))
    }

    /// Masks a G.711 frame of one direction in place.
    ///
    /// # Errors
    /// [`Error::WrongFrameType`] if the call was set up for PCM16.
    pub fn process_g711(&mut self, direction: Direction, frame: &mut [u8]) -> Result<(), Error> {
        self.on_leg(direction, &mut |_| {}, |m, on| m.process_g711(frame, on))
    }

    /// Runs `process` on one direction's masker: the caller's key presses
    /// feed the capture, whose timeouts then advance; the agent's are only
    /// masked.
    fn on_leg<P>(&mut self, direction: Direction, spans: &mut dyn FnMut(MaskedSpan), process: P) -> Result<(), Error>
    where
        P: FnOnce(&mut Masker, &mut dyn FnMut(MaskerEvent)) -> Result<(), Error>,
    {
        match direction {
            Direction::CallerToAgent => {
                let (capture, capturing) = (&mut self.capture, self.capturing);
                process(&mut self.caller, &mut |e| match e {
                    MaskerEvent::Masked(s) => spans(s),
                    e => feed(capture, capturing, e),
                })?;
                self.tick();
                Ok(())
            }
            Direction::AgentToCaller => process(&mut self.agent, &mut |e| {
                if let MaskerEvent::Masked(s) = e {
                    spans(s);
                }
            }),
        }
    }

    /// Starts a capture now (wiping any earlier one).
    pub fn begin_capture(&mut self) {
        self.capture.begin(self.caller.position());
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

    /// Samples of the caller → agent input processed so far.
    pub fn position(&self) -> u64 {
        self.caller.position()
    }

    fn tick(&mut self) {
        if self.capturing {
            self.capture.tick(self.caller.position());
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
}
