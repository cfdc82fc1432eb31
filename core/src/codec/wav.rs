//! WAV (RIFF/WAVE) reading and writing for the formats cardveil handles:
//! 16-bit PCM at 8, 16 or 48 kHz, and 8-bit G.711 μ-law or A-law at 8 kHz;
//! mono or stereo. Both the classic `fmt ` chunk and WAVE_FORMAT_EXTENSIBLE
//! are read. (`hound` reads PCM and float only, not G.711, hence this.)
//!
//! Parsing works on a byte slice and never panics on malformed input.

use super::Encoding;

/// Why a WAV file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// No `RIFF....WAVE` header.
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// A chunk header or the `fmt ` chunk is cut short.
    #[error("truncated WAV file (a chunk header or the fmt chunk is cut short)")]
    Truncated,
    /// The `data` chunk claims more bytes than the file has.
    #[error("truncated WAV data: the data chunk claims {claimed} bytes but only {present} are present")]
    TruncatedData {
        /// Bytes the header claims.
        claimed: u64,
        /// Bytes present.
        present: u64,
    },
    /// The data length is not a whole number of sample frames.
    #[error("WAV data length {0} is not a whole number of sample frames")]
    PartialFrame(u64),
    /// No `fmt ` chunk before the data.
    #[error("WAV file has no fmt chunk before its data")]
    MissingFmt,
    /// No `data` chunk.
    #[error("WAV file has no data chunk")]
    MissingData,
    /// An encoding other than 16-bit PCM, μ-law or A-law.
    #[error(
        "unsupported WAV encoding (format tag {tag:#06x}, {bits} bits per sample); supported: 16-bit PCM, 8-bit μ-law, 8-bit A-law"
    )]
    UnsupportedEncoding {
        /// Format tag.
        tag: u16,
        /// Bits per sample.
        bits: u16,
    },
    /// A rate the encoding is not supported at.
    #[error("unsupported sample rate {rate} Hz for {encoding} (supported: {supported})")]
    UnsupportedRate {
        /// The rate.
        rate: u32,
        /// The encoding's name.
        encoding: &'static str,
        /// Supported rates, for the message.
        supported: &'static str,
    },
    /// Not one or two channels.
    #[error("unsupported channel count {0} (supported: 1, or 2 with one call leg per channel)")]
    UnsupportedChannels(u16),
    /// A second `fmt ` or `data` chunk: readers disagree on which counts
    /// (cardveil's masked one could be the one a player ignores), so the
    /// file is refused rather than guessed at.
    #[error("ambiguous WAV file: a second {0:?} chunk")]
    DuplicateChunk(&'static str),
    /// A `fmt ` chunk whose fields contradict each other.
    #[error("inconsistent WAV fmt chunk: {0}")]
    BadFmt(&'static str),
}

/// The format of a WAV file's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// Sample encoding.
    pub encoding: Encoding,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Interleaved channels (1 or 2).
    pub channels: u16,
}

impl WavFormat {
    /// Bytes per sample frame (all channels).
    pub fn frame_bytes(&self) -> usize {
        self.encoding.bytes_per_sample() * self.channels as usize
    }
}

/// A parsed WAV file: its format and the byte range of its sample data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav<'a> {
    /// The format.
    pub format: WavFormat,
    /// The `data` chunk's bytes, interleaved samples.
    pub data: &'a [u8],
    /// Offset of the data within the file.
    pub data_offset: usize,
}

