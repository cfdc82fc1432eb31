//! `cardveil pcap IN -o OUT`: scrubs every RTP stream of a libpcap or
//! pcapng capture with [`cardveil_core::pcap::scrub_stream`] (memory does
//! not grow with the capture); one JSON line per event (never a key), the
//! capture written atomically in the input's format (`-o -`: to standard
//! output, the lines then on standard error).

use std::path::Path;

use cardveil_core::pcap::{Format, PcapEvent, PcapOptions, ScrubSummary, scrub_stream};

use crate::output::Output;
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

/// Scrubs the capture at `input` into `output` as a stream (two passes
/// over the file: the streams are found first), events to `on`.
///
/// # Errors
/// [`CliError::Input`] if the file cannot be read or is not a capture
/// cardveil reads, or the output cannot be written.
pub fn scrub_file(
    input: &Path,
    output: &mut Output,
    options: &PcapOptions,
    on: &mut dyn FnMut(PcapEvent),
) -> Result<ScrubSummary, CliError> {
    if input == Path::new("-") {
        return Err(CliError::Usage(
            "cardveil reads a capture twice (its streams are found first): give a file, not -".into(),
        ));
    }
    let open = || crate::output::open_input(input).map_err(|e| std::io::Error::other(e.to_string()));
    scrub_stream(open, output, options, on).map_err(|e| CliError::input(input, e))
}

/// Runs `cardveil pcap`: events as JSON lines on `out`, the scrubbed
/// capture written atomically.
pub fn run(args: &PcapArgs<'_>, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    let options = PcapOptions { stream: args.stream, rtp_ports: args.rtp_ports.to_vec() };
    let mut output = Output::create(args.output)?;
    let mut lines = Vec::new();
    let summary_of = scrub_file(args.input, &mut output, &options, &mut |e| lines.push(json(&e)))?;
    let to_stdout = output.is_stdout();
    output.commit()?;
    let io = |e: std::io::Error| CliError::input(Path::new("<stdout>"), e);
    let mut stderr = std::io::stderr();
    let out: &mut dyn std::io::Write = if to_stdout { &mut stderr } else { out };
    for l in lines {
        writeln!(out, "{l}").map_err(io)?;
    }
    writeln!(out, "{}", summary(&summary_of).finish()).map_err(io)
}

/// The closing line: the format, packets in and out, and (pcapng) the
/// blocks left out because they cannot be inspected.
pub fn summary(s: &ScrubSummary) -> Obj {
    let line = Obj::event("summary").str("format", s.format.name());
    let line = line.count("packets_in", s.packets_in).count("packets_out", s.packets_out);
    match s.format {
        Format::Pcapng => line.count("blocks_dropped", s.blocks_dropped),
        Format::Pcap => line,
    }
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
