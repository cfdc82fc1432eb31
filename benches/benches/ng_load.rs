//! Load on the ng relay: N concurrent calls over loopback, both directions
//! at 50 packets/s (20 ms PCMU, keyed audio), set up over the ng protocol;
//! Debian's rtpengine (user space, `--table=-1`) on the same load in the
//! same run as the reference — plain forwarding, and with `block DTMF`
//! (`DTMF-security=silence`, `delay-buffer=40`, the setting at which it
//! stops leaking keys: it then decodes, detects and re-encodes every packet).
//!
//! For each row: packets relayed per second, per CPU-second of the relay's
//! threads (its threads' `schedstat`: the generator's own work is not
//! counted), the one-way latency send → receive through the relay (p50,
//! p99), loss, and resident memory per call. Bounded in calls and time.
//!
//! `cargo bench -p cardveil-benches --bench ng_load [-- --calls 100,500,2000 --seconds 5]`
//! (`-- --test`: the CI smoke, 20 calls for 1 s). Writes
//! `target/ng-load-table.md`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cardveil_benches::keyed_input;
use cardveil_cli::ng::bencode::Value;
use cardveil_core::codec::ulaw;
use cardveil_tests::ngcall::{Proxy, config, rtpengine, s, sdp_port, start};

/// Packets per stream per second (20 ms packets).
const RATE: u64 = 50;
/// Latency histogram: 10 µs bins up to 100 ms.
const BIN_US: u64 = 10;
const BINS: usize = 10_000;
/// Send times remembered per stream (by sequence number).
const RING: usize = 64;

/// CPU time (seconds) of the threads of process `pid` whose name starts
/// with `prefix` (all of them for an empty prefix), from their `schedstat`.
fn cpu_seconds(pid: u32, prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0.0 };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        ns += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    ns as f64 / 1e9
}

/// Resident memory of process `pid`, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A media proxy under test: where its ng socket is and how to read its
/// CPU time and memory.
struct Target {
    name: String,
    ng: SocketAddr,
    pid: u32,
    threads: &'static str,
    /// `block DTMF` settings sent for every call (rtpengine's masking).
    block: Option<i64>,
}

