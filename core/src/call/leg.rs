//! One direction of a call: its audio path (a delay-line masker, a
//! two-phase masker or an RTP stream) and where its key presses go (the
//! capture on the caller's leg, nowhere on the agent's). Each leg is an
//! owned value that can live on its own thread; the type says which calls
//! it takes.

use crate::capture::{CaptureConfig, CaptureEvent, CaptureState, Card};
use crate::dtmf::{DetectorEvent, Key};
use crate::mask::{ConfigError, Masker, MaskerEvent, MaskerKind, Sample, TwoPhaseMasker};
use crate::rtp::{RtpError, RtpStream, StreamEvent, Verdict};

use super::driver::{CaptureCommands, CaptureDriver, Command};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::mask::Masker {}
    impl Sealed for crate::mask::TwoPhaseMasker {}
    impl Sealed for crate::rtp::RtpStream {}
    impl Sealed for super::CaptureDriver {}
    impl Sealed for super::NoCapture {}
}

/// A leg's audio path: [`Masker`] (frames through a delay line),
/// [`TwoPhaseMasker`] (analyse on arrival, mask at playout) or
/// [`RtpStream`] (whole RTP packets). Sealed.
pub trait Path: sealed::Sealed + std::fmt::Debug + Send {
    /// Samples of the leg's input taken in so far (processed, or
    /// analysed): the clock of its events and of the capture's timeouts.
    fn position(&self) -> u64;
}

impl Path for Masker {
    fn position(&self) -> u64 {
        self.taken()
    }
}

impl Path for TwoPhaseMasker {
    fn position(&self) -> u64 {
        self.taken()
    }
}

impl Path for RtpStream {
    fn position(&self) -> u64 {
        RtpStream::position(self)
    }
}

/// Where a leg's completed key presses go: the capture ([`CaptureDriver`],
/// the caller's leg) or nowhere ([`NoCapture`], the agent's). Sealed.
pub trait Keys: sealed::Sealed + std::fmt::Debug + Send {
    /// A key press ended at `end`.
    #[doc(hidden)]
    fn key(&mut self, key: Key, end: u64);
    /// The leg's media time reached `at`.
    #[doc(hidden)]
    fn tick(&mut self, at: u64);
}

impl Keys for CaptureDriver {
    fn key(&mut self, key: Key, end: u64) {
        CaptureDriver::key(self, key, end);
    }
    fn tick(&mut self, at: u64) {
        CaptureDriver::tick(self, at);
    }
}

/// The agent's leg: its keys are masked, never captured.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCapture;

impl Keys for NoCapture {
    fn key(&mut self, _: Key, _: u64) {}
    fn tick(&mut self, _: u64) {}
}

/// One direction of a call (see the module docs). All memory is allocated
/// when it is built; processing never allocates, locks or blocks.
#[derive(Debug)]
pub struct Leg<P: Path, K: Keys> {
    path: P,
    keys: K,
}

/// The caller's leg: masked, and its keys feed the capture.
pub type CallerLeg<P> = Leg<P, CaptureDriver>;
/// The agent's leg: masked only.
pub type AgentLeg<P> = Leg<P, NoCapture>;

impl<P: Path> AgentLeg<P> {
    /// An agent's leg on `path`.
    pub fn agent(path: P) -> AgentLeg<P> {
        Leg { path, keys: NoCapture }
    }
}

impl<P: Path> CallerLeg<P> {
    /// A caller's leg on `path`, no capture running.
    pub fn caller(path: P, capture: CaptureConfig) -> CallerLeg<P> {
        Leg { path, keys: CaptureDriver::new(capture) }
    }

    /// The capture's driver (to poll its events, take the card).
    pub fn capture(&mut self) -> &mut CaptureDriver {
        &mut self.keys
    }

    /// Starts a capture now (wiping any earlier one).
    pub fn begin_capture(&mut self) {
        let at = self.path.position();
        self.keys.begin(at);
    }

    /// Cancels the capture, wiping what it held.
    pub fn cancel_capture(&mut self) {
        self.keys.cancel();
    }

    /// Carries out a control thread's pending request (see [`CaptureCommands`]).
    pub fn apply(&mut self, commands: &CaptureCommands) -> Option<Command> {
        let at = self.path.position();
        self.keys.apply(commands, at)
    }

