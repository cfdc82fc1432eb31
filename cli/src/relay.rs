//! `cardveil relay --listen ADDR --forward ADDR`: a UDP RTP relay sidecar
//! that scrubs the media path in both directions.
//!
//! Packets arriving at `--listen` (the caller's leg) are scrubbed and sent
//! to `--forward` (the agent's side) from a second socket (`--bind`,
//! default an ephemeral port); what comes back to that socket is scrubbed
//! and sent to the caller's latest address (symmetric RTP: the relay
//! latches onto the caller's address). Each direction is one
//! delay-line [`RtpStream`]: G.711 audio masked (delayed by the
//! look-ahead), telephone-events neutralised or dropped.
//!
//! Fail closed: only what is positively recognised passes — RTP that the
//! stream inspects (G.711, telephone-events, comfort noise) and RTCP, STUN
//! and DTLS (see [`recognise`]); every other datagram (another payload
//! type, RTP of another version, a zero padding count, junk) is dropped
//! and counted. Latching: the caller's address is taken from its first
//! inspectable RTP packet and its SSRC kept; the relay moves to a new
//! address only for RTP of the same SSRC (a NAT rebinding) or for a new
//! SSRC that has sent [`RELATCH_PACKETS`] inspectable packets in a row
//! from there. Anything else from a stranger is dropped, never relayed.
//!
//! Capture is controlled over a Unix domain datagram socket
//! (`--control-socket PATH`, created mode 0600: only the relay's user can
//! write to it — the stronger choice) or a UDP control socket (`--control
//! ADDR`, on loopback only), which obeys one peer (`--control-peer ADDR`)
//! and ignores every other sender; one command per datagram (at most
//! [`MAX_COMMAND`] bytes: longer ones are refused), answered with one line:
//! `capture` (begin a capture of the caller's keys), `cancel`, `status`
//! (packet counters as JSON), `stop` (end the relay). Agent-safe events
//! are printed as JSON lines; a completed card is tokenized into the vault
//! and its token printed.
//!
//! Each direction runs on its own thread. Per packet there is no
//! allocation, lock or blocking beyond the socket calls: events go to the
//! printer through a bounded channel whose slots are allocated at start
//! (a full channel drops and counts events, never waits). A completed
//! capture hands its card to the tokenization worker (one allocation per
//! card).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use cardveil_core::call::{AgentLeg, CallerLeg, CaptureCommands, Keys};
use cardveil_core::capture::{CaptureConfig, CaptureEvent};
use cardveil_core::rtp::{CLOCK_HZ, KeySource, RtpHeader, RtpStream, RtpStreamConfig, StreamEvent, Verdict, recognise};
use cardveil_core::vault::{Done, Worker};

use crate::capture::{done_line, event_line};
use crate::json::Obj;
use crate::latch::{Admit, Latch};

/// How often blocked threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// Events in flight to the printer.
const EVENT_SLOTS: usize = 1024;
/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
pub use crate::latch::RELATCH_PACKETS;
/// The longest control command, in bytes.
pub const MAX_COMMAND: usize = 512;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Where the caller's leg arrives.
    pub listen: SocketAddr,
    /// Where the agent's side is.
    pub forward: SocketAddr,
    /// Local address toward the agent (default: an ephemeral port).
    pub bind: Option<SocketAddr>,
    /// The control socket's address, if any (loopback only).
    pub control: Option<SocketAddr>,
    /// The one address whose control commands are obeyed.
    pub control_peer: Option<SocketAddr>,
    /// A Unix domain datagram control socket to create (mode 0600: only
    /// the relay's user may command it), instead of or beside `control`.
    pub control_socket: Option<std::path::PathBuf>,
    /// Both directions' stream settings.
    pub stream: RtpStreamConfig,
    /// Capture settings (8000 Hz), if the control socket may begin captures.
    pub capture: Option<CaptureConfig>,
}

impl RelayOptions {
    /// Refuses settings that would loop packets or let strangers steer the relay.
    fn check(&self) -> io::Result<()> {
        let invalid = |m: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, m.to_owned()));
        let same = |a: SocketAddr, b: SocketAddr| {
            a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        };
        if same(self.listen, self.forward) || self.bind.is_some_and(|b| same(b, self.forward)) {
            return invalid("--forward is the relay's own address: packets would loop");
        }
        if let Some(c) = self.control {
            if !c.ip().is_loopback() {
                return invalid("--control must be a loopback address (127.0.0.1 or [::1])");
            }
            if self.control_peer.is_none() {
                return invalid("--control needs --control-peer ADDR: the one address whose commands are obeyed");
            }
        }
        Ok(())
    }
}

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the caller (`--listen`) to the agent (`--forward`).
    CallerToAgent,
    /// Back.
    AgentToCaller,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::CallerToAgent => "caller",
            Direction::AgentToCaller => "agent",
        }
    }
}

