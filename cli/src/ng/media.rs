//! The ng relay's media path: a fixed set of threads ([`MediaThread`]),
//! each polling (epoll, through `mio`) the sockets of the calls given to
//! it. A call is four sockets — RTP and RTCP facing each party — and two
//! legs: the caller's (the offer's `from-tag`, captured on request) and the
//! callee's. A packet from one party is scrubbed by that party's leg and
//! sent on from the socket facing the other party, to where that party
//! latched (see [`crate::latch`]) or, before it has sent anything, to the
//! address its SDP gave.
//!
//! Fail closed as in `cardveil relay`: only RTP the legs inspect (G.711,
//! telephone-events, comfort noise) and RTCP, STUN and DTLS pass the RTP
//! ports; only RTCP from the party's address passes the RTCP ports; the
//! rest is dropped and counted.
//!
//! Per packet there is no allocation, lock or blocking beyond the socket
//! calls: every buffer is allocated when the thread starts, a call's state
//! when the control thread builds it (and it goes back there to be freed),
//! events go to the control thread through a bounded channel whose slots
//! are allocated up front (a full channel drops and counts, never waits).
//! A completed card is boxed once on its way to the tokenization worker.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, TrySendError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cardveil_core::call::{AgentLeg, CallerLeg, CaptureDriver};
use cardveil_core::capture::{CaptureConfig, CaptureEvent, Card};
use cardveil_core::mask::MaskMode;
use cardveil_core::rtp::{
    CLOCK_HZ, Control, EventAction, KeySource, RtpHeader, RtpStream, RtpStreamConfig, StreamEvent, Verdict, recognise,
};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::latch::{Admit, Latch};

/// Sockets per call: RTP and RTCP facing each of the two parties.
pub const SOCKETS_PER_CALL: usize = 4;
/// The caller's side (the offer's `from-tag`) and the callee's.
pub const CALLER: usize = 0;
/// See [`CALLER`].
pub const CALLEE: usize = 1;
/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
/// How long a media thread sleeps in `poll` without traffic.
const TICK: Duration = Duration::from_millis(50);
/// The waker's token (no call's socket has it).
const WAKER: Token = Token(usize::MAX);

/// What one party sent through the relay.
#[derive(Debug, Default)]
pub struct SideStats {
    /// Packets received at this party's ports and forwarded.
    pub packets: AtomicU64,
    /// Their bytes.
    pub bytes: AtomicU64,
    /// Datagrams not forwarded (strangers', uninspectable, dropped events).
    pub dropped: AtomicU64,
    /// Masked spans in this party's audio.
    pub masked: AtomicU64,
    /// Key presses seen (in-band or as events).
    pub keys: AtomicU64,
}

/// A call's counters, read by the control thread (`query`, timeouts).
#[derive(Debug, Default)]
pub struct CallStats {
    /// [`CALLER`] and [`CALLEE`].
    pub sides: [SideStats; 2],
    /// When the latest datagram arrived, ms after the relay's epoch (0: none yet).
    pub last_media: AtomicU64,
}

/// How key presses are replaced (rtpengine's `DTMF-security`, mapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Security {
    /// What masked audio becomes.
    pub mode: MaskMode,
    /// What telephone-events become.
    pub events: EventAction,
    /// Nothing masked: packets leave as they came (only with the relay's
    /// `--allow-unmasked`; the legs still see them, so keys are counted).
    pub unmasked: bool,
}

/// Something a call reports (never a key).
#[derive(Debug)]
pub enum CallEvent {
    /// Audio masked in one party's stream (ms of that stream).
    Masked(usize, f64, f64),
    /// A key press in one party's stream.
    Key(usize, KeySource, f64, f64),
    /// A capture event (the caller's keys).
    Capture(CaptureEvent),
}

/// What the media threads tell the control thread.
#[derive(Debug)]
pub enum FromMedia {
    /// A call's event.
    Event(u64, CallEvent),
    /// A call's completed card, for the tokenization worker.
    Card(u64, Box<Card>),
}

/// What the control thread tells a media thread (slot: the call's index on it).
#[derive(Debug)]
pub enum ToMedia {
    /// Serve this call at this slot.
    Add(usize, Box<MediaCall>),
    /// A party's addresses from its SDP (RTP, RTCP).
    Remote(usize, usize, SocketAddr, SocketAddr),
    /// New key-press replacement for both directions.
    Secure(usize, Security),
    /// Begin a capture of the caller's keys (with these settings, if given), or cancel it.
    Capture(usize, Option<Box<CaptureDriver>>, bool),
    /// Stop serving the call and hand it back.
    Remove(usize),
}

/// One party's ports and what they latched onto.
#[derive(Debug)]
struct Side {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    latch: Latch,
    /// The party's addresses from its SDP, until it latches.
    remote: Option<(SocketAddr, SocketAddr)>,
}

