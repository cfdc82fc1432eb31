//! Sample formats and the G.711 companding laws.
//!
//! [`ulaw`] and [`alaw`] are bit-exact with ITU-T G.711's tables: every code
//! decodes to the standard's reconstruction level, and a 16-bit sample is
//! first rounded to the nearest 14-bit (μ-law) or 13-bit (A-law) value, then
//! encoded. Over the whole 16-bit range the codes equal `sox`'s (tested).

pub mod alaw;
mod simd;
pub mod ulaw;
pub mod wav;

/// The sample encodings the audio path accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Linear 16-bit signed PCM, native endianness in memory.
    Pcm16,
    /// G.711 μ-law (PCMU, RTP payload type 0).
    Ulaw,
    /// G.711 A-law (PCMA, RTP payload type 8).
    Alaw,
}

impl Encoding {
    /// Bytes per sample in this encoding.
    pub const fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Pcm16 => 2,
            Encoding::Ulaw | Encoding::Alaw => 1,
        }
    }
}

/// The table of a G.711 encoder that first rounds the sample to
/// `16 − $shift` bits ((sample + 2^($shift−1)) >> $shift: −2^(15−$shift)
/// ..= 2^(15−$shift) for every i16): `$slow`'s code for each of those
/// values, offset by 2^(15−$shift), built at compile time. (A macro: a
/// `const fn` cannot call the encoder through a pointer.)
macro_rules! encode_table {
    ($slow:ident, $shift:expr, $len:expr) => {{
        let half = 1i32 << (15 - $shift);
        let mut t = [0u8; $len];
        let mut i = 0;
        while i < $len {
            // A sample that rounds to value i − half (clamped into i16 at the top).
            let v = (i as i32 - half) << $shift;
            let s = if v > i16::MAX as i32 { i16::MAX } else { v as i16 };
            t[i] = $slow(s);
            i += 1;
        }
        t
    }};
}
pub(crate) use encode_table;

/// Converts `src` into `dst` sample by sample with `f` (equal lengths).
///
/// # Panics
/// If the lengths differ (a programming error in the caller).
#[inline]
fn convert<A: Copy, B>(src: &[A], dst: &mut [B], f: impl Fn(A) -> B) {
    assert_eq!(src.len(), dst.len(), "G.711 buffer length mismatch");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn buffer_conversions_match_the_sample_functions() {
        let pcm: Vec<i16> = (-40..40).map(|i| i * 800).collect();
        let mut codes = vec![0u8; pcm.len()];
        let mut back = vec![0i16; pcm.len()];
        super::ulaw::encode_into(&pcm, &mut codes);
        super::ulaw::decode_into(&codes, &mut back);
        assert!(pcm.iter().zip(&back).all(|(&s, &b)| b == super::ulaw::decode(super::ulaw::encode(s))));
        super::alaw::encode_into(&pcm, &mut codes);
        super::alaw::decode_into(&codes, &mut back);
        assert!(pcm.iter().zip(&back).all(|(&s, &b)| b == super::alaw::decode(super::alaw::encode(s))));
    }
}
