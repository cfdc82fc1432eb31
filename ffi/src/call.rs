//! `cardveil_call`: one call's two masked legs and its capture.
//!
//! Ownership: owned (a `Box` inside), created by `cardveil_call_new`,
//! released by `cardveil_call_free`.
//!
//! RTP calls (`cardveil_call_new_rtp`) take whole RTP packets instead of
//! frames (`cardveil_call_process_rtp`): G.711 payloads masked in place,
//! telephone-events neutralised or dropped, each key counted once.
//!
//! Threads: the frame functions (`cardveil_call_process_*`) run on the
//! call's audio thread — one thread at a time for a given call. The
//! control functions (`cardveil_call_capture_begin`, `_capture_cancel`, `_take_cvv`,
//! `_poll_event`, `_token`) run on one other thread at a time (the host's
//! event thread), concurrently with the frame functions. They meet only
//! through atomics and a lock-free ring: a frame never waits, allocates or
//! locks. `cardveil_call_free` must not race with either.

use std::cell::UnsafeCell;
use std::ffi::c_char;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use cardveil_core::call::{Call, CallConfig, CallerLeg, CaptureCommands, Command, Direction, Keys, Leg, Path};
use cardveil_core::capture::{CaptureConfig, Card, Cvv, Expiry, Pan};
use cardveil_core::codec::Encoding;
use cardveil_core::mask::{ConfigError, MAX_FRAME_MS, Masker, MaskerEvent, TwoPhaseMasker};
use cardveil_core::rtp::{EventAction, RtpStream, Verdict};
use cardveil_core::vault::Done;

use crate::engine::{EngineInner, cardveil_engine};
use crate::event::{
    CARDVEIL_TOKEN_MAX, brand_code, capture_event, cardveil_event, cardveil_event_kind, cardveil_field, masked_event,
    set_last4,
};
use crate::handle::{ArcHandle, BoxHandle};
use crate::result::*;
use crate::ring::Spsc;

/// What the host does with a packet after `cardveil_call_process_rtp`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_rtp_verdict {
    /// Send it on (it may have been rewritten in place).
    CARDVEIL_RTP_FORWARD = 0,
    /// Do not send it: a dropped telephone-event (the sequence numbers of
    /// later packets close the gap, so the receiver sees no loss).
    CARDVEIL_RTP_DROP = 1,
    /// Do not send it: cardveil cannot look inside — a payload type that is
    /// not G.711, comfort noise or the telephone-event type, or a datagram
    /// that is not RTP and not recognised as RTCP, STUN or DTLS (too short,
    /// another RTP version, a zero padding count, junk). Fail closed.
    CARDVEIL_RTP_UNKNOWN = 2,
    /// Not RTP but recognised as RTCP, STUN or DTLS (by structure, not just
    /// by its first byte): left untouched, it may be sent as it is.
    CARDVEIL_RTP_NOT_RTP = 3,
}

/// What an RTP call does with telephone-events toward the agent.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_event_action {
    /// Forwarded with every event code rewritten to `fixed_event` (timing kept).
    CARDVEIL_EVENTS_NEUTRALISE = 0,
    /// Not forwarded (`CARDVEIL_RTP_DROP`); sequence numbers renumbered.
    CARDVEIL_EVENTS_DROP = 1,
}

/// Settings of an RTP call (`cardveil_call_new_rtp`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cardveil_rtp_config {
    /// The telephone-event payload type negotiated in SDP, 0-127 (default 101).
    pub event_payload_type: u32,
    /// A `cardveil_event_action` (default NEUTRALISE).
    pub event_action: u32,
    /// The event code neutralised events carry, 0-255 (default 15: key D,
    /// which no card field accepts).
    pub fixed_event: u32,
}

/// The defaults: payload type 101, neutralise to event 15.
#[unsafe(no_mangle)]
pub extern "C" fn cardveil_rtp_config_default() -> cardveil_rtp_config {
    cardveil_rtp_config {
        event_payload_type: cardveil_core::rtp::DEFAULT_EVENT_PT as u32,
        event_action: cardveil_event_action::CARDVEIL_EVENTS_NEUTRALISE as u32,
        fixed_event: cardveil_core::rtp::DEFAULT_FIXED_EVENT as u32,
    }
}

/// Events a call holds for its host.
const RING: usize = 256;
/// The card slot's states.
const SLOT_EMPTY: u8 = 0;
const SLOT_FULL: u8 = 1;

/// A call. Opaque; see `cardveil_call_new`.
#[derive(Debug)]
pub struct cardveil_call {
    _private: [u8; 0],
}

