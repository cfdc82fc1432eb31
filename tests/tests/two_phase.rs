//! The two-phase masker (analyse on arrival, mask at playout) against the
//! look-ahead masker, and under jitter-buffer trouble: reordering,
//! duplicates, loss with concealment, timestamp wrap-around.

use cardveil_core::codec::Encoding;
use cardveil_core::dtmf::Key;
use cardveil_core::mask::{MaskMode, MaskerConfig, MaskerEvent, TwoPhaseMasker};
use cardveil_tests::masking::{decode_cardveil, decode_spandsp_sensitive, mask_linear};
use cardveil_tests::rng::Rng;
use cardveil_tests::stimulus::{Tone, Track, noise_rms_for_snr};

const RATE: u32 = 8000;
const FRAME: usize = 160;

fn card_call(seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let mut t = Track::new(RATE);
    t.silence(300.0);
    for ch in "4111111111111111".chars() {
        t.tone(&Tone::new(Key::from_char(ch).unwrap(), rng.range(40.0, 120.0)).level(rng.range(-25.0, -5.0)), &mut rng);
        t.silence(rng.range(40.0, 200.0));
    }
    t.silence(300.0);
    t.add_noise(noise_rms_for_snr(-50.0, 0.0), &mut rng);
    let mut x = t.pcm16();
    x.truncate(x.len() / FRAME * FRAME);
    x
}

fn config(mode: MaskMode) -> MaskerConfig {
    MaskerConfig { mode, ..MaskerConfig::default() }
}

/// Plays `x` through a two-phase masker: packet `i` arrives in the order
/// given by `arrivals` (indices; repeats are duplicates, missing ones are
/// lost), and frame `i` is played out once `depth` later packets have
/// arrived. Lost frames are concealed by repeating the previous frame.
fn play(x: &[i16], ts0: u32, arrivals: &[usize], depth: usize, mode: MaskMode) -> (Vec<i16>, String) {
    play_with(config(mode), x, ts0, arrivals, depth)
}

/// [`play`] with the masker set up by `config`.
fn play_with(config: MaskerConfig, x: &[i16], ts0: u32, arrivals: &[usize], depth: usize) -> (Vec<i16>, String) {
    let mut m = TwoPhaseMasker::new(config).unwrap();
    let frames = x.len() / FRAME;
    let mut keys = String::new();
    let mut arrived = vec![false; frames];
    let mut out = vec![0i16; x.len()];
    let mut next_play = 0;
    let mut on = |e: MaskerEvent| {
        if let MaskerEvent::Key(cardveil_core::dtmf::DetectorEvent::Up(p)) = e {
            keys.push(p.key.as_char());
        }
    };
    let mut playout = |upto: usize, arrived: &[bool], m: &mut TwoPhaseMasker, next_play: &mut usize| {
        while *next_play < upto {
            let i = *next_play;
            let mut frame: Vec<i16> = if arrived[i] {
                x[i * FRAME..(i + 1) * FRAME].to_vec()
            } else if i > 0 {
                out[(i - 1) * FRAME..i * FRAME].to_vec() // concealment
            } else {
                vec![0; FRAME]
            };
            m.mask_pcm16(&mut frame, ts0.wrapping_add((i * FRAME) as u32)).unwrap();
            out[i * FRAME..(i + 1) * FRAME].copy_from_slice(&frame);
            *next_play += 1;
        }
    };
    for (n, &i) in arrivals.iter().enumerate() {
        m.analyse_pcm16(&x[i * FRAME..(i + 1) * FRAME], ts0.wrapping_add((i * FRAME) as u32), &mut on).unwrap();
        arrived[i] = true;
        // The jitter buffer releases frames `depth` arrivals behind.
        playout((n + 1).saturating_sub(depth).min(frames), &arrived, &mut m, &mut next_play);
    }
    playout(frames, &arrived, &mut m, &mut next_play);
    m.finish(&mut on);
    (out, keys)
}

#[test]
fn in_order_it_matches_the_look_ahead_masker_with_no_delay() {
    let x = card_call(1);
    let frames = x.len() / FRAME;
    let order: Vec<usize> = (0..frames).collect();
    for mode in [MaskMode::Silence, MaskMode::Noise, MaskMode::Tone] {
        let delay_line = mask_linear(config(mode), &x, || FRAME);
        // Depth 2: frame i plays once frame i+1 has arrived, 20 ms of look-ahead.
        for (ts0, depth) in [(0u32, 2usize), (u32::MAX - 5000, 3), (123_456, 10)] {
            let (out, keys) = play(&x, ts0, &order, depth, mode);
            assert_eq!(keys, "4111111111111111");
            assert!(out == delay_line.codes, "{mode:?}, ts0 {ts0}, depth {depth}: differs from the look-ahead masker");
        }
    }
}

