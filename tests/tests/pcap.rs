//! Acceptance for `cardveil pcap`, checked with tshark:
//! * the twelve `/usr/share/sip-tester/dtmf_2833_*.pcap` captures: no
//!   telephone-event keeps its key (one fixed code for every key, or none
//!   left when dropped), packet counts unchanged, UDP checksums valid;
//! * `g711a.pcap` keeps every packet and its audio bit for bit (it has no keys);
//! * a call built from `g711a.pcap`'s audio with a card number keyed in
//!   band *and* sent as RFC 4733 events, plus a SIP INFO key, over
//!   Ethernet/IPv4 and Linux cooked/IPv6: each key reported once, no
//!   decoder finds a key in the scrubbed audio, the audio away from the
//!   tones is unchanged, no event or INFO body keeps its key.

use std::path::{Path, PathBuf};
use std::process::Command;

use cardveil_cli::{Cli, run};
use cardveil_core::codec::alaw;
use cardveil_tests::masking::{
    decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive,
};
use cardveil_tests::rtpcall::{PAN, frame, keyed_call, keyed_over_audio, rtp, write_pcap};
use cardveil_tests::tools;
use clap::Parser;

const DIR: &str = "/usr/share/sip-tester";

fn have_inputs() -> bool {
    if !Path::new(DIR).join("g711a.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester is required in CI (apt-get install sip-tester)");
        eprintln!("SKIPPED: apt-get install sip-tester for its RTP captures");
        return false;
    }
    tools::require("tshark", "the pcap acceptance tests")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardveil-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `cardveil pcap IN -o OUT ARGS…`; its stdout lines.
fn scrub(input: &Path, output: &Path, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["cardveil", "pcap", input.to_str().unwrap(), "-o", output.to_str().unwrap()];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    run(Cli::try_parse_from(argv).unwrap(), &mut out).unwrap();
    let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.is_object(), "{l}");
    }
    lines
}

