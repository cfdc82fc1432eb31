//! `cardveil mask` end to end: the real binary on generated WAV files.

mod common;

use std::path::Path;
use std::process::Output;

use common::{FORMATS, bin, field, lines, write_wav};

use cardveil_cli::example::{KEYS, synthesize};
use cardveil_core::codec::Encoding;
use cardveil_core::codec::wav;

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("mask", name)
}

/// (start_ms, end_ms, channel) of each masked-span line; checks the line's shape.
fn spans(out: &Output) -> Vec<(f64, f64, Option<u32>)> {
    lines(out)
        .iter()
        .map(|l| {
            assert!(l.starts_with(r#"{"event":"masked","start_ms":"#) && l.ends_with('}'), "not SPEC's line: {l}");
            assert!(!l.contains("digit") && !l.contains("key"), "a masked line names a key: {l}");
            let field = |name: &str| field(l, name);
            (
                field("start_ms").unwrap().parse().unwrap(),
                field("end_ms").unwrap().parse().unwrap(),
                field("channel").map(|c| c.parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn masks_every_key_keeps_format_and_length_and_names_no_key() {
    for (encoding, rate) in FORMATS {
        for mode in ["silence", "noise", "tone"] {
            let (pcm, truth) = synthesize(rate);
            let input = tmp(&format!("in-{encoding:?}-{rate}.wav"));
            let output = tmp(&format!("out-{encoding:?}-{rate}-{mode}.wav"));
            write_wav(&input, encoding, rate, &[pcm]);
            let out = bin().args(["mask", "--mode", mode]).arg(&input).arg("-o").arg(&output).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let lines = spans(&out);
            // Every key lies inside a masked span.
            for (_, s, e) in &truth {
                let ms = |x: u64| x as f64 * 1000.0 / rate as f64;
                assert!(
                    lines.iter().any(|l| l.0 <= ms(*s) - 2.0 && l.1 >= ms(*e) + 2.0),
                    "{encoding:?} {mode}: key {:.1}..{:.1} ms not covered: {lines:?}",
                    ms(*s),
                    ms(*e)
                );
            }
            let a = std::fs::read(&input).unwrap();
            let b = std::fs::read(&output).unwrap();
            let (wa, wb) = (wav::parse(&a).unwrap(), wav::parse(&b).unwrap());
            assert_eq!(wa.format, wb.format);
            assert_eq!(wa.data.len(), wb.data.len());
            let det = bin().arg("detect").arg(&output).output().unwrap();
            assert!(det.status.success());
            assert!(det.stdout.is_empty(), "{encoding:?} {mode}: keys left: {}", String::from_utf8_lossy(&det.stdout));
            // Outside the spans the file is unchanged, sample for sample.
            let bps = encoding.bytes_per_sample();
            for (i, (x, y)) in wa.data.chunks(bps).zip(wb.data.chunks(bps)).enumerate() {
                let t = i as f64 * 1000.0 / rate as f64;
                if !lines.iter().any(|l| l.0 - 0.2 <= t && t <= l.1 + 0.2) {
                    assert_eq!(x, y, "{encoding:?} {mode}: sample {i} changed outside every span");
                }
            }
        }
    }
    // And the unmasked file still has its keys (so the check above can fail).
    let det = bin().arg("detect").arg(tmp("in-Pcm16-8000.wav")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&det.stdout).lines().count(), KEYS.len());
}

#[test]
fn stereo_masks_each_leg_and_says_which() {
    let (pcm, _) = synthesize(8000);
    let quiet: Vec<i16> = (0..pcm.len()).map(|i| ((i * 7919 % 200) as i16) - 100).collect();
    let input = tmp("stereo.wav");
    let output = tmp("stereo-out.wav");
    write_wav(&input, Encoding::Ulaw, 8000, &[quiet, pcm]);
    let out = bin().arg("mask").arg(&input).arg("-o").arg(&output).output().unwrap();
    assert!(out.status.success());
    let lines = spans(&out);
    assert!(!lines.is_empty() && lines.iter().all(|l| l.2 == Some(1)), "{lines:?}");
    let b = std::fs::read(&output).unwrap();
    let w = wav::parse(&b).unwrap();
    assert_eq!(w.format.channels, 2);
    let a = std::fs::read(&input).unwrap();
    let wa = wav::parse(&a).unwrap();
    // The quiet leg passes untouched.
    assert_eq!(wav::channel_pcm16(&wa, 0), wav::channel_pcm16(&w, 0));
    assert!(bin().arg("detect").arg(&output).output().unwrap().stdout.is_empty());
}

fn assert_fails_cleanly(args: &[&str], input: &Path, output: &Path, needle: &str) {
    let _ = std::fs::remove_file(output);
    let out = bin().arg("mask").args(args).arg(input).arg("-o").arg(output).output().unwrap();
    assert!(!out.status.success(), "must fail: {args:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("cardveil: error: ") && err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(!output.exists(), "a failed run left {}", output.display());
    let dir = output.parent().unwrap();
    let name = output.file_name().unwrap().to_string_lossy().into_owned();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!(".{name}.cardveil-tmp")))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_and_options_fail_with_one_line_and_leave_no_file() {
    let (pcm, _) = synthesize(8000);
    let good = tmp("good.wav");
    write_wav(&good, Encoding::Pcm16, 8000, &[pcm]);
    let out = tmp("never.wav");
    let bytes = std::fs::read(&good).unwrap();
    let truncated = tmp("trunc.wav");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_cleanly(&[], &truncated, &out, "truncated");
    let junk = tmp("junk.wav");
    std::fs::write(&junk, b"RIFF but not really").unwrap();
    assert_fails_cleanly(&[], &junk, &out, "not a WAV");
    assert_fails_cleanly(&[], &tmp("missing.wav"), &out, "cannot read");
    assert_fails_cleanly(&["--mode", "beep"], &good, &out, "unknown mode");
    assert_fails_cleanly(&["--lookahead-ms", "500"], &good, &out, "too long");
    assert_fails_cleanly(&["--lookahead-ms", "-3"], &good, &out, "-3");
    assert_fails_cleanly(&["--bogus"], &good, &out, "--bogus");
    // An output directory that does not exist: the write fails, nothing is left.
    let nowhere = tmp("no-such-dir").join("out.wav");
    let r = bin().arg("mask").arg(&good).arg("-o").arg(&nowhere).output().unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot write"));
    assert!(!nowhere.exists());
}

#[test]
fn a_short_lookahead_still_aligns_the_output() {
    let (pcm, _) = synthesize(8000);
    let input = tmp("la.wav");
    write_wav(&input, Encoding::Pcm16, 8000, std::slice::from_ref(&pcm));
    for la in ["0", "5", "17", "200"] {
        let output = tmp(&format!("la-{la}.wav"));
        let out = bin().args(["mask", "--lookahead-ms", la]).arg(&input).arg("-o").arg(&output).output().unwrap();
        assert!(out.status.success());
        let b = std::fs::read(&output).unwrap();
        let masked = wav::channel_pcm16(&wav::parse(&b).unwrap(), 0);
        assert_eq!(masked.len(), pcm.len());
        // Aligned: the first 300 ms (before the first key) are identical.
        assert_eq!(&masked[..2400], &pcm[..2400], "look-ahead {la}");
    }
}