    /// The next agent-safe capture event.
    pub fn poll(&mut self) -> Option<CaptureEvent> {
        self.keys.poll()
    }

    /// The card, once the capture is complete (taken once).
    pub fn take_card(&mut self) -> Option<Card> {
        self.keys.take_card()
    }

    /// The card once complete, copied in place into `out`: no allocation.
    pub fn take_card_into(&mut self, out: &mut Card) -> bool {
        self.keys.take_card_into(out)
    }

    /// Where the capture is.
    pub fn capture_state(&self) -> CaptureState {
        self.keys.state()
    }
}

impl<P: Path, K: Keys> Leg<P, K> {
    /// Samples of this leg's input taken in so far (see [`Path::position`]).
    pub fn position(&self) -> u64 {
        self.path.position()
    }

    /// The audio path.
    pub fn path(&self) -> &P {
        &self.path
    }

    /// The audio path, to change its settings (e.g.
    /// [`RtpStream::keep_unknown_blanked`]); frames go through the leg.
    pub fn path_mut(&mut self) -> &mut P {
        &mut self.path
    }
}

/// The masker's event sink for a leg: key presses to `keys` (as
/// [`CaptureDriver::masker_event`] takes them), then everything to `on`.
fn masker_sink<'a, K: Keys>(keys: &'a mut K, on: &'a mut dyn FnMut(MaskerEvent)) -> impl FnMut(MaskerEvent) + 'a {
    move |e| {
        if let MaskerEvent::Key(DetectorEvent::Up(press)) = e {
            keys.key(press.key, press.end);
        }
        on(e);
    }
}

impl<K: Keys> Leg<Masker, K> {
    /// Masks a frame in place (PCM16 samples or G.711 codes, as set up),
    /// reporting the masker's events — masked spans, key presses — to `on`;
    /// on the caller's leg the presses also feed the capture, whose
    /// timeouts then advance.
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] for the other sample type.
    pub fn process<S: Sample>(&mut self, frame: &mut [S], on: &mut dyn FnMut(MaskerEvent)) -> Result<(), ConfigError> {
        self.path.process(frame, masker_sink(&mut self.keys, on))?;
        self.keys.tick(self.path.position());
        Ok(())
    }

    /// Ends the leg's audio: reports the key still sounding and every
    /// pending span (see [`Masker::finish`]).
    pub fn finish(&mut self, on: &mut dyn FnMut(MaskerEvent)) {
        self.path.finish(masker_sink(&mut self.keys, on));
        self.keys.tick(self.path.position());
    }
}

impl<K: Keys> Leg<TwoPhaseMasker, K> {
    /// Analyses an arriving frame (`ts`: the RTP timestamp of its first
    /// sample), reporting the masker's events to `on`; on the caller's leg
    /// the presses also feed the capture, whose timeouts then advance.
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] for the other sample type.
    pub fn analyse<S: Sample>(
        &mut self,
        frame: &[S],
        ts: u32,
        on: &mut dyn FnMut(MaskerEvent),
    ) -> Result<(), ConfigError> {
        self.path.analyse(frame, ts, masker_sink(&mut self.keys, on))?;
        self.keys.tick(self.path.position());
        Ok(())
    }

    /// Masks a frame in place at playout.
    ///
    /// # Errors
    /// [`ConfigError::WrongFrameType`] for the other sample type.
    pub fn mask<S: Sample>(&mut self, frame: &mut [S], ts: u32) -> Result<(), ConfigError> {
        self.path.mask(frame, ts)
    }
}

impl<K: Keys> Leg<RtpStream, K> {
    /// Scrubs one RTP packet in place (see [`RtpStream::process`]),
    /// reporting the stream's events to `on`; says whether to send it on.
    /// On the caller's leg the presses — in band or as events, each once —
    /// also feed the capture, whose timeouts then advance.
    ///
    /// # Errors
    /// [`RtpError`] if the packet is not RTP (it is left untouched).
    pub fn process_rtp(&mut self, packet: &mut [u8], on: &mut dyn FnMut(StreamEvent)) -> Result<Verdict, RtpError> {
        let keys = &mut self.keys;
        let verdict = self.path.process(packet, &mut |e| {
            if let StreamEvent::Key(k) = e {
                keys.key(k.key, k.end);
            }
            on(e);
        })?;
        self.keys.tick(self.path.position());
        Ok(verdict)
    }
}
