//! The scrub manifest: one JSON line per scrubbed file, appended as each
//! file is finished, in a hash chain and optionally signed.
//!
//! Each line's `"prev"` is the SHA-256 of the line before it (64 zeros
//! for the first), so a line removed, inserted or edited breaks the chain
//! at the next line. With a signing key, each line ends with `"sig"`: the
//! Ed25519 signature of the line as it would read without that field
//! (`{…,"prev":"…"}`). A line cut short by a crash (no newline) is removed
//! when the manifest is next opened.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::CliError;
use crate::json::Obj;
use crate::selfcheck::sha256;
use crate::sign::{Signer, Verifier};

/// The `"prev"` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The separator before a line's signature.
const SIG: &str = ",\"sig\":\"";

/// A manifest open for appending.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: File,
    prev: String,
    signer: Option<Signer>,
}

/// The lines of a manifest, each parsed.
pub type Lines = Vec<(String, serde_json::Map<String, serde_json::Value>)>;

/// Reads a manifest's complete lines (a last line without its newline is
/// left out); every one must be a JSON object.
///
/// # Errors
/// [`CliError::Input`] if it cannot be read or a line is not JSON.
pub fn read(path: &Path) -> Result<(Lines, usize), CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::input(path, format!("cannot read: {e}")))?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let mut lines = Vec::new();
    for (n, line) in text[..complete].lines().enumerate() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(m)) => lines.push((line.to_owned(), m)),
            _ => return Err(CliError::input(path, format!("line {} is not a manifest entry", n + 1))),
        }
    }
    Ok((lines, complete))
}

impl Writer {
    /// Opens (or creates) the manifest at `path`; its entries so far.
    ///
    /// # Errors
    /// [`CliError::Input`] if it cannot be read or written.
    pub fn open(path: &Path, signer: Option<Signer>) -> Result<(Writer, Lines), CliError> {
        let cannot = |e: std::io::Error| CliError::input(path, format!("cannot write: {e}"));
        let (lines, complete) = if path.exists() { read(path)? } else { (Vec::new(), 0) };
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(cannot)?;
        // A line cut short by a crash goes; appends start after the last whole line.
        file.set_len(complete as u64).map_err(cannot)?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(cannot)?;
        let prev = lines.last().map_or_else(|| GENESIS.to_owned(), |(l, _)| sha256(l.as_bytes()));
        Ok((Writer { path: path.to_owned(), file, prev, signer }, lines))
    }

    /// Appends an entry (its `"prev"` and `"sig"` added); the line written.
    ///
    /// # Errors
    /// [`CliError::Input`] if the write fails.
    pub fn append(&mut self, entry: Obj) -> Result<String, CliError> {
        let mut line = entry.str("prev", &self.prev).finish();
        if let Some(s) = &self.signer {
            let sig = s.sign(line.as_bytes());
            line.pop();
            line.push_str(&format!("{SIG}{sig}\"}}"));
        }
        let cannot = |e: std::io::Error| CliError::input(&self.path, format!("cannot write: {e}"));
        self.file.write_all(format!("{line}\n").as_bytes()).map_err(cannot)?;
        self.file.sync_data().map_err(cannot)?;
        self.prev = sha256(line.as_bytes());
        Ok(line)
    }
}

/// Why a manifest line does not hold, if it does not: its place in the
/// chain after `prev` (the line before it, or `None` for the first), and
/// its signature when `verifier` is given.
pub fn check_line(line: &str, prev: Option<&str>, verifier: Option<&Verifier>) -> Option<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { return Some("not a JSON line".into()) };
    let want = prev.map_or_else(|| GENESIS.to_owned(), |p| sha256(p.as_bytes()));
    if v.get("prev").and_then(|p| p.as_str()) != Some(want.as_str()) {
        return Some("the hash chain is broken here (a line before it was removed, inserted or edited)".into());
    }
    let verifier = verifier?;
    let Some(at) = line.rfind(SIG) else { return Some("not signed".into()) };
    let sig = line[at + SIG.len()..].trim_end_matches("\"}");
    let message = format!("{}}}", &line[..at]);
    (!verifier.verify(message.as_bytes(), sig)).then(|| "the signature does not match (the line was edited)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_chain_and_sign_and_a_torn_last_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("cardveil-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k");
        crate::sign::keygen(&key, &mut Vec::new()).unwrap();
        let verifier = Verifier::load(&crate::sign::public_path(&key)).unwrap();
        let path = dir.join("manifest.jsonl");
        let (mut w, old) = Writer::open(&path, Some(Signer::load(&key).unwrap())).unwrap();
        assert!(old.is_empty());
        let a = w.append(Obj::new().str("input", "a.wav")).unwrap();
        let b = w.append(Obj::new().str("input", "b.wav")).unwrap();
        assert_eq!(check_line(&a, None, Some(&verifier)), None);
        assert_eq!(check_line(&b, Some(&a), Some(&verifier)), None);
        assert!(check_line(&b, None, Some(&verifier)).unwrap().contains("chain"));
        let edited = b.replace("b.wav", "c.wav");
        assert!(check_line(&edited, Some(&a), Some(&verifier)).unwrap().contains("signature"));
        assert_eq!(check_line(&edited, Some(&a), None), None, "unsigned checks see only the chain");
        drop(w);
        // A crash mid-line: the torn line goes, appends continue the chain.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"input\":\"tor").unwrap();
        let (mut w, old) = Writer::open(&path, None).unwrap();
        assert_eq!(old.len(), 2);
        let c = w.append(Obj::new().str("input", "c.wav")).unwrap();
        assert_eq!(check_line(&c, Some(&b), None), None);
        assert!(check_line(&c, Some(&b), Some(&verifier)).unwrap().contains("not signed"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{a}\n{b}\n{c}\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
