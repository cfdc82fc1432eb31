//! Fail closed (SPEC "Fail closed"): the inputs that once carried a keyed
//! card straight through, each as a test. A capture or a relayed stream
//! that cardveil cannot parse the ordinary way is masked or blanked —
//! checked with all four decoders (cardveil, spandsp default and most
//! sensitive, multimon-ng, dtmf2num) on what comes out — and strangers
//! cannot redirect the relay's media or stop it.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cardveil_cli::relay::{Relay, RelayOptions};
use cardveil_cli::{Cli, run};
use cardveil_core::codec::{alaw, ulaw};
use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};
use cardveil_core::pcap::file::Capture;
use cardveil_core::pcap::net::{find_udp, fix_checksum};
use cardveil_core::rtp::{RtpHeader, RtpStreamConfig};
use cardveil_tests::masking::{
    decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive,
};
use cardveil_tests::rtpcall::{PAN, keyed_call, write_pcap};
use cardveil_tests::tools;
use clap::Parser;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardveil-fail-closed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What each decoder reads from `pcm` (8 kHz); spandsp where it is built in.
fn decoded(pcm: &[i16], tag: &str) -> Vec<(&'static str, String)> {
    let dir = tmp("");
    let mut out = vec![
        ("cardveil", decode_cardveil(8000, pcm)),
        ("multimon-ng", decode_multimon(8000, pcm, &dir, tag)),
        ("dtmf2num", decode_dtmf2num(8000, pcm, &dir, tag)),
    ];
    if let (Some(a), Some(b)) = (decode_spandsp(pcm), decode_spandsp_sensitive(pcm)) {
        out.push(("spandsp", a));
        out.push(("spandsp most sensitive", b));
    }
    out
}

fn assert_no_key(pcm: &[i16], tag: &str) {
    for (decoder, keys) in decoded(pcm, tag) {
        assert_eq!(keys, "", "{tag}: {decoder} read keys from the output");
    }
}

fn have_tools() -> bool {
    tools::require("multimon-ng", "the fail-closed tests") && tools::require("dtmf2num", "the fail-closed tests")
}

// ---------------------------------------------------------------- pcap

/// Ethernet (14) + IPv4 (20) + UDP (8): where the RTP header starts.
const RTP_AT: usize = 42;

/// `cardveil pcap` on `frames`; its stdout lines (each parsed as JSON) and the output file.
fn scrub(frames: &[(f64, Vec<u8>)], name: &str) -> (Vec<String>, Vec<u8>) {
    let input = tmp(&format!("{name}.pcap"));
    let output = tmp(&format!("{name}-out.pcap"));
    write_pcap(&input, false, frames);
    let argv = ["cardveil", "pcap", input.to_str().unwrap(), "-o", output.to_str().unwrap()];
    let mut out = Vec::new();
    run(Cli::try_parse_from(argv).unwrap(), &mut out).unwrap();
    let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
    (lines, std::fs::read(&output).unwrap())
}

/// What a receiver could play from the output: every PT 0/8 payload, the
/// header read leniently (a zero pad count as none), in file order.
fn playable(file: &[u8]) -> Vec<i16> {
    let c = Capture::parse(file).unwrap();
    let mut pcm = Vec::new();
    for r in &c.records {
        let f = &file[r.data.clone()];
        let Some(u) = find_udp(r.link_type, f) else { continue };
        let p = &f[u.payload.clone()];
        if let Ok(h) = RtpHeader::parse_lenient(p) {
            match h.payload_type {
                0 => pcm.extend(h.payload(p).iter().map(|&a| ulaw::decode(a))),
                8 => pcm.extend(h.payload(p).iter().map(|&a| alaw::decode(a))),
                _ => {}
            }
        }
    }
    pcm
}

