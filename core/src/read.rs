//! Reading whole pieces from a stream (the WAV and capture readers).

/// Reads up to `buf.len()` bytes, fewer only at the end of the stream
/// (a read interrupted by a signal is retried).
pub(crate) fn fill(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
