//! The capture formats: libpcap (a 24-byte global header, then records of
//! a 16-byte header and the captured bytes; both byte orders, microsecond
//! and nanosecond timestamps) and pcapng (sections of blocks, each section
//! with its own byte order and interfaces, each interface its link type and
//! timestamp resolution).
//!
//! pcapng blocks are sorted into three kinds. Packets (Enhanced, Simple
//! and the obsolete Packet Block) become [`Record`]s to scrub in place.
//! Blocks known to carry no packet data — the Section Header, Interface
//! Description, Name Resolution, Interface Statistics and Decryption
//! Secrets blocks — are kept byte for byte. Every other block (custom
//! blocks, systemd journal entries, types this reader does not know) is
//! dropped: what cannot be inspected does not pass.

use std::ops::Range;

/// A libpcap file's global header: magic, version, zone, accuracy,
/// snapshot length, link type.
pub const PCAP_HEADER: usize = 24;

/// A libpcap record's header: seconds, fraction, captured and original
/// lengths.
pub const RECORD_HEADER: usize = 16;

/// The smallest pcapng block: type, total length, trailing total length
/// (a Section Header Block's byte-order magic also sits in these 12).
const BLOCK_MIN: usize = 12;

/// pcapng blocks are padded to this many bytes.
const BLOCK_ALIGN: usize = 4;

/// The magic number's length, which says the format.
const MAGIC: usize = 4;

/// Records longer than this are corrupt (libpcap's own limit is 256 KiB).
const MAX_RECORD: usize = 256 * 1024;

/// pcapng blocks longer than this are corrupt (a packet block holds one
/// record; other blocks are small).
const MAX_BLOCK: usize = 16 << 20;

/// Why a capture cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// Not a capture at all.
    #[error("not a pcap or pcapng capture (starts with {0:02x?})")]
    NotPcap(Vec<u8>),
    /// The file ends inside the global header, a record or a block.
    #[error("truncated capture: {0}")]
    Truncated(String),
    /// A header or block that cannot be right.
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
    /// Reading the capture or writing the output failed.
    #[error("{0}")]
    Io(String),
}

/// The file format of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// libpcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

impl Format {
    /// `pcap` or `pcapng`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// One captured packet: its header fields and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp seconds.
    pub ts_sec: u32,
    /// Timestamp fraction: µs or ns as a libpcap file says; ns in pcapng.
    pub ts_frac: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes in the file.
    pub data: Range<usize>,
    /// The link type of its interface.
    pub link_type: u32,
}

/// What a pcapng block is to the scrubber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A packet: the index of its record.
    Packet(usize),
    /// Carries no packet data: kept byte for byte.
    Keep,
    /// Cannot be inspected: left out of the output.
    Drop,
}

/// One pcapng block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Its bytes in the file, headers and trailing length included.
    pub range: Range<usize>,
    /// Its block type.
    pub block_type: u32,
    /// What it is.
    pub kind: BlockKind,
}

/// A parsed capture (borrowing nothing: ranges index the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// libpcap or pcapng.
    pub format: Format,
    /// Whether a libpcap file's multi-byte fields are big-endian.
    pub big_endian: bool,
    /// The packets in file order.
    pub records: Vec<Record>,
    /// A pcapng file's blocks in file order (empty for libpcap).
    pub blocks: Vec<Block>,
}

fn supported_link(link: u32) -> bool {
    matches!(link, 0 | 1 | 101 | 113 | 276)
}

/// Byte-order aware field reads.
#[derive(Debug, Clone, Copy)]
struct Order(bool);

impl Order {
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.0 { u32::from_be_bytes(v) } else { u32::from_le_bytes(v) }
    }

    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.0 { u16::from_be_bytes(v) } else { u16::from_le_bytes(v) }
    }
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const NRB: u32 = 4;
const ISB: u32 = 5;
const EPB: u32 = 6;
const DSB: u32 = 0x0A;

/// A pcapng interface: link type, snap length, and timestamp units per second.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    units_per_second: u64,
}

/// The units per second an `if_tsresol` value gives (None: too fine to count in 64 bits).
fn tsresol(v: u8) -> Option<u64> {
    if v & 0x80 == 0 { 10u64.checked_pow(u32::from(v)) } else { 1u64.checked_shl(u32::from(v & 0x7F)) }
}