/// The A-law audio tshark finds with the call's port forced to RTP
/// (`-d udp.port==2006,rtp`): what a recorder's RTP export would play.
fn tshark_audio(file: &std::path::Path) -> Vec<i16> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-d", "udp.port==2006,rtp", "-T", "fields", "-E", "occurrence=f"]);
    cmd.args(["-e", "rtp.p_type", "-e", "rtp.payload"]);
    let out = String::from_utf8(tools::run(&mut cmd)).unwrap();
    let mut pcm = Vec::new();
    for line in out.lines() {
        let mut f = line.split('\t');
        if f.next() == Some("8") {
            let hex: String = f.next().unwrap_or("").chars().filter(char::is_ascii_hexdigit).collect();
            pcm.extend(
                (0..hex.len() / 2).map(|i| alaw::decode(u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())),
            );
        }
    }
    pcm
}

/// The keyed call's frames with `change` applied to each RTP frame (its
/// index among them), the UDP checksum fixed after.
fn mutated(change: impl Fn(usize, &mut Vec<u8>)) -> Vec<(f64, Vec<u8>)> {
    let mut frames = keyed_call(false, false).frames;
    for (i, (_, f)) in frames.iter_mut().enumerate() {
        change(i, f);
        if let Some(u) = find_udp(1, f) {
            fix_checksum(f, &u);
        }
    }
    frames
}

#[test]
fn captures_with_lying_lengths_or_odd_rtp_are_masked_or_blanked() {
    if !std::path::Path::new(cardveil_tests::rtpcall::DIR).join("g711a.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester is required in CI");
        eprintln!("SKIPPED: apt-get install sip-tester for its RTP captures");
        return;
    }
    if !have_tools() || !tools::require("tshark", "the fail-closed pcap test") {
        return;
    }
    let plain = playable(&{
        let frames = mutated(|_, _| {});
        let input = tmp("plain.pcap");
        write_pcap(&input, false, &frames);
        std::fs::read(&input).unwrap()
    });
    assert_eq!(decode_cardveil(8000, &plain), PAN, "the stimulus carries the card");
    assert_eq!(decode_cardveil(8000, &tshark_audio(&tmp("plain.pcap"))), PAN, "tshark's decode finds it too");

    type Change = Box<dyn Fn(usize, &mut Vec<u8>)>;
    let cases: Vec<(&str, Change)> = vec![
        ("ipv4-total-length-0", Box::new(|_, f| f[16..18].copy_from_slice(&[0, 0]))),
        ("udp-length-65535", Box::new(|_, f| f[38..40].copy_from_slice(&[0xFF, 0xFF]))),
        (
            "udp-length-one-more",
            Box::new(|_, f| {
                let n = u16::from_be_bytes([f[38], f[39]]) + 1;
                f[38..40].copy_from_slice(&n.to_be_bytes());
            }),
        ),
        (
            "padding-count-0",
            Box::new(|_, f| {
                f[RTP_AT] |= 0x20;
                *f.last_mut().unwrap() = 0;
            }),
        ),
        ("sequence-constant", Box::new(|_, f| f[RTP_AT + 2..RTP_AT + 4].copy_from_slice(&[0x12, 0x34]))),
        (
            "sequence-step-11",
            Box::new(|i, f| f[RTP_AT + 2..RTP_AT + 4].copy_from_slice(&((i * 11) as u16).to_be_bytes())),
        ),
        (
            "sequence-descending",
            Box::new(|i, f| f[RTP_AT + 2..RTP_AT + 4].copy_from_slice(&(60_000 - i as u16).to_be_bytes())),
        ),
        ("ssrc-every-packet", Box::new(|i, f| f[RTP_AT + 8..RTP_AT + 12].copy_from_slice(&(i as u32).to_be_bytes()))),
    ];
    for (name, change) in cases {
        let frames = mutated(change);
        let (lines, out) = scrub(&frames, name);
        let summary = lines.last().unwrap();
        assert!(summary.contains(&format!("\"packets_out\":{}", frames.len())), "{name}: every record kept: {summary}");
        let streams: Vec<&String> = lines.iter().filter(|l| l.contains("\"event\":\"stream\"")).collect();
        assert!(!streams.is_empty(), "{name}: the stream is found: {lines:?}");
        let pcm = playable(&out);
        assert_no_key(&pcm, name);
        // tshark's forced RTP decode of the same output: nothing either.
        assert_no_key(&tshark_audio(&tmp(&format!("{name}-out.pcap"))), &format!("{name}-tshark"));
        if name == "padding-count-0" {
            // Not RTP that can be inspected: every audio datagram blanked in place.
            let blanked: usize = streams
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["blanked"].as_u64().unwrap() as usize)
                .sum();
            assert!(blanked >= 200, "{name}: {blanked} blanked");
            assert!(pcm.is_empty(), "{name}: no audio left as RTP");
        } else {
            // The audio is all there, masked only around the tones.
            assert!(pcm.len() >= plain.len() - 240, "{name}: {} of {} samples", pcm.len(), plain.len());
        }
    }
}

