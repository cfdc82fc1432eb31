//! The same keyed call through Debian's rtpengine (user space,
//! `--table=-1`) and through cardveil, side by side: the example card
//! (`cardveil example`, 26 keys) as PCMU in 20 ms packets, sent in real
//! time, the SDP without telephone-event (rtpengine detects in-band keys
//! only then). rtpengine: `block DTMF` with `DTMF-security=silence` at
//! `delay-buffer` 0, 20 and 40 ms; cardveil: the ng relay (20 ms
//! look-ahead), and the two-phase stream (a host's 20 ms jitter buffer is
//! the look-ahead: nothing added). Each decoder's count of keys read from
//! what the callee received goes to `target/rtpengine-table.md` (the
//! README's table). The test asserts cardveil's zeros, not rtpengine's
//! figures. rtpengine and the relay are stopped by the test.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cardveil_cli::ng::bencode::Value;
use cardveil_core::codec::ulaw;
use cardveil_core::rtp::{RtpHeader, RtpStream, RtpStreamConfig};
use cardveil_tests::masking::{decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp_sensitive};
use cardveil_tests::ngcall::{Party, Proxy, relay, rtpengine, s, sdp_port};
use cardveil_tests::tools;

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// One call set up through the media proxy at `proxy`, blocked with
/// `DTMF-security=silence` (and `delay-buffer`, for rtpengine).
struct Leg {
    caller: Party,
    callee: Party,
    to: SocketAddr,
    name: String,
}

fn set_up(proxy: &mut Proxy, name: &str, delay: Option<i64>) -> Leg {
    let (caller, callee) = (Party::new(), Party::new());
    let id = format!("side-{name}");
    let mut extra = vec![];
    if let Some(d) = delay {
        extra.push(("delay-buffer", Value::Int(d)));
    }
    let with = |mut f: Vec<(&'static str, Value)>| {
        f.extend(extra.iter().cloned());
        f
    };
    let offer =
        proxy.ok("offer", &with(vec![("call-id", s(&id)), ("from-tag", s("caller")), ("sdp", s(&sdp(caller.port())))]));
    let _ = sdp_port(&offer);
    let answer = proxy.ok(
        "answer",
        &with(vec![
            ("call-id", s(&id)),
            ("from-tag", s("caller")),
            ("to-tag", s("callee")),
            ("sdp", s(&sdp(callee.port()))),
        ]),
    );
    let port = sdp_port(&answer);
    proxy.ok("block DTMF", &with(vec![("call-id", s(&id)), ("DTMF-security", s("silence"))]));
    Leg { caller, callee, to: SocketAddr::new([127, 0, 0, 1].into(), port), name: name.into() }
}

/// The example card as 20 ms PCMU packets.
fn packets() -> (Vec<Vec<u8>>, Vec<i16>) {
    let (pcm, _) = cardveil_cli::example::synthesize(8000);
    let mut out = Vec::new();
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&(i as u16).to_be_bytes());
        p.extend_from_slice(&((i * 160) as u32).to_be_bytes());
        p.extend_from_slice(&0x5EED_0001u32.to_be_bytes());
        p.extend(chunk.iter().map(|&x| ulaw::encode(x)));
        out.push(p);
    }
    (out, pcm)
}

fn pcm_of(packets: &[Vec<u8>]) -> Vec<i16> {
    packets
        .iter()
        .filter_map(|p| RtpHeader::parse(p).ok().filter(|h| h.payload_type == 0).map(|h| h.payload(p).to_vec()))
        .flatten()
        .map(ulaw::decode)
        .collect()
}

