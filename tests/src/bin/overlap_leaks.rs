//! Measures what masking leaves and what detection finds when other audio
//! overlaps the tones (issue 13's "before" and "after" tables): twenty keys
//! (each digit twice, 70 ms on / 70 ms off, −10 dBm0 per tone) under
//! espeak-ng speech, babble (three voices summed), synthetic hold music, a
//! second "agent" leg mixed in, and white noise, at per-tone SNR +30 … −6 dB
//! (SNR: a tone's level minus the background's RMS level).
//!
//! For each row: the keys each decoder (cardveil, spandsp default and most
//! sensitive, multimon-ng, dtmf2num) reads from the masked output and from
//! the background alone; the known-span matched filter's hit rate over the
//! tones and over their 5 ms pieces (chance: 10 %); the share of the tones'
//! samples the masker covered; and whether each decoder reads the keyed
//! digits exactly from the unmasked input.
//!
//! `cargo run --release -p cardveil-tests --bin overlap_leaks [-- --quick]
//! [--lookahead-ms N] [--gaps]` (needs espeak-ng, sox, multimon-ng,
//! dtmf2num; prints a Markdown table; `--gaps` lists on stderr, per row and
//! tone, the parts of the tone the masker left unmasked, in ms from its onset).
//! A measurement, not a test: the suite asserts on the same figures.

use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};
use cardveil_core::mask::{MaskMode, MaskerConfig};
use cardveil_tests::masking::{
    decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive, mask_linear,
    matched_filter_guess,
};
use cardveil_tests::rng::Rng;
use cardveil_tests::talkoff::{music, speech, voices};

const RATE: u32 = 8000;
const KEYS: &str = "01234567899876543210";
const TONE_DBM0: f64 = -10.0;

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The keyed track (linear, f64) and each tone's span.
fn keyed(rng: &mut Rng) -> (Vec<f64>, Vec<(Key, usize, usize)>) {
    let ms = RATE as usize / 1000;
    let mut x = vec![0f64; 500 * ms];
    let mut spans = Vec::new();
    for ch in KEYS.chars() {
        let key = Key::from_char(ch).unwrap();
        let (lo, hi) = key.frequencies();
        let a = amplitude_for_dbm0(TONE_DBM0);
        let mut g = ToneGenerator::new(RATE, [lo, hi], [a, a], [rng.phase(), rng.phase()]);
        let mut tone = vec![0i16; 70 * ms];
        g.fill(&mut tone);
        let start = x.len();
        x.extend(tone.iter().map(|&s| s as f64));
        spans.push((key, start, x.len()));
        x.extend(std::iter::repeat_n(0.0, 70 * ms));
    }
    x.extend(std::iter::repeat_n(0.0, 500 * ms));
    (x, spans)
}

