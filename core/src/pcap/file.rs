//! The libpcap capture format: a 24-byte global header, then records of a
//! 16-byte header and the captured bytes. Both byte orders, microsecond and
//! nanosecond timestamps. (pcapng is refused with how to convert it.)

use std::ops::Range;

/// Records longer than this are corrupt (libpcap's own limit is 256 KiB).
const MAX_RECORD: usize = 256 * 1024;

/// Why a capture cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// Not a libpcap file at all.
    #[error("not a libpcap capture (starts with {0:02x?})")]
    NotPcap(Vec<u8>),
    /// A pcapng file.
    #[error("pcapng captures are not supported; convert with `editcap -F pcap IN OUT`")]
    Pcapng,
    /// The file ends inside the global header or a record.
    #[error("truncated capture: {0}")]
    Truncated(String),
    /// A record header that cannot be right.
    #[error("corrupt capture: {0}")]
    Corrupt(String),
    /// A link type this reader does not decode.
    #[error(
        "unsupported link type {0} (supported: 0 BSD loopback, 1 Ethernet, 101 raw IP, 113 Linux cooked, 276 Linux cooked v2)"
    )]
    LinkType(u32),
    /// The scrubbing settings cannot be used (a masker configuration error).
    #[error("invalid scrubbing settings: {0}")]
    Settings(String),
}

/// One record: its header fields and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp seconds.
    pub ts_sec: u32,
    /// Timestamp fraction (µs or ns, as the file says).
    pub ts_frac: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes in the file.
    pub data: Range<usize>,
}

/// A parsed capture (borrowing nothing: ranges index the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Whether multi-byte fields are big-endian.
    pub big_endian: bool,
    /// The link type of every record.
    pub link_type: u32,
    /// The records in file order.
    pub records: Vec<Record>,
}

impl Capture {
    /// Reads the structure of a libpcap file.
    ///
    /// # Errors
    /// [`PcapError`] saying what is wrong and where.
    pub fn parse(file: &[u8]) -> Result<Capture, PcapError> {
        if file.len() < 4 {
            return Err(PcapError::Truncated(format!("{} bytes, a libpcap header has 24", file.len())));
        }
        let magic = [file[0], file[1], file[2], file[3]];
        let big_endian = match magic {
            [0xD4, 0xC3, 0xB2, 0xA1] | [0x4D, 0x3C, 0xB2, 0xA1] => false,
            [0xA1, 0xB2, 0xC3, 0xD4] | [0xA1, 0xB2, 0x3C, 0x4D] => true,
            [0x0A, 0x0D, 0x0D, 0x0A] => return Err(PcapError::Pcapng),
            m => return Err(PcapError::NotPcap(m.to_vec())),
        };
        if file.len() < 24 {
            return Err(PcapError::Truncated(format!("{} bytes, a libpcap header has 24", file.len())));
        }
        let u32_at = |at: usize| {
            let b = [file[at], file[at + 1], file[at + 2], file[at + 3]];
            if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        let link_type = u32_at(20) & 0x0FFF_FFFF;
        if !matches!(link_type, 0 | 1 | 101 | 113 | 276) {
            return Err(PcapError::LinkType(link_type));
        }
        let mut records = Vec::new();
        let mut at = 24;
        while at < file.len() {
            let n = records.len() + 1;
            if file.len() - at < 16 {
                return Err(PcapError::Truncated(format!(
                    "record {n} at byte {at}: header needs 16 bytes, {} left",
                    file.len() - at
                )));
            }
            let (ts_sec, ts_frac, incl, orig_len) = (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12));
            let incl = incl as usize;
            if incl > MAX_RECORD {
                return Err(PcapError::Corrupt(format!("record {n} at byte {at} claims {incl} bytes")));
            }
            let start = at + 16;
            if file.len() - start < incl {
                return Err(PcapError::Truncated(format!(
                    "record {n} at byte {at} needs {incl} bytes, {} left",
                    file.len() - start
                )));
            }
            records.push(Record { ts_sec, ts_frac, orig_len, data: start..start + incl });
            at = start + incl;
        }
        Ok(Capture { big_endian, link_type, records })
    }

    /// Appends a record header for `len` captured bytes (wire length
    /// `orig_len`) in the file's byte order.
    pub fn write_record_header(&self, out: &mut Vec<u8>, r: &Record, len: usize, orig_len: u32) {
        for v in [r.ts_sec, r.ts_frac, len as u32, orig_len] {
            out.extend_from_slice(&if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(link: u32) -> Vec<u8> {
        let mut h = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0];
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&link.to_le_bytes());
        h
    }

    #[test]
    fn records_and_errors() {
        let mut f = header(1);
        for len in [3u32, 0, 5] {
            for v in [7u32, 8, len, len + 2] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend(std::iter::repeat_n(0xAA, len as usize));
        }
        let c = Capture::parse(&f).unwrap();
        assert_eq!(c.records.len(), 3);
        assert_eq!(c.records[2].data, 24 + 16 + 3 + 16 + 16..24 + 16 + 3 + 16 + 16 + 5);
        assert_eq!(c.records[0].orig_len, 5);
        let mut out = Vec::new();
        c.write_record_header(&mut out, &c.records[0], 3, 5);
        assert_eq!(out, f[24..40]);

        assert!(matches!(Capture::parse(&f[..f.len() - 1]), Err(PcapError::Truncated(m)) if m.contains("record 3")));
        assert!(matches!(Capture::parse(&f[..30]), Err(PcapError::Truncated(m)) if m.contains("record 1")));
        assert!(matches!(Capture::parse(&f[..10]), Err(PcapError::Truncated(_))));
        assert_eq!(Capture::parse(b"\x0a\x0d\x0d\x0a...."), Err(PcapError::Pcapng));
        assert!(matches!(Capture::parse(b"RIFF....WAVE"), Err(PcapError::NotPcap(_))));
        assert_eq!(Capture::parse(&header(105)), Err(PcapError::LinkType(105)));
        let mut huge = header(1);
        for v in [0u32, 0, 1 << 30, 1 << 30] {
            huge.extend_from_slice(&v.to_le_bytes());
        }
        assert!(matches!(Capture::parse(&huge), Err(PcapError::Corrupt(_))));
        // Big-endian, nanosecond.
        let mut be = vec![0xA1, 0xB2, 0x3C, 0x4D, 0, 2, 0, 4];
        be.extend_from_slice(&[0; 12]);
        be.extend_from_slice(&1u32.to_be_bytes());
        assert!(Capture::parse(&be).unwrap().big_endian);
    }
}
