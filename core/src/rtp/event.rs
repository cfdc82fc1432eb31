//! RFC 4733 telephone-events: the payload, a tracker that turns a stream of
//! event packets into key presses, and the in-place rewrite that keeps the
//! key from reaching the agent.
//!
//! An event's packets share the RTP timestamp of its start: the first has
//! the marker bit, continuations repeat it with a growing duration, and the
//! end packet (E bit) is usually sent three times. The tracker reports each
//! key once: down at its first packet, up at its first end packet (or when
//! a newer event starts and the end was lost); retransmitted ends, late
//! duplicates and reordered continuations are ignored; timestamps compare
//! with wrap-around.

use crate::dtmf::Key;

/// One 4-byte telephone-event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 A–D, others not DTMF.
    pub event: u8,
    /// The E bit: the event has ended.
    pub end: bool,
    /// Volume, 0 to −63 dBm0 (as the positive number).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// The first event block of a payload, if it has at least 4 bytes.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The DTMF key of the event code, if it is one.
    pub fn key(&self) -> Option<Key> {
        event_key(self.event)
    }
}

/// The DTMF key of RFC 4733 event code `code`: 0–9 digits, 10 `*`, 11 `#`,
/// 12–15 A–D; `None` for the other codes.
pub fn event_key(code: u8) -> Option<Key> {
    const CODES: &[u8; 16] = b"0123456789*#ABCD";
    CODES.get(code as usize).and_then(|&c| Key::from_char(c as char))
}

/// Rewrites every event block in `payload` to event code `code` (timing,
/// volume and end bits kept, so the receiver's view of the stream stays
/// consistent): the key no longer leaves. Returns how many blocks changed.
pub fn neutralise(payload: &mut [u8], code: u8) -> usize {
    let mut n = 0;
    for block in payload.chunks_exact_mut(4) {
        if block[0] != code {
            block[0] = code;
            n += 1;
        }
    }
    n
}

/// A key press seen in telephone-events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKey {
    /// A key went down; `timestamp` is the event's RTP timestamp.
    Down {
        /// The key.
        key: Key,
        /// The event's RTP timestamp (its start).
        timestamp: u32,
    },
    /// The key was released.
    Up {
        /// The key.
        key: Key,
        /// The event's RTP timestamp.
        timestamp: u32,
        /// Duration in timestamp units (the longest seen).
        duration: u16,
        /// False if no end packet arrived (a newer event started first).
        ended: bool,
    },
}

/// Recently ended events remembered, for retransmitted ends and late packets.
const RECENT: usize = 16;

/// Turns one stream's telephone-event packets into key presses. No
/// allocation; per SSRC.
#[derive(Debug, Clone, Default)]
pub struct EventTracker {
    current: Option<(u32, Key, u16)>,
    recent: [Option<u32>; RECENT],
    next: usize,
}

/// Whether RTP timestamp `a` is after `b` (across wrap-around).
pub(crate) fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl EventTracker {
    /// A tracker with no event seen.
    pub fn new() -> EventTracker {
        EventTracker::default()
    }

    fn remember(&mut self, ts: u32) {
        self.recent[self.next] = Some(ts);
        self.next = (self.next + 1) % RECENT;
    }

    /// One telephone-event packet with RTP timestamp `ts`.
    pub fn packet(&mut self, ts: u32, e: &TelephoneEvent, mut on: impl FnMut(EventKey)) {
        let Some(key) = e.key() else { return };
        if self.recent.contains(&Some(ts)) {
            return; // retransmitted end, or a late packet of an ended event
        }
        match self.current {
            Some((cts, ckey, dur)) if cts == ts => {
                let duration = dur.max(e.duration);
                if e.end {
                    on(EventKey::Up { key: ckey, timestamp: ts, duration, ended: true });
                    self.current = None;
                    self.remember(ts);
                } else {
                    self.current = Some((cts, ckey, duration));
                }
            }
            Some((cts, _, _)) if !newer(ts, cts) => {} // a late packet of an older event
            current => {
                if let Some((cts, ckey, dur)) = current {
                    // A newer event: the previous one's end was lost.
                    on(EventKey::Up { key: ckey, timestamp: cts, duration: dur, ended: false });
                    self.remember(cts);
                }
                on(EventKey::Down { key, timestamp: ts });
                if e.end {
                    on(EventKey::Up { key, timestamp: ts, duration: e.duration, ended: true });
                    self.current = None;
                    self.remember(ts);
                } else {
                    self.current = Some((ts, key, e.duration));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent { event, end, volume: 10, duration }
    }

    fn run(packets: &[(u32, TelephoneEvent)]) -> Vec<EventKey> {
        let mut t = EventTracker::new();
        let mut out = Vec::new();
        for (ts, e) in packets {
            t.packet(*ts, e, |k| out.push(k));
        }
        out
    }

    #[test]
    fn start_continuation_and_three_ends_make_one_press() {
        let k5 = Key::from_char('5').unwrap();
        let out = run(&[
            (1000, ev(5, false, 160)),
            (1000, ev(5, false, 320)),
            (1000, ev(5, false, 480)),
            (1000, ev(5, true, 640)),
            (1000, ev(5, true, 640)),
            (1000, ev(5, true, 640)),
        ]);
        assert_eq!(
            out,
            vec![
                EventKey::Down { key: k5, timestamp: 1000 },
                EventKey::Up { key: k5, timestamp: 1000, duration: 640, ended: true }
            ]
        );
    }

    #[test]
    fn loss_reordering_wrap_and_non_dtmf_events() {
        let key = |c| Key::from_char(c).unwrap();
        // The end of '1' lost; '#' starts across the timestamp wrap; a late
        // continuation of '1' arrives after '#' began; event 16 (flash) ignored.
        let out = run(&[
            (u32::MAX - 1000, ev(1, false, 160)),
            (u32::MAX - 1000, ev(1, false, 320)),
            (200, ev(11, false, 160)),
            (u32::MAX - 1000, ev(1, false, 480)),
            (200, ev(16, false, 160)),
            (200, ev(11, true, 800)),
            (200, ev(11, true, 800)),
            (900, ev(0, true, 400)), // only an end packet survived
        ]);
        assert_eq!(
            out,
            vec![
                EventKey::Down { key: key('1'), timestamp: u32::MAX - 1000 },
                EventKey::Up { key: key('1'), timestamp: u32::MAX - 1000, duration: 320, ended: false },
                EventKey::Down { key: key('#'), timestamp: 200 },
                EventKey::Up { key: key('#'), timestamp: 200, duration: 800, ended: true },
                EventKey::Down { key: key('0'), timestamp: 900 },
                EventKey::Up { key: key('0'), timestamp: 900, duration: 400, ended: true },
            ]
        );
    }

    #[test]
    fn parse_and_neutralise() {
        let mut payload = [5u8, 0x8A, 0x03, 0x20, 7, 0x0A, 0x00, 0xA0];
        assert_eq!(TelephoneEvent::parse(&payload), Some(ev(5, true, 800)));
        assert_eq!(TelephoneEvent::parse(&payload[..3]), None);
        assert_eq!(neutralise(&mut payload, 16), 2);
        assert_eq!(payload, [16, 0x8A, 0x03, 0x20, 16, 0x0A, 0x00, 0xA0]);
        assert_eq!(TelephoneEvent::parse(&payload).unwrap().key(), None);
        for code in 0..=255u8 {
            let e = ev(code, false, 0);
            assert_eq!(e.key().is_some(), code < 16);
        }
    }
}
