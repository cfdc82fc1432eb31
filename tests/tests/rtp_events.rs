//! RFC 4733 telephone-events in the captures that Debian's sip-tester ships
//! (/usr/share/sip-tester/dtmf_2833_*.pcap, one key each): the tracker
//! reports exactly that key, once, ended; after `neutralise` every packet
//! still parses and no capture carries a DTMF key. (A small pcap walker for
//! the test: Ethernet, IPv4, UDP; the product's own pcap reader is the
//! pcap issue's.)

use cardveil_core::dtmf::Key;
use cardveil_core::rtp::{EventKey, EventTracker, RtpHeader, TelephoneEvent, neutralise};

/// The UDP payloads of an Ethernet/IPv4 libpcap file, as (offset, length) in `file`.
fn udp_payloads(file: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&file[..4], &[0xD4, 0xC3, 0xB2, 0xA1], "little-endian libpcap");
    assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 1, "Ethernet");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = at + 16;
        at = frame + caplen;
        let f = &file[frame..at.min(file.len())];
        if f.len() < 14 + 20 + 8 || f[12..14] != [0x08, 0x00] {
            continue;
        }
        let ihl = (f[14] & 0x0F) as usize * 4;
        if f[14 + 9] != 17 {
            continue;
        }
        let udp = 14 + ihl;
        let len = u16::from_be_bytes([f[udp + 4], f[udp + 5]]) as usize;
        out.push((frame + udp + 8, len - 8));
    }
    out
}

fn keys(file: &[u8], payloads: &[(usize, usize)]) -> Vec<EventKey> {
    let mut tracker = EventTracker::new();
    let mut out = Vec::new();
    for &(at, len) in payloads {
        let packet = &file[at..at + len];
        let h = RtpHeader::parse(packet).expect("RTP");
        if h.payload_type == 101 {
            let e = TelephoneEvent::parse(h.payload(packet)).expect("an event block");
            tracker.packet(h.timestamp, &e, |k| out.push(k));
        }
    }
    out
}

#[test]
fn every_sip_tester_capture_gives_its_key_once_and_none_after_neutralising() {
    let dir = std::path::Path::new("/usr/share/sip-tester");
    if !dir.join("dtmf_2833_0.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester is required in CI (apt-get install sip-tester)");
        eprintln!("SKIPPED: apt-get install sip-tester for its RTP captures");
        return;
    }
    let names: Vec<(String, char)> = (0..10)
        .map(|d| (format!("dtmf_2833_{d}.pcap"), char::from(b'0' + d)))
        .chain([("dtmf_2833_pound.pcap".to_owned(), '#'), ("dtmf_2833_star.pcap".to_owned(), '*')])
        .collect();
    for (name, want) in names {
        let mut file = std::fs::read(dir.join(&name)).unwrap();
        let payloads = udp_payloads(&file);
        let got = keys(&file, &payloads);
        let key = Key::from_char(want).unwrap();
        assert_eq!(got.len(), 2, "{name}: {got:?}");
        assert!(matches!(got[0], EventKey::Down { key: k, .. } if k == key), "{name}: {got:?}");
        assert!(
            matches!(got[1], EventKey::Up { key: k, ended: true, duration, .. } if k == key && duration > 0),
            "{name}: {got:?}"
        );
        // Rewrite every event payload in place to a non-DTMF code (16, flash).
        let mut events = 0;
        for &(at, len) in &payloads {
            let h = RtpHeader::parse(&file[at..at + len]).unwrap();
            if h.payload_type == 101 {
                events += neutralise(h.payload_mut(&mut file[at..at + len]), 16);
            }
        }
        assert!(events >= 3, "{name}: {events} event packets");
        assert_eq!(udp_payloads(&file).len(), payloads.len(), "{name}: packet count changed");
        assert!(keys(&file, &payloads).is_empty(), "{name}: a key survived");
    }
}
