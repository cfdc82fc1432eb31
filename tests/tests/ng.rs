//! `cardveil relay --ng`: the relay driven over rtpengine's ng protocol,
//! in process, with the test as the SIP proxy and as both parties of each
//! call. Two calls at once through one relay (one per media thread), each
//! party a UDP socket of the test: the keys each one sends reach the other
//! party masked (no key for cardveil, spandsp, multimon-ng or dtmf2num),
//! telephone-events neutralised or dropped as `block DTMF` said, the
//! caller's card captured and tokenized on request and fetched by `query`,
//! and ports reused after `delete`. Then Debian's `rtpengine-ng-client`
//! (rtpengine-utils) speaks to the same socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cardveil_cli::ng::bencode::Value;
use cardveil_cli::ng::engine::EngineConfig;
use cardveil_core::codec::ulaw;
use cardveil_tests::masking::decode_cardveil;
use cardveil_tests::ngcall::{Party, Proxy, config, keyed_pcm, no_key_readable, relay, result, s, start};
use cardveil_tests::tools;

/// The card keyed (a test PAN, then `#`).
const KEYS: &str = "4111111111111111#";
const PAN: &str = "4111111111111111";
/// The telephone-event payload type the parties' SDP give.
const EVENT_PT: u8 = 101;

/// Media ports for a test: above the kernel's ephemeral range (ports bound
/// to 0 land in 32768–60999) and scripts/postgres.sh's, `n` RTP/RTCP pairs.
fn port_range(test: u16, pairs: u16) -> (u16, u16) {
    let base = 61_000 + ((std::process::id() % 100) as u16 * 40) + test * 20;
    (base, base + 2 * pairs)
}

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 {EVENT_PT}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:{EVENT_PT} telephone-event/8000\r\n\
         a=sendrecv\r\n"
    )
}

/// The audio port an SDP reply points at, the other lines kept.
fn sdp_port(reply: &Value) -> u16 {
    let body = reply.get("sdp").and_then(Value::as_str).expect("an SDP body");
    assert!(body.contains("c=IN IP4 127.0.0.1\r\n"), "{body}");
    assert!(body.contains("a=sendrecv\r\n") && body.contains("telephone-event/8000"), "other lines kept: {body}");
    cardveil_tests::ngcall::sdp_port(reply)
}

/// μ-law packets (20 ms) of `keys` keyed in band (60 ms on, 60 ms off
/// after 300 ms of quiet, −10 dBm0 per tone) with each key also sent as
/// RFC 4733 events, in the order a phone sends them.
fn keyed_packets(keys: &str, ssrc: u32) -> Vec<Vec<u8>> {
    let (pcm, spans) = keyed_pcm(keys, [0.2, 0.9]);
    let rtp = |pt: u8, seq: u16, ts: u32, payload: &[u8]| {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    };
    // Each packet's sequence number follows the one before it.
    let mut out: Vec<Vec<u8>> = Vec::new();
    let seq = |out: &Vec<Vec<u8>>| 1000 + out.len() as u16;
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let t = (i * 160) as u32;
        let payload: Vec<u8> = chunk.iter().map(|&x| ulaw::encode(x)).collect();
        out.push(rtp(0, seq(&out), 8000 + t, &payload));
        let now = t as usize + 160;
        for &(ch, start, end) in &spans {
            let code = b"0123456789*#".iter().position(|&c| c as char == ch).unwrap() as u8;
            let mut event = |end_bit: bool, dur: usize| {
                let e = [code, if end_bit { 0x8A } else { 0x0A }, (dur >> 8) as u8, dur as u8];
                out.push(rtp(EVENT_PT, seq(&out), 8000 + start as u32, &e));
            };
            if now > start && now <= end {
                event(false, now - start);
            } else if now > end && now - end <= 160 {
                (0..3).for_each(|_| event(true, end - start));
            }
        }
    }
    out
}

/// The μ-law audio, decoded, and the event codes in what a party received.
fn audio_and_events(packets: &[Vec<u8>]) -> (Vec<i16>, Vec<u8>) {
    let (audio, codes) = cardveil_tests::ngcall::audio_and_events(packets, 0);
    (audio.iter().map(|&c| ulaw::decode(c)).collect(), codes)
}

/// A call set up through the relay: its parties and the relay's port facing each.
struct Call {
    id: String,
    tags: [String; 2],
    caller: Party,
    callee: Party,
    /// The relay's ports facing the caller and the callee.
    ports: [u16; 2],
}

