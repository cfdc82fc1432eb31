//! The RTP relay: cost per packet (packets per second per core) and the
//! latency it adds on loopback, each against a reference in the same run.
//!
//! `cargo bench -p cardveil-benches --bench relay`
//!
//! * `relay_per_packet/rtp_stream_pcmu_20ms`: one 20 ms μ-law RTP packet
//!   through a delay-line [`RtpStream`] (header, detect, mask, in place) —
//!   1 / time is packets per second on one core; `spandsp_dtmf_rx_20ms` is
//!   spandsp's detection alone on the same audio, for scale.
//! * `relay_udp_round_trip/{direct,via_relay}`: a packet sent to a UDP echo
//!   thread and back, directly and through `cardveil relay` (both
//!   directions relayed); (via − direct) / 2 is the latency the relay adds
//!   per packet and direction (the 20 ms look-ahead delays the audio inside
//!   the packets, not the packets).

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cardveil_benches::keyed_input;
use cardveil_cli::relay::{Relay, RelayOptions};
use cardveil_core::codec::ulaw;
use cardveil_core::rtp::{RtpStream, RtpStreamConfig};
use cardveil_tests::rtpcall::rtp;
use cardveil_tests::spandsp::Reference;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

fn packets() -> Vec<Vec<u8>> {
    let codes: Vec<u8> = keyed_input(8000).iter().map(|&s| ulaw::encode(s)).collect();
    codes.chunks_exact(160).enumerate().map(|(i, c)| rtp(0, false, i as u16, (i * 160) as u32, c)).collect()
}

/// Numbers the `n`th packet sent (sequence number and timestamp go on
/// across repetitions of the input: a stream never steps back, and the
/// relay drops audio whose place it has played out already).
fn number(p: &mut [u8], n: usize) {
    p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    p[4..8].copy_from_slice(&((n * 160) as u32).to_be_bytes());
}

fn per_packet(c: &mut Criterion) {
    let packets = packets();
    let mut g = c.benchmark_group("relay_per_packet");
    g.throughput(Throughput::Elements(1));
    let mut s = RtpStream::new(RtpStreamConfig::default()).unwrap();
    let mut buf = [0u8; 172];
    let mut i = 0;
    g.bench_function("rtp_stream_pcmu_20ms", |b| {
        b.iter(|| {
            buf.copy_from_slice(&packets[i % packets.len()]);
            number(&mut buf, i);
            black_box(s.process(black_box(&mut buf), &mut |_| {}).unwrap());
            i += 1;
        })
    });
    if let Some(mut r) = Reference::new() {
        let pcm: Vec<[i16; 160]> = packets
            .iter()
            .map(|p| {
                let mut x = [0i16; 160];
                ulaw::decode_into(&p[12..], &mut x);
                x
            })
            .collect();
        let mut i = 0;
        g.bench_function("spandsp_dtmf_rx_20ms", |b| {
            b.iter(|| {
                r.feed(black_box(&pcm[i]));
                i = (i + 1) % pcm.len();
            })
        });
    }
    g.finish();
}

/// A UDP echo thread; returns its address and a stop flag.
fn echo() -> (std::net::SocketAddr, Arc<AtomicBool>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let addr = s.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !flag.load(Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
    });
    (addr, stop)
}

fn round_trip(c: &mut Criterion) {
    let packets = packets();
    let (echo_at, stop) = echo();
    let options = RelayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        forward: echo_at,
        bind: Some("127.0.0.1:0".parse().unwrap()),
        control: None,
        control_peer: None,
        control_socket: None,
        stream: RtpStreamConfig::default(),
        capture: None,
    };
    let relay = Relay::start(&options, None).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut g = c.benchmark_group("relay_udp_round_trip");
    g.throughput(Throughput::Elements(1));
    for (name, to) in [("direct", echo_at), ("via_relay", relay.listen)] {
        let mut buf = [0u8; 2048];
        let mut out = [0u8; 172];
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                out.copy_from_slice(&packets[i % packets.len()]);
                number(&mut out, i);
                client.send_to(&out, to).unwrap();
                let n = client.recv(&mut buf).expect("the echo");
                i += 1;
                black_box(n)
            })
        });
    }
    g.finish();
    let drained = std::iter::from_fn(|| relay.events.try_recv().ok()).count();
    black_box(drained);
    relay.stop();
    stop.store(true, Ordering::Relaxed);
}

criterion_group!(benches, per_packet, round_trip);
criterion_main!(benches);
