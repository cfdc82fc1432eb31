//! Out-of-band DTMF: RTP (RFC 3550) headers, telephone-events (RFC 4733)
//! and SIP INFO bodies — follow the key presses sent out of band, and
//! rewrite them so the key never reaches the agent. (G.711 payloads through
//! the masker, pcap scrubbing and the relay build on these.)

mod event;
mod header;
mod sip_info;

pub use event::{EventKey, EventTracker, TelephoneEvent, neutralise};
pub use header::{RtpError, RtpHeader};
pub use sip_info::{InfoKey, parse_info, rewrite_info};
