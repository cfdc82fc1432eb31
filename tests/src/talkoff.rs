//! Talk-off material made in the test run: speech from espeak-ng (many
//! voices, speeds, pitches and levels, reading generated text that is heavy
//! in numbers) and synthetic hold music (chords with harmonics, vibrato and
//! a melody line).

use std::process::Command;

use cardveil_core::dtmf::amplitude_for_dbm0;

use crate::rng::Rng;
use crate::tools::{run, s16le};

const WORDS: &[&str] = &[
    "please",
    "enter",
    "your",
    "card",
    "number",
    "followed",
    "by",
    "the",
    "hash",
    "key",
    "thank",
    "you",
    "for",
    "calling",
    "our",
    "agents",
    "are",
    "busy",
    "right",
    "now",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "zero",
    "oh",
    "hundred",
    "thousand",
    "million",
    "account",
    "balance",
    "payment",
    "received",
    "today",
    "tomorrow",
    "yesterday",
    "morning",
    "evening",
    "weather",
    "rain",
    "sunshine",
    "beautiful",
    "question",
    "answer",
    "customer",
    "service",
    "representative",
    "hold",
    "music",
    "line",
    "transfer",
    "connect",
    "security",
    "code",
    "expiry",
    "date",
    "month",
    "year",
    "birthday",
    "address",
    "street",
    "avenue",
    "postcode",
    "zip",
    "seventeen",
    "forty",
    "ninety",
    "eleven",
    "twelve",
    "thirteen",
    "fifteen",
    "sixty",
    "seventy",
    "eighty",
    "twenty",
    "thirty",
    "fifty",
    "a",
    "an",
    "is",
    "was",
    "were",
    "have",
    "has",
    "had",
    "will",
    "would",
    "could",
    "should",
    "might",
    "must",
    "shall",
    "yes",
    "no",
    "maybe",
    "certainly",
    "absolutely",
    "sorry",
    "excuse",
    "me",
    "hello",
    "goodbye",
    "bonjour",
    "merci",
    "danke",
    "schön",
    "gracias",
    "ciao",
    "whistle",
    "squeak",
    "shriek",
    "beep",
    "bleep",
    "ping",
    "ding",
    "ring",
    "sing",
    "song",
    "tune",
    "violin",
    "piano",
    "flute",
    "soprano",
    "tenor",
    "high",
    "pitch",
    "tone",
    "eeee",
    "oooo",
    "aaaa",
    "mmmm",
    "hmm",
    "uh",
    "huh",
    "ah",
    "wow",
    "whoa",
    "ouch",
    "hey",
    "see",
    "sea",
    "me",
    "we",
    "people",
    "money",
    "street",
    "queen",
    "green",
    "dream",
    "cheese",
    "sleep",
    "keep",
    "deep",
    "cool",
    "school",
    "blue",
    "true",
    "food",
    "moon",
    "soon",
    "noon",
    "spoon",
    "balloon",
    "baboon",
    "family",
    "holiday",
    "airport",
    "flight",
    "ticket",
    "hotel",
    "restaurant",
    "reservation",
    "confirmation",
    "cancellation",
    "refund",
    "insurance",
    "claim",
    "policy",
    "premium",
    "discount",
    "manager",
    "supervisor",
    "complaint",
    "feedback",
    "survey",
    "satisfied",
    "excellent",
    "terrible",
];

fn sentence(rng: &mut Rng) -> String {
    let n = 4 + rng.below(14) as usize;
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        if rng.below(6) == 0 {
            // Numbers as digits make espeak read them aloud ("four thousand...").
            s.push_str(&rng.below(100_000).to_string());
        } else {
            s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
    }
    s.push_str(if rng.below(4) == 0 { "? " } else { ". " });
    s
}

/// One espeak-ng rendering: voice, words per minute, pitch (0–99).
#[derive(Debug, Clone)]
pub struct Voice {
    /// `-v` argument, e.g. `en-us+f3`.
    pub voice: &'static str,
    /// `-s`, words per minute.
    pub speed: u32,
    /// `-p`, pitch 0–99.
    pub pitch: u32,
    /// Peak level after normalisation, dBFS.
    pub peak_dbfs: f64,
}

/// The voices the talk-off test uses: languages, genders, speeds, pitches, levels.
pub fn voices() -> Vec<Voice> {
    let v = |voice, speed, pitch, peak_dbfs| Voice { voice, speed, pitch, peak_dbfs };
    vec![
        v("en-us", 175, 50, -1.0),
        v("en+f3", 150, 70, -6.0),
        v("en-gb+m3", 220, 35, -1.0),
        v("en-us+f5", 260, 90, -12.0),
        v("en+croak", 130, 20, -3.0),
        v("de+m1", 170, 50, -1.0),
        v("fr+f2", 180, 80, -1.0),
        v("es+m7", 200, 40, -20.0),
        v("it+f4", 160, 99, -1.0),
        v("en-us+whisper", 170, 50, -1.0),
        v("pt+klatt", 190, 60, -6.0),
        v("en+Annie", 175, 65, -1.0),
        v("nl+m2", 165, 30, -1.0),
        v("en-us+belinda", 210, 75, -3.0),
    ]
}

