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
//! * `-` is standard output; the file is then written as it is made.
//! * Inputs are opened with [`open_input`] and read as streams (`-` is
//!   standard input); devices and directories are refused (`/dev/zero` is
//!   not a recording).
//!
//! Several outputs may be pending at once (`scrub --jobs N`): each
//! temporary has its own slot for the signal handler.

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

/// Marks cardveil's temporaries: `.NAME.cardveil-tmp-PID-RANDOM`.
const TMP_MARK: &str = ".cardveil-tmp-";

/// The input buffer: it serves the header's small reads; the one-second
/// reads of sample data are larger and go past it, straight into the
/// caller's buffer (one copy, not two).
const INPUT_BUFFER: usize = 8 << 10;

/// Opens an input as a buffered stream: a file, or standard input for `-`.
///
/// # Errors
/// [`CliError::Input`] if it cannot be opened, or is a device, a socket or
/// a directory (or `-` is a terminal).
pub fn open_input(path: &Path) -> Result<Box<dyn Read + Send>, CliError> {
    if path == Path::new("-") {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            return Err(CliError::input(path, "standard input is a terminal: pipe a recording in"));
        }
        return Ok(Box::new(std::io::BufReader::with_capacity(INPUT_BUFFER, std::io::stdin())));
    }
    let cannot = |e: std::io::Error| CliError::input(path, format!("cannot read: {e}"));
    let file = File::open(path).map_err(cannot)?;
    let kind = file.metadata().map_err(cannot)?.file_type();
    if kind.is_char_device() || kind.is_block_device() || kind.is_socket() {
        return Err(CliError::input(path, "cannot read: a device, not a recording"));
    }
    if kind.is_dir() {
        return Err(CliError::input(path, "cannot read: is a directory"));
    }
    Ok(Box::new(std::io::BufReader::with_capacity(INPUT_BUFFER, file)))
}

/// Writes `parts` to `path`: atomically (temporary file + rename) for a
/// regular file or a new one, written through for a device or a FIFO.
pub fn write_atomically(path: &Path, parts: &[&[u8]]) -> Result<(), CliError> {
    let mut out = Output::create(path)?;
    for p in parts {
        out.write_all(p).map_err(|e| out.error(e))?;
    }
    out.commit()
}

/// An output being written: see the module docs. Dropped without
/// [`Output::commit`], a temporary is removed and nothing replaces the file.
#[derive(Debug)]
pub struct Output {
    path: std::path::PathBuf,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    /// A temporary beside the file, renamed over it on commit.
    Atomic { file: std::io::BufWriter<File>, tmp: std::path::PathBuf, _pending: Pending },
    /// A device or a FIFO, written through.
    Through(std::io::BufWriter<File>),
    /// Standard output.
    Stdout(std::io::BufWriter<std::io::Stdout>),
}

impl Output {
    /// Starts writing `path` (`-`: standard output).
    ///
    /// # Errors
    /// [`CliError::Input`] for a directory, a symbolic link (never
    /// followed), anything else that is not a regular file, a device or a
    /// FIFO, or when the temporary cannot be created.
    pub fn create(path: &Path) -> Result<Output, CliError> {
        let sink = |sink| Ok(Output { path: path.to_owned(), sink });
        if path == Path::new("-") {
            return sink(Sink::Stdout(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())));
        }
        let cannot = |e: std::io::Error| CliError::input(path, format!("cannot write: {e}"));
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => return Err(CliError::input(path, "cannot write: is a directory")),
            Ok(m) if m.file_type().is_symlink() => {
                // The symlink itself is replaced, never its target written: say so.
                return Err(CliError::input(path, "cannot write: is a symbolic link (give the real path)"));
            }
            Ok(m) if m.file_type().is_char_device() || m.file_type().is_fifo() || m.file_type().is_block_device() => {
                let f = OpenOptions::new().write(true).open(path).map_err(cannot)?;
                return sink(Sink::Through(std::io::BufWriter::with_capacity(1 << 16, f)));
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
        let pending = Pending::register(&tmp);
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(cannot)?;
        let file = std::io::BufWriter::with_capacity(1 << 16, file);
        sink(Sink::Atomic { file, tmp, _pending: pending })
    }

    /// Whether this is standard output (where the command's JSON lines
    /// cannot go as well).
    pub fn is_stdout(&self) -> bool {
        matches!(self.sink, Sink::Stdout(_))
    }

