//! The ng relay's control side: the calls, their ports and what the ng
//! commands do to them (see the README's "Kamailio" section for the table).
//!
//! A call is made by its first `offer` (call-id + from-tag: the caller's
//! side), which takes two port pairs from the pool (RTP even, RTCP the
//! next), one facing each party, and builds the call's two legs; its
//! `answer` (to-tag: the callee's side) completes it. The SDP each party
//! sends is rewritten to point at the relay's port facing the *other*
//! party, so each party sends to its own port and the relay sends on from
//! the other. `delete` and the media timeout end a call and return its
//! ports. Calls are spread over the media threads (see [`super::media`]);
//! this thread only builds them, tells their threads what changed, reads
//! their counters and collects their events.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel, sync_channel};
use std::time::{Duration, Instant};

use cardveil_core::call::CaptureDriver;
use cardveil_core::capture::CaptureConfig;
use cardveil_core::rtp::{EventAction, RtpStreamConfig};
use cardveil_core::vault::{Done, Worker};

use super::bencode::Value;
use super::media::{CALLEE, CALLER, CallEvent, CallStats, FromMedia, MediaCall, MediaThread, Security, ToMedia};
use super::sdp::{self, Rewrite};
use super::{Commands, DtmfSecurity, Reply, error, ok};
use crate::capture::{done_line, event_line};
use crate::json::Obj;

/// Events in flight from the media threads.
const EVENT_SLOTS: usize = 4096;
/// Agent-safe events kept per call for `query` (the oldest go first).
const KEPT_EVENTS: usize = 64;
/// How long `delete` waits for the call's media thread to hand it back
/// (its ports are free once it has).
const RETURN_WAIT: Duration = Duration::from_millis(200);

/// A media interface: a name (`direction` picks by it) and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The name (`default` unless given as `NAME/ADDR`).
    pub name: String,
    /// Where its media ports bind, and what the SDP advertises.
    pub addr: IpAddr,
}

impl Interface {
    /// `ADDR` or `NAME/ADDR`.
    ///
    /// # Errors
    /// The address does not parse or is unspecified (`0.0.0.0`, `::`: the
    /// SDP must name an address the parties reach), or the name is empty.
    pub fn parse(s: &str) -> Result<Interface, String> {
        let (name, addr) = s.rsplit_once('/').unwrap_or(("default", s));
        let addr: IpAddr =
            addr.parse().map_err(|_| format!("--interface {s:?}: not an IP address (NAME/ADDR or ADDR)"))?;
        if name.is_empty() {
            return Err(format!("--interface {s:?}: empty name"));
        }
        if addr.is_unspecified() {
            return Err(format!("--interface {s:?}: the SDP needs an address the parties can reach, not {addr}"));
        }
        Ok(Interface { name: name.to_owned(), addr })
    }
}

/// The ng relay's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Media interfaces (the first is the default).
    pub interfaces: Vec<Interface>,
    /// The media port range (RTP on even ports, RTCP on the next).
    pub ports: (u16, u16),
    /// Media threads.
    pub threads: usize,
    /// Calls without any media for this long are deleted.
    pub timeout: Duration,
    /// Both directions' stream settings (the telephone-event payload type
    /// is taken from each call's offer).
    pub stream: RtpStreamConfig,
    /// Capture settings for the `capture` command (its `fields` may choose others).
    pub capture: CaptureConfig,
    /// Whether `DTMF-security=off` and `unblock DTMF` may turn masking off.
    pub allow_unmasked: bool,
}

/// The free RTP ports (even; RTCP on the next), reused last-freed-last.
#[derive(Debug)]
struct PortPool {
    free: VecDeque<u16>,
}

impl PortPool {
    fn new((min, max): (u16, u16)) -> PortPool {
        let first = min + (min & 1);
        PortPool { free: (first..max).step_by(2).collect() }
    }

    /// Binds an RTP/RTCP pair on `ip`, skipping ports another program holds.
    fn take(&mut self, ip: IpAddr) -> Option<(u16, [UdpSocket; 2])> {
        for _ in 0..self.free.len() {
            let port = self.free.pop_front()?;
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1));
            if let (Ok(a), Ok(b)) = (rtp, rtcp) {
                return Some((port, [a, b]));
            }
            self.free.push_back(port);
        }
        None
    }

    fn give_back(&mut self, port: u16) {
        self.free.push_back(port);
    }
}

/// What the control thread keeps of a call.
#[derive(Debug)]
struct Call {
    call_id: String,
    serial: u64,
    /// Its slot: media thread `slot % threads`, index `slot / threads` there.
    slot: usize,
    tags: [String; 2],
    /// The RTP port facing each party, and the interface it is on.
    ports: [u16; 2],
    interfaces: [usize; 2],
    /// Where each party said to send its media (from its SDP).
    endpoints: [Option<SocketAddr>; 2],
    created: Instant,
    created_unix: i64,
    stats: Arc<CallStats>,
    security: Security,
    capturing: bool,
    token: Option<String>,
    events: VecDeque<String>,
}

