//! Scrubbing libpcap and pcapng captures (`cardveil pcap IN -o OUT` is
//! built on [`scrub_stream`]; [`scrub`] does the same in memory): every
//! RTP stream of the capture, the output in the input's format (pcapng
//! packets scrubbed in place at their length). G.711 audio (PT 0, 8) is
//! masked where it carries key tones (two-phase: the capture is read
//! ahead, so nothing is delayed), telephone-events are neutralised to one
//! fixed code (or dropped, the sequence numbers renumbered), SIP INFO DTMF
//! bodies are rewritten, and UDP checksums follow the payloads.
//!
//! Streaming: records are held only until their stream's analysis has run
//! far enough ahead of them; a stream silent for [`IDLE_NS`] of capture
//! time, or the oldest of more than [`MAX_HELD`] held records, is ended
//! there (as at the end of the capture), and a later datagram of its
//! 5-tuple starts a new stream.
//!
//! Fail closed: a stream is a UDP 5-tuple (its SSRC and sequence numbers
//! may do anything), found in a first pass over the whole capture, so it
//! takes its datagrams from the first one on. Every datagram that parses as
//! RTP with a G.711 payload type makes one, whatever its ports; so does a well-formed DTMF
//! telephone-event, and comfort noise between unprivileged ports other
//! than SIP's; `--rtp-port` forces any datagram to or from a port to be
//! one. Once a stream exists, every datagram of its 5-tuple is either
//! inspected (G.711, telephone-events, comfort noise), recognised as RTCP,
//! STUN or DTLS and kept as it is, or **blanked in place**: the record
//! stays, its length unchanged, the bytes cardveil could not inspect
//! zeroed (an RTP payload of another payload type, or the whole UDP
//! payload of a datagram that does not parse) and the checksum fixed.
//! UDP datagrams of no stream are copied unchanged.

pub mod file;
pub mod net;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use crate::dtmf::Key;
use crate::mask::TwoPhaseMasker;
use crate::rtp::{
    CLOCK_HZ, DEFAULT_FIXED_EVENT, EventAction, KeySource, PT_CN, PT_PCMA, PT_PCMU, RtpHeader, RtpStream,
    RtpStreamConfig, StreamEvent, Verdict, event_key, recognise, rewrite_message, scrub_message_in_place,
};

use file::Item;
pub use file::{Format, PcapError};
use net::Udp;
use std::io::{Read, Write};

/// Scrubbing settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcapOptions {
    /// Stream settings (`masker.lookahead_ms`: how far the analysis runs
    /// ahead of the rewrite; encoding set per payload type).
    pub stream: RtpStreamConfig,
    /// UDP ports whose datagrams are RTP whatever they look like.
    pub rtp_ports: Vec<u16>,
}

/// One RTP stream's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Stream number (order of first packet).
    pub stream: usize,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Synchronisation source of its first RTP packet (0 if none parsed).
    pub ssrc: u32,
    /// Packets seen.
    pub packets: usize,
    /// G.711 packets.
    pub audio: usize,
    /// Telephone-event packets.
    pub events: usize,
    /// Key presses found (in band or as events, each once).
    pub keys: usize,
    /// Packets left out of the output (dropped telephone-events).
    pub dropped: usize,
    /// Packets kept with what cardveil could not inspect zeroed (other
    /// payload types, datagrams that do not parse as RTP, RTCP, STUN or DTLS).
    pub blanked: usize,
}

/// What scrubbing reports; never a key.
#[derive(Debug, Clone, PartialEq)]
pub enum PcapEvent {
    /// G.711 audio masked, in ms of the stream's clock.
    Masked {
        /// Stream number.
        stream: usize,
        /// Start, ms.
        start_ms: f64,
        /// End, ms.
        end_ms: f64,
    },
    /// A key press found (its value is not given).
    Key {
        /// Stream number.
        stream: usize,
        /// In band or as telephone-events.
        source: KeySource,
        /// Start, ms.
        start_ms: f64,
        /// End, ms.
        end_ms: f64,
    },
    /// A SIP INFO request's DTMF body was rewritten.
    SipInfo {
        /// Packet number in the capture (1-based, as tshark counts).
        packet: usize,
    },
    /// A stream's totals, at the end.
    Stream(StreamSummary),
}

