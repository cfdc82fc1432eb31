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

/// Parses a WAV file held in memory.
pub fn parse(file: &[u8]) -> Result<Wav<'_>, WavError> {
    if file.len() < 12 || &file[0..4] != b"RIFF" || &file[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12usize;
    let mut format = None;
    loop {
        if at >= file.len() {
            return Err(if format.is_none() { WavError::MissingFmt } else { WavError::MissingData });
        }
        let id = file.get(at..at + 4).ok_or(WavError::Truncated)?;
        let size = u32_at(file, at + 4).ok_or(WavError::Truncated)? as usize;
        let body_at = at + 8;
        if id == b"data" {
            let format = format.ok_or(WavError::MissingFmt)?;
            let present = file.len() - body_at;
            if size > present {
                return Err(WavError::TruncatedData { claimed: size as u64, present: present as u64 });
            }
            let data = &file[body_at..body_at + size];
            let fb = WavFormat::frame_bytes(&format);
            if !data.len().is_multiple_of(fb) {
                return Err(WavError::PartialFrame(data.len() as u64));
            }
            check_after_data(file, body_at + size + (size & 1))?;
            return Ok(Wav { format, data, data_offset: body_at });
        }
        let body =
            file.get(body_at..body_at.checked_add(size).ok_or(WavError::Truncated)?).ok_or(WavError::Truncated)?;
        if id == b"fmt " {
            if format.is_some() {
                return Err(WavError::DuplicateChunk("fmt "));
            }
            format = Some(parse_fmt(body)?);
        }
        // Chunks are padded to an even length.
        at = body_at + size + (size & 1);
    }
}

/// The chunks after the data (LIST, id3, …) may not include another `fmt `
/// or `data`; a trailing chunk cut short ends the walk (real files end
/// with stray bytes often enough).
fn check_after_data(file: &[u8], mut at: usize) -> Result<(), WavError> {
    while let (Some(id), Some(size)) = (file.get(at..at + 4), u32_at(file, at + 4)) {
        match id {
            b"fmt " => return Err(WavError::DuplicateChunk("fmt ")),
            b"data" => return Err(WavError::DuplicateChunk("data")),
            _ => {}
        }
        let size = size as usize;
        at = match (at + 8).checked_add(size + (size & 1)) {
            Some(next) if next <= file.len() => next,
            _ => break,
        };
    }
    Ok(())
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

    #[test]
    fn decodes_each_channel_of_stereo() {
        let format = WavFormat { encoding: Encoding::Ulaw, sample_rate: 8000, channels: 2 };
        let f = file(format, &[0xFF, 0x80, 0x00, 0xFF]);
        let w = parse(&f).unwrap();
        assert_eq!(channel_pcm16(&w, 0), vec![0, -32124]);
        assert_eq!(channel_pcm16(&w, 1), vec![32124, 0]);
    }
}
