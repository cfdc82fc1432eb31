//! Arbitrary SIP INFO bodies of both DTMF content types, and arbitrary
//! whole messages: parsing and rewriting never panic; a rewritten body or
//! message carries the fixed key only, and its Content-Length is right.
#![no_main]
use cardveil_core::dtmf::Key;
use cardveil_core::rtp::{parse_info, rewrite_info, rewrite_message, scrub_message_in_place};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    if kind & 2 != 0 {
        let fixed = Key::from_char('D').unwrap();
        if let Some(r) = rewrite_message(body, fixed) {
            let again = rewrite_message(&r.message, fixed).expect("a rewritten message is still a DTMF INFO");
            assert_eq!(again.key.key, fixed);
            assert_eq!(again.message, r.message, "rewriting is idempotent");
        }
        // The in-place fallback leaves no key but the fixed one.
        let mut scrubbed = body.to_vec();
        if scrub_message_in_place(&mut scrubbed, fixed) {
            assert_eq!(scrubbed.len(), body.len());
            if let Some(r) = rewrite_message(&scrubbed, fixed) {
                assert_eq!(r.key.key, fixed, "a key survived scrubbing in place");
            }
        }
        return;
    }
    let Ok(body) = std::str::from_utf8(body) else { return };
    let content_type = if kind & 1 == 0 { "application/dtmf-relay" } else { "application/dtmf" };
    let fixed = Key::from_char('0').unwrap();
    let parsed = parse_info(content_type, body);
    match rewrite_info(content_type, body, fixed) {
        Some(out) => {
            assert!(parsed.is_some());
            assert_eq!(parse_info(content_type, &out).map(|k| k.key), Some(fixed));
        }
        None => assert!(parsed.is_none()),
    }
});