/// The scrubbed capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrubbed {
    /// The output file, in the input's format.
    pub file: Vec<u8>,
    /// The format.
    pub format: Format,
    /// Packets read.
    pub packets_in: usize,
    /// Packets written.
    pub packets_out: usize,
    /// pcapng blocks left out because they cannot be inspected (custom
    /// blocks, journal entries, unknown types).
    pub blocks_dropped: usize,
}

struct Stream {
    summary: StreamSummary,
    rtp: RtpStream<TwoPhaseMasker>,
    /// Packets analysed, waiting for the analysis to run far enough ahead:
    /// record number, datagram, and the stream position the analysis had
    /// reached with it. Positions, not RTP timestamps: a timestamp that
    /// jumps far ahead must not let later packets play out before the
    /// analysis has looked ahead of them.
    pending: VecDeque<(usize, Udp, u64)>,
    /// Finished: idle too long, or the capture ended.
    ended: bool,
    /// Capture time of its latest datagram, ns.
    last_seen: u64,
}

impl Stream {
    fn new(n: usize, udp: &Udp, ssrc: u32, config: RtpStreamConfig) -> Result<Stream, PcapError> {
        Ok(Stream {
            summary: StreamSummary {
                stream: n,
                src: udp.src,
                dst: udp.dst,
                ssrc,
                packets: 0,
                audio: 0,
                events: 0,
                keys: 0,
                dropped: 0,
                blanked: 0,
            },
            rtp: {
                let mut rtp = RtpStream::new_two_phase(config).map_err(|e| PcapError::Settings(e.to_string()))?;
                rtp.keep_unknown_blanked();
                rtp
            },
            pending: VecDeque::new(),
            ended: false,
            last_seen: 0,
        })
    }

    /// Analyses the stream's next datagram (item `item` of the capture,
    /// seen at `now`) and holds it until the analysis has run ahead of it.
    fn push(&mut self, item: usize, payload: &[u8], udp: Udp, now: u64, on: &mut dyn FnMut(PcapEvent)) {
        let summary = &mut self.summary;
        let _ = self.rtp.analyse(payload, &mut |e| report(summary, e, on));
        self.pending.push_back((item, udp, self.rtp.position()));
        self.last_seen = now;
    }

    /// Plays out the held datagrams the analysis has run at least `lag`
    /// samples ahead of.
    fn drain(&mut self, lag: u64, out: &mut Output<'_>) {
        let reached = self.rtp.position();
        while let Some(&(_, _, at)) = self.pending.front() {
            if reached < at + lag {
                break;
            }
            let (j, u, _) = self.pending.pop_front().expect("front exists");
            playout(self, out.held(j), &u);
        }
    }

    /// Ends the stream: the analysis finished, every datagram still held
    /// played out.
    fn end(&mut self, out: &mut Output<'_>, on: &mut dyn FnMut(PcapEvent)) {
        if self.ended {
            return;
        }
        self.ended = true;
        let summary = &mut self.summary;
        self.rtp.finish(&mut |e| report(summary, e, on));
        while let Some((j, u, _)) = self.pending.pop_front() {
            playout(self, out.held(j), &u);
        }
    }
}

/// The capture's streams, found by their 5-tuple.
struct Streams {
    list: Vec<Stream>,
    index: HashMap<(SocketAddr, SocketAddr), usize>,
    config: RtpStreamConfig,
    /// 5-tuples that are streams somewhere in the capture (a first pass), so
    /// datagrams before the one that shows it are scrubbed with the stream too.
    known: HashSet<(SocketAddr, SocketAddr)>,
}

