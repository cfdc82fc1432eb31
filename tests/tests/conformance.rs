//! SPEC's detector table, row by row, with generated stimuli (random phases,
//! onsets swept over block positions, fixed seeds), at 8, 16 and 48 kHz and
//! for the ETSI and NTT profiles; plus timing accuracy, latency, G.711 round
//! trips and chunking invariance.

use cardveil_core::codec::{alaw, ulaw};
use cardveil_core::dtmf::{Key, Profile};
use cardveil_tests::conformance::{Demand, Row, profile_rows, q24_rows, run_cardveil};
use cardveil_tests::rng::Rng;
use cardveil_tests::stimulus::{Shape, Tone, Track, noise_rms_for_snr};
use cardveil_tests::{cardveil_detect, keys_of};
use proptest::prelude::*;

fn check(rows: Vec<(Profile, Row)>, rate: u32) {
    let mut failures = Vec::new();
    for (profile, row) in rows {
        let o = run_cardveil(&row.case, profile);
        let ok = match row.demand {
            Demand::All => o.as_expected == o.trials,
            Demand::AtLeast(share) => o.rate() >= share,
        };
        println!(
            "{rate:5} Hz {profile:?} {:28} {:5}/{:5} as expected, {} wrong keys",
            row.name, o.as_expected, o.trials, o.wrong_keys
        );
        if !ok || o.wrong_keys > 0 {
            failures.push(format!(
                "{} ({profile:?}, {rate} Hz): {}/{} as expected, {} wrong keys; {:?}",
                row.name, o.as_expected, o.trials, o.wrong_keys, o.failures
            ));
        }
    }
    assert!(failures.is_empty(), "conformance failures:\n{}", failures.join("\n"));
}

fn q24(rate: u32, n: usize, noise_n: usize) -> Vec<(Profile, Row)> {
    q24_rows(rate, n, noise_n).into_iter().map(|r| (Profile::Q24, r)).collect()
}

#[test]
fn q24_table_at_8khz_with_ten_thousand_noisy_tones() {
    check(q24(8000, 400, 10_000), 8000);
}

#[test]
fn q24_table_at_16khz() {
    check(q24(16000, 200, 1000), 16000);
}

#[test]
fn q24_table_at_48khz() {
    check(q24(48000, 100, 300), 48000);
}

#[test]
fn etsi_and_ntt_rows() {
    check(profile_rows(8000, 400), 8000);
    check(profile_rows(16000, 100), 16000);
}

#[test]
fn the_q24_tone_rows_hold_for_the_other_profiles_where_limits_agree() {
    // Nominal keys, noise, 93 ms signalling and talk-off-style rejects are
    // profile independent; check them under ETSI and NTT as well.
    let keep = [
        "40 ms tone",
        "level 0…−25 dBm0",
        "93 ms per digit",
        "back-to-back keys",
        "single tones",
        "call progress",
        "freq ±3.5 %",
    ];
    for p in [Profile::Etsi, Profile::Ntt] {
        let rows = q24_rows(8000, 200, 200).into_iter().filter(|r| keep.contains(&r.name)).map(|r| (p, r)).collect();
        check(rows, 8000);
    }
}

/// Start and end within one 5 ms block of the truth; confirmed ≤ 40 ms after onset.
#[test]
fn start_end_within_one_block_and_reported_within_40_ms() {
    for rate in [8000u32, 16000, 48000] {
        let block = (rate / 200) as i64;
        let mut rng = Rng::new(77);
        let mut t = Track::new(rate);
        for i in 0..300 {
            let lead = t.ms(60.0) + rng.below(2 * block as u64) as usize;
            t.silence_samples(lead);
            let dur = [40.0, 45.0, 60.0, 100.0, 250.0][i % 5];
            let level = rng.range(-30.0, -3.0);
            t.tone(&Tone::new(*rng.pick(&Key::ALL), dur).level(level), &mut rng);
            t.silence(60.0);
        }
        let d = cardveil_detect(rate, Profile::Q24, &t.pcm16(), 160);
        assert_eq!(d.presses.len(), t.truth.len(), "{rate} Hz: every tone found once");
        let mut worst = (0i64, 0i64, 0u64);
        for ((p, down), truth) in d.presses.iter().zip(&d.downs).zip(&t.truth) {
            assert_eq!(p.key, truth.key);
            let ds = p.start as i64 - truth.start as i64;
            let de = p.end as i64 - truth.end as i64;
            assert!(ds.abs() <= block, "{rate} Hz: start off by {ds} samples");
            assert!(de.abs() <= block, "{rate} Hz: end off by {de} samples");
            let latency = down.confirmed_at - truth.start;
            assert!(latency <= 40 * rate as u64 / 1000, "{rate} Hz: confirmed {latency} samples after onset");
            worst = (worst.0.max(ds.abs()), worst.1.max(de.abs()), worst.2.max(latency));
        }
        println!(
            "{rate} Hz: worst start error {} samples, end error {}, latency {} samples",
            worst.0, worst.1, worst.2
        );
    }
}

fn keyed_card_track(seed: u64, rate: u32, noise_snr: Option<f64>) -> Track {
    let mut rng = Rng::new(seed);
    let mut t = Track::new(rate);
    t.silence(100.0);
    for c in "4111111111111111#0429#737#".chars() {
        let key = Key::from_char(c).unwrap();
        let on = rng.range(40.0, 120.0);
        t.tone(&Tone::new(key, on).level(rng.range(-25.0, -5.0)).twist(rng.range(-4.0, 2.0)), &mut rng);
        t.silence(rng.range(40.0, 200.0));
        t.silence_samples(rng.below(40) as usize);
    }
    if let Some(snr) = noise_snr {
        t.add_noise(noise_rms_for_snr(-25.0, snr), &mut rng);
    }
    t
}