impl BoxHandle for cardveil_call {
    type Rust = CallInner;
}

struct AudioSide {
    call: Calls,
    encoding: Encoding,
}

/// The call, of the kind the engine and constructor chose: the API a C
/// host calls is checked against it here (`CARDVEIL_WRONG_API`).
enum Calls {
    Delay(Call<Masker>),
    TwoPhase(Call<TwoPhaseMasker>),
    Rtp(Box<Call<RtpStream>>),
}

struct ControlSide {
    token: Option<String>,
    overflow_reported: u64,
}

pub(crate) struct CallInner {
    engine: Arc<EngineInner>,
    id: u64,
    /// Used by the audio thread only.
    audio: UnsafeCell<AudioSide>,
    /// Used by the event thread only.
    control: UnsafeCell<ControlSide>,
    events: Spsc<cardveil_event, RING>,
    commands: CaptureCommands,
    /// A card allocated at setup: filled in place by the audio thread when
    /// SLOT_EMPTY, then owned by the event thread until it sets SLOT_EMPTY.
    card: UnsafeCell<Box<Card>>,
    card_state: AtomicU8,
    poisoned: AtomicBool,
}

// SAFETY: `audio` is touched only by the frame functions (one audio thread
// at a time, per the documented contract) and `control` only by the control
// functions (one event thread at a time); `card` is handed between them by
// `card_state` (Release after writing, Acquire before reading); `events` is
// a single-producer single-consumer ring; the rest are atomics or shared
// immutable data.
unsafe impl Sync for CallInner {}
// SAFETY: every field may move between threads (the engine Arc, owned data).
unsafe impl Send for CallInner {}

fn full_card() -> Box<Card> {
    Box::new(Card { pan: Some(Pan::default()), expiry: Some(Expiry::default()), cvv: Some(Cvv::default()) })
}

/// A `cardveil_direction` from C.
fn direction_of(direction: u32) -> Option<Direction> {
    match direction {
        0 => Some(Direction::CallerToAgent),
        1 => Some(Direction::AgentToCaller),
        _ => None,
    }
}

impl CallInner {
    /// After each frame on the audio thread: commands, capture events,
    /// the card to its slot. No allocation, no lock.
    fn after_frame<P: Path>(&self, caller: &mut CallerLeg<P>) {
        caller.apply(&self.commands);
        let capture = caller.capture();
        capture.drain(|e| {
            // A full ring counts the loss (reported as CARDVEIL_EVENT_OVERFLOW).
            self.events.push(capture_event(e));
        });
        if capture.card_ready() && self.card_state.load(Ordering::Acquire) == SLOT_EMPTY {
            // SAFETY: SLOT_EMPTY means the event thread does not touch the slot.
            let slot = unsafe { &mut *self.card.get() };
            if capture.take_card_into(slot) {
                self.card_state.store(SLOT_FULL, Ordering::Release);
            }
        }
    }

    fn process(&self, direction: u32, frame: Frame<'_>) -> cardveil_result {
        let Some(dir) = direction_of(direction) else { return CARDVEIL_INVALID_ARGUMENT };
        // SAFETY: the frame functions are the only users of `audio`, one
        // thread at a time (documented contract).
        let audio = unsafe { &mut *self.audio.get() };
        let (kind, len) = frame.kind_and_len();
        if kind != audio.encoding {
            return CARDVEIL_WRONG_FRAME_TYPE;
        }
        if len > (self.engine.masker.sample_rate * MAX_FRAME_MS / 1000) as usize {
            return CARDVEIL_INVALID_LENGTH;
        }
        let events = &self.events;
        let mut on = |e: MaskerEvent| {
            if let MaskerEvent::Masked(s) = e {
                events.push(masked_event(dir, s));
            }
        };
        let caller = dir == Direction::CallerToAgent;
        let r = match (&mut audio.call, frame) {
            (Calls::Delay(c), Frame::Process(f)) if caller => delay(&mut c.caller, f, &mut on),
            (Calls::Delay(c), Frame::Process(f)) => delay(&mut c.agent, f, &mut on),
            (Calls::TwoPhase(c), Frame::Analyse(f, ts)) if caller => analyse(&mut c.caller, f, ts, &mut on),
            (Calls::TwoPhase(c), Frame::Analyse(f, ts)) => analyse(&mut c.agent, f, ts, &mut on),
            (Calls::TwoPhase(c), Frame::Mask(f, ts)) if caller => playout(&mut c.caller, f, ts),
            (Calls::TwoPhase(c), Frame::Mask(f, ts)) => playout(&mut c.agent, f, ts),
            _ => return CARDVEIL_WRONG_API,
        };
        if r.is_err() {
            return CARDVEIL_WRONG_FRAME_TYPE;
        }
        match &mut audio.call {
            Calls::Delay(c) => self.after_frame(&mut c.caller),
            Calls::TwoPhase(c) => self.after_frame(&mut c.caller),
            Calls::Rtp(c) => self.after_frame(&mut c.caller),
        }
        CARDVEIL_OK
    }

