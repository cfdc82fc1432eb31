//! G.711 A-law (PCMA).
//!
//! Decoding uses a 256-entry table built at compile time, encoding an
//! 8 KiB one (the sample rounded to 13 bits). Every A-law code decodes to a distinct value, so all
//! 256 codes round-trip.

const fn decode_slow(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    // 13-bit magnitude (mid-riser: half a step added), scaled to 16 bits.
    let magnitude = if segment == 0 { (mantissa << 1) + 1 } else { ((mantissa << 1) + 33) << (segment - 1) };
    let value = magnitude << 3;
    if a & 0x80 != 0 { value as i16 } else { -value as i16 }
}

const fn build_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = decode_slow(i as u8);
        i += 1;
    }
    t
}

/// Decoded value of every A-law code.
pub static DECODE: [i16; 256] = build_table();

/// Decodes one A-law code to linear 16-bit PCM.
#[inline]
pub fn decode(code: u8) -> i16 {
    DECODE[code as usize]
}

/// Encodes one linear 16-bit sample to A-law by arithmetic: the reference
/// [`ENCODE`] is built from (and tested against, over every input).
const fn encode_slow(sample: i16) -> u8 {
    // Round to the nearest 13-bit value first (as sox does).
    let v = (sample as i32 + 4) >> 3;
    let (magnitude, mask) = if v >= 0 { (v, 0xD5u8) } else { (-v - 1, 0x55u8) };
    // Segment 0 covers 0..=31, segment s covers 2^(s+4) ..= 2^(s+5)-1.
    let segment = (32 - (magnitude as u32 | 0x1F).leading_zeros()).saturating_sub(5);
    let code = if segment >= 8 {
        0x7F
    } else if segment < 2 {
        ((segment as u8) << 4) | ((magnitude >> 1) & 0x0F) as u8
    } else {
        ((segment as u8) << 4) | ((magnitude >> segment) & 0x0F) as u8
    };
    code ^ mask
}

/// The encoder only looks at the sample rounded to 13 bits, −4096 ..= 4096.
const ENCODE_LEN: usize = 8193;

/// The A-law code of every 13-bit value (the sample rounded as [`encode`]
/// rounds it), offset by 4096: 8 KiB, built at compile time.
static ENCODE: [u8; ENCODE_LEN] = super::encode_table!(encode_slow, 3, ENCODE_LEN);

/// Encodes one linear 16-bit sample to A-law.
#[inline]
pub fn encode(sample: i16) -> u8 {
    // Round to the nearest 13-bit value (as sox does): −4096 ..= 4096 for
    // every i16, so the index is in range.
    ENCODE[(((sample as i32 + 4) >> 3) + 4096) as usize]
}

/// Decodes a buffer of A-law codes into `out`. The slices must have equal length.
///
/// # Panics
/// If the lengths differ (a programming error in the caller).
pub fn decode_into(codes: &[u8], out: &mut [i16]) {
    assert_eq!(codes.len(), out.len(), "G.711 buffer length mismatch");
    let done = super::simd::decode_prefix(super::simd::ALAW, codes, out);
    super::convert(&codes[done..], &mut out[done..], decode)
}

/// Encodes a buffer of linear samples into A-law codes. The slices must have equal length.
///
/// # Panics
/// If the lengths differ (a programming error in the caller).
pub fn encode_into(samples: &[i16], out: &mut [u8]) {
    super::convert(samples, out, encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_encodes_every_sample_as_the_arithmetic_does() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(encode(s), encode_slow(s), "at {s}");
        }
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(encode(decode(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn known_values_from_g711() {
        assert_eq!(decode(0xD5), 8);
        assert_eq!(decode(0x55), -8);
        assert_eq!(decode(0xAA), 32256);
        assert_eq!(decode(0x2A), -32256);
        assert_eq!(encode(0), 0xD5);
        assert_eq!(encode(-1), 0xD5, "rounds to zero");
        assert_eq!(encode(-5), 0x55);
        assert_eq!(encode(i16::MAX), 0xAA);
        assert_eq!(encode(i16::MIN), 0x2A);
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut last = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let d = decode(encode(s));
            assert!(d >= last, "at {s}");
            last = d;
        }
    }
}
