//! The one error type of the core. Messages say what went wrong, never with
//! which card data.

/// Errors from the core's constructors and configuration checks.
///
/// The audio path fails only on a frame of the wrong type; any length is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sample rate is not one the detector supports.
    #[error("unsupported sample rate {0} Hz (supported: 8000, 16000, 48000)")]
    UnsupportedSampleRate(u32),
    /// G.711 was asked for at a rate other than 8000 Hz.
    #[error("G.711 (μ-law, A-law) is 8000 Hz only, not {0} Hz")]
    G711Rate(u32),
    /// The look-ahead is longer than the masker supports.
    #[error("look-ahead of {0} ms is too long (at most 200 ms)")]
    LookaheadTooLong(u32),
    /// A call set up for one frame API was used through the other (delay
    /// line vs two-phase analyse/mask).
    #[error("this call was set up for the {0} API")]
    WrongApi(&'static str),
    /// A frame of the wrong sample type was passed (PCM16 to a G.711 masker or the reverse).
    #[error("wrong frame type: this masker was set up for {0:?}")]
    WrongFrameType(crate::codec::Encoding),
    /// A packet is not RTP, or is malformed.
    #[error("not an RTP packet: {0}")]
    Rtp(#[from] crate::rtp::RtpError),
}
