//! Any bytes: the WAV parser returns a format and data inside the input, or
//! an error; it never panics. The stream reader, read in odd-sized pieces,
//! yields exactly what the parser does.
#![no_main]
use cardveil_core::codec::wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = wav::parse(data);
    if let Ok(w) = &parsed {
        assert!(w.data_offset + w.data.len() <= data.len());
        assert_eq!(w.data.len() % w.format.frame_bytes(), 0);
        for ch in 0..w.format.channels as usize {
            let pcm = wav::channel_pcm16(w, ch);
            assert_eq!(pcm.len(), w.data.len() / w.format.frame_bytes());
        }
    }
    let streamed = (|| {
        let mut r = wav::WavReader::new(data)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 13];
        loop {
            let n = r.read_frames(&mut buf)?;
            if n == 0 {
                return Ok::<_, wav::WavReadError>((r.format(), out));
            }
            out.extend_from_slice(&buf[..n]);
        }
    })();
    match (parsed, streamed) {
        (Ok(w), Ok((format, out))) => assert!(w.format == format && w.data == &out[..]),
        (Err(a), Err(wav::WavReadError::Format(b))) => assert_eq!(a, b),
        (a, b) => panic!("parser and stream reader disagree: {a:?} vs {b:?}"),
    }
});
