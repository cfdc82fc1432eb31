//! The audio path never allocates: a counting global allocator watches the
//! detector process a minute of keyed digits and noise in frames of every
//! size after setup, confirming and ending keys along the way.

use cardveil_tests::alloc::{Counting, allocations};

use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, Profile};
use cardveil_tests::rng::Rng;
use cardveil_tests::stimulus::{Tone, Track};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn processing_frames_allocates_nothing_after_setup() {
    for rate in [8000u32, 16000, 48000] {
        let (pcm, keys, mut rng) = keyed_minute(rate, rate as u64);
        let sizes: Vec<usize> = (0..64).map(|_| 1 + rng.below(rate as u64 * 60 / 1000) as usize).collect();

        let mut det = Detector::new(DetectorConfig { sample_rate: rate, profile: Profile::Q24 }).unwrap();
        let mut downs = 0u32;
        let mut ups = 0u32;
        let before = allocations();
        let mut rest = &pcm[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            det.process(&rest[..n], |e| match e {
                DetectorEvent::Down(_) => downs += 1,
                DetectorEvent::Up(_) => ups += 1,
            });
            rest = &rest[n..];
            i += 1;
        }
        det.finish(|e| {
            if let DetectorEvent::Up(_) = e {
                ups += 1
            }
        });
        let during = allocations() - before;
        assert_eq!(during, 0, "{rate} Hz: {during} allocations while processing");
        assert_eq!(downs as usize, keys, "{rate} Hz: every key confirmed");
        assert_eq!(ups, downs);
    }
}

#[test]
fn the_counter_does_count() {
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(10);
    std::hint::black_box(&v);
    assert_eq!(allocations() - before, 1);
}

#[test]
fn detector_state_is_small() {
    // The per-channel state: the struct itself; its history of the latest
    // 55 ms (which also gathers the sub-block being filled) beside it.
    let det = Detector::new(DetectorConfig::default()).unwrap();
    let bytes = std::mem::size_of::<Detector>();
    let history = det.history_bytes();
    println!("detector state per 8 kHz channel: {bytes} bytes, plus {history} bytes of window history");
    assert!(bytes <= 1024, "{bytes} bytes");
    assert!(history <= 2048, "{history} bytes of history");
}

/// A minute of keys (40–200 ms on, 40–300 ms off) and noise at `rate`: the
/// samples, the number of keys, and the random source to draw more from.
fn keyed_minute(rate: u32, seed: u64) -> (Vec<i16>, usize, Rng) {
    let mut rng = Rng::new(seed);
    let mut t = Track::new(rate);
    while t.len() < 60 * rate as usize {
        t.tone(&Tone::new(*rng.pick(&cardveil_core::dtmf::Key::ALL), rng.range(40.0, 200.0)), &mut rng);
        t.silence(rng.range(40.0, 300.0));
    }
    t.add_noise(100.0, &mut rng);
    (t.pcm16(), t.truth.len(), rng)
}

#[test]
fn masking_frames_allocates_nothing_after_setup() {
    use cardveil_core::codec::{Encoding, ulaw};
    use cardveil_core::mask::{MaskMode, Masker, MaskerConfig, MaskerEvent, TwoPhaseMasker};
    for (rate, encoding, mode) in [
        (8000, Encoding::Pcm16, MaskMode::Silence),
        (8000, Encoding::Ulaw, MaskMode::Noise),
        (16000, Encoding::Pcm16, MaskMode::Tone),
        (48000, Encoding::Pcm16, MaskMode::Noise),
    ] {
        let (pcm, keys, _) = keyed_minute(rate, rate as u64 + 1);
        let mut rng = Rng::new(9);
        let sizes: Vec<usize> = (0..64).map(|_| 1 + rng.below(rate as u64 * 60 / 1000) as usize).collect();
        let config = MaskerConfig { sample_rate: rate, encoding, mode, ..MaskerConfig::default() };
        let mut masker = Masker::new(config).unwrap();
        let mut two = TwoPhaseMasker::new(config).unwrap();
        let mut pcm_frame = pcm.clone();
        let mut codes: Vec<u8> = pcm.iter().map(|&s| ulaw::encode(s)).collect();
        let mut codes2 = codes.clone();
        let mut pcm2 = pcm.clone();
        let (mut spans, mut presses) = (0u32, 0u32);
        let before = allocations();
        let mut on = |e: MaskerEvent| match e {
            MaskerEvent::Masked(_) => spans += 1,
            MaskerEvent::Key(DetectorEvent::Up(_)) => presses += 1,
            MaskerEvent::Key(_) => {}
        };
        let mut pos = 0;
        let mut i = 0;
        while pos < pcm.len() {
            let n = sizes[i % sizes.len()].min(pcm.len() - pos);
            let ts = pos as u32;
            if encoding == Encoding::Pcm16 {
                masker.process_pcm16(&mut pcm_frame[pos..pos + n], &mut on).unwrap();
                two.analyse_pcm16(&pcm2[pos..pos + n], ts, &mut on).unwrap();
                two.mask_pcm16(&mut pcm2[pos..pos + n], ts).unwrap();
            } else {
                masker.process_g711(&mut codes[pos..pos + n], &mut on).unwrap();
                two.analyse_g711(&codes2[pos..pos + n], ts, &mut on).unwrap();
                two.mask_g711(&mut codes2[pos..pos + n], ts).unwrap();
            }
            pos += n;
            i += 1;
        }
        masker.finish(&mut on);
        two.finish(&mut on);
        let during = allocations() - before;
        assert_eq!(during, 0, "{rate} Hz {encoding:?}: {during} allocations while masking");
        // Both maskers saw every key (so the paths that mask and report ran).
        assert_eq!(presses as usize, 2 * keys, "{rate} Hz {encoding:?}");
        assert!(spans as usize >= 2 * keys);
    }
}