    /// One RTP packet (see `cardveil_call_process_rtp`).
    fn process_rtp(&self, direction: u32, packet: &mut [u8], verdict: &mut u32) -> cardveil_result {
        let Some(dir) = direction_of(direction) else { return CARDVEIL_INVALID_ARGUMENT };
        // SAFETY: the frame functions are the only users of `audio`, one
        // thread at a time (documented contract).
        let audio = unsafe { &mut *self.audio.get() };
        let Calls::Rtp(call) = &mut audio.call else { return CARDVEIL_WRONG_API };
        let events = &self.events;
        let mut on = |e| {
            if let cardveil_core::rtp::StreamEvent::Masked(s) = e {
                events.push(masked_event(dir, s));
            }
        };
        let r = match dir {
            Direction::CallerToAgent => call.caller.process_rtp(packet, &mut on),
            Direction::AgentToCaller => call.agent.process_rtp(packet, &mut on),
        };
        *verdict = match r {
            Ok(Verdict::Forward) => cardveil_rtp_verdict::CARDVEIL_RTP_FORWARD,
            Ok(Verdict::Drop) => cardveil_rtp_verdict::CARDVEIL_RTP_DROP,
            Ok(Verdict::Unknown(_)) => cardveil_rtp_verdict::CARDVEIL_RTP_UNKNOWN,
            Err(_) if cardveil_core::rtp::recognise(packet).is_some() => cardveil_rtp_verdict::CARDVEIL_RTP_NOT_RTP,
            Err(_) => cardveil_rtp_verdict::CARDVEIL_RTP_UNKNOWN,
        } as u32;
        self.after_frame(&mut call.caller);
        CARDVEIL_OK
    }

    /// The token of the last completed capture (control thread), or why
    /// there is none.
    fn last_token(&self) -> Result<&str, cardveil_result> {
        // SAFETY: control functions are the only users of `control`.
        let control = unsafe { &*self.control.get() };
        match &control.token {
            Some(t) => Ok(t),
            None if self.engine.tokens.is_none() => Err(CARDVEIL_NO_VAULT),
            None => Err(CARDVEIL_NO_TOKEN),
        }
    }

    /// On the event thread: the card to the worker, then the next event.
    fn poll(&self) -> Option<cardveil_event> {
        // SAFETY: the control functions are the only users of `control`,
        // one thread at a time (documented contract).
        let control = unsafe { &mut *self.control.get() };
        if self.card_state.load(Ordering::Acquire) == SLOT_FULL {
            // SAFETY: SLOT_FULL hands the slot to this thread until it stores SLOT_EMPTY.
            let slot = unsafe { &mut *self.card.get() };
            let card = std::mem::replace(slot, full_card());
            self.card_state.store(SLOT_EMPTY, Ordering::Release);
            if self.engine.tokens.is_some() && self.engine.submit(self.id, card) != CARDVEIL_OK {
                return Some(cardveil_event::empty(cardveil_event_kind::CARDVEIL_EVENT_TOKEN_FAILED));
            }
        }
        let dropped = self.events.dropped();
        if dropped > control.overflow_reported {
            let n = dropped - control.overflow_reported;
            control.overflow_reported = dropped;
            return Some(cardveil_event {
                digits: n.min(u32::MAX as u64) as u32,
                ..cardveil_event::empty(cardveil_event_kind::CARDVEIL_EVENT_OVERFLOW)
            });
        }
        if let Some(e) = self.events.pop() {
            return Some(e);
        }
        match self.engine.take_done(self.id)? {
            Done::Token { metadata, .. } => {
                let mut e = cardveil_event {
                    field: cardveil_field::CARDVEIL_FIELD_PAN as u32,
                    digits: metadata.digits as u32,
                    brand: brand_code(metadata.brand),
                    ..cardveil_event::empty(cardveil_event_kind::CARDVEIL_EVENT_TOKEN)
                };
                set_last4(&mut e, metadata.last4);
                if metadata.token.len() < CARDVEIL_TOKEN_MAX {
                    for (d, s) in e.token.iter_mut().zip(metadata.token.bytes()) {
                        *d = s as c_char;
                    }
                }
                control.token = Some(metadata.token);
                Some(e)
            }
            _ => Some(cardveil_event::empty(cardveil_event_kind::CARDVEIL_EVENT_TOKEN_FAILED)),
        }
    }
}

