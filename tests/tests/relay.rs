//! `cardveil relay` end to end with sipp (Debian's sip-tester): a sipp
//! caller sets up a call with a sipp agent whose SDP puts the media at the
//! relay, then plays a capture (`play_pcap_audio`); the relay forwards to a
//! UDP socket of the test, which checks what came out as the pcap tests do:
//! the twelve `dtmf_2833_*.pcap` arrive with every event neutralised (or
//! not at all when dropped), `g711a.pcap` arrives whole with its audio
//! bit-exact (delayed by the look-ahead), and a call with a card keyed in
//! band and as events arrives with no decodable key and each key reported
//! once.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cardveil_cli::relay::{Relay, RelayEvent, RelayOptions};
use cardveil_core::codec::alaw;
use cardveil_core::pcap::file::Capture;
use cardveil_core::rtp::{EventAction, KeySource, RtpHeader, RtpStreamConfig, TelephoneEvent};
use cardveil_tests::masking::{decode_cardveil, decode_multimon, decode_spandsp, decode_spandsp_sensitive};
use cardveil_tests::rtpcall::{DIR, PAN, keyed_call, write_pcap};
use cardveil_tests::tools;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sipp").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardveil-relay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What came out of the relay for one capture played by sipp.
struct Played {
    packets: Vec<Vec<u8>>,
    events: Vec<RelayEvent>,
}

/// Plays `pcap` with sipp through a fresh relay; `base` picks the SIP and
/// media ports (base, base+1, base+2…).
fn play(pcap: &Path, seconds: f64, action: EventAction, base: u16) -> Played {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let options = RelayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        forward: sink.local_addr().unwrap(),
        bind: None,
        control: None,
        control_peer: None,
        control_socket: None,
        stream: RtpStreamConfig { event_action: action, ..RtpStreamConfig::default() },
        capture: None,
    };
    let relay = Relay::start(&options, None).unwrap();
    // Read as packets arrive (a socket buffer left unread overflows).
    sink.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = std::sync::Arc::clone(&done);
        let from_relay = SocketAddr::new("127.0.0.1".parse().unwrap(), relay.agent_side.port());
        std::thread::spawn(move || {
            let mut packets = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                match sink.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        assert_eq!(from, from_relay);
                        packets.push(buf[..n].to_vec());
                    }
                    Err(_) if done.load(std::sync::atomic::Ordering::Acquire) => return packets,
                    Err(_) => {}
                }
            }
        })
    };
    let (uas_port, uac_port, media_port) = (base, base + 1, base + 2);
    let uas = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("uas.xml"))
        .args(["-i", "127.0.0.1", "-p", &uas_port.to_string(), "-m", "1", "-timeout", "60"])
        .args(["-key", "relay_port", &relay.listen.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipp");
    std::thread::sleep(Duration::from_millis(300));
    let ms = ((seconds * 1000.0) as u64 + 500).to_string();
    let uac = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("uac.xml"))
        .args(["-i", "127.0.0.1", "-p", &uac_port.to_string(), "-mp", &media_port.to_string()])
        .args(["-m", "1", "-timeout", "60", "-d", &ms])
        .arg("-key")
        .arg("pcap")
        .arg(pcap)
        .arg(format!("127.0.0.1:{uas_port}"))
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    let uas_out = uas.wait_with_output().unwrap();
    assert!(uac.status.success(), "sipp caller failed: {}", String::from_utf8_lossy(&uac.stdout));
    assert!(uas_out.status.success(), "sipp agent failed: {}", String::from_utf8_lossy(&uas_out.stderr));
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, std::sync::atomic::Ordering::Release);
    let packets = reader.join().unwrap();
    let events_rx = &relay.events;
    let events: Vec<RelayEvent> = std::iter::from_fn(|| events_rx.try_recv().ok()).collect();
    relay.stop();
    Played { packets, events }
}

fn keys(p: &Played) -> Vec<KeySource> {
    p.events
        .iter()
        .filter_map(|e| match e {
            RelayEvent::Key(_, source, ..) => Some(*source),
            _ => None,
        })
        .collect()
}

fn packet_count(pcap: &Path) -> usize {
    Capture::parse(&std::fs::read(pcap).unwrap()).unwrap().records.len()
}

fn audio(packets: &[Vec<u8>]) -> Vec<u8> {
    packets
        .iter()
        .filter_map(|p| {
            let h = RtpHeader::parse(p).unwrap();
            (h.payload_type == 8).then(|| h.payload(p).to_vec())
        })
        .flatten()
        .collect()
}

