//! The capture protocol every host of a caller's leg runs: begin/cancel
//! requests from a control thread, the caller's key presses into the
//! [`Capture`], its timeouts on the leg's media time, the agent-safe events
//! out, and the completed card handed over once.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::capture::{Capture, CaptureConfig, CaptureEvent, CaptureState, Card};
use crate::dtmf::{DetectorEvent, Key};
use crate::mask::MaskerEvent;

/// No request pending.
const NONE: u8 = 0;
const BEGIN: u8 = 1;
const CANCEL: u8 = 2;

/// Begin/cancel requests from a control thread to the thread that runs the
/// caller's leg (lock-free; the latest request wins, so "begin, then
/// cancel" before the next frame is a cancel). Share it (e.g. in an `Arc`)
/// and hand it to [`CaptureDriver::apply`] before or after each frame.
#[derive(Debug, Default)]
pub struct CaptureCommands(AtomicU8);

/// A request taken from [`CaptureCommands`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a capture now (wiping any earlier one).
    Begin,
    /// Cancel the capture, wiping what it held.
    Cancel,
}

impl CaptureCommands {
    /// Asks for a capture to begin at the leg's next frame.
    pub fn begin(&self) {
        self.0.store(BEGIN, Ordering::Release);
    }

    /// Asks for the capture to be cancelled at the leg's next frame.
    pub fn cancel(&self) {
        self.0.store(CANCEL, Ordering::Release);
    }

    /// Takes the pending request, if any.
    pub fn take(&self) -> Option<Command> {
        match self.0.swap(NONE, Ordering::AcqRel) {
            BEGIN => Some(Command::Begin),
            CANCEL => Some(Command::Cancel),
            _ => None,
        }
    }
}

/// Drives one capture from a leg's key presses. While no capture runs,
/// keys are masked but not captured. No allocation after [`CaptureDriver::new`].
#[derive(Debug)]
pub struct CaptureDriver {
    capture: Capture,
    capturing: bool,
}

impl CaptureDriver {
    /// A driver with no capture running.
    pub fn new(config: CaptureConfig) -> CaptureDriver {
        CaptureDriver { capture: Capture::new(config), capturing: false }
    }

    /// Starts a capture at media position `at` (wiping any earlier one).
    pub fn begin(&mut self, at: u64) {
        self.capture.begin(at);
        self.capturing = true;
    }

    /// Cancels the capture, wiping what it held.
    pub fn cancel(&mut self) {
        self.capture.cancel();
        self.capturing = false;
    }

    /// Carries out the pending request of `commands` at media position
    /// `at`; says which it was.
    pub fn apply(&mut self, commands: &CaptureCommands, at: u64) -> Option<Command> {
        let command = commands.take();
        match command {
            Some(Command::Begin) => self.begin(at),
            Some(Command::Cancel) => self.cancel(),
            None => {}
        }
        command
    }

    /// A key press of the leg ended at `end`: captured if a capture runs.
    pub fn key(&mut self, key: Key, end: u64) {
        if self.capturing {
            self.capture.key(key, end);
        }
    }

    /// A masker's event: a completed key press is captured if a capture
    /// runs (for hosts that drive a [`crate::mask::Masker`] themselves).
    pub fn masker_event(&mut self, e: &MaskerEvent) {
        if let MaskerEvent::Key(DetectorEvent::Up(press)) = e {
            self.key(press.key, press.end);
        }
    }

    /// The leg's media time reached `at`: the capture's timeouts run.
    pub fn tick(&mut self, at: u64) {
        if self.capturing {
            self.capture.tick(at);
        }
    }

    /// Hands every agent-safe event so far to `on_event`, in order.
    pub fn drain(&mut self, mut on_event: impl FnMut(CaptureEvent)) {
        while let Some(e) = self.capture.poll() {
            on_event(e);
        }
    }

    /// The next agent-safe event.
    pub fn poll(&mut self) -> Option<CaptureEvent> {
        self.capture.poll()
    }

    /// Whether a completed card waits to be taken.
    pub fn card_ready(&self) -> bool {
        self.capture.state() == CaptureState::Complete
    }

    /// The card, once the capture is complete (taken once; the capture
    /// then stops).
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
    pub fn state(&self) -> CaptureState {
        self.capture.state()
    }

    /// Whether a capture runs (begun, not yet complete, cancelled or taken).
    pub fn is_capturing(&self) -> bool {
        self.capturing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_request_wins_and_is_taken_once() {
        let c = CaptureCommands::default();
        assert_eq!(c.take(), None);
        c.begin();
        c.cancel();
        assert_eq!(c.take(), Some(Command::Cancel));
        assert_eq!(c.take(), None);
        c.cancel();
        c.begin();
        let mut d = CaptureDriver::new(CaptureConfig::standard(8000, (2026, 11)));
        assert_eq!(d.apply(&c, 80), Some(Command::Begin));
        assert!(d.is_capturing());
        assert_eq!(d.apply(&c, 160), None);
        c.cancel();
        d.apply(&c, 240);
        assert!(!d.is_capturing());
        let mut events = Vec::new();
        d.drain(|e| events.push(e));
        assert!(events.contains(&CaptureEvent::Cancelled), "{events:?}");
    }

    #[test]
    fn keys_count_only_while_a_capture_runs() {
        let mut d = CaptureDriver::new(CaptureConfig::standard(8000, (2026, 11)));
        d.key(Key::from_char('4').unwrap(), 100);
        d.tick(200);
        assert_eq!(d.poll(), None, "nothing before begin");
        d.begin(300);
        d.key(Key::from_char('4').unwrap(), 400);
        let mut events = Vec::new();
        d.drain(|e| events.push(e));
        assert!(events.iter().any(|e| matches!(e, CaptureEvent::Digit { count: 1, .. })), "{events:?}");
        assert!(!d.card_ready());
        assert!(d.take_card().is_none());
    }
}