/// Under speech, with the files' 200 ms look-ahead (a chain sure of its
/// key reaches back to where its pair began): the two-phase masker whose
/// jitter buffer is as deep as the look-ahead masks exactly what the
/// look-ahead masker does — and both mask more than with 20 ms.
#[test]
fn under_speech_with_a_long_look_ahead_it_matches_the_look_ahead_masker() {
    use cardveil_tests::talkoff::{speech, voices};
    if !cardveil_tests::tools::require("espeak-ng", "two-phase under speech")
        || !cardveil_tests::tools::require("sox", "two-phase under speech")
    {
        return;
    }
    let dir = std::env::temp_dir().join(format!("cardveil-two-phase-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = card_call(5);
    let talk = speech(&voices()[2], keys.len() as f64 / RATE as f64 + 1.0, RATE, 55, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    // The speech at a quarter of its level: keys at −25…−5 dBm0 over it.
    let x: Vec<i16> =
        keys.iter().zip(talk.iter().chain(std::iter::repeat(&0))).map(|(&k, &t)| k.saturating_add(t / 4)).collect();
    let frames = x.len() / FRAME;
    let order: Vec<usize> = (0..frames).collect();
    let long = MaskerConfig { lookahead_ms: 200, ..config(MaskMode::Silence) };
    let delay_line = mask_linear(long, &x, || FRAME);
    let short = mask_linear(config(MaskMode::Silence), &x, || FRAME);
    // 200 ms of 20 ms frames ahead.
    let (out, keys_read) = play_with(long, &x, 99, &order, 10);
    assert!(out == delay_line.codes, "differs from the look-ahead masker");
    assert!(
        delay_line.masked_samples() > short.masked_samples(),
        "200 ms masked {} samples, 20 ms {}: no chain reached back",
        delay_line.masked_samples(),
        short.masked_samples()
    );
    println!(
        "under speech: {} samples masked with 200 ms, {} with 20 ms; keys read {}",
        delay_line.masked_samples(),
        short.masked_samples(),
        keys_read.len()
    );
}

#[test]
fn reordering_duplicates_and_loss_never_leak() {
    let x = card_call(2);
    let frames = x.len() / FRAME;
    let mut rng = Rng::new(3);
    // After the first 200 ms: swap neighbours often, duplicate some packets, lose 5 %.
    let mut order: Vec<usize> = (0..frames).collect();
    for i in 10..frames - 1 {
        if rng.below(4) == 0 {
            order.swap(i, i + 1);
        }
    }
    let mut arrivals = Vec::new();
    let mut lost = 0;
    for &i in &order {
        if i >= 10 && rng.below(20) == 0 {
            lost += 1;
            continue;
        }
        arrivals.push(i);
        if rng.below(10) == 0 {
            arrivals.push(i);
        }
    }
    let (out, _) = play(&x, 7, &arrivals, 3, MaskMode::Silence);
    assert!(lost > 5);
    assert_eq!(decode_cardveil(RATE, &out), "", "keys leaked");
    if let Some(k) = decode_spandsp_sensitive(&out) {
        assert_eq!(k, "", "spandsp read keys");
    }
    // Far from keys, what arrived in time is played unchanged: the silence
    // before the first key, where no packet was lost or late, is intact.
    let clean = 9 * FRAME;
    assert_eq!(&out[..clean], &x[..clean]);
}

#[test]
fn audio_never_analysed_is_masked() {
    let x = card_call(4);
    let mut m = TwoPhaseMasker::new(config(MaskMode::Silence)).unwrap();
    // Played before anything arrived.
    let mut f = x[..FRAME].to_vec();
    f.iter_mut().for_each(|s| *s = 1000);
    m.mask_pcm16(&mut f, 0).unwrap();
    assert!(f.iter().all(|&s| s == 0));
    // Played before its own packet arrived (ahead of the analysis).
    m.analyse_pcm16(&x[..FRAME], 0, |_| {}).unwrap();
    let mut f = vec![1000i16; FRAME];
    m.mask_pcm16(&mut f, FRAME as u32).unwrap();
    assert!(f.iter().all(|&s| s == 0));
    // A frame of the wrong type is refused.
    assert!(m.mask_g711(&mut [0u8; 10], 0).is_err());
    let mut g = TwoPhaseMasker::new(MaskerConfig { encoding: Encoding::Ulaw, ..config(MaskMode::Silence) }).unwrap();
    assert!(g.analyse_pcm16(&[0; 10], 0, |_| {}).is_err());
}

#[test]
fn a_timestamp_reset_starts_over_and_events_count_from_the_first_packet() {
    let x = card_call(5);
    let mut m = TwoPhaseMasker::new(config(MaskMode::Silence)).unwrap();
    let mut presses = Vec::new();
    let mut out = Vec::new();
    // Two calls' worth of packets; the second source starts its timestamps lower.
    for (base, call) in [(3_000_000u32, 0), (17u32, 1)] {
        for (i, f) in x.chunks(FRAME).enumerate() {
            let ts = base.wrapping_add((i * FRAME) as u32);
            m.analyse_pcm16(f, ts, |e| {
                if let MaskerEvent::Key(cardveil_core::dtmf::DetectorEvent::Up(p)) = e {
                    presses.push((call, p));
                }
            })
            .unwrap();
            // Played out two frames later.
            if i >= 2 {
                let j = i - 2;
                let mut g = x[j * FRAME..(j + 1) * FRAME].to_vec();
                m.mask_pcm16(&mut g, base.wrapping_add((j * FRAME) as u32)).unwrap();
                out.extend_from_slice(&g);
            }
        }
    }
    m.finish(|_| {});
    let keys = |c: usize| presses.iter().filter(|(k, _)| *k == c).map(|(_, p)| p.key.as_char()).collect::<String>();
    assert_eq!(keys(0), "4111111111111111");
    assert_eq!(keys(1), "4111111111111111", "the second source's keys");
    assert_eq!(decode_cardveil(RATE, &out), "", "keys leaked");
    // The first call's events count samples from its first packet.
    let first = presses[0].1;
    let truth = cardveil_tests::cardveil_detect(RATE, cardveil_core::dtmf::Profile::Q24, &x, FRAME).presses[0];
    assert_eq!((first.start, first.end), (truth.start, truth.end));
}