#[test]
fn masker_state_is_small() {
    use cardveil_core::mask::{Masker, MaskerConfig};
    let m = Masker::new(MaskerConfig::default()).unwrap();
    let (state, delay_line) = m.memory();
    println!(
        "masker state per 8 kHz channel: {state} bytes, plus {delay_line} bytes of look-ahead buffers (the delay line: 20 ms look-ahead + 60 ms; the window history)"
    );
    assert!(state <= 1024, "{state} bytes");
}

#[test]
fn capturing_a_card_allocates_nothing() {
    use cardveil_core::capture::{Capture, CaptureConfig, CaptureEvent};
    use cardveil_core::dtmf::Key;
    let mut c = Capture::new(CaptureConfig::standard(8000, (2026, 11)));
    let keys: Vec<Key> = "4111111111111111#1229#123#".chars().map(|ch| Key::from_char(ch).unwrap()).collect();
    let before = allocations();
    let mut complete = false;
    for round in 0..50u64 {
        c.begin(round * 100_000);
        for (i, &k) in keys.iter().enumerate() {
            c.key(k, round * 100_000 + i as u64 * 800);
            while let Some(e) = c.poll() {
                complete |= e == CaptureEvent::Complete;
            }
        }
        let card = c.take_card();
        assert!(card.is_some_and(|card| card.pan.is_some_and(|p| p.len() == 16)));
    }
    let during = allocations() - before;
    assert_eq!(during, 0, "{during} allocations while capturing");
    assert!(complete);
}

#[test]
fn call_frames_allocate_nothing_while_a_capture_runs_and_the_worker_tokenizes() {
    use cardveil_core::call::{Call, CallConfig};
    use cardveil_core::capture::{CaptureConfig, CaptureEvent};
    use cardveil_core::mask::MaskerConfig;
    use cardveil_core::vault::Kek;
    use cardveil_core::vault::{Done, Keyring, SqliteStore, StoreVault, VaultConfig, Worker};

    let vault = StoreVault::open(
        SqliteStore::in_memory().unwrap(),
        Keyring::new(Kek::new(1, &[1; 32])),
        VaultConfig::default(),
    )
    .unwrap();
    let worker = Worker::spawn(Box::new(vault), "test", std::time::Duration::from_secs(5)).unwrap();
    let mut call =
        Call::new(CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) })
            .unwrap();
    let card_keys = "4111111111111111#1229#123#";
    let mut rng = Rng::new(77);
    let mut t = Track::new(8000);
    t.silence(300.0);
    for _ in 0..3 {
        for ch in card_keys.chars() {
            t.tone(&Tone::new(cardveil_core::dtmf::Key::from_char(ch).unwrap(), rng.range(50.0, 90.0)), &mut rng);
            t.silence(rng.range(60.0, 120.0));
        }
        t.silence(1000.0);
    }
    t.add_noise(100.0, &mut rng);
    let mut caller = t.pcm16();
    let mut agent = caller.clone();
    let (mut in_frames, mut tokens, mut captures) = (0u64, 0, 0);
    call.begin_capture();
    for (c, a) in caller.chunks_mut(160).zip(agent.chunks_mut(160)) {
        let before = allocations();
        call.caller.process(c, &mut |_| {}).unwrap();
        call.agent.process(a, &mut |_| {}).unwrap();
        in_frames += allocations() - before;
        // The host's event side (another thread in a real host; allocation
        // here is not on the audio path).
        while let Some(e) = call.poll() {
            if e == CaptureEvent::Complete {
                captures += 1;
                worker.submit(captures, Box::new(call.take_card().unwrap())).unwrap();
                call.begin_capture();
            }
        }
        while let Some(d) = worker.poll() {
            tokens += matches!(d, Done::Token { .. }) as u32;
        }
    }
    while tokens < captures as u32 {
        assert!(matches!(worker.wait(std::time::Duration::from_secs(10)), Some(Done::Token { .. })));
        tokens += 1;
    }
    assert_eq!(captures, 3, "three cards captured while frames flowed");
    assert_eq!(in_frames, 0, "{in_frames} allocations in the frame path during capture and tokenization");
}

