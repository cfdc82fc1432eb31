//! Reading inputs and writing outputs safely.
//!
//! * A regular output file is written to a temporary file beside it and
//!   renamed over it, so a failure never leaves a partial file. The
//!   temporary is created exclusively (`O_CREAT | O_EXCL`, which also
//!   refuses to follow a symlink planted at its name) under a random name,
//!   mode 0600 until it is complete; it is removed if the command fails, on
//!   SIGINT / SIGTERM / SIGHUP, and — after a `kill -9` or a crash — the
//!   next time the same output is written (leftovers of processes that no
//!   longer run).
//! * An output that exists and is not a regular file (a device such as
//!   `/dev/null`, a FIFO) is written through, never replaced by a file.
//! * Inputs are read up to [`MAX_INPUT`] bytes (a WAV cannot be larger;
//!   `/dev/zero` is refused instead of filling memory).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::CliError;

/// The largest input read: RIFF sizes are 32-bit, and a capture larger
/// than this is past what one run holds in memory.
pub const MAX_INPUT: u64 = 4 << 30;

/// Marks cardveil's temporaries: `.NAME.cardveil-tmp-PID-RANDOM`.
const TMP_MARK: &str = ".cardveil-tmp-";

/// Reads a whole input file, at most [`MAX_INPUT`] bytes.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    let cannot = |e: std::io::Error| CliError::input(path, format!("cannot read: {e}"));
    let file = File::open(path).map_err(cannot)?;
    let kind = file.metadata().map_err(cannot)?.file_type();
    if kind.is_char_device() || kind.is_block_device() || kind.is_socket() {
        return Err(CliError::input(path, "cannot read: a device, not a recording"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(CliError::input(
            path,
            format!("larger than {} GiB: not a recording cardveil reads", MAX_INPUT >> 30),
        ));
    }
    Ok(bytes)
}

/// Writes `parts` to `path`: atomically (temporary file + rename) for a
/// regular file or a new one, written through for a device or a FIFO.
pub fn write_atomically(path: &Path, parts: &[&[u8]]) -> Result<(), CliError> {
    let cannot = |e: std::io::Error| CliError::input(path, format!("cannot write: {e}"));
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(CliError::input(path, "cannot write: is a directory")),
        Ok(m) if m.file_type().is_symlink() => {
            // The symlink itself is replaced, never its target written: say so.
            return Err(CliError::input(path, "cannot write: is a symbolic link (give the real path)"));
        }
        Ok(m) if m.file_type().is_char_device() || m.file_type().is_fifo() || m.file_type().is_block_device() => {
            let mut f = OpenOptions::new().write(true).open(path).map_err(cannot)?;
            return parts.iter().try_for_each(|p| f.write_all(p)).and_then(|()| f.flush()).map_err(cannot);
        }
        Ok(m) if !m.is_file() => return Err(CliError::input(path, "cannot write: not a regular file")),
        _ => {}
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| CliError::input(path, "not a file name"))?;
    let name = name.to_string_lossy();
    remove_leftovers(dir, &name);
    let tmp = dir.join(format!(".{name}{TMP_MARK}{}-{:016x}", std::process::id(), random()));
    // Registered before it exists: a signal between creating the file and
    // registering it left the temporary behind (the fail-closed test's
    // SIGTERM, sent the moment the file appears, hit that window under load).
    // Unlinking a path not yet created is harmless.
    let guard = Pending::register(&tmp);
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(cannot)?;
    let result = (|| {
        let mut f = file;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        // Readable as a file created the ordinary way would be, now it is whole.
        let mode = 0o666 & !umask();
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    drop(guard);
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cannot(e)
    })
}

/// The process's umask, from `/proc/self/status` (Linux ≥ 4.7; reading it
/// by setting and restoring it would race with threads creating files),
/// else the usual 022.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_owned())))
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

/// 64 random bits (the standard library's per-process random hash keys).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// Removes `.NAME.cardveil-tmp-PID-…` files in `dir` whose process no longer runs.
fn remove_leftovers(dir: &Path, name: &str) {
    let prefix = format!(".{name}{TMP_MARK}");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The temporary being written, for the signal handler (a leaked C string, or null).
static PENDING: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
static HANDLERS: Once = Once::new();

/// A temporary registered for removal on a fatal signal while it exists.
struct Pending;

impl Pending {
    fn register(tmp: &Path) -> Pending {
        HANDLERS.call_once(install_handlers);
        if let Ok(c) = CString::new(tmp.as_os_str().as_bytes()) {
            let old = PENDING.swap(c.into_raw(), Ordering::AcqRel);
            free(old);
        }
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        free(PENDING.swap(std::ptr::null_mut(), Ordering::AcqRel));
    }
}

fn free(p: *mut libc::c_char) {
    if !p.is_null() {
        // SAFETY: every non-null value stored in PENDING came from CString::into_raw, and
        // the swap that returned it removed it, so it is freed once.
        drop(unsafe { CString::from_raw(p) });
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let p = PENDING.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: a valid NUL-terminated path (see `free`); unlink is async-signal-safe.
        unsafe { libc::unlink(p) };
    }
    // SAFETY: signal and raise are async-signal-safe; the default action ends the process
    // with the signal's status, as if this handler had not been there.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn install_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cardveil-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_replace_files_atomically_and_never_follow_links() {
        let d = dir("atomic");
        let out = d.join("out.wav");
        write_atomically(&out, &[b"ab", b"cd"]).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"abcd");
        write_atomically(&out, &[b"new"]).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        // A symlink at the output is refused, its target untouched.
        let target = d.join("victim");
        std::fs::write(&target, b"keep").unwrap();
        let link = d.join("link.wav");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomically(&link, &[b"x"]).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // A leftover of a dead process is removed; nothing else is.
        let dead = d.join(format!(".out.wav{TMP_MARK}{}-00", u32::MAX - 1));
        let other = d.join(".other.wav.cardveil-tmp-1-00");
        std::fs::write(&dead, b"masked audio").unwrap();
        std::fs::write(&other, b"x").unwrap();
        write_atomically(&out, &[b"again"]).unwrap();
        assert!(!dead.exists() && other.exists());
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 4, "{left:?}"); // out.wav, victim, link.wav, .other…: nothing of ours
    }

    #[test]
    fn devices_are_written_through_and_huge_inputs_refused() {
        write_atomically(Path::new("/dev/null"), &[b"abc"]).unwrap();
        assert!(Path::new("/dev/null").metadata().unwrap().file_type().is_char_device(), "still a device");
        let d = dir("dir");
        assert!(write_atomically(&d, &[b"x"]).unwrap_err().to_string().contains("directory"));
        assert!(read_input(Path::new("/nonexistent/x.wav")).unwrap_err().to_string().contains("cannot read"));
        assert!(read_input(Path::new("/dev/zero")).unwrap_err().to_string().contains("a device"));
    }
}
