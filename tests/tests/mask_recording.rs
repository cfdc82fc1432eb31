//! Acceptance for `cardveil mask`: a μ-law recording of a call in which the
//! caller keys a card number between stretches of speech. After masking,
//! none of the four decoders finds a key, and the speech is unchanged code
//! for code.

use cardveil_cli::{Cli, run};
use cardveil_core::codec::wav::{self, WavFormat};
use cardveil_core::codec::{Encoding, ulaw};
use cardveil_core::dtmf::Key;
use cardveil_tests::masking::{
    decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive,
};
use cardveil_tests::rng::Rng;
use cardveil_tests::stimulus::{Tone, Track};
use cardveil_tests::talkoff::{speech, voices};
use cardveil_tests::tools;
use clap::Parser;

const PAN: &str = "4111111111111111";

#[test]
fn a_ulaw_card_entry_recording_is_masked_for_every_decoder_and_its_speech_kept() {
    if !tools::require("espeak-ng", "the mask acceptance test") || !tools::require("sox", "the mask acceptance test") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("cardveil-accept-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let v = &voices()[0];
    let before = speech(v, 5.0, 8000, 31, &dir);
    let after = speech(v, 5.0, 8000, 32, &dir);
    let mut rng = Rng::new(5);
    let mut t = Track::new(8000);
    t.samples = before.iter().map(|&s| s as f64).collect();
    t.silence(400.0);
    for ch in PAN.chars() {
        t.tone(&Tone::new(Key::from_char(ch).unwrap(), rng.range(60.0, 120.0)).level(rng.range(-18.0, -6.0)), &mut rng);
        t.silence(rng.range(80.0, 250.0));
    }
    t.silence(300.0);
    t.samples.extend(after.iter().map(|&s| s as f64));
    let codes: Vec<u8> = t.pcm16().iter().map(|&s| ulaw::encode(s)).collect();
    let format = WavFormat { encoding: Encoding::Ulaw, sample_rate: 8000, channels: 1 };
    let mut file = wav::header(format, codes.len() as u32);
    file.extend_from_slice(&codes);
    let input = dir.join("call.wav");
    let output = dir.join("call-masked.wav");
    std::fs::write(&input, &file).unwrap();

    let cli =
        Cli::try_parse_from(["cardveil", "mask", input.to_str().unwrap(), "-o", output.to_str().unwrap()]).unwrap();
    let mut stdout = Vec::new();
    run(cli, &mut stdout).unwrap();
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.lines().count() >= PAN.len() / 2, "{text}");
    for ch in PAN.chars().chain(['4', '1']) {
        // No key value in the events (digits only appear in the times).
        assert!(!text.contains(&format!("\"{ch}\"")));
    }

    let bytes = std::fs::read(&output).unwrap();
    let w = wav::parse(&bytes).unwrap();
    assert_eq!(w.format, format);
    assert_eq!(w.data.len(), codes.len());
    let masked = wav::channel_pcm16(&w, 0);
    let original = t.pcm16().iter().map(|&s| ulaw::decode(ulaw::encode(s))).collect::<Vec<_>>();
    // The unmasked file has the card number for every decoder...
    assert_eq!(decode_cardveil(8000, &original), PAN);
    let mut found = vec![("cardveil", decode_cardveil(8000, &masked))];
    if let Some(k) = decode_spandsp(&original) {
        assert_eq!(k, PAN);
        found.push(("spandsp", decode_spandsp(&masked).unwrap()));
        found.push(("spandsp-sensitive", decode_spandsp_sensitive(&masked).unwrap()));
    }
    if tools::require("multimon-ng", "the mask acceptance test") {
        assert_eq!(decode_multimon(8000, &original, &dir, "orig"), PAN);
        found.push(("multimon-ng", decode_multimon(8000, &masked, &dir, "masked")));
    }
    if tools::require("dtmf2num", "the mask acceptance test") {
        assert!(decode_dtmf2num(8000, &original, &dir, "orig").contains(PAN));
        found.push(("dtmf2num", decode_dtmf2num(8000, &masked, &dir, "masked")));
    }
    // ...and the masked file has nothing for any of them.
    for (name, keys) in &found {
        println!("{name}: {keys:?}");
        assert!(keys.is_empty(), "{name} read {} keys from the masked recording", keys.len());
    }
    // The speech before and after the keys is unchanged, code for code.
    let speech_end = before.len();
    let speech_start = codes.len() - after.len();
    assert_eq!(&w.data[..speech_end], &codes[..speech_end]);
    assert_eq!(&w.data[speech_start..], &codes[speech_start..]);
    let _ = std::fs::remove_dir_all(&dir);
}
