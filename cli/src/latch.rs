//! Symmetric latching under the fail-closed rules, shared by both relays
//! (`cardveil relay --listen` and the ng relay): a media port learns its
//! peer's address from the first inspectable RTP packet it receives and
//! keeps its SSRC; it moves to a new address only for RTP of the same SSRC
//! (a NAT rebinding) or for a new SSRC that has sent [`RELATCH_PACKETS`]
//! inspectable packets in a row from there. Anything else from a stranger
//! is dropped, never relayed. No allocation.

use std::net::SocketAddr;

use cardveil_core::rtp::{PT_CN, PT_PCMA, PT_PCMU, RtpHeader};

/// Inspectable RTP packets in a row a new SSRC must send from a new
/// address before the relay latches onto it.
pub const RELATCH_PACKETS: u8 = 5;

/// What a port has latched onto, and a challenger for it.
#[derive(Debug, Clone, Copy)]
pub struct Latch {
    /// The peer's address and SSRC.
    latched: Option<(SocketAddr, u32)>,
    /// A new address and SSRC, with the packets it sent in a row.
    challenger: Option<(SocketAddr, u32, u8)>,
    /// The telephone-event payload type (inspectable RTP).
    event_pt: u8,
}

/// A latch's answer for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// From the latched peer.
    Peer,
    /// It moved the latch to its sender (the new peer).
    Moved(SocketAddr),
    /// A stranger's: drop it.
    Stranger,
}

impl Latch {
    /// A latch with no peer yet.
    pub fn new(event_pt: u8) -> Latch {
        Latch { latched: None, challenger: None, event_pt }
    }

    /// The peer latched onto, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.latched.map(|(a, _)| a)
    }

    /// Whether a datagram from `src` (its RTP header `h`, if it parses)
    /// comes from the peer; latches onto it under the rules above.
    pub fn admit(&mut self, src: SocketAddr, h: Option<&RtpHeader>) -> Admit {
        let event_pt = self.event_pt;
        let rtp = h.filter(|h| matches!(h.payload_type, PT_PCMU | PT_PCMA | PT_CN) || h.payload_type == event_pt);
        let (to, ssrc) = match (self.latched, rtp) {
            (Some((addr, _)), _) if addr == src => return Admit::Peer,
            (None, Some(h)) => (src, h.ssrc),
            (Some((_, ssrc)), Some(h)) if h.ssrc == ssrc => (src, ssrc),
            (Some(_), Some(h)) => {
                let n = match self.challenger {
                    Some((a, s, n)) if a == src && s == h.ssrc => n + 1,
                    _ => 1,
                };
                self.challenger = Some((src, h.ssrc, n));
                if n < RELATCH_PACKETS {
                    return Admit::Stranger;
                }
                (src, h.ssrc)
            }
            (_, None) => return Admit::Stranger,
        };
        self.latched = Some((to, ssrc));
        self.challenger = None;
        Admit::Moved(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pt: u8, ssrc: u32) -> RtpHeader {
        let mut p = vec![0x80, pt, 0, 1, 0, 0, 0, 160];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        RtpHeader::parse(&p).unwrap()
    }

    #[test]
    fn latches_on_inspectable_rtp_and_resists_strangers() {
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:4000".parse().unwrap(), "127.0.0.1:5000".parse().unwrap());
        let mut l = Latch::new(101);
        assert_eq!(l.admit(a, None), Admit::Stranger, "junk never latches");
        assert_eq!(l.admit(a, Some(&header(96, 1))), Admit::Stranger, "nor RTP cardveil cannot inspect");
        assert_eq!(l.admit(a, Some(&header(PT_PCMU, 1))), Admit::Moved(a));
        assert_eq!(l.admit(a, None), Admit::Peer);
        // The same SSRC from elsewhere: a NAT rebinding, followed at once.
        assert_eq!(l.admit(b, Some(&header(PT_PCMU, 1))), Admit::Moved(b));
        // A new SSRC from elsewhere needs RELATCH_PACKETS in a row.
        for _ in 1..RELATCH_PACKETS {
            assert_eq!(l.admit(a, Some(&header(PT_PCMA, 2))), Admit::Stranger);
        }
        assert_eq!(l.admit(a, Some(&header(PT_PCMA, 2))), Admit::Moved(a));
        assert_eq!(l.peer(), Some(a));
    }
}
