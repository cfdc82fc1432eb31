//! Arbitrary bytes as a stream of RTP packets: the header parser never
//! panics and its payload bounds are inside the packet; the event tracker
//! takes anything; after `neutralise` to a non-DTMF code, no key comes out.
#![no_main]
use cardveil_core::rtp::{EventTracker, RtpHeader, TelephoneEvent, neutralise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tracker = EventTracker::new();
    let mut clean = EventTracker::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let mut packet = tail[..n].to_vec();
        rest = &tail[n..];
        let Ok(h) = RtpHeader::parse(&packet) else { continue };
        assert!(h.payload_offset + h.payload_len <= packet.len());
        if let Some(e) = TelephoneEvent::parse(h.payload(&packet)) {
            tracker.packet(h.timestamp, &e, |_| {});
        }
        neutralise(h.payload_mut(&mut packet), 16);
        if let Some(e) = TelephoneEvent::parse(h.payload(&packet)) {
            clean.packet(h.timestamp, &e, |k| panic!("a key after neutralising: {k:?}"));
        }
    }
});