fn set_up(proxy: &mut Proxy, id: &str) -> Call {
    let (caller, callee) = (Party::new(), Party::new());
    let tags = [format!("{id}-from"), format!("{id}-to")];
    let offer = proxy.ok(
        "offer",
        &[("call-id", s(id)), ("from-tag", s(&tags[0])), ("sdp", s(&sdp(caller.port()))), ("ICE", s("remove"))],
    );
    let to_callee = sdp_port(&offer);
    let answer = proxy.ok(
        "answer",
        &[("call-id", s(id)), ("from-tag", s(&tags[0])), ("to-tag", s(&tags[1])), ("sdp", s(&sdp(callee.port())))],
    );
    let to_caller = sdp_port(&answer);
    assert_ne!(to_caller, to_callee);
    Call { id: id.into(), tags, caller, callee, ports: [to_caller, to_callee] }
}

fn relay_addr(port: u16) -> SocketAddr {
    SocketAddr::new("127.0.0.1".parse().unwrap(), port)
}

fn sent_keys(tag: &str, packets: &[Vec<u8>]) {
    let (audio, _) = audio_and_events(packets);
    assert_eq!(decode_cardveil(8000, &audio), KEYS, "{tag}: the input carries the keys");
}

#[test]
fn two_calls_at_once_reach_their_callees_masked_and_ports_come_back() {
    if !tools::require("multimon-ng", "the ng relay test") || !tools::require("dtmf2num", "the ng relay test") {
        return;
    }
    // Two calls' worth of ports (four RTP/RTCP pairs), one call per media thread.
    let ports = port_range(0, 4);
    let relay = relay(ports, 2);
    let mut proxy = Proxy::new(relay.addr);
    assert_eq!(result(&proxy.ask("ping", &[])), "pong");
    let one = set_up(&mut proxy, "call-one");
    let two = set_up(&mut proxy, "call-two");
    let full = proxy.ask("offer", &[("call-id", s("call-three")), ("from-tag", s("x")), ("sdp", s(&sdp(9)))]);
    assert_eq!(result(&full), "error", "the pool is bounded: no ports for a third call");

    // The payment step on call one; call two drops events instead of neutralising them.
    let wrong = proxy.ask("capture", &[("call-id", s(&one.id)), ("from-tag", s(&one.tags[1]))]);
    assert_eq!(result(&wrong), "error", "only the caller's side is captured");
    proxy.ok("capture", &[("call-id", s(&one.id)), ("from-tag", s(&one.tags[0])), ("fields", s("pan"))]);
    let random = proxy.ask("block DTMF", &[("call-id", s(&two.id)), ("DTMF-security", s("random"))]);
    assert_eq!(result(&random), "error");
    let off = proxy.ask("unblock DTMF", &[("call-id", s(&two.id))]);
    assert_eq!(result(&off), "error", "masking cannot be turned off without --allow-unmasked");
    proxy.ok("block DTMF", &[("call-id", s(&two.id)), ("DTMF-security", s("drop"))]);

    // Both calls at once: each caller keys the card; call two's callee keys it back.
    let streams = [
        (&one.caller, one.ports[0], keyed_packets(KEYS, 0x1111)),
        (&two.caller, two.ports[0], keyed_packets(KEYS, 0x2222)),
        (&two.callee, two.ports[1], keyed_packets(KEYS, 0x3333)),
    ];
    for (_, _, p) in &streams {
        sent_keys("input", p);
    }
    let longest = streams.iter().map(|(_, _, p)| p.len()).max().unwrap();
    for i in 0..longest {
        for (party, port, packets) in &streams {
            if let Some(p) = packets.get(i) {
                party.socket.send_to(p, relay_addr(*port)).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(300));

    // Call one: the card tokenized, its agent-safe events kept for `query`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (token, events) = loop {
        let q = proxy.ok("query", &[("call-id", s(&one.id))]);
        let c = q.get("cardveil").unwrap();
        let token = c.get("token").and_then(Value::as_str).unwrap_or("").to_owned();
        let events: Vec<String> =
            c.get("events").and_then(Value::as_list).unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect();
        if !token.is_empty() || Instant::now() > deadline {
            let caller = q.get("tags").and_then(|t| t.get(&one.tags[0])).expect("the caller's tag");
            let stream = &caller.get("medias").and_then(Value::as_list).unwrap()[0]
                .get("streams")
                .and_then(Value::as_list)
                .unwrap()[0];
            assert_eq!(stream.get("local port"), Some(&Value::Int(one.ports[0].into())));
            let packets = stream.get("stats").and_then(|s| s.get("packets"));
            assert!(matches!(packets, Some(Value::Int(n)) if *n > 100), "{packets:?}");
            assert!(matches!(stream.get("masked spans"), Some(Value::Int(n)) if *n >= KEYS.len() as i64));
            break (token, events);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!token.is_empty(), "the card was tokenized: {events:?}");
    assert!(events.iter().any(|e| e.contains("\"status\":\"complete\"")), "{events:?}");
    assert!(events.iter().any(|e| e.contains(&token)), "{events:?}");
    for e in &events {
        assert!(!e.contains(PAN) && !e.contains("41111"), "no card digits in events: {e}");
    }

    // What each party received: no key left for any decoder.
    let (mut one, mut two) = (one, two);
    let at_one_callee = one.callee.received(relay_addr(one.ports[1]));
    let at_two_callee = two.callee.received(relay_addr(two.ports[1]));
    let at_two_caller = two.caller.received(relay_addr(two.ports[0]));
    for (tag, packets, codes_expected) in [
        ("call one callee", &at_one_callee, true),
        ("call two callee", &at_two_callee, false),
        ("call two caller", &at_two_caller, false),
    ] {
        let (audio, codes) = audio_and_events(packets);
        assert!(audio.len() >= 8000 * 2, "{tag}: the audio arrived ({} samples)", audio.len());
        no_key_readable(&audio, tag);
        if codes_expected {
            assert!(!codes.is_empty() && codes.iter().all(|&c| c == 15), "{tag}: events neutralised: {codes:?}");
        } else {
            assert!(codes.is_empty(), "{tag}: events dropped (DTMF-security=drop): {codes:?}");
        }
    }

    // delete frees the ports: a new call gets call one's.
    proxy.ok("delete", &[("call-id", s(&one.id)), ("from-tag", s(&one.tags[0]))]);
    assert_eq!(result(&proxy.ask("query", &[("call-id", s(&one.id))])), "error", "the call is gone");
    let three = set_up(&mut proxy, "call-three");
    let (mut a, mut b) = (three.ports, one.ports);
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "call three reuses call one's ports");
    let list = proxy.ok("list", &[]);
    let ids: Vec<&str> = list.get("calls").and_then(Value::as_list).unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"call-two") && ids.contains(&"call-three"), "{ids:?}");
    let lines: Vec<String> = relay.lines.try_iter().collect();
    assert!(lines.iter().any(|l| l.contains("\"call-id\":\"call-one\"") && l.contains("\"event\":\"masked\"")));
    assert!(lines.iter().all(|l| !l.contains(PAN)));
    relay.stop();
}

