//! Any samples: G.711 encode/decode is idempotent after one round trip.
#![no_main]
use cardveil_core::codec::{alaw, ulaw};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for b in data.chunks_exact(2) {
        let s = i16::from_le_bytes([b[0], b[1]]);
        let u = ulaw::decode(ulaw::encode(s));
        assert_eq!(ulaw::decode(ulaw::encode(u)), u);
        let a = alaw::decode(alaw::encode(s));
        assert_eq!(alaw::decode(alaw::encode(a)), a);
        assert!((u as i32 - s as i32).abs() <= 1100 && (a as i32 - s as i32).abs() <= 1100);
    }
});