/// The ng relay's calls, ports and media threads.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    epoch: Instant,
    pool: PortPool,
    threads: Vec<MediaThread>,
    calls: Vec<Call>,
    by_serial: HashMap<u64, usize>,
    free_slots: Vec<usize>,
    /// Ports of deleted calls whose media thread has not handed them back yet.
    returning: HashMap<u64, [u16; 2]>,
    next_serial: u64,
    from_media: Receiver<FromMedia>,
    /// Calls the media threads let go of.
    returns: Receiver<Box<MediaCall>>,
    lost: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    worker: Option<Worker>,
    default_security: Security,
    /// JSON lines for the relay's stdout, taken by [`Engine::pump`]'s caller.
    lines: Vec<String>,
}

impl Engine {
    /// Starts the media threads. `worker` tokenizes completed cards
    /// (without one, a capture's card is wiped after its `complete` event).
    ///
    /// # Errors
    /// Settings refused (no interface, an empty or odd port range, no
    /// threads), or a thread cannot be started.
    pub fn start(config: EngineConfig, worker: Option<Worker>) -> io::Result<Engine> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if config.interfaces.is_empty() {
            return Err(invalid("the ng relay needs an --interface".into()));
        }
        let (min, max) = config.ports;
        if min < 1024 || max <= min {
            return Err(invalid(format!("--ports {min}-{max}: need 1024 ≤ MIN < MAX")));
        }
        if config.threads == 0 || config.threads > 64 {
            return Err(invalid("--threads must be 1 to 64".into()));
        }
        config.stream.masker.validate().map_err(|e| invalid(e.to_string()))?;
        let pool = PortPool::new(config.ports);
        // Two port pairs per call.
        let max_calls = (pool.free.len() / 2).max(1);
        let per_thread = max_calls.div_ceil(config.threads);
        let (tx, from_media) = sync_channel(EVENT_SLOTS);
        let (give_back, returns) = channel();
        let lost = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let threads = (0..config.threads)
            .map(|i| {
                MediaThread::spawn(
                    i,
                    per_thread,
                    tx.clone(),
                    give_back.clone(),
                    Arc::clone(&lost),
                    Arc::clone(&stop),
                    epoch,
                )
            })
            .collect::<io::Result<Vec<_>>>()?;
        let default_security =
            Security { mode: config.stream.masker.mode, events: config.stream.event_action, unmasked: false };
        let slots = per_thread * config.threads;
        Ok(Engine {
            epoch,
            pool,
            threads,
            calls: Vec::new(),
            by_serial: HashMap::new(),
            free_slots: (0..slots).rev().collect(),
            returning: HashMap::new(),
            next_serial: 1,
            from_media,
            returns,
            lost,
            stop,
            worker,
            default_security,
            lines: Vec::new(),
            config,
        })
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Free RTP ports (two per call).
    pub fn free_ports(&self) -> usize {
        self.pool.free.len()
    }