/// tshark's view of every frame: fields separated by tabs.
fn tshark(file: &Path, rtp_port: u16, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-o", "udp.check_checksum:TRUE", "-d", &format!("udp.port=={rtp_port},rtp")]);
    cmd.args(["-T", "fields", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = tools::run(&mut cmd);
    String::from_utf8(out).unwrap().lines().map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[test]
fn the_sip_tester_event_captures_keep_no_key() {
    if !have_inputs() {
        return;
    }
    let names: Vec<String> =
        (0..10).map(|d| format!("dtmf_2833_{d}")).chain(["dtmf_2833_pound".into(), "dtmf_2833_star".into()]).collect();
    for name in names {
        let input = Path::new(DIR).join(format!("{name}.pcap"));
        let before = tshark(&input, 10000, &["rtpevent.event_id"]);
        let original = before[0][0].clone();
        assert!(!original.is_empty() && original != "15", "{name}: {before:?}");

        let out = tmp(&format!("{name}-neutralised.pcap"));
        let lines = scrub(&input, &out, &[]);
        let after = tshark(&out, 10000, &["rtpevent.event_id", "udp.checksum.status", "rtp.seq"]);
        assert_eq!(after.len(), before.len(), "{name}: packet count");
        for row in &after {
            assert_eq!(row[0], "15", "{name}: every event carries the fixed code");
            assert_eq!(row[1], "1", "{name}: UDP checksum valid");
        }
        assert_eq!(lines.iter().filter(|l| l.contains("\"event\":\"key\"")).count(), 1, "{name}: {lines:?}");
        assert!(lines.iter().all(|l| !l.contains(&format!("\"{original}\""))));

        let dropped = tmp(&format!("{name}-dropped.pcap"));
        let lines = scrub(&input, &dropped, &["--events", "drop"]);
        assert!(tshark(&dropped, 10000, &["rtpevent.event_id"]).is_empty(), "{name}: events dropped");
        assert!(lines.last().unwrap().contains("\"packets_out\":0"), "{lines:?}");
    }
}

#[test]
fn g711a_keeps_every_packet_and_its_audio() {
    if !have_inputs() {
        return;
    }
    let input = Path::new(DIR).join("g711a.pcap");
    let out = tmp("g711a-scrubbed.pcap");
    let lines = scrub(&input, &out, &[]);
    assert!(lines.iter().any(|l| l.contains("\"event\":\"stream\"") && l.contains("\"audio\":236")), "{lines:?}");
    let fields = ["frame.number", "rtp.seq", "rtp.payload", "udp.checksum.status"];
    let (a, b) = (tshark(&input, 2006, &fields), tshark(&out, 2006, &fields));
    assert_eq!(a.len(), 236);
    assert_eq!(a, b, "nothing to mask: every packet unchanged");
    let pcm: Vec<i16> = b.iter().flat_map(|r| hex_bytes(&r[2])).map(alaw::decode).collect();
    assert_eq!(decode_cardveil(8000, &pcm), "");
}

#[test]
fn a_card_keyed_in_band_and_as_events_is_scrubbed_over_ipv4_and_ipv6() {
    if !have_inputs() {
        return;
    }
    let dir = tmp("");
    for v6 in [false, true] {
        let call = keyed_call(v6, true);
        let tag = if v6 { "ipv6" } else { "ipv4" };
        let input = tmp(&format!("call-{tag}.pcap"));
        let output = tmp(&format!("call-{tag}-scrubbed.pcap"));
        write_pcap(&input, v6, &call.frames);
        let pcm_in: Vec<i16> = call.audio.iter().map(|&a| alaw::decode(a)).collect();
        assert_eq!(decode_cardveil(8000, &pcm_in), PAN, "the stimulus carries the card");
        assert_eq!(decode_multimon(8000, &pcm_in, &dir, tag), PAN);
        let ev_in = tshark(&input, 2006, &["rtpevent.event_id"]);
        assert_eq!(ev_in.iter().filter(|r| !r[0].is_empty()).count(), call.events);

        let lines = scrub(&input, &output, &[]);
        let keys: Vec<&String> = lines.iter().filter(|l| l.contains("\"event\":\"key\"")).collect();
        assert_eq!(keys.len(), PAN.len(), "each key once although sent in band and as events: {lines:?}");
        assert_eq!(lines.iter().filter(|l| l.contains("\"event\":\"sip-info\"")).count(), 1);
        for l in &lines {
            assert!(!l.contains(PAN) && !l.contains("\"4\"") && !l.contains("\"1\""), "{l}");
        }

        let rows = tshark(&output, 2006, &["rtp.p_type", "rtp.payload", "rtpevent.event_id", "udp.checksum.status"]);
        assert_eq!(rows.len(), call.frames.len(), "{tag}: packet count");
        assert!(rows.iter().all(|r| r[3] == "1"), "{tag}: every UDP checksum valid");
        let events: Vec<&String> = rows.iter().filter(|r| r[0] == "101").map(|r| &r[2]).collect();
        assert_eq!(events.len(), call.events);
        assert!(events.iter().all(|e| *e == "15"), "{tag}: {events:?}");
        let out_audio: Vec<u8> = rows.iter().filter(|r| r[0] == "8").flat_map(|r| hex_bytes(&r[1])).collect();
        assert_eq!(out_audio.len(), call.audio.len());
        let pcm_out: Vec<i16> = out_audio.iter().map(|&a| alaw::decode(a)).collect();
        assert_eq!(decode_cardveil(8000, &pcm_out), "", "{tag}");
        assert_eq!(decode_multimon(8000, &pcm_out, &dir, tag), "", "{tag}");
        assert_eq!(decode_dtmf2num(8000, &pcm_out, &dir, tag), "", "{tag}");
        for d in [decode_spandsp(&pcm_out), decode_spandsp_sensitive(&pcm_out)].into_iter().flatten() {
            assert_eq!(d, "", "{tag}: spandsp");
        }
        // Audio further than 60 ms from every tone: unchanged code for code.
        let near = |i: usize| call.tones.iter().any(|&(s, e)| i + 480 >= s && i < e + 480);
        let changed = (0..call.audio.len()).filter(|&i| !near(i) && out_audio[i] != call.audio[i]).count();
        assert_eq!(changed, 0, "{tag}: speech away from the tones");
        // The SIP INFO body carries the fixed key, its length updated.
        let bytes = std::fs::read(&output).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Content-Length: 24\r\n\r\nSignal=D\r\nDuration=160"), "{tag}");
        assert!(!text.contains("Signal=4"), "{tag}");
        let sip = tshark(&output, 2006, &["sip.Method", "sip.msg_body"]);
        assert!(sip.iter().any(|r| r[0] == "INFO"), "{tag}: tshark still reads the INFO");
    }
}

#[test]
fn dropping_events_renumbers_the_stream() {
    if !have_inputs() {
        return;
    }
    let call = keyed_call(false, true);
    let input = tmp("drop-in.pcap");
    let output = tmp("drop-out.pcap");
    write_pcap(&input, false, &call.frames);
    let lines = scrub(&input, &output, &["--events", "drop"]);
    assert!(lines.last().unwrap().contains(&format!("\"packets_out\":{}", call.frames.len() - call.events)));
    let rows = tshark(&output, 2006, &["rtp.p_type", "rtp.seq"]);
    let seqs: Vec<u16> = rows.iter().filter(|r| !r[1].is_empty()).map(|r| r[1].parse().unwrap()).collect();
    assert!(rows.iter().all(|r| r[0] != "101"));
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "no gap where events were");
}

#[test]
fn broken_captures_are_refused_with_one_line_and_no_output() {
    let dir = tmp("");
    let good = {
        let mut f = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&100u32.to_le_bytes());
        f.extend_from_slice(&100u32.to_le_bytes());
        f.extend_from_slice(&[0; 60]);
        f
    };
    for (name, bytes, want) in [
        ("truncated", good.clone(), "truncated capture: record 1"),
        ("pcapng", b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00".to_vec(), "truncated capture: block 1 at byte 0"),
        ("wav", b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec(), "not a pcap or pcapng capture"),
        ("linktype", good[..20].iter().chain(&[105, 0, 0, 0]).copied().collect(), "unsupported link type 105"),
    ] {
        let input = dir.join(format!("{name}.pcap"));
        let output = dir.join(format!("{name}-out.pcap"));
        std::fs::write(&input, bytes).unwrap();
        let argv = ["cardveil", "pcap", input.to_str().unwrap(), "-o", output.to_str().unwrap()];
        let err = run(Cli::try_parse_from(argv).unwrap(), &mut Vec::new()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want) && !msg.contains('\n'), "{name}: {msg}");
        assert_eq!(err.exit_code(), 1);
        assert!(!output.exists(), "{name}: no output file");
    }
    let argv = ["cardveil", "pcap", "x.pcap", "-o", "y.pcap", "--events", "mute"];
    assert_eq!(run(Cli::try_parse_from(argv).unwrap(), &mut Vec::new()).unwrap_err().exit_code(), 2);
}

#[test]
fn payloads_that_cannot_be_inspected_are_blanked_in_rtp_streams() {
    if !have_inputs() {
        return;
    }
    // The keyed call with every fifth packet's payload type changed to 9 (G.722).
    let call = keyed_call(false, false);
    let mut frames = call.frames.clone();
    let mut changed = Vec::new();
    let at = 14 + 20 + 8; // Ethernet + IPv4 + UDP
    for (i, (_, f)) in frames.iter_mut().enumerate() {
        if i % 5 == 2 && f[at + 1] & 0x7F == 8 {
            f[at + 1] = (f[at + 1] & 0x80) | 9;
            let u = cardveil_core::pcap::net::find_udp(1, f).unwrap();
            cardveil_core::pcap::net::fix_checksum(f, &u);
            changed.push(i);
        }
    }
    let n = changed.len();
    let input = tmp("g722.pcap");
    write_pcap(&input, false, &frames);
    // Packets of a found stream that cannot be inspected keep their record
    // (and their RTP header), their payload zeroed, the checksum fixed —
    // whether the stream was found by heuristics or a forced port.
    for args in [&[][..], &["--rtp-port", "2006"]] {
        let output = tmp("g722-out.pcap");
        let lines = scrub(&input, &output, args);
        assert!(lines.last().unwrap().contains(&format!("\"packets_out\":{}", frames.len())), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains(&format!("\"dropped\":0,\"blanked\":{n}"))), "{lines:?}");
        let rows = tshark(&output, 2006, &["rtp.p_type", "rtp.payload", "udp.checksum.status", "rtp.seq"]);
        assert_eq!(rows.len(), frames.len());
        for &i in &changed {
            assert_eq!(rows[i][0], "9", "packet {i} keeps its header");
            assert!(hex_bytes(&rows[i][1]).iter().all(|&b| b == 0), "packet {i}: payload blanked");
            assert_eq!(rows[i][2], "1", "packet {i}: checksum valid");
        }
        let seqs: Vec<u16> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "numbering untouched");
    }
    // A stream of payload type 9 alone is not recognised without --rtp-port:
    // kept as it is; with it, every payload is blanked.
    let g722: Vec<_> = frames.iter().filter(|(_, f)| f[at + 1] & 0x7F == 9).cloned().collect();
    let only = tmp("g722-only.pcap");
    write_pcap(&only, false, &g722);
    let lines = scrub(&only, &tmp("g722-only-out.pcap"), &[]);
    assert!(lines.last().unwrap().contains(&format!("\"packets_out\":{n}")), "{lines:?}");
    assert_eq!(std::fs::read(tmp("g722-only-out.pcap")).unwrap(), std::fs::read(&only).unwrap());
    let lines = scrub(&only, &tmp("g722-only-out.pcap"), &["--rtp-port", "2006"]);
    assert!(lines.iter().any(|l| l.contains(&format!("\"blanked\":{n}"))), "{lines:?}");
    let rows = tshark(&tmp("g722-only-out.pcap"), 2006, &["rtp.payload"]);
    assert!(rows.iter().all(|r| hex_bytes(&r[0]).iter().all(|&b| b == 0)));
}

