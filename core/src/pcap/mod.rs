//! Scrubbing libpcap and pcapng captures (`cardveil pcap IN -o OUT` is
//! built on [`scrub`]): every RTP stream of the capture, the output in the
//! input's format (pcapng packets scrubbed in place at their length). G.711 audio (PT 0, 8) is masked where it carries key
//! tones (two-phase: the capture is read ahead, so nothing is delayed),
//! telephone-events are neutralised to one fixed code (or dropped, the
//! sequence numbers renumbered), SIP INFO DTMF bodies are rewritten, and
//! UDP checksums follow the payloads.
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
use crate::rtp::{
    DEFAULT_FIXED_EVENT, EventAction, KeySource, PT_CN, PT_PCMA, PT_PCMU, RtpHeader, RtpStream, RtpStreamConfig,
    StreamEvent, Verdict, event_key, recognise, rewrite_message, scrub_message_in_place,
};

use file::{BlockKind, Capture, Record};
pub use file::{Format, PcapError};
use net::Udp;

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

/// Bytes of the libpcap global header, copied to the output as they are.
const GLOBAL_HEADER: usize = 24;

struct Stream {
    summary: StreamSummary,
    rtp: RtpStream,
    /// Packets analysed, waiting for the analysis to run far enough ahead:
    /// record number, datagram, and the stream position the analysis had
    /// reached with it. Positions, not RTP timestamps: a timestamp that
    /// jumps far ahead must not let later packets play out before the
    /// analysis has looked ahead of them.
    pending: VecDeque<(usize, Udp, u64)>,
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
        })
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
    /// The first pass: every 5-tuple one of whose datagrams starts a stream.
    fn discover(capture: &Capture, input: &[u8], config: RtpStreamConfig) -> HashSet<(SocketAddr, SocketAddr)> {
        let mut known = HashSet::new();
        for record in &capture.records {
            let frame = &input[record.data.clone()];
            let Some(udp) = net::find_udp(record.link_type, frame) else { continue };
            let payload = &frame[udp.payload.clone()];
            let Ok(h) = RtpHeader::parse_lenient(payload) else { continue };
            if starts_stream(&udp, &h, payload, config.event_payload_type) {
                known.insert((udp.src, udp.dst));
            }
        }
        known
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
    let capture = Capture::parse(input)?;
    let mut buf = input.to_vec();
    let mut replaced: HashMap<usize, Vec<u8>> = HashMap::new();
    let mut dropped = vec![false; capture.records.len()];
    let config = options.stream;
    let known = Streams::discover(&capture, input, config);
    let mut streams = Streams { list: Vec::new(), index: HashMap::new(), config, known };
    let lag = config.masker.lookahead_ms.max(1) as u64 * 8;
    let fixed_key = fixed_key(config.event_action);

    for (i, record) in capture.records.iter().enumerate() {
        let frame = &buf[record.data.clone()];
        let Some(udp) = net::find_udp(record.link_type, frame) else { continue };
        let payload = &frame[udp.payload.clone()];
        if payload.starts_with(b"INFO ") {
            match rewrite_message(payload, fixed_key) {
                // pcapng packets are scrubbed at their length (below).
                Some(info) if udp.complete && capture.format == Format::Pcap => {
                    replaced.insert(i, net::replace_payload(frame, &udp, &info.message));
                    on(PcapEvent::SipInfo { packet: i + 1 });
                }
                // Cut short (or inconsistent): the key overwritten where it is.
                _ => {
                    let frame = &mut buf[record.data.clone()];
                    if scrub_message_in_place(&mut frame[udp.payload.clone()], fixed_key) {
                        net::fix_checksum(frame, &udp);
                        on(PcapEvent::SipInfo { packet: i + 1 });
                    }
                }
            }
            continue;
        }
        let header = RtpHeader::parse(payload).ok();
        let forced = options.rtp_ports.iter().any(|&p| p == udp.src.port() || p == udp.dst.port());
        // A zero padding count is malformed, but its SSRC still names the stream.
        let seen = header.or_else(|| RtpHeader::parse_lenient(payload).ok());
        let Some(n) = streams.classify(&udp, seen.as_ref(), forced)? else { continue };
        let s = &mut streams.list[n];
        s.summary.packets += 1;
        let Some(h) = header else {
            // Not RTP: kept only if it is RTCP, STUN or DTLS.
            if recognise(payload).is_none() {
                blank(&mut buf[record.data.clone()], &udp, 0);
                s.summary.blanked += 1;
            }
            continue;
        };
        let audio = matches!(h.payload_type, PT_PCMU | PT_PCMA);
        s.summary.audio += audio as usize;
        s.summary.events += (h.payload_type == config.event_payload_type) as usize;
        let _ = s.rtp.analyse(payload, &mut |e| report(&mut s.summary, e, on));
        let reached = s.rtp.position();
        s.pending.push_back((i, udp, reached));
        while let Some(&(_, _, at)) = s.pending.front() {
            if reached < at + lag {
                break;
            }
            let (j, u, _) = s.pending.pop_front().expect("front exists");
            playout(s, &mut buf, &capture.records[j], j, &u, &mut dropped);
        }
    }
    for s in &mut streams.list {
        s.rtp.finish(&mut |e| report(&mut s.summary, e, on));
        while let Some((j, u, _)) = s.pending.pop_front() {
            playout(s, &mut buf, &capture.records[j], j, &u, &mut dropped);
        }
    }
    for s in &streams.list {
        on(PcapEvent::Stream(s.summary.clone()));
    }
    Ok(write_file(input, &capture, &buf, &replaced, &dropped))
}