enum FrameMut<'a> {
    Pcm16(&'a mut [i16]),
    Ulaw(&'a mut [u8]),
    Alaw(&'a mut [u8]),
}

enum FrameRef<'a> {
    Pcm16(&'a [i16]),
    Ulaw(&'a [u8]),
    Alaw(&'a [u8]),
}

/// A frame and what to do with it (the RTP timestamp for the two-phase API).
enum Frame<'a> {
    Process(FrameMut<'a>),
    Mask(FrameMut<'a>, u32),
    Analyse(FrameRef<'a>, u32),
}

impl Frame<'_> {
    fn kind_and_len(&self) -> (Encoding, usize) {
        match self {
            Frame::Process(f) | Frame::Mask(f, _) => match f {
                FrameMut::Pcm16(x) => (Encoding::Pcm16, x.len()),
                FrameMut::Ulaw(x) => (Encoding::Ulaw, x.len()),
                FrameMut::Alaw(x) => (Encoding::Alaw, x.len()),
            },
            Frame::Analyse(f, _) => match f {
                FrameRef::Pcm16(x) => (Encoding::Pcm16, x.len()),
                FrameRef::Ulaw(x) => (Encoding::Ulaw, x.len()),
                FrameRef::Alaw(x) => (Encoding::Alaw, x.len()),
            },
        }
    }
}

/// A delay-line leg's frame, of either sample type.
fn delay<K: Keys>(
    leg: &mut Leg<Masker, K>,
    f: FrameMut<'_>,
    on: &mut dyn FnMut(MaskerEvent),
) -> Result<(), ConfigError> {
    match f {
        FrameMut::Pcm16(x) => leg.process(x, on),
        FrameMut::Ulaw(x) | FrameMut::Alaw(x) => leg.process(x, on),
    }
}

/// A two-phase leg's arriving frame.
fn analyse<K: Keys>(
    leg: &mut Leg<TwoPhaseMasker, K>,
    f: FrameRef<'_>,
    ts: u32,
    on: &mut dyn FnMut(MaskerEvent),
) -> Result<(), ConfigError> {
    match f {
        FrameRef::Pcm16(x) => leg.analyse(x, ts, on),
        FrameRef::Ulaw(x) | FrameRef::Alaw(x) => leg.analyse(x, ts, on),
    }
}

/// A two-phase leg's frame at playout.
fn playout<K: Keys>(leg: &mut Leg<TwoPhaseMasker, K>, f: FrameMut<'_>, ts: u32) -> Result<(), ConfigError> {
    match f {
        FrameMut::Pcm16(x) => leg.mask(x, ts),
        FrameMut::Ulaw(x) | FrameMut::Alaw(x) => leg.mask(x, ts),
    }
}

/// The call behind a C pointer (`None` for NULL).
///
/// # Safety
/// `call` is NULL or a live pointer from `cardveil_call_new`.
unsafe fn inner<'a>(call: *const cardveil_call) -> Option<&'a CallInner> {
    // SAFETY: the caller guarantees NULL or a live pointer from cardveil_call_new.
    unsafe { cardveil_call::get(call) }
}

/// Creates a call on `engine` (which it keeps alive) and writes it to
/// `*call_out` (only on success). Allocates everything the call will need;
/// frames then allocate nothing. `today_year`/`today_month` (e.g. 2026, 11)
/// are the date for the expiry check; 0/0 means the system's UTC date.
///
/// # Safety
/// `engine` is a live engine; `call_out` points to writable memory for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_new(
    engine: *const cardveil_engine,
    today_year: u32,
    today_month: u32,
    call_out: *mut *mut cardveil_call,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe {
        new_call(engine, today_year, today_month, call_out, |engine, config| {
            let made = if engine.two_phase {
                Call::new_two_phase(config).map(Calls::TwoPhase)
            } else {
                Call::new(config).map(Calls::Delay)
            };
            made.map_err(|_| CARDVEIL_INVALID_ARGUMENT)
        })
    }
}

/// Creates an RTP call on `engine`: `cardveil_call_process_rtp` then takes
/// whole RTP packets of either direction. G.711 payloads (PT 0 μ-law, PT 8
/// A-law, whatever the engine's `encoding`) are masked in place behind the
/// engine's look-ahead; telephone-events of `config->event_payload_type`
/// are neutralised or dropped; the caller's keys, in band or as events,
/// feed the capture once each. The engine must run at 8000 Hz and not be
/// two-phase (else CARDVEIL_INVALID_ARGUMENT). `config` NULL means
/// `cardveil_rtp_config_default()`. Otherwise as `cardveil_call_new`.
///
/// # Safety
/// As `cardveil_call_new`; `config` is NULL or points to a readable config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_new_rtp(
    engine: *const cardveil_engine,
    config: *const cardveil_rtp_config,
    today_year: u32,
    today_month: u32,
    call_out: *mut *mut cardveil_call,
) -> cardveil_result {
    // SAFETY: NULL or readable (caller's contract); copied out at once.
    let rtp = if config.is_null() { cardveil_rtp_config_default() } else { unsafe { config.read() } };
    // SAFETY: the caller's contract is this function's.
    unsafe {
        new_call(engine, today_year, today_month, call_out, |engine, config| {
            let action = match rtp.event_action {
                0 => EventAction::Neutralise(u8::try_from(rtp.fixed_event).map_err(|_| CARDVEIL_INVALID_ARGUMENT)?),
                1 => EventAction::Drop,
                _ => return Err(CARDVEIL_INVALID_ARGUMENT),
            };
            let pt = u8::try_from(rtp.event_payload_type).ok().filter(|&p| p < 128).ok_or(CARDVEIL_INVALID_ARGUMENT)?;
            if engine.two_phase || engine.masker.sample_rate != cardveil_core::rtp::CLOCK_HZ {
                return Err(CARDVEIL_INVALID_ARGUMENT);
            }
            Call::new_rtp(config, pt, action).map(|c| Calls::Rtp(Box::new(c))).map_err(|_| CARDVEIL_INVALID_ARGUMENT)
        })
    }
}

/// The body of the call constructors: checks, the date, the call made by
/// `make`, the handle written out.
///
/// # Safety
/// As `cardveil_call_new`.
unsafe fn new_call(
    engine: *const cardveil_engine,
    today_year: u32,
    today_month: u32,
    call_out: *mut *mut cardveil_call,
    make: impl FnOnce(&EngineInner, CallConfig) -> Result<Calls, cardveil_result>,
) -> cardveil_result {
    guard(None, || {
        if engine.is_null() || call_out.is_null() {
            return CARDVEIL_NULL_ARGUMENT;
        }
        // SAFETY: checked non-NULL; the caller guarantees a live engine.
        let Some(engine) = (unsafe { cardveil_engine::clone_arc(engine) }) else { return CARDVEIL_NULL_ARGUMENT };
        if engine.poisoned.load(Ordering::Acquire) {
            return CARDVEIL_POISONED;
        }
        let today = match (today_year, today_month) {
            (0, 0) => cardveil_core::call::today(),
            (y @ 2000..=9999, m @ 1..=12) => (y as u16, m as u8),
            _ => return CARDVEIL_INVALID_ARGUMENT,
        };
        let m = engine.masker;
        let config = CallConfig { masker: m, capture: CaptureConfig::standard(m.sample_rate, today) };
        let call = match make(&engine, config) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let inner = CallInner {
            id: engine.next_call_id(),
            audio: UnsafeCell::new(AudioSide { call, encoding: m.encoding }),
            control: UnsafeCell::new(ControlSide { token: None, overflow_reported: 0 }),
            events: Spsc::new(),
            commands: CaptureCommands::default(),
            card: UnsafeCell::new(full_card()),
            card_state: AtomicU8::new(SLOT_EMPTY),
            poisoned: AtomicBool::new(false),
            engine,
        };
        let p = cardveil_call::into_raw(Box::new(inner));
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { call_out.write(p) };
        CARDVEIL_OK
    })
}

/// Frees a call (and its reference to the engine; if that was the last,
/// see `cardveil_engine_free`); a card it still held is wiped. NULL is a
/// no-op. Must not run while a frame or control function of this call runs.
///
/// # Safety
/// `call` is NULL or a pointer from `cardveil_call_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_free(call: *mut cardveil_call) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: NULL, or from cardveil_call_new and freed once (the
        // caller's contract).
        if let Some(inner) = unsafe { cardveil_call::take(call) } {
            inner.engine.forget(inner.id);
        }
    });
}