const TAG_PCM: u16 = 0x0001;
const TAG_ALAW: u16 = 0x0006;
const TAG_ULAW: u16 = 0x0007;
const TAG_EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn parse_fmt(body: &[u8]) -> Result<WavFormat, WavError> {
    let tag = u16_at(body, 0).ok_or(WavError::Truncated)?;
    let channels = u16_at(body, 2).ok_or(WavError::Truncated)?;
    let sample_rate = u32_at(body, 4).ok_or(WavError::Truncated)?;
    let bits = u16_at(body, 14).ok_or(WavError::Truncated)?;
    let extensible = tag == TAG_EXTENSIBLE;
    let tag = if extensible {
        // cbSize(2) validBits(2) channelMask(4) then the sub-format GUID,
        // whose first two bytes are the classic tag.
        u16_at(body, 24).ok_or(WavError::Truncated)?
    } else {
        tag
    };
    let encoding = match (tag, bits) {
        (TAG_PCM, 16) => Encoding::Pcm16,
        (TAG_ULAW, 8) => Encoding::Ulaw,
        (TAG_ALAW, 8) => Encoding::Alaw,
        _ => return Err(WavError::UnsupportedEncoding { tag, bits }),
    };
    if !(1..=2).contains(&channels) {
        return Err(WavError::UnsupportedChannels(channels));
    }
    check_rate(encoding, sample_rate)?;
    let format = WavFormat { encoding, sample_rate, channels };
    let block_align = u16_at(body, 12).ok_or(WavError::Truncated)?;
    if block_align as usize != format.frame_bytes() {
        return Err(WavError::BadFmt("block align is not channels × bytes per sample"));
    }
    // cbSize, where the chunk has one, must fit in the chunk; the
    // extensible form needs its 22 bytes, with valid bits within the container.
    if body.len() >= 18 {
        let cb_size = u16_at(body, 16).ok_or(WavError::Truncated)? as usize;
        if 18 + cb_size > body.len() {
            return Err(WavError::BadFmt("cbSize runs past the end of the fmt chunk"));
        }
        if extensible && cb_size < 22 {
            return Err(WavError::BadFmt("WAVE_FORMAT_EXTENSIBLE with cbSize below 22"));
        }
    }
    if extensible {
        let valid = u16_at(body, 18).ok_or(WavError::Truncated)?;
        if valid == 0 || valid > bits {
            return Err(WavError::BadFmt("valid bits per sample outside 1..=bits per sample"));
        }
    }
    Ok(format)
}

/// Whether cardveil handles `encoding` at `sample_rate`: 16-bit PCM at 8,
/// 16 or 48 kHz, G.711 at 8 kHz.
pub fn check_rate(encoding: Encoding, sample_rate: u32) -> Result<(), WavError> {
    let ok = match encoding {
        Encoding::Pcm16 => matches!(sample_rate, 8000 | 16000 | 48000),
        Encoding::Ulaw | Encoding::Alaw => sample_rate == 8000,
    };
    if ok {
        return Ok(());
    }
    let (name, supported) = match encoding {
        Encoding::Pcm16 => ("16-bit PCM", "8000, 16000, 48000"),
        Encoding::Ulaw => ("μ-law", "8000"),
        Encoding::Alaw => ("A-law", "8000"),
    };
    Err(WavError::UnsupportedRate { rate: sample_rate, encoding: name, supported })
}

/// Data sizes a writer puts in the header when it cannot know the length
/// (it writes to a pipe): `0xFFFFFFFF` (ffmpeg), `0x7FFFF000` (sox). Such
/// data runs to the end of the stream. A size of 0 counts too when the
/// RIFF size is unknown as well (0 or `0xFFFFFFFF`).
const UNKNOWN_SIZES: [u32; 2] = [u32::MAX, 0x7FFF_F000];

/// The largest `fmt ` chunk read (the extensible form has 40 bytes).
const MAX_FMT: usize = 4096;

