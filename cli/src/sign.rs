//! Ed25519 signing of scrub manifests (`ring`).
//!
//! `cardveil keygen FILE` writes a signing key file (created new, mode
//! 0600, refused later if others may read it) and `FILE.pub` beside it:
//!
//! ```text
//! # cardveil manifest signing key (Ed25519, PKCS#8) — keep it secret
//! ed25519-pkcs8 3051…(hex)
//! ```
//!
//! ```text
//! # cardveil manifest public key (Ed25519)
//! ed25519 8f1c…(64 hex digits)
//! ```
//!
//! The public key is what an assessor gives `cardveil verify --public-key`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::CliError;
use crate::hex::{decode as unhex, encode as hex};

const SECRET_TAG: &str = "ed25519-pkcs8";
const PUBLIC_TAG: &str = "ed25519";

/// The value of the one `TAG hex` line of a key file (comments skipped).
fn tagged(path: &Path, text: &str, tag: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let value = match (lines.next().and_then(|l| l.split_once(' ')), lines.next()) {
        (Some((t, v)), None) if t == tag => v.trim(),
        _ => return Err(CliError::input(path, format!("not a cardveil key file (one line '{tag} HEX' expected)"))),
    };
    unhex(value).map(Zeroizing::new).ok_or_else(|| CliError::input(path, format!("the {tag} value is not hex")))
}

/// The public key file written beside a signing key.
pub fn public_path(secret: &Path) -> PathBuf {
    let mut p = secret.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `cardveil keygen FILE`: a new signing key and its public key file; one
/// JSON line with the public key.
///
/// # Errors
/// [`CliError::Input`] if either file exists or cannot be written.
pub fn keygen(path: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CliError::input(path, "no random numbers"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| CliError::input(path, "bad generated key"))?;
    let public = hex(pair.public_key().as_ref());
    let pub_path = public_path(path);
    if pub_path.exists() {
        return Err(CliError::input(&pub_path, "exists already: keygen never replaces a key"));
    }
    let write = |p: &Path, mode: u32, text: &str| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(p)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    let secret = Zeroizing::new(format!(
        "# cardveil manifest signing key (Ed25519, PKCS#8) — keep it secret\n{SECRET_TAG} {}\n",
        hex(pkcs8.as_ref())
    ));
    write(path, 0o600, &secret).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "exists already: keygen never replaces a key".to_string()
        } else {
            format!("cannot write: {e}")
        };
        CliError::input(path, why)
    })?;
    let text = format!("# cardveil manifest public key (Ed25519)\n{PUBLIC_TAG} {public}\n");
    write(&pub_path, 0o644, &text).map_err(|e| CliError::input(&pub_path, format!("cannot write: {e}")))?;
    let line = crate::json::Obj::event("keygen")
        .str("signing_key", &path.display().to_string())
        .str("public_key_file", &pub_path.display().to_string())
        .str("public_key", &public);
    writeln!(out, "{}", line.finish()).map_err(|e| CliError::input(Path::new("<stdout>"), e))
}

/// A loaded signing key.
pub struct Signer(Ed25519KeyPair);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Signer").field(&hex(self.0.public_key().as_ref())).finish()
    }
}

impl Signer {
    /// Reads a key file written by [`keygen`].
    ///
    /// # Errors
    /// [`CliError::Input`] if it cannot be read, others may read it, or it
    /// does not hold an Ed25519 key (the message never shows the key).
    pub fn load(path: &Path) -> Result<Signer, CliError> {
        let cannot = |e: std::io::Error| CliError::input(path, format!("cannot read: {e}"));
        let mode = std::fs::metadata(path).map_err(cannot)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CliError::input(path, format!("readable by others (mode {:o}); chmod 600 it", mode & 0o777)));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(cannot)?);
        let der = tagged(path, &text, SECRET_TAG)?;
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| CliError::input(path, "not an Ed25519 PKCS#8 key"))?;
        Ok(Signer(pair))
    }

    /// The signature of `message`, in hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex(self.0.sign(message).as_ref())
    }

    /// The public key, in hex.
    pub fn public_key(&self) -> String {
        hex(self.0.public_key().as_ref())
    }
}

/// A public key to check signatures with.
#[derive(Debug)]
pub struct Verifier(Vec<u8>);

impl Verifier {
    /// Reads a public key file (`ed25519 HEX`).
    ///
    /// # Errors
    /// [`CliError::Input`] if it cannot be read or is not one.
    pub fn load(path: &Path) -> Result<Verifier, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::input(path, format!("cannot read: {e}")))?;
        let key = tagged(path, &text, PUBLIC_TAG)?;
        if key.len() != 32 {
            return Err(CliError::input(path, "an Ed25519 public key has 32 bytes"));
        }
        Ok(Verifier(key.to_vec()))
    }

    /// Whether `signature` (hex) is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        unhex(signature).is_some_and(|s| UnparsedPublicKey::new(&ED25519, &self.0).verify(message, &s).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_verify_and_are_kept_private() {
        let dir = std::env::temp_dir().join(format!("cardveil-sign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("manifest.key");
        let mut out = Vec::new();
        keygen(&key, &mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        let signer = Signer::load(&key).unwrap();
        assert!(line.contains(&signer.public_key()), "{line}");
        assert!(!line.contains(&std::fs::read_to_string(&key).unwrap().lines().nth(1).unwrap()[14..]));
        let verifier = Verifier::load(&public_path(&key)).unwrap();
        let sig = signer.sign(b"a manifest line");
        assert!(verifier.verify(b"a manifest line", &sig));
        assert!(!verifier.verify(b"a manifest line!", &sig));
        assert!(!verifier.verify(b"a manifest line", "00"));
        assert!(!format!("{signer:?}").contains(&std::fs::read_to_string(&key).unwrap()[80..100]));
        // Never replaced; refused once others may read it.
        assert!(keygen(&key, &mut Vec::new()).unwrap_err().to_string().contains("exists already"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Signer::load(&key).unwrap_err().to_string().contains("readable by others"));
        assert!(Verifier::load(&key).is_err(), "a secret key file is not a public key file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
