//! `cardveil mask … --capture pan,expiry,cvv`: each channel's keys feed a
//! capture begun at the start of the file; its agent-safe events become
//! JSON lines; a completed card goes to the tokenization worker, whose
//! token is printed after the capture's `complete` line. The CVV is held
//! in the worker's memory only and wiped when the command exits.

use cardveil_core::call::CaptureDriver;
use cardveil_core::capture::{CaptureConfig, CaptureEvent, Card, Field};
use cardveil_core::mask::MaskerEvent;
use cardveil_core::vault::Done;

use crate::CliError;
use crate::json::Obj;

/// The fields of `--capture`, in order.
pub fn parse_fields(list: &str) -> Result<[Option<Field>; 3], CliError> {
    let mut fields = [None; 3];
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    if names.len() > 3 {
        return Err(CliError::Usage(format!("--capture takes at most 3 fields, not {}", names.len())));
    }
    for (i, name) in names.iter().enumerate() {
        let f = match *name {
            "pan" => Field::Pan,
            "expiry" => Field::Expiry,
            "cvv" => Field::Cvv,
            other => {
                return Err(CliError::Usage(format!("unknown --capture field '{other}' (expected pan, expiry, cvv)")));
            }
        };
        if fields.contains(&Some(f)) {
            return Err(CliError::Usage(format!("--capture names {name} twice")));
        }
        fields[i] = Some(f);
    }
    if !fields.contains(&Some(Field::Pan)) {
        return Err(CliError::Usage(format!(
            "--capture {list} has no pan: a card is tokenized by its PAN (e.g. --capture pan,expiry,cvv)"
        )));
    }
    Ok(fields)
}

/// One channel's capture while it is masked: the core's driver, begun at
/// the channel's start, its events kept with their positions.
#[derive(Debug)]
pub struct ChannelCapture {
    capture: CaptureDriver,
    /// Events with the input position (samples) they were polled at.
    pub events: Vec<(u64, CaptureEvent)>,
    /// The card, once complete.
    pub card: Option<Box<Card>>,
}

impl ChannelCapture {
    /// A capture begun at the start of the channel.
    pub fn new(fields: [Option<Field>; 3], rate: u32, today: (u16, u8)) -> ChannelCapture {
        let mut capture = CaptureDriver::new(CaptureConfig { fields, ..CaptureConfig::standard(rate, today) });
        capture.begin(0);
        ChannelCapture { capture, events: Vec::new(), card: None }
    }

    /// A masker event: completed key presses feed the capture.
    pub fn on_event(&mut self, e: &MaskerEvent) {
        self.capture.masker_event(e);
    }

    /// Media time has reached `at`: timeouts, then the events so far and
    /// the card once complete.
    pub fn advance(&mut self, at: u64) {
        self.capture.tick(at);
        let events = &mut self.events;
        self.capture.drain(|e| events.push((at, e)));
        if let Some(card) = self.capture.take_card() {
            self.card = Some(Box::new(card));
        }
    }
}

fn with_channel(line: Obj, channel: Option<usize>) -> String {
    match channel {
        Some(c) => line.count("channel", c).finish(),
        None => line.finish(),
    }
}

/// An agent-safe event as a JSON line (no digit beyond a PAN's last four).
pub fn event_line(e: &CaptureEvent, channel: Option<usize>) -> String {
    let field = |f: &Field, status: &str| Obj::event("field").str("field", f.name()).str("status", status);
    let line = match e {
        CaptureEvent::FieldStarted(f) => field(f, "started"),
        CaptureEvent::Digit { field: f, count } => field(f, "digit").count("digits", *count as usize),
        CaptureEvent::Cleared(f) => field(f, "cleared"),
        CaptureEvent::Valid { field: f, digits, brand, last4 } => {
            let last4 = last4.map(|l| String::from_utf8_lossy(&l).into_owned());
            field(f, "valid")
                .opt_str("brand", brand.map(|b| b.name()))
                .opt_str("last4", last4.as_deref())
                .count("digits", *digits as usize)
        }
        CaptureEvent::Invalid { field: f, reason, retries_left } => {
            field(f, "invalid").str("reason", reason.name()).count("retries_left", *retries_left as usize)
        }
        CaptureEvent::Complete => Obj::event("capture").str("status", "complete"),
        CaptureEvent::Failed(f) => Obj::event("capture").str("status", "failed").str("field", f.name()),
        CaptureEvent::Cancelled => Obj::event("capture").str("status", "cancelled"),
    };
    with_channel(line, channel)
}

/// The worker's result: its channel, its JSON line, and the error if
/// tokenization failed (errors carry no card data).
pub fn done_line(d: &Done, stereo: bool) -> (usize, String, Option<String>) {
    let (tag, line, error) = match d {
        Done::Token { tag, metadata, .. } => {
            (*tag, Obj::event("token").str("field", "pan").str("token", &metadata.token), None)
        }
        Done::Failed { tag, error } => {
            let msg = error.to_string();
            (*tag, Obj::event("token").str("field", "pan").str("status", "error").str("error", &msg), Some(msg))
        }
        other => (0, Obj::new(), Some(format!("unexpected worker result {other:?}"))),
    };
    let channel = tag as usize;
    (channel, with_channel(line, stereo.then_some(channel)), error)
}
