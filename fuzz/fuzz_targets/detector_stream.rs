//! Any samples, any chunking, any rate and profile: the detector never
//! panics, its events are well formed, and chunking does not change them.
#![no_main]
use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, Profile};
use libfuzzer_sys::fuzz_target;

fn run(config: DetectorConfig, samples: &[i16], chunk: usize) -> Vec<DetectorEvent> {
    let mut det = Detector::new(config).unwrap();
    let mut events = Vec::new();
    for c in samples.chunks(chunk.max(1)) {
        det.process(c, |e| events.push(e));
    }
    det.finish(|e| events.push(e));
    events
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let rate = [8000, 16000, 48000][data[0] as usize % 3];
    let profile = [Profile::Q24, Profile::Etsi, Profile::Ntt][(data[0] / 3) as usize % 3];
    let chunk = 1 + data[1] as usize * 7;
    let samples: Vec<i16> = data[2..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let config = DetectorConfig { sample_rate: rate, profile };
    let a = run(config, &samples, chunk);
    let b = run(config, &samples, samples.len());
    assert_eq!(a, b);
    for e in &a {
        if let DetectorEvent::Up(p) = e {
            assert!(p.start < p.end);
        }
    }
});