/// The output capture: for libpcap, the global header, then every record
/// not dropped (the rewritten SIP INFO ones with their new lengths); for
/// pcapng, every block in order, packets scrubbed in place at their length,
/// dropped packets and uninspectable blocks left out.
fn write_file(
    input: &[u8],
    capture: &Capture,
    buf: &[u8],
    replaced: &HashMap<usize, Vec<u8>>,
    dropped: &[bool],
) -> Scrubbed {
    let mut file = Vec::with_capacity(buf.len());
    let mut packets_out = 0;
    let mut blocks_dropped = 0;
    if capture.format == Format::Pcapng {
        for b in &capture.blocks {
            match b.kind {
                BlockKind::Packet(i) if dropped[i] => {}
                BlockKind::Packet(_) => {
                    packets_out += 1;
                    file.extend_from_slice(&buf[b.range.clone()]);
                }
                BlockKind::Keep => file.extend_from_slice(&input[b.range.clone()]),
                BlockKind::Drop => blocks_dropped += 1,
            }
        }
        let packets_in = capture.records.len();
        return Scrubbed { file, format: Format::Pcapng, packets_in, packets_out, blocks_dropped };
    }
    file.extend_from_slice(&input[..GLOBAL_HEADER]);
    for (i, r) in capture.records.iter().enumerate() {
        if dropped[i] {
            continue;
        }
        packets_out += 1;
        match replaced.get(&i) {
            Some(data) => {
                let orig = (r.orig_len as i64 + data.len() as i64 - r.data.len() as i64).max(0) as u32;
                capture.write_record_header(&mut file, r, data.len(), orig);
                file.extend_from_slice(data);
            }
            None => {
                capture.write_record_header(&mut file, r, r.data.len(), r.orig_len);
                file.extend_from_slice(&buf[r.data.clone()]);
            }
        }
    }
    Scrubbed { file, format: Format::Pcap, packets_in: capture.records.len(), packets_out, blocks_dropped }
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

/// Whether a datagram that is not yet part of a stream starts one: G.711
/// on any ports, a well-formed DTMF telephone-event on any ports (it
/// carries a key), comfort noise between unprivileged ports other than SIP's.
fn starts_stream(udp: &Udp, h: &RtpHeader, payload: &[u8], event_pt: u8) -> bool {
    let port_ok = |p: u16| p >= 1024 && p != 5060 && p != 5061;
    match h.payload_type {
        PT_PCMU | PT_PCMA => true,
        pt if pt == event_pt => {
            h.payload_len.is_multiple_of(4) && h.payload(payload).first().is_some_and(|&code| code < 16)
        }
        PT_CN => port_ok(udp.src.port()) && port_ok(udp.dst.port()),
        _ => false,
    }
}

fn report(summary: &mut StreamSummary, e: StreamEvent, on: &mut dyn FnMut(PcapEvent)) {
    let stream = summary.stream;
    let ms = |x: u64| x as f64 / 8.0;
    match e {
        StreamEvent::Masked(s) => on(PcapEvent::Masked { stream, start_ms: ms(s.start), end_ms: ms(s.end) }),
        StreamEvent::Key(k) => {
            summary.keys += 1;
            on(PcapEvent::Key { stream, source: k.source, start_ms: ms(k.start), end_ms: ms(k.end) });
        }
    }
}

/// Rewrites one packet of a stream in the output buffer: G.711 masked,
/// events rewritten (or dropped), other payload types blanked.
fn playout(s: &mut Stream, buf: &mut [u8], r: &Record, j: usize, u: &Udp, dropped: &mut [bool]) {
    let frame = &mut buf[r.data.clone()];
    let before = frame[u.payload.clone()].to_vec();
    match s.rtp.playout(&mut frame[u.payload.clone()]) {
        Ok(Verdict::Forward) => {
            if frame[u.payload.clone()] != before[..] {
                net::fix_checksum(frame, u);
            }
        }
        Ok(Verdict::Drop) => {
            dropped[j] = true;
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
