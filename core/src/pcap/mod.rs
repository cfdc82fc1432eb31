//! Scrubbing libpcap captures (`cardveil pcap IN.pcap -o OUT.pcap` is
//! built on [`scrub`]): every RTP stream of the capture. G.711 audio (PT 0, 8) is masked where it carries key
//! tones (two-phase: the capture is read ahead, so nothing is delayed),
//! telephone-events are neutralised to one fixed code (or dropped, the
//! sequence numbers renumbered), SIP INFO DTMF bodies are rewritten; every
//! other packet is copied unchanged, and UDP checksums follow the payloads.
//!
//! RTP is recognised by heuristics — UDP between unprivileged ports other
//! than SIP's, RTP version 2, payload type G.711, comfort noise or the
//! telephone-event type, and a second packet of the same source with a
//! nearby sequence number (or one well-formed DTMF event) — or by
//! `--rtp-port` (any payload type). Once a
//! stream is found, packets of payload types cardveil cannot inspect are
//! dropped from it (zero leak), comfort noise kept.

pub mod file;
pub mod net;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::dtmf::Key;
use crate::rtp::{
    DEFAULT_FIXED_EVENT, EventAction, KeySource, PT_CN, PT_PCMA, PT_PCMU, RtpHeader, RtpStream, RtpStreamConfig,
    StreamEvent, Verdict, event_key, newer, rewrite_message, scrub_message_in_place,
};

pub use file::PcapError;
use file::{Capture, Record};
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
    /// Synchronisation source.
    pub ssrc: u32,
    /// Packets seen.
    pub packets: usize,
    /// G.711 packets.
    pub audio: usize,
    /// Telephone-event packets.
    pub events: usize,
    /// Key presses found (in band or as events, each once).
    pub keys: usize,
    /// Packets left out of the output (dropped events, uninspectable payloads).
    pub dropped: usize,
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
    /// The output file.
    pub file: Vec<u8>,
    /// Packets read.
    pub packets_in: usize,
    /// Packets written.
    pub packets_out: usize,
}

struct Stream {
    summary: StreamSummary,
    rtp: RtpStream,
    /// Packets analysed, waiting for the analysis to run far enough ahead.
    pending: VecDeque<(usize, Udp, u32)>,
    /// RTP timestamp the analysis has reached.
    head: Option<u32>,
    last_seq: u16,
    confirmed: bool,
}