    /// Events the media threads could not hand over (a full channel).
    pub fn lost_events(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Takes the media threads' events, the tokenization results and the
    /// media timeouts, waiting up to `wait` for the first event; returns
    /// the JSON lines to print.
    pub fn pump(&mut self, wait: Duration) -> Vec<String> {
        match self.from_media.recv_timeout(wait) {
            Ok(m) => self.take(m),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        while let Ok(m) = self.from_media.try_recv() {
            self.take(m);
        }
        while let Ok(call) = self.returns.try_recv() {
            self.returned(call);
        }
        while let Some(done) = self.worker.as_ref().and_then(Worker::poll) {
            self.tokenized(&done);
        }
        self.expire();
        std::mem::take(&mut self.lines)
    }

    fn take(&mut self, m: FromMedia) {
        match m {
            FromMedia::Event(serial, e) => {
                let Some(&i) = self.by_serial.get(&serial) else { return };
                let call = &mut self.calls[i];
                let line = match &e {
                    CallEvent::Masked(side, s, e) => Obj::event("masked")
                        .str("direction", side_name(*side))
                        .ms("start_ms", *s)
                        .ms("end_ms", *e)
                        .finish(),
                    CallEvent::Key(side, src, s, e) => Obj::event("key")
                        .str("direction", side_name(*side))
                        .str("source", src.name())
                        .ms("start_ms", *s)
                        .ms("end_ms", *e)
                        .finish(),
                    CallEvent::Capture(c) => {
                        if matches!(
                            c,
                            cardveil_core::capture::CaptureEvent::Complete
                                | cardveil_core::capture::CaptureEvent::Failed(_)
                                | cardveil_core::capture::CaptureEvent::Cancelled
                        ) {
                            call.capturing = false;
                        }
                        event_line(c, None)
                    }
                };
                self.record(i, line);
            }
            FromMedia::Card(serial, card) => {
                let failed = match &self.worker {
                    Some(w) => w.submit(serial, card).err(),
                    None => None, // no vault: the card is wiped here
                };
                if let Some(error) = failed {
                    self.tokenized(&Done::Failed { tag: serial, error });
                }
            }
        }
    }

    /// A call its media thread let go of: its sockets closed, its ports back in the pool.
    fn returned(&mut self, call: Box<MediaCall>) {
        let serial = call.serial();
        drop(call); // closes its sockets first
        if let Some(ports) = self.returning.remove(&serial) {
            ports.into_iter().for_each(|p| self.pool.give_back(p));
        } else if let Some(&i) = self.by_serial.get(&serial) {
            // Its media thread could not take it (its sockets would not
            // register): the call is over before it began.
            let call = self.unlist(i);
            call.ports.into_iter().for_each(|p| self.pool.give_back(p));
            let line = Obj::event("call").str("call-id", &call.call_id).str("status", "failed").finish();
            self.lines.push(line);
        }
    }

    fn tokenized(&mut self, done: &Done) {
        let (serial, line, _) = done_line(done, false);
        let Some(&i) = self.by_serial.get(&(serial as u64)) else { return };
        if let Done::Token { metadata, .. } = done {
            self.calls[i].token = Some(metadata.token.clone());
        }
        self.record(i, line);
    }

    /// Keeps an event line for `query` and prints it with the call-id.
    fn record(&mut self, i: usize, line: String) {
        let call = &mut self.calls[i];
        if call.events.len() == KEPT_EVENTS {
            call.events.pop_front();
        }
        let mut tagged = String::from("{");
        crate::json::escape_into(&mut tagged, "call-id");
        tagged.push(':');
        crate::json::escape_into(&mut tagged, &call.call_id);
        tagged.push(',');
        tagged.push_str(line.strip_prefix('{').unwrap_or(&line));
        call.events.push_back(line);
        self.lines.push(tagged);
    }

    /// Deletes calls without media for the configured timeout.
    fn expire(&mut self) {
        let now = self.epoch.elapsed();
        let timeout = self.config.timeout;
        let stale: Vec<usize> = (0..self.calls.len())
            .filter(|&i| {
                let c = &self.calls[i];
                let last = c.stats.last_media.load(Ordering::Relaxed);
                let since =
                    if last == 0 { c.created.elapsed() } else { now.saturating_sub(Duration::from_millis(last)) };
                since > timeout
            })
            .collect();
        for i in stale.into_iter().rev() {
            let id = self.calls[i].call_id.clone();
            self.remove(i);
            self.lines.push(Obj::event("call").str("call-id", &id).str("status", "timeout").finish());
        }
    }

    fn thread_of(&self, slot: usize) -> (&MediaThread, usize) {
        let t = self.config.threads;
        (&self.threads[slot % t], slot / t)
    }

    fn find(&self, call_id: &str) -> Option<usize> {
        self.calls.iter().position(|c| c.call_id == call_id)
    }

    /// Takes call `i` off its media thread; its ports return to the pool
    /// when the thread hands it back (waited for, briefly).
    fn remove(&mut self, i: usize) {
        let call = self.unlist(i);
        self.returning.insert(call.serial, call.ports);
        let (thread, at) = self.thread_of(call.slot);
        thread.tell(ToMedia::Remove(at));
        let deadline = Instant::now() + RETURN_WAIT;
        while self.returning.contains_key(&call.serial) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.returns.recv_timeout(left) {
                Ok(c) => self.returned(c),
                Err(_) => break,
            }
        }
    }

    /// Takes call `i` out of the table (its slot is free again).
    fn unlist(&mut self, i: usize) -> Call {
        let call = self.calls.swap_remove(i);
        if let Some(moved) = self.calls.get(i) {
            self.by_serial.insert(moved.serial, i);
        }
        self.by_serial.remove(&call.serial);
        self.free_slots.push(call.slot);
        call
    }

    /// The interfaces `direction` names (facing the caller, the callee).
    fn directions(&self, body: &Value) -> Result<[usize; 2], String> {
        let Some(list) = body.get("direction").and_then(Value::as_list) else { return Ok([0, 0]) };
        let mut out = [0, 0];
        for (i, d) in list.iter().take(2).enumerate() {
            let name = d.as_str().ok_or("direction: not a list of interface names")?;
            out[i] = self
                .config
                .interfaces
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| format!("direction: no interface named {name:?}"))?;
        }
        if list.len() == 1 {
            out[1] = out[0];
        }
        Ok(out)
    }

