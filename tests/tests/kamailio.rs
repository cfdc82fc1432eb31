//! A real SIP platform in front of `cardveil relay --ng`: Debian's
//! Kamailio with its `rtpengine` module, whose route calls
//! `rtpengine_manage()` (offer on the INVITE, answer on its 200, delete on
//! the BYE), a sipp caller and a sipp callee (`tests/data/sipp`) — the
//! callee's SDP puts its media at a UDP socket of the test. The caller
//! plays a call with a card keyed in band and as telephone-events
//! (`rtpcall::keyed_call`). What the callee receives holds no key for any
//! of the four decoders, its events are neutralised, and the BYE deletes
//! the call. A second run whose reply route also calls
//! `block_dtmf("DTMF-security=tone")` gets the flat tone in place of the
//! keys instead of silence. Every process is stopped by the test.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cardveil_cli::ng::bencode::Value;
use cardveil_core::codec::alaw;
use cardveil_core::rtp::{RtpHeader, TelephoneEvent};
use cardveil_tests::masking::decode_cardveil;
use cardveil_tests::ngcall::{Party, Proxy, no_key_readable, relay};
use cardveil_tests::rtpcall::{DIR, PAN, keyed_call, write_pcap};
use cardveil_tests::tools;

const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cardveil-kamailio-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process killed (and waited for) when the test lets go of it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kamailio on 127.0.0.1:`sip`, sending every request on to the callee at
/// `callee` and driving the relays at `ng` (each with weight 1) through
/// `rtpengine_manage()`; `reply_extra` is added to the reply route after
/// the answer. Returns once it listens.
fn kamailio(sip: u16, callee: u16, ng: &[SocketAddr], reply_extra: &str, tag: &str) -> Process {
    let socks: Vec<String> = ng.iter().map(|a| format!("udp:{a}=1")).collect();
    let cfg = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
listen=udp:127.0.0.1:{sip}
mpath="{MODULES}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "{socks}")
modparam("rtpengine", "rtpengine_tout_ms", 300)
modparam("rtpengine", "rtpengine_retr", 1)
modparam("rtpengine", "rtpengine_disable_tout", 60)
request_route {{
    if (is_method("INVITE|BYE|CANCEL")) {{
        rtpengine_manage("trust-address replace-origin");
    }}
    $du = "sip:127.0.0.1:{callee}";
    if (is_method("ACK")) {{
        forward();
        exit;
    }}
    t_on_reply("MANAGE");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
onreply_route[MANAGE] {{
    if (has_body("application/sdp")) {{
        rtpengine_manage("trust-address replace-origin");
        {reply_extra}
    }}
}}
"#,
        socks = socks.join(" ")
    );
    let d = dir().join(tag);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    let log = std::fs::File::create(d.join("kamailio.log")).unwrap();
    let child = Command::new("kamailio")
        .arg("-f")
        .arg(&path)
        .args(["-DD", "-E", "-m", "32", "-M", "8"])
        .arg("-Y")
        .arg(&d)
        .arg("-w")
        .arg(&d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run kamailio");
    let p = Process(child);
    // Up once its SIP port is taken (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", sip)).is_ok() {
        assert!(Instant::now() < deadline, "kamailio did not start: {}", d.join("kamailio.log").display());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300)); // its first ping to the relays
    p
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sipp").join(name)
}

/// One sipp call through Kamailio at `sip`: the callee sipp on `uas`
/// answering with media at `media`, the caller sipp on `uac` playing `pcap`.
fn sipp_call(sip: u16, uas: u16, uac: u16, media: u16, pcap: &Path, seconds: f64) {
    let callee = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("uas.xml"))
        .args(["-i", "127.0.0.1", "-p", &uas.to_string(), "-m", "1", "-timeout", "60"])
        .args(["-key", "relay_port", &media.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipp");
    let callee = Process(callee);
    std::thread::sleep(Duration::from_millis(300));
    let ms = ((seconds * 1000.0) as u64 + 500).to_string();
    let caller = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("uac.xml"))
        .args(["-i", "127.0.0.1", "-p", &uac.to_string(), "-mp", &(uac + 10).to_string()])
        .args(["-m", "1", "-timeout", "60", "-d", &ms])
        .arg("-key")
        .arg("pcap")
        .arg(pcap)
        .arg(format!("127.0.0.1:{sip}"))
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    assert!(caller.status.success(), "sipp caller failed: {}", String::from_utf8_lossy(&caller.stdout));
    let mut callee = callee;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match callee.0.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "sipp callee failed");
                break;
            }
            None if Instant::now() > deadline => panic!("the sipp callee did not end"),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The A-law audio and the event codes of what reached the callee.
