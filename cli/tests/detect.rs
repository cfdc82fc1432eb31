//! `cardveil detect` end to end: the real binary on generated WAV files.

mod common;

use std::process::Output;

use common::{FORMATS, bin, field, lines, write_wav};

use cardveil_cli::example::{KEYS, synthesize};
use cardveil_core::codec::Encoding;

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("detect", name)
}

/// (digit, start_ms, end_ms, channel) parsed from the JSON lines.
fn parse_lines(out: &Output) -> Vec<(char, f64, f64, Option<u32>)> {
    lines(out)
        .iter()
        .map(|l| {
            assert!(l.starts_with("{\"digit\":\"") && l.ends_with('}'), "not SPEC's JSON line: {l}");
            let field = |name: &str| field(l, name);
            (
                field("digit").unwrap().trim_matches('"').chars().next().unwrap(),
                field("start_ms").unwrap().parse().unwrap(),
                field("end_ms").unwrap().parse().unwrap(),
                field("channel").map(|c| c.parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn prints_exactly_the_keyed_card_number_with_times_for_every_format() {
    for (encoding, rate) in FORMATS {
        let (pcm, truth) = synthesize(rate);
        let path = tmp(&format!("card-{encoding:?}-{rate}.wav"));
        write_wav(&path, encoding, rate, &[pcm]);
        let out = bin().arg("detect").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty());
        let lines = parse_lines(&out);
        let keys: String = lines.iter().map(|l| l.0).collect();
        assert_eq!(keys, KEYS, "{encoding:?} {rate}");
        for (l, (_, s, e)) in lines.iter().zip(&truth) {
            let ms = |x: u64| x as f64 * 1000.0 / rate as f64;
            assert!((l.1 - ms(*s)).abs() <= 5.0 && (l.2 - ms(*e)).abs() <= 5.0, "{l:?} vs {s}..{e}");
            assert_eq!(l.3, None, "mono output has no channel");
        }
    }
}

#[test]
fn stereo_reports_each_leg_with_its_channel() {
    let (pcm, _) = synthesize(8000);
    let silent = vec![0i16; pcm.len()];
    let path = tmp("stereo.wav");
    write_wav(&path, Encoding::Ulaw, 8000, &[silent, pcm]);
    let out = bin().arg("detect").arg(&path).output().unwrap();
    assert!(out.status.success());
    let lines = parse_lines(&out);
    assert_eq!(lines.iter().map(|l| l.0).collect::<String>(), KEYS);
    assert!(lines.iter().all(|l| l.3 == Some(1)));
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "must fail");
    assert!(out.stdout.is_empty(), "no output on failure");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("cardveil: error: "), "{err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn bad_input_gets_one_line_and_a_nonzero_exit() {
    let missing = tmp("does-not-exist.wav");
    assert_one_line_error(&bin().arg("detect").arg(&missing).output().unwrap(), "cannot read");

    let not_wav = tmp("not.wav");
    std::fs::write(&not_wav, b"this is not audio at all").unwrap();
    assert_one_line_error(&bin().arg("detect").arg(&not_wav).output().unwrap(), "not a WAV");

    let (pcm, _) = synthesize(8000);
    let good = tmp("good.wav");
    write_wav(&good, Encoding::Pcm16, 8000, std::slice::from_ref(&pcm));
    let bytes = std::fs::read(&good).unwrap();
    let truncated = tmp("truncated.wav");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_one_line_error(&bin().arg("detect").arg(&truncated).output().unwrap(), "truncated");

    let rate = tmp("rate.wav");
    write_wav(&rate, Encoding::Pcm16, 22050, &[pcm[..1000].to_vec()]);
    assert_one_line_error(&bin().arg("detect").arg(&rate).output().unwrap(), "sample rate 22050");

    let ulaw16k = tmp("ulaw16k.wav");
    write_wav(&ulaw16k, Encoding::Ulaw, 16000, &[pcm[..1000].to_vec()]);
    assert_one_line_error(&bin().arg("detect").arg(&ulaw16k).output().unwrap(), "sample rate 16000");

    let three = tmp("three.wav");
    write_wav(&three, Encoding::Pcm16, 8000, &[pcm[..100].to_vec(), pcm[..100].to_vec(), pcm[..100].to_vec()]);
    assert_one_line_error(&bin().arg("detect").arg(&three).output().unwrap(), "channel count 3");

    let float = tmp("float.wav");
    let mut f = bytes.clone();
    f[20] = 3;
    std::fs::write(&float, f).unwrap();
    assert_one_line_error(&bin().arg("detect").arg(&float).output().unwrap(), "unsupported WAV encoding");

    assert_one_line_error(&bin().args(["detect", "--frobnicate"]).arg(&good).output().unwrap(), "--frobnicate");
    assert_one_line_error(
        &bin().args(["detect", "--profile", "bogus"]).arg(&good).output().unwrap(),
        "unknown profile",
    );
    assert_one_line_error(&bin().arg("detect").output().unwrap(), "required");
}

#[test]
fn example_writes_a_file_that_detect_reads_and_fails_cleanly() {
    for enc in ["pcm16", "ulaw", "alaw"] {
        let path = tmp(&format!("example-{enc}.wav"));
        let st = bin().args(["example", "--encoding", enc]).arg(&path).status().unwrap();
        assert!(st.success());
        let out = bin().arg("detect").arg(&path).output().unwrap();
        assert_eq!(parse_lines(&out).iter().map(|l| l.0).collect::<String>(), KEYS);
    }
    let bad_dir = tmp("no-such-dir").join("x.wav");
    assert_one_line_error(&bin().arg("example").arg(&bad_dir).output().unwrap(), "cannot write");
    assert!(!bad_dir.exists());
    assert_one_line_error(
        &bin().args(["example", "--encoding", "ulaw", "--rate", "16000"]).arg(tmp("u16.wav")).output().unwrap(),
        "unsupported rate",
    );
}
