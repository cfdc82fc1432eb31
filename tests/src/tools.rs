//! External programs the tests call (espeak-ng, sox, ...): finding them, and
//! failing loudly in CI when one is missing instead of skipping silently.

use std::process::Command;

/// Whether `program` runs (`program --version` or `--help` exits at all).
pub fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

/// Returns true if `program` is available. Otherwise panics under CI
/// (`CI` set) and returns false elsewhere, after saying what was skipped.
pub fn require(program: &str, what: &str) -> bool {
    if have(program) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{program} is required for {what} in CI but is not installed");
    }
    eprintln!("SKIPPED {what}: {program} not installed (apt-get install {program})");
    false
}

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Little-endian 16-bit samples from raw bytes.
pub fn s16le(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}
