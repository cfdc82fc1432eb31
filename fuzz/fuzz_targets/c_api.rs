//! Sequences of C API calls with arbitrary buffers, lengths, directions and
//! enum values, through the `extern "C"` functions: nothing panics (a panic
//! would come back as CARDVEIL_PANIC, which this target refuses), nothing
//! reads or writes out of bounds (the fuzzer's sanitizer), every result is a
//! known code.
#![no_main]
use std::ptr::null_mut;

use cardveil::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next().unwrap_or(0);
    let config = cardveil_engine_config {
        sample_rate: [8000, 16000, 48000, 44100][next() as usize % 4],
        encoding: (next() % 4) as u32,
        lookahead_ms: next() as u32,
        mask_mode: (next() % 4) as u32,
        profile: (next() % 4) as u32,
        ..cardveil_engine_config_default()
    };
    let mut engine = null_mut();
    // SAFETY: valid pointers; the calls below pass NULL, live handles, or
    // buffers with their true lengths, as the API allows.
    unsafe {
        if cardveil_engine_new(&config, &mut engine) != cardveil_result::CARDVEIL_OK {
            return;
        }
        let mut calls: [*mut cardveil_call; 2] = [null_mut(); 2];
        let mut pcm = vec![0i16; 3000];
        let mut codes = vec![0u8; 3000];
        for _ in 0..64 {
            let op = next();
            let k = (op >> 4) as usize % 2;
            let len = (next() as usize) * 12;
            let dir = (next() % 3) as u32;
            for s in pcm.iter_mut().take(len) {
                *s = i16::from_le_bytes([next(), next()]);
            }
            for c in codes.iter_mut().take(len) {
                *c = next();
            }
            let r = match op % 11 {
                0 if calls[k].is_null() && !engine.is_null() => cardveil_call_new(engine, 0, 0, &mut calls[k]),
                9 if calls[k].is_null() && !engine.is_null() => {
                    let rtp = cardveil_rtp_config {
                        event_payload_type: next() as u32,
                        event_action: (next() % 3) as u32,
                        fixed_event: next() as u32 * 2,
                    };
                    cardveil_call_new_rtp(engine, &rtp, 0, 0, &mut calls[k])
                }
                10 => {
                    // An RTP-looking header half the time, then the fuzzer's bytes.
                    if next() % 2 == 0 && len >= 12 {
                        codes[0] = 0x80;
                        codes[1] = [0, 8, 13, 101, 9][next() as usize % 5];
                    }
                    let mut verdict = 0u32;
                    let r = cardveil_call_process_rtp(
                        calls[k],
                        dir,
                        codes.as_mut_ptr(),
                        len.min(codes.len()),
                        &mut verdict,
                    );
                    assert!(r != cardveil_result::CARDVEIL_OK || verdict < 4, "unknown verdict {verdict}");
                    r
                }
                1 => {
                    cardveil_call_free(calls[k]);
                    calls[k] = null_mut();
                    cardveil_result::CARDVEIL_OK
                }
                2 => cardveil_call_process_pcm16(calls[k], dir, pcm.as_mut_ptr(), len.min(pcm.len())),
                3 => cardveil_call_process_ulaw(calls[k], dir, codes.as_mut_ptr(), len.min(codes.len())),
                4 => cardveil_call_process_alaw(calls[k], dir, codes.as_mut_ptr(), len.min(codes.len())),
                5 => cardveil_call_capture_begin(calls[k]),
                6 => cardveil_call_capture_cancel(calls[k]),
                7 => {
                    let mut e = std::mem::zeroed();
                    cardveil_call_poll_event(calls[k], &mut e)
                }
                8 if !engine.is_null() => {
                    cardveil_engine_free(engine);
                    engine = null_mut();
                    cardveil_result::CARDVEIL_OK
                }
                _ => cardveil_call_token(calls[k], null_mut(), 0, null_mut()),
            };
            assert!((r as u32) < 15, "unknown result {r:?}");
            assert_ne!(r, cardveil_result::CARDVEIL_PANIC);
            assert!(!cardveil_result_str(r as u32).is_null());
        }
        for c in calls {
            cardveil_call_free(c);
        }
        cardveil_engine_free(engine);
    }
});
