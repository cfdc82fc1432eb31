//! Any audio, any frame sizes, any encoding, mode and look-ahead, and any
//! sequence of two-phase calls (timestamps jumping, repeating, going back):
//! the maskers never panic, the look-ahead masker's output does not depend
//! on the frame sizes, and outside masked spans it is the input delayed.
#![no_main]
use cardveil_core::codec::Encoding;
use cardveil_core::mask::{
    MaskMode, MaskedSpan, Masker, MaskerConfig, MaskerEvent, TwoPhaseMasker, ZERO_LEAK_LOOKAHEAD_MS,
};
use libfuzzer_sys::fuzz_target;

fn delay_line(config: MaskerConfig, input: &[i16], sizes: &[u8]) -> (Vec<i16>, Vec<MaskedSpan>) {
    let mut m = Masker::new(config).unwrap();
    let mut out = input.to_vec();
    let mut spans = Vec::new();
    let mut on = |e| {
        if let MaskerEvent::Masked(s) = e {
            spans.push(s)
        }
    };
    let mut pos = 0;
    let mut i = 0;
    while pos < out.len() {
        let n = (1 + sizes.get(i % sizes.len().max(1)).copied().unwrap_or(159) as usize * 3).min(out.len() - pos);
        let frame = &mut out[pos..pos + n];
        if config.encoding == Encoding::Pcm16 {
            m.process_pcm16(frame, &mut on).unwrap();
        } else {
            let mut b: Vec<u8> = frame.iter().map(|&c| c as u8).collect();
            m.process_g711(&mut b, &mut on).unwrap();
            frame.iter_mut().zip(b).for_each(|(f, b)| *f = b as i16);
        }
        pos += n;
        i += 1;
    }
    m.finish(&mut on);
    (out, spans)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let encoding = [Encoding::Pcm16, Encoding::Ulaw, Encoding::Alaw][data[0] as usize % 3];
    let rate = if encoding == Encoding::Pcm16 { [8000, 16000, 48000][data[1] as usize % 3] } else { 8000 };
    let mode = [MaskMode::Silence, MaskMode::Noise, MaskMode::Tone][data[2] as usize % 3];
    let lookahead_ms = data[3] as u32 % 201;
    let config = MaskerConfig { sample_rate: rate, encoding, lookahead_ms, mode, ..MaskerConfig::default() };
    let sizes = &data[4..8];
    let body = &data[8..];
    let input: Vec<i16> = if encoding == Encoding::Pcm16 {
        body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
    } else {
        body.iter().map(|&b| b as i16).collect()
    };
    let (a, spans) = delay_line(config, &input, sizes);
    if lookahead_ms >= ZERO_LEAK_LOOKAHEAD_MS {
        // Shorter look-aheads mask from as early as each frame still allows.
        let (b, _) = delay_line(config, &input, &[255]);
        assert_eq!(a, b, "frame sizes changed the output");
    }
    let delay = (rate as u64 * lookahead_ms as u64 / 1000) as usize;
    for n in delay..a.len() {
        let src = (n - delay) as u64;
        if !spans.iter().any(|s| s.start <= src && src < s.end) {
            assert_eq!(a[n], input[n - delay], "unmasked sample {n} changed");
        }
    }

    // Two-phase: the body's first bytes drive timestamps, then audio.
    let mut t = TwoPhaseMasker::new(config).unwrap();
    let mut ts = 0u32;
    for (k, step) in body.chunks(7).enumerate() {
        ts = ts.wrapping_add((step[0] as i8 as i32 * 40) as u32);
        let n = 1 + step.get(1).copied().unwrap_or(0) as usize;
        let mut frame: Vec<i16> = input.iter().cycle().skip(k).take(n).copied().collect();
        if encoding == Encoding::Pcm16 {
            if k % 2 == 0 {
                t.analyse_pcm16(&frame, ts, |_| {}).unwrap();
            } else {
                t.mask_pcm16(&mut frame, ts).unwrap();
            }
        } else {
            let mut bytes: Vec<u8> = frame.iter().map(|&c| c as u8).collect();
            if k % 2 == 0 {
                t.analyse_g711(&bytes, ts, |_| {}).unwrap();
            } else {
                t.mask_g711(&mut bytes, ts).unwrap();
            }
        }
    }
    t.finish(|_| {});
});
