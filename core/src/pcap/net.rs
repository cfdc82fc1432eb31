//! From a captured frame to its UDP datagram: the link layers (Ethernet
//! with VLAN tags, Linux cooked v1/v2, raw IP, BSD loopback), IPv4 and
//! IPv6 (extension headers walked; fragments left alone), and the UDP
//! checksum recomputed after a payload changes.
//!
//! Lengths are read leniently where real captures get them wrong, so a
//! datagram is never passed over (and copied unscrubbed) for a length: an
//! IPv4 total length of 0 or shorter than its headers (what a capture on
//! the sending host shows under segmentation offload), an IPv6 payload
//! length of 0, and a UDP length of 0 or beyond the IP datagram all mean
//! "up to the end of what the IP datagram holds".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86DD;
const UDP: u8 = 17;
/// Bytes of a UDP header.
const UDP_HEADER: usize = 8;

/// Where a frame's UDP datagram is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    /// Offset of the IP header.
    pub ip_at: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Offset of the UDP header.
    pub udp_at: usize,
    /// The payload's captured bytes.
    pub payload: Range<usize>,
    /// Whether the whole datagram was captured (else the snap length cut it).
    pub complete: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The UDP datagram in `frame` of link type `link`, if it carries one.
pub fn find_udp(link: u32, frame: &[u8]) -> Option<Udp> {
    let (ethertype, ip_at) = match link {
        0 => {
            let f = frame.get(..4)?;
            let family = u32::from_le_bytes([f[0], f[1], f[2], f[3]]).min(u32::from_be_bytes([f[0], f[1], f[2], f[3]]));
            (
                if family == 2 {
                    IPV4
                } else if matches!(family, 24 | 28 | 30) {
                    IPV6
                } else {
                    return None;
                },
                4,
            )
        }
        1 => {
            let mut at = 12;
            let mut t = be16(frame, at)?;
            while t == 0x8100 || t == 0x88A8 {
                at += 4;
                t = be16(frame, at)?;
            }
            (t, at + 2)
        }
        101 => (if frame.first()? >> 4 == 6 { IPV6 } else { IPV4 }, 0),
        113 => (be16(frame, 14)?, 16),
        276 => (be16(frame, 0)?, 20),
        _ => return None,
    };
    match ethertype {
        IPV4 => ipv4(frame, ip_at),
        IPV6 => ipv6(frame, ip_at),
        _ => None,
    }
}

fn ipv4(frame: &[u8], at: usize) -> Option<Udp> {
    let h = frame.get(at..at + 20)?;
    let ihl = (h[0] & 0x0F) as usize * 4;
    if h[0] >> 4 != 4 || ihl < 20 || h[9] != UDP {
        return None;
    }
    let fragment = be16(h, 6)?;
    if fragment & 0x3FFF != 0 {
        return None; // a fragment: the UDP header is in the first one only
    }
    let total = be16(h, 2)? as usize;
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    // Too short for its own headers (0 under segmentation offload): the
    // datagram runs to the end of the frame.
    let end = if total < ihl + UDP_HEADER { frame.len().max(at + ihl) } else { at + total };
    udp(frame, at, false, at + ihl, end, src, dst)
}