#[test]
fn g711_round_trips_give_the_same_keys_and_times() {
    for seed in 0..20 {
        let t = keyed_card_track(seed, 8000, Some(20.0));
        let pcm = t.pcm16();
        let lin = cardveil_detect(8000, Profile::Q24, &pcm, 160);
        assert_eq!(keys_of(&lin.presses), "4111111111111111#0429#737#");
        let via_u: Vec<i16> = pcm.iter().map(|&s| ulaw::decode(ulaw::encode(s))).collect();
        let via_a: Vec<i16> = pcm.iter().map(|&s| alaw::decode(alaw::encode(s))).collect();
        for (law, samples) in [("μ-law", via_u), ("A-law", via_a)] {
            let d = cardveil_detect(8000, Profile::Q24, &samples, 160);
            assert_eq!(keys_of(&d.presses), keys_of(&lin.presses), "{law}, seed {seed}");
            for (a, b) in d.presses.iter().zip(&lin.presses) {
                assert!(
                    a.start.abs_diff(b.start) <= 40 && a.end.abs_diff(b.end) <= 40,
                    "{law} seed {seed}: {a:?} vs {b:?}"
                );
            }
        }
    }
}

#[test]
fn fixed_chunk_sizes_give_identical_results() {
    for rate in [8000u32, 16000, 48000] {
        let pcm = keyed_card_track(5, rate, Some(18.0)).pcm16();
        let reference = cardveil_detect(rate, Profile::Q24, &pcm, pcm.len());
        assert_eq!(keys_of(&reference.presses), "4111111111111111#0429#737#");
        for chunk in [1, 7, 80, 160, 1000] {
            assert_eq!(cardveil_detect(rate, Profile::Q24, &pcm, chunk), reference, "{rate} Hz, chunk {chunk}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any chunking of the same stream gives exactly the same events.
    #[test]
    fn any_chunking_gives_identical_results(seed in 0u64..1000, sizes in prop::collection::vec(1usize..700, 1..40)) {
        let pcm = keyed_card_track(seed, 8000, Some(15.0 + (seed % 10) as f64)).pcm16();
        let reference = cardveil_detect(8000, Profile::Q24, &pcm, 160);
        let mut det = cardveil_core::dtmf::Detector::new(Default::default()).unwrap();
        let mut events = Vec::new();
        let mut rest = &pcm[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            det.process(&rest[..n], |e| events.push(e));
            rest = &rest[n..];
            i += 1;
        }
        det.finish(|e| events.push(e));
        let presses: Vec<_> = events.iter().filter_map(|e| match e { cardveil_core::dtmf::DetectorEvent::Up(p) => Some(*p), _ => None }).collect();
        let downs: Vec<_> = events.iter().filter_map(|e| match e { cardveil_core::dtmf::DetectorEvent::Down(d) => Some(*d), _ => None }).collect();
        prop_assert_eq!(&presses, &reference.presses);
        prop_assert_eq!(&downs, &reference.downs);
    }
}

/// 0.1–3 s keys of every key with quieter, dipped onsets, linear attacks
/// of 5–60 ms, key-clicks, fades of up to 12 dB, some clipped at full scale,
/// at 8, 16 and 48 kHz: each reported once, exactly.
#[test]
fn keys_with_a_quiet_or_soft_onset_are_reported_once_exactly() {
    let mut failures = Vec::new();
    for (rate, per_key) in [(8000u32, 6usize), (16000, 3), (48000, 2)] {
        let mut rng = Rng::new(1300 + rate as u64);
        let mut t = Track::new(rate);
        let mut expected = String::new();
        let mut cases = Vec::new();
        t.silence(100.0);
        for &key in &Key::ALL {
            for n in 0..per_key {
                let ms = [100.0, 300.0, 1000.0, 3000.0][(n + key.as_char() as usize) % 4];
                let onset = match rng.below(4) {
                    0 => Shape::Quiet { ms: rng.range(30.0, 80.0), db: rng.range(3.0, 8.0) },
                    1 => Shape::Attack { ms: rng.range(5.0, 60.0) },
                    2 => Shape::Click { db: rng.range(6.0, 12.0) },
                    _ => Shape::Fade { db: rng.range(3.0, 12.0) },
                };
                // Every fifth key hot enough to clip at full scale.
                let level = if rng.below(5) == 0 { rng.range(0.0, 2.0) } else { rng.range(-20.0, -6.0) };
                let tone = Tone::new(key, ms).level(level);
                t.shaped_tone(&tone, onset, &mut rng);
                expected.push(key.as_char());
                cases.push(format!("{}: {ms} ms at {level:.0} dBm0, {onset:?}", key.as_char()));
                t.silence(rng.range(80.0, 150.0));
            }
        }
        t.add_noise(noise_rms_for_snr(-60.0, 0.0), &mut rng);
        let got = keys_of(&cardveil_detect(rate, Profile::Q24, &t.pcm16(), 160).presses);
        println!(
            "{rate} Hz: {} keys, read {}",
            expected.len(),
            if got == expected { "exactly" } else { "NOT exactly" }
        );
        if got != expected {
            failures.push(format!("{rate} Hz: expected {expected}, got {got}\n  {}", cases.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
