//! G.711 against an independent implementation: every 16-bit value encoded by
//! cardveil equals `sox`'s μ-law and A-law encoding, and every code decodes
//! to the same linear value as sox's.

use std::process::Command;

use cardveil_core::codec::{alaw, ulaw};
use cardveil_tests::tools::{require, run, s16le};

/// Runs sox on raw `input` with `from` describing it and `to` the output.
fn sox_raw(input: &[u8], from: &[&str], to: &[&str]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("cardveil-g711-{}-{}", std::process::id(), to.join("")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.raw");
    std::fs::write(&path, input).unwrap();
    // -D: no dither, so sox encodes the exact samples.
    let out =
        run(Command::new("sox").args(["-D", "-t", "raw", "-r", "8000", "-c", "1"]).args(from).arg(&path).args(to));
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn sox_encode(all: &[u8], law: &str) -> Vec<u8> {
    sox_raw(all, &["-e", "signed", "-b", "16", "-L"], &["-t", "raw", "-e", law, "-b", "8", "-"])
}

fn sox_decode(codes: &[u8], law: &str) -> Vec<i16> {
    s16le(&sox_raw(codes, &["-e", law, "-b", "8"], &["-t", "raw", "-e", "signed", "-b", "16", "-L", "-"]))
}

#[test]
fn encoding_matches_sox_over_the_whole_16_bit_range() {
    if !require("sox", "G.711 comparison with sox") {
        return;
    }
    let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let bytes: Vec<u8> = all.iter().flat_map(|s| s.to_le_bytes()).collect();
    for (law, enc) in [("u-law", ulaw::encode as fn(i16) -> u8), ("a-law", alaw::encode)] {
        let theirs = sox_encode(&bytes, law);
        assert_eq!(theirs.len(), all.len(), "{law}");
        let mismatches: Vec<_> = all.iter().zip(&theirs).filter(|(s, t)| enc(**s) != **t).take(5).collect();
        assert!(mismatches.is_empty(), "{law}: first mismatches (sample, sox code): {mismatches:?}");
    }
}

#[test]
fn decoding_matches_sox_for_all_256_codes() {
    if !require("sox", "G.711 comparison with sox") {
        return;
    }
    let codes: Vec<u8> = (0..=255).collect();
    assert_eq!(sox_decode(&codes, "u-law"), codes.iter().map(|&c| ulaw::decode(c)).collect::<Vec<_>>());
    assert_eq!(sox_decode(&codes, "a-law"), codes.iter().map(|&c| alaw::decode(c)).collect::<Vec<_>>());
}
