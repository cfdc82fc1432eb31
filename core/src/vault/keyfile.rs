//! The development key file: KEKs as hex lines in a file only its owner
//! may read. It makes a vault work with zero setup; production keys come
//! from the host's key store (HSM, KMS) and are passed in as [`Kek`]s.
//!
//! ```text
//! # cardveil development key file — not for production
//! 1 9f2c…(64 hex digits)
//! 2 41aa…
//! ```
//!
//! Each line is a version and its 32-byte key; the highest version is
//! current. The file is created with mode 0600 and refused if group or
//! others can read it.

use std::fs;
use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::crypto::Kek;
use super::{Keyring, VaultError};

const HEADER: &str = "# cardveil development key file — not for production: keys come from the host's key store\n";

fn err(path: &Path, what: impl std::fmt::Display) -> VaultError {
    VaultError::KeyFile(format!("{}: {what}", path.display()))
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reads the keyring from `path`.
///
/// # Errors
/// [`VaultError::KeyFile`] if it cannot be read, others may read it, or a
/// line is malformed (the message names the line, never its key).
pub fn load(path: &Path) -> Result<Keyring, VaultError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(|e| err(path, e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(err(path, format_args!("readable by others (mode {:o}); chmod 600 it", mode & 0o777)));
        }
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| err(path, e))?);
    let mut ring: Option<Keyring> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || err(path, format_args!("line {}: expected a version and 64 hex digits", n + 1));
        let (version, hex) = line.split_once(' ').ok_or_else(bad)?;
        let version: u32 = version.parse().map_err(|_| bad())?;
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut key = Zeroizing::new([0u8; 32]);
        for (i, pair) in hex.chunks(2).enumerate() {
            let (Some(h), Some(l)) = (hex_value(pair[0]), hex_value(pair[1])) else { return Err(bad()) };
            key[i] = h << 4 | l;
        }
        if ring.as_ref().is_some_and(|r| r.get(version).is_some()) {
            return Err(err(path, format_args!("line {}: key version {version} appears twice", n + 1)));
        }
        let kek = Kek::new(version, &key);
        match &mut ring {
            None => ring = Some(Keyring::new(kek)),
            Some(r) => r.add(kek),
        }
    }
    ring.ok_or_else(|| err(path, "no key in the file"))
}

fn random_line(version: u32) -> Result<Zeroizing<String>, VaultError> {
    let mut key = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(&mut key[..]).map_err(|_| VaultError::Crypto(super::crypto::CryptoError::Random))?;
    let mut line = Zeroizing::new(String::with_capacity(70));
    line.push_str(&version.to_string());
    line.push(' ');
    for b in key.iter() {
        line.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        line.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    line.push('\n');
    Ok(line)
}

/// Reads the keyring from `path`, creating the file (mode 0600, one
/// random version-1 key) if it does not exist. Returns whether it was
/// created, so the caller can warn that production keys come from the host.
pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), VaultError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            let line = random_line(1)?;
            f.write_all(HEADER.as_bytes())
                .and_then(|_| f.write_all(line.as_bytes()))
                .and_then(|_| f.sync_all())
                .map_err(|e| {
                    let _ = fs::remove_file(path);
                    err(path, e)
                })?;
            Ok((load(path)?, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((load(path)?, false)),
        Err(e) => Err(err(path, e)),
    }
}

/// Appends a new random key one version above the current, for rotation;
/// returns the new keyring (current = the new key). If the rotation then
/// fails before the vault registered the version, [`remove_version`] takes
/// the line out again.
pub fn add_version(path: &Path) -> Result<Keyring, VaultError> {
    let next = load(path)?.current().version() + 1;
    let line = random_line(next)?;
    let mut f = fs::OpenOptions::new().append(true).open(path).map_err(|e| err(path, e))?;
    f.write_all(line.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| err(path, e))?;
    load(path)
}

/// Removes the key of `version` from the key file (written to a
/// temporary file, mode 0600, and renamed): a rotation that failed before
/// the vault registered that version leaves nothing behind.
pub fn remove_version(path: &Path, version: u32) -> Result<(), VaultError> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| err(path, e))?);
    let mut kept = Zeroizing::new(String::with_capacity(text.len()));
    for line in text.lines() {
        let v = line.trim().split_once(' ').and_then(|(v, _)| v.parse::<u32>().ok());
        if v != Some(version) || line.trim_start().starts_with('#') {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let tmp = path.with_extension("key-rotating");
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| f.write_all(kept.as_bytes()).and_then(|_| f.sync_all()));
    written.and_then(|()| fs::rename(&tmp, path)).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_rotate_and_refuse_bad_files() {
        let dir = std::env::temp_dir().join(format!("cardveil-keyfile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vault.key");
        let (ring, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(ring.current().version(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.versions().collect::<Vec<_>>(), vec![1]);
        let rotated = add_version(&path).unwrap();
        assert_eq!(rotated.versions().collect::<Vec<_>>(), vec![1, 2]);
        remove_version(&path, 2).unwrap();
        assert_eq!(load(&path).unwrap().versions().collect::<Vec<_>>(), vec![1]);
        add_version(&path).unwrap();
        // A version twice is refused (a key file edited by hand, two rotations at once).
        let twice = fs::read_to_string(&path).unwrap() + &format!("2 {}\n", "ab".repeat(32));
        fs::write(&path, twice).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("key version 2 appears twice"));

        let bad = dir.join("bad.key");
        for (text, why) in [("1 zz\n", "line 1"), ("# only a comment\n", "no key"), ("x 00\n", "line 1")] {
            fs::write(&bad, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)).unwrap();
            }
            let e = load(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(load(&path).unwrap_err().to_string().contains("chmod 600"));
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