fn to_pcm(x: &[f64]) -> Vec<i16> {
    x.iter().map(|&v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
}

struct Decoded {
    name: &'static str,
    keys: String,
}

fn decoders(pcm: &[i16], dir: &std::path::Path, tag: &str) -> Vec<Decoded> {
    let mut v = vec![
        Decoded { name: "cardveil", keys: decode_cardveil(RATE, pcm) },
        Decoded { name: "multimon-ng", keys: decode_multimon(RATE, pcm, dir, tag) },
        Decoded { name: "dtmf2num", keys: decode_dtmf2num(RATE, pcm, dir, tag) },
    ];
    if let (Some(a), Some(b)) = (decode_spandsp(pcm), decode_spandsp_sensitive(pcm)) {
        v.push(Decoded { name: "spandsp", keys: a });
        v.push(Decoded { name: "spandsp-sens", keys: b });
    }
    v
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let gaps = std::env::args().any(|a| a == "--gaps");
    let dir = std::env::temp_dir().join(format!("cardveil-overlap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(13);
    let (tones, spans) = keyed(&mut rng);
    let n = tones.len();
    let seconds = n as f64 / RATE as f64 + 0.5;
    let vs = voices();
    let fit = |mut b: Vec<i16>| -> Vec<f64> {
        b.resize(n, 0);
        b.iter().map(|&s| s as f64).collect()
    };
    let sum = |parts: Vec<Vec<f64>>| -> Vec<f64> { (0..n).map(|i| parts.iter().map(|p| p[i]).sum()).collect() };
    let mut backgrounds: Vec<(&str, Vec<f64>)> = vec![
        ("speech", fit(speech(&vs[0], seconds, RATE, 101, &dir))),
        (
            "babble",
            sum(vec![
                fit(speech(&vs[1], seconds, RATE, 102, &dir)),
                fit(speech(&vs[2], seconds, RATE, 103, &dir)),
                fit(speech(&vs[5], seconds, RATE, 104, &dir)),
            ]),
        ),
        ("music", fit(music(seconds, RATE, -15.0, 105))),
        ("agent leg", fit(speech(&vs[11], seconds, RATE, 106, &dir))),
        ("white noise", (0..n).map(|_| rng.gauss()).collect()),
    ];
    if quick {
        backgrounds.truncate(2);
    }
    let snrs: &[f64] = if quick { &[15.0, 6.0, 0.0] } else { &[30.0, 15.0, 10.0, 6.0, 3.0, 0.0, -3.0, -6.0] };
    let tone_rms = amplitude_for_dbm0(TONE_DBM0) / std::f64::consts::SQRT_2;
    println!(
        "| background | SNR dB | masked output: keys read (background alone) | matched filter tone / 5 ms | tone time masked | input read exactly |"
    );
    println!("|---|---:|---|---:|---:|---|");
    let lookahead_ms = std::env::args()
        .skip_while(|a| a != "--lookahead-ms")
        .nth(1)
        .map(|v| v.parse().expect("--lookahead-ms N"))
        .unwrap_or(cardveil_core::mask::DEFAULT_LOOKAHEAD_MS);
    let config = MaskerConfig { mode: MaskMode::Silence, lookahead_ms, ..MaskerConfig::default() };
    for (name, bg) in &backgrounds {
        for &snr in snrs {
            let gain = tone_rms / 10f64.powf(snr / 20.0) / rms(bg);
            let scaled: Vec<f64> = bg.iter().map(|v| v * gain).collect();
            let input: Vec<f64> = (0..n).map(|i| tones[i] + scaled[i]).collect();
            let (pcm_in, pcm_bg) = (to_pcm(&input), to_pcm(&scaled));
            let masked = mask_linear(config, &pcm_in, || 160);
            let tag = format!("{}-{snr}", name.replace(' ', "-"));
            let out = decoders(&masked.linear, &dir, &format!("{tag}-out"));
            let alone = decoders(&pcm_bg, &dir, &format!("{tag}-bg"));
            let read: Vec<String> = out
                .iter()
                .zip(&alone)
                .map(|(o, a)| format!("{} {} ({})", o.name, o.keys.len(), a.keys.len()))
                .collect();
            // The attacker who knows where the tones were.
            let (mut hits, mut pieces, mut piece_hits) = (0, 0, 0);
            let win = 5 * RATE as usize / 1000;
            for &(key, s, e) in &spans {
                hits += (matched_filter_guess(&masked.linear, RATE, s..e) == key) as usize;
                let mut a = s;
                while a + win <= e {
                    pieces += 1;
                    piece_hits += (matched_filter_guess(&masked.linear, RATE, a..a + win) == key) as usize;
                    a += win;
                }
            }
            if gaps {
                eprintln!("{name} {snr:+} dB:");
                for &(key, s, e) in &spans {
                    let mut open = Vec::new();
                    let mut i = s;
                    while i < e {
                        if masked.is_masked(i as u64) {
                            i += 1;
                            continue;
                        }
                        let g = i;
                        while i < e && !masked.is_masked(i as u64) {
                            i += 1;
                        }
                        open.push(format!("{}..{} ms", (g - s) / 8, (i - s) / 8));
                    }
                    eprintln!("  {key:?}: unmasked {}", open.join(", "));
                }
            }
            let tone_samples: usize = spans.iter().map(|&(_, s, e)| e - s).sum();
            let covered: usize =
                spans.iter().map(|&(_, s, e)| (s..e).filter(|&i| masked.is_masked(i as u64)).count()).sum();
            let exact: Vec<&str> = decoders(&pcm_in, &dir, &format!("{tag}-in"))
                .into_iter()
                .filter(|d| d.keys == KEYS)
                .map(|d| d.name)
                .collect();
            println!(
                "| {name} | {snr:+} | {} | {:.0} % / {:.0} % | {:.1} % | {} |",
                read.join(", "),
                100.0 * hits as f64 / spans.len() as f64,
                100.0 * piece_hits as f64 / pieces.max(1) as f64,
                100.0 * covered as f64 / tone_samples as f64,
                if exact.is_empty() { "none".to_owned() } else { exact.join(", ") },
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