/// The checks every frame and packet function makes before touching the
/// caller's buffer.
fn check_frame<T>(null: bool, len: usize) -> Result<(), cardveil_result> {
    if null && len != 0 {
        return Err(CARDVEIL_NULL_ARGUMENT);
    }
    if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(CARDVEIL_INVALID_LENGTH);
    }
    Ok(())
}

/// The caller's writable buffer of `len` elements, once checked (NULL is
/// allowed when `len` is 0).
///
/// # Safety
/// `ptr` is NULL or points to `len` writable elements not otherwise in use.
unsafe fn buffer_mut<'a, T>(ptr: *mut T, len: usize) -> Result<&'a mut [T], cardveil_result> {
    check_frame::<T>(ptr.is_null(), len)?;
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: non-NULL, `len` elements, writable (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// The caller's readable buffer of `len` elements, once checked.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable elements.
unsafe fn buffer_ref<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], cardveil_result> {
    check_frame::<T>(ptr.is_null(), len)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-NULL, `len` readable elements (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The body of the frame functions that write samples (process, mask).
///
/// # Safety
/// As for `cardveil_call_process_pcm16`.
unsafe fn frame_mut<T>(
    call: *mut cardveil_call,
    direction: u32,
    samples: *mut T,
    len: usize,
    wrap: impl FnOnce(&mut [T]) -> Frame<'_>,
) -> cardveil_result {
    // SAFETY: the caller guarantees NULL or a live call.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        // SAFETY: the caller's contract (NULL or `len` writable samples).
        match unsafe { buffer_mut(samples, len) } {
            Ok(frame) => c.process(direction, wrap(frame)),
            Err(r) => r,
        }
    })
}

/// The body of the analyse functions (samples only read).
///
/// # Safety
/// As for `cardveil_call_analyse_pcm16`.
unsafe fn frame_ref<T>(
    call: *mut cardveil_call,
    direction: u32,
    samples: *const T,
    len: usize,
    wrap: impl FnOnce(&[T]) -> Frame<'_>,
) -> cardveil_result {
    // SAFETY: the caller guarantees NULL or a live call.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        // SAFETY: the caller's contract (NULL or `len` readable samples).
        match unsafe { buffer_ref(samples, len) } {
            Ok(frame) => c.process(direction, wrap(frame)),
            Err(r) => r,
        }
    })
}

