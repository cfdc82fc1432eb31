//! The AVX2 build of G.711 decoding, chosen at run time: sixteen codes per
//! step by arithmetic instead of sixteen table loads, bit-identical to the
//! tables (tested over all 256 codes and every tail length).
//!
//! Both laws decode a code's 3-bit segment `s` and 4-bit mantissa `m` as
//! `((2m + add[s]) · 2^shift[s] − sub) · 2^k` with the sign from bit 7:
//! μ-law `add = 33`, `shift = s`, `sub = 33`, `k = 2`, bits inverted first,
//! bit 7 set = negative; A-law `add = 1, 33, 33, …`, `shift = 0, 0, 1, …, 6`,
//! `sub = 0`, `k = 3`, bits XOR 0x55 first, bit 7 set = positive. The
//! per-segment constants come from byte shuffles (`vpshufb`), the power of
//! two from a 16-bit multiply (AVX2 has no per-lane 16-bit shift).
//!
//! Like the correlator's, this module needs `unsafe` only to call the
//! `#[target_feature]` function and for its unaligned loads and stores.
#![allow(unsafe_code)]

/// Which law: the constants of the formula above.
#[derive(Clone, Copy)]
pub(super) struct Law {
    /// XORed into every code first.
    flip: u8,
    /// `add[s]` and `2^shift[s]` for s = 0..8.
    add: [u8; 8],
    pow: [u8; 8],
    sub: i16,
    /// Final left shift.
    k: i32,
    /// Whether bit 7 (after the flip) marks a negative value.
    negative_bit7: bool,
}

pub(super) const ULAW: Law =
    Law { flip: 0xFF, add: [33; 8], pow: [1, 2, 4, 8, 16, 32, 64, 128], sub: 33, k: 2, negative_bit7: true };
pub(super) const ALAW: Law = Law {
    flip: 0x55,
    add: [1, 33, 33, 33, 33, 33, 33, 33],
    pow: [1, 1, 2, 4, 8, 16, 32, 64],
    sub: 0,
    k: 3,
    negative_bit7: false,
};

/// Decodes `codes` into `out` (equal lengths) with the AVX2 build where the
/// CPU has it; returns how many leading samples it decoded (a multiple of
/// 16), the caller doing the rest with the table.
#[inline]
pub(super) fn decode_prefix(law: Law, codes: &[u8], out: &mut [i16]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if codes.len() >= 16 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected at run time, which is all
        // `decode_avx2` requires.
        return unsafe { decode_avx2(law, codes, out) };
    }
    let _ = (law, codes, out);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_avx2(law: Law, codes: &[u8], out: &mut [i16]) -> usize {
    use std::arch::x86_64::*;
    let table = |t: [u8; 8]| {
        let mut b = [0x80u8; 16];
        b[..8].copy_from_slice(&t);
        // SAFETY: `b` is 16 bytes; unaligned loads are allowed.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().cast::<__m128i>()) };
        _mm256_broadcastsi128_si256(v)
    };
    let (add, pow) = (table(law.add), table(law.pow));
    let flip = _mm256_set1_epi16(law.flip as i16);
    let low3 = _mm256_set1_epi16(0x07);
    let low4 = _mm256_set1_epi16(0x0F);
    let bit7 = _mm256_set1_epi16(0x80);
    // Index into the tables with the high byte of each lane ≥ 0x80, so the
    // shuffle zeroes it.
    let high = _mm256_set1_epi16(0x8000u16 as i16);
    let sub = _mm256_set1_epi16(law.sub);
    let k = _mm_cvtsi32_si128(law.k);
    let n = codes.len() / 16 * 16;
    for (c, o) in codes[..n].chunks_exact(16).zip(out[..n].chunks_exact_mut(16)) {
        // SAFETY: `c` is 16 bytes; unaligned loads are allowed.
        let v = unsafe { _mm_loadu_si128(c.as_ptr().cast::<__m128i>()) };
        let u = _mm256_xor_si256(_mm256_cvtepu8_epi16(v), flip);
        let seg = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(u), low3), high);
        let m2 = _mm256_slli_epi16::<1>(_mm256_and_si256(u, low4));
        let t = _mm256_add_epi16(m2, _mm256_shuffle_epi8(add, seg));
        let mag = _mm256_sll_epi16(_mm256_sub_epi16(_mm256_mullo_epi16(t, _mm256_shuffle_epi8(pow, seg)), sub), k);
        // All ones where bit 7 is set.
        let set = _mm256_cmpeq_epi16(_mm256_and_si256(u, bit7), bit7);
        let neg = if law.negative_bit7 { set } else { _mm256_xor_si256(set, _mm256_set1_epi16(-1)) };
        let value = _mm256_sub_epi16(_mm256_xor_si256(mag, neg), neg);
        // SAFETY: as above, `o` is 32 bytes.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast::<__m256i>(), value) };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::{alaw, ulaw};

    #[test]
    fn every_code_at_every_lane_and_every_tail_decodes_as_the_table_says() {
        // All 256 codes, rotated so each lands in every one of the 16 lanes,
        // and lengths 0..=300 so every tail length follows a vector part.
        let codes: Vec<u8> = (0..256 * 17).map(|i| ((i * 7 + i / 256) % 256) as u8).collect();
        for (law_decode, law_into) in [
            (ulaw::decode as fn(u8) -> i16, ulaw::decode_into as fn(&[u8], &mut [i16])),
            (alaw::decode, alaw::decode_into),
        ] {
            let mut out = vec![0i16; codes.len()];
            law_into(&codes, &mut out);
            for (c, o) in codes.iter().zip(&out) {
                assert_eq!(*o, law_decode(*c), "code {c:#04x}");
            }
            for len in 0..=300 {
                let mut out = vec![0i16; len];
                law_into(&codes[5..5 + len], &mut out);
                assert!(codes[5..5 + len].iter().zip(&out).all(|(c, o)| *o == law_decode(*c)), "length {len}");
            }
        }
    }
}