fn ipv6(frame: &[u8], at: usize) -> Option<Udp> {
    let h = frame.get(at..at + 40)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    // A payload length of 0 (jumbograms, offload): to the end of the frame.
    let end = match be16(h, 4)? as usize {
        0 => frame.len().max(at + 40),
        n => at + 40 + n,
    };
    let addr = |o: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[o..o + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (mut next, mut hdr) = (h[6], at + 40);
    // Hop-by-hop, routing and destination options; a fragment header stops.
    while matches!(next, 0 | 43 | 60) {
        let e = frame.get(hdr..hdr + 2)?;
        next = e[0];
        hdr += (e[1] as usize + 1) * 8;
    }
    if next != UDP {
        return None;
    }
    udp(frame, at, true, hdr, end, addr(8), addr(24))
}

fn udp(frame: &[u8], ip_at: usize, v6: bool, at: usize, ip_end: usize, src: IpAddr, dst: IpAddr) -> Option<Udp> {
    let h = frame.get(at..at + UDP_HEADER)?;
    if at + UDP_HEADER > ip_end {
        return None;
    }
    let len = be16(h, 4)? as usize;
    // A UDP length that cannot be right (0, below the header, beyond the
    // IP datagram) yields to the IP datagram's end.
    let end = if len < UDP_HEADER || at + len > ip_end { ip_end } else { at + len };
    Some(Udp {
        ip_at,
        v6,
        src: SocketAddr::new(src, be16(h, 0)?),
        dst: SocketAddr::new(dst, be16(h, 2)?),
        udp_at: at,
        payload: at + 8..end.min(frame.len()),
        complete: end <= frame.len(),
    })
}

/// Recomputes the UDP checksum after the payload changed in place. IPv4
/// datagrams sent without one keep none; a datagram cut by the snap length
/// cannot be summed: IPv4 drops its checksum (0, allowed), IPv6 keeps the
/// old one (receivers of the capture will flag it).
pub fn fix_checksum(frame: &mut [u8], u: &Udp) {
    let at = u.udp_at + 6;
    let old = u16::from_be_bytes([frame[at], frame[at + 1]]);
    if !u.v6 && (old == 0 || !u.complete) {
        frame[at..at + 2].copy_from_slice(&[0, 0]);
        return;
    }
    if !u.complete {
        return;
    }
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    let mut sum = pseudo_header(u, (u.payload.end - u.udp_at) as u32);
    sum += ones_sum(&frame[u.udp_at..u.payload.end]);
    let c = fold(sum);
    frame[at..at + 2].copy_from_slice(&(if c == 0 { 0xFFFF } else { c }).to_be_bytes());
}

/// The frame with the UDP payload replaced by `payload` (a different
/// length): IP and UDP lengths, the IPv4 header checksum and the UDP
/// checksum follow. Bytes after the datagram (Ethernet padding) go.
pub fn replace_payload(frame: &[u8], u: &Udp, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(u.payload.start + payload.len());
    out.extend_from_slice(&frame[..u.payload.start]);
    out.extend_from_slice(payload);
    let udp_len = (out.len() - u.udp_at) as u16;
    out[u.udp_at + 4..u.udp_at + 6].copy_from_slice(&udp_len.to_be_bytes());
    if u.v6 {
        let plen = (out.len() - u.ip_at - 40) as u16;
        out[u.ip_at + 4..u.ip_at + 6].copy_from_slice(&plen.to_be_bytes());
    } else {
        let total = (out.len() - u.ip_at) as u16;
        out[u.ip_at + 2..u.ip_at + 4].copy_from_slice(&total.to_be_bytes());
        let ihl = (out[u.ip_at] & 0x0F) as usize * 4;
        out[u.ip_at + 10..u.ip_at + 12].copy_from_slice(&[0, 0]);
        let c = fold(ones_sum(&out[u.ip_at..u.ip_at + ihl]));
        out[u.ip_at + 10..u.ip_at + 12].copy_from_slice(&c.to_be_bytes());
    }
    let fixed = Udp { payload: u.payload.start..out.len(), complete: true, ..u.clone() };
    fix_checksum(&mut out, &fixed);
    out
}

fn pseudo_header(u: &Udp, udp_len: u32) -> u32 {
    let mut sum = 0u32;
    for a in [u.src.ip(), u.dst.ip()] {
        sum += match a {
            IpAddr::V4(a) => ones_sum(&a.octets()),
            IpAddr::V6(a) => ones_sum(&a.octets()),
        };
    }
    sum + UDP as u32 + (udp_len >> 16) + (udp_len & 0xFFFF)
}

fn ones_sum(b: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut pairs = b.chunks_exact(2);
    for p in &mut pairs {
        sum += u16::from_be_bytes([p[0], p[1]]) as u32;
    }
    if let [last] = pairs.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

/// The ones' complement of the folded sum.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/UDP frame with a correct checksum (RFC 768 example
    /// worked by hand: the checksum of the whole datagram incl. the
    /// pseudo-header folds to 0xFFFF when verified).
    fn frame_v4(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&IPV4.to_be_bytes());
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut udp = vec![0x13, 0x88, 0x07, 0xD6, 0, 0, 0x12, 0x34];
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&udp);
        f.extend_from_slice(payload);
        f
    }

    fn verifies(f: &[u8], u: &Udp) -> bool {
        let udp_len = (u.payload.end - u.udp_at) as u32;
        fold(pseudo_header(u, udp_len) + ones_sum(&f[u.udp_at..u.payload.end])) == 0
    }

    #[test]
    fn ipv4_udp_checksums_and_resizing() {
        let mut f = frame_v4(b"hello, odd");
        let u = find_udp(1, &f).unwrap();
        assert_eq!(u.src, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(u.dst, "10.0.0.2:2006".parse().unwrap());
        assert_eq!(&f[u.payload.clone()], b"hello, odd");
        fix_checksum(&mut f, &u);
        assert!(verifies(&f, &u));
        let g = replace_payload(&f, &u, b"a longer payload!");
        let v = find_udp(1, &g).unwrap();
        assert_eq!(&g[v.payload.clone()], b"a longer payload!");
        assert!(verifies(&g, &v));
        assert_eq!(fold(ones_sum(&g[14..34])), 0, "IPv4 header checksum");
        // A zero checksum stays zero; a fragment or TCP is not UDP.
        let mut z = frame_v4(b"xy");
        z[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
        let zu = find_udp(1, &z).unwrap();
        fix_checksum(&mut z, &zu);
        assert_eq!(&z[40..42], &[0, 0]);
        let mut frag = frame_v4(b"xy");
        frag[14 + 6] = 0x20; // MF
        assert_eq!(find_udp(1, &frag), None);
        let mut tcp = frame_v4(b"xy");
        tcp[14 + 9] = 6;
        assert_eq!(find_udp(1, &tcp), None);
        assert_eq!(find_udp(1, &f[..30]), None);
        // The same datagram over other link layers.
        let ip = &f[14..];
        let mut sll = vec![0u8; 16];
        sll[14..16].copy_from_slice(&IPV4.to_be_bytes());
        sll.extend_from_slice(ip);
        assert_eq!(find_udp(113, &sll).unwrap().dst, u.dst);
        let mut sll2 = vec![0u8; 20];
        sll2[0..2].copy_from_slice(&IPV4.to_be_bytes());
        sll2.extend_from_slice(ip);
        assert_eq!(find_udp(276, &sll2).unwrap().src, u.src);
        assert_eq!(find_udp(101, ip).unwrap().src, u.src);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert_eq!(find_udp(0, &null).unwrap().src, u.src);
        let mut vlan = f[..12].to_vec();
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        vlan.extend_from_slice(&f[12..]);
        assert_eq!(find_udp(1, &vlan).unwrap().dst, u.dst);
    }

    #[test]
    fn lengths_that_captures_get_wrong_are_read_leniently() {
        let payload = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFE];
        let f = frame_v4(&payload);
        let want = find_udp(1, &f).unwrap().payload;
        // IPv4 total length 0 (segmentation offload), or shorter than the headers.
        for total in [0u16, 20, 27] {
            let mut g = f.clone();
            g[16..18].copy_from_slice(&total.to_be_bytes());
            let u = find_udp(1, &g).expect("still a datagram");
            assert_eq!((u.payload.clone(), u.complete), (want.clone(), true), "total length {total}");
        }
        // UDP length 65535, one byte more than the datagram, 0, or below the header.
        for len in [65535u16, (8 + payload.len() + 1) as u16, 0, 7] {
            let mut g = f.clone();
            g[38..40].copy_from_slice(&len.to_be_bytes());
            let u = find_udp(1, &g).expect("still a datagram");
            assert_eq!(&g[u.payload.clone()], &payload, "UDP length {len}");
        }
        // Both at once, and a frame cut inside the UDP header is still nothing.
        let mut g = f.clone();
        g[16..18].copy_from_slice(&[0, 0]);
        g[38..40].copy_from_slice(&[0xFF, 0xFF]);
        assert_eq!(&g[find_udp(1, &g).unwrap().payload], &payload);
        assert_eq!(find_udp(1, &f[..14 + 20 + 6]), None);
    }

    #[test]
    fn ipv6_udp_with_an_extension_header() {
        let payload = b"\x80\x00rtp-ish";
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&IPV6.to_be_bytes());
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        ip[4..6].copy_from_slice(&((8 + 8 + payload.len()) as u16).to_be_bytes());
        ip[6] = 0; // hop-by-hop options first
        ip.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        ip.extend_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[UDP, 0, 1, 4, 0, 0, 0, 0]);
        let mut udp = vec![0x27, 0x10, 0x27, 0x12, 0, 0, 0, 0];
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&udp);
        f.extend_from_slice(payload);
        let u = find_udp(1, &f).unwrap();
        assert!(u.v6);
        assert_eq!(u.src, "[fd00::1]:10000".parse().unwrap());
        assert_eq!(&f[u.payload.clone()], payload);
        fix_checksum(&mut f, &u);
        assert!(verifies(&f, &u));
        let g = replace_payload(&f, &u, b"shorter");
        let v = find_udp(1, &g).unwrap();
        assert!(verifies(&g, &v));
        assert_eq!(&g[v.payload.clone()], b"shorter");
    }
}