/// Masks a frame of signed 16-bit PCM (engine set up for PCM16), in place:
/// `samples[0..len]` becomes the call's output for `direction` (a
/// `cardveil_direction`), delayed by the look-ahead, every key press
/// masked. Up to 60 ms per call; any length from 0, changing between calls.
/// Never allocates, locks or blocks. Audio thread.
///
/// # Safety
/// `call` is NULL or a live call; `samples` points to `len` writable samples
/// (it may be NULL when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_process_pcm16(
    call: *mut cardveil_call,
    direction: u32,
    samples: *mut i16,
    len: usize,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_mut(call, direction, samples, len, |f| Frame::Process(FrameMut::Pcm16(f))) }
}

/// As `cardveil_call_process_pcm16`, for G.711 μ-law codes (engine set up for μ-law).
///
/// # Safety
/// As `cardveil_call_process_pcm16`, with `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_process_ulaw(
    call: *mut cardveil_call,
    direction: u32,
    codes: *mut u8,
    len: usize,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_mut(call, direction, codes, len, |f| Frame::Process(FrameMut::Ulaw(f))) }
}

/// As `cardveil_call_process_pcm16`, for G.711 A-law codes (engine set up for A-law).
///
/// # Safety
/// As `cardveil_call_process_pcm16`, with `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_process_alaw(
    call: *mut cardveil_call,
    direction: u32,
    codes: *mut u8,
    len: usize,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_mut(call, direction, codes, len, |f| Frame::Process(FrameMut::Alaw(f))) }
}

/// RTP calls (`cardveil_call_new_rtp`): scrubs one RTP packet of
/// `direction` in place — `packet[0..len]`, header included — and writes
/// a `cardveil_rtp_verdict` to `*verdict`: FORWARD (send it, possibly
/// rewritten), DROP or UNKNOWN (do not send it), NOT_RTP (RTCP, STUN or
/// DTLS, untouched: may be sent). The
/// packet's length never changes. Masked spans and capture events are
/// queued as for frames. Frame thread; never allocates, locks or blocks.
/// CARDVEIL_WRONG_API on a call not made by `cardveil_call_new_rtp`.
///
/// # Safety
/// `call` is NULL or a live call; `packet` points to `len` writable bytes
/// (NULL when `len` is 0); `verdict` points to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_process_rtp(
    call: *mut cardveil_call,
    direction: u32,
    packet: *mut u8,
    len: usize,
    verdict: *mut u32,
) -> cardveil_result {
    // SAFETY: the caller guarantees NULL or a live call.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        if verdict.is_null() {
            return CARDVEIL_NULL_ARGUMENT;
        }
        // SAFETY: the caller's contract (NULL or `len` writable bytes).
        let packet = match unsafe { buffer_mut(packet, len) } {
            Ok(p) => p,
            Err(r) => return r,
        };
        let mut v = 0;
        let r = c.process_rtp(direction, packet, &mut v);
        if r == CARDVEIL_OK {
            // SAFETY: checked non-NULL; writable (caller's contract).
            unsafe { verdict.write(v) };
        }
        r
    })
}