/// Renders `seconds` of speech in `voice` at `rate` Hz as 16-bit PCM, with
/// generated text from `seed`. Needs `espeak-ng` and `sox`.
pub fn speech(voice: &Voice, seconds: f64, rate: u32, seed: u64, dir: &std::path::Path) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    // espeak speaks about 2.5 words/s at 150 wpm; overshoot and trim.
    let words_needed = (seconds * voice.speed as f64 / 60.0 * 1.3) as usize + 20;
    let mut text = String::new();
    while text.split_whitespace().count() < words_needed {
        text.push_str(&sentence(&mut rng));
    }
    let txt = dir.join(format!("talk-{seed}.txt"));
    let wav = dir.join(format!("talk-{seed}.wav"));
    std::fs::write(&txt, text).expect("write text");
    run(Command::new("espeak-ng")
        .args(["-v", voice.voice, "-s", &voice.speed.to_string(), "-p", &voice.pitch.to_string(), "-w"])
        .arg(&wav)
        .arg("-f")
        .arg(&txt));
    // `-D`: no dither (sox dithers by default when effects change 16-bit
    // audio, with a random source: the same seed would not give the same speech).
    let raw = run(Command::new("sox")
        .arg("-D")
        .arg(&wav)
        .args(["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", &rate.to_string(), "-"])
        .args(["gain", "-n", &voice.peak_dbfs.to_string()]));
    let _ = std::fs::remove_file(&txt);
    let _ = std::fs::remove_file(&wav);
    let mut s = s16le(&raw);
    s.truncate((seconds * rate as f64) as usize);
    s
}

/// `seconds` of synthetic hold music at `rate` Hz, peaking near `level_dbm0`.
///
/// Chords of three or four notes from a major or minor scale between C4 and
/// C7 (so many notes sit near DTMF frequencies: F5 ≈ 698 Hz, G5 ≈ 784 Hz,
/// E6 ≈ 1319 Hz...), each note with six harmonics, 5–6 Hz vibrato of ±0.5 %
/// and an attack/decay envelope, plus a melody line an octave up.
pub fn music(seconds: f64, rate: u32, level_dbm0: f64, seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let n = (seconds * rate as f64) as usize;
    let mut out = vec![0f64; n];
    let beat = (rate as f64 * 60.0 / rng.range(70.0, 130.0)) as usize;
    let amp = amplitude_for_dbm0(level_dbm0) / 4.0;
    let scale_major = [0, 2, 4, 5, 7, 9, 11];
    let scale_minor = [0, 2, 3, 5, 7, 8, 10];
    let mut pos = 0;
    while pos < n {
        let scale = if rng.below(2) == 0 { &scale_major } else { &scale_minor };
        let root = 60 + rng.below(24) as i32; // C4..B5
        let len = beat * (1 + rng.below(4) as usize);
        let mut notes: Vec<i32> =
            (0..3 + rng.below(2) as i32).map(|i| root + scale[((2 * i) % 7) as usize] + 12 * ((2 * i) / 7)).collect();
        // A melody note an octave or two up, sometimes.
        if rng.below(2) == 0 {
            notes.push(root + 12 + scale[rng.below(7) as usize]);
        }
        for &m in &notes {
            let f0 = 440.0 * 2f64.powf((m - 69) as f64 / 12.0);
            let vib_rate = rng.range(5.0, 6.0);
            let vib_depth = rng.range(0.002, 0.005);
            let mut phases = [0f64; 6];
            for p in &mut phases {
                *p = rng.phase();
            }
            let note_amp = amp * rng.range(0.5, 1.0);
            for i in 0..len.min(n - pos) {
                let t = i as f64 / rate as f64;
                let env = (t / 0.02).min(1.0) * (-t * 1.5).exp();
                let f = f0 * (1.0 + vib_depth * (std::f64::consts::TAU * vib_rate * t).sin());
                let mut v = 0.0;
                for (h, p) in phases.iter_mut().enumerate() {
                    let hf = f * (h + 1) as f64;
                    if hf < rate as f64 / 2.0 {
                        *p += std::f64::consts::TAU * hf / rate as f64;
                        v += p.sin() / (h + 1) as f64;
                    }
                }
                out[pos + i] += note_amp * env * v;
            }
        }
        pos += len;
    }
    out.iter().map(|&s| s.round().clamp(-32768.0, 32767.0) as i16).collect()
}
