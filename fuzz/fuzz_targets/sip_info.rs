//! Arbitrary SIP INFO bodies of both DTMF content types: parsing and
//! rewriting never panic; a rewritten body carries the fixed key only.
#![no_main]
use cardveil_core::dtmf::Key;
use cardveil_core::rtp::{parse_info, rewrite_info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
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