proptest::proptest! {
    // A fixed seed: CI runs the same 512 cases every time (40,000 random
    // cases passed when this was written; the two it first found are the
    // regression test below).
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(14),
        failure_persistence: None,
        ..Default::default()
    })]

    /// Mutated RTP headers and IP/UDP lengths in a keyed call: whatever is
    /// written either went through the masker (no key can be played from
    /// the output) or carries no payload byte of the input (a datagram of a
    /// stream that is not inspectable RTP, RTCP, STUN or DTLS is all zeros).
    #[test]
    fn mutated_headers_and_lengths_never_pass_a_key(
        changes in proptest::collection::vec((0usize..400, 0u8..8, proptest::prelude::any::<u16>()), 1..24)
    ) {
        if !std::path::Path::new(cardveil_tests::rtpcall::DIR).join("g711a.pcap").exists() {
            return Ok(());
        }
        let mut frames = keyed_call(false, false).frames;
        for &(i, field, value) in &changes {
            let Some((_, f)) = frames.get_mut(i % 332) else { continue };
            let [hi, lo] = value.to_be_bytes();
            match field {
                0 => f[RTP_AT] = hi,
                1 => f[RTP_AT + 1] = lo,
                2 => f[RTP_AT + 2..RTP_AT + 4].copy_from_slice(&[hi, lo]),
                3 => f[RTP_AT + 6..RTP_AT + 8].copy_from_slice(&[hi, lo]),
                4 => f[RTP_AT + 10..RTP_AT + 12].copy_from_slice(&[hi, lo]),
                5 => f[16..18].copy_from_slice(&[hi, lo]),
                6 => f[38..40].copy_from_slice(&[hi, lo]),
                _ => {
                    f[RTP_AT] |= 0x20;
                    *f.last_mut().unwrap() = lo;
                }
            }
            if let Some(u) = find_udp(1, f) {
                fix_checksum(f, &u);
            }
        }
        let input = tmp("mutated.pcap");
        write_pcap(&input, false, &frames);
        let bytes = std::fs::read(&input).unwrap();
        let out = cardveil_core::pcap::scrub(&bytes, &Default::default(), &mut |_| {}).unwrap();
        proptest::prop_assert_eq!(out.packets_out, out.packets_in);
        proptest::prop_assert_eq!(decode_cardveil(8000, &playable(&out.file)), "");
        let c = Capture::parse(&out.file).unwrap();
        for r in &c.records {
            let f = &out.file[r.data.clone()];
            let Some(u) = find_udp(r.link_type, f) else { continue };
            let p = &f[u.payload.clone()];
            if u.src.port() == 5000 && RtpHeader::parse(p).is_err() && cardveil_core::rtp::recognise(p).is_none() {
                proptest::prop_assert!(p.iter().all(|&b| b == 0), "a datagram of the stream that cannot be inspected kept its bytes");
            }
        }
    }
}

