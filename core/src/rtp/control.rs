//! What may share a media stream's 5-tuple besides RTP and still pass as
//! itself: RTCP (RFC 3550 §6, multiplexed per RFC 5761), STUN (RFC 8489,
//! ICE connectivity checks) and DTLS (RFC 9147, DTLS-SRTP keying), each
//! recognised positively — by RFC 7983's first-byte ranges *and* the
//! protocol's own structure. A datagram of a media stream that is neither
//! RTP cardveil can inspect nor one of these carries something cardveil
//! cannot look into, and fails closed (dropped, or blanked in a capture).

/// A recognised non-RTP datagram of a media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A (compound) RTCP packet: every part version 2, packet type 192–223,
    /// lengths adding up to the datagram's.
    Rtcp,
    /// A STUN message: magic cookie, length matching the datagram.
    Stun,
    /// One or more DTLS records, lengths adding up to the datagram's.
    Dtls,
}

/// STUN's magic cookie (RFC 8489 §6).
const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// STUN header bytes.
const STUN_HEADER: usize = 20;
/// DTLS record header bytes (type, version, epoch, sequence, length).
const DTLS_HEADER: usize = 13;
/// RTCP packet types (second byte) as RFC 5761 §4 sets them apart from RTP.
const RTCP_TYPES: std::ops::RangeInclusive<u8> = 192..=223;

/// Whether `datagram` is RTCP, STUN or DTLS (see the module docs).
pub fn recognise(datagram: &[u8]) -> Option<Control> {
    let first = *datagram.first()?;
    match first {
        0..=3 => stun(datagram).then_some(Control::Stun),
        20..=63 => dtls(datagram).then_some(Control::Dtls),
        128..=191 => rtcp(datagram).then_some(Control::Rtcp),
        _ => None,
    }
}

fn stun(d: &[u8]) -> bool {
    d.len() >= STUN_HEADER
        && d[4..8] == STUN_COOKIE
        && u16::from_be_bytes([d[2], d[3]]) as usize + STUN_HEADER == d.len()
        && d.len().is_multiple_of(4)
}

fn dtls(d: &[u8]) -> bool {
    let mut at = 0;
    while at < d.len() {
        let Some(h) = d.get(at..at + DTLS_HEADER) else { return false };
        // Content types 20–25 (change_cipher_spec … ack); versions 1.0 (FE FF), 1.2 (FE FD).
        if !(20..=25).contains(&h[0]) || h[1] != 0xFE || !matches!(h[2], 0xFD | 0xFF) {
            return false;
        }
        at += DTLS_HEADER + u16::from_be_bytes([h[11], h[12]]) as usize;
    }
    at == d.len()
}

fn rtcp(d: &[u8]) -> bool {
    let mut at = 0;
    while at < d.len() {
        let Some(h) = d.get(at..at + 4) else { return false };
        if h[0] >> 6 != 2 || !RTCP_TYPES.contains(&h[1]) {
            return false;
        }
        at += 4 * (u16::from_be_bytes([h[2], h[3]]) as usize + 1);
    }
    at == d.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_stun_and_dtls_are_recognised_and_nothing_else() {
        // A receiver report (8 bytes) followed by an SDES of one word.
        let rr = [0x80, 201, 0, 1, 1, 2, 3, 4, 0x81, 202, 0, 0];
        assert_eq!(recognise(&rr), Some(Control::Rtcp));
        assert_eq!(recognise(&rr[..10]), None, "lengths must add up");
        let mut stun = vec![0, 1, 0, 4];
        stun.extend_from_slice(&STUN_COOKIE);
        stun.extend_from_slice(&[7; 12]);
        stun.extend_from_slice(&[0x80, 0x22, 0, 0]);
        assert_eq!(recognise(&stun), Some(Control::Stun));
        stun[4] = 0;
        assert_eq!(recognise(&stun), None, "no cookie");
        let mut dtls = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 1, 2, 3];
        assert_eq!(recognise(&dtls), Some(Control::Dtls));
        dtls.push(9);
        assert_eq!(recognise(&dtls), None, "a trailing byte");
        // RTP (PCMU, PT 0; telephone-event 101 with the marker) is not control.
        let rtp = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(recognise(&rtp), None);
        assert_eq!(recognise(&[0x80, 0x80 | 101, 0, 1]), None);
        assert_eq!(recognise(&[]), None);
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            let _ = recognise(&junk);
        }
    }
}