impl Streams {
    /// Ends stream `stream` (see [`Stream::end`]); a later datagram of its
    /// 5-tuple starts a new stream.
    fn end(&mut self, stream: usize, out: &mut Output<'_>, on: &mut dyn FnMut(PcapEvent)) {
        let s = &mut self.list[stream];
        s.end(out, on);
        let key = (s.summary.src, s.summary.dst);
        if self.index.get(&key) == Some(&stream) {
            self.index.remove(&key);
        }
    }

    /// The first pass: every 5-tuple one of whose datagrams starts a stream.
    fn discover<R: Read>(
        reader: &mut file::Reader<R>,
        config: RtpStreamConfig,
    ) -> Result<HashSet<(SocketAddr, SocketAddr)>, PcapError> {
        let mut known = HashSet::new();
        while let Some(item) = reader.next_item()? {
            let Item::Packet { raw, data, link_type, .. } = item else { continue };
            let frame = &raw[data];
            let Some(udp) = net::find_udp(link_type, frame) else { continue };
            let payload = &frame[udp.payload.clone()];
            let Ok(h) = RtpHeader::parse_lenient(payload) else { continue };
            if starts_stream(&udp, &h, payload, config.event_payload_type) {
                known.insert((udp.src, udp.dst));
            }
        }
        Ok(known)
    }

    /// The stream `udp` belongs to: an existing one, or a new one if the
    /// first pass found its 5-tuple or its port is forced (see the module
    /// docs); `h` is its RTP header, if it parsed (the summary's SSRC).
    fn classify(&mut self, udp: &Udp, h: Option<&RtpHeader>, forced: bool) -> Result<Option<usize>, PcapError> {
        if let Some(&n) = self.index.get(&(udp.src, udp.dst)) {
            return Ok(Some(n));
        }
        if !forced && !self.known.contains(&(udp.src, udp.dst)) {
            return Ok(None);
        }
        let n = self.list.len();
        self.list.push(Stream::new(n, udp, h.map_or(0, |h| h.ssrc), self.config)?);
        self.index.insert((udp.src, udp.dst), n);
        Ok(Some(n))
    }
}

/// Scrubs a libpcap or pcapng capture held in memory (see the module docs).
///
/// # Errors
/// [`PcapError`] if the capture cannot be read; nothing is produced then.
pub fn scrub(input: &[u8], options: &PcapOptions, on: &mut dyn FnMut(PcapEvent)) -> Result<Scrubbed, PcapError> {
    let mut file = Vec::with_capacity(input.len());
    let s = scrub_stream(|| Ok(input), &mut file, options, on)?;
    Ok(Scrubbed {
        file,
        format: s.format,
        packets_in: s.packets_in,
        packets_out: s.packets_out,
        blocks_dropped: s.blocks_dropped,
    })
}

/// What [`scrub_stream`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubSummary {
    /// The format (the output's too).
    pub format: Format,
    /// Packets read.
    pub packets_in: usize,
    /// Packets written.
    pub packets_out: usize,
    /// pcapng blocks left out because they cannot be inspected.
    pub blocks_dropped: usize,
}

/// Items held for the output until every packet before them is final.
/// Beyond this many, the stream the oldest waits on is ended early (its
/// packets released with the analysis it has, as at the end of the
/// capture), so memory stays bounded whatever the capture holds.
pub const MAX_HELD: usize = 1 << 16;

/// A stream silent this long (capture time) is ended: its last packets go
/// out with the analysis it has, and a later datagram of its 5-tuple
/// starts a new stream.
pub const IDLE_NS: u64 = 2_000_000_000;