/// A call on a media thread.
#[derive(Debug)]
pub struct MediaCall {
    serial: u64,
    stats: Arc<CallStats>,
    sides: [Side; 2],
    caller: CallerLeg<RtpStream>,
    callee: AgentLeg<RtpStream>,
    unmasked: bool,
}

impl MediaCall {
    /// A call over `sockets` (for each party: RTP, RTCP, bound already),
    /// both directions scrubbed with `stream`, the caller's keys captured
    /// with `capture` once asked.
    ///
    /// # Errors
    /// The stream settings are refused, or a socket cannot be made non-blocking.
    pub fn new(
        serial: u64,
        sockets: [[std::net::UdpSocket; 2]; 2],
        stream: RtpStreamConfig,
        capture: CaptureConfig,
        stats: Arc<CallStats>,
    ) -> io::Result<MediaCall> {
        let invalid = |e: cardveil_core::mask::ConfigError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let caller = CallerLeg::caller(RtpStream::new(stream).map_err(invalid)?, capture);
        let callee = AgentLeg::agent(RtpStream::new(stream).map_err(invalid)?);
        let side = |[rtp, rtcp]: [std::net::UdpSocket; 2]| -> io::Result<Side> {
            rtp.set_nonblocking(true)?;
            rtcp.set_nonblocking(true)?;
            Ok(Side {
                rtp: UdpSocket::from_std(rtp),
                rtcp: UdpSocket::from_std(rtcp),
                latch: Latch::new(stream.event_payload_type),
                remote: None,
            })
        };
        let [a, b] = sockets;
        Ok(MediaCall { serial, stats, sides: [side(a)?, side(b)?], caller, callee, unmasked: false })
    }

