//! Sample frames of a WAV file, between their interleaved bytes and one
//! buffer per channel (`mask` and `detect`).

use cardveil_core::codec::wav::WavFormat;
use cardveil_core::codec::{Encoding, alaw, ulaw};

/// The stored code of digital silence in `encoding`.
pub(crate) fn silence(encoding: Encoding) -> i16 {
    match encoding {
        Encoding::Pcm16 => 0,
        Encoding::Ulaw => ulaw::encode(0) as i16,
        Encoding::Alaw => alaw::encode(0) as i16,
    }
}

/// Splits interleaved frames into one buffer per channel (PCM16 samples,
/// or G.711 codes widened to i16).
pub(crate) fn deinterleave(f: WavFormat, bytes: &[u8], channels: &mut [Vec<i16>]) -> usize {
    let fb = f.frame_bytes();
    let n = bytes.len() / fb;
    if f.channels == 1 && f.encoding == Encoding::Pcm16 {
        // The common case, in a loop the compiler vectorises.
        for (o, s) in channels[0].iter_mut().zip(bytes.chunks_exact(2)) {
            *o = i16::from_le_bytes([s[0], s[1]]);
        }
        return n;
    }
    for (c, out) in channels.iter_mut().enumerate() {
        for (i, o) in out[..n].iter_mut().enumerate() {
            let at = i * fb + c * f.encoding.bytes_per_sample();
            *o = match f.encoding {
                Encoding::Pcm16 => i16::from_le_bytes([bytes[at], bytes[at + 1]]),
                _ => bytes[at] as i16,
            };
        }
    }
    n
}

/// Appends frames `range` of every channel, interleaved, to `out`.
pub(crate) fn interleave(f: WavFormat, channels: &[Vec<i16>], range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    if f.channels == 1 && f.encoding == Encoding::Pcm16 {
        let at = out.len();
        out.resize(at + range.len() * 2, 0);
        for (o, s) in out[at..].chunks_exact_mut(2).zip(&channels[0][range]) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        return;
    }
    for i in range {
        for ch in channels {
            match f.encoding {
                Encoding::Pcm16 => out.extend_from_slice(&ch[i].to_le_bytes()),
                _ => out.push(ch[i] as u8),
            }
        }
    }
}

/// Decodes one channel's stored samples (as [`deinterleave`] gives them:
/// PCM16, or G.711 codes widened to i16) to linear PCM in place; `codes`
/// is scratch room for as many G.711 codes.
pub(crate) fn to_linear(encoding: Encoding, samples: &mut [i16], codes: &mut [u8]) {
    let decode = match encoding {
        Encoding::Pcm16 => return,
        Encoding::Ulaw => ulaw::decode_into,
        Encoding::Alaw => alaw::decode_into,
    };
    let codes = &mut codes[..samples.len()];
    for (c, &s) in codes.iter_mut().zip(samples.iter()) {
        *c = s as u8;
    }
    decode(codes, samples);
}
