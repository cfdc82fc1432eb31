//! `cardveil pcap IN.pcap -o OUT.pcap`: scrubs every RTP stream of a
//! libpcap capture with [`cardveil_core::pcap::scrub`]; one JSON line per
//! event (never a key), the capture written atomically.

use std::path::Path;

use cardveil_core::pcap::{PcapEvent, PcapOptions, scrub};
use cardveil_core::rtp::RtpStreamConfig;

use crate::CliError;

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
    let input = std::fs::read(args.input).map_err(|e| CliError::input(args.input, format!("cannot read: {e}")))?;
    let mut lines = Vec::new();
    let scrubbed =
        scrub(&input, &options, &mut |e| lines.push(json(&e))).map_err(|e| CliError::input(args.input, e))?;
    crate::output::write_atomically(args.output, &[&scrubbed.file])?;
    let io = |e: std::io::Error| CliError::input(Path::new("<stdout>"), e);
    for l in lines {
        writeln!(out, "{l}").map_err(io)?;
    }
    writeln!(
        out,
        "{{\"event\":\"summary\",\"packets_in\":{},\"packets_out\":{}}}",
        scrubbed.packets_in, scrubbed.packets_out
    )
    .map_err(io)
}

/// One JSON line per event (never a key).
pub fn json(e: &PcapEvent) -> String {
    match e {
        PcapEvent::Masked { stream, start_ms, end_ms } => {
            format!("{{\"event\":\"masked\",\"stream\":{stream},\"start_ms\":{start_ms:.1},\"end_ms\":{end_ms:.1}}}")
        }
        PcapEvent::Key { stream, source, start_ms, end_ms } => {
            let source = source.name();
            format!(
                "{{\"event\":\"key\",\"stream\":{stream},\"source\":\"{source}\",\"start_ms\":{start_ms:.1},\"end_ms\":{end_ms:.1}}}"
            )
        }
        PcapEvent::SipInfo { packet } => {
            format!("{{\"event\":\"sip-info\",\"packet\":{packet},\"action\":\"rewritten\"}}")
        }
        PcapEvent::Stream(s) => format!(
            "{{\"event\":\"stream\",\"stream\":{},\"src\":\"{}\",\"dst\":\"{}\",\"ssrc\":\"0x{:08x}\",\"packets\":{},\"audio\":{},\"telephone_events\":{},\"keys\":{},\"dropped\":{}}}",
            s.stream, s.src, s.dst, s.ssrc, s.packets, s.audio, s.events, s.keys, s.dropped
        ),
    }
}