#[test]
fn a_sip_info_cut_by_the_snap_length_loses_its_key_in_place() {
    let body = "Signal=4\r\nDuration=160\r\n";
    let sip = format!(
        "INFO sip:agent@10.1.6.18 SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 2 INFO\r\n\
         Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut f = cardveil_tests::rtpcall::frame(false, 5060, 5060, sip.as_bytes());
    f.truncate(f.len() - 10); // "Duration=" cut: the capture's snap length
    let input = tmp("cut-info.pcap");
    let output = tmp("cut-info-out.pcap");
    write_pcap(&input, false, &[(0.0, f.clone())]);
    let lines = scrub(&input, &output, &[]);
    assert!(lines.iter().any(|l| l.contains("\"event\":\"sip-info\"")), "{lines:?}");
    let out = std::fs::read(&output).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\r\n\r\nSignal=D\r\n") && !text.contains("Signal=4"), "{text}");
    assert_eq!(out.len(), std::fs::read(&input).unwrap().len(), "nothing moves");
}

#[test]
fn a_lone_telephone_event_packet_is_neutralised() {
    let p = cardveil_tests::rtpcall::rtp(101, false, 7, 16_000, &[9, 0x8A, 0x03, 0x20]);
    let f = cardveil_tests::rtpcall::frame(false, 49_170, 10_000, &p);
    let input = tmp("lone-event.pcap");
    let output = tmp("lone-event-out.pcap");
    write_pcap(&input, false, &[(0.0, f)]);
    let lines = scrub(&input, &output, &[]);
    assert!(lines.iter().any(|l| l.contains("\"event\":\"key\"")), "{lines:?}");
    let out = std::fs::read(&output).unwrap();
    let at = out.len() - 4;
    assert_eq!(out[at], 15, "the event code is the fixed one");
}

/// `input` converted to pcapng with editcap.
fn to_pcapng(input: &Path, name: &str) -> PathBuf {
    let out = tmp(&format!("{name}.pcapng"));
    tools::run(Command::new("editcap").args(["-F", "pcapng"]).arg(input).arg(&out));
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"\x0a\x0d\x0d\x0a", "editcap wrote pcapng");
    out
}

