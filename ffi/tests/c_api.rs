//! The C ABI called from Rust through its `extern "C"` functions: NULL and
//! error paths, a capture through the host-callback vault, and the
//! real-time proof — with a capture running and cards completing, the
//! per-frame C call allocates nothing (a counting global allocator, per
//! thread, around each frame call).

use cardveil_tests::alloc::{Counting, allocations};
use std::ffi::{CStr, c_char, c_void};
use std::ptr::{null, null_mut};

use cardveil::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `keys` keyed 70 ms on / 80 ms off at 8 kHz, after 200 ms of quiet.
fn keyed(keys: &str) -> Vec<i16> {
    let mut x = vec![0i16; 1600];
    for k in keys.chars() {
        let key = cardveil_core::dtmf::Key::from_char(k).unwrap();
        let (lo, hi) = key.frequencies();
        let a = cardveil_core::dtmf::amplitude_for_dbm0(-10.0);
        let mut g = cardveil_core::dtmf::ToneGenerator::new(8000, [lo, hi], [a, a], [0.0, 0.0]);
        let start = x.len();
        x.resize(start + 560, 0);
        g.fill(&mut x[start..]);
        x.resize(x.len() + 640, 0);
    }
    x.resize(x.len() + 4800, 0);
    x
}

unsafe extern "C" fn host_tokenize(
    user: *mut c_void,
    pan: *const u8,
    pan_len: usize,
    _expiry: *const u8,
    _expiry_len: usize,
    out: *mut c_char,
    cap: usize,
) -> i32 {
    // SAFETY: `user` is the &mut u32 the test passed; `pan` has `pan_len` bytes.
    unsafe {
        *(user as *mut u32) += 1;
        let last = std::slice::from_raw_parts(pan.add(pan_len - 4), 4);
        let token = format!("host_{}\0", std::str::from_utf8(last).unwrap());
        assert!(token.len() <= cap);
        std::ptr::copy_nonoverlapping(token.as_ptr(), out.cast(), token.len());
    }
    0
}

fn event() -> cardveil_event {
    // SAFETY: cardveil_event is plain integers and arrays: all zeros is valid.
    unsafe { std::mem::zeroed() }
}