/// The two inputs the property above first failed on, for all four
/// decoders: a packet whose timestamp jumps a second ahead, with a padded
/// first packet (the abandoned numbering's places were played out among
/// the new one's spans); and a packet seven seconds ahead with the last
/// packet on the first key's place (the analysis lag was counted in RTP
/// timestamps, so the jump let every later packet play out before the
/// analysis had looked ahead of it).
#[test]
fn timestamps_that_jump_leak_nothing() {
    if !std::path::Path::new(cardveil_tests::rtpcall::DIR).join("g711a.pcap").exists() || !have_tools() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester, multimon-ng and dtmf2num are required in CI");
        return;
    }
    let cases: [&[(usize, u8, u16)]; 2] = [&[(191, 3, 35761), (0, 7, 30303)], &[(8, 3, 54241), (331, 3, 15376)]];
    for (n, changes) in cases.iter().enumerate() {
        let frames = mutated(|i, f| {
            for &(at, field, value) in changes.iter() {
                if at == i {
                    let [hi, lo] = value.to_be_bytes();
                    if field == 3 {
                        f[RTP_AT + 6..RTP_AT + 8].copy_from_slice(&[hi, lo]);
                    } else {
                        f[RTP_AT] |= 0x20;
                        *f.last_mut().unwrap() = lo;
                    }
                }
            }
        });
        let (_, out) = scrub(&frames, &format!("jump-{n}"));
        assert_no_key(&playable(&out), &format!("jump-{n}"));
    }
}

// ---------------------------------------------------------------- relay

/// μ-law audio keying `keys` (70 ms on, 70 ms off) after 200 ms of quiet.
fn keyed_ulaw(keys: &str) -> Vec<u8> {
    let mut x = vec![0i16; 1600];
    for ch in keys.chars() {
        let (lo, hi) = Key::from_char(ch).unwrap().frequencies();
        let a = amplitude_for_dbm0(-10.0);
        let start = x.len();
        x.resize(start + 560, 0);
        ToneGenerator::new(8000, [lo, hi], [a, a], [0.0, 0.0]).fill(&mut x[start..]);
        x.resize(x.len() + 560, 0);
    }
    x.resize(x.len() + 4000, 0);
    x.iter().map(|&s| ulaw::encode(s)).collect()
}

fn rtp_packet(first: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![first, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

struct Rig {
    relay: Relay,
    caller: UdpSocket,
    agent: UdpSocket,
    control: UdpSocket,
}

fn rig() -> Rig {
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let control = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&caller, &agent, &control] {
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    }
    let options = RelayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        forward: agent.local_addr().unwrap(),
        bind: None,
        control: Some("127.0.0.1:0".parse().unwrap()),
        control_peer: Some(control.local_addr().unwrap()),
        control_socket: None,
        stream: RtpStreamConfig::default(),
        capture: None,
    };
    let relay = Relay::start(&options, None).unwrap();
    Rig { relay, caller, agent, control }
}

fn loopback(a: SocketAddr) -> SocketAddr {
    SocketAddr::new("127.0.0.1".parse().unwrap(), a.port())
}

/// Everything `sink` has received within `wait`, without blocking longer.
fn drain(sink: &UdpSocket, got: &mut Vec<Vec<u8>>, wait: Duration) {
    let until = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    loop {
        match sink.recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(_) if Instant::now() >= until => return,
            Err(_) => {}
        }
    }
}

/// Sends `packets` from `from` to `to`, paced, and collects what `sink` receives.
fn send(from: &UdpSocket, to: SocketAddr, packets: &[Vec<u8>], sink: &UdpSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for p in packets {
        from.send_to(p, to).unwrap();
        drain(sink, &mut got, Duration::from_millis(2));
    }
    drain(sink, &mut got, Duration::from_millis(400));
    got
}

/// The μ-law payloads (PT 0) of `packets` decoded, in arrival order.
fn pcm_of(packets: &[Vec<u8>]) -> Vec<i16> {
    packets
        .iter()
        .filter_map(|p| RtpHeader::parse(p).ok().filter(|h| h.payload_type == 0).map(|h| (h, p)))
        .flat_map(|(h, p)| h.payload(p).iter().map(|&c| ulaw::decode(c)).collect::<Vec<_>>())
        .collect()
}

