//! Writing files safely: to a temporary file beside the target, then renamed,
//! so a failure never leaves a partial file behind.

use std::io::Write;
use std::path::Path;

use crate::CliError;

/// Writes `parts` to `path` atomically (temporary file + rename).
pub fn write_atomically(path: &Path, parts: &[&[u8]]) -> Result<(), CliError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| CliError::input(path, "not a file name"))?;
    let tmp = dir.join(format!(".{}.cardveil-tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::input(path, format!("cannot write: {e}"))
    })
}