/// One item on its way to the output.
struct Held {
    item: Item,
    state: HeldState,
    /// A SIP INFO rewritten at a new length (libpcap only).
    replaced: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HeldState {
    /// Final: written when its turn comes.
    Ready,
    /// Left out (a dropped telephone-event, an uninspectable block).
    Dropped,
    /// A packet of this stream, waiting for its analysis to run ahead.
    Waiting(usize),
}

/// Scrubs a capture read as a stream (twice: `open` gives a fresh reader
/// of the same bytes each time — the first pass finds the streams), written
/// to `out` as it goes, in bounded memory (see [`MAX_HELD`]).
///
/// # Errors
/// [`PcapError`] if the capture cannot be read or the output written
/// (what was written so far is then incomplete: write to a temporary).
pub fn scrub_stream<R: Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
    out: &mut dyn Write,
    options: &PcapOptions,
    on: &mut dyn FnMut(PcapEvent),
) -> Result<ScrubSummary, PcapError> {
    let io = |e: std::io::Error| PcapError::Io(format!("cannot read: {e}"));
    let written = |e: std::io::Error| PcapError::Io(format!("cannot write the output: {e}"));
    let config = options.stream;
    let known = Streams::discover(&mut file::Reader::new(open().map_err(io)?)?, config)?;
    let mut reader = file::Reader::new(open().map_err(io)?)?;
    let format = reader.format();
    let mut streams = Streams { list: Vec::new(), index: HashMap::new(), config, known };
    let lag = config.masker.lookahead_ms.max(1) as u64 * CLOCK_HZ as u64 / 1000;
    let fixed_key = fixed_key(config.event_action);
    let mut output = Output {
        held: VecDeque::new(),
        base: 0,
        out,
        big_endian: reader.big_endian(),
        summary: ScrubSummary { format, packets_in: 0, packets_out: 0, blocks_dropped: 0 },
    };
    let mut now = 0u64;
    let mut n = 0usize;
    while let Some(item) = reader.next_item()? {
        let i = n;
        n += 1;
        let mut h = Held { item, state: HeldState::Ready, replaced: None };
        let mut waiting = None;
        if let Item::Packet { raw, data, link_type, ts_ns, .. } = &mut h.item {
            output.summary.packets_in += 1;
            now = now.max(*ts_ns);
            let record = output.summary.packets_in;
            if let Some((stream, udp)) = inspect(
                raw,
                data.clone(),
                *link_type,
                record,
                format,
                &mut streams,
                options,
                fixed_key,
                &mut h.replaced,
                on,
            )? {
                h.state = HeldState::Waiting(stream);
                let payload = &raw[data.clone()][udp.payload.clone()];
                streams.list[stream].push(i, payload, udp, now, on);
                waiting = Some(stream);
            }
        } else if let Item::Other { keep: false, .. } = h.item {
            h.state = HeldState::Dropped;
            output.summary.blocks_dropped += 1;
        }
        output.held.push_back(h);
        // Packets whose stream's analysis has run far enough ahead go out.
        if let Some(stream) = waiting {
            streams.list[stream].drain(lag, &mut output);
        }
        // The oldest item waits on a stream gone quiet, or too much is held: end that stream.
        while let Some(stream) = output.oldest_waiting() {
            let idle = now.saturating_sub(streams.list[stream].last_seen) > IDLE_NS;
            if !idle && output.held.len() <= MAX_HELD {
                break;
            }
            streams.end(stream, &mut output, on);
        }
        output.write_ready().map_err(written)?;
    }
    for stream in 0..streams.list.len() {
        streams.end(stream, &mut output, on);
    }
    output.write_ready().map_err(written)?;
    debug_assert!(output.held.is_empty());
    for s in &streams.list {
        on(PcapEvent::Stream(s.summary.clone()));
    }
    Ok(output.summary)
}

