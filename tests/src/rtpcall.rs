//! A synthetic call in libpcap form for the pcap and relay tests: the
//! audio of sip-tester's `g711a.pcap` with a card number keyed in band and
//! as RFC 4733 events.

use std::path::Path;

use cardveil_core::codec::alaw;
use cardveil_core::dtmf::{Key, ToneGenerator, amplitude_for_dbm0};
use cardveil_core::pcap::file::Capture;
use cardveil_core::pcap::net::{find_udp, replace_payload};

/// Where Debian's sip-tester keeps its captures.
pub const DIR: &str = "/usr/share/sip-tester";
/// The card keyed.
pub const PAN: &str = "4111111111111111";

/// A synthetic call.
#[derive(Debug)]
pub struct Call {
    /// Frames, as (seconds, link-layer frame).
    pub frames: Vec<(f64, Vec<u8>)>,
    /// Tone spans, in samples of the call's audio.
    pub tones: Vec<(usize, usize)>,
    /// The A-law audio sent (tones included).
    pub audio: Vec<u8>,
    /// Telephone-event packets sent.
    pub events: usize,
}

/// A link layer + IP + UDP frame around `payload` (lengths and checksums
/// set by the product's own writer; tshark checks them afterwards).
pub fn frame(v6: bool, src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = if v6 {
        let mut f = vec![0u8; 16]; // Linux cooked v1
        f[14..16].copy_from_slice(&0x86DDu16.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
        f.extend_from_slice(&"fd00::143".parse::<std::net::Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(&"fd00::618".parse::<std::net::Ipv6Addr>().unwrap().octets());
        f
    } else {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 1, 3, 143, 10, 1, 6, 18]);
        f
    };
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&[0, 8, 0xFF, 0xFF]); // a checksum to be computed
    let link = if v6 { 113 } else { 1 };
    let u = find_udp(link, &f).expect("an empty UDP frame");
    replace_payload(&f, &u, payload)
}

/// An RTP packet of the call's SSRC.
pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0xDEE0_EE8Fu32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// sip-tester's g711a.pcap's audio with [`PAN`] keyed from 2 s (tones
/// replace the audio, as a phone mutes its microphone while keying), each
/// key also sent as telephone-events (PT 101, same SSRC and sequence), and,
/// with `sip_info`, one SIP INFO `Signal=4` (port 5060) at 1.5 s. Ethernet
/// and IPv4 10.1.3.143:5000 → 10.1.6.18:2006, or Linux cooked and IPv6.
pub fn keyed_call(v6: bool, sip_info: bool) -> Call {
    build(v6, sip_info, None)
}

/// [`keyed_call`] (IPv4, no SIP INFO) with the keys *added* to the call's
/// audio instead of replacing it — a caller keying while the line carries
/// speech — each tone `snr_db` above the audio's RMS level over the keyed
/// part (per-tone SNR).
pub fn keyed_over_audio(snr_db: f64) -> Call {
    build(false, false, Some(snr_db))
}

fn build(v6: bool, sip_info: bool, over: Option<f64>) -> Call {
    let file = std::fs::read(Path::new(DIR).join("g711a.pcap")).unwrap();
    let c = Capture::parse(&file).unwrap();
    let mut audio: Vec<u8> = Vec::new();
    for r in &c.records {
        let f = &file[r.data.clone()];
        let u = find_udp(r.link_type, f).unwrap();
        audio.extend_from_slice(&f[u.payload.clone()][12..]);
    }
    let mut pcm: Vec<i16> = audio.iter().map(|&a| alaw::decode(a)).collect();
    let mut tones = Vec::new();
    let mut at = 16_000;
    // Over the audio: each tone's RMS `snr_db` above the keyed part's.
    let keyed = &pcm[at..at + PAN.len() * 1200];
    let rms = (keyed.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / keyed.len() as f64).sqrt();
    let a = over.map_or(amplitude_for_dbm0(-12.0), |snr| rms * std::f64::consts::SQRT_2 * 10f64.powf(snr / 20.0));
    for ch in PAN.chars() {
        let (lo, hi) = Key::from_char(ch).unwrap().frequencies();
        let mut g = ToneGenerator::new(8000, [lo, hi], [a, a], [0.3, 1.1]);
        let (start, end) = (at, at + 560);
        if over.is_some() {
            g.add_to(&mut pcm[start..end]);
        } else {
            pcm[start - 400..start].fill(0);
            g.fill(&mut pcm[start..end]);
            pcm[end..end + 640].fill(0);
        }
        tones.push((start, end));
        at = end + 640;
    }
    let audio: Vec<u8> = pcm.iter().map(|&s| alaw::encode(s)).collect();
    let ts0 = 4_294_900_000u32; // the timestamps wrap during the call
    let mut seq = 65_000u16;
    let mut frames = Vec::new();
    let mut events = 0;
    for (i, chunk) in audio.chunks(240).enumerate() {
        let t = i * 240;
        let secs = t as f64 / 8000.0;
        frames.push((secs, frame(v6, 5000, 2006, &rtp(8, i == 0, seq, ts0.wrapping_add(t as u32), chunk))));
        seq = seq.wrapping_add(1);
        let now = t + 240;
        for (k, &(start, end)) in tones.iter().enumerate() {
            let code = b"0123456789".iter().position(|&d| d == PAN.as_bytes()[k]).unwrap() as u8;
            let mut send = |marker: bool, end_bit: bool, dur: usize| {
                let e = [code, if end_bit { 0x8A } else { 0x0A }, (dur >> 8) as u8, dur as u8];
                let p = rtp(101, marker, seq, ts0.wrapping_add(start as u32), &e);
                frames.push((secs + 0.001, frame(v6, 5000, 2006, &p)));
                seq = seq.wrapping_add(1);
                events += 1;
            };
            if now > start && now <= end {
                send(now - start <= 240, false, now - start);
            } else if now > end && now - end <= 240 {
                for _ in 0..3 {
                    send(false, true, end - start);
                }
            }
        }
        if sip_info && i == 50 {
            let body = "Signal=4\r\nDuration=160\r\n";
            let sip = format!(
                "INFO sip:agent@10.1.6.18 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.3.143:5060\r\nCall-ID: x@y\r\n\
                 CSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            frames.push((secs + 0.002, frame(v6, 5060, 5060, sip.as_bytes())));
        }
    }
    Call { frames, tones, audio, events }
}

/// Writes `frames` as a libpcap file (Ethernet, or Linux cooked for `v6`).
pub fn write_pcap(path: &Path, v6: bool, frames: &[(f64, Vec<u8>)]) {
    let mut f = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0];
    f.extend_from_slice(&(if v6 { 113u32 } else { 1 }).to_le_bytes());
    for (secs, data) in frames {
        let us = (secs * 1e6) as u64;
        for v in
            [(us / 1_000_000) as u32 + 1_700_000_000, (us % 1_000_000) as u32, data.len() as u32, data.len() as u32]
        {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(data);
    }
    std::fs::write(path, f).unwrap();
}
