//! Out-of-band DTMF: RTP (RFC 3550) headers, telephone-events (RFC 4733)
//! and SIP INFO bodies — follow the key presses sent out of band, and
//! rewrite them so the key never reaches the agent; [`RtpStream`] scrubs a
//! whole stream in place (G.711 payloads through the masker, events
//! rewritten or dropped, each key press reported once).

mod control;
mod event;
mod header;
mod sip_info;
mod stream;

/// The RTP clock of G.711 audio and of its telephone-events (RFC 3551,
/// RFC 4733), Hz: timestamps and the streams' positions count its samples.
pub const CLOCK_HZ: u32 = 8000;

pub use control::{Control, recognise};
pub use event::{EventKey, EventTracker, TelephoneEvent, event_key, neutralise};
pub use header::{RtpError, RtpHeader};
pub use sip_info::{InfoKey, RewrittenInfo, parse_info, rewrite_info, rewrite_message, scrub_message_in_place};
pub use stream::{
    DEFAULT_EVENT_PT, DEFAULT_FIXED_EVENT, EventAction, KeySource, PT_CN, PT_PCMA, PT_PCMU, RtpStream, RtpStreamConfig,
    StreamEvent, StreamKey, Verdict,
};
