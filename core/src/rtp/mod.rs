//! RTP (RFC 3550) and telephone-events (RFC 4733): parse headers, follow
//! key presses sent out of band, and rewrite event payloads in place so
//! the key never reaches the agent. (The rest of issue 6 — G.711 payloads
//! through the masker, SIP INFO, pcap scrubbing and the relay — builds on
//! these.)

mod event;
mod header;

pub use event::{EventKey, EventTracker, TelephoneEvent, neutralise};
pub use header::{RtpError, RtpHeader};