fn event_codes(packets: &[Vec<u8>]) -> Vec<u8> {
    packets
        .iter()
        .filter_map(|p| {
            let h = RtpHeader::parse(p).unwrap();
            (h.payload_type == 101).then(|| TelephoneEvent::parse(h.payload(p)).unwrap().event)
        })
        .collect()
}

#[test]
fn sipp_plays_the_captures_through_the_relay() {
    if !Path::new(DIR).join("g711a.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester is required in CI (apt-get install sip-tester)");
        eprintln!("SKIPPED: apt-get install sip-tester for sipp and its captures");
        return;
    }
    if !tools::require("sipp", "the relay end-to-end test") {
        return;
    }
    // Fixed ports below both the kernel's ephemeral range (32768 and up,
    // where sockets bound to port 0 land) and scripts/postgres.sh's
    // (20000-49999), so none of them meet.
    let mut base = 10_000 + (std::process::id() % 180) as u16 * 50;
    let mut next = || {
        base += 5;
        base
    };
    let neutralise = EventAction::Neutralise(15);
    let names: Vec<String> =
        (0..10).map(|d| format!("dtmf_2833_{d}")).chain(["dtmf_2833_pound".into(), "dtmf_2833_star".into()]).collect();
    for name in &names {
        let pcap = Path::new(DIR).join(format!("{name}.pcap"));
        let played = play(&pcap, 0.2, neutralise, next());
        assert_eq!(played.packets.len(), packet_count(&pcap), "{name}: every packet relayed");
        let codes = event_codes(&played.packets);
        assert_eq!(codes.len(), played.packets.len());
        assert!(codes.iter().all(|&c| c == 15), "{name}: {codes:?}");
        assert_eq!(keys(&played), vec![KeySource::Event], "{name}: the key reported once");
    }
    let pcap = Path::new(DIR).join("dtmf_2833_5.pcap");
    let dropped = play(&pcap, 0.2, EventAction::Drop, next());
    assert!(dropped.packets.is_empty(), "events dropped");

    // g711a.pcap: every packet, the audio bit for bit behind the 20 ms look-ahead.
    let pcap = Path::new(DIR).join("g711a.pcap");
    let played = play(&pcap, 7.1, neutralise, next());
    assert_eq!(played.packets.len(), 236);
    let file = std::fs::read(&pcap).unwrap();
    let c = Capture::parse(&file).unwrap();
    let sent: Vec<Vec<u8>> = c
        .records
        .iter()
        .map(|r| {
            let f = &file[r.data.clone()];
            let u = cardveil_core::pcap::net::find_udp(r.link_type, f).unwrap();
            f[u.payload].to_vec()
        })
        .collect();
    let (a_in, a_out) = (audio(&sent), audio(&played.packets));
    assert_eq!(a_out.len(), a_in.len());
    assert!(a_out[..160].iter().all(|&c| c == alaw::encode(0)));
    assert!(a_out[160..] == a_in[..a_in.len() - 160], "unmasked audio leaves exactly as it came, 20 ms later");
    assert!(keys(&played).is_empty());

    // A card keyed in band and as events.
    let call = keyed_call(false, false);
    let input = tmp("keyed-call.pcap");
    write_pcap(&input, false, &call.frames);
    let played = play(&input, call.audio.len() as f64 / 8000.0, neutralise, next());
    assert_eq!(played.packets.len(), call.frames.len(), "every packet relayed");
    let codes = event_codes(&played.packets);
    assert_eq!(codes.len(), call.events);
    assert!(codes.iter().all(|&c| c == 15));
    assert_eq!(keys(&played).len(), PAN.len(), "each key once, though sent in band and as events");
    let pcm_in: Vec<i16> = call.audio.iter().map(|&a| alaw::decode(a)).collect();
    let pcm_out: Vec<i16> = audio(&played.packets).iter().map(|&a| alaw::decode(a)).collect();
    assert_eq!(decode_cardveil(8000, &pcm_in), PAN);
    assert_eq!(decode_cardveil(8000, &pcm_out), "");
    let dir = tmp("");
    assert_eq!(decode_multimon(8000, &pcm_out, &dir, "relay"), "");
    for d in [decode_spandsp(&pcm_out), decode_spandsp_sensitive(&pcm_out)].into_iter().flatten() {
        assert_eq!(d, "", "spandsp");
    }
    // Away from the tones the audio is the input's, 20 ms later.
    let near = |i: usize| call.tones.iter().any(|&(s, e)| i + 480 >= s && i < e + 480);
    let a_out = audio(&played.packets);
    let changed = (0..call.audio.len() - 160).filter(|&i| !near(i) && a_out[i + 160] != call.audio[i]).count();
    assert_eq!(changed, 0);
}