    /// Overwrites bytes already written at `offset` (a header whose sizes
    /// are known only at the end); `false` if the output cannot seek (a
    /// device, a FIFO, standard output), leaving it as it is.
    pub fn rewrite_at(&mut self, offset: u64, bytes: &[u8]) -> Result<bool, CliError> {
        use std::io::{Seek, SeekFrom};
        let Sink::Atomic { file, .. } = &mut self.sink else { return Ok(false) };
        let r = (|| {
            file.flush()?;
            let f = file.get_mut();
            let end = f.stream_position()?;
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(bytes)?;
            f.seek(SeekFrom::Start(end))?;
            Ok(())
        })();
        r.map(|()| true).map_err(|e| self.error(e))
    }

    /// Flushes what was written and returns the temporary's path, to read
    /// the output back before it replaces the file (the scrub self-check);
    /// `None` for a device, a FIFO or standard output.
    pub fn written_so_far(&mut self) -> Result<Option<&Path>, CliError> {
        let flushed = self.flush();
        flushed.map_err(|e| self.error(e))?;
        Ok(match &self.sink {
            Sink::Atomic { tmp, .. } => Some(tmp.as_path()),
            _ => None,
        })
    }

    /// The error to report for a failed write.
    pub fn error(&self, e: std::io::Error) -> CliError {
        CliError::input(&self.path, format!("cannot write: {e}"))
    }

    /// Finishes the output: flushed, and a temporary synced, made readable
    /// as a file created the ordinary way would be, and renamed over the
    /// file.
    pub fn commit(mut self) -> Result<(), CliError> {
        let path = self.path.clone();
        let cannot = |e: std::io::Error| CliError::input(&path, format!("cannot write: {e}"));
        match &mut self.sink {
            Sink::Stdout(w) => w.flush().map_err(cannot),
            Sink::Through(w) => w.flush().map_err(cannot),
            Sink::Atomic { file, tmp, .. } => {
                let result = (|| {
                    file.flush()?;
                    file.get_ref().sync_all()?;
                    let mode = 0o666 & !umask();
                    std::fs::set_permissions(&*tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
                    std::fs::rename(&*tmp, &path)
                })();
                if result.is_ok() {
                    // Renamed: nothing for Drop to remove.
                    tmp.clear();
                }
                result.map_err(cannot)
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.sink {
            Sink::Atomic { file, .. } => file.write(buf),
            Sink::Through(w) => w.write(buf),
            Sink::Stdout(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Atomic { file, .. } => file.write_all(buf),
            Sink::Through(w) => w.write_all(buf),
            Sink::Stdout(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Atomic { file, .. } => file.flush(),
            Sink::Through(w) => w.flush(),
            Sink::Stdout(w) => w.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Sink::Atomic { tmp, .. } = &self.sink
            && !tmp.as_os_str().is_empty()
        {
            let _ = std::fs::remove_file(tmp);
        }
    }
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

/// Temporaries that may run at once (`scrub --jobs` is capped below this).
pub const MAX_PENDING: usize = 256;

/// The temporaries being written, for the signal handler (leaked C strings, or null).
static PENDING: [AtomicPtr<libc::c_char>; MAX_PENDING] = [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_PENDING];
static HANDLERS: Once = Once::new();

/// A temporary registered for removal on a fatal signal while it exists:
/// its slot in [`PENDING`] (none if every slot is taken — more outputs at
/// once than `scrub` allows).
#[derive(Debug)]
struct Pending(Option<usize>);

impl Pending {
    fn register(tmp: &Path) -> Pending {
        HANDLERS.call_once(install_handlers);
        let Ok(c) = CString::new(tmp.as_os_str().as_bytes()) else { return Pending(None) };
        let p = c.into_raw();
        for (i, slot) in PENDING.iter().enumerate() {
            if slot.compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Pending(Some(i));
            }
        }
        free(p);
        Pending(None)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            free(PENDING[i].swap(std::ptr::null_mut(), Ordering::AcqRel));
        }
    }
}

fn free(p: *mut libc::c_char) {
    if !p.is_null() {
        // SAFETY: every non-null value stored in PENDING came from CString::into_raw, and
        // the swap that returned it removed it, so it is freed once (a value never stored
        // is freed by its only owner).
        drop(unsafe { CString::from_raw(p) });
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &PENDING {
        let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: a valid NUL-terminated path (see `free`); unlink is async-signal-safe.
            unsafe { libc::unlink(p) };
        }
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
        let refused = |p: &Path| open_input(p).err().expect("refused").to_string();
        assert!(refused(Path::new("/nonexistent/x.wav")).contains("cannot read"));
        assert!(refused(Path::new("/dev/zero")).contains("a device"));
        assert!(refused(&d).contains("is a directory"));
    }
}