/// Scrubs a libpcap capture held in memory (see the module docs).
///
/// # Errors
/// [`PcapError`] if the capture cannot be read; nothing is produced then.
pub fn scrub(input: &[u8], options: &PcapOptions, on: &mut dyn FnMut(PcapEvent)) -> Result<Scrubbed, PcapError> {
    let capture = Capture::parse(input)?;
    let mut buf = input.to_vec();
    let mut replaced: HashMap<usize, Vec<u8>> = HashMap::new();
    let mut dropped = vec![false; capture.records.len()];
    let mut streams: Vec<Stream> = Vec::new();
    let mut index: HashMap<(SocketAddr, SocketAddr, u32), usize> = HashMap::new();
    let config = options.stream;
    let lag = (config.masker.lookahead_ms.max(1) * 8) as i32;
    let fixed_key = fixed_key(config.event_action);

    for (i, record) in capture.records.iter().enumerate() {
        let frame = &buf[record.data.clone()];
        let Some(udp) = net::find_udp(capture.link_type, frame) else { continue };
        let payload = &frame[udp.payload.clone()];
        if payload.starts_with(b"INFO ") {
            match rewrite_message(payload, fixed_key) {
                Some(info) if udp.complete => {
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
        let Ok(h) = RtpHeader::parse(payload) else { continue };
        let forced = options.rtp_ports.iter().any(|&p| p == udp.src.port() || p == udp.dst.port());
        let key = (udp.src, udp.dst, h.ssrc);
        // A stream once found takes all its packets (a payload type it
        // cannot inspect is then dropped, not passed).
        let n = match index.get(&key) {
            Some(&n) => n,
            None if !forced && !looks_like_rtp(&udp, h.payload_type, config.event_payload_type) => continue,
            None => {
                let Ok(rtp) = RtpStream::new_two_phase(config) else { continue };
                let n = streams.len();
                streams.push(Stream {
                    summary: StreamSummary {
                        stream: n,
                        src: udp.src,
                        dst: udp.dst,
                        ssrc: h.ssrc,
                        packets: 0,
                        audio: 0,
                        events: 0,
                        keys: 0,
                        dropped: 0,
                    },
                    rtp,
                    pending: VecDeque::new(),
                    head: None,
                    last_seq: h.sequence.wrapping_sub(1),
                    confirmed: forced,
                });
                index.insert(key, n);
                n
            }
        };
        let s = &mut streams[n];
        let gap = h.sequence.wrapping_sub(s.last_seq);
        // A second packet with a nearby sequence number confirms a stream;
        // so does one well-formed DTMF telephone-event (a lone event packet
        // must not pass unscrubbed).
        let dtmf_event = h.payload_type == config.event_payload_type
            && h.payload_len % 4 == 0
            && h.payload(payload).first().is_some_and(|&code| code < 16);
        s.confirmed |= dtmf_event || s.summary.packets > 0 && (1..=10).contains(&gap);
        s.last_seq = h.sequence;
        s.summary.packets += 1;
        let audio = matches!(h.payload_type, PT_PCMU | PT_PCMA);
        s.summary.audio += audio as usize;
        s.summary.events += (h.payload_type == config.event_payload_type) as usize;
        let _ = s.rtp.analyse(payload, &mut |e| report(&mut s.summary, e, on));
        let end = if audio { h.timestamp.wrapping_add(h.payload_len as u32) } else { h.timestamp };
        if s.head.is_none_or(|head| newer(end, head)) {
            s.head = Some(end);
        }
        s.pending.push_back((i, udp, end));
        if s.confirmed {
            let head = s.head.unwrap_or(end);
            while let Some((_, _, e)) = s.pending.front() {
                if (head.wrapping_sub(*e) as i32) < lag {
                    break;
                }
                let (j, u, _) = s.pending.pop_front().expect("front exists");
                playout(s, &mut buf, &capture.records[j], j, &u, &mut dropped);
            }
        }
    }
    for s in &mut streams {
        s.rtp.finish(&mut |e| report(&mut s.summary, e, on));
        if s.confirmed {
            while let Some((j, u, _)) = s.pending.pop_front() {
                playout(s, &mut buf, &capture.records[j], j, &u, &mut dropped);
            }
        }
    }
    for s in streams.iter().filter(|s| s.confirmed) {
        on(PcapEvent::Stream(s.summary.clone()));
    }

    let mut file = Vec::with_capacity(buf.len());
    file.extend_from_slice(&input[..24]);
    let mut packets_out = 0;
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
    Ok(Scrubbed { file, packets_in: capture.records.len(), packets_out })
}

/// The key SIP INFO bodies are rewritten to: the fixed event's key, or `D`.
fn fixed_key(action: EventAction) -> Key {
    let code = match action {
        EventAction::Neutralise(c) if c < 16 => c,
        _ => DEFAULT_FIXED_EVENT,
    };
    event_key(code).expect("a DTMF code")
}

/// Unprivileged ports other than SIP's, and a payload type cardveil scrubs.
fn looks_like_rtp(udp: &Udp, pt: u8, event_pt: u8) -> bool {
    let port_ok = |p: u16| p >= 1024 && p != 5060 && p != 5061;
    port_ok(udp.src.port()) && port_ok(udp.dst.port()) && (matches!(pt, PT_PCMU | PT_PCMA | PT_CN) || pt == event_pt)
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

/// Rewrites one packet of a stream in the output buffer.
fn playout(s: &mut Stream, buf: &mut [u8], r: &Record, j: usize, u: &Udp, dropped: &mut [bool]) {
    let frame = &mut buf[r.data.clone()];
    let before = frame[u.payload.clone()].to_vec();
    match s.rtp.playout(&mut frame[u.payload.clone()]) {
        Ok(Verdict::Forward) => {
            if frame[u.payload.clone()] != before[..] {
                net::fix_checksum(frame, u);
            }
        }
        Ok(Verdict::Drop | Verdict::Unknown(_)) => {
            dropped[j] = true;
            s.summary.dropped += 1;
        }
        Err(_) => {} // not parseable as RTP after all: left as it was
    }
}