/// What the relay reports (never a key).
#[derive(Debug)]
pub enum RelayEvent {
    /// Audio masked in one direction (ms of that stream).
    Masked(Direction, f64, f64),
    /// A key press in one direction.
    Key(Direction, KeySource, f64, f64),
    /// A capture event (caller's keys).
    Capture(CaptureEvent),
    /// The vault's answer for a completed card.
    Token(Done),
}

impl RelayEvent {
    /// The event as one JSON line.
    pub fn json(&self) -> String {
        match self {
            RelayEvent::Masked(d, s, e) => {
                Obj::event("masked").str("direction", d.name()).ms("start_ms", *s).ms("end_ms", *e).finish()
            }
            RelayEvent::Key(d, src, s, e) => Obj::event("key")
                .str("direction", d.name())
                .str("source", src.name())
                .ms("start_ms", *s)
                .ms("end_ms", *e)
                .finish(),
            RelayEvent::Capture(e) => event_line(e, None),
            RelayEvent::Token(d) => done_line(d, false).1,
        }
    }
}

/// Counters and flags shared by the threads.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// Whether the relay was started with capture fields.
    can_capture: bool,
    /// Begin/cancel requests for the caller's leg.
    commands: CaptureCommands,
    /// Whether a capture runs (the caller's leg says so after each step).
    capturing: AtomicBool,
    packets: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    lost_events: AtomicU64,
    /// Control datagrams from other senders than the configured peer.
    stranger_commands: AtomicU64,
    /// The caller's address, and a generation that changes with it (the
    /// agent thread re-reads the address only when the generation moved).
    caller: Mutex<Option<SocketAddr>>,
    caller_gen: AtomicU32,
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The events, as they happen.
    pub events: Receiver<RelayEvent>,
    /// The caller-facing socket's address.
    pub listen: SocketAddr,
    /// The agent-facing socket's address.
    pub agent_side: SocketAddr,
    /// The control socket's address, if any.
    pub control: Option<SocketAddr>,
    /// The Unix domain control socket's path (removed when the relay ends).
    pub unix_control: Option<std::path::PathBuf>,
}

/// Creates the Unix domain control socket at `path`, readable and
/// writable by the relay's user only. An existing file there is refused,
/// unless it is a socket (a relay's leftover), which is replaced.
fn bind_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixDatagram> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "--control-socket names an existing file"));
        }
        Err(_) => {}
    }
    let socket = std::os::unix::net::UnixDatagram::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket.set_read_timeout(Some(TICK))?;
    Ok(socket)
}