/// Keys each decoder reads: cardveil, spandsp (most sensitive), multimon-ng, dtmf2num.
fn read(pcm: &[i16], tag: &str) -> [usize; 4] {
    let dir = std::env::temp_dir().join(format!("cardveil-side-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    [
        decode_cardveil(8000, pcm).len(),
        decode_spandsp_sensitive(pcm).map_or(0, |k| k.len()),
        decode_multimon(8000, pcm, &dir, tag).len(),
        decode_dtmf2num(8000, pcm, &dir, tag).len(),
    ]
}

#[test]
fn the_same_keyed_call_through_rtpengine_and_cardveil() {
    for p in ["rtpengine", "multimon-ng", "dtmf2num"] {
        if !tools::require(p, "the rtpengine side-by-side test (apt-get install rtpengine-daemon)") {
            return;
        }
    }
    let (packets, pcm) = packets();
    let keys = cardveil_cli::example::KEYS.len();
    assert_eq!(read(&pcm, "input")[0], keys, "the input carries every key");
    let pid = (std::process::id() % 50) as u16;
    let (ng_port, rtpe_ports, cv_ports) =
        (10_000 + pid, (62_000 + pid * 20, 62_019 + pid * 20), (63_500 + pid * 20, 63_516 + pid * 20));
    let log = std::env::temp_dir().join(format!("cardveil-rtpengine-{}.log", std::process::id()));
    let engine = rtpengine(ng_port, rtpe_ports, Some(&log))
        .unwrap_or_else(|| panic!("rtpengine did not start: {}", log.display()));
    let cardveil = relay(cv_ports, 1);
    let mut rtpe = Proxy::new(SocketAddr::new([127, 0, 0, 1].into(), ng_port));
    let mut cv = Proxy::new(cardveil.addr);
    let mut legs: Vec<Leg> =
        [0, 20, 40].iter().map(|&d| set_up(&mut rtpe, &format!("rtpengine, delay-buffer {d} ms"), Some(d))).collect();
    legs.push(set_up(&mut cv, "cardveil relay, 20 ms look-ahead", None));
    // In real time: rtpengine's delay buffer and detector run on the clock.
    let start = Instant::now();
    for (i, p) in packets.iter().enumerate() {
        for leg in &legs {
            leg.caller.socket.send_to(p, leg.to).unwrap();
        }
        let due = start + Duration::from_millis(20 * (i as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut rows: Vec<(String, [usize; 4])> = Vec::new();
    for mut leg in legs {
        let got: Vec<Vec<u8>> = leg.callee.received_all().into_iter().map(|(_, p)| p).collect();
        let out = pcm_of(&got);
        assert!(
            out.len() + 800 >= pcm.len(),
            "{}: the audio arrived ({} of {} samples)",
            leg.name,
            out.len(),
            pcm.len()
        );
        rows.push((leg.name.clone(), read(&out, &leg.name.replace([' ', ','], "-"))));
    }
    // Two-phase: each packet analysed on arrival and played out from a 20 ms buffer.
    let config = RtpStreamConfig::default();
    let mut stream = RtpStream::new_two_phase(config).unwrap();
    let mut played = Vec::new();
    let mut buffer: Option<Vec<u8>> = None;
    for p in &packets {
        stream.analyse(p, &mut |_| {}).unwrap();
        if let Some(mut q) = buffer.replace(p.clone()) {
            stream.playout(&mut q).unwrap();
            played.push(q);
        }
    }
    rows.push(("cardveil two-phase (20 ms jitter buffer, nothing added)".into(), read(&pcm_of(&played), "two-phase")));
    drop(engine);
    cardveil.stop();

    let mut table = format!(
        "| media proxy (the example card, {keys} keys, PCMU 20 ms, DTMF-security=silence) | cardveil | spandsp (most sensitive) | multimon-ng | dtmf2num |\n|---|---:|---:|---:|---:|\n"
    );
    for (name, r) in &rows {
        table.push_str(&format!("| {name} | {} | {} | {} | {} |\n", r[0], r[1], r[2], r[3]));
    }
    println!("{table}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("rtpengine-table.md"), &table);
    for (name, r) in rows.iter().filter(|(n, _)| n.starts_with("cardveil")) {
        assert_eq!(*r, [0; 4], "{name}: no decoder reads a key");
    }
}
