//! Arbitrary bytes after a libpcap header of each supported link type,
//! scrubbed: the reader and scrubber never panic; whatever they accept
//! comes out as a capture the reader accepts again, with every record
//! kept (telephone-events are neutralised, what cannot be inspected is
//! blanked in place, never left out), every datagram of a found stream is
//! RTP, RTCP, STUN or DTLS or carries only zeros, and it scrubs again.
#![no_main]
use cardveil_core::pcap::file::Capture;
use cardveil_core::pcap::net::find_udp;
use cardveil_core::pcap::{PcapEvent, PcapOptions, scrub};
use cardveil_core::rtp::{RtpHeader, recognise};
use libfuzzer_sys::fuzz_target;

const LINKS: [u32; 5] = [0, 1, 101, 113, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut file = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0];
    file.extend_from_slice(&LINKS[sel as usize % LINKS.len()].to_le_bytes());
    // Raw bytes as well as a well-formed header, so both paths are reached.
    let input = if sel & 0x80 != 0 { rest.to_vec() } else { [file, rest.to_vec()].concat() };
    let mut streams = Vec::new();
    let on = &mut |e| {
        if let PcapEvent::Stream(s) = e {
            streams.push((s.src, s.dst));
        }
    };
    let Ok(out) = scrub(&input, &PcapOptions::default(), on) else { return };
    assert_eq!(out.packets_out, out.packets_in, "fail closed by blanking: no record is left out");
    let again = Capture::parse(&out.file).expect("the output reads back");
    assert_eq!(again.records.len(), out.packets_out);
    for r in &again.records {
        let frame = &out.file[r.data.clone()];
        let Some(u) = find_udp(r.link_type, frame) else { continue };
        let p = &frame[u.payload.clone()];
        let sip = p.starts_with(b"INFO ");
        if streams.contains(&(u.src, u.dst)) && !sip && RtpHeader::parse(p).is_err() && recognise(p).is_none() {
            assert!(p.iter().all(|&b| b == 0), "a datagram of a stream passed uninspected");
        }
    }
    let Ok(twice) = scrub(&out.file, &PcapOptions::default(), &mut |_| {}) else { panic!("scrubbed output refused") };
    assert!(twice.packets_out <= out.packets_out);
});
