//! Token formats.
//!
//! * Opaque (the default): `tok_` + 128 random bits in lowercase RFC 4648
//!   base32 (26 characters, no padding) + 2 check characters (a weighted
//!   sum that catches every single-character substitution, and 5 bits of
//!   SHA-256), so a mistyped token is refused before any lookup.
//! * Numeric: as long as the PAN, keeping its last four digits, starting
//!   with 9 (no card brand's IIN does) and failing Luhn on purpose, for
//!   systems that only store digit strings.
//!
//! Randomness comes from the operating system (`ring::rand::SystemRandom`).

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use crate::capture::{PAN_DIGITS, Pan, luhn};

/// The opaque token prefix.
pub const PREFIX: &str = "tok_";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters of an opaque token: prefix + 26 + 2.
pub const OPAQUE_LEN: usize = PREFIX.len() + 26 + 2;

/// Why a token was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not `tok_` followed by 28 base32 characters.
    #[error("not a cardveil token (expected tok_ and 28 base32 characters)")]
    Malformed,
    /// The check characters do not match (a typo, or not ours).
    #[error("token check characters do not match")]
    Check,
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// A numeric token needs a PAN of 12 to 19 digits.
    #[error("a numeric token needs a PAN of 12 to 19 digits")]
    PanLength,
    /// A run of digits that passes Luhn (or does not start with 9) is never
    /// a numeric token — it may be a card number, so it is refused unseen.
    #[error(
        "not a token: digits that could be a card number are refused (tokens are tok_… or start with 9 and fail Luhn)"
    )]
    NotNumericToken,
}

/// Whether `token` is well-formed — an opaque token with matching check
/// characters, or a numeric token (12–19 digits, starting with 9, failing
/// Luhn) — before anything looks it up. Anything else is refused, and what
/// was offered is never echoed, stored or audited: it may be a PAN typed
/// where a token belongs.
///
/// # Errors
/// [`TokenError::Malformed`], [`TokenError::Check`] or
/// [`TokenError::NotNumericToken`].
pub fn validate(token: &str) -> Result<(), TokenError> {
    if token.starts_with(PREFIX) {
        return parse_opaque(token).map(|_| ());
    }
    let b = token.as_bytes();
    if !PAN_DIGITS.contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
        return Err(TokenError::Malformed);
    }
    let digits: Vec<u8> = b.iter().map(|d| d - b'0').collect();
    if digits[0] != 9 || luhn(&digits) {
        return Err(TokenError::NotNumericToken);
    }
    Ok(())
}

/// The two check characters of an id: Σ (2i+1)·v_i mod 32 over the 26
/// base32 values (odd weights are invertible mod 32, so every
/// single-character substitution changes it), then 5 bits of SHA-256.
fn check(id: &[u8; 16]) -> [u8; 2] {
    let weighted = base32(id)
        .iter()
        .enumerate()
        .map(|(i, c)| (2 * i as u32 + 1) * ALPHABET.iter().position(|a| a == c).expect("alphabet") as u32)
        .sum::<u32>()
        % 32;
    let h = digest::digest(&digest::SHA256, id);
    [ALPHABET[weighted as usize], ALPHABET[(h.as_ref()[0] >> 3) as usize]]
}

/// Encodes 16 bytes as 26 base32 characters (the last one carries 3 bits).
fn base32(id: &[u8; 16]) -> [u8; 26] {
    let mut out = [0u8; 26];
    let mut acc = 0u32;
    let mut bits = 0;
    let mut n = 0;
    for &b in id {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out[n] = ALPHABET[((acc >> bits) & 31) as usize];
            n += 1;
        }
    }
    out[n] = ALPHABET[((acc << (5 - bits)) & 31) as usize];
    out
}

/// A new opaque token and its 128-bit id.
pub fn opaque(rng: &SystemRandom) -> Result<(String, [u8; 16]), TokenError> {
    let mut id = [0u8; 16];
    rng.fill(&mut id).map_err(|_| TokenError::Random)?;
    Ok((format_opaque(&id), id))
}

/// The opaque token for an id.
pub fn format_opaque(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(OPAQUE_LEN);
    s.push_str(PREFIX);
    s.extend(base32(id).iter().map(|&c| c as char));
    s.extend(check(id).iter().map(|&c| c as char));
    s
}

