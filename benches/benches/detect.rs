//! Detector cost per 20 ms frame at 8 kHz, cardveil and spandsp `dtmf_rx`
//! side by side on the same input in the same run.
//!
//! `cargo bench -p cardveil-benches --bench detect`
//!
//! Inputs: `keyed` (keys half the time), `noise` (none), `call` (a 60 s
//! card-entry call, keys 2 % of the time); see `cardveil_benches`.

use cardveil_benches::{call_input, keyed_input, noise_input};
use cardveil_core::dtmf::{Detector, DetectorConfig};
use cardveil_tests::spandsp::Reference;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

fn detect(c: &mut Criterion) {
    for (name, input) in [("keyed", keyed_input(8000)), ("noise", noise_input(8000)), ("call", call_input(8000))] {
        detect_on(c, name, &input);
    }
}

fn detect_on(c: &mut Criterion, name: &str, input: &[i16]) {
    let frames: Vec<&[i16]> = input.chunks_exact(160).collect();
    let mut g = c.benchmark_group(format!("detect_20ms_frame_8khz_{name}"));
    g.throughput(Throughput::Elements(1));
    let mut det = Detector::new(DetectorConfig::default()).unwrap();
    let mut i = 0;
    let mut keys = 0u64;
    g.bench_function("cardveil", |b| {
        b.iter(|| {
            det.process(black_box(frames[i]), |_| keys += 1);
            i = (i + 1) % frames.len();
        })
    });
    if let Some(mut rx) = Reference::new() {
        let mut i = 0;
        g.bench_function("spandsp", |b| {
            b.iter(|| {
                rx.feed(black_box(frames[i]));
                i = (i + 1) % frames.len();
            })
        });
    } else {
        eprintln!("spandsp not installed: cardveil only");
    }
    g.finish();
    black_box(keys);
}

criterion_group!(benches, detect);
criterion_main!(benches);
