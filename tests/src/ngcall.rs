//! The ng relay's tests' pieces: a relay in process, the proxy's side of
//! the ng socket, and call parties as UDP sockets of the test.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cardveil_cli::ng::bencode::Value;
use cardveil_cli::ng::engine::{EngineConfig, Interface};
use cardveil_cli::ng::serve::NgRelay;
use cardveil_core::capture::{CaptureConfig, Field};
use cardveil_core::rtp::RtpStreamConfig;
use cardveil_core::vault::{Kek, Keyring, SqliteStore, StoreVault, VaultConfig, Worker};

use crate::masking::{decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive};

/// An ng relay on a loopback port of its own, media on 127.0.0.1 from
/// `ports`, an in-memory vault, capturing the PAN alone when asked.
pub fn relay(ports: (u16, u16), threads: usize) -> NgRelay {
    start("127.0.0.1:0".parse().unwrap(), config(ports, threads))
}

/// [`relay`] with its ng socket at `ng`.
pub fn relay_at(ng: SocketAddr, ports: (u16, u16), threads: usize) -> NgRelay {
    start(ng, config(ports, threads))
}

/// [`relay`]'s settings.
pub fn config(ports: (u16, u16), threads: usize) -> EngineConfig {
    EngineConfig {
        interfaces: vec![Interface { name: "default".into(), addr: "127.0.0.1".parse().unwrap() }],
        ports,
        threads,
        timeout: Duration::from_secs(60),
        stream: RtpStreamConfig::default(),
        capture: CaptureConfig { fields: [Some(Field::Pan), None, None], ..CaptureConfig::standard(8000, (2026, 12)) },
        allow_unmasked: false,
    }
}

/// A relay with `config` and an in-memory vault, its ng socket at `ng`.
pub fn start(ng: SocketAddr, config: EngineConfig) -> NgRelay {
    let vault = StoreVault::open(
        SqliteStore::in_memory().unwrap(),
        Keyring::new(Kek::new(1, &[7; 32])),
        VaultConfig::default(),
    )
    .unwrap();
    let worker = Worker::spawn(Box::new(vault), "ng-test", Duration::from_secs(30)).unwrap();
    NgRelay::start(ng, config, Some(worker)).unwrap()
}

/// The proxy's side of the ng socket.
#[derive(Debug)]
pub struct Proxy {
    socket: UdpSocket,
    relay: SocketAddr,
    cookie: u32,
}

impl Proxy {
    /// A proxy talking to the ng socket at `relay` (replies awaited 5 s).
    pub fn new(relay: SocketAddr) -> Proxy {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Proxy { socket, relay, cookie: 0 }
    }

    /// How long a reply is awaited.
    pub fn set_timeout(&mut self, t: Duration) {
        self.socket.set_read_timeout(Some(t)).unwrap();
    }

    /// One request, its reply (the same cookie back), or `None` if none came in time.
    pub fn try_ask(&mut self, command: &str, fields: &[(&str, Value)]) -> Option<Value> {
        self.cookie += 1;
        let mut d = vec![(b"command".to_vec(), Value::str(command))];
        d.extend(fields.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())));
        // Unique across proxies too (a media proxy caches replies by cookie).
        let port = self.socket.local_addr().unwrap().port();
        let cookie = format!("{}_{port}_{}", std::process::id(), self.cookie);
        let mut datagram = format!("{cookie} ").into_bytes();
        Value::Dict(d).encode_into(&mut datagram);
        self.socket.send_to(&datagram, self.relay).unwrap();
        let mut buf = vec![0u8; 65_536];
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        let reply = &buf[..n];
        let space = reply.iter().position(|&b| b == b' ').unwrap();
        assert_eq!(&reply[..space], cookie.as_bytes(), "the reply carries the request's cookie");
        Some(Value::decode(&reply[space + 1..]).unwrap())
    }

    /// One request, its reply.
    pub fn ask(&mut self, command: &str, fields: &[(&str, Value)]) -> Value {
        self.try_ask(command, fields).expect("an ng reply")
    }

    /// One request, whose reply must be `ok`.
    pub fn ok(&mut self, command: &str, fields: &[(&str, Value)]) -> Value {
        let r = self.ask(command, fields);
        assert_eq!(result(&r), "ok", "{command}: {:?}", r.get("error-reason").and_then(Value::as_str));
        r
    }
}

/// A reply's `result`.
pub fn result(r: &Value) -> &str {
    r.get("result").and_then(Value::as_str).unwrap_or("")
}

/// A bencoded string.
pub fn s(v: &str) -> Value {
    Value::str(v)
}

/// Datagrams a party received, with their sources.
pub type Received = Vec<(SocketAddr, Vec<u8>)>;

/// One party: its socket, and a thread keeping what reaches it.
#[derive(Debug)]
pub struct Party {
    pub socket: UdpSocket,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<Received>>,
}

impl Party {
    pub fn new() -> Party {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (rx, flag) = (socket.try_clone().unwrap(), Arc::clone(&stop));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                match rx.recv_from(&mut buf) {
                    Ok((n, from)) => got.push((from, buf[..n].to_vec())),
                    Err(_) if flag.load(Ordering::Acquire) => return got,
                    Err(_) => {}
                }
            }
        });
        Party { socket, stop, reader: Some(reader) }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Everything that reached this party, with its sources.
    pub fn received_all(&mut self) -> Received {
        self.stop.store(true, Ordering::Release);
        self.reader.take().map(|r| r.join().unwrap()).unwrap_or_default()
    }

    /// Everything that reached this party (all of it from `from`).
    pub fn received(&mut self, from: SocketAddr) -> Vec<Vec<u8>> {
        let got = self.received_all();
        assert!(got.iter().all(|(f, _)| *f == from), "everything comes from the relay's port facing this party");
        got.into_iter().map(|(_, p)| p).collect()
    }
}

