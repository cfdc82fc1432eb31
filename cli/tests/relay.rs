//! `cardveil relay` as a process: RTP both ways over loopback, the control
//! socket (capture, status, stop, errors), a card captured from the
//! caller's keys and tokenized, and nothing on stdout that is a card number.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cardveil_core::codec::ulaw;
use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, Key, ToneGenerator, amplitude_for_dbm0};
use common::{bin, field, tmp};

/// μ-law audio keying `keys` (70 ms on, 70 ms off) after 200 ms of quiet.
fn keyed(keys: &str) -> Vec<u8> {
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

fn packets(audio: &[u8], ssrc: u32) -> Vec<Vec<u8>> {
    packets_from(audio, ssrc, 0)
}

/// RTP packets of `audio`, numbered (sequence and timestamp) from packet `first` of the SSRC.
fn packets_from(audio: &[u8], ssrc: u32, first: usize) -> Vec<Vec<u8>> {
    audio
        .chunks(160)
        .enumerate()
        .map(|(i, c)| (i + first, c))
        .map(|(i, c)| {
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&(i as u16).to_be_bytes());
            p.extend_from_slice(&((i * 160) as u32).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(c);
            p
        })
        .collect()
}

fn keys_in(audio: &[u8]) -> usize {
    let pcm: Vec<i16> = audio.iter().map(|&c| ulaw::decode(c)).collect();
    let mut d = Detector::new(DetectorConfig::default()).unwrap();
    let mut n = 0;
    d.process(&pcm, |e| n += matches!(e, DetectorEvent::Up(_)) as usize);
    n
}

struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    first: String,
}

fn start(args: &[&str]) -> Running {
    let mut child = bin().arg("relay").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(10)).expect("the relay's first line");
    Running { child, lines, first }
}

fn addr(line: &str, name: &str) -> SocketAddr {
    let v = field(line, name).unwrap_or_else(|| panic!("{name} in {line}"));
    let a: SocketAddr = v.trim_matches('"').parse().unwrap();
    SocketAddr::new("127.0.0.1".parse().unwrap(), a.port())
}