/// What [`WavReader`] can fail with: the file's structure, or reading it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavReadError {
    /// The file is not a WAV cardveil reads (see [`WavError`]).
    #[error(transparent)]
    Format(#[from] WavError),
    /// The reader failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// The header up to the start of the sample data.
struct Header {
    format: WavFormat,
    /// The data chunk's size, `None` when it runs to the end of the stream.
    data_len: Option<u64>,
    /// Bytes before the data.
    data_offset: usize,
}

use crate::read::fill;

/// Skips `n` bytes; how many there were.
fn skip(r: &mut impl std::io::Read, n: u64) -> std::io::Result<u64> {
    std::io::copy(&mut std::io::Read::take(&mut *r, n), &mut std::io::sink())
}

/// Reads the RIFF header and the chunks before `data`.
fn read_header(r: &mut impl std::io::Read) -> Result<Header, WavReadError> {
    let mut riff = [0u8; 12];
    if fill(r, &mut riff)? < 12 || &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(WavError::NotWav.into());
    }
    let riff_len = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);
    let mut at = 12usize;
    let mut format = None;
    loop {
        let mut head = [0u8; 8];
        match fill(r, &mut head)? {
            0 => {
                let missing = if format.is_none() { WavError::MissingFmt } else { WavError::MissingData };
                return Err(missing.into());
            }
            8 => {}
            _ => return Err(WavError::Truncated.into()),
        }
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        at += 8;
        if &head[0..4] == b"data" {
            let format = format.ok_or(WavError::MissingFmt)?;
            let unknown = UNKNOWN_SIZES.contains(&size) || (size == 0 && (riff_len == 0 || riff_len == u32::MAX));
            let data_len = (!unknown).then_some(size as u64);
            return Ok(Header { format, data_len, data_offset: at });
        }
        let padded = size as u64 + (size & 1) as u64;
        if &head[0..4] == b"fmt " {
            if format.is_some() {
                return Err(WavError::DuplicateChunk("fmt ").into());
            }
            if size as usize > MAX_FMT {
                return Err(WavError::BadFmt("fmt chunk larger than 4 KiB").into());
            }
            let mut body = vec![0u8; size as usize];
            if fill(r, &mut body)? < body.len() {
                return Err(WavError::Truncated.into());
            }
            format = Some(parse_fmt(&body)?);
            // A missing pad byte at the very end shows as a missing data chunk.
            skip(r, padded - size as u64)?;
        } else if skip(r, padded)? < size as u64 {
            return Err(WavError::Truncated.into());
        }
        at = at.saturating_add(padded as usize);
    }
}

/// The chunks after the data (LIST, id3, …) may not include another `fmt `
/// or `data`; a trailing chunk cut short ends the walk (real files end
/// with stray bytes often enough).
fn check_after_data(r: &mut impl std::io::Read) -> Result<(), WavReadError> {
    loop {
        let mut head = [0u8; 8];
        if fill(r, &mut head)? < 8 {
            return Ok(());
        }
        match &head[0..4] {
            b"fmt " => return Err(WavError::DuplicateChunk("fmt ").into()),
            b"data" => return Err(WavError::DuplicateChunk("data").into()),
            _ => {}
        }
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64;
        if skip(r, size + (size & 1))? < size + (size & 1) {
            return Ok(());
        }
    }
}

/// Parses a WAV file held in memory.
pub fn parse(file: &[u8]) -> Result<Wav<'_>, WavError> {
    let slice_error = |e: WavReadError| match e {
        WavReadError::Format(e) => e,
        // Reading a slice cannot fail.
        WavReadError::Io(_) => WavError::Truncated,
    };
    let mut r = file;
    let h = read_header(&mut r).map_err(slice_error)?;
    let present = file.len() - h.data_offset;
    // In the stream reader's order: a size that is not whole frames is
    // refused before the data is looked at.
    if let Some(n) = h.data_len
        && !n.is_multiple_of(h.format.frame_bytes() as u64)
    {
        return Err(WavError::PartialFrame(n));
    }
    let size = match h.data_len {
        Some(claimed) if claimed > present as u64 => {
            return Err(WavError::TruncatedData { claimed, present: present as u64 });
        }
        Some(claimed) => claimed as usize,
        None => present,
    };
    let data = &file[h.data_offset..h.data_offset + size];
    if !data.len().is_multiple_of(h.format.frame_bytes()) {
        return Err(WavError::PartialFrame(data.len() as u64));
    }
    let after = (h.data_offset + size + (size & 1)).min(file.len());
    check_after_data(&mut &file[after..]).map_err(slice_error)?;
    Ok(Wav { format: h.format, data, data_offset: h.data_offset })
}