impl Default for Party {
    fn default() -> Self {
        Party::new()
    }
}

impl Drop for Party {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// No decoder reads a key from `pcm`.
pub fn no_key_readable(pcm: &[i16], tag: &str) {
    let dir = std::env::temp_dir().join(format!("cardveil-ng-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(decode_cardveil(8000, pcm), "", "{tag}: cardveil");
    assert_eq!(decode_multimon(8000, pcm, &dir, tag), "", "{tag}: multimon-ng");
    assert_eq!(decode_dtmf2num(8000, pcm, &dir, tag), "", "{tag}: dtmf2num");
    for d in [decode_spandsp(pcm), decode_spandsp_sensitive(pcm)].into_iter().flatten() {
        assert_eq!(d, "", "{tag}: spandsp");
    }
}

/// A child process (of a test) in a process group of its own, stopped (and waited
/// for) when the test lets go of it: the whole group gets SIGTERM —
/// Kamailio's main process forks its workers, which a kill of the main
/// process alone would leave running — then SIGKILL if it is still there
/// after 5 s.
#[derive(Debug)]
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let signal = |s: &str| {
            let _ = Command::new("kill").args([s, "--", &group]).stderr(Stdio::null()).status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL");
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` as the leader of a new process group.
pub fn spawn(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0).spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Waits (bounded) until no process runs with `needle` in its command line.
pub fn gone(needle: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("pgrep").arg("-f").arg(needle).output().expect("pgrep");
        if out.stdout.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left running: {}", String::from_utf8_lossy(&out.stdout));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's rtpengine in user space (`--table=-1`) on 127.0.0.1, its ng
/// socket at `ng`, media ports from `ports`, two threads, logging to `log`
/// (or nowhere); `None` if it cannot be run or does not answer a ping
/// within 10 s.
pub fn rtpengine(ng: u16, ports: (u16, u16), log: Option<&Path>) -> Option<Process> {
    let mut cmd = Command::new("rtpengine");
    cmd.args(["--config-file=none", "--table=-1", "--interface=127.0.0.1", "--foreground", "--num-threads=2"])
        .arg(format!("--listen-ng=127.0.0.1:{ng}"))
        .arg(format!("--port-min={}", ports.0))
        .arg(format!("--port-max={}", ports.1))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match log {
        Some(path) => cmd.arg("--log-stderr").stderr(std::fs::File::create(path).ok()?),
        None => cmd.arg("--log-level=3").stderr(Stdio::null()),
    };
    use std::os::unix::process::CommandExt;
    let r = Process(cmd.process_group(0).spawn().ok()?);
    let mut proxy = Proxy::new(SocketAddr::new([127, 0, 0, 1].into(), ng));
    proxy.set_timeout(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.try_ask("ping", &[]).is_none() {
        if Instant::now() > deadline {
            return None;
        }
    }
    Some(r)
}

/// The audio port the SDP of an offer's or answer's reply points at.
pub fn sdp_port(reply: &Value) -> u16 {
    let body = reply.get("sdp").and_then(Value::as_str).expect("an SDP body");
    let m = body.lines().find(|l| l.starts_with("m=audio ")).expect("an audio stream");
    m.split(' ').nth(1).unwrap().parse().unwrap()
}

/// 8 kHz audio keying `keys` the way the ng tests' callers do: 300 ms of
/// quiet, each key 60 ms on (−10 dBm0 per tone, starting phases `phases`)
/// and 60 ms off, 300 ms of quiet; with each key's span (samples).
pub fn keyed_pcm(keys: &str, phases: [f64; 2]) -> (Vec<i16>, Vec<(char, usize, usize)>) {
    use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};
    let mut pcm = vec![0i16; 2400];
    let mut spans = Vec::new();
    for ch in keys.chars() {
        let (lo, hi) = Key::from_char(ch).unwrap().frequencies();
        let a = amplitude_for_dbm0(-10.0);
        let start = pcm.len();
        pcm.resize(start + 480, 0);
        ToneGenerator::new(8000, [lo, hi], [a, a], phases).fill(&mut pcm[start..]);
        spans.push((ch, start, start + 480));
        pcm.resize(pcm.len() + 480, 0);
    }
    pcm.resize(pcm.len() + 2400, 0);
    (pcm, spans)
}

/// The G.711 payloads of payload type `audio_pt` and the telephone-event
/// codes (payload type 101) in what a party received; any other payload
/// type reaching it fails the test.
pub fn audio_and_events(packets: &[Vec<u8>], audio_pt: u8) -> (Vec<u8>, Vec<u8>) {
    use cardveil_core::rtp::{RtpHeader, TelephoneEvent};
    let (mut audio, mut codes) = (Vec::new(), Vec::new());
    for p in packets {
        let h = RtpHeader::parse(p).unwrap();
        match h.payload_type {
            pt if pt == audio_pt => audio.extend_from_slice(h.payload(p)),
            101 => codes.push(TelephoneEvent::parse(h.payload(p)).unwrap().event),
            other => panic!("payload type {other} reached a party"),
        }
    }
    (audio, codes)
}