impl Relay {
    /// Binds the sockets and starts the threads. `worker` tokenizes
    /// completed cards (without one, a capture's card is wiped after its
    /// `complete` event).
    ///
    /// # Errors
    /// A socket cannot be bound, or a stream's settings are invalid.
    pub fn start(options: &RelayOptions, worker: Option<Worker>) -> io::Result<Relay> {
        options.check()?;
        let invalid = |e: cardveil_core::mask::ConfigError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let caller_stream = RtpStream::new(options.stream).map_err(invalid)?;
        let agent_stream = RtpStream::new(options.stream).map_err(invalid)?;
        let a = UdpSocket::bind(options.listen)?;
        let bind = options.bind.unwrap_or_else(|| {
            let ip: std::net::IpAddr = if options.forward.is_ipv4() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            SocketAddr::new(ip, 0)
        });
        let b = UdpSocket::bind(bind)?;
        for s in [&a, &b] {
            s.set_read_timeout(Some(TICK))?;
        }
        let control = options.control.map(UdpSocket::bind).transpose()?;
        if let Some(c) = &control {
            c.set_read_timeout(Some(TICK))?;
        }
        let shared = Arc::new(Shared { can_capture: options.capture.is_some(), ..Shared::default() });
        let (tx, events) = sync_channel(EVENT_SLOTS);
        let mut relay = Relay {
            listen: a.local_addr()?,
            agent_side: b.local_addr()?,
            control: control.as_ref().map(UdpSocket::local_addr).transpose()?,
            unix_control: None,
            shared: Arc::clone(&shared),
            threads: Vec::new(),
            events,
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| std::thread::Builder::new().name(name.into()).spawn(f);
        let forward = options.forward;
        // The caller's leg captures only when the relay was given fields.
        let (from, to) = (a.try_clone()?, b.try_clone()?);
        let dir = Direction::CallerToAgent;
        let (pt, name) = (options.stream.event_payload_type, "cardveil-relay-caller");
        let thread = match options.capture {
            Some(c) => {
                let leg = Leg::new(dir, from, to, CallerLeg::caller(caller_stream, c), &shared, tx.clone(), pt);
                let leg = Leg { worker, ..leg };
                spawn(name, Box::new(move || leg.run(|_| Some(forward))))?
            }
            None => {
                let leg = Leg::new(dir, from, to, AgentLeg::agent(caller_stream), &shared, tx.clone(), pt);
                spawn(name, Box::new(move || leg.run(|_| Some(forward))))?
            }
        };
        relay.threads.push(thread);
        let agent = Leg::new(Direction::AgentToCaller, b, a, AgentLeg::agent(agent_stream), &shared, tx, pt);
        let peer = Arc::clone(&shared);
        let mut cached: (u32, Option<SocketAddr>) = (0, None);
        relay.threads.push(spawn(
            "cardveil-relay-agent",
            Box::new(move || {
                agent.run(move |_| {
                    let generation = peer.caller_gen.load(Ordering::Acquire);
                    if generation != cached.0 {
                        cached = (generation, *peer.caller.lock().unwrap_or_else(PoisonError::into_inner));
                    }
                    cached.1
                })
            }),
        )?);
        if let Some(path) = &options.control_socket {
            let socket = bind_unix(path)?;
            relay.unix_control = Some(path.clone());
            let s = Arc::clone(&shared);
            relay.threads.push(spawn("cardveil-relay-unix-control", Box::new(move || unix_control_loop(&socket, &s)))?);
        }
        if let Some(c) = control {
            let s = Arc::clone(&shared);
            let peer = options.control_peer.expect("checked: a control socket has a peer");
            relay.threads.push(spawn("cardveil-relay-control", Box::new(move || control_loop(&c, peer, &s)))?);
        }
        Ok(relay)
    }

    /// Whether a `stop` command (or [`Relay::stop`]) ended the relay.
    pub fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Stops the threads and waits for them.
    pub fn stop(self) {
        drop(self); // Drop stops the threads and removes the control socket's file
    }

    /// Packets relayed so far, caller → agent and agent → caller.
    pub fn packets(&self) -> [u64; 2] {
        [0, 1].map(|i| self.shared.packets[i].load(Ordering::Relaxed))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(p) = &self.unix_control {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One direction: receive, scrub, send. `L` is the core's leg: the
/// caller's with a capture, or a leg whose keys are only masked.
struct Leg<L> {
    dir: Direction,
    from: UdpSocket,
    to: UdpSocket,
    leg: L,
    shared: Arc<Shared>,
    events: SyncSender<RelayEvent>,
    worker: Option<Worker>,
    /// The caller's address (the lock is taken only when it changes).
    latch: Latch,
}

impl<L> Leg<L> {
    fn new(
        dir: Direction,
        from: UdpSocket,
        to: UdpSocket,
        leg: L,
        shared: &Arc<Shared>,
        events: SyncSender<RelayEvent>,
        event_pt: u8,
    ) -> Leg<L> {
        let shared = Arc::clone(shared);
        Leg { dir, from, to, leg, shared, events, worker: None, latch: Latch::new(event_pt) }
    }
}

/// A relay direction's capture, if it has one: the control thread's
/// requests carried out, the capture's events printed, a completed card
/// handed to the tokenization worker.
trait Capturing {
    fn step(&mut self, _shared: &Shared, _events: &SyncSender<RelayEvent>, _worker: Option<&Worker>) {}
}

impl Capturing for AgentLeg<RtpStream> {}

impl Capturing for CallerLeg<RtpStream> {
    fn step(&mut self, shared: &Shared, events: &SyncSender<RelayEvent>, worker: Option<&Worker>) {
        self.apply(&shared.commands);
        let capture = self.capture();
        capture.drain(|e| emit(events, shared, RelayEvent::Capture(e)));
        if let Some(card) = capture.take_card()
            && let Some(w) = worker
            && let Err(error) = w.submit(0, Box::new(card))
        {
            // The card was wiped; say so as the token's failure.
            emit(events, shared, RelayEvent::Token(Done::Failed { tag: 0, error }));
        }
        shared.capturing.store(capture.is_capturing(), Ordering::Release);
    }
}

/// Milliseconds of the stream clock at position `x` (samples).
fn ms(x: u64) -> f64 {
    x as f64 * 1000.0 / CLOCK_HZ as f64
}

impl<K: Keys> Leg<cardveil_core::call::Leg<RtpStream, K>>
where
    cardveil_core::call::Leg<RtpStream, K>: Capturing,
{
    fn run(mut self, mut destination: impl FnMut(SocketAddr) -> Option<SocketAddr>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let i = self.dir as usize;
        while !self.shared.stop.load(Ordering::Acquire) {
            self.leg.step(&self.shared, &self.events, self.worker.as_ref());
            if let Some(w) = &self.worker
                && let Some(done) = w.poll()
            {
                emit(&self.events, &self.shared, RelayEvent::Token(done));
            }
            let (n, src) = match self.from.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                Err(_) => continue, // ICMP port unreachable from an earlier send, and the like
            };
            let packet = &mut buf[..n];
            let header = RtpHeader::parse(packet).ok();
            if self.dir == Direction::CallerToAgent && !self.latch(src, header.as_ref()) {
                self.shared.dropped[i].fetch_add(1, Ordering::Relaxed);
                continue; // a stranger's datagram: never relayed, never followed
            }
            let Some(dst) = destination(src) else { continue };
            let verdict = {
                let (events, shared, dir) = (&self.events, &self.shared, self.dir);
                self.leg.process_rtp(packet, &mut |e| {
                    let ev = match e {
                        StreamEvent::Masked(s) => RelayEvent::Masked(dir, ms(s.start), ms(s.end)),
                        StreamEvent::Key(key) => RelayEvent::Key(dir, key.source, ms(key.start), ms(key.end)),
                    };
                    emit(events, shared, ev);
                })
            };
            let forward = match verdict {
                Ok(Verdict::Forward) => true,
                Ok(Verdict::Drop | Verdict::Unknown(_)) => false,
                // Not RTP cardveil can inspect: only RTCP, STUN and DTLS pass.
                Err(_) => recognise(packet).is_some(),
            };
            self.leg.step(&self.shared, &self.events, self.worker.as_ref());
            if forward {
                let _ = self.to.send_to(packet, dst);
                self.shared.packets[i].fetch_add(1, Ordering::Relaxed);
            } else {
                self.shared.dropped[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether a datagram from `src` (RTP header `h`, if it parses) belongs
    /// to the caller's leg; latches onto the caller (see [`Latch`]).
    fn latch(&mut self, src: SocketAddr, h: Option<&RtpHeader>) -> bool {
        match self.latch.admit(src, h) {
            Admit::Peer => true,
            Admit::Stranger => false,
            Admit::Moved(to) => {
                let s = &self.shared;
                *s.caller.lock().unwrap_or_else(PoisonError::into_inner) = Some(to);
                s.caller_gen.fetch_add(1, Ordering::AcqRel);
                true
            }
        }
    }
}

/// Hands an event to the printer without waiting: a full channel drops
/// it and counts the loss.
fn emit(events: &SyncSender<RelayEvent>, shared: &Shared, e: RelayEvent) {
    if let Err(TrySendError::Full(_)) = events.try_send(e) {
        shared.lost_events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves the control socket until `stop`: commands from `peer` only
/// (anything else is ignored, unanswered), none longer than [`MAX_COMMAND`].
fn control_loop(socket: &UdpSocket, peer: SocketAddr, s: &Shared) {
    let mut buf = [0u8; MAX_COMMAND + 1];
    while !s.stop.load(Ordering::Acquire) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
        if from != peer {
            s.stranger_commands.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let _ = socket.send_to(answer(&buf[..n], s).as_bytes(), from);
    }
}

/// Serves the Unix domain control socket until `stop`: whoever may write
/// to its file (mode 0600: the relay's user) is obeyed; replies go to a
/// sender that bound an address of its own.
fn unix_control_loop(socket: &std::os::unix::net::UnixDatagram, s: &Shared) {
    let mut buf = [0u8; MAX_COMMAND + 1];
    while !s.stop.load(Ordering::Acquire) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
        let reply = answer(&buf[..n], s);
        if let Some(path) = from.as_pathname() {
            let _ = socket.send_to(reply.as_bytes(), path);
        }
    }
}

/// The reply to one control datagram (longer than [`MAX_COMMAND`]: refused).
fn answer(datagram: &[u8], s: &Shared) -> String {
    if datagram.len() > MAX_COMMAND {
        return format!("error: command longer than {MAX_COMMAND} bytes");
    }
    let command = String::from_utf8_lossy(datagram).trim().to_ascii_lowercase();
    match command.as_str() {
        "capture" | "capture begin" | "cancel" | "capture cancel" if !s.can_capture => {
            "error: the relay was started without --capture".to_owned()
        }
        "capture" | "capture begin" => {
            s.commands.begin();
            "ok".to_owned()
        }
        "cancel" | "capture cancel" => {
            s.commands.cancel();
            "ok".to_owned()
        }
        "status" => {
            let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
            Obj::new()
                .int("caller_packets", n(&s.packets[0]))
                .int("agent_packets", n(&s.packets[1]))
                .int("caller_dropped", n(&s.dropped[0]))
                .int("agent_dropped", n(&s.dropped[1]))
                .bool("capturing", s.capturing.load(Ordering::Relaxed))
                .int("lost_events", n(&s.lost_events))
                .int("stranger_commands", n(&s.stranger_commands))
                .finish()
        }
        "stop" => {
            s.stop.store(true, Ordering::Release);
            "ok".to_owned()
        }
        _ => "error: unknown command (capture, cancel, status, stop)".to_owned(),
    }
}

/// `cardveil relay` arguments.
#[derive(Debug)]
pub struct RelayArgs<'a> {
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--forward`.
    pub forward: SocketAddr,
    /// `--bind`.
    pub bind: Option<SocketAddr>,
    /// `--control`.
    pub control: Option<SocketAddr>,
    /// `--control-peer`.
    pub control_peer: Option<SocketAddr>,
    /// `--control-socket`.
    pub control_socket: Option<std::path::PathBuf>,
    /// Both directions' stream settings.
    pub stream: RtpStreamConfig,
    /// `--capture` fields.
    pub capture: Option<&'a str>,
    /// The vault, when capturing.
    pub vault: crate::vault::VaultLocation,
}

/// Runs the relay until a `stop` command: a first line with the bound
/// addresses, then one JSON line per event, flushed as it happens.
pub fn run(args: RelayArgs<'_>, out: &mut dyn std::io::Write) -> Result<(), crate::CliError> {
    use crate::CliError;
    let fields = args.capture.map(crate::capture::parse_fields).transpose()?;
    let worker = match fields {
        None => None,
        Some(_) => {
            let vault = args.vault.open(Default::default(), true, &mut std::io::stderr())?.into_boxed();
            let w = Worker::spawn(vault, &crate::vault::actor(), cardveil_core::vault::CVV_HOLD)
                .map_err(|e| CliError::input(std::path::Path::new("tokenization worker"), e))?;
            Some(w)
        }
    };
    let today = cardveil_core::call::today();
    let options = RelayOptions {
        listen: args.listen,
        forward: args.forward,
        bind: args.bind,
        control: args.control,
        control_peer: args.control_peer,
        control_socket: args.control_socket,
        stream: args.stream,
        capture: fields.map(|fields| CaptureConfig { fields, ..CaptureConfig::standard(CLOCK_HZ, today) }),
    };
    let io = |what: &str, e: std::io::Error| CliError::input(std::path::Path::new(what), e);
    let relay = Relay::start(&options, worker).map_err(|e| io("relay sockets", e))?;
    let first = Obj::event("relay")
        .str("listen", &relay.listen.to_string())
        .str("forward", &args.forward.to_string())
        .str("agent_side", &relay.agent_side.to_string())
        .opt_str("control", relay.control.map(|c| c.to_string()).as_deref())
        .opt_str("control_socket", relay.unix_control.as_deref().and_then(std::path::Path::to_str));
    writeln!(out, "{}", first.finish()).and_then(|()| out.flush()).map_err(|e| io("<stdout>", e))?;
    while !relay.stopped() {
        match relay.events.recv_timeout(TICK) {
            Ok(e) => writeln!(out, "{}", e.json()).and_then(|()| out.flush()).map_err(|e| io("<stdout>", e))?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let [caller, agent] = relay.packets();
    relay.stop();
    writeln!(out, "{}", Obj::event("stopped").int("caller_packets", caller).int("agent_packets", agent).finish())
        .map_err(|e| io("<stdout>", e))
}
