//! The one error type of the core. Messages say what went wrong, never with
//! which card data.

/// Errors from the core's constructors and configuration checks.
///
/// The audio path itself does not fail: a frame of any length is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sample rate is not one the detector supports.
    #[error("unsupported sample rate {0} Hz (supported: 8000, 16000, 48000)")]
    UnsupportedSampleRate(u32),
}