/// Looks at one packet: a SIP INFO is rewritten (or scrubbed in place) and
/// final; a datagram of a stream is counted, blanked if it cannot be
/// inspected, and otherwise returned with its stream to be analysed;
/// anything else stays as it is. `record` is its number (1-based).
#[allow(clippy::too_many_arguments)]
fn inspect(
    raw: &mut [u8],
    data: std::ops::Range<usize>,
    link_type: u32,
    record: usize,
    format: Format,
    streams: &mut Streams,
    options: &PcapOptions,
    fixed_key: Key,
    replaced: &mut Option<Vec<u8>>,
    on: &mut dyn FnMut(PcapEvent),
) -> Result<Option<(usize, Udp)>, PcapError> {
    let frame = &mut raw[data];
    let Some(udp) = net::find_udp(link_type, frame) else { return Ok(None) };
    let payload = &frame[udp.payload.clone()];
    if payload.starts_with(b"INFO ") {
        match rewrite_message(payload, fixed_key) {
            // pcapng packets are scrubbed at their length (below).
            Some(info) if udp.complete && format == Format::Pcap => {
                *replaced = Some(net::replace_payload(frame, &udp, &info.message));
                on(PcapEvent::SipInfo { packet: record });
            }
            // Cut short (or inconsistent): the key overwritten where it is.
            _ => {
                if scrub_message_in_place(&mut frame[udp.payload.clone()], fixed_key) {
                    net::fix_checksum(frame, &udp);
                    on(PcapEvent::SipInfo { packet: record });
                }
            }
        }
        return Ok(None);
    }
    let header = RtpHeader::parse(payload).ok();
    let forced = options.rtp_ports.iter().any(|&p| p == udp.src.port() || p == udp.dst.port());
    // A zero padding count is malformed, but its SSRC still names the stream.
    let seen = header.or_else(|| RtpHeader::parse_lenient(payload).ok());
    let Some(n) = streams.classify(&udp, seen.as_ref(), forced)? else { return Ok(None) };
    let config = streams.config;
    let s = &mut streams.list[n];
    s.summary.packets += 1;
    let Some(h) = header else {
        // Not RTP: kept only if it is RTCP, STUN or DTLS.
        if recognise(payload).is_none() {
            blank(frame, &udp, 0);
            s.summary.blanked += 1;
        }
        return Ok(None);
    };
    s.summary.audio += matches!(h.payload_type, PT_PCMU | PT_PCMA) as usize;
    s.summary.events += (h.payload_type == config.event_payload_type) as usize;
    Ok(Some((n, udp)))
}

/// The file writer: items in capture order, each written once it is final
/// (every item before it written too).
struct Output<'a> {
    held: VecDeque<Held>,
    /// Item number of `held[0]`.
    base: usize,
    out: &'a mut dyn Write,
    big_endian: bool,
    summary: ScrubSummary,
}

impl Output<'_> {
    /// Held item number `item` of the capture.
    fn held(&mut self, item: usize) -> &mut Held {
        &mut self.held[item - self.base]
    }

    /// The stream the oldest held item waits on, if it waits.
    fn oldest_waiting(&self) -> Option<usize> {
        match self.held.front()?.state {
            HeldState::Waiting(stream) => Some(stream),
            _ => None,
        }
    }

    /// Writes the items at the front that are final (libpcap: the header,
    /// then each record not dropped, a rewritten SIP INFO with its new
    /// lengths; pcapng: each block not dropped, as it is).
    fn write_ready(&mut self) -> std::io::Result<()> {
        while let Some(h) = self.held.front() {
            if matches!(h.state, HeldState::Waiting(_)) {
                break;
            }
            let h = self.held.pop_front().expect("front exists");
            self.base += 1;
            if h.state == HeldState::Dropped {
                continue;
            }
            match (&h.item, &h.replaced) {
                (Item::Packet { ts_sec, ts_frac, orig_len, data, .. }, Some(frame)) => {
                    let orig = (*orig_len as i64 + frame.len() as i64 - data.len() as i64).max(0) as u32;
                    let mut header = Vec::with_capacity(file::RECORD_HEADER);
                    file::write_record_header(self.big_endian, &mut header, *ts_sec, *ts_frac, frame.len(), orig);
                    self.out.write_all(&header)?;
                    self.out.write_all(frame)?;
                    self.summary.packets_out += 1;
                }
                (Item::Packet { raw, .. }, None) => {
                    self.out.write_all(raw)?;
                    self.summary.packets_out += 1;
                }
                (Item::Other { raw, .. }, _) => self.out.write_all(raw)?,
            }
        }
        Ok(())
    }
}