/// The interface's options: `if_tsresol` (code 9), if given.
fn interface_units(body: &[u8], order: Order, block: usize) -> Result<u64, PcapError> {
    let mut units = 1_000_000; // microseconds unless if_tsresol says otherwise
    let mut at = 8;
    while at + 4 <= body.len() {
        let (code, len) = (order.u16(body, at), order.u16(body, at + 2) as usize);
        if code == 0 {
            break;
        }
        let value = body
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| PcapError::Corrupt(format!("block {block}: an interface option runs past the block")))?;
        if code == 9 {
            let v = *value.first().ok_or_else(|| PcapError::Corrupt(format!("block {block}: empty if_tsresol")))?;
            units = tsresol(v)
                .filter(|&u| u > 0)
                .ok_or_else(|| PcapError::Corrupt(format!("block {block}: if_tsresol {v:#04x} cannot be counted")))?;
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok(units)
}

/// One item of a capture, as [`Reader`] yields it: its bytes in the file
/// (a libpcap record with its 16-byte header, or a whole pcapng block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A packet.
    Packet {
        /// The record or block, as in the file.
        raw: Vec<u8>,
        /// Where the captured bytes are within `raw`.
        data: Range<usize>,
        /// Timestamp seconds.
        ts_sec: u32,
        /// Timestamp fraction: µs or ns as a libpcap file says; ns in pcapng.
        ts_frac: u32,
        /// The timestamp in nanoseconds.
        ts_ns: u64,
        /// Length on the wire.
        orig_len: u32,
        /// The link type of its interface.
        link_type: u32,
        /// The pcapng block type (0 for a libpcap record).
        block_type: u32,
    },
    /// Anything else: the libpcap global header, or a pcapng block that
    /// carries no packet (`keep`) or cannot be inspected (not `keep`).
    Other {
        /// The header or block, as in the file.
        raw: Vec<u8>,
        /// The pcapng block type (0 for the libpcap header).
        block_type: u32,
        /// Whether it may be copied to the output.
        keep: bool,
    },
}

/// A capture read as a stream, item by item, in bounded memory (one
/// record or block at a time).
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    format: Format,
    order: Order,
    /// libpcap: the file's link type, and whether fractions are ns.
    link_type: u32,
    nanos: bool,
    /// pcapng: the current section's interfaces.
    interfaces: Vec<Interface>,
    /// Bytes read so far.
    offset: usize,
    /// Records (libpcap) or blocks (pcapng) read so far.
    count: usize,
    /// The first bytes, read to tell the format, not yet yielded.
    head: Option<Vec<u8>>,
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the stream.
fn fill(r: &mut impl std::io::Read, buf: &mut [u8]) -> Result<usize, PcapError> {
    crate::read::fill(r, buf).map_err(|e| PcapError::Io(format!("cannot read: {e}")))
}

impl<R: std::io::Read> Reader<R> {
    /// Reads the start of a capture: its format (and a libpcap header).
    ///
    /// # Errors
    /// [`PcapError`] saying what is wrong and where.
    pub fn new(mut inner: R) -> Result<Reader<R>, PcapError> {
        let mut head = vec![0u8; PCAP_HEADER];
        let got = fill(&mut inner, &mut head[..MAGIC])?;
        if got < MAGIC {
            return Err(PcapError::Truncated(format!("{got} bytes, a capture's header has {PCAP_HEADER} or more")));
        }
        let (format, big_endian, nanos) = match [head[0], head[1], head[2], head[3]] {
            [0xD4, 0xC3, 0xB2, 0xA1] => (Format::Pcap, false, false),
            [0x4D, 0x3C, 0xB2, 0xA1] => (Format::Pcap, false, true),
            [0xA1, 0xB2, 0xC3, 0xD4] => (Format::Pcap, true, false),
            [0xA1, 0xB2, 0x3C, 0x4D] => (Format::Pcap, true, true),
            [0x0A, 0x0D, 0x0D, 0x0A] => (Format::Pcapng, false, false),
            m => return Err(PcapError::NotPcap(m.to_vec())),
        };
        let mut r = Reader {
            inner,
            format,
            order: Order(big_endian),
            link_type: 0,
            nanos,
            interfaces: Vec::new(),
            offset: MAGIC,
            count: 0,
            head: None,
        };
        if format == Format::Pcapng {
            head.truncate(MAGIC);
            r.head = Some(head);
            return Ok(r);
        }
        let got = MAGIC + fill(&mut r.inner, &mut head[MAGIC..])?;
        if got < PCAP_HEADER {
            return Err(PcapError::Truncated(format!("{got} bytes, a libpcap header has {PCAP_HEADER}")));
        }
        r.offset = PCAP_HEADER;
        r.link_type = r.order.u32(&head, 20) & 0x0FFF_FFFF;
        if !supported_link(r.link_type) {
            return Err(PcapError::LinkType(r.link_type));
        }
        r.head = Some(head);
        Ok(r)
    }

