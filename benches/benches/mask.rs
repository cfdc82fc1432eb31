//! Masking cost per 20 ms frame at 8 kHz: μ-law in, detect + mask + μ-law
//! out, against spandsp `dtmf_rx` detection alone, in the same run.
//!
//! `cargo bench -p cardveil-benches --bench mask`
//!
//! Inputs (`cardveil_benches`): `keyed` (keys half the time: the worst case),
//! `noise` (no keys: speech's stand-in), `call` (60 s of a card-entry call,
//! keys 2 % of the time: the average per channel).
//!
//! * `cardveil_ulaw_in_place_{silence,noise}`: the G.711 frame API (decodes
//!   for analysis, stores and releases the codes themselves, encodes only
//!   replacements), with silence or comfort noise as the replacement;
//! * `cardveil_decode_mask_encode`: a host that decodes μ-law to PCM, masks
//!   PCM (comfort noise) and encodes back — every sample decoded and encoded;
//! * `spandsp`: `dtmf_rx` on the PCM frame, decoded beforehand: detection
//!   alone, as the target is stated (the cardveil rows include the μ-law
//!   decode, the masking and the output).

use cardveil_benches::{call_input, keyed_input, noise_input};
use cardveil_core::codec::{Encoding, ulaw};
use cardveil_core::mask::{MaskMode, Masker, MaskerConfig};
use cardveil_tests::spandsp::Reference;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

fn mask(c: &mut Criterion) {
    for (name, input) in [("keyed", keyed_input(8000)), ("noise", noise_input(8000)), ("call", call_input(8000))] {
        mask_on(c, name, &input);
    }
    let m = Masker::new(MaskerConfig::default()).unwrap();
    let (state, delay) = m.memory();
    eprintln!(
        "masker per channel: {state} bytes of state + {delay} bytes of look-ahead buffers (delay line and window history, 20 ms look-ahead)"
    );
}

fn mask_on(c: &mut Criterion, name: &str, input: &[i16]) {
    let codes: Vec<u8> = input.iter().map(|&s| ulaw::encode(s)).collect();
    let frames: Vec<&[u8]> = codes.chunks_exact(160).collect();
    let mut g = c.benchmark_group(format!("mask_20ms_ulaw_frame_8khz_{name}"));
    g.throughput(Throughput::Elements(1));
    let mut frame = [0u8; 160];
    let mut events = 0u64;
    for (label, mode) in
        [("cardveil_ulaw_in_place_silence", MaskMode::Silence), ("cardveil_ulaw_in_place_noise", MaskMode::Noise)]
    {
        let config = MaskerConfig { encoding: Encoding::Ulaw, mode, ..MaskerConfig::default() };
        let mut m = Masker::new(config).unwrap();
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                frame.copy_from_slice(frames[i]);
                m.process_g711(black_box(&mut frame), |_| events += 1).unwrap();
                i = (i + 1) % frames.len();
            })
        });
    }
    let mut m = Masker::new(MaskerConfig::default()).unwrap();
    let pcm_frames: Vec<[i16; 160]> = frames
        .iter()
        .map(|f| {
            let mut p = [0i16; 160];
            ulaw::decode_into(f, &mut p);
            p
        })
        .collect();
    let mut pcm = [0i16; 160];
    let mut i = 0;
    g.bench_function("cardveil_pcm16_in_place_silence", |b| {
        b.iter(|| {
            pcm.copy_from_slice(&pcm_frames[i]);
            m.process_pcm16(black_box(&mut pcm), |_| events += 1).unwrap();
            i = (i + 1) % frames.len();
        })
    });
    let mut d = cardveil_core::dtmf::Detector::new(cardveil_core::dtmf::DetectorConfig::default()).unwrap();
    let mut i = 0;
    g.bench_function("cardveil_detect_only", |b| {
        b.iter(|| {
            d.process(black_box(&pcm_frames[i]), |_| events += 1);
            i = (i + 1) % frames.len();
        })
    });
    let mut m = Masker::new(MaskerConfig { mode: MaskMode::Noise, ..MaskerConfig::default() }).unwrap();
    i = 0;
    g.bench_function("cardveil_decode_mask_encode", |b| {
        b.iter(|| {
            ulaw::decode_into(black_box(frames[i]), &mut pcm);
            m.process_pcm16(&mut pcm, |_| events += 1).unwrap();
            ulaw::encode_into(&pcm, &mut frame);
            black_box(&frame);
            i = (i + 1) % frames.len();
        })
    });
    if let Some(mut rx) = Reference::new() {
        let mut i = 0;
        g.bench_function("spandsp", |b| {
            b.iter(|| {
                rx.feed(black_box(&pcm_frames[i]));
                i = (i + 1) % frames.len();
            })
        });
    } else {
        eprintln!("spandsp not installed: cardveil only");
    }
    g.finish();
    black_box(events);
}

criterion_group!(benches, mask);
criterion_main!(benches);
