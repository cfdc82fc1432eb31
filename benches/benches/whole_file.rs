//! Whole runs, end to end: `cardveil detect` and `cardveil mask` over a
//! 2-hour 8 kHz PCM16 WAV file (reading, detection or masking, writing),
//! against spandsp's `dtmf_rx` over the same samples already in memory
//! (detection alone, no I/O), in the same run — and cardveil's detector
//! alone on them, to show what the I/O costs; and `cardveil scrub` over a
//! directory of 16 five-minute files with 1 and 2 jobs.
//!
//! `cargo bench -p cardveil-benches --bench whole_file`
//!
//! The input is `cardveil_benches::call_input` (a 60 s card-entry call,
//! keys 2 % of the time) over and over. Criterion reports time per run
//! (one 2-hour file) and, for scrub, files per second; audio hours per
//! second are 2 h / the time, or 16 × 5 min / the time.

use std::path::{Path, PathBuf};

use cardveil_benches::call_input;
use cardveil_cli::{Cli, run};
use cardveil_core::codec::Encoding;
use cardveil_core::codec::wav::{WavFormat, header};
use cardveil_core::dtmf::{Detector, DetectorConfig};
use cardveil_tests::spandsp::Reference;
use clap::Parser;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cardveil-bench-whole-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `seconds` of the call, repeated, as a PCM16 WAV; its samples.
fn write_call(path: &Path, seconds: usize) -> Vec<i16> {
    let call = call_input(8000);
    let samples: Vec<i16> = call.iter().copied().cycle().take(seconds * 8000).collect();
    let format = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 1 };
    let mut bytes = header(format, (samples.len() * 2) as u32);
    bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
    samples
}

fn cardveil(args: &[&str]) {
    let mut argv = vec!["cardveil"];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    run(Cli::try_parse_from(argv).unwrap(), &mut out).unwrap();
    black_box(out);
}

fn whole_file(c: &mut Criterion) {
    let d = dir();
    let input = d.join("two-hours.wav");
    let output = d.join("two-hours.masked.wav");
    let samples = write_call(&input, 2 * 3600);
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let mut g = c.benchmark_group("whole_file_2h_8khz");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    g.bench_function("cardveil_detect", |b| b.iter(|| cardveil(&["detect", i])));
    g.bench_function("cardveil_mask", |b| b.iter(|| cardveil(&["mask", i, "-o", o])));
    g.bench_function("cardveil_detector_in_memory", |b| {
        b.iter(|| {
            let mut det = Detector::new(DetectorConfig::default()).unwrap();
            let mut keys = 0;
            for frame in samples.chunks(160) {
                det.process(black_box(frame), |_| keys += 1);
            }
            black_box(keys)
        })
    });
    if Reference::new().is_some() {
        g.bench_function("spandsp_dtmf_rx_in_memory", |b| {
            b.iter(|| {
                let mut rx = Reference::new().expect("checked above");
                for frame in samples.chunks(160) {
                    rx.feed(black_box(frame));
                }
            })
        });
    } else {
        eprintln!("spandsp not installed: cardveil only");
    }
    g.finish();

    let tree = d.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for n in 0..16 {
        write_call(&tree.join(format!("call-{n:02}.wav")), 300);
    }
    let mut g = c.benchmark_group("scrub_16_files_of_5_min");
    g.sample_size(10);
    g.throughput(Throughput::Elements(16));
    for jobs in ["1", "2"] {
        let out = d.join(format!("scrubbed-{jobs}"));
        let (t, od) = (tree.to_str().unwrap().to_owned(), out.to_str().unwrap().to_owned());
        g.bench_function(format!("jobs_{jobs}"), |b| {
            b.iter(|| {
                // A fresh output each time: a resumed run would skip everything.
                let _ = std::fs::remove_dir_all(&out);
                cardveil(&["scrub", &t, "--out-dir", &od, "--jobs", jobs]);
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

criterion_group!(benches, whole_file);
criterion_main!(benches);