fn command(r: &Rig, from: &UdpSocket, text: &[u8]) -> Option<String> {
    from.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    from.send_to(text, loopback(r.relay.control.unwrap())).unwrap();
    let mut buf = [0u8; 1024];
    let reply = from.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    from.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    reply
}

#[test]
fn the_relay_drops_what_it_cannot_inspect() {
    if !have_tools() {
        return;
    }
    let audio = keyed_ulaw("4111");
    let packets = |first: u8| -> Vec<Vec<u8>> {
        audio
            .chunks(160)
            .enumerate()
            .map(|(i, c)| {
                let mut p = rtp_packet(first, i as u16, (i * 160) as u32, 7, c);
                if first & 0x20 != 0 {
                    p.push(0); // a padding count of 0
                }
                p
            })
            .collect()
    };
    // RTP version 1, and version 2 with the padding bit and a count of 0.
    for (name, first) in [("version-1", 0x40u8), ("padding-count-0", 0xA0)] {
        let r = rig();
        let got = send(&r.caller, loopback(r.relay.listen), &packets(first), &r.agent);
        assert!(got.is_empty(), "{name}: {} datagrams forwarded", got.len());
        r.relay.stop();
    }
    // The same audio as proper RTP: relayed, masked.
    let r = rig();
    let got = send(&r.caller, loopback(r.relay.listen), &packets(0x80), &r.agent);
    assert!(got.len() >= packets(0x80).len() - 1, "{} of {} forwarded", got.len(), packets(0x80).len());
    assert_no_key(&pcm_of(&got), "relay-plain");
    // RTCP passes as itself.
    let rtcp = [0x80u8, 201, 0, 1, 0, 0, 0, 7];
    let got = send(&r.caller, loopback(r.relay.listen), &[rtcp.to_vec()], &r.agent);
    assert_eq!(got, vec![rtcp.to_vec()]);
    r.relay.stop();
}

#[test]
fn one_sample_packets_interleaved_into_the_callers_stream_leak_nothing() {
    if !have_tools() {
        return;
    }
    let audio = keyed_ulaw("4111111111111111");
    // Between the caller's 20 ms packets: a 1-sample packet of the same
    // SSRC on the next packet's first timestamp, one on the last sample
    // just sent, and one of another SSRC.
    for (name, mode) in [("same-ssrc-ahead", 0), ("same-ssrc-behind", 1), ("other-ssrc", 2)] {
        let mut packets = Vec::new();
        let mut seq = 0u16;
        for (i, c) in audio.chunks(160).enumerate() {
            let ts = (i * 160) as u32;
            packets.push(rtp_packet(0x80, seq, ts, 7, c));
            seq = seq.wrapping_add(1);
            let (ts1, ssrc) = match mode {
                0 => (ts + 160, 7),
                1 => (ts + 159, 7),
                _ => (ts + 160, 99),
            };
            packets.push(rtp_packet(0x80, seq, ts1, ssrc, &[c[0]]));
            seq = seq.wrapping_add(1);
        }
        let r = rig();
        let got = send(&r.caller, loopback(r.relay.listen), &packets, &r.agent);
        assert_no_key(&pcm_of(&got), name);
        r.relay.stop();
    }
}