    /// libpcap or pcapng.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether a libpcap file is big-endian.
    pub fn big_endian(&self) -> bool {
        self.order.0
    }

    /// Bytes read so far (where the next item starts).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The next item; `None` at the end of the capture.
    ///
    /// # Errors
    /// [`PcapError`] saying what is wrong and where.
    pub fn next_item(&mut self) -> Result<Option<Item>, PcapError> {
        match self.format {
            Format::Pcap => self.next_record(),
            Format::Pcapng => self.next_block(),
        }
    }

    fn next_record(&mut self) -> Result<Option<Item>, PcapError> {
        if let Some(raw) = self.head.take() {
            return Ok(Some(Item::Other { raw, block_type: 0, keep: true }));
        }
        let (n, at) = (self.count + 1, self.offset);
        let mut raw = vec![0u8; RECORD_HEADER];
        let got = fill(&mut self.inner, &mut raw)?;
        if got == 0 {
            return Ok(None);
        }
        if got < RECORD_HEADER {
            return Err(PcapError::Truncated(format!(
                "record {n} at byte {at}: header needs {RECORD_HEADER} bytes, {got} left"
            )));
        }
        let order = self.order;
        let (ts_sec, ts_frac) = (order.u32(&raw, 0), order.u32(&raw, 4));
        let (incl, orig_len) = (order.u32(&raw, 8) as usize, order.u32(&raw, 12));
        if incl > MAX_RECORD {
            return Err(PcapError::Corrupt(format!("record {n} at byte {at} claims {incl} bytes")));
        }
        raw.resize(RECORD_HEADER + incl, 0);
        let got = fill(&mut self.inner, &mut raw[RECORD_HEADER..])?;
        if got < incl {
            return Err(PcapError::Truncated(format!("record {n} at byte {at} needs {incl} bytes, {got} left")));
        }
        self.count = n;
        self.offset += raw.len();
        let ts_ns = u64::from(ts_sec) * 1_000_000_000 + u64::from(ts_frac) * if self.nanos { 1 } else { 1000 };
        let link_type = self.link_type;
        Ok(Some(Item::Packet {
            raw,
            data: RECORD_HEADER..RECORD_HEADER + incl,
            ts_sec,
            ts_frac,
            ts_ns,
            orig_len,
            link_type,
            block_type: 0,
        }))
    }