/// Two-phase API (engines with `two_phase` set): analyses a packet of
/// signed 16-bit PCM for `direction` when it arrives, before it goes into
/// the jitter buffer. `rtp_timestamp` is its first sample's RTP timestamp.
/// Reads the samples only. Duplicates and late packets are harmless; gaps
/// are masked at playout. With a jitter buffer at least 18 ms deep (the
/// engine's `lookahead_ms` says how deep), masking adds no delay. Runs on
/// the call's frame thread (analyse and mask of one call never
/// concurrently); never allocates, locks or blocks.
///
/// # Safety
/// `call` is NULL or a live call; `samples` points to `len` readable samples.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_analyse_pcm16(
    call: *mut cardveil_call,
    direction: u32,
    samples: *const i16,
    len: usize,
    rtp_timestamp: u32,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_ref(call, direction, samples, len, |f| Frame::Analyse(FrameRef::Pcm16(f), rtp_timestamp)) }
}

/// As `cardveil_call_analyse_pcm16`, for G.711 μ-law codes.
///
/// # Safety
/// As `cardveil_call_analyse_pcm16`, with `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_analyse_ulaw(
    call: *mut cardveil_call,
    direction: u32,
    codes: *const u8,
    len: usize,
    rtp_timestamp: u32,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_ref(call, direction, codes, len, |f| Frame::Analyse(FrameRef::Ulaw(f), rtp_timestamp)) }
}

/// As `cardveil_call_analyse_pcm16`, for G.711 A-law codes.
///
/// # Safety
/// As `cardveil_call_analyse_pcm16`, with `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_analyse_alaw(
    call: *mut cardveil_call,
    direction: u32,
    codes: *const u8,
    len: usize,
    rtp_timestamp: u32,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_ref(call, direction, codes, len, |f| Frame::Analyse(FrameRef::Alaw(f), rtp_timestamp)) }
}

/// Two-phase API: masks a frame of signed 16-bit PCM in place at playout
/// (`rtp_timestamp`: its first sample's). Audio never analysed, or lost and
/// concealed by the host, is masked. Same thread rule as analyse.
///
/// # Safety
/// `call` is NULL or a live call; `samples` points to `len` writable samples.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_mask_pcm16(
    call: *mut cardveil_call,
    direction: u32,
    samples: *mut i16,
    len: usize,
    rtp_timestamp: u32,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_mut(call, direction, samples, len, |f| Frame::Mask(FrameMut::Pcm16(f), rtp_timestamp)) }
}

/// As `cardveil_call_mask_pcm16`, for G.711 μ-law codes.
///
/// # Safety
/// As `cardveil_call_mask_pcm16`, with `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_mask_ulaw(
    call: *mut cardveil_call,
    direction: u32,
    codes: *mut u8,
    len: usize,
    rtp_timestamp: u32,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_mut(call, direction, codes, len, |f| Frame::Mask(FrameMut::Ulaw(f), rtp_timestamp)) }
}

/// As `cardveil_call_mask_pcm16`, for G.711 A-law codes.
///
/// # Safety
/// As `cardveil_call_mask_pcm16`, with `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_mask_alaw(
    call: *mut cardveil_call,
    direction: u32,
    codes: *mut u8,
    len: usize,
    rtp_timestamp: u32,
) -> cardveil_result {
    // SAFETY: the caller's contract is this function's.
    unsafe { frame_mut(call, direction, codes, len, |f| Frame::Mask(FrameMut::Alaw(f), rtp_timestamp)) }
}

fn command(call: *mut cardveil_call, command: Command) -> cardveil_result {
    // SAFETY: the exported callers pass the host's pointer, NULL or live.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        match command {
            Command::Begin => {
                // SAFETY: control functions are the only users of `control`.
                unsafe { &mut *c.control.get() }.token = None;
                c.commands.begin();
            }
            Command::Cancel => c.commands.cancel(),
        }
        CARDVEIL_OK
    })
}

