//! Shared helpers for cardveil's integration, conformance and differential
//! tests and for the benchmarks: a seeded random source, a stimulus builder
//! that records the truth it generated, a scorer, and (when installed) a thin
//! binding to spandsp's DTMF receiver, the reference detector.
//!
//! This crate is never shipped: it is the only place spandsp (LGPL) is linked.

pub mod alloc;
pub mod conformance;
pub mod masking;
pub mod ngcall;
pub mod overlap;
pub mod pg;
pub mod rng;
pub mod rtpcall;
pub mod spandsp;
pub mod stimulus;
pub mod talkoff;
pub mod tools;

use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, KeyDown, KeyPress, Profile};

/// Everything a detector reported for one signal.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Detections {
    /// Complete key presses, in order.
    pub presses: Vec<KeyPress>,
    /// Confirmations, in order.
    pub downs: Vec<KeyDown>,
}

/// Runs cardveil's detector over `samples` in chunks of `chunk` samples.
pub fn cardveil_detect(rate: u32, profile: Profile, samples: &[i16], chunk: usize) -> Detections {
    let mut det = Detector::new(DetectorConfig { sample_rate: rate, profile }).expect("rate");
    let mut out = Detections::default();
    let mut on = |e: DetectorEvent| match e {
        DetectorEvent::Down(d) => out.downs.push(d),
        DetectorEvent::Up(p) => out.presses.push(p),
    };
    for c in samples.chunks(chunk.max(1)) {
        det.process(c, &mut on);
    }
    det.finish(&mut on);
    out
}

/// The keys of `presses` as a string.
pub fn keys_of(presses: &[KeyPress]) -> String {
    presses.iter().map(|p| p.key.as_char()).collect()
}

/// The `i`-th test PAN: a Visa number `4` + i in 14 digits + a Luhn check digit.
pub fn pan_number(i: u64) -> cardveil_core::capture::Pan {
    let body = format!("4{i:014}");
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    let check = (0..10u8)
        .find(|&c| cardveil_core::capture::luhn(&[digits.as_slice(), &[c]].concat()))
        .expect("one check digit fits");
    cardveil_core::capture::Pan::from_ascii(format!("{body}{check}").as_bytes()).expect("16 digits")
}