/// A WAV file read as a stream, in bounded memory: the header first, then
/// the samples in whole frames, then (once the data is over) a check of
/// the chunks after it as [`parse`] makes. Data whose size the header does
/// not know (a pipe: `0xFFFFFFFF`, sox's `0x7FFFF000`, or 0 with an
/// unknown RIFF size) runs to the end of the stream.
#[derive(Debug)]
pub struct WavReader<R> {
    inner: R,
    format: WavFormat,
    data_len: Option<u64>,
    /// Data bytes returned so far.
    read: u64,
    done: bool,
}

impl<R: std::io::Read> WavReader<R> {
    /// Reads the header.
    ///
    /// # Errors
    /// [`WavReadError::Format`] for a file cardveil does not read (as
    /// [`parse`] says), [`WavReadError::Io`] if reading fails.
    pub fn new(mut inner: R) -> Result<WavReader<R>, WavReadError> {
        let h = read_header(&mut inner)?;
        if let Some(n) = h.data_len
            && !n.is_multiple_of(h.format.frame_bytes() as u64)
        {
            return Err(WavError::PartialFrame(n).into());
        }
        Ok(WavReader { inner, format: h.format, data_len: h.data_len, read: 0, done: false })
    }

    /// The samples' format.
    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// The data's length in bytes as the header gives it (`None`: to the
    /// end of the stream).
    pub fn data_len(&self) -> Option<u64> {
        self.data_len
    }

    /// Data bytes read so far.
    pub fn position(&self) -> u64 {
        self.read
    }

    /// Reads whole sample frames into `buf` (as much of it as holds whole
    /// frames); `Ok(0)` once the data is over and the rest of the file
    /// checked. Fewer bytes than asked for only at the end.
    ///
    /// # Errors
    /// [`WavError::TruncatedData`] if the stream ends before the data the
    /// header claims, [`WavError::PartialFrame`] if data of unknown length
    /// ends inside a frame, [`WavError::DuplicateChunk`] for a `fmt ` or
    /// `data` chunk after the data, [`WavReadError::Io`] if reading fails
    /// or `buf` cannot hold one frame.
    pub fn read_frames(&mut self, buf: &mut [u8]) -> Result<usize, WavReadError> {
        if self.done {
            return Ok(0);
        }
        let fb = self.format.frame_bytes();
        if buf.len() < fb {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "buffer smaller than one sample frame");
            return Err(e.into());
        }
        let mut want = buf.len() / fb * fb;
        if let Some(n) = self.data_len {
            want = want.min((n - self.read) as usize);
        }
        let got = fill(&mut self.inner, &mut buf[..want])?;
        self.read += got as u64;
        if got < want || self.data_len == Some(self.read) {
            self.done = true;
            match self.data_len {
                Some(claimed) if self.read < claimed => {
                    return Err(WavError::TruncatedData { claimed, present: self.read }.into());
                }
                Some(claimed) => {
                    skip(&mut self.inner, claimed & 1)?;
                    check_after_data(&mut self.inner)?;
                }
                None if !self.read.is_multiple_of(fb as u64) => {
                    return Err(WavError::PartialFrame(self.read).into());
                }
                None => {}
            }
        }
        Ok(got)
    }
}