/// The id of an opaque token, after checking its form and check characters.
pub fn parse_opaque(token: &str) -> Result<[u8; 16], TokenError> {
    let body = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?.as_bytes();
    if body.len() != 28 {
        return Err(TokenError::Malformed);
    }
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).ok_or(TokenError::Malformed);
    let mut id = [0u8; 16];
    let (mut acc, mut bits, mut n) = (0u32, 0, 0);
    for (i, &c) in body[..26].iter().enumerate() {
        let v = value(c)? as u32;
        if i == 25 {
            // 3 bits of data, 2 bits that must be zero.
            if v & 3 != 0 {
                return Err(TokenError::Malformed);
            }
            acc = (acc << 3) | (v >> 2);
            bits += 3;
        } else {
            acc = (acc << 5) | v;
            bits += 5;
        }
        if bits >= 8 {
            bits -= 8;
            id[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    for &c in &body[26..] {
        value(c)?;
    }
    if check(&id) != [body[26], body[27]] {
        return Err(TokenError::Check);
    }
    Ok(id)
}

/// A numeric token for `pan`: same length, same last four, starts with 9,
/// fails Luhn. Returned as ASCII digits.
pub fn numeric(pan: &Pan, rng: &SystemRandom) -> Result<String, TokenError> {
    let d = pan.expose();
    if !PAN_DIGITS.contains(&d.len()) {
        return Err(TokenError::PanLength);
    }
    let mut random = [0u8; 19];
    rng.fill(&mut random).map_err(|_| TokenError::Random)?;
    let mut digits = [0u8; 19];
    let n = d.len();
    digits[0] = 9;
    for i in 1..n - 4 {
        // 250 = 25·10: reduce without bias by folding the top 6 values.
        digits[i] = (random[i] % 250) % 10;
    }
    digits[n - 4..n].copy_from_slice(&d[n - 4..]);
    if luhn(&digits[..n]) {
        // Any single-digit change breaks Luhn.
        digits[1] = (digits[1] + 1) % 10;
    }
    Ok(digits[..n].iter().map(|&x| (x + b'0') as char).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_tokens_round_trip_and_refuse_typos() {
        let rng = SystemRandom::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let (t, id) = opaque(&rng).unwrap();
            assert_eq!(t.len(), OPAQUE_LEN);
            assert!(t.starts_with("tok_") && t[4..].bytes().all(|c| ALPHABET.contains(&c)), "{t}");
            assert_eq!(parse_opaque(&t), Ok(id));
            assert!(seen.insert(t.clone()));
            // Every single-character change is refused.
            for pos in 4..t.len() {
                let mut b = t.clone().into_bytes();
                b[pos] = if b[pos] == b'a' { b'b' } else { b'a' };
                let changed = String::from_utf8(b).unwrap();
                if changed != t {
                    assert!(parse_opaque(&changed).is_err(), "{changed}");
                }
            }
        }
        assert_eq!(parse_opaque("tok_short"), Err(TokenError::Malformed));
        assert_eq!(parse_opaque(&"x".repeat(OPAQUE_LEN)), Err(TokenError::Malformed));
        assert_eq!(parse_opaque(&format!("tok_{}", "A".repeat(28))), Err(TokenError::Malformed));
        assert_eq!(
            format_opaque(&[0; 16]),
            format!("tok_{}{}", "a".repeat(26), std::str::from_utf8(&check(&[0; 16])).unwrap())
        );
    }

    #[test]
    fn numeric_tokens_keep_length_and_last_four_and_fail_luhn() {
        let rng = SystemRandom::new();
        for pan in ["4111111111111111", "378282246310005", "6759649826438453123", "500000000003"] {
            let mut p = Pan::default();
            for b in pan.bytes() {
                p.0.push(b - b'0');
            }
            for _ in 0..200 {
                let t = numeric(&p, &rng).unwrap();
                assert_eq!(t.len(), pan.len());
                assert_eq!(&t[t.len() - 4..], &pan[pan.len() - 4..]);
                assert!(t.starts_with('9'));
                let d: Vec<u8> = t.bytes().map(|b| b - b'0').collect();
                assert!(!luhn(&d), "numeric token passes Luhn");
                assert_ne!(t, pan);
            }
        }
        assert_eq!(numeric(&Pan::default(), &rng), Err(TokenError::PanLength));
    }
}