fn audio_and_events(packets: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let (mut audio, mut codes) = (Vec::new(), Vec::new());
    for p in packets {
        let h = RtpHeader::parse(p).unwrap();
        match h.payload_type {
            8 => audio.extend_from_slice(h.payload(p)),
            101 => codes.push(TelephoneEvent::parse(h.payload(p)).unwrap().event),
            other => panic!("payload type {other} reached the callee"),
        }
    }
    (audio, codes)
}

#[test]
fn kamailio_with_sipp_calls_through_the_ng_relay() {
    if !Path::new(DIR).join("g711a.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester is required in CI (apt-get install sip-tester)");
        eprintln!("SKIPPED: apt-get install sip-tester for sipp and its captures");
        return;
    }
    for (p, what) in
        [("kamailio", "the Kamailio test"), ("sipp", "the Kamailio test"), ("multimon-ng", "the Kamailio test")]
    {
        if !tools::require(p, what) {
            return;
        }
    }
    assert!(Path::new(MODULES).join("rtpengine.so").exists(), "kamailio's rtpengine module");
    // SIP ports below the kernel's ephemeral range and scripts/postgres.sh's,
    // apart from relay.rs's; media ports above the ephemeral range.
    let base = 10_025 + (std::process::id() % 180) as u16 * 50;
    let media = 64_000 + (std::process::id() % 60) as u16 * 20;
    let call = keyed_call(false, false);
    let pcap = dir().join("keyed-call.pcap");
    write_pcap(&pcap, false, &call.frames);
    let seconds = call.audio.len() as f64 / 8000.0;
    let pcm_in: Vec<i16> = call.audio.iter().map(|&a| alaw::decode(a)).collect();
    assert_eq!(decode_cardveil(8000, &pcm_in), PAN, "the call carries the card");

    let mut masked_runs = Vec::new();
    for (run, extra) in ["", "block_dtmf(\"DTMF-security=tone\");"].into_iter().enumerate() {
        let relay = relay((media, media + 16), 2);
        let (sip, uas, uac) = (base + 10 * run as u16, base + 10 * run as u16 + 1, base + 10 * run as u16 + 2);
        let k = kamailio(sip, uas, &[relay.addr], extra, &format!("run{run}"));
        let mut callee = Party::new();
        sipp_call(sip, uas, uac, callee.port(), &pcap, seconds);
        std::thread::sleep(Duration::from_millis(300));
        let lines: Vec<String> = relay.lines.try_iter().collect();
        assert!(lines.iter().all(|l| !l.contains(PAN) && !l.contains("41111")), "no digits in events");
        assert_eq!(lines.iter().filter(|l| l.contains("\"event\":\"key\"")).count(), PAN.len(), "{lines:?}");
        let list = Proxy::new(relay.addr).ok("list", &[]);
        assert_eq!(list.get("calls").and_then(Value::as_list).map(<[Value]>::len), Some(0), "the BYE deleted the call");
        // Everything the callee got came from one relay port.
        let got = callee.received_all();
        let from = got.first().expect("media reached the callee").0;
        assert!(from.ip().is_loopback() && (media..media + 16).contains(&from.port()), "{from}");
        assert!(got.iter().all(|(f, _)| *f == from));
        let packets: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
        let (audio, codes) = audio_and_events(&packets);
        assert!(
            audio.len() + 400 >= call.audio.len(),
            "{run}: the audio arrived ({} of {})",
            audio.len(),
            call.audio.len()
        );
        assert_eq!(codes.len(), call.events, "{run}: every event relayed");
        assert!(codes.iter().all(|&c| c == 15), "{run}: events neutralised: {codes:?}");
        let pcm: Vec<i16> = audio.iter().map(|&a| alaw::decode(a)).collect();
        no_key_readable(&pcm, &format!("kamailio run {run}"));
        // Inside each tone (behind the 20 ms look-ahead): silence, or the flat tone.
        let inside: Vec<i16> = call.tones.iter().flat_map(|&(s, e)| pcm[s + 160 + 80..e + 160 - 80].to_vec()).collect();
        masked_runs.push(inside.iter().filter(|&&x| x.abs() > 64).count() as f64 / inside.len() as f64);
        drop(k);
        relay.stop();
    }
    assert!(masked_runs[0] < 0.01, "silence in place of the keys: {:.3} loud", masked_runs[0]);
    assert!(
        masked_runs[1] > 0.5,
        "block_dtmf(DTMF-security=tone): the flat tone in place of the keys: {:.3}",
        masked_runs[1]
    );
}