    /// `offer` and `answer`: the party's media address taken from its SDP,
    /// its SDP rewritten to the port facing the other party.
    fn offer_answer(&mut self, command: &str, body: &Value) -> Reply {
        let text = |k: &str| body.get(k).and_then(Value::as_str);
        let (Some(call_id), Some(from_tag)) = (text("call-id"), text("from-tag")) else {
            return error("offer and answer need call-id and from-tag");
        };
        let Some(sdp_body) = text("sdp") else { return error("no SDP body") };
        let media = match sdp::parse(sdp_body) {
            Ok(m) => m,
            Err(e) => return error(&e.to_string()),
        };
        let Some(audio) = media.iter().position(|m| m.kind == "audio" && m.port != 0) else {
            return error("the SDP offers no audio stream");
        };
        // Fail closed: encrypted media cannot be inspected, so it is not relayed.
        if media[audio].proto.to_ascii_uppercase().contains("SAVP") {
            return error("SRTP (RTP/SAVP, DTLS-SRTP) cannot be inspected for keys: offer plain RTP/AVP to cardveil");
        }
        let flags: Vec<&str> =
            body.get("flags").and_then(Value::as_list).unwrap_or(&[]).iter().filter_map(Value::as_str).collect();
        // rtpengine spells flags with spaces or dashes, in any case.
        let flag = |f: &str| f.to_ascii_lowercase().replace(' ', "-");
        if let Some(unknown) = flags.iter().find(|f| !KNOWN_FLAGS.contains(&flag(f).as_str())) {
            return error(&format!("unknown flag {unknown:?}"));
        }
        let replace: Vec<&str> =
            body.get("replace").and_then(Value::as_list).unwrap_or(&[]).iter().filter_map(Value::as_str).collect();
        let how = Rewrite {
            origin: replace.iter().any(|r| r.eq_ignore_ascii_case("origin")),
            remove_ice: text("ICE").is_some_and(|v| v.eq_ignore_ascii_case("remove")),
        };
        // The party's address: its SDP's, or where its signalling came from
        // when asked (`SIP-source-address`) or when the SDP names none.
        let received =
            body.get("received-from").and_then(Value::as_list).and_then(|l| l.get(1)).and_then(Value::as_str);
        let received: Option<IpAddr> = received.and_then(|a| a.parse().ok());
        let m = &media[audio];
        let sdp_ip = m.addr.filter(|a| !a.is_unspecified());
        let source = flags.iter().any(|f| flag(f) == "sip-source-address");
        let Some(ip) = (if source { received.or(sdp_ip) } else { sdp_ip.or(received) }) else {
            return error("the SDP gives no address for its audio (and no received-from)");
        };
        let endpoint = (SocketAddr::new(ip, m.port), SocketAddr::new(ip, m.rtcp.unwrap_or(m.port.wrapping_add(1))));
        let i = match (command, self.find(call_id)) {
            ("offer", None) => match self.create(call_id, from_tag, body, m.telephone_event) {
                Ok(i) => i,
                Err(reply) => return reply,
            },
            (_, Some(i)) => i,
            (_, None) => return error("Unknown call-id"),
        };
        // Which party sent this SDP: the caller (its from-tag) or the callee.
        let side = {
            let c = &mut self.calls[i];
            let to_tag = text("to-tag");
            if command == "answer" {
                // The answering party is the to-tag's: the callee, or the
                // caller answering the callee's re-offer.
                match to_tag {
                    Some(t) if c.tags[CALLER] == t && c.tags[CALLEE] == from_tag => CALLER,
                    Some(_) if c.tags[CALLER] != from_tag => {
                        return error("answer: from-tag is not the offer's");
                    }
                    Some(t) if c.tags[CALLEE].is_empty() || c.tags[CALLEE] == t => {
                        c.tags[CALLEE] = t.to_owned();
                        CALLEE
                    }
                    Some(_) => return error("answer: to-tag does not match the call's"),
                    None => return error("answer needs a to-tag"),
                }
            } else if c.tags[CALLER] == from_tag {
                CALLER
            } else if c.tags[CALLEE] == from_tag {
                CALLEE // a re-offer from the callee
            } else {
                return error("offer: from-tag is neither party of this call");
            }
        };
        let c = &mut self.calls[i];
        c.endpoints[side] = Some(endpoint.0);
        let other = 1 - side;
        let addr = self.config.interfaces[c.interfaces[other]].addr;
        let ports: Vec<u16> = (0..media.len()).map(|k| if k == audio { c.ports[other] } else { 0 }).collect();
        let slot = c.slot;
        match sdp::rewrite(sdp_body, addr, &ports, how) {
            Ok(out) => {
                let (thread, at) = self.thread_of(slot);
                thread.tell(ToMedia::Remote(at, side, endpoint.0, endpoint.1));
                ok(vec![("sdp", Value::str(&out))])
            }
            Err(e) => error(&e.to_string()),
        }
    }