    fn next_block(&mut self) -> Result<Option<Item>, PcapError> {
        let (n, at) = (self.count + 1, self.offset - self.head.as_ref().map_or(0, Vec::len));
        let mut raw = self.head.take().unwrap_or_default();
        let had = raw.len();
        raw.resize(BLOCK_MIN, 0);
        let got = had + fill(&mut self.inner, &mut raw[had..])?;
        if got == 0 {
            return if n == 1 { Err(PcapError::Truncated("an empty pcapng file".into())) } else { Ok(None) };
        }
        if got < BLOCK_MIN {
            return Err(PcapError::Truncated(format!("block {n} at byte {at}: needs {BLOCK_MIN} bytes, {got} left")));
        }
        let mut order = self.order;
        let block_type = order.u32(&raw, 0);
        if block_type == SHB {
            // A new section: its own byte order, its own interfaces.
            order = match [raw[8], raw[9], raw[10], raw[11]] {
                [0x4D, 0x3C, 0x2B, 0x1A] => Order(false),
                [0x1A, 0x2B, 0x3C, 0x4D] => Order(true),
                m => return Err(PcapError::Corrupt(format!("block {n} at byte {at}: byte-order magic {m:02x?}"))),
            };
        } else if n == 1 {
            return Err(PcapError::Corrupt("a pcapng file starts with a Section Header Block".into()));
        }
        let total = order.u32(&raw, 4) as usize;
        if total < BLOCK_MIN || !total.is_multiple_of(BLOCK_ALIGN) || total > MAX_BLOCK {
            return Err(PcapError::Corrupt(format!("block {n} at byte {at}: length {total}")));
        }
        raw.resize(total, 0);
        let got = BLOCK_MIN + fill(&mut self.inner, &mut raw[BLOCK_MIN..])?;
        if got < total {
            return Err(PcapError::Truncated(format!("block {n} at byte {at} needs {total} bytes, {got} left")));
        }
        if order.u32(&raw, total - 4) != total as u32 {
            return Err(PcapError::Corrupt(format!("block {n} at byte {at}: its two lengths differ")));
        }
        if block_type == SHB {
            self.order = order;
            self.interfaces.clear();
        }
        self.count = n;
        self.offset = at + total;
        let item = block_item(raw, block_type, order, &mut self.interfaces, n, at)?;
        Ok(Some(item))
    }
}

/// Sorts one whole pcapng block (see the module docs).
fn block_item(
    raw: Vec<u8>,
    block_type: u32,
    order: Order,
    interfaces: &mut Vec<Interface>,
    n: usize,
    at: usize,
) -> Result<Item, PcapError> {
    let total = raw.len();
    let body = &raw[8..total - 4];
    let short = || PcapError::Corrupt(format!("block {n} at byte {at}: too short for its type {block_type}"));
    let interface = |id: usize| {
        interfaces.get(id).copied().ok_or_else(|| {
            PcapError::Corrupt(format!("block {n} at byte {at}: a packet of interface {id}, which is not described"))
        })
    };
    // (interface, timestamp, captured length, wire length, data offset in the body)
    let packet = match block_type {
        SHB => {
            if body.len() < 16 {
                return Err(short());
            }
            if order.u16(body, 4) != 1 {
                return Err(PcapError::Corrupt(format!(
                    "block {n} at byte {at}: pcapng version {}.{} (1.x is read)",
                    order.u16(body, 4),
                    order.u16(body, 6)
                )));
            }
            None
        }
        IDB => {
            if body.len() < 8 {
                return Err(short());
            }
            let link_type = u32::from(order.u16(body, 0));
            let units_per_second = interface_units(body, order, n)?;
            interfaces.push(Interface { link_type, snaplen: order.u32(body, 4), units_per_second });
            None
        }
        EPB | OPB => {
            if body.len() < 20 {
                return Err(short());
            }
            // The same layout but the interface id: 32 bits, or (obsolete) 16 and a drop count.
            let id = if block_type == EPB { order.u32(body, 0) } else { u32::from(order.u16(body, 0)) };
            let ts = (u64::from(order.u32(body, 4)) << 32) | u64::from(order.u32(body, 8));
            Some((interface(id as usize)?, ts, order.u32(body, 12) as usize, order.u32(body, 16), 20))
        }
        SPB => {
            if body.len() < 4 {
                return Err(short());
            }
            let i = interface(0)?;
            let orig = order.u32(body, 0);
            let mut len = (orig as usize).min(body.len() - 4);
            if i.snaplen != 0 {
                len = len.min(i.snaplen as usize);
            }
            Some((i, 0, len, orig, 4))
        }
        _ => None,
    };
    let Some((i, ts, len, orig_len, offset)) = packet else {
        let keep = matches!(block_type, SHB | IDB | NRB | ISB | DSB);
        return Ok(Item::Other { raw, block_type, keep });
    };
    if len > body.len() - offset {
        return Err(PcapError::Corrupt(format!(
            "block {n} at byte {at}: a packet of {len} bytes in a block of {total}"
        )));
    }
    if !supported_link(i.link_type) {
        return Err(PcapError::LinkType(i.link_type));
    }
    let seconds = ts / i.units_per_second;
    let nanos = ((ts % i.units_per_second) as u128 * 1_000_000_000 / i.units_per_second as u128) as u64;
    let start = 8 + offset;
    Ok(Item::Packet {
        raw,
        data: start..start + len,
        ts_sec: seconds.min(u64::from(u32::MAX)) as u32,
        ts_frac: nanos as u32,
        ts_ns: seconds.saturating_mul(1_000_000_000).saturating_add(nanos),
        orig_len,
        link_type: i.link_type,
        block_type,
    })
}

