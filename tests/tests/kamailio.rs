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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cardveil_cli::ng::bencode::Value;
use cardveil_core::codec::alaw;
use cardveil_tests::masking::decode_cardveil;
use cardveil_tests::ngcall::{Party, Process, Proxy, audio_and_events, gone, keyed_pcm, no_key_readable, relay, spawn};
use cardveil_tests::rtpcall::{DIR, PAN, keyed_call, write_pcap};
use cardveil_tests::tools;

const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cardveil-kamailio-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
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
    let child = spawn(
        Command::new("kamailio")
            .arg("-f")
            .arg(&path)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&d)
            .arg("-w")
            .arg(&d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    );
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

/// Media ports for this process's tests (above the kernel's ephemeral
/// range): the first test uses 16 from here, the second 18 from 50 on.
fn media_base() -> u16 {
    61_000 + (std::process::id() % 40) as u16 * 100
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sipp").join(name)
}

/// One sipp call through Kamailio at `sip`: the callee sipp on `uas`
/// answering with media at `media`, the caller sipp on `uac` playing `pcap`.
fn sipp_call(sip: u16, uas: u16, uac: u16, media: u16, pcap: &Path, seconds: f64, call_id: &str) {
    let callee = spawn(
        Command::new("sipp")
            .arg("-sf")
            .arg(scenario("uas.xml"))
            .args(["-i", "127.0.0.1", "-p", &uas.to_string(), "-m", "1", "-timeout", "60"])
            .args(["-key", "relay_port", &media.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let callee = Process(callee);
    std::thread::sleep(Duration::from_millis(300));
    let ms = ((seconds * 1000.0) as u64 + 500).to_string();
    let caller = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("uac.xml"))
        .args(["-i", "127.0.0.1", "-p", &uac.to_string(), "-mp", &(uac + 10).to_string()])
        .args(["-m", "1", "-timeout", "60", "-d", &ms, "-cid_str", call_id])
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
    let media = media_base();
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
        sipp_call(sip, uas, uac, callee.port(), &pcap, seconds, &format!("keyed-{run}-%u@%s"));
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
        let (audio, codes) = audio_and_events(&packets, 8);
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
        gone(&dir().join(format!("run{run}")));
        relay.stop();
    }
    assert!(masked_runs[0] < 0.01, "silence in place of the keys: {:.3} loud", masked_runs[0]);
    assert!(
        masked_runs[1] > 0.5,
        "block_dtmf(DTMF-security=tone): the flat tone in place of the keys: {:.3}",
        masked_runs[1]
    );
}

/// A short call in libpcap form: 300 ms of quiet, `keys` keyed in band
/// (A-law, 60 ms on, 60 ms off, −10 dBm0 per tone), 300 ms of quiet.
fn short_keyed_pcap(keys: &str, path: &Path) -> Vec<u8> {
    use cardveil_tests::rtpcall::{frame, rtp};
    let (pcm, _) = keyed_pcm(keys, [0.4, 1.3]);
    let audio: Vec<u8> = pcm.iter().map(|&x| alaw::encode(x)).collect();
    let frames: Vec<(f64, Vec<u8>)> = audio
        .chunks(160)
        .enumerate()
        .map(|(i, c)| (i as f64 * 0.02, frame(false, 5000, 2006, &rtp(8, i == 0, i as u16, (i * 160) as u32, c))))
        .collect();
    write_pcap(path, false, &frames);
    audio
}

/// A relay process (tests/src/bin/ng_relay.rs), stopped when dropped.
struct RelayProcess {
    _child: Process,
    addr: SocketAddr,
}

fn relay_process(ng: u16, ports: (u16, u16)) -> RelayProcess {
    use std::io::BufRead;
    let mut child = spawn(
        Command::new(env!("CARGO_BIN_EXE_ng_relay"))
            .args([format!("127.0.0.1:{ng}"), ports.0.to_string(), ports.1.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("ng ").unwrap_or_else(|| panic!("ng_relay said {first:?}")).parse().unwrap();
    RelayProcess { _child: Process(child), addr }
}

#[test]
fn kamailio_spreads_calls_over_two_relays_and_survives_losing_one() {
    if !Path::new(DIR).join("g711a.pcap").exists() && std::env::var_os("CI").is_none() {
        eprintln!("SKIPPED: apt-get install sip-tester for sipp");
        return;
    }
    for p in ["kamailio", "sipp", "multimon-ng", "dtmf2num"] {
        if !tools::require(p, "the Kamailio scale-out test") {
            return;
        }
    }
    let pid = (std::process::id() % 180) as u16;
    let base = 10_040 + pid * 50;
    let media = media_base() + 50;
    let ranges = [(media, media + 8), (media + 10, media + 18)];
    let relays = [relay_process(base, ranges[0]), relay_process(base + 1, ranges[1])];
    let pcap = dir().join("short-call.pcap");
    let keys = "4111";
    let sent = short_keyed_pcap(keys, &pcap);
    let pcm_in: Vec<i16> = sent.iter().map(|&a| alaw::decode(a)).collect();
    assert_eq!(decode_cardveil(8000, &pcm_in), keys);
    let seconds = sent.len() as f64 / 8000.0;
    let (sip, uas, uac) = (base + 2, base + 3, base + 4);
    let k = kamailio(sip, uas, &[relays[0].addr, relays[1].addr], "", "scale-out");
    let mut relays = relays.map(Some);
    // Which relay's ports each call's media came from (0 or 1).
    let mut served = Vec::new();
    for n in 0..8 {
        if n == 4 {
            // One relay goes away mid-test: the calls after it go to the other.
            let gone = served.iter().filter(|&&r| r == 0).count() >= served.iter().filter(|&&r| r == 1).count();
            let stop = if gone { 0 } else { 1 };
            relays[stop] = None;
            served.push(10 + stop); // marks the stop
        }
        let mut callee = Party::new();
        // Fixed call-ids: Kamailio picks a relay by hashing the call-id.
        sipp_call(sip, uas, uac, callee.port(), &pcap, seconds, &format!("scale-out-{n}-%u@%s"));
        std::thread::sleep(Duration::from_millis(200));
        let got = callee.received_all();
        let from = got.first().unwrap_or_else(|| panic!("call {n}: no media reached the callee")).0;
        assert!(got.iter().all(|(f, _)| *f == from), "call {n}: one relay port");
        let which = ranges.iter().position(|&(lo, hi)| (lo..hi).contains(&from.port())).expect("a relay's port");
        let packets: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
        let (audio, _) = audio_and_events(&packets, 8);
        let pcm: Vec<i16> = audio.iter().map(|&a| alaw::decode(a)).collect();
        no_key_readable(&pcm, &format!("scale-out call {n}"));
        served.push(which);
    }
    let stopped = served.iter().find(|&&x| x >= 10).unwrap() - 10;
    let (before, after) = served.split_at(served.iter().position(|&x| x >= 10).unwrap());
    assert!(before.contains(&0) && before.contains(&1), "calls spread over both relays: {served:?}");
    assert!(after[1..].iter().all(|&r| r == 1 - stopped), "after the stop every call went to the other: {served:?}");
    eprintln!("relays serving the calls (1x: stopped): {served:?}");
    drop(k);
    drop(relays);
    gone(&dir().join("scale-out"));
    gone(Path::new(env!("CARGO_BIN_EXE_ng_relay")));
}