fn sdp(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// One row of the table.
struct Row {
    target: String,
    calls: usize,
    pps: f64,
    per_core: f64,
    p50_us: u64,
    p99_us: u64,
    loss: f64,
    rss_per_call: f64,
}

/// The calls' packets go out from two sockets (all callers, all callees);
/// what comes back is told apart by the relay port it came from.
struct Load {
    callers: UdpSocket,
    callees: UdpSocket,
    /// Relay ports facing each call's caller and callee.
    ports: Vec<[u16; 2]>,
}

fn set_up(target: &Target, calls: usize, run: usize) -> Load {
    let callers = UdpSocket::bind("127.0.0.1:0").unwrap();
    let callees = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::new(target.ng);
    let mut ports = Vec::with_capacity(calls);
    for i in 0..calls {
        let id = format!("load-{run}-{i}");
        let offer = proxy
            .ok("offer", &[("call-id", s(&id)), ("from-tag", s("a")), ("sdp", s(&sdp(callers.local_addr().unwrap())))]);
        let answer = proxy.ok(
            "answer",
            &[
                ("call-id", s(&id)),
                ("from-tag", s("a")),
                ("to-tag", s("b")),
                ("sdp", s(&sdp(callees.local_addr().unwrap()))),
            ],
        );
        if let Some(delay) = target.block {
            proxy.ok(
                "block DTMF",
                &[("call-id", s(&id)), ("DTMF-security", s("silence")), ("delay-buffer", Value::Int(delay))],
            );
        }
        ports.push([sdp_port(&answer), sdp_port(&offer)]);
    }
    Load { callers, callees, ports }
}

fn tear_down(target: &Target, calls: usize, run: usize) {
    let mut proxy = Proxy::new(target.ng);
    for i in 0..calls {
        // rtpengine keeps a deleted call's ports for 30 s unless told not to.
        let _ = proxy.ask("delete", &[("call-id", s(&format!("load-{run}-{i}"))), ("delete-delay", Value::Int(0))]);
    }
}

/// Sends the load for `warm + seconds`, measuring over the last `seconds`.
fn measure(target: &Target, calls: usize, seconds: f64, run: usize, drain: &dyn Fn()) -> Row {
    let rss_before = rss(target.pid);
    let load = set_up(target, calls, run);
    let rss_after = rss(target.pid);
    let codes: Vec<u8> = keyed_input(8000).iter().map(|&x| ulaw::encode(x)).collect();
    let payloads: Vec<&[u8]> = codes.chunks_exact(160).collect();
    let epoch = Instant::now();
    // Send times per stream (call × direction), by sequence number.
    let sent_at: Arc<Vec<[AtomicU64; RING]>> =
        Arc::new((0..2 * calls).map(|_| std::array::from_fn(|_| AtomicU64::new(0))).collect());
    let counting = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    // Receivers: the caller's packets arrive at the callees' socket and back.
    let receiver = |socket: UdpSocket, dir: usize| {
        let by_port: HashMap<u16, usize> = load.ports.iter().enumerate().map(|(i, p)| (p[1 - dir], i)).collect();
        let (sent_at, counting, done) = (Arc::clone(&sent_at), Arc::clone(&counting), Arc::clone(&done));
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        std::thread::spawn(move || {
            let mut hist = vec![0u64; BINS + 1];
            let mut got = 0u64;
            let mut buf = [0u8; 2048];
            while !done.load(Ordering::Acquire) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                if n < 12 || !counting.load(Ordering::Relaxed) {
                    continue;
                }
                let Some(&call) = by_port.get(&from.port()) else { continue };
                let seq = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                let at = sent_at[2 * call + dir][seq % RING].load(Ordering::Relaxed);
                let now = epoch.elapsed().as_nanos() as u64;
                got += 1;
                hist[(((now.saturating_sub(at)) / 1000 / BIN_US) as usize).min(BINS)] += 1;
            }
            (got, hist)
        })
    };
    // Direction 0 (caller → callee) arrives at the callees' socket.
    let rx = [receiver(load.callees.try_clone().unwrap(), 0), receiver(load.callers.try_clone().unwrap(), 1)];
    let warm = 1.0;
    let ticks = ((warm + seconds) * RATE as f64) as u64;
    let mut packet = [0u8; 172];
    packet[0] = 0x80;
    let (mut sent, mut cpu0, mut t0) = (0u64, 0.0, epoch);
    for tick in 0..ticks {
        if tick == (warm * RATE as f64) as u64 {
            counting.store(true, Ordering::Release);
            cpu0 = cpu_seconds(target.pid, target.threads);
            t0 = Instant::now();
        }
        let seq = tick as u16;
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&((tick * 160) as u32).to_be_bytes());
        packet[12..].copy_from_slice(payloads[tick as usize % payloads.len()]);
        for (i, p) in load.ports.iter().enumerate() {
            for (dir, socket) in [(0, &load.callers), (1, &load.callees)] {
                packet[8..12].copy_from_slice(&((2 * i + dir) as u32).to_be_bytes());
                sent_at[2 * i + dir][seq as usize % RING].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                if socket.send_to(&packet, SocketAddr::new([127, 0, 0, 1].into(), p[dir])).is_ok()
                    && counting.load(Ordering::Relaxed)
                {
                    sent += 1;
                }
            }
        }
        drain();
        let due = epoch + Duration::from_micros((tick + 1) * 1_000_000 / RATE);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let cpu = cpu_seconds(target.pid, target.threads) - cpu0;
    let window = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Release);
    let (mut got, mut hist) = (0u64, vec![0u64; BINS + 1]);
    for r in rx {
        let (g, h) = r.join().unwrap();
        got += g;
        hist.iter_mut().zip(h).for_each(|(a, b)| *a += b);
    }
    tear_down(target, calls, run);
    let quantile = |q: f64| {
        let want = (q * got as f64).ceil() as u64;
        let mut acc = 0;
        hist.iter()
            .position(|&n| {
                acc += n;
                acc >= want.max(1)
            })
            .unwrap_or(BINS) as u64
            * BIN_US
    };
    Row {
        target: target.name.clone(),
        calls,
        pps: got as f64 / window,
        per_core: if cpu > 0.0 { got as f64 / cpu } else { f64::NAN },
        p50_us: quantile(0.5),
        p99_us: quantile(0.99),
        loss: if sent > 0 { 1.0 - (got as f64 / sent as f64).min(1.0) } else { 1.0 },
        rss_per_call: rss_after.saturating_sub(rss_before) as f64 / calls as f64,
    }
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let counts: Vec<usize> = match arg("--calls") {
        Some(list) => list.split(',').map(|n| n.trim().parse().expect("--calls N,N,…")).collect(),
        None if smoke => vec![20],
        None => vec![100, 500, 2000],
    };
    let seconds: f64 = arg("--seconds").map_or(if smoke { 1.0 } else { 5.0 }, |v| v.parse().expect("--seconds S"));
    let max = *counts.iter().max().unwrap();
    // Two RTP/RTCP pairs per call, below the kernel's ephemeral ports.
    let cardveil = start("127.0.0.1:0".parse().unwrap(), config((10_000, 10_000 + 4 * max as u16 + 400), 2));
    let me = std::process::id();
    let mut targets = vec![Target {
        name: "cardveil relay --ng (2 media threads, masking on)".into(),
        ng: cardveil.addr,
        pid: me,
        threads: "cardveil-ng-",
        block: None,
    }];
    let rtpe = rtpengine(9_990, (34_000, 34_000 + 8 * max as u16 + 16), None);
    match &rtpe {
        Some(r) => {
            let ng = SocketAddr::new([127, 0, 0, 1].into(), 9_990);
            let pid = r.0.id();
            targets.push(Target { name: "rtpengine, forwarding".into(), ng, pid, threads: "", block: None });
            targets.push(Target {
                name: "rtpengine, block DTMF (silence, delay-buffer 40)".into(),
                ng,
                pid,
                threads: "",
                block: Some(40),
            });
        }
        None => eprintln!("rtpengine not found (apt-get install rtpengine-daemon): cardveil rows only"),
    }
    let mut rows = Vec::new();
    for (run, &calls) in counts.iter().enumerate() {
        for (t, target) in targets.iter().enumerate() {
            // The relay's event lines are read (and dropped) as the CLI's printer would.
            let drain = || while cardveil.lines.try_recv().is_ok() {};
            let row = measure(target, calls, seconds, run * 10 + t, &drain);
            eprintln!(
                "{} × {calls}: {:.0} packets/s, {:.0} per CPU-second, p50 {} µs, p99 {} µs, loss {:.2} %",
                row.target,
                row.pps,
                row.per_core,
                row.p50_us,
                row.p99_us,
                100.0 * row.loss
            );
            rows.push(row);
        }
    }
    drop(rtpe);
    cardveil.stop();
    let mut table = String::from(
        "| media proxy | calls | packets/s relayed | packets/s per core | latency p50 / p99 | loss | memory per call |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {} / {} µs | {:.2} % | {:.1} KiB |\n",
            r.target,
            r.calls,
            r.pps,
            r.per_core,
            r.p50_us,
            r.p99_us,
            100.0 * r.loss,
            r.rss_per_call / 1024.0
        ));
    }
    println!("{table}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("ng-load-table.md"), &table);
    if smoke {
        let r = &rows[0];
        assert!(r.pps > 0.0 && r.loss < 0.5, "the smoke load went through the relay");
    }
}