impl Capture {
    /// Reads the structure of a libpcap or pcapng file held in memory.
    ///
    /// # Errors
    /// [`PcapError`] saying what is wrong and where.
    pub fn parse(file: &[u8]) -> Result<Capture, PcapError> {
        let mut reader = Reader::new(file)?;
        let (mut records, mut blocks) = (Vec::new(), Vec::new());
        let mut at = 0;
        while let Some(item) = reader.next_item()? {
            let (len, block_type, kind) = match item {
                Item::Packet { raw, data, ts_sec, ts_frac, orig_len, link_type, block_type, .. } => {
                    let data = at + data.start..at + data.end;
                    records.push(Record { ts_sec, ts_frac, orig_len, data, link_type });
                    (raw.len(), block_type, BlockKind::Packet(records.len() - 1))
                }
                Item::Other { raw, block_type, keep } => {
                    (raw.len(), block_type, if keep { BlockKind::Keep } else { BlockKind::Drop })
                }
            };
            if reader.format() == Format::Pcapng {
                blocks.push(Block { range: at..at + len, block_type, kind });
            }
            at += len;
        }
        Ok(Capture { format: reader.format(), big_endian: reader.big_endian(), records, blocks })
    }

    /// Appends a libpcap record header for `len` captured bytes (wire
    /// length `orig_len`) in the file's byte order.
    pub fn write_record_header(&self, out: &mut Vec<u8>, r: &Record, len: usize, orig_len: u32) {
        write_record_header(self.big_endian, out, r.ts_sec, r.ts_frac, len, orig_len);
    }
}

