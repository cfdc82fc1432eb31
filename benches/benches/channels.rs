//! Many channels on one core (issue 18): N channels, each with its own
//! state, one 20 ms frame per channel fed round-robin — as a recorder feeds
//! thousands of calls, so that each channel's state has left the cache by
//! the time its next frame comes — for detection (`Detector`, PCM16) and
//! for masking (`Masker`, μ-law in place, silence, the default 20 ms
//! look-ahead), on the `call` input (60 s of a card-entry call, every
//! channel at its own offset in it), and spandsp's `dtmf_rx` with as many
//! states of its own, in the same run. ns per frame per channel; one core
//! carries 20 ms / that many channels (one leg each).
//!
//! `cargo bench -p cardveil-benches --bench channels`

use cardveil_benches::call_input;
use cardveil_core::codec::{Encoding, ulaw};
use cardveil_core::dtmf::{Detector, DetectorConfig};
use cardveil_core::mask::{Masker, MaskerConfig};
use cardveil_tests::spandsp::Reference;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};

/// Channel counts.
const CHANNELS: [usize; 4] = [1, 100, 1_000, 10_000];
/// Samples in a 20 ms frame at 8 kHz.
const FRAME: usize = 160;

/// Channel `c`'s `t`-th frame: the input from an offset of its own.
fn frame_of(frames: usize, c: usize, t: usize) -> usize {
    (c * 37 + t) % frames
}

fn channels(c: &mut Criterion) {
    let input = call_input(8000);
    let codes: Vec<u8> = input.iter().map(|&s| ulaw::encode(s)).collect();
    let pcm: Vec<&[i16]> = input.chunks_exact(FRAME).collect();
    let law: Vec<&[u8]> = codes.chunks_exact(FRAME).collect();
    let frames = pcm.len();
    let mut g = c.benchmark_group("channels_20ms_frame_8khz_call");
    g.throughput(Throughput::Elements(1));
    for n in CHANNELS {
        let mut detectors: Vec<Detector> = (0..n)
            .map(|_| Detector::new(DetectorConfig { sample_rate: 8000, ..DetectorConfig::default() }).unwrap())
            .collect();
        let (mut next, mut t, mut events) = (0usize, 0usize, 0u64);
        g.bench_function(BenchmarkId::new("detect", n), |b| {
            b.iter(|| {
                detectors[next].process(black_box(pcm[frame_of(frames, next, t)]), |_| events += 1);
                next += 1;
                if next == n {
                    (next, t) = (0, t + 1);
                }
            })
        });
        drop(detectors);
        let config = MaskerConfig { encoding: Encoding::Ulaw, ..MaskerConfig::default() };
        let mut maskers: Vec<Masker> = (0..n).map(|_| Masker::new(config).unwrap()).collect();
        let mut frame = [0u8; FRAME];
        (next, t) = (0, 0);
        g.bench_function(BenchmarkId::new("mask_ulaw_in_place", n), |b| {
            b.iter(|| {
                frame.copy_from_slice(law[frame_of(frames, next, t)]);
                maskers[next].process_g711(black_box(&mut frame), |_| events += 1).unwrap();
                next += 1;
                if next == n {
                    (next, t) = (0, t + 1);
                }
            })
        });
        drop(maskers);
        let spandsp: Option<Vec<Reference>> = (0..n).map(|_| Reference::new()).collect();
        if let Some(mut rx) = spandsp {
            (next, t) = (0, 0);
            g.bench_function(BenchmarkId::new("spandsp_detect", n), |b| {
                b.iter(|| {
                    rx[next].feed(black_box(pcm[frame_of(frames, next, t)]));
                    next += 1;
                    if next == n {
                        (next, t) = (0, t + 1);
                    }
                })
            });
        }
        black_box(events);
    }
    g.finish();
}

criterion_group!(benches, channels);
criterion_main!(benches);
