//! `cardveil pcap IN.pcap -o OUT.pcap`: scrubs every RTP stream of a
//! libpcap capture with [`cardveil_core::pcap::scrub`]; one JSON line per
//! event (never a key), the capture written atomically.

use std::path::Path;

use cardveil_core::pcap::{PcapEvent, PcapOptions, scrub};
use cardveil_core::rtp::RtpStreamConfig;

use crate::CliError;
use crate::json::Obj;

/// `cardveil pcap` arguments.
#[derive(Debug)]
pub struct PcapArgs<'a> {
    /// Input capture.
    pub input: &'a Path,
    /// Output capture.
    pub output: &'a Path,
    /// Stream settings (`masker.lookahead_ms`: how far the analysis runs ahead).
    pub stream: RtpStreamConfig,
    /// Ports forced to RTP.
    pub rtp_ports: &'a [u16],
}

/// Runs `cardveil pcap`: events as JSON lines on `out`, the scrubbed
/// capture written atomically.
pub fn run(args: &PcapArgs<'_>, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    let options = PcapOptions { stream: args.stream, rtp_ports: args.rtp_ports.to_vec() };
    let input = crate::output::read_input(args.input)?;
    let mut lines = Vec::new();
    let scrubbed =
        scrub(&input, &options, &mut |e| lines.push(json(&e))).map_err(|e| CliError::input(args.input, e))?;
    crate::output::write_atomically(args.output, &[&scrubbed.file])?;
    let io = |e: std::io::Error| CliError::input(Path::new("<stdout>"), e);
    for l in lines {
        writeln!(out, "{l}").map_err(io)?;
    }
    let summary =
        Obj::event("summary").count("packets_in", scrubbed.packets_in).count("packets_out", scrubbed.packets_out);
    writeln!(out, "{}", summary.finish()).map_err(io)
}

/// One JSON line per event (never a key).
pub fn json(e: &PcapEvent) -> String {
    match e {
        PcapEvent::Masked { stream, start_ms, end_ms } => {
            Obj::event("masked").count("stream", *stream).ms("start_ms", *start_ms).ms("end_ms", *end_ms)
        }
        PcapEvent::Key { stream, source, start_ms, end_ms } => Obj::event("key")
            .count("stream", *stream)
            .str("source", source.name())
            .ms("start_ms", *start_ms)
            .ms("end_ms", *end_ms),
        PcapEvent::SipInfo { packet } => Obj::event("sip-info").count("packet", *packet).str("action", "rewritten"),
        PcapEvent::Stream(s) => Obj::event("stream")
            .count("stream", s.stream)
            .str("src", &s.src.to_string())
            .str("dst", &s.dst.to_string())
            .str("ssrc", &format!("0x{:08x}", s.ssrc))
            .count("packets", s.packets)
            .count("audio", s.audio)
            .count("telephone_events", s.events)
            .count("keys", s.keys)
            .count("dropped", s.dropped)
            .count("blanked", s.blanked),
    }
    .finish()
}
