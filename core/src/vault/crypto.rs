//! The vault's cryptography (all of it `ring`): each PAN record is sealed
//! with AES-256-GCM under its own random data key, with a fresh nonce and
//! the token id *and the record's metadata* (its expiry time, last four,
//! length and token format: [`record_context`]) as associated data, so an
//! edit to any of them makes the record fail to open; the data key is itself sealed under a
//! versioned key-encryption key (KEK), with the token id and KEK version as
//! associated data, so rotating the KEK rewraps data keys without touching
//! PAN ciphertexts. An optional HMAC-SHA256 fingerprint, keyed by HKDF from
//! the KEK material, finds "same card" without decrypting anything.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::capture::Pan;

/// Why sealing or opening failed. Never says anything about the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// AES-GCM refused to seal (input beyond its limits).
    #[error("sealing failed")]
    Seal,
    /// The record does not open with this key (tampered, wrong token or wrong KEK).
    #[error("record authentication failed (tampered, or wrong key or token)")]
    Open,
    /// The record was sealed under another KEK version.
    #[error("record was sealed under KEK version {record}, this key is version {key}")]
    KekVersion {
        /// The record's KEK version.
        record: u32,
        /// The key's version.
        key: u32,
    },
}

/// A key-encryption key and its version. `Debug` shows the version only.
pub struct Kek {
    version: u32,
    key: LessSafeKey,
    fingerprint: hmac::Key,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek(version {})", self.version)
    }
}

impl Kek {
    /// A KEK from 32 bytes of key material (from the host's key store).
    pub fn new(version: u32, material: &[u8; 32]) -> Kek {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, material).expect("32 bytes is an AES-256 key"));
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"cardveil vault v1").extract(material);
        let okm = prk.expand(&[b"pan fingerprint"], hmac::HMAC_SHA256).expect("HMAC key length is within HKDF's limit");
        Kek { version, key, fingerprint: hmac::Key::from(okm) }
    }

    /// The version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The keyed fingerprint of a PAN (same PAN, same fingerprint, per KEK).
    pub fn fingerprint(&self, pan: &Pan) -> [u8; 32] {
        let tag = hmac::sign(&self.fingerprint, pan.expose());
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }
}

/// A sealed PAN. Holds no card data in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The token's 128-bit id (bound into both seals).
    pub token_id: [u8; 16],
    /// The KEK version that sealed the data key.
    pub kek_version: u32,
    /// Nonce ‖ sealed data key ‖ tag.
    pub wrapped_key: Vec<u8>,
    /// Nonce ‖ sealed PAN digits ‖ tag.
    pub ciphertext: Vec<u8>,
}

fn seal_with(key: &LessSafeKey, aad: &[u8], plain: &[u8], rng: &SystemRandom) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
    // Capacity for the tag up front, so sealing never reallocates and
    // leaves a copy of the plaintext behind; wiped if sealing fails.
    let mut buf = Zeroizing::new(Vec::with_capacity(plain.len() + AES_256_GCM.tag_len()));
    buf.extend_from_slice(plain);
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut *buf)
        .map_err(|_| CryptoError::Seal)?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(CryptoError::Open);
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).map_err(|_| CryptoError::Open)?;
    let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let len = key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| CryptoError::Open)?.len();
    buf.truncate(len);
    Ok(buf)
}

/// The metadata bound into a PAN ciphertext: expiry (Unix seconds), the
/// last four digits, the PAN's length and the token format (0 opaque,
/// 1 numeric). The KEK version is bound into the data key's seal.
pub fn record_context(expires_at: i64, last4: &str, digits: u8, numeric_token: bool) -> Vec<u8> {
    let mut c = Vec::with_capacity(40);
    c.extend_from_slice(b"cardveil record v2");
    c.extend_from_slice(&expires_at.to_be_bytes());
    c.push(digits);
    c.push(numeric_token as u8);
    c.push(last4.len() as u8);
    c.extend_from_slice(last4.as_bytes());
    c
}

/// Associated data of a PAN ciphertext: the token id, then its context
/// (none for records sealed before metadata was bound).
fn pan_aad(token_id: &[u8; 16], context: &[u8]) -> Vec<u8> {
    [token_id.as_slice(), context].concat()
}