#[test]
fn the_ng_relays_packet_path_allocates_nothing() {
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    use cardveil_cli::ng::media::{CALLEE, CALLER, CallEvent, CallStats, FromMedia, MediaCall, MediaLoop, ToMedia};
    use cardveil_core::capture::CaptureConfig;
    use cardveil_core::pcap::net::find_udp;
    use cardveil_core::rtp::RtpStreamConfig;
    use cardveil_tests::rtpcall::keyed_call;

    // The relay's four sockets and the two parties, on loopback.
    let bind = || UdpSocket::bind("127.0.0.1:0").unwrap();
    let relay = [[bind(), bind()], [bind(), bind()]];
    let facing: Vec<_> = relay.iter().map(|s| s[0].local_addr().unwrap()).collect();
    let (caller, callee) = (bind(), bind());
    for p in [&caller, &callee] {
        p.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let (returns, _returned) = std::sync::mpsc::channel();
    let mut media = MediaLoop::new(1, tx, returns, Arc::new(AtomicU64::new(0)), Instant::now()).unwrap();
    let stats = Arc::new(CallStats::default());
    let call = MediaCall::new(
        1,
        relay,
        RtpStreamConfig::default(),
        CaptureConfig::standard(8000, (2026, 12)),
        Arc::clone(&stats),
    )
    .unwrap();
    media.obey(ToMedia::Add(0, Box::new(call)));
    for (side, party) in [(CALLER, &caller), (CALLEE, &callee)] {
        let a = party.local_addr().unwrap();
        media.obey(ToMedia::Remote(0, side, a, std::net::SocketAddr::new(a.ip(), a.port() + 1)));
    }
    // The keyed call (in band and as telephone-events), both ways.
    let k = keyed_call(false, false);
    let packets: Vec<Vec<u8>> = k.frames.iter().map(|(_, f)| f[find_udp(1, f).unwrap().payload].to_vec()).collect();
    let handled = || {
        let n = |a: &AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        stats.sides.iter().map(|s| n(&s.packets) + n(&s.dropped)).sum::<u64>()
    };
    let (mut during, mut sent) = (0, 0);
    let mut buf = [0u8; 2048];
    for (i, p) in packets.iter().enumerate() {
        // Warm-up: the first packets (latching, the first events) before counting.
        let counted = i >= 20;
        for (from, to, at) in [(&caller, &callee, facing[CALLER]), (&callee, &caller, facing[CALLEE])] {
            from.send_to(p, at).unwrap();
            sent += 1;
            // Turns until the relay has handled it (bounded).
            for _ in 0..100 {
                let before = allocations();
                media.turn(Duration::from_millis(2)).unwrap();
                if counted {
                    during += allocations() - before;
                }
                if handled() >= sent {
                    break;
                }
            }
            let _ = to.recv_from(&mut buf);
        }
    }
    assert_eq!(during, 0, "{during} allocations on the relay's packet path");
    let events: Vec<FromMedia> = rx.try_iter().collect();
    let keys = events.iter().filter(|e| matches!(e, FromMedia::Event(_, CallEvent::Key(CALLER, ..)))).count();
    let masked = events.iter().filter(|e| matches!(e, FromMedia::Event(_, CallEvent::Masked(CALLEE, ..)))).count();
    assert_eq!(keys, 16, "every key of the caller's card seen");
    assert!(masked >= 16, "the callee's copy of the card masked too ({masked} spans)");
    let relayed = stats.sides.iter().map(|s| s.packets.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>();
    assert_eq!(relayed, 2 * packets.len() as u64, "every packet relayed both ways");
}