#[test]
fn null_and_error_paths() {
    // SAFETY: every pointer passed is NULL, valid, or deliberately wrong as the API allows.
    unsafe {
        let config = cardveil_engine_config_default();
        let mut engine = null_mut();
        assert_eq!(cardveil_engine_new(null(), &mut engine), cardveil_result::CARDVEIL_NULL_ARGUMENT);
        assert_eq!(cardveil_engine_new(&config, null_mut()), cardveil_result::CARDVEIL_NULL_ARGUMENT);
        assert!(engine.is_null());
        let bad = cardveil_engine_config { profile: 3, ..config };
        assert_eq!(cardveil_engine_new(&bad, &mut engine), cardveil_result::CARDVEIL_INVALID_ARGUMENT);
        let bad = cardveil_engine_config { token_format: 2, ..config };
        assert_eq!(cardveil_engine_new(&bad, &mut engine), cardveil_result::CARDVEIL_INVALID_ARGUMENT);
        let bad = cardveil_engine_config { actor: c"a\nb".as_ptr(), ..config };
        assert_eq!(cardveil_engine_new(&bad, &mut engine), cardveil_result::CARDVEIL_INVALID_ARGUMENT);
        assert_eq!(cardveil_engine_new(&config, &mut engine), cardveil_result::CARDVEIL_OK);
        let mut call = null_mut();
        assert_eq!(cardveil_call_new(engine, 1999, 1, &mut call), cardveil_result::CARDVEIL_INVALID_ARGUMENT);
        assert_eq!(cardveil_call_new(engine, 0, 0, &mut call), cardveil_result::CARDVEIL_OK);
        let mut pcm = [0i16; 481];
        assert_eq!(
            cardveil_call_process_pcm16(call, 0, pcm.as_mut_ptr(), 481),
            cardveil_result::CARDVEIL_INVALID_LENGTH
        );
        assert_eq!(
            cardveil_call_process_pcm16(call, 5, pcm.as_mut_ptr(), 160),
            cardveil_result::CARDVEIL_INVALID_ARGUMENT
        );
        assert_eq!(cardveil_call_process_ulaw(call, 0, null_mut(), 10), cardveil_result::CARDVEIL_NULL_ARGUMENT);
        assert_eq!(
            cardveil_call_process_ulaw(call, 0, [0u8; 4].as_mut_ptr(), 4),
            cardveil_result::CARDVEIL_WRONG_FRAME_TYPE
        );
        let mut e = event();
        assert_eq!(cardveil_call_poll_event(call, &mut e), cardveil_result::CARDVEIL_NO_EVENT);
        let mut len = 0usize;
        let mut buf = [0 as c_char; 8];
        assert_eq!(cardveil_call_token(call, buf.as_mut_ptr(), 8, &mut len), cardveil_result::CARDVEIL_NO_VAULT);
        cardveil_engine_free(engine);
        cardveil_call_free(call);
        cardveil_call_free(null_mut());
        cardveil_engine_free(null_mut());
        for code in 0..16 {
            assert!(!CStr::from_ptr(cardveil_result_str(code)).to_bytes().is_empty());
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "seconds of audio: far too slow interpreted; the C and Rust runs cover it")]
fn frames_allocate_nothing_while_captures_complete_and_tokens_arrive() {
    let mut host_calls = 0u32;
    let config = cardveil_engine_config {
        vault_kind: cardveil_vault_kind::CARDVEIL_VAULT_HOST as u32,
        host_tokenize: Some(host_tokenize),
        host_user: (&mut host_calls as *mut u32).cast(),
        ..cardveil_engine_config_default()
    };
    let mut caller = keyed("4111111111111111#1229#123#5555555555554444#0130#789#");
    let mut agent = caller.clone();
    let (mut engine, mut call) = (null_mut(), null_mut());
    let (mut in_frames, mut frames) = (0u64, 0u64);
    let mut tokens = Vec::new();
    // SAFETY: valid pointers throughout; frames and control run on this one thread.
    unsafe {
        assert_eq!(cardveil_engine_new(&config, &mut engine), cardveil_result::CARDVEIL_OK);
        assert_eq!(cardveil_call_new(engine, 2026, 11, &mut call), cardveil_result::CARDVEIL_OK);
        cardveil_engine_free(engine);
        assert_eq!(cardveil_call_capture_begin(call), cardveil_result::CARDVEIL_OK);
        for (c, a) in caller.chunks_mut(160).zip(agent.chunks_mut(160)) {
            let before = allocations();
            let r1 = cardveil_call_process_pcm16(call, 0, c.as_mut_ptr(), c.len());
            let r2 = cardveil_call_process_pcm16(call, 1, a.as_mut_ptr(), a.len());
            in_frames += allocations() - before;
            frames += 2;
            assert_eq!((r1, r2), (cardveil_result::CARDVEIL_OK, cardveil_result::CARDVEIL_OK));
            // The event side (allocation allowed here).
            let mut e = event();
            while cardveil_call_poll_event(call, &mut e) == cardveil_result::CARDVEIL_OK {
                if e.kind == cardveil_event_kind::CARDVEIL_EVENT_COMPLETE as u32 {
                    assert_eq!(cardveil_call_capture_begin(call), cardveil_result::CARDVEIL_OK);
                }
                if e.kind == cardveil_event_kind::CARDVEIL_EVENT_TOKEN as u32 {
                    tokens.push(CStr::from_ptr(e.token.as_ptr()).to_str().unwrap().to_owned());
                }
            }
        }
        let mut e = event();
        for _ in 0..2000 {
            if tokens.len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            while cardveil_call_poll_event(call, &mut e) == cardveil_result::CARDVEIL_OK {
                if e.kind == cardveil_event_kind::CARDVEIL_EVENT_TOKEN as u32 {
                    tokens.push(CStr::from_ptr(e.token.as_ptr()).to_str().unwrap().to_owned());
                }
            }
        }
        cardveil_call_free(call);
    }
    assert_eq!(tokens, vec!["host_1111".to_owned(), "host_4444".to_owned()]);
    assert_eq!(host_calls, 2);
    assert_eq!(in_frames, 0, "{in_frames} allocations in {frames} frame calls");
}

/// Small enough for Miri: one key through the frame path, the masked span
/// through the ring, a capture begun and cancelled across the two sides.
#[test]
fn one_key_is_masked_and_reported_through_the_ring() {
    let config = cardveil_engine_config_default();
    let mut pcm = keyed("5");
    pcm.truncate(1600 + 1200 + 800);
    let (mut engine, mut call) = (null_mut(), null_mut());
    let mut kinds = Vec::new();
    // SAFETY: valid pointers; frames and control on this one thread.
    unsafe {
        assert_eq!(cardveil_engine_new(&config, &mut engine), cardveil_result::CARDVEIL_OK);
        assert_eq!(cardveil_call_new(engine, 2026, 11, &mut call), cardveil_result::CARDVEIL_OK);
        cardveil_engine_free(engine);
        assert_eq!(cardveil_call_capture_begin(call), cardveil_result::CARDVEIL_OK);
        for (i, f) in pcm.chunks_mut(160).enumerate() {
            assert_eq!(cardveil_call_process_pcm16(call, 0, f.as_mut_ptr(), f.len()), cardveil_result::CARDVEIL_OK);
            if i == 20 {
                assert_eq!(cardveil_call_capture_cancel(call), cardveil_result::CARDVEIL_OK);
            }
            let mut e = event();
            while cardveil_call_poll_event(call, &mut e) == cardveil_result::CARDVEIL_OK {
                kinds.push(e.kind);
            }
        }
        cardveil_call_free(call);
    }
    use cardveil_event_kind::*;
    let k = |x: cardveil_event_kind| x as u32;
    assert_eq!(kinds.iter().filter(|&&x| x == k(CARDVEIL_EVENT_MASKED)).count(), 1, "{kinds:?}");
    assert_eq!(kinds.first(), Some(&k(CARDVEIL_EVENT_FIELD_STARTED)));
    assert!(kinds.contains(&k(CARDVEIL_EVENT_DIGIT)) && kinds.contains(&k(CARDVEIL_EVENT_CANCELLED)), "{kinds:?}");
    // The key is gone from the output.
    assert!(pcm[1600 + 160..].iter().all(|&s| s.abs() < 100));
}

#[test]
fn an_rtp_packet_with_a_key_is_masked_and_an_event_neutralised() {
    use cardveil_core::codec::ulaw;
    let config = cardveil_engine_config_default();
    let mut pcm = keyed("5");
    pcm.truncate(1600 + 1200 + 800);
    let (mut engine, mut call) = (null_mut(), null_mut());
    let mut out = Vec::new();
    let mut kinds = Vec::new();
    let packet = |pt: u8, seq: u16, ts: u32, payload: &[u8]| {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(payload);
        p
    };
    // SAFETY: valid pointers; packets and control on this one thread.
    unsafe {
        assert_eq!(cardveil_engine_new(&config, &mut engine), cardveil_result::CARDVEIL_OK);
        assert_eq!(cardveil_call_new_rtp(engine, null(), 2026, 11, &mut call), cardveil_result::CARDVEIL_OK);
        cardveil_engine_free(engine);
        let mut verdict = 99u32;
        for (i, f) in pcm.chunks(160).enumerate() {
            let codes: Vec<u8> = f.iter().map(|&s| ulaw::encode(s)).collect();
            let mut p = packet(0, i as u16, (i * 160) as u32, &codes);
            let r = cardveil_call_process_rtp(call, 0, p.as_mut_ptr(), p.len(), &mut verdict);
            assert_eq!((r, verdict), (cardveil_result::CARDVEIL_OK, 0));
            out.extend(p[12..].iter().map(|&c| ulaw::decode(c)));
            let mut e = event();
            while cardveil_call_poll_event(call, &mut e) == cardveil_result::CARDVEIL_OK {
                kinds.push(e.kind);
            }
        }
        let mut ev = packet(101, 99, 1600, &[5, 0x8A, 0x02, 0x30]);
        let r = cardveil_call_process_rtp(call, 1, ev.as_mut_ptr(), ev.len(), &mut verdict);
        assert_eq!((r, verdict, ev[12]), (cardveil_result::CARDVEIL_OK, 0, 15), "neutralised to event 15");
        let mut junk = [0u8; 3];
        let r = cardveil_call_process_rtp(call, 0, junk.as_mut_ptr(), junk.len(), &mut verdict);
        assert_eq!((r, verdict), (cardveil_result::CARDVEIL_OK, cardveil_rtp_verdict::CARDVEIL_RTP_UNKNOWN as u32));
        // Zero padding count: malformed, not sent.
        let mut padded = packet(0, 7, 160, &[0xFF; 160]);
        padded[0] |= 0x20;
        *padded.last_mut().unwrap() = 0;
        let r = cardveil_call_process_rtp(call, 0, padded.as_mut_ptr(), padded.len(), &mut verdict);
        assert_eq!((r, verdict), (cardveil_result::CARDVEIL_OK, cardveil_rtp_verdict::CARDVEIL_RTP_UNKNOWN as u32));
        let mut rtcp = [0x80u8, 201, 0, 1, 1, 2, 3, 4];
        let r = cardveil_call_process_rtp(call, 0, rtcp.as_mut_ptr(), rtcp.len(), &mut verdict);
        assert_eq!((r, verdict), (cardveil_result::CARDVEIL_OK, cardveil_rtp_verdict::CARDVEIL_RTP_NOT_RTP as u32));
        let r = cardveil_call_process_rtp(call, 0, junk.as_mut_ptr(), junk.len(), null_mut());
        assert_eq!(r, cardveil_result::CARDVEIL_NULL_ARGUMENT);
        let mut frame = [0i16; 160];
        let r = cardveil_call_process_pcm16(call, 0, frame.as_mut_ptr(), frame.len());
        assert_eq!(r, cardveil_result::CARDVEIL_WRONG_API);
        cardveil_call_free(call);
    }
    let masked = kinds.iter().filter(|&&k| k == cardveil_event_kind::CARDVEIL_EVENT_MASKED as u32).count();
    assert_eq!(masked, 1, "{kinds:?}");
    assert!(out.iter().all(|&s| s.abs() < 100), "the key is gone from the forwarded audio");
    assert!(pcm.iter().any(|&s| s.abs() > 1000));
}