#[test]
fn pcapng_captures_are_scrubbed_as_their_pcap_twins_and_stay_pcapng() {
    if !have_inputs() || !tools::require("editcap", "the pcapng tests") {
        return;
    }
    let names: Vec<String> = (0..10)
        .map(|d| format!("dtmf_2833_{d}"))
        .chain(["dtmf_2833_pound".into(), "dtmf_2833_star".into(), "g711a".into()])
        .collect();
    let fields = ["frame.number", "rtp.seq", "rtp.p_type", "rtp.payload", "rtpevent.event_id", "udp.checksum.status"];
    for name in names {
        let pcap = Path::new(DIR).join(format!("{name}.pcap"));
        let port = if name == "g711a" { 2006 } else { 10000 };
        let ng = to_pcapng(&pcap, &name);
        for events in ["neutralise", "drop"] {
            let (a, b) = (tmp(&format!("{name}-{events}.pcap")), tmp(&format!("{name}-{events}.pcapng")));
            let lines_pcap = scrub(&pcap, &a, &["--events", events]);
            let lines_ng = scrub(&ng, &b, &["--events", events]);
            assert_eq!(&std::fs::read(&b).unwrap()[..4], b"\x0a\x0d\x0d\x0a", "{name}: the output is pcapng");
            // The same events and counts; only the summary's format differs.
            let (sum_pcap, sum_ng) = (lines_pcap.last().unwrap(), lines_ng.last().unwrap());
            assert_eq!(lines_pcap[..lines_pcap.len() - 1], lines_ng[..lines_ng.len() - 1], "{name} {events}");
            assert!(sum_ng.contains(r#""format":"pcapng""#) && sum_ng.contains(r#""blocks_dropped":0"#), "{sum_ng}");
            assert_eq!(
                sum_pcap.replace(r#""format":"pcap""#, ""),
                sum_ng.replace(r#""format":"pcapng""#, "").replace(r#","blocks_dropped":0"#, "")
            );
            // tshark reads the same packets, payloads and checksums from both.
            let (rows_pcap, rows_ng) = (tshark(&a, port, &fields), tshark(&b, port, &fields));
            assert_eq!(rows_pcap, rows_ng, "{name} {events}: pcap and pcapng outputs differ");
            assert!(rows_ng.iter().all(|r| r[5] == "1"), "{name}: UDP checksums valid");
            assert!(rows_ng.iter().all(|r| r[4].is_empty() || r[4] == "15"), "{name}: no event keeps its key");
        }
    }
}

#[test]
fn a_pcapng_of_two_interfaces_with_different_link_types_is_scrubbed_on_both() {
    if !have_inputs() || !tools::require("mergecap", "the pcapng tests") {
        return;
    }
    let dir = tmp("");
    // Ethernet/IPv4 and Linux cooked/IPv6: one pcapng, two interfaces.
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for v6 in [false, true] {
        let call = keyed_call(v6, true);
        let p = tmp(&format!("two-if-{v6}.pcap"));
        write_pcap(&p, v6, &call.frames);
        parts.push(p);
        calls.push(call);
    }
    let merged = tmp("two-interfaces.pcapng");
    tools::run(Command::new("mergecap").args(["-F", "pcapng", "-w"]).arg(&merged).args(&parts));
    let c = cardveil_core::pcap::file::Capture::parse(&std::fs::read(&merged).unwrap()).unwrap();
    let mut links: Vec<u32> = c.records.iter().map(|r| r.link_type).collect();
    links.dedup();
    links.sort_unstable();
    links.dedup();
    assert_eq!(links, [1, 113], "mergecap made one interface per link type");

    let output = tmp("two-interfaces-scrubbed.pcapng");
    let lines = scrub(&merged, &output, &[]);
    let keys = lines.iter().filter(|l| l.contains(r#""event":"key""#)).count();
    assert_eq!(keys, 2 * PAN.len(), "{lines:?}");
    let rows =
        tshark(&output, 2006, &["frame.interface_id", "ipv6.src", "rtp.p_type", "rtp.payload", "rtpevent.event_id"]);
    assert_eq!(rows.len(), calls[0].frames.len() + calls[1].frames.len());
    for (v6, call) in calls.iter().enumerate() {
        let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[1].is_empty() != (v6 == 1)).collect();
        assert!(mine.iter().all(|r| r[0] == mine[0][0]), "one interface per call");
        let audio: Vec<u8> = mine.iter().filter(|r| r[2] == "8").flat_map(|r| hex_bytes(&r[3])).collect();
        assert_eq!(audio.len(), call.audio.len(), "interface {v6}");
        let pcm: Vec<i16> = audio.iter().map(|&a| alaw::decode(a)).collect();
        let tag = format!("two-if-{v6}");
        assert_eq!(decode_cardveil(8000, &pcm), "", "{tag}");
        assert_eq!(decode_multimon(8000, &pcm, &dir, &tag), "", "{tag}");
        assert_eq!(decode_dtmf2num(8000, &pcm, &dir, &tag), "", "{tag}");
        assert!(mine.iter().filter(|r| r[2] == "101").all(|r| r[4] == "15"), "{tag}: events neutralised");
    }
    // The SIP INFO bodies lose their key in place (pcapng packets keep their length).
    let text = String::from_utf8_lossy(&std::fs::read(&output).unwrap()).into_owned();
    assert!(!text.contains("Signal=4") && text.matches("Signal=D").count() == 2, "INFO bodies");
    assert_eq!(std::fs::metadata(&output).unwrap().len(), std::fs::metadata(&merged).unwrap().len());
}

/// Capture frames: (seconds, link-layer frame).
type Frames = Vec<(f64, Vec<u8>)>;

/// Two calls keyed on the same ports with 3 s of other traffic between
/// them (`junk` datagrams of another flow), at their real capture times or
/// (`zero`) all at time 0; the frames, and each call's μ-law audio.
fn two_calls_with_a_gap(junk: usize, zero: bool) -> (Frames, Vec<Vec<u8>>) {
    let clock = |t: f64| if zero { 0.0 } else { t };
    use cardveil_core::codec::ulaw;
    let (pcm, _) = cardveil_cli::example::synthesize(8000);
    let audio: Vec<u8> = pcm.iter().map(|&s| ulaw::encode(s)).collect();
    let mut frames = Vec::new();
    let mut t = 0.0;
    let mut calls = Vec::new();
    for call in 0..2u16 {
        for (k, chunk) in audio.chunks(160).enumerate() {
            let packet = rtp(0, k == 0, call * 1000 + k as u16, (k * 160) as u32, chunk);
            frames.push((clock(t), frame(false, 5000, 2006, &packet)));
            t += 0.02;
        }
        calls.push(audio.clone());
        if call == 0 {
            for j in 0..junk {
                let body = format!("not rtp {j:08}");
                frames.push((clock(t), frame(false, 7000, 7001, body.as_bytes())));
                t += 3.0 / junk as f64;
            }
        }
    }
    (frames, calls)
}

/// Scrubs `frames` in memory; the stream lines, the output's μ-law audio
/// per SSRC run on port 2006, and the other datagrams' payloads in order.
fn scrub_two_calls(frames: &[(f64, Vec<u8>)], tag: &str) -> (Vec<String>, Vec<u8>, Vec<Vec<u8>>, usize) {
    use cardveil_core::pcap::{PcapOptions, scrub};
    let input = tmp(&format!("{tag}.pcap"));
    write_pcap(&input, false, frames);
    let bytes = std::fs::read(&input).unwrap();
    let mut lines = Vec::new();
    let out = scrub(&bytes, &PcapOptions::default(), &mut |e| lines.push(cardveil_cli::pcap::json(&e))).unwrap();
    let c = cardveil_core::pcap::file::Capture::parse(&out.file).unwrap();
    let (mut audio, mut others) = (Vec::new(), Vec::new());
    for r in &c.records {
        let f = &out.file[r.data.clone()];
        let u = cardveil_core::pcap::net::find_udp(r.link_type, f).unwrap();
        let payload = &f[u.payload.clone()];
        if u.dst.port() == 2006 {
            audio.extend_from_slice(&payload[12..]);
        } else {
            others.push(payload.to_vec());
        }
    }
    let streams = lines.into_iter().filter(|l| l.contains("\"event\":\"stream\"")).collect();
    (streams, audio, others, c.records.len())
}

#[test]
fn a_stream_gone_quiet_is_ended_and_the_next_call_on_its_ports_is_scrubbed_as_a_new_one() {
    use cardveil_core::codec::ulaw;
    // Real time: 3 s of other traffic between the calls (the stream goes idle);
    // no time at all (every timestamp 0): 70,000 datagrams between them (too much held).
    for (tag, junk, zero) in [("idle", 150, false), ("flood", 70_000, true)] {
        let (frames, calls) = two_calls_with_a_gap(junk, zero);
        let (streams, audio, others, records) = scrub_two_calls(&frames, tag);
        assert_eq!(records, frames.len(), "{tag}: every record kept");
        let mine: Vec<&String> = streams.iter().filter(|l| l.contains("10.1.3.143:5000")).collect();
        assert_eq!(mine.len(), 2, "{tag}: the first call's stream ended, the second is a new one: {streams:?}");
        assert!(mine.iter().all(|l| l.contains("\"keys\":26")), "{tag}: {mine:?}");
        assert_eq!(audio.len(), calls[0].len() + calls[1].len());
        for (n, (out, input)) in audio.chunks(calls[0].len()).zip(&calls).enumerate() {
            let pcm_in: Vec<i16> = input.iter().map(|&c| ulaw::decode(c)).collect();
            let pcm_out: Vec<i16> = out.iter().map(|&c| ulaw::decode(c)).collect();
            assert!(decode_cardveil(8000, &pcm_in).starts_with("4111"), "{tag}: call {n} is keyed");
            assert_eq!(decode_cardveil(8000, &pcm_out), "", "{tag}: call {n} masked");
        }
        // The other flow passes unchanged and in order.
        let expected: Vec<Vec<u8>> = (0..junk).map(|j| format!("not rtp {j:08}").into_bytes()).collect();
        assert_eq!(others, expected, "{tag}");
    }
}

/// Issue 13 through the RTP and pcap path: a card keyed over the call's
/// own audio (the tones added to it, not replacing it) at per-tone SNR
/// +15 … 0 dB, scrubbed with `cardveil scrub`'s default 200 ms look-ahead.
/// cardveil and spandsp (default and most sensitive) read no key from the
/// scrubbed audio at any of these SNRs; from +10 dB up no decoder reads
/// one beyond what it reads from the call's audio without keys, and 99 %
/// of the tones' time is masked (90 % from +3 dB up). Measured: 100 % at
/// +15 and +10 dB, 97.5 % at +6 (multimon-ng reads one key), 95.0 % at +3
/// (dtmf2num one), 80.7 % at 0 dB (multimon-ng and dtmf2num three each).
#[test]
fn a_card_keyed_over_the_calls_audio_is_scrubbed() {
    if !have_inputs() {
        return;
    }
    let dir = tmp("");
    let read = |pcm: &[i16], tag: &str| -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("cardveil", decode_cardveil(8000, pcm)),
            ("multimon-ng", decode_multimon(8000, pcm, &dir, tag)),
            ("dtmf2num", decode_dtmf2num(8000, pcm, &dir, tag)),
        ];
        if let (Some(a), Some(b)) = (decode_spandsp(pcm), decode_spandsp_sensitive(pcm)) {
            v.extend([("spandsp", a), ("spandsp-sensitive", b)]);
        }
        v
    };
    let quiet = keyed_over_audio(f64::NEG_INFINITY);
    let alone = read(&quiet.audio.iter().map(|&a| alaw::decode(a)).collect::<Vec<_>>(), "over-alone");
    for snr in [15.0, 10.0, 6.0, 3.0, 0.0] {
        let call = keyed_over_audio(snr);
        let tag = format!("over{snr}");
        let input = tmp(&format!("{tag}.pcap"));
        let output = tmp(&format!("{tag}-scrubbed.pcap"));
        write_pcap(&input, false, &call.frames);
        let pcm_in: Vec<i16> = call.audio.iter().map(|&a| alaw::decode(a)).collect();
        scrub(&input, &output, &[]);
        let rows = tshark(&output, 2006, &["rtp.p_type", "rtp.payload"]);
        let out_audio: Vec<u8> = rows.iter().filter(|r| r[0] == "8").flat_map(|r| hex_bytes(&r[1])).collect();
        assert_eq!(out_audio.len(), call.audio.len());
        let pcm_out: Vec<i16> = out_audio.iter().map(|&a| alaw::decode(a)).collect();
        let tone_samples: usize = call.tones.iter().map(|&(s, e)| e - s).sum();
        let masked = call.tones.iter().flat_map(|&(s, e)| s..e).filter(|&i| out_audio[i] != call.audio[i]).count();
        let reads_in = read(&pcm_in, &format!("{tag}-in"));
        let reads_out = read(&pcm_out, &format!("{tag}-out"));
        let share = masked as f64 / tone_samples as f64;
        println!(
            "{snr:+} dB: {:.1} % of the tones' time masked; keys read from the input {:?}; from the output (the audio alone) {:?}",
            100.0 * share,
            reads_in.iter().map(|(d, k)| format!("{d} {}", k.len())).collect::<Vec<_>>(),
            reads_out
                .iter()
                .zip(&alone)
                .map(|((d, k), (_, a))| format!("{d} {} ({})", k.len(), a.len()))
                .collect::<Vec<_>>()
        );
        // The stimulus carries the card for the lenient decoders.
        assert!(reads_in.iter().any(|(_, k)| k.len() >= PAN.len()), "{snr:+} dB: {reads_in:?}");
        for ((d, k), (_, a)) in reads_out.iter().zip(&alone) {
            let strict = *d == "cardveil" || d.starts_with("spandsp");
            if (strict || snr >= 10.0) && k.len() > a.len() {
                panic!(
                    "{snr:+} dB: {d} read {} keys from the scrubbed audio ({} from the audio alone)",
                    k.len(),
                    a.len()
                );
            }
        }
        let floor = if snr >= 10.0 {
            0.99
        } else if snr >= 3.0 {
            0.90
        } else {
            0.0
        };
        assert!(share >= floor, "{snr:+} dB: {:.1} % of the tones' time masked", 100.0 * share);
    }
}