#[test]
fn strangers_neither_redirect_media_nor_steer_the_relay() {
    let r = rig();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let listen = loopback(r.relay.listen);
    let agent_side = loopback(r.relay.agent_side);
    let quiet: Vec<Vec<u8>> = (0..10).map(|i| rtp_packet(0x80, i, i as u32 * 160, 7, &[0xFF; 160])).collect();
    // The caller latches; a stranger's one-byte datagram and a few RTP
    // packets of its own SSRC follow.
    assert_eq!(send(&r.caller, listen, &quiet, &r.agent).len(), quiet.len());
    let mut junk = vec![vec![0u8]];
    junk.extend((0..4).map(|i| rtp_packet(0x80, 500 + i, 90_000 + i as u32 * 160, 1234, &[0xFF; 160])));
    assert!(send(&stranger, listen, &junk, &r.agent).is_empty(), "nothing of the stranger's reaches the agent");
    // The agent's audio still goes to the caller, none to the stranger.
    let back: Vec<Vec<u8>> = (0..10).map(|i| rtp_packet(0x80, i, i as u32 * 160, 8, &[0xFF; 160])).collect();
    assert_eq!(send(&r.agent, agent_side, &back, &r.caller).len(), back.len());
    let mut to_stranger = Vec::new();
    drain(&stranger, &mut to_stranger, Duration::from_millis(100));
    assert!(to_stranger.is_empty(), "the stranger got {} datagrams", to_stranger.len());

    // Control: a stranger's `stop` is ignored, unanswered; the peer's
    // commands work; an oversize command is refused, not cut and run.
    assert_eq!(command(&r, &stranger, b"stop"), None);
    assert!(!r.relay.stopped());
    let status = command(&r, &r.control, b"status").expect("the peer is answered");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["stranger_commands"], 1, "{status}");
    let mut long = b"stop".to_vec();
    long.resize(600, b' ');
    assert!(command(&r, &r.control, &long).unwrap().starts_with("error: command longer than"));
    assert!(!r.relay.stopped());
    assert_eq!(command(&r, &r.control, b"stop").as_deref(), Some("ok"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !r.relay.stopped() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(r.relay.stopped());
    r.relay.stop();
}

#[test]
fn settings_that_loop_or_open_the_control_socket_are_refused() {
    let base = RelayOptions {
        listen: "127.0.0.1:40999".parse().unwrap(),
        forward: "127.0.0.1:40999".parse().unwrap(),
        bind: None,
        control: None,
        control_peer: None,
        control_socket: None,
        stream: RtpStreamConfig::default(),
        capture: None,
    };
    let err = |o: &RelayOptions| Relay::start(o, None).unwrap_err().to_string();
    assert!(err(&base).contains("loop"), "{}", err(&base));
    let wildcard = RelayOptions { listen: "0.0.0.0:40999".parse().unwrap(), ..base.clone() };
    assert!(err(&wildcard).contains("loop"));
    let forward = "127.0.0.1:41999".parse().unwrap();
    let open = RelayOptions { forward, control: Some("0.0.0.0:0".parse().unwrap()), ..base.clone() };
    assert!(err(&open).contains("loopback"), "{}", err(&open));
    let no_peer = RelayOptions { forward, control: Some("127.0.0.1:0".parse().unwrap()), ..base };
    assert!(err(&no_peer).contains("--control-peer"), "{}", err(&no_peer));
}

#[test]
fn the_unix_control_socket_is_the_relays_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixDatagram;
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let path = tmp("relay.ctl");
    let _ = std::fs::remove_file(&path);
    let options = RelayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        forward: agent.local_addr().unwrap(),
        bind: None,
        control: None,
        control_peer: None,
        control_socket: Some(path.clone()),
        stream: RtpStreamConfig::default(),
        capture: None,
    };
    let relay = Relay::start(&options, None).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "only the relay's user");
    let me = tmp("client.sock");
    let _ = std::fs::remove_file(&me);
    let client = UnixDatagram::bind(&me).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = |text: &[u8]| {
        client.send_to(text, &path).unwrap();
        let mut buf = [0u8; 1024];
        let n = client.recv(&mut buf).expect("a reply");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let status = ask(b"status");
    assert!(serde_json::from_str::<serde_json::Value>(&status).unwrap()["caller_packets"] == 0, "{status}");
    assert!(ask(&[b'x'; 700]).starts_with("error: command longer than"));
    assert_eq!(ask(b"stop"), "ok");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !relay.stopped() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(relay.stopped());
    relay.stop();
    assert!(!path.exists(), "the socket file goes with the relay");
    // A file that is not a socket is never replaced.
    std::fs::write(&path, b"not a socket").unwrap();
    assert!(Relay::start(&options, None).unwrap_err().to_string().contains("existing file"));
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    let _ = std::fs::remove_file(&me);
}