    /// A new call: a slot, two port pairs, its legs on a media thread.
    fn create(&mut self, call_id: &str, from_tag: &str, body: &Value, event_pt: Option<u8>) -> Result<usize, Reply> {
        let interfaces = self.directions(body).map_err(|e| error(&e))?;
        let Some(&slot) = self.free_slots.last() else { return Err(error("too many calls: no media slot free")) };
        let ip = |i: usize| self.config.interfaces[interfaces[i]].addr;
        let (ip_caller, ip_callee) = (ip(CALLER), ip(CALLEE));
        let Some((p_caller, s_caller)) = self.pool.take(ip_caller) else {
            return Err(error("no media ports free"));
        };
        let Some((p_callee, s_callee)) = self.pool.take(ip_callee) else {
            drop(s_caller);
            self.pool.give_back(p_caller);
            return Err(error("no media ports free"));
        };
        self.free_slots.pop();
        let serial = self.next_serial;
        self.next_serial += 1;
        let stream = RtpStreamConfig {
            event_payload_type: event_pt.unwrap_or(self.config.stream.event_payload_type),
            ..self.config.stream
        };
        let stats = Arc::new(CallStats::default());
        let media = match MediaCall::new(serial, [s_caller, s_callee], stream, self.config.capture, Arc::clone(&stats))
        {
            Ok(m) => m,
            Err(e) => {
                self.free_slots.push(slot);
                self.pool.give_back(p_caller);
                self.pool.give_back(p_callee);
                return Err(error(&e.to_string()));
            }
        };
        let (thread, at) = self.thread_of(slot);
        thread.tell(ToMedia::Add(at, Box::new(media)));
        self.calls.push(Call {
            call_id: call_id.to_owned(),
            serial,
            slot,
            tags: [from_tag.to_owned(), String::new()],
            ports: [p_caller, p_callee],
            interfaces,
            endpoints: [None, None],
            created: Instant::now(),
            created_unix: cardveil_core::vault::now(),
            stats,
            security: self.default_security,
            capturing: false,
            token: None,
            events: VecDeque::new(),
        });
        let i = self.calls.len() - 1;
        self.by_serial.insert(serial, i);
        Ok(i)
    }

    /// The call a request names (call-id, and from-tag if given, which must be a party's).
    fn named(&self, body: &Value) -> Result<usize, Reply> {
        let call_id = body.get("call-id").and_then(Value::as_str).ok_or_else(|| error("no call-id"))?;
        let i = self.find(call_id).ok_or_else(|| error("Unknown call-id"))?;
        for key in ["from-tag", "to-tag"] {
            if let Some(t) = body.get(key).and_then(Value::as_str)
                && !self.calls[i].tags.iter().any(|x| x == t)
            {
                return Err(error("Unknown tag"));
            }
        }
        Ok(i)
    }

    fn delete(&mut self, body: &Value) -> Reply {
        let i = match self.named(body) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let totals = self.totals(i);
        let created = self.calls[i].created_unix;
        self.remove(i);
        ok(vec![("created", Value::Int(created)), ("totals", totals)])
    }

    fn totals(&self, i: usize) -> Value {
        let s = &self.calls[i].stats;
        let sum = |f: fn(&super::media::SideStats) -> &AtomicU64| {
            Value::Int(s.sides.iter().map(|x| f(x).load(Ordering::Relaxed) as i64).sum())
        };
        dict(vec![
            (
                "RTP",
                dict(vec![
                    ("packets", sum(|x| &x.packets)),
                    ("bytes", sum(|x| &x.bytes)),
                    ("errors", sum(|x| &x.dropped)),
                ]),
            ),
            ("masked spans", sum(|x| &x.masked)),
        ])
    }

