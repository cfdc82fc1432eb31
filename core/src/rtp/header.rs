//! RTP fixed header (RFC 3550 §5.1): version 2, padding, extension,
//! CSRC list, marker, payload type, sequence number, timestamp, SSRC.

/// Why a packet is not RTP (or is malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer than the 12 bytes of the fixed header.
    #[error("packet too short for an RTP header ({0} bytes)")]
    TooShort(usize),
    /// Not version 2.
    #[error("RTP version {0} (expected 2)")]
    Version(u8),
    /// The CSRC list runs past the end of the packet.
    #[error("CSRC list ({0} entries) runs past the end of the packet")]
    Csrc(u8),
    /// The header extension runs past the end of the packet.
    #[error("header extension runs past the end of the packet")]
    Extension,
    /// The padding count is zero or larger than the payload.
    #[error("invalid padding count {0}")]
    Padding(u8),
}

/// A parsed RTP header, with where the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The P bit.
    pub padding: bool,
    /// The X bit.
    pub extension: bool,
    /// Number of CSRC identifiers.
    pub csrc_count: u8,
    /// The M bit (for telephone-events: the first packet of an event).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Offset of the payload in the packet.
    pub payload_offset: usize,
    /// Length of the payload, padding excluded.
    pub payload_len: usize,
}

impl RtpHeader {
    /// Parses the header of `packet`.
    ///
    /// # Errors
    /// [`RtpError`] when the packet is too short, not version 2, or its
    /// CSRC list, extension or padding do not fit.
    pub fn parse(packet: &[u8]) -> Result<RtpHeader, RtpError> {
        RtpHeader::parse_with(packet, false)
    }

    /// Parses the header as [`RtpHeader::parse`] does, except that a zero
    /// padding count reads as no padding. For recognising a stream only:
    /// such a packet is still malformed, and fails closed where it is handled.
    ///
    /// # Errors
    /// As [`RtpHeader::parse`], bar the zero padding count.
    pub fn parse_lenient(packet: &[u8]) -> Result<RtpHeader, RtpError> {
        RtpHeader::parse_with(packet, true)
    }

    fn parse_with(packet: &[u8], zero_pad_ok: bool) -> Result<RtpHeader, RtpError> {
        if packet.len() < 12 {
            return Err(RtpError::TooShort(packet.len()));
        }
        let version = packet[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let padding = packet[0] & 0x20 != 0;
        let extension = packet[0] & 0x10 != 0;
        let csrc_count = packet[0] & 0x0F;
        let mut offset = 12 + 4 * csrc_count as usize;
        if offset > packet.len() {
            return Err(RtpError::Csrc(csrc_count));
        }
        if extension {
            if offset + 4 > packet.len() {
                return Err(RtpError::Extension);
            }
            let words = u16::from_be_bytes([packet[offset + 2], packet[offset + 3]]) as usize;
            offset += 4 + 4 * words;
            if offset > packet.len() {
                return Err(RtpError::Extension);
            }
        }
        let mut end = packet.len();
        if padding {
            let count = packet[end - 1];
            if count == 0 && zero_pad_ok {
                // read as no padding
            } else if count == 0 || count as usize > end - offset {
                return Err(RtpError::Padding(count));
            } else {
                end -= count as usize;
            }
        }
        Ok(RtpHeader {
            padding,
            extension,
            csrc_count,
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7F,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            payload_offset: offset,
            payload_len: end - offset,
        })
    }

    /// The payload of `packet` (which this header was parsed from).
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        &packet[self.payload_offset..self.payload_offset + self.payload_len]
    }

    /// The payload, mutable, for rewriting in place.
    pub fn payload_mut<'a>(&self, packet: &'a mut [u8]) -> &'a mut [u8] {
        &mut packet[self.payload_offset..self.payload_offset + self.payload_len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(first: u8, pt: u8, extra: &[u8], payload: &[u8], pad: u8) -> Vec<u8> {
        let mut p = vec![first, pt, 0x12, 0x34, 0, 0, 0x03, 0x20, 0xDE, 0xAD, 0xBE, 0xEF];
        p.extend_from_slice(extra);
        p.extend_from_slice(payload);
        if pad > 0 {
            p.extend(std::iter::repeat_n(0, pad as usize - 1));
            p.push(pad);
        }
        p
    }

    #[test]
    fn fields_csrc_extension_padding() {
        let p = packet(0x80, 0x80 | 101, &[], &[5, 0x8A, 0x03, 0x20], 0);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!((h.marker, h.payload_type, h.sequence, h.timestamp, h.ssrc), (true, 101, 0x1234, 800, 0xDEADBEEF));
        assert_eq!(h.payload(&p), &[5, 0x8A, 0x03, 0x20]);
        // Two CSRCs, a one-word extension, 3 bytes of padding.
        let extra = [0, 0, 0, 1, 0, 0, 0, 2, 0xBE, 0xDE, 0, 1, 9, 9, 9, 9];
        let p = packet(0x80 | 0x20 | 0x10 | 2, 0, &extra, &[0xFF; 160], 4);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!((h.csrc_count, h.extension, h.padding), (2, true, true));
        assert_eq!((h.payload_offset, h.payload_len), (12 + 8 + 8, 160));
        // Malformed ones are refused, never panic.
        assert_eq!(RtpHeader::parse(&p[..11]), Err(RtpError::TooShort(11)));
        assert_eq!(RtpHeader::parse(&packet(0x40, 0, &[], &[], 0)), Err(RtpError::Version(1)));
        assert_eq!(RtpHeader::parse(&packet(0x8F, 0, &[], &[], 0)), Err(RtpError::Csrc(15)));
        assert_eq!(RtpHeader::parse(&packet(0x90, 0, &[0xBE, 0xDE, 0, 9], &[], 0)), Err(RtpError::Extension));
        let mut bad = packet(0xA0, 0, &[], &[1, 2], 0);
        *bad.last_mut().unwrap() = 7;
        assert_eq!(RtpHeader::parse(&bad), Err(RtpError::Padding(7)));
        let mut zero = packet(0xA0, 0, &[], &[1, 2], 0);
        *zero.last_mut().unwrap() = 0;
        assert_eq!(RtpHeader::parse(&zero), Err(RtpError::Padding(0)));
        let lenient = RtpHeader::parse_lenient(&zero).unwrap();
        assert_eq!((lenient.payload_offset, lenient.payload_len), (12, 2));
        assert_eq!(RtpHeader::parse_lenient(&bad), Err(RtpError::Padding(7)));
        for n in 0..64 {
            let _ = RtpHeader::parse(&p[..n.min(p.len())]);
        }
    }
}