/// A canonical 44-byte header (PCM) or 58-byte header (G.711, with a `fact`
/// chunk) for `data_len` bytes of samples in `format`.
pub fn header(format: WavFormat, data_len: u32) -> Vec<u8> {
    let (tag, bits, fmt_len) = match format.encoding {
        Encoding::Pcm16 => (TAG_PCM, 16u16, 16u32),
        Encoding::Ulaw => (TAG_ULAW, 8, 18),
        Encoding::Alaw => (TAG_ALAW, 8, 18),
    };
    let block_align = format.frame_bytes() as u16;
    let mut h = Vec::with_capacity(58);
    let fact = format.encoding != Encoding::Pcm16;
    let riff_len = 4 + (8 + fmt_len) + if fact { 12 } else { 0 } + 8 + data_len + (data_len & 1);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff_len.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&fmt_len.to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&format.channels.to_le_bytes());
    h.extend_from_slice(&format.sample_rate.to_le_bytes());
    h.extend_from_slice(&(format.sample_rate * block_align as u32).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if fact {
        h.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(data_len / block_align as u32).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// The most sample data a WAV header can give a size for (the RIFF size,
/// 32 bits, also counts the header).
pub const MAX_DATA_LEN: u32 = u32::MAX - 64;

/// A header for data of a length not known yet (written to a pipe): the
/// RIFF and data sizes are `0xFFFFFFFF`, as ffmpeg writes them; readers
/// (cardveil's, ffmpeg, sox) take the data to the end of the stream.
pub fn header_of_unknown_length(format: WavFormat) -> Vec<u8> {
    let mut h = header(format, 0);
    h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let n = h.len();
    h[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    h
}

/// Decodes one channel of interleaved sample data to linear 16-bit PCM.
pub fn channel_pcm16(wav: &Wav<'_>, channel: usize) -> Vec<i16> {
    let f = wav.format;
    let step = f.frame_bytes();
    let off = channel * f.encoding.bytes_per_sample();
    wav.data
        .chunks_exact(step)
        .map(|frame| match f.encoding {
            Encoding::Pcm16 => i16::from_le_bytes([frame[off], frame[off + 1]]),
            Encoding::Ulaw => super::ulaw::decode(frame[off]),
            Encoding::Alaw => super::alaw::decode(frame[off]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: WavFormat, data: &[u8]) -> Vec<u8> {
        let mut f = header(format, data.len() as u32);
        f.extend_from_slice(data);
        if data.len() % 2 == 1 {
            f.push(0);
        }
        f
    }

    #[test]
    fn round_trips_every_supported_format() {
        for (encoding, rate) in [
            (Encoding::Pcm16, 8000),
            (Encoding::Pcm16, 16000),
            (Encoding::Pcm16, 48000),
            (Encoding::Ulaw, 8000),
            (Encoding::Alaw, 8000),
        ] {
            for channels in [1u16, 2] {
                let format = WavFormat { encoding, sample_rate: rate, channels };
                let data: Vec<u8> = (0..format.frame_bytes() * 5).map(|i| i as u8).collect();
                let f = file(format, &data);
                let w = parse(&f).unwrap();
                assert_eq!(w.format, format);
                assert_eq!(w.data, &data[..]);
            }
        }
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        let pcm = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 1 };
        assert_eq!(parse(b"hello world, not a wav"), Err(WavError::NotWav));
        assert_eq!(parse(b""), Err(WavError::NotWav));
        let mut f = file(pcm, &[0; 100]);
        f.truncate(f.len() - 10);
        assert_eq!(parse(&f), Err(WavError::TruncatedData { claimed: 100, present: 90 }));
        let f = file(pcm, &[0; 101]);
        assert_eq!(parse(&f), Err(WavError::PartialFrame(101)));
        let f = file(WavFormat { sample_rate: 44100, ..pcm }, &[0; 4]);
        assert!(matches!(parse(&f), Err(WavError::UnsupportedRate { rate: 44100, .. })));
        let f = file(WavFormat { encoding: Encoding::Ulaw, sample_rate: 16000, channels: 1 }, &[0; 4]);
        assert!(matches!(parse(&f), Err(WavError::UnsupportedRate { rate: 16000, .. })));
        let f = file(WavFormat { channels: 3, ..pcm }, &[0; 6]);
        assert_eq!(parse(&f), Err(WavError::UnsupportedChannels(3)));
        let mut f = file(pcm, &[0; 4]);
        f[20] = 3; // IEEE float
        assert!(matches!(parse(&f), Err(WavError::UnsupportedEncoding { tag: 3, .. })));
        let f = file(pcm, &[0; 4]);
        assert_eq!(parse(&f[..30]), Err(WavError::Truncated));
        assert_eq!(parse(&f[..36]), Err(WavError::MissingData));
    }

    #[test]
    fn ambiguous_or_inconsistent_files_are_refused() {
        let pcm = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 1 };
        let ulaw = WavFormat { encoding: Encoding::Ulaw, ..pcm };
        let good = file(pcm, &[0; 8]);
        let fmt = &good[12..36];
        // A second fmt chunk before the data (the reader took the last, sox the first).
        let mut f = good[..36].to_vec();
        f.extend_from_slice(&file(ulaw, &[])[12..12 + 26]);
        f.extend_from_slice(&good[36..]);
        assert_eq!(parse(&f), Err(WavError::DuplicateChunk("fmt ")));
        // A fmt or a second data chunk after the data.
        let mut f = good.clone();
        f.extend_from_slice(fmt);
        assert_eq!(parse(&f), Err(WavError::DuplicateChunk("fmt ")));
        let mut f = good.clone();
        f.extend_from_slice(&good[36..]);
        assert_eq!(parse(&f), Err(WavError::DuplicateChunk("data")));
        // Other chunks after the data, and a cut trailing chunk, are fine.
        let mut f = good.clone();
        f.extend_from_slice(b"LIST\x02\0\0\0ab");
        f.extend_from_slice(b"id3 \xff\0");
        assert_eq!(parse(&f).unwrap().data, &[0; 8]);
        // Block align that is not channels × bytes per sample.
        let mut f = good.clone();
        f[32] = 4;
        assert_eq!(parse(&f), Err(WavError::BadFmt("block align is not channels × bytes per sample")));
        // cbSize past the chunk's end (G.711's 18-byte fmt).
        let mut f = file(ulaw, &[0; 4]);
        f[36] = 2;
        assert!(matches!(parse(&f), Err(WavError::BadFmt(m)) if m.contains("cbSize")));
    }

    #[test]
    fn skips_unknown_chunks_with_padding_and_reads_extensible() {
        let mut f = b"RIFF\0\0\0\0WAVE".to_vec();
        f.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        f.extend_from_slice(b"fmt \x28\0\0\0");
        f.extend_from_slice(&0xFFFEu16.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&16000u32.to_le_bytes());
        f.extend_from_slice(&32000u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&16u16.to_le_bytes());
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&16u16.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
        f.extend_from_slice(b"data\x04\0\0\0\x01\x00\xff\xff");
        let w = parse(&f).unwrap();
        assert_eq!(w.format, WavFormat { encoding: Encoding::Pcm16, sample_rate: 16000, channels: 1 });
        assert_eq!(channel_pcm16(&w, 0), vec![1, -1]);
        // Valid bits outside the container, or a short cbSize, are refused.
        let at = 12 + 12 + 8 + 18; // LIST chunk, fmt header, then validBits
        let mut bad = f.clone();
        bad[at..at + 2].copy_from_slice(&17u16.to_le_bytes());
        assert!(matches!(parse(&bad), Err(WavError::BadFmt(m)) if m.contains("valid bits")));
        let mut bad = f.clone();
        bad[at - 2..at].copy_from_slice(&20u16.to_le_bytes());
        assert!(matches!(parse(&bad), Err(WavError::BadFmt(m)) if m.contains("below 22")));
    }

    /// Everything a [`WavReader`] yields, read `step` bytes at a time.
    fn stream(file: &[u8], step: usize) -> Result<(WavFormat, Vec<u8>), WavError> {
        let format_error = |e: WavReadError| match e {
            WavReadError::Format(e) => e,
            WavReadError::Io(e) => panic!("a slice cannot fail to read: {e}"),
        };
        let mut r = WavReader::new(file).map_err(format_error)?;
        let mut data = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            let n = r.read_frames(&mut buf).map_err(format_error)?;
            if n == 0 {
                break;
            }
            assert_eq!(n % r.format().frame_bytes(), 0, "whole frames only");
            data.extend_from_slice(&buf[..n]);
            assert_eq!(r.position(), data.len() as u64);
        }
        Ok((r.format(), data))
    }

    #[test]
    fn the_stream_reader_agrees_with_the_parser() {
        let pcm = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 2 };
        let ulaw = WavFormat { encoding: Encoding::Ulaw, sample_rate: 8000, channels: 1 };
        let mut files = vec![file(pcm, &[1; 400]), file(ulaw, &[2; 333]), file(ulaw, &[])];
        let mut cut = file(pcm, &[3; 400]);
        cut.truncate(cut.len() - 6);
        files.push(cut);
        let mut trailing = file(ulaw, &[4; 9]);
        trailing.extend_from_slice(b"LIST\x02\0\0\0abdata");
        files.push(trailing);
        let mut second = file(ulaw, &[4; 9]);
        second.extend_from_slice(&file(ulaw, &[5; 4])[12 + 26..]);
        files.push(second);
        files.push(b"RIFF\0\0\0\0WAVEfmt \x10\0".to_vec());
        files.push(file(pcm, &[0; 6])); // 6 bytes: not whole stereo frames
        for f in &files {
            let parsed = parse(f).map(|w| (w.format, w.data.to_vec()));
            for step in [4, 7, 64, 4096] {
                assert_eq!(stream(f, step), parsed, "step {step}, file {:02x?}", &f[..f.len().min(48)]);
            }
        }
    }

    proptest::proptest! {
        /// Damaged files (bytes overwritten, cut short) get the same answer
        /// from the stream reader, in any piece size, as from the parser.
        #[test]
        fn the_stream_reader_agrees_with_the_parser_on_damaged_files(
            stereo in proptest::bool::ANY,
            len in 0usize..300,
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..4),
            cut in 0usize..420,
            step in 4usize..40,
        ) {
            let format = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 1 + stereo as u16 };
            let mut f = file(format, &vec![7; len]);
            f.extend_from_slice(b"LIST\x03\0\0\0abc\0");
            for (at, b) in edits {
                if let Some(x) = f.get_mut(at) {
                    *x = b;
                }
            }
            f.truncate(cut.min(f.len()));
            let parsed = parse(&f).map(|w| (w.format, w.data.to_vec()));
            proptest::prop_assert_eq!(stream(&f, step), parsed);
        }
    }

    #[test]
    fn data_of_unknown_length_runs_to_the_end() {
        let ulaw = WavFormat { encoding: Encoding::Ulaw, sample_rate: 8000, channels: 1 };
        let pcm = WavFormat { encoding: Encoding::Pcm16, ..ulaw };
        for (riff, size) in [(u32::MAX, u32::MAX), (0x7FFF_F024, 0x7FFF_F000), (0, 0), (u32::MAX, 0)] {
            let mut f = file(ulaw, &[]);
            f[4..8].copy_from_slice(&riff.to_le_bytes());
            let n = f.len();
            f[n - 4..].copy_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&[9; 1001]);
            assert_eq!(stream(&f, 100).unwrap().1, vec![9; 1001], "riff {riff:#x} size {size:#x}");
            assert_eq!(parse(&f).unwrap().data, &[9; 1001][..]);
        }
        // A real empty data chunk (the RIFF size fits) stays empty, its trailer checked.
        let mut f = file(ulaw, &[]);
        f.extend_from_slice(b"LIST\x00\0\0\0");
        assert_eq!(stream(&f, 100).unwrap().1, Vec::<u8>::new());
        // Unknown length ending inside a frame.
        let mut f = file(pcm, &[]);
        let n = f.len();
        f[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&[1; 5]);
        assert_eq!(stream(&f, 2), Err(WavError::PartialFrame(5)));
        assert_eq!(parse(&f), Err(WavError::PartialFrame(5)));
        // A huge fmt chunk is refused before anything is allocated for it.
        let mut f = b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\x7f".to_vec();
        f.extend_from_slice(&[0; 64]);
        assert!(matches!(stream(&f, 8), Err(WavError::BadFmt(m)) if m.contains("4 KiB")));
    }

    #[test]
    fn decodes_each_channel_of_stereo() {
        let format = WavFormat { encoding: Encoding::Ulaw, sample_rate: 8000, channels: 2 };
        let f = file(format, &[0xFF, 0x80, 0x00, 0xFF]);
        let w = parse(&f).unwrap();
        assert_eq!(channel_pcm16(&w, 0), vec![0, -32124]);
        assert_eq!(channel_pcm16(&w, 1), vec![32124, 0]);
    }
}