    fn query(&self, body: &Value) -> Reply {
        let i = match self.named(body) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let c = &self.calls[i];
        let mut tags = Vec::new();
        for side in [CALLER, CALLEE] {
            if c.tags[side].is_empty() {
                continue;
            }
            let s = &c.stats.sides[side];
            let n = |a: &AtomicU64| Value::Int(a.load(Ordering::Relaxed) as i64);
            let endpoint = c.endpoints[side].map_or(Value::Dict(Vec::new()), |e| {
                dict(vec![
                    ("family", Value::str(if e.is_ipv4() { "IPv4" } else { "IPv6" })),
                    ("address", Value::str(&e.ip().to_string())),
                    ("port", Value::Int(e.port().into())),
                ])
            });
            let stream = dict(vec![
                ("local port", Value::Int(c.ports[side].into())),
                ("endpoint", endpoint),
                ("stats", dict(vec![("packets", n(&s.packets)), ("bytes", n(&s.bytes)), ("errors", n(&s.dropped))])),
                ("masked spans", n(&s.masked)),
                ("keys", n(&s.keys)),
            ]);
            let media = dict(vec![
                ("index", Value::Int(1)),
                ("type", Value::str("audio")),
                ("streams", Value::List(vec![stream])),
            ]);
            let tag = dict(vec![("tag", Value::str(&c.tags[side])), ("medias", Value::List(vec![media]))]);
            tags.push((c.tags[side].as_bytes().to_vec(), tag));
        }
        let capture = dict(vec![
            ("capturing", Value::Int(c.capturing.into())),
            ("token", c.token.as_deref().map_or(Value::str(""), Value::str)),
            ("DTMF-security", Value::str(security_name(c.security))),
            ("events", Value::List(c.events.iter().map(|e| Value::str(e)).collect())),
        ]);
        ok(vec![
            ("created", Value::Int(c.created_unix)),
            ("totals", self.totals(i)),
            ("tags", Value::Dict(tags)),
            ("cardveil", capture),
        ])
    }

    fn block(&mut self, body: &Value, block: bool) -> Reply {
        let i = match self.named(body) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let mode = if block { body.get("DTMF-security").and_then(Value::as_str).unwrap_or("silence") } else { "off" };
        let digit = body.get("digit").and_then(Value::as_str);
        let security = match DtmfSecurity::parse(mode, digit) {
            Ok(s) => s,
            Err(reason) => return error(&reason),
        };
        let base = self.default_security;
        let silence = cardveil_core::mask::MaskMode::Silence;
        let s = match security {
            DtmfSecurity::Silence | DtmfSecurity::Zero => Security { mode: silence, ..base },
            DtmfSecurity::Tone => Security { mode: cardveil_core::mask::MaskMode::Tone, ..base },
            DtmfSecurity::Digit(code) => {
                Security { mode: silence, events: EventAction::Neutralise(code), unmasked: false }
            }
            DtmfSecurity::Drop => Security { mode: silence, events: EventAction::Drop, unmasked: false },
            DtmfSecurity::Off if !self.config.allow_unmasked => {
                return error("masking stays on: this relay was started without --allow-unmasked");
            }
            DtmfSecurity::Off => Security { unmasked: true, ..base },
        };
        let c = &mut self.calls[i];
        c.security = s;
        let slot = c.slot;
        let (thread, at) = self.thread_of(slot);
        thread.tell(ToMedia::Secure(at, s));
        ok(Vec::new())
    }

    fn capture(&mut self, body: &Value) -> Reply {
        let i = match self.named(body) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let c = &self.calls[i];
        if body.get("from-tag").and_then(Value::as_str) != Some(c.tags[CALLER].as_str()) {
            return error("capture needs the caller's from-tag (the offer's)");
        }
        let begin = match body.get("action").and_then(Value::as_str).unwrap_or("begin") {
            "begin" | "start" => true,
            "cancel" | "stop" => false,
            other => return error(&format!("capture: unknown action {other:?} (begin, cancel)")),
        };
        let driver = match body.get("fields").and_then(Value::as_str) {
            Some(f) => match crate::capture::parse_fields(f) {
                Ok(fields) => Some(Box::new(CaptureDriver::new(CaptureConfig { fields, ..self.config.capture }))),
                Err(e) => return error(&e.to_string()),
            },
            None => None,
        };
        let slot = c.slot;
        self.calls[i].capturing = begin;
        if begin {
            self.calls[i].token = None;
        }
        let (thread, at) = self.thread_of(slot);
        thread.tell(ToMedia::Capture(at, driver, begin));
        ok(Vec::new())
    }

    fn list(&self, body: &Value) -> Reply {
        let limit = match body.get("limit") {
            Some(Value::Int(n)) if *n >= 0 => *n as usize,
            _ => 32,
        };
        let ids = self.calls.iter().take(limit).map(|c| Value::str(&c.call_id)).collect();
        ok(vec![("calls", Value::List(ids))])
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in &mut self.threads {
            t.join();
        }
    }
}

/// Flags accepted in `offer` / `answer` (lower case): `sip-source-address`
/// (see `received-from`) and those that describe what cardveil does anyway
/// (it trusts the SDP's address, latches symmetrically, writes `a=rtcp` in
/// full and never adds one). A flag asking for what cardveil does not do —
/// `asymmetric`, `strict-source`, `media-handover`, `record-call`,
/// `loop-protect`, … — is refused rather than silently ignored.
const KNOWN_FLAGS: &[&str] =
    &["sip-source-address", "trust-address", "symmetric", "port-latching", "no-rtcp-attribute", "full-rtcp-attribute"];