/// Starts capturing card fields (PAN, expiry, CVV) from the caller's keys,
/// from the next frame on (wiping any earlier capture). DTMF is masked
/// whether or not a capture runs. Control thread.
///
/// # Safety
/// `call` is NULL or a live call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_capture_begin(call: *mut cardveil_call) -> cardveil_result {
    command(call, Command::Begin)
}

/// Cancels the capture at the next frame, wiping what it held. Control thread.
///
/// # Safety
/// `call` is NULL or a live call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_capture_cancel(call: *mut cardveil_call) -> cardveil_result {
    command(call, Command::Cancel)
}

/// Writes the next event to `*event_out`: CARDVEIL_OK, or CARDVEIL_NO_EVENT
/// when none waits. Also hands a completed card to the engine's vault (so
/// poll regularly). Control thread.
///
/// # Safety
/// `call` is NULL or a live call; `event_out` points to a writable `cardveil_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_poll_event(
    call: *mut cardveil_call,
    event_out: *mut cardveil_event,
) -> cardveil_result {
    // SAFETY: the caller guarantees NULL or a live call.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        if event_out.is_null() {
            return CARDVEIL_NULL_ARGUMENT;
        }
        match c.poll() {
            Some(e) => {
                // SAFETY: checked non-NULL; the caller guarantees it is writable.
                unsafe { event_out.write(e) };
                CARDVEIL_OK
            }
            None => CARDVEIL_NO_EVENT,
        }
    })
}

/// Copies the token of the last completed capture, NUL-terminated, into
/// `buf` (`cap` bytes) and its length (without the NUL) to `*len_out`.
/// CARDVEIL_NO_TOKEN until the TOKEN event was polled;
/// CARDVEIL_BUFFER_TOO_SMALL (with the needed length in `*len_out`) if
/// `cap` is not more than the length. Control thread.
///
/// # Safety
/// `call` is NULL or a live call; `buf` has `cap` writable bytes; `len_out`
/// is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_token(
    call: *mut cardveil_call,
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
) -> cardveil_result {
    // SAFETY: the caller guarantees NULL or a live call.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        if buf.is_null() || len_out.is_null() {
            return CARDVEIL_NULL_ARGUMENT;
        }
        let token = match c.last_token() {
            Ok(t) => t,
            Err(r) => return r,
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { len_out.write(token.len()) };
        if cap <= token.len() {
            return CARDVEIL_BUFFER_TOO_SMALL;
        }
        // SAFETY: `buf` has `cap` > len bytes (checked); the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(token.as_ptr(), buf.cast(), token.len());
            buf.add(token.len()).write(0);
        }
        CARDVEIL_OK
    })
}

/// Copies the CVV of the last completed capture — held in memory only,
/// against its token, for the payment step — as NUL-terminated ASCII digits
/// into `buf` (`cap` bytes, at least 5), its length to `*len_out`, and wipes
/// it: single use. CARDVEIL_NO_TOKEN until the TOKEN event was polled, and
/// once the CVV was taken or its 60 s passed (it is wiped then too).
/// CARDVEIL_BUFFER_TOO_SMALL if `cap` < 5 (the CVV stays). Wipe your copy
/// as soon as the payment request is sent. Control thread.
///
/// # Safety
/// `call` is NULL or a live call; `buf` has `cap` writable bytes; `len_out`
/// is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_call_take_cvv(
    call: *mut cardveil_call,
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
) -> cardveil_result {
    // SAFETY: the caller guarantees NULL or a live call.
    let Some(c) = (unsafe { inner(call) }) else { return CARDVEIL_NULL_ARGUMENT };
    guard(Some(&c.poisoned), || {
        if buf.is_null() || len_out.is_null() {
            return CARDVEIL_NULL_ARGUMENT;
        }
        if cap < 5 {
            return CARDVEIL_BUFFER_TOO_SMALL;
        }
        let token = match c.last_token() {
            Ok(t) => t,
            Err(r) => return r,
        };
        let mut cvv = Cvv::default();
        if !c.engine.take_cvv(token, &mut cvv) {
            return CARDVEIL_NO_TOKEN;
        }
        let digits = cvv.expose();
        // SAFETY: `buf` has `cap` >= 5 > digits.len() bytes; `len_out` is writable.
        unsafe {
            for (i, &d) in digits.iter().enumerate() {
                buf.add(i).write((b'0' + d) as c_char);
            }
            buf.add(digits.len()).write(0);
            len_out.write(digits.len());
        }
        CARDVEIL_OK
    })
}