fn key_aad(token_id: &[u8; 16], version: u32) -> [u8; 20] {
    let mut aad = [0u8; 20];
    aad[..16].copy_from_slice(token_id);
    aad[16..].copy_from_slice(&version.to_be_bytes());
    aad
}

fn data_key(raw: &[u8]) -> Result<LessSafeKey, CryptoError> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).map_err(|_| CryptoError::Open)?))
}

/// Seals `pan` for `token_id` and its metadata `context` ([`record_context`])
/// under a fresh data key wrapped by `kek`.
pub fn seal(
    pan: &Pan,
    token_id: [u8; 16],
    context: &[u8],
    kek: &Kek,
    rng: &SystemRandom,
) -> Result<Sealed, CryptoError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rng.fill(&mut raw[..]).map_err(|_| CryptoError::Random)?;
    let ciphertext = seal_with(&data_key(&raw[..])?, &pan_aad(&token_id, context), pan.expose(), rng)?;
    let wrapped_key = seal_with(&kek.key, &key_aad(&token_id, kek.version), &raw[..], rng)?;
    Ok(Sealed { token_id, kek_version: kek.version, wrapped_key, ciphertext })
}

/// Opens a sealed PAN whose metadata is `context` ([`record_context`]).
pub fn open(sealed: &Sealed, context: &[u8], kek: &Kek) -> Result<Pan, CryptoError> {
    open_record(sealed, context, kek).map(|(pan, _)| pan)
}

/// Opens a sealed PAN as [`open`] does, and says whether it was sealed
/// before metadata was bound (token id alone as associated data: such a
/// record opens whatever its metadata says, and is resealed with it bound
/// at the next key rotation). A record sealed with its metadata never
/// opens the old way: its tag covers the metadata.
pub fn open_record(sealed: &Sealed, context: &[u8], kek: &Kek) -> Result<(Pan, bool), CryptoError> {
    if sealed.kek_version != kek.version {
        return Err(CryptoError::KekVersion { record: sealed.kek_version, key: kek.version });
    }
    let raw = open_with(&kek.key, &key_aad(&sealed.token_id, kek.version), &sealed.wrapped_key)?;
    let key = data_key(&raw)?;
    let (digits, legacy) = match open_with(&key, &pan_aad(&sealed.token_id, context), &sealed.ciphertext) {
        Ok(d) => (d, false),
        Err(_) => (open_with(&key, &sealed.token_id, &sealed.ciphertext)?, true),
    };
    let mut pan = Pan::default();
    for &d in digits.iter() {
        if d > 9 || !pan.0.push(d) {
            return Err(CryptoError::Open);
        }
    }
    Ok((pan, legacy))
}

/// Seals a vault secret (the audit key) under `kek`, `label` and the KEK
/// version bound as associated data: nonce ‖ sealed secret ‖ tag.
pub fn wrap_secret(secret: &[u8], label: &[u8], kek: &Kek, rng: &SystemRandom) -> Result<Vec<u8>, CryptoError> {
    seal_with(&kek.key, &[label, &kek.version.to_be_bytes()].concat(), secret, rng)
}

/// Opens what [`wrap_secret`] sealed.
pub fn unwrap_secret(sealed: &[u8], label: &[u8], kek: &Kek) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_with(&kek.key, &[label, &kek.version.to_be_bytes()].concat(), sealed)
}