fn dict(fields: Vec<(&str, Value)>) -> Value {
    Value::Dict(fields.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)).collect())
}

fn side_name(side: usize) -> &'static str {
    if side == CALLER { "caller" } else { "callee" }
}

fn security_name(s: Security) -> &'static str {
    match (s.unmasked, s.mode, s.events) {
        (true, ..) => "off",
        (_, _, EventAction::Drop) => "drop",
        (_, cardveil_core::mask::MaskMode::Tone, _) => "tone",
        (_, cardveil_core::mask::MaskMode::Noise, _) => "noise",
        _ => "silence",
    }
}

impl Commands for Engine {
    fn run(&mut self, command: &str, body: &Value) -> Reply {
        match command {
            "offer" | "answer" => self.offer_answer(command, body),
            "delete" => self.delete(body),
            "query" => self.query(body),
            "list" => self.list(body),
            "block DTMF" => self.block(body, true),
            "unblock DTMF" => self.block(body, false),
            "capture" => self.capture(body),
            _ => error("unknown command"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine on 127.0.0.1 (and `::1` as `v6`) with `pairs` port pairs from `base`.
    fn engine(base: u16, pairs: u16) -> Engine {
        let config = EngineConfig {
            interfaces: vec![
                Interface { name: "default".into(), addr: [127, 0, 0, 1].into() },
                Interface { name: "v6".into(), addr: "::1".parse().unwrap() },
            ],
            ports: (base, base + 2 * pairs),
            threads: 1,
            timeout: Duration::from_secs(60),
            stream: RtpStreamConfig::default(),
            capture: CaptureConfig::standard(8000, (2026, 12)),
            allow_unmasked: true,
        };
        Engine::start(config, None).unwrap()
    }

    fn request(fields: &[(&str, Value)]) -> Value {
        Value::Dict(fields.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())).collect())
    }

    fn sdp_of(r: &Value) -> &str {
        assert_eq!(r.get("result").and_then(Value::as_str), Some("ok"), "{:?}", r.get("error-reason"));
        r.get("sdp").and_then(Value::as_str).unwrap()
    }

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn re_offers_keep_the_ports_and_direction_picks_the_interfaces() {
        let base = 63_500 + (std::process::id() % 300) as u16 * 4;
        let mut e = engine(base, 2);
        let s = Value::str;
        let offer = |e: &mut Engine, extra: &[(&str, Value)]| {
            let mut f = vec![("call-id", s("c")), ("from-tag", s("a")), ("sdp", s(OFFER))];
            f.extend_from_slice(extra);
            e.run("offer", &request(&f))
        };
        // No address in the SDP (0.0.0.0): received-from is taken.
        let no_address = offer(&mut e, &[]);
        assert_eq!(no_address.get("result").and_then(Value::as_str), Some("error"), "no address at all");
        let from = Value::List(vec![s("IP4"), s("192.0.2.9")]);
        let first =
            offer(&mut e, &[("received-from", from.clone()), ("direction", Value::List(vec![s("default"), s("v6")]))]);
        let sdp = sdp_of(&first).to_owned();
        assert!(sdp.contains("c=IN IP6 ::1\r\n"), "the callee's side is on the v6 interface: {sdp}");
        assert!(sdp.contains("o=- 1 1 IN IP4 10.0.0.1"), "origin untouched without replace: {sdp}");
        assert_eq!(e.calls[0].endpoints[CALLER], Some("192.0.2.9:4000".parse().unwrap()));
        // A re-offer (a re-INVITE) keeps the call and its ports; replace-origin now.
        let again = offer(&mut e, &[("received-from", from.clone()), ("replace", Value::List(vec![s("origin")]))]);
        assert_eq!(sdp_of(&again).split("m=audio ").nth(1), sdp.split("m=audio ").nth(1), "same port");
        assert!(sdp_of(&again).contains("o=- 1 1 IN IP6 ::1"), "{}", sdp_of(&again));
        assert_eq!((e.calls(), e.free_ports()), (1, 0));
        // An unknown interface, a stranger's tag, an answer without a to-tag.
        let bad = offer(&mut e, &[("received-from", from), ("direction", Value::List(vec![s("dmz"), s("v6")]))]);
        assert_eq!(bad.get("result").and_then(Value::as_str), Some("ok"), "direction is read for new calls only");
        let addressed = OFFER.replace("0.0.0.0", "192.0.2.1");
        let stranger = e.run("offer", &request(&[("call-id", s("c")), ("from-tag", s("z")), ("sdp", s(&addressed))]));
        assert_eq!(
            stranger.get("error-reason").and_then(Value::as_str),
            Some("offer: from-tag is neither party of this call")
        );
        let answer = e.run("answer", &request(&[("call-id", s("c")), ("from-tag", s("a")), ("sdp", s(&addressed))]));
        assert_eq!(answer.get("error-reason").and_then(Value::as_str), Some("answer needs a to-tag"));
        let new = e.run(
            "offer",
            &request(&[
                ("call-id", s("d")),
                ("from-tag", s("a")),
                ("sdp", s(&addressed)),
                ("direction", Value::List(vec![s("dmz")])),
            ]),
        );
        assert_eq!(new.get("error-reason").and_then(Value::as_str), Some("direction: no interface named \"dmz\""));
        // A flag asking for what cardveil does not do is refused.
        let strict = offer(&mut e, &[("flags", Value::List(vec![s("strict source")]))]);
        assert_eq!(strict.get("error-reason").and_then(Value::as_str), Some("unknown flag \"strict source\""));
        let usual = offer(
            &mut e,
            &[
                ("received-from", Value::List(vec![s("IP4"), s("192.0.2.9")])),
                ("flags", Value::List(vec![s("trust address"), s("SIP-source-address")])),
            ],
        );
        sdp_of(&usual);
        // The callee answers, then re-offers (a re-INVITE from its side) and the caller answers that.
        let callee = |tag: &str, to: Option<&str>, cmd: &str, e: &mut Engine| {
            let mut f = vec![("call-id", s("c")), ("from-tag", s(tag)), ("sdp", s(&addressed))];
            if let Some(t) = to {
                f.push(("to-tag", s(t)));
            }
            e.run(cmd, &request(&f))
        };
        sdp_of(&callee("a", Some("b"), "answer", &mut e));
        let wrong = callee("x", Some("b"), "answer", &mut e);
        assert_eq!(wrong.get("error-reason").and_then(Value::as_str), Some("answer: from-tag is not the offer's"));
        sdp_of(&callee("b", None, "offer", &mut e));
        sdp_of(&callee("b", Some("a"), "answer", &mut e));
        assert_eq!(e.calls[0].tags, ["a".to_owned(), "b".to_owned()]);
        // unblock DTMF is allowed here (allow_unmasked), and shows in query.
        assert_eq!(
            e.run("unblock DTMF", &request(&[("call-id", s("c"))])).get("result").and_then(Value::as_str),
            Some("ok")
        );
        let q = e.run("query", &request(&[("call-id", s("c"))]));
        assert_eq!(q.get("cardveil").and_then(|c| c.get("DTMF-security")).and_then(Value::as_str), Some("off"));
        e.run("delete", &request(&[("call-id", s("c"))]));
        assert_eq!((e.calls(), e.free_ports()), (0, 2), "the ports are back");
    }

    #[test]
    fn interfaces_are_addresses_with_optional_names() {
        assert_eq!(
            Interface::parse("127.0.0.1"),
            Ok(Interface { name: "default".into(), addr: [127, 0, 0, 1].into() })
        );
        let named = Interface::parse("internal/::1").unwrap();
        assert_eq!((named.name.as_str(), named.addr), ("internal", "::1".parse().unwrap()));
        assert!(Interface::parse("internal/nowhere").is_err());
        assert!(Interface::parse("/127.0.0.1").is_err());
        assert!(Interface::parse("0.0.0.0").is_err() && Interface::parse("any/::").is_err(), "not advertisable");
    }

    #[test]
    fn the_pool_hands_out_even_ports_skips_busy_ones_and_takes_them_back() {
        // A range above the kernel's ephemeral ports (no test binds there by port 0).
        let base = 63_000 + (std::process::id() % 500) as u16 * 4;
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pool = PortPool::new((base + 1, base + 4));
        assert_eq!(pool.free, [base + 2], "RTP on even ports, RTCP on the next, inside the range");
        let mut pool = PortPool::new((base, base + 4));
        assert_eq!(pool.free, [base, base + 2]);
        let busy = UdpSocket::bind(SocketAddr::new(ip, base + 1)).unwrap();
        let (port, sockets) = pool.take(ip).expect("a pair");
        assert_eq!(port, base + 2, "the pair whose RTCP port is taken is skipped");
        assert_eq!(sockets[1].local_addr().unwrap().port(), base + 3);
        drop(busy);
        let (again, _) = pool.take(ip).expect("the skipped pair, now free");
        assert_eq!(again, base);
        assert!(pool.take(ip).is_none(), "exhausted");
        drop(sockets);
        pool.give_back(port);
        assert_eq!(pool.take(ip).map(|(p, _)| p), Some(base + 2));
    }
}
