//! Any bytes: the WAV parser returns a format and data inside the input, or
//! an error; it never panics.
#![no_main]
use cardveil_core::codec::wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = wav::parse(data) {
        assert!(w.data_offset + w.data.len() <= data.len());
        assert_eq!(w.data.len() % w.format.frame_bytes(), 0);
        for ch in 0..w.format.channels as usize {
            let pcm = wav::channel_pcm16(&w, ch);
            assert_eq!(pcm.len(), w.data.len() / w.format.frame_bytes());
        }
    }
});