/// Appends a libpcap record header in the given byte order.
pub fn write_record_header(big_endian: bool, out: &mut Vec<u8>, ts_sec: u32, ts_frac: u32, len: usize, orig_len: u32) {
    for v in [ts_sec, ts_frac, len as u32, orig_len] {
        out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
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

    /// A pcapng block of `block_type` around `body`, in `be` byte order.
    fn block(be: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
        let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&w(block_type));
        b.extend_from_slice(&w(total));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&w(total));
        b
    }

    /// A section: SHB, an Ethernet interface in µs and a raw-IP one in ns,
    /// an EPB on each, an SPB, a name-resolution and a custom block.
    fn section(be: bool) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes().to_vec() } else { v.to_le_bytes().to_vec() };
        let w16 = |v: u16| if be { v.to_be_bytes().to_vec() } else { v.to_le_bytes().to_vec() };
        let mut shb = w32(0x1A2B_3C4D);
        shb.extend(w16(1));
        shb.extend(w16(0));
        shb.extend_from_slice(&[0xFF; 8]); // section length unknown
        let mut f = block(be, SHB, &shb);
        let mut eth = w16(1);
        eth.extend(w16(0));
        eth.extend(w32(0));
        f.extend(block(be, IDB, &eth));
        let mut raw = w16(101);
        raw.extend(w16(0));
        raw.extend(w32(65535));
        raw.extend(w16(9)); // if_tsresol: 10^-9
        raw.extend(w16(1));
        raw.extend_from_slice(&[9, 0, 0, 0]);
        raw.extend(w16(0)); // opt_endofopt
        raw.extend(w16(0));
        f.extend(block(be, IDB, &raw));
        let epb = |iface: u32, ts: u64, data: &[u8]| {
            let mut b = w32(iface);
            b.extend(w32((ts >> 32) as u32));
            b.extend(w32(ts as u32));
            b.extend(w32(data.len() as u32));
            b.extend(w32(data.len() as u32 + 10));
            b.extend_from_slice(data);
            b
        };
        f.extend(block(be, EPB, &epb(0, 1_500_000, b"abc")));
        f.extend(block(be, NRB, &[0; 4]));
        f.extend(block(be, EPB, &epb(1, 2_000_000_123, b"defgh")));
        let mut spb = w32(4);
        spb.extend_from_slice(b"wxyz");
        f.extend(block(be, SPB, &spb));
        let mut opb = w16(1); // the obsolete Packet Block: 16-bit interface, drop count
        opb.extend(w16(0));
        opb.extend_from_slice(&epb(0, 7_000_000_000, b"op")[4..]);
        f.extend(block(be, OPB, &opb));
        f.extend(block(be, 0x0000_0BAD, b"a custom block: anything"));
        f
    }

    #[test]
    fn pcapng_sections_interfaces_and_blocks() {
        for be in [false, true] {
            let mut f = section(be);
            f.extend(section(be));
            let c = Capture::parse(&f).unwrap();
            assert_eq!(c.format, Format::Pcapng);
            assert_eq!(c.records.len(), 8);
            let data: Vec<&[u8]> = c.records.iter().map(|r| &f[r.data.clone()]).collect();
            assert_eq!(&data[..4], &[&b"abc"[..], b"defgh", b"wxyz", b"op"]);
            let links: Vec<u32> = c.records.iter().map(|r| r.link_type).collect();
            assert_eq!(links, [1, 101, 1, 101, 1, 101, 1, 101], "each section's interfaces anew");
            assert_eq!((c.records[3].ts_sec, c.records[3].ts_frac), (7, 0));
            assert_eq!((c.records[0].ts_sec, c.records[0].ts_frac), (1, 500_000_000), "µs by default");
            assert_eq!((c.records[1].ts_sec, c.records[1].ts_frac), (2, 123), "ns by if_tsresol");
            assert_eq!(c.records[0].orig_len, 13);
            let kinds: Vec<BlockKind> = c.blocks.iter().map(|b| b.kind).collect();
            use BlockKind::{Drop, Keep, Packet};
            assert_eq!(&kinds[..9], &[Keep, Keep, Keep, Packet(0), Keep, Packet(1), Packet(2), Packet(3), Drop]);
            assert_eq!(c.blocks.last().unwrap().range.end, f.len());
        }
    }

    #[test]
    fn broken_pcapng_is_refused_with_where() {
        let good = section(false);
        let err = |f: &[u8]| Capture::parse(f).unwrap_err().to_string();
        assert!(
            err(&good[..good.len() - 3]).contains("truncated capture: block 9"),
            "{}",
            err(&good[..good.len() - 3])
        );
        let mut bad = good.clone();
        bad[good.len() - 4] ^= 4; // the trailing length of the last block
        assert!(err(&bad).contains("its two lengths differ"), "{}", err(&bad));
        let mut bom = good.clone();
        bom[8] = 0x11;
        assert!(err(&bom).contains("byte-order magic"));
        // A packet of an interface never described.
        let mut f = good[..28].to_vec();
        let mut epb = 5u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&[0; 16]);
        f.extend(block(false, EPB, &epb));
        assert!(err(&f).contains("interface 5, which is not described"), "{}", err(&f));
        // An interface of a link type cardveil does not decode, with a packet.
        let mut f = good[..28].to_vec();
        f.extend(block(false, IDB, &[105, 0, 0, 0, 0, 0, 0, 0]));
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&[0; 16]);
        f.extend(block(false, EPB, &epb));
        assert_eq!(Capture::parse(&f), Err(PcapError::LinkType(105)));
        // A packet longer than its block.
        let mut f = good[..28].to_vec();
        f.extend(block(false, IDB, &[1, 0, 0, 0, 0, 0, 0, 0]));
        let mut epb = vec![0u8; 12];
        epb.extend_from_slice(&100u32.to_le_bytes());
        epb.extend_from_slice(&100u32.to_le_bytes());
        f.extend(block(false, EPB, &epb));
        assert!(err(&f).contains("a packet of 100 bytes"), "{}", err(&f));
        assert!(
            err(&block(false, SHB, &[0x4D, 0x3C, 0x2B, 0x1A, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
                .contains("version 2.0")
        );
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
        assert!(matches!(Capture::parse(b"RIFF....WAVE"), Err(PcapError::NotPcap(_))));
        assert_eq!(Capture::parse(&header(105)), Err(PcapError::LinkType(105)));
        assert_eq!(c.records[0].link_type, 1);
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