/// Zeroes a datagram's payload from `from` bytes in, and fixes its checksum.
fn blank(frame: &mut [u8], u: &Udp, from: usize) {
    let payload = &mut frame[u.payload.clone()];
    let from = from.min(payload.len());
    payload[from..].fill(0);
    net::fix_checksum(frame, u);
}

/// The key SIP INFO bodies are rewritten to: the fixed event's key, or `D`.
fn fixed_key(action: EventAction) -> Key {
    let code = match action {
        EventAction::Neutralise(c) if c < 16 => c,
        _ => DEFAULT_FIXED_EVENT,
    };
    event_key(code).expect("a DTMF code")
}

/// Ports below this are privileged: comfort noise there does not start a stream.
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

/// SIP's ports (plain and TLS): comfort-noise look-alikes there are signalling.
const SIP_PORTS: [u16; 2] = [5060, 5061];

/// An RFC 4733 telephone-event payload's length (event, flags, duration).
const EVENT_LEN: usize = 4;

/// Event codes 0–15 are DTMF keys (RFC 4733 §3.2).
const DTMF_EVENT_CODES: u8 = 16;

/// Whether a datagram that is not yet part of a stream starts one: G.711
/// on any ports, a well-formed DTMF telephone-event on any ports (it
/// carries a key), comfort noise between unprivileged ports other than SIP's.
fn starts_stream(udp: &Udp, h: &RtpHeader, payload: &[u8], event_pt: u8) -> bool {
    let port_ok = |p: u16| p >= FIRST_UNPRIVILEGED_PORT && !SIP_PORTS.contains(&p);
    match h.payload_type {
        PT_PCMU | PT_PCMA => true,
        pt if pt == event_pt => {
            h.payload_len.is_multiple_of(EVENT_LEN)
                && h.payload(payload).first().is_some_and(|&code| code < DTMF_EVENT_CODES)
        }
        PT_CN => port_ok(udp.src.port()) && port_ok(udp.dst.port()),
        _ => false,
    }
}

fn report(summary: &mut StreamSummary, e: StreamEvent, on: &mut dyn FnMut(PcapEvent)) {
    let stream = summary.stream;
    let ms = |x: u64| x as f64 * 1000.0 / CLOCK_HZ as f64;
    match e {
        StreamEvent::Masked(s) => on(PcapEvent::Masked { stream, start_ms: ms(s.start), end_ms: ms(s.end) }),
        StreamEvent::Key(k) => {
            summary.keys += 1;
            on(PcapEvent::Key { stream, source: k.source, start_ms: ms(k.start), end_ms: ms(k.end) });
        }
    }
}

/// Rewrites one held packet of a stream: G.711 masked, events rewritten
/// (or dropped), other payload types blanked; it is final then.
fn playout(s: &mut Stream, h: &mut Held, u: &Udp) {
    h.state = HeldState::Ready;
    let Item::Packet { raw, data, .. } = &mut h.item else { return };
    let frame = &mut raw[data.clone()];
    let before = frame[u.payload.clone()].to_vec();
    match s.rtp.playout(&mut frame[u.payload.clone()]) {
        Ok(Verdict::Forward) => {
            if frame[u.payload.clone()] != before[..] {
                net::fix_checksum(frame, u);
            }
        }
        Ok(Verdict::Drop) => {
            h.state = HeldState::Dropped;
            s.summary.dropped += 1;
        }
        Ok(Verdict::Unknown(_)) => {
            // Kept in place (the stream's numbering stays whole), its
            // payload zeroed by the stream: only the RTP header remains.
            net::fix_checksum(frame, u);
            s.summary.blanked += 1;
        }
        // Parsed at analysis; cannot fail now — but if it did, nothing passes.
        Err(_) => {
            blank(frame, u, 0);
            s.summary.blanked += 1;
        }
    }
}