#[test]
fn rtpengine_ng_client_drives_the_relay() {
    if !tools::require("rtpengine-ng-client", "the ng client test (apt-get install rtpengine-utils)") {
        return;
    }
    let relay = relay(port_range(1, 4), 1);
    let port = relay.addr.port().to_string();
    let client = |args: &[&str]| {
        let out = std::process::Command::new("rtpengine-ng-client")
            .args(["--proxy-address", "127.0.0.1", "--proxy-port", &port])
            .args(args)
            .output()
            .expect("run rtpengine-ng-client");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = client(&["ping"]);
    assert!(ok && out.contains("pong"), "{out}");
    let offer_sdp = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\na=rtcp:4001\n";
    let (ok, out) = client(&[
        "offer",
        "--trust-address",
        "--replace-origin",
        "--from-tag=alice",
        "--call-id=ngc",
        &format!("--sdp={offer_sdp}"),
    ]);
    assert!(ok, "{out}");
    let new_sdp = out.split("New SDP:").nth(1).unwrap_or_else(|| panic!("{out}"));
    let (lo, hi) = port_range(1, 4);
    let media_port: u16 =
        new_sdp.lines().find(|l| l.starts_with("m=audio ")).unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    assert!((lo..hi).contains(&media_port), "{new_sdp}");
    assert!(new_sdp.contains(&format!("a=rtcp:{} IN IP4 127.0.0.1", media_port + 1)), "{new_sdp}");
    assert!(new_sdp.contains("o=- 1 2 IN IP4 127.0.0.1"), "{new_sdp}");
    let answer_sdp = offer_sdp.replace("4000", "5000").replace("4001", "5001");
    let (ok, out) = client(&[
        "answer",
        "--trust-address",
        "--from-tag=alice",
        "--to-tag=bob",
        "--call-id=ngc",
        &format!("--sdp={answer_sdp}"),
    ]);
    assert!(ok && out.contains("m=audio "), "{out}");
    let (ok, out) = client(&["query", "--call-id=ngc"]);
    assert!(ok && out.contains("alice") && out.contains("bob") && out.contains("masked spans"), "{out}");
    let (ok, out) = client(&["block DTMF", "--call-id=ngc", "--DTMF-security=DTMF", "--digit=D"]);
    assert!(ok, "{out}");
    let (ok, out) = client(&["block DTMF", "--call-id=ngc", "--DTMF-security=random"]);
    assert!(!ok && out.contains("refused"), "{out}");
    let (ok, out) =
        client(&["offer", "--from-tag=a", "--call-id=x", "--flags=teleport", &format!("--sdp={offer_sdp}")]);
    assert!(!ok && out.contains("unknown flag"), "{out}");
    let srtp = offer_sdp.replace("RTP/AVP", "RTP/SAVP");
    let (ok, out) = client(&["offer", "--from-tag=a", "--call-id=y", &format!("--sdp={srtp}")]);
    assert!(!ok && out.contains("SRTP"), "encrypted media is refused: {out}");
    let (ok, out) = client(&["frobnicate", "--call-id=ngc"]);
    assert!(!ok && out.contains("unknown command"), "{out}");
    let (ok, out) = client(&["list"]);
    assert!(ok && out.contains("ngc"), "{out}");
    let (ok, out) = client(&["delete", "--call-id=ngc", "--from-tag=alice"]);
    assert!(ok, "{out}");
    let (ok, out) = client(&["query", "--call-id=ngc"]);
    assert!(!ok && out.contains("Unknown call-id"), "{out}");
    relay.stop();
}

#[test]
fn calls_without_media_time_out_and_media_keeps_them() {
    let ports = port_range(2, 4);
    let relay =
        start("127.0.0.1:0".parse().unwrap(), EngineConfig { timeout: Duration::from_secs(1), ..config(ports, 1) });
    let mut proxy = Proxy::new(relay.addr);
    let mut quiet = set_up(&mut proxy, "quiet");
    let mut talking = set_up(&mut proxy, "talking");
    // Two and a half seconds: the quiet call expires, the one with media stays.
    let packets = keyed_packets("", 0x4444);
    let deadline = Instant::now() + Duration::from_millis(2500);
    for p in packets.iter().cycle() {
        if Instant::now() > deadline {
            break;
        }
        talking.caller.socket.send_to(p, relay_addr(talking.ports[0])).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let list = proxy.ok("list", &[]);
    let ids: Vec<&str> = list.get("calls").and_then(Value::as_list).unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(ids, ["talking"], "the quiet call was deleted after its timeout");
    let lines: Vec<String> = relay.lines.try_iter().collect();
    assert!(lines.iter().any(|l| l.contains("\"call-id\":\"quiet\"") && l.contains("timeout")), "{lines:?}");
    // Its ports are free again: two new calls fit.
    let _ = (quiet.caller.received_all(), talking.callee.received_all());
    set_up(&mut proxy, "after");
    relay.stop();
}

#[test]
fn rtcp_goes_between_the_parties_rtcp_ports_and_nothing_else_does() {
    let relay = relay(port_range(3, 2), 1);
    let mut proxy = Proxy::new(relay.addr);
    let (caller, mut caller_rtcp, mut callee, mut callee_rtcp) =
        (Party::new(), Party::new(), Party::new(), Party::new());
    let with_rtcp = |rtp: u16, rtcp: u16| sdp(rtp) + &format!("a=rtcp:{rtcp}\r\n");
    let offer = proxy.ok(
        "offer",
        &[("call-id", s("rtcp")), ("from-tag", s("a")), ("sdp", s(&with_rtcp(caller.port(), caller_rtcp.port())))],
    );
    let to_callee = sdp_port(&offer);
    let answer = proxy.ok(
        "answer",
        &[
            ("call-id", s("rtcp")),
            ("from-tag", s("a")),
            ("to-tag", s("b")),
            ("sdp", s(&with_rtcp(callee.port(), callee_rtcp.port()))),
        ],
    );
    let to_caller = sdp_port(&answer);
    let body = answer.get("sdp").and_then(Value::as_str).unwrap();
    assert!(body.contains(&format!("a=rtcp:{} IN IP4 127.0.0.1", to_caller + 1)), "{body}");
    // A sender report from the caller's RTCP socket; junk and RTP on the RTCP port.
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&[0x11; 24]);
    let rtcp_port = relay_addr(to_caller + 1);
    caller_rtcp.socket.send_to(&sr, rtcp_port).unwrap();
    caller_rtcp.socket.send_to(b"not RTCP at all", rtcp_port).unwrap();
    caller_rtcp.socket.send_to(&keyed_packets("5", 0x5555)[20], rtcp_port).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let got = callee_rtcp.received(relay_addr(to_callee + 1));
    assert_eq!(got, [sr], "only the RTCP reaches the callee's RTCP port, from the relay's RTCP port facing it");
    assert!(callee.received_all().is_empty(), "nothing of it reaches the callee's RTP port");
    let _ = caller_rtcp.received_all();
    relay.stop();
}