fn command(control: &UdpSocket, to: SocketAddr, text: &str) -> String {
    control.send_to(text.as_bytes(), to).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = control.recv_from(&mut buf).expect("a reply");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Sends `packets` from `from` to `to` at 20 ms per packet (4 ms here:
/// fast, but paced) while `sink` collects what arrives.
fn stream(from: &UdpSocket, to: SocketAddr, packets: &[Vec<u8>], sink: &UdpSocket) -> Vec<Vec<u8>> {
    sink.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let mut drain = |got: &mut Vec<Vec<u8>>| {
        while let Ok(n) = sink.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
    };
    for p in packets {
        from.send_to(p, to).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        drain(&mut got);
    }
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        drain(&mut got);
    }
    got
}

fn payloads(packets: &[Vec<u8>]) -> Vec<u8> {
    packets.iter().flat_map(|p| p[12..].to_vec()).collect()
}

#[test]
fn relays_both_ways_captures_over_the_control_socket_and_stops() {
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let control = UdpSocket::bind("127.0.0.1:0").unwrap();
    control.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let vault = tmp("relay", "vault.sqlite");
    let forward = agent.local_addr().unwrap().to_string();
    let peer = control.local_addr().unwrap().to_string();
    let mut relay = start(&[
        "--listen",
        "127.0.0.1:0",
        "--forward",
        &forward,
        "--control",
        "127.0.0.1:0",
        "--control-peer",
        &peer,
        "--capture",
        "pan,expiry,cvv",
        "--vault",
        vault.to_str().unwrap(),
    ]);
    let (listen, control_at) = (addr(&relay.first, "listen"), addr(&relay.first, "control"));
    assert!(relay.first.contains("\"event\":\"relay\""), "{}", relay.first);

    // Keys before the capture begins: masked, not captured.
    let early = packets(&keyed("99"), 1);
    let got = stream(&caller, listen, &early, &agent);
    assert_eq!(got.len(), early.len());
    assert_eq!(keys_in(&payloads(&early)), 2);
    assert_eq!(keys_in(&payloads(&got)), 0);

    assert_eq!(command(&control, control_at, "capture"), "ok");
    // The same SSRC goes on where it was (RTP's numbering never steps back:
    // the relay drops audio whose place it has played out already).
    let card = packets_from(&keyed("4111111111111111#1229#123#"), 1, early.len());
    let got = stream(&caller, listen, &card, &agent);
    assert_eq!(got.len(), card.len());
    assert_eq!(keys_in(&payloads(&got)), 0, "the agent hears no key");

    // The agent's side back to the caller (latched address), masked too.
    let back = packets(&keyed("123"), 2);
    let agent_side = addr(&relay.first, "agent_side");
    let got = stream(&agent, agent_side, &back, &caller);
    assert_eq!(got.len(), back.len());
    assert_eq!(keys_in(&payloads(&got)), 0);

    let status = command(&control, control_at, "status");
    assert!(status.contains(&format!("\"caller_packets\":{}", early.len() + card.len())), "{status}");
    assert!(status.contains(&format!("\"agent_packets\":{}", back.len())), "{status}");
    assert!(command(&control, control_at, "bogus").starts_with("error: unknown command"));

    // Wait for the token, then stop.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l: &String| l.contains("\"event\":\"token\"")) && Instant::now() < deadline {
        if let Ok(l) = relay.lines.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    assert_eq!(command(&control, control_at, "stop"), "ok");
    let status = relay.child.wait().unwrap();
    lines.extend(relay.lines.iter());
    assert!(status.success(), "{lines:?}");
    for l in std::iter::once(&relay.first).chain(&lines) {
        common::json(l); // every line is JSON
    }
    assert!(lines.last().unwrap().contains("\"event\":\"stopped\""));
    let all = lines.join("\n");
    assert!(all.contains(r#""field":"pan","status":"valid","brand":"visa","last4":"1111","digits":16"#), "{all}");
    assert!(all.contains(r#"{"event":"capture","status":"complete"}"#), "{all}");
    assert!(!all.contains("4111111111111111") && !all.contains("1229") && !all.contains("\"123\""), "{all}");
    let token = lines.iter().find_map(|l| field(l, "token")).expect("a token").trim_matches('"').to_owned();
    let reveal = bin().args(["vault", "reveal", &token, "--vault"]).arg(&vault).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&reveal.stdout).trim(), "4111111111111111");
}

#[test]
fn without_capture_the_control_socket_says_so_and_bad_addresses_fail() {
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let control = UdpSocket::bind("127.0.0.1:0").unwrap();
    control.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let forward = agent.local_addr().unwrap().to_string();
    let peer = control.local_addr().unwrap().to_string();
    let mut relay =
        start(&["--listen", "127.0.0.1:0", "--forward", &forward, "--control", "127.0.0.1:0", "--control-peer", &peer]);
    let control_at = addr(&relay.first, "control");
    assert!(command(&control, control_at, "capture").contains("without --capture"));
    assert_eq!(command(&control, control_at, "stop"), "ok");
    assert!(relay.child.wait().unwrap().success());

    // A port in use: one line, exit 1.
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = bin()
        .args(["relay", "--listen", &busy.local_addr().unwrap().to_string(), "--forward", &forward])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("cardveil: error: relay sockets:") && err.trim().lines().count() == 1, "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_cardveil"))
        .args(["relay", "--listen", "nowhere", "--forward", &forward])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_ng_form_serves_the_ng_protocol_and_refuses_bad_settings() {
    let vault = tmp("relay", "ng-vault.db");
    let vault = vault.to_str().unwrap();
    let base = 62_500 + (std::process::id() % 100) as u16 * 10;
    let ports = format!("{base}-{}", base + 8);
    let mut relay = start(&["--ng", "127.0.0.1:0", "--ports", &ports, "--threads", "1", "--vault", vault]);
    assert!(relay.first.contains("\"event\":\"relay\"") && relay.first.contains("\"threads\":1"), "{}", relay.first);
    let ng = addr(&relay.first, "ng");
    let proxy = UdpSocket::bind("127.0.0.1:0").unwrap();
    proxy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = |datagram: &[u8]| {
        proxy.send_to(datagram, ng).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = proxy.recv_from(&mut buf).expect("an ng reply");
        buf[..n].to_vec()
    };
    assert_eq!(ask(b"c1 d7:command4:pinge"), b"c1 d6:result4:ponge");
    let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
    let offer = format!("d7:call-id1:x8:from-tag1:a3:sdp{}:{sdp}7:command5:offere", sdp.len());
    let reply = String::from_utf8(ask(format!("c2 {offer}").as_bytes())).unwrap();
    assert!(reply.starts_with("c2 d6:result2:ok3:sdp"), "{reply}");
    let port: u16 = reply.split("m=audio ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((base..base + 8).contains(&port), "{reply}");
    let random = String::from_utf8(ask(b"c3 d7:command10:block DTMF7:call-id1:x13:DTMF-security6:randome")).unwrap();
    assert!(random.contains("6:result5:error") && random.contains("refused"), "{random}");
    let deleted = String::from_utf8(ask(b"c4 d7:command6:delete7:call-id1:xe")).unwrap();
    assert!(deleted.starts_with("c4 d7:createdi") && deleted.contains("6:result2:ok"), "{deleted}");
    let gone = String::from_utf8(ask(b"c5 d7:command5:query7:call-id1:xe")).unwrap();
    assert!(gone.contains("Unknown call-id"), "{gone}");
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let _ = relay.lines.try_iter().count();

    // Bad settings: one line, exit 2.
    for args in [
        &["relay", "--ng", "127.0.0.1:0", "--ports", "5-3"][..],
        &["relay", "--ng", "0.0.0.0:0"],
        &["relay", "--ng", "127.0.0.1:0", "--interface", "internal/nowhere"],
        &["relay", "--ng", "127.0.0.1:0", "--listen", "127.0.0.1:4000", "--forward", "127.0.0.1:4002"],
        &["relay", "--ports", "30000-30010", "--listen", "127.0.0.1:4000", "--forward", "127.0.0.1:4002"],
    ] {
        let out = bin().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("cardveil: error:") && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
}