    /// The call's serial number (its events carry it).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    fn register(&mut self, poll: &Poll, slot: usize) -> io::Result<()> {
        for (i, side) in self.sides.iter_mut().enumerate() {
            let base = slot * SOCKETS_PER_CALL + 2 * i;
            poll.registry().register(&mut side.rtp, Token(base), Interest::READABLE)?;
            poll.registry().register(&mut side.rtcp, Token(base + 1), Interest::READABLE)?;
        }
        Ok(())
    }

    fn deregister(&mut self, poll: &Poll) {
        for side in &mut self.sides {
            let _ = poll.registry().deregister(&mut side.rtp);
            let _ = poll.registry().deregister(&mut side.rtcp);
        }
    }

    fn secure(&mut self, s: Security) {
        for stream in [self.caller.path_mut(), self.callee.path_mut()] {
            stream.set_mask_mode(s.mode);
            stream.set_event_action(s.events);
        }
        self.unmasked = s.unmasked;
    }

    /// Where packets for party `i` go: where it latched, else its SDP's.
    fn destination(&self, i: usize, rtcp: bool) -> Option<SocketAddr> {
        let side = &self.sides[i];
        match (side.latch.peer(), side.remote) {
            // Latched where its SDP said: its SDP's RTCP address; moved
            // (NAT): the port after the one it sends RTP from.
            (Some(a), r) if rtcp => Some(match r {
                Some((rtp, c)) if rtp == a => c,
                _ => SocketAddr::new(a.ip(), a.port().wrapping_add(1)),
            }),
            (Some(a), _) => Some(a),
            (None, r) => r.map(|(rtp, c)| if rtcp { c } else { rtp }),
        }
    }

    /// Reads every datagram waiting at party `i`'s RTP port and relays it.
    fn relay_rtp(&mut self, i: usize, io: &mut Buffers, now_ms: u64, out: &SyncSender<FromMedia>, lost: &AtomicU64) {
        let other = 1 - i;
        loop {
            let (n, src) = match self.sides[i].rtp.recv_from(&mut io.packet) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue, // ICMP port unreachable from an earlier send, and the like
            };
            self.stats.last_media.store(now_ms, Ordering::Relaxed);
            let stats = &self.stats.sides[i];
            let packet = &mut io.packet[..n];
            let header = RtpHeader::parse(packet).ok();
            if self.sides[i].latch.admit(src, header.as_ref()) == Admit::Stranger {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue; // a stranger's datagram: never relayed, never followed
            }
            let Some(dst) = self.destination(other, false) else {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue; // the other party's address is not known yet
            };
            if self.unmasked {
                io.original[..n].copy_from_slice(packet);
            }
            let serial = self.serial;
            let mut sink = |e: StreamEvent| {
                let ev = match e {
                    StreamEvent::Masked(s) => {
                        stats.masked.fetch_add(1, Ordering::Relaxed);
                        CallEvent::Masked(i, ms(s.start), ms(s.end))
                    }
                    StreamEvent::Key(k) => {
                        stats.keys.fetch_add(1, Ordering::Relaxed);
                        CallEvent::Key(i, k.source, ms(k.start), ms(k.end))
                    }
                };
                send(out, lost, FromMedia::Event(serial, ev));
            };
            let verdict = if i == CALLER {
                self.caller.process_rtp(packet, &mut sink)
            } else {
                self.callee.process_rtp(packet, &mut sink)
            };
            let forward = match verdict {
                Ok(Verdict::Forward) => true,
                Ok(Verdict::Drop) => self.unmasked,
                Ok(Verdict::Unknown(_)) => false,
                // Not RTP cardveil can inspect: only RTCP (muxed), STUN and DTLS pass.
                Err(_) => recognise(packet).is_some(),
            };
            let data = if self.unmasked { &io.original[..n] } else { &*packet };
            if forward && self.sides[other].rtp.send_to(data, dst).is_ok() {
                stats.packets.fetch_add(1, Ordering::Relaxed);
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            } else {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if i == CALLER {
            self.step_capture(out, lost);
        }
    }

    /// Reads every datagram waiting at party `i`'s RTCP port: RTCP from the
    /// party's address is relayed, everything else dropped.
    fn relay_rtcp(&mut self, i: usize, io: &mut Buffers, out_of: u64) {
        let other = 1 - i;
        loop {
            let (n, src) = match self.sides[i].rtcp.recv_from(&mut io.packet) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            self.stats.last_media.store(out_of, Ordering::Relaxed);
            let party = self.destination(i, false).map(|a| a.ip());
            let dst = self.destination(other, true);
            let ok = party == Some(src.ip()) && recognise(&io.packet[..n]) == Some(Control::Rtcp);
            let sent = ok && dst.is_some_and(|d| self.sides[other].rtcp.send_to(&io.packet[..n], d).is_ok());
            let stats = &self.stats.sides[i];
            if sent {
                stats.packets.fetch_add(1, Ordering::Relaxed);
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            } else {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The caller's capture: its events out, a completed card handed on.
    fn step_capture(&mut self, out: &SyncSender<FromMedia>, lost: &AtomicU64) {
        let serial = self.serial;
        let capture = self.caller.capture();
        capture.drain(|e| send(out, lost, FromMedia::Event(serial, CallEvent::Capture(e))));
        if let Some(card) = capture.take_card() {
            // If the channel is full the card is dropped here (wiped) and the loss counted.
            send(out, lost, FromMedia::Card(serial, Box::new(card)));
        }
    }
}

/// Milliseconds of the stream clock at position `x` (samples).
fn ms(x: u64) -> f64 {
    x as f64 * 1000.0 / CLOCK_HZ as f64
}

/// Hands a message to the control thread without waiting: a full channel
/// drops it and counts the loss.
fn send(out: &SyncSender<FromMedia>, lost: &AtomicU64, m: FromMedia) {
    if let Err(TrySendError::Full(_)) = out.try_send(m) {
        lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// A media thread's packet buffers (allocated once; `Debug` shows their
/// size, never what they hold).
struct Buffers {
    packet: Box<[u8]>,
    /// The packet as it came, for calls that pass it unmasked.
    original: Box<[u8]>,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffers({} bytes each)", self.packet.len())
    }
}

/// A running media thread.
#[derive(Debug)]
pub struct MediaThread {
    inbox: Sender<ToMedia>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl MediaThread {
    /// Starts a thread that can serve `slots` calls at once (see
    /// [`MediaLoop::new`]); it ends when `stop` is set.
    ///
    /// # Errors
    /// The poller or the thread cannot be created.
    pub fn spawn(
        index: usize,
        slots: usize,
        out: SyncSender<FromMedia>,
        returns: Sender<Box<MediaCall>>,
        lost: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
        epoch: Instant,
    ) -> io::Result<MediaThread> {
        let mut media = MediaLoop::new(slots, out, returns, lost, epoch)?;
        let waker = Arc::new(media.waker()?);
        let (inbox, rx) = channel::<ToMedia>();
        let thread = std::thread::Builder::new().name(format!("cardveil-ng-media-{index}")).spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let obey_all = |media: &mut MediaLoop| {
                    while let Ok(m) = rx.try_recv() {
                        media.obey(m);
                    }
                };
                if media.turn_after(TICK, obey_all).is_err() {
                    break;
                }
            }
            media.release_all();
        })?;
        Ok(MediaThread { inbox, waker, thread: Some(thread) })
    }

    /// Sends the thread a message and wakes it.
    pub fn tell(&self, m: ToMedia) {
        if self.inbox.send(m).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Waits for the thread to end (after the stop flag was set).
    pub fn join(&mut self) {
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MediaThread {
    fn drop(&mut self) {
        self.join();
    }
}

/// One media thread's work, on whichever thread runs it: the calls' sockets
/// polled, their packets relayed, the control thread's messages obeyed.
/// Everything is allocated in [`MediaLoop::new`]; [`MediaLoop::turn`]
/// allocates nothing.
#[derive(Debug)]
pub struct MediaLoop {
    poll: Poll,
    events: Events,
    io: Buffers,
    calls: Box<[Option<Box<MediaCall>>]>,
    out: SyncSender<FromMedia>,
    /// Calls handed back (never lost, unlike events: their ports return to the pool).
    returns: Sender<Box<MediaCall>>,
    lost: Arc<AtomicU64>,
    epoch: Instant,
}

impl MediaLoop {
    /// A loop for up to `slots` calls at once. Its events go to `out` (a
    /// full channel counts into `lost`), the calls it lets go of to
    /// `returns`; `epoch` is the clock of [`CallStats::last_media`].
    ///
    /// # Errors
    /// The poller cannot be created.
    pub fn new(
        slots: usize,
        out: SyncSender<FromMedia>,
        returns: Sender<Box<MediaCall>>,
        lost: Arc<AtomicU64>,
        epoch: Instant,
    ) -> io::Result<MediaLoop> {
        Ok(MediaLoop {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            io: Buffers {
                packet: vec![0; MAX_DATAGRAM].into_boxed_slice(),
                original: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            },
            calls: (0..slots).map(|_| None).collect(),
            out,
            returns,
            lost,
            epoch,
        })
    }

    /// A waker that ends a [`MediaLoop::turn`] early.
    ///
    /// # Errors
    /// The poller refuses it.
    pub fn waker(&self) -> io::Result<Waker> {
        Waker::new(self.poll.registry(), WAKER)
    }

    /// Waits up to `timeout` for datagrams and relays every one waiting.
    ///
    /// # Errors
    /// The poller failed (not for an interrupted wait).
    pub fn turn(&mut self, timeout: Duration) -> io::Result<()> {
        self.turn_after(timeout, |_| {})
    }

    /// [`Self::turn`], calling `first` between the wait and the relaying:
    /// the media thread carries out the control thread's messages there, so
    /// that a packet sent after the control reply (e.g. the first RTCP after
    /// an `answer`) meets the call as that reply described it.
    ///
    /// # Errors
    /// The poller failed (not for an interrupted wait).
    pub fn turn_after(&mut self, timeout: Duration, first: impl FnOnce(&mut Self)) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        first(self);
        let now_ms = (self.epoch.elapsed().as_millis() as u64).max(1);
        for event in &self.events {
            let Token(t) = event.token();
            if t == WAKER.0 {
                continue;
            }
            let (slot, socket) = (t / SOCKETS_PER_CALL, t % SOCKETS_PER_CALL);
            let Some(Some(call)) = self.calls.get_mut(slot) else { continue };
            let (side, rtcp) = (socket / 2, socket % 2 == 1);
            if rtcp {
                call.relay_rtcp(side, &mut self.io, now_ms);
            } else {
                call.relay_rtp(side, &mut self.io, now_ms, &self.out, &self.lost);
            }
        }
        Ok(())
    }

    /// Hands every call back to the control thread (to be freed there).
    pub fn release_all(&mut self) {
        for slot in 0..self.calls.len() {
            self.obey(ToMedia::Remove(slot));
        }
    }

    /// Carries out one of the control thread's messages.
    pub fn obey(&mut self, m: ToMedia) {
        match m {
            ToMedia::Add(slot, mut call) => {
                if slot < self.calls.len() && self.calls[slot].is_none() && call.register(&self.poll, slot).is_ok() {
                    self.calls[slot] = Some(call);
                } else {
                    call.deregister(&self.poll);
                    let _ = self.returns.send(call);
                }
            }
            ToMedia::Remote(slot, side, rtp, rtcp) => {
                if let Some(Some(c)) = self.calls.get_mut(slot) {
                    c.sides[side].remote = Some((rtp, rtcp));
                }
            }
            ToMedia::Secure(slot, s) => {
                if let Some(Some(c)) = self.calls.get_mut(slot) {
                    c.secure(s);
                }
            }
            ToMedia::Capture(slot, driver, begin) => {
                if let Some(Some(c)) = self.calls.get_mut(slot) {
                    if let Some(d) = driver {
                        // The old driver (no heap of its own) is dropped here.
                        *c.caller.capture() = *d;
                    }
                    if begin {
                        c.caller.begin_capture();
                    } else {
                        c.caller.cancel_capture();
                    }
                    c.step_capture(&self.out, &self.lost);
                }
            }
            ToMedia::Remove(slot) => {
                if let Some(mut call) = self.calls.get_mut(slot).and_then(Option::take) {
                    call.deregister(&self.poll);
                    let _ = self.returns.send(call);
                }
            }
        }
    }
}