/// Rewraps a record's data key from `old` to `new` (KEK rotation); the PAN
/// ciphertext is untouched.
pub fn rewrap(sealed: &Sealed, old: &Kek, new: &Kek, rng: &SystemRandom) -> Result<Sealed, CryptoError> {
    if sealed.kek_version != old.version {
        return Err(CryptoError::KekVersion { record: sealed.kek_version, key: old.version });
    }
    let raw = open_with(&old.key, &key_aad(&sealed.token_id, old.version), &sealed.wrapped_key)?;
    let wrapped_key = seal_with(&new.key, &key_aad(&sealed.token_id, new.version), &raw, rng)?;
    Ok(Sealed { wrapped_key, kek_version: new.version, ..sealed.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pan(s: &str) -> Pan {
        let mut p = Pan::default();
        for b in s.bytes() {
            p.0.push(b - b'0');
        }
        p
    }

    #[test]
    fn seal_open_rotate_and_refuse_tampering() {
        let rng = SystemRandom::new();
        let k1 = Kek::new(1, &[7; 32]);
        let k2 = Kek::new(2, &[9; 32]);
        let p = pan("4111111111111111");
        let ctx = record_context(1_900_000_000, "1111", 16, false);
        let s = seal(&p, [1; 16], &ctx, &k1, &rng).unwrap();
        assert_eq!(open(&s, &ctx, &k1).unwrap().expose(), p.expose());
        assert!(!open_record(&s, &ctx, &k1).unwrap().1, "bound, not legacy");
        // Any edit of the bound metadata — expiry, last four, length, token format — and it does not open.
        for other in [
            record_context(1_900_000_001, "1111", 16, false),
            record_context(1_900_000_000, "1112", 16, false),
            record_context(1_900_000_000, "1111", 15, false),
            record_context(1_900_000_000, "1111", 16, true),
            Vec::new(),
        ] {
            assert_eq!(open(&s, &other, &k1).unwrap_err(), CryptoError::Open);
        }
        // A record sealed before metadata was bound opens, flagged legacy.
        let mut legacy = s.clone();
        let mut raw = Zeroizing::new([0u8; 32]);
        rng.fill(&mut raw[..]).unwrap();
        legacy.ciphertext = seal_with(&data_key(&raw[..]).unwrap(), &[1; 16], p.expose(), &rng).unwrap();
        legacy.wrapped_key = seal_with(&k1.key, &key_aad(&[1; 16], 1), &raw[..], &rng).unwrap();
        let (opened, was_legacy) = open_record(&legacy, &ctx, &k1).unwrap();
        assert!(was_legacy && opened.expose() == p.expose());
        // Neither the digits nor their ASCII appear in what is stored.
        for hay in [&s.ciphertext, &s.wrapped_key] {
            assert!(!hay.windows(16).any(|w| w == p.expose() || w == b"4111111111111111"));
        }
        // Two seals of the same PAN differ (fresh data key and nonces).
        let s2 = seal(&p, [1; 16], &ctx, &k1, &rng).unwrap();
        assert_ne!(s.ciphertext, s2.ciphertext);
        // Tampering, another token id, or another KEK: refused.
        let mut t = s.clone();
        t.ciphertext[20] ^= 1;
        assert_eq!(open(&t, &ctx, &k1).unwrap_err(), CryptoError::Open);
        let mut t = s.clone();
        t.token_id[0] ^= 1;
        assert_eq!(open(&t, &ctx, &k1).unwrap_err(), CryptoError::Open);
        assert!(matches!(open(&s, &ctx, &k2), Err(CryptoError::KekVersion { record: 1, key: 2 })));
        let forged = Kek::new(1, &[8; 32]);
        assert_eq!(open(&s, &ctx, &forged).unwrap_err(), CryptoError::Open);
        // Rotation: the new KEK opens, the PAN ciphertext is unchanged.
        let r = rewrap(&s, &k1, &k2, &rng).unwrap();
        assert_eq!(r.ciphertext, s.ciphertext);
        assert_eq!(open(&r, &ctx, &k2).unwrap().expose(), p.expose());
        assert!(open(&r, &ctx, &k1).is_err());
        // Errors and Debug name no card data.
        assert!(!format!("{r:?}{:?}{k1:?}", open(&t, &ctx, &k1)).contains("4111"));
    }

    #[test]
    fn fingerprints_match_the_same_card_only() {
        let k = Kek::new(1, &[3; 32]);
        let a = k.fingerprint(&pan("4111111111111111"));
        assert_eq!(a, k.fingerprint(&pan("4111111111111111")));
        assert_ne!(a, k.fingerprint(&pan("4111111111111112")));
        assert_ne!(a, Kek::new(1, &[4; 32]).fingerprint(&pan("4111111111111111")));
    }
}
