//! G.711 μ-law (PCMU).
//!
//! Decoding uses a 256-entry table built at compile time, encoding a
//! 16 KiB one (the sample rounded to 14 bits). Note that G.711 μ-law has two codes for zero: `0xFF`
//! (+0) and `0x7F` (−0); both decode to 0, which encodes back to `0xFF`.

const BIAS: i32 = 0x21; // 33, in 14-bit units
const CLIP: i32 = 8159; // largest 14-bit magnitude that μ-law represents

const fn decode_slow(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    // 14-bit magnitude, then scaled to 16 bits.
    let magnitude = (((mantissa << 1) + BIAS) << exponent) - BIAS;
    let value = magnitude << 2;
    if u & 0x80 != 0 { -value as i16 } else { value as i16 }
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

/// Decoded value of every μ-law code.
pub static DECODE: [i16; 256] = build_table();

/// Decodes one μ-law code to linear 16-bit PCM.
#[inline]
pub fn decode(code: u8) -> i16 {
    DECODE[code as usize]
}

/// Encodes one linear 16-bit sample to μ-law by arithmetic: the reference
/// [`ENCODE`] is built from (and tested against, over every input).
const fn encode_slow(sample: i16) -> u8 {
    // Round to the nearest 14-bit value first (as sox does; this puts the
    // decision thresholds half-way between G.711's reconstruction levels).
    let mut v = (sample as i32 + 2) >> 2;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > CLIP {
        v = CLIP;
    }
    v += BIAS;
    // Segment = position of the highest set bit above bit 5 (v is in 33..=8192);
    // only the clipped maximum 8192 lands in "segment 8", the largest code.
    let segment = (31 - (v as u32).leading_zeros()).saturating_sub(5);
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = ((v >> (segment + 1)) & 0x0F) as u8;
    ((segment as u8) << 4 | mantissa) ^ mask
}

/// The encoder only looks at the sample rounded to 14 bits, −8192 ..= 8192.
const ENCODE_LEN: usize = 16385;

/// The μ-law code of every 14-bit value (the sample rounded as [`encode`]
/// rounds it), offset by 8192: 16 KiB, built at compile time. A lookup is
/// about a tenth of the arithmetic's time (issue 18: the encode cost more
/// than the whole detector on the decode → mask → encode path).
static ENCODE: [u8; ENCODE_LEN] = super::encode_table!(encode_slow, 2, ENCODE_LEN);

/// Encodes one linear 16-bit sample to μ-law.
#[inline]
pub fn encode(sample: i16) -> u8 {
    // Round to the nearest 14-bit value (as sox does; this puts the
    // decision thresholds half-way between G.711's reconstruction levels):
    // −8192 ..= 8192 for every i16, so the index is in range.
    ENCODE[(((sample as i32 + 2) >> 2) + 8192) as usize]
}

/// Decodes a buffer of μ-law codes into `out`. The slices must have equal length.
///
/// # Panics
/// If the lengths differ (a programming error in the caller).
pub fn decode_into(codes: &[u8], out: &mut [i16]) {
    assert_eq!(codes.len(), out.len(), "G.711 buffer length mismatch");
    let done = super::simd::decode_prefix(super::simd::ULAW, codes, out);
    super::convert(&codes[done..], &mut out[done..], decode)
}

/// Encodes a buffer of linear samples into μ-law codes. The slices must have equal length.
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
    fn every_code_round_trips_except_negative_zero() {
        for code in 0..=255u8 {
            let back = encode(decode(code));
            if code == 0x7F {
                assert_eq!(back, 0xFF, "−0 re-encodes as +0");
            } else {
                assert_eq!(back, code, "code {code:#04x}");
            }
        }
    }

    #[test]
    fn known_values_from_g711() {
        assert_eq!(decode(0xFF), 0);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(decode(0x00), -32124);
        assert_eq!(encode(0), 0xFF);
        assert_eq!(encode(i16::MAX), 0x80);
        assert_eq!(encode(i16::MIN), 0x00);
    }

    #[test]
    fn encoding_is_monotonic() {
        // Decoding the encoding of an increasing ramp never decreases.
        let mut last = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let d = decode(encode(s));
            assert!(d >= last, "at {s}");
            last = d;
        }
    }
}
