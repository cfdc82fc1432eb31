//! The capture state machine: keys in, card fields and agent-safe events out.

use super::card::{Brand, Cvv, Digits, Expiry, Pan, expiry_ok, last_four, luhn};
use crate::dtmf::Key;

/// A card field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The primary account number.
    Pan,
    /// The expiry date, MMYY.
    Expiry,
    /// The card verification value.
    Cvv,
}

impl Field {
    /// Lowercase name, as in the events (`"pan"`).
    pub fn name(self) -> &'static str {
        match self {
            Field::Pan => "pan",
            Field::Expiry => "expiry",
            Field::Cvv => "cvv",
        }
    }
}

/// Why a field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// No brand in the IIN table starts like this.
    UnknownBrand,
    /// Not a length the brand (or field) allows.
    Length,
    /// The Luhn check failed.
    Luhn,
    /// Not a month, or a month already past.
    Expired,
    /// No key for too long (inter-digit or field timeout).
    Timeout,
}

impl Invalid {
    /// Lowercase reason, as in the events.
    pub fn name(self) -> &'static str {
        match self {
            Invalid::UnknownBrand => "unknown_brand",
            Invalid::Length => "length",
            Invalid::Luhn => "luhn",
            Invalid::Expired => "expired",
            Invalid::Timeout => "timeout",
        }
    }
}

/// What the capture tells the host (and the agent): never a digit's value
/// beyond a valid PAN's last four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureEvent {
    /// A field is being collected.
    FieldStarted(Field),
    /// A digit was keyed; `count` digits so far.
    Digit {
        /// The field.
        field: Field,
        /// Digits so far.
        count: u8,
    },
    /// `*` cleared the field.
    Cleared(Field),
    /// The field is complete and valid.
    Valid {
        /// The field.
        field: Field,
        /// Its digit count.
        digits: u8,
        /// The PAN's brand (PAN only).
        brand: Option<Brand>,
        /// The PAN's last four digits as ASCII (PAN only).
        last4: Option<[u8; 4]>,
    },
    /// The field was refused and starts again (`retries_left` more tries).
    Invalid {
        /// The field.
        field: Field,
        /// Why.
        reason: Invalid,
        /// Tries left after this one.
        retries_left: u8,
    },
    /// Every field is valid: take them with [`Capture::take_card`].
    Complete,
    /// A field was refused once too often; the capture ended.
    Failed(Field),
    /// The host cancelled the capture.
    Cancelled,
}

/// Capture settings. Times are in samples of media time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Fields in the order they are keyed (1 to 3 of them, no repeats; the
    /// first `None` ends the list).
    pub fields: [Option<Field>; 3],
    /// Refusals of one field allowed before the capture fails.
    pub max_retries: u8,
    /// A field with digits ends (and is judged) after this long without a key.
    pub inter_digit_timeout: u64,
    /// A field is refused if not complete this long after it started.
    pub field_timeout: u64,
    /// Today's (year, month), for the expiry check.
    pub today: (u16, u8),
}

impl CaptureConfig {
    /// PAN, expiry, CVV; 3 retries; 5 s between digits and 60 s per field at `rate`.
    pub fn standard(rate: u32, today: (u16, u8)) -> CaptureConfig {
        CaptureConfig {
            fields: [Some(Field::Pan), Some(Field::Expiry), Some(Field::Cvv)],
            max_retries: 3,
            inter_digit_timeout: 5 * rate as u64,
            field_timeout: 60 * rate as u64,
            today,
        }
    }
}

/// Where the capture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureState {
    /// Not started (or taken).
    Idle,
    /// Collecting field number `index` of the configured order.
    Collecting {
        /// Index into the configured fields.
        index: usize,
    },
    /// All fields valid.
    Complete,
    /// A field failed too often.
    Failed,
    /// Cancelled by the host.
    Cancelled,
}

/// Events kept for the host to poll; older ones are dropped beyond this.
const EVENTS: usize = 32;

/// The captured card, taken once.
#[derive(Debug, Default)]
pub struct Card {
    /// The PAN, if configured.
    pub pan: Option<Pan>,
    /// The expiry, if configured.
    pub expiry: Option<Expiry>,
    /// The CVV, if configured.
    pub cvv: Option<Cvv>,
}

/// One capture of card fields from keys. No allocation after `new`; every
/// digit lives in zeroizing buffers; events never carry a digit.
#[derive(Debug)]
pub struct Capture {
    config: CaptureConfig,
    state: CaptureState,
    current: Digits<19>,
    pan: Pan,
    expiry: Expiry,
    cvv: Cvv,
    brand: Option<Brand>,
    retries: u8,
    field_started: u64,
    last_key: u64,
    events: [Option<CaptureEvent>; EVENTS],
    head: usize,
    queued: usize,
    /// Events dropped because the host did not poll.
    dropped: u64,
}

impl Capture {
    /// An idle capture.
    pub fn new(config: CaptureConfig) -> Capture {
        Capture {
            config,
            state: CaptureState::Idle,
            current: Digits::new(),
            pan: Pan::default(),
            expiry: Expiry::default(),
            cvv: Cvv::default(),
            brand: None,
            retries: 0,
            field_started: 0,
            last_key: 0,
            events: [None; EVENTS],
            head: 0,
            queued: 0,
            dropped: 0,
        }
    }

    /// Where the capture is.
    pub fn state(&self) -> CaptureState {
        self.state
    }

    /// Events dropped so far because the ring was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped
    }

    /// Starts (or restarts) a capture at media time `at`, wiping anything held.
    pub fn begin(&mut self, at: u64) {
        self.wipe();
        self.start_field(0, at);
    }

    /// Cancels the capture, wiping anything held.
    pub fn cancel(&mut self) {
        if matches!(self.state, CaptureState::Collecting { .. } | CaptureState::Complete) {
            self.push(CaptureEvent::Cancelled);
        }
        self.wipe();
        self.state = CaptureState::Cancelled;
    }

    /// The next event, oldest first.
    pub fn poll(&mut self) -> Option<CaptureEvent> {
        if self.queued == 0 {
            return None;
        }
        let e = self.events[self.head].take();
        self.head = (self.head + 1) % EVENTS;
        self.queued -= 1;
        e
    }

    /// The card once complete (taken once; the capture goes idle).
    pub fn take_card(&mut self) -> Option<Card> {
        if self.state != CaptureState::Complete {
            return None;
        }
        let has = |f: Field| self.config.fields.contains(&Some(f));
        let card = Card {
            pan: has(Field::Pan).then(|| std::mem::take(&mut self.pan)),
            expiry: has(Field::Expiry).then(|| std::mem::take(&mut self.expiry)),
            cvv: has(Field::Cvv).then(|| std::mem::take(&mut self.cvv)),
        };
        self.wipe();
        Some(card)
    }

    /// The card once complete, copied digit by digit into `out` (whose
    /// fields are cleared first; unconfigured ones stay empty) without a
    /// temporary copy or an allocation: for the audio thread, handing the
    /// card to a slot allocated at setup. The capture goes idle. False (and
    /// `out` untouched) if the capture is not complete.
    pub fn take_card_into(&mut self, out: &mut Card) -> bool {
        if self.state != CaptureState::Complete {
            return false;
        }
        let has = |f: Field| self.config.fields.contains(&Some(f));
        let pan = out.pan.get_or_insert_with(Pan::default);
        pan.0.clear();
        if has(Field::Pan) {
            pan.0.copy_from(&self.pan.0);
        }
        let expiry = out.expiry.get_or_insert_with(Expiry::default);
        expiry.0.clear();
        if has(Field::Expiry) {
            expiry.0.copy_from(&self.expiry.0);
        }
        let cvv = out.cvv.get_or_insert_with(Cvv::default);
        cvv.0.clear();
        if has(Field::Cvv) {
            cvv.0.copy_from(&self.cvv.0);
        }
        self.wipe();
        true
    }

    /// Media time has reached `at`: applies the timeouts.
    pub fn tick(&mut self, at: u64) {
        let CaptureState::Collecting { .. } = self.state else { return };
        if !self.current.is_empty() && at.saturating_sub(self.last_key) >= self.config.inter_digit_timeout {
            self.end_field(at);
        } else if at.saturating_sub(self.field_started) >= self.config.field_timeout {
            self.refuse(Invalid::Timeout, at);
        }
    }

    /// A key pressed at media time `at`.
    pub fn key(&mut self, key: Key, at: u64) {
        self.tick(at);
        let CaptureState::Collecting { index } = self.state else { return };
        let field = self.field(index);
        self.last_key = at;
        match key.as_char() {
            '*' => {
                self.current.clear();
                self.push(CaptureEvent::Cleared(field));
            }
            // `#` ends a field; on an empty one (say, after a field that
            // ended at its length) it is ignored.
            '#' if self.current.is_empty() => {}
            '#' => self.end_field(at),
            c @ '0'..='9' => {
                if !self.current.push(c as u8 - b'0') {
                    self.end_field(at);
                    return;
                }
                self.push(CaptureEvent::Digit { field, count: self.current.len() as u8 });
                if self.current.len() == self.auto_end_length(field) {
                    self.end_field(at);
                }
            }
            _ => {} // A–D are not digits: ignored.
        }
    }

    fn field(&self, index: usize) -> Field {
        self.config.fields[index].expect("collecting only configured fields")
    }

    /// The length at which a field ends without `#`.
    fn auto_end_length(&self, field: Field) -> usize {
        match field {
            Field::Pan => match Brand::of(self.current.expose()) {
                Some(b) => *b.pan_lengths().last().expect("every brand has lengths"),
                None => 19,
            },
            Field::Expiry => 4,
            Field::Cvv => self.brand.map_or(4, Brand::cvv_length),
        }
    }

    fn start_field(&mut self, index: usize, at: u64) {
        match self.config.fields.get(index).copied().flatten() {
            Some(f) => {
                self.state = CaptureState::Collecting { index };
                self.current.clear();
                self.retries = 0;
                self.field_started = at;
                self.last_key = at;
                self.push(CaptureEvent::FieldStarted(f));
            }
            None => {
                self.state = CaptureState::Complete;
                self.push(CaptureEvent::Complete);
            }
        }
    }

    /// Judges the field keyed so far.
    fn end_field(&mut self, at: u64) {
        let CaptureState::Collecting { index } = self.state else { return };
        let field = self.field(index);
        let d = self.current.expose();
        let verdict = match field {
            Field::Pan => match Brand::of(d) {
                None => Err(Invalid::UnknownBrand),
                Some(b) if !b.pan_lengths().contains(&d.len()) => Err(Invalid::Length),
                Some(_) if !luhn(d) => Err(Invalid::Luhn),
                Some(b) => Ok(Some(b)),
            },
            Field::Expiry if d.len() != 4 => Err(Invalid::Length),
            Field::Expiry if !expiry_ok(d, self.config.today) => Err(Invalid::Expired),
            Field::Expiry => Ok(None),
            Field::Cvv => {
                let ok = match self.brand {
                    Some(b) => d.len() == b.cvv_length(),
                    None => d.len() == 3 || d.len() == 4,
                };
                if ok { Ok(None) } else { Err(Invalid::Length) }
            }
        };
        match verdict {
            Err(reason) => self.refuse(reason, at),
            Ok(brand) => {
                let digits = d.len() as u8;
                let mut last4 = None;
                if field == Field::Pan {
                    self.brand = brand;
                    last4 = last_four(d);
                }
                match field {
                    Field::Pan => self.pan.0.copy_from(&self.current),
                    Field::Expiry => self.expiry.0.copy_from(&self.current),
                    Field::Cvv => self.cvv.0.copy_from(&self.current),
                }
                self.current.clear();
                self.push(CaptureEvent::Valid { field, digits, brand, last4 });
                self.start_field(index + 1, at);
            }
        }
    }

    fn refuse(&mut self, reason: Invalid, at: u64) {
        let CaptureState::Collecting { index } = self.state else { return };
        let field = self.field(index);
        self.current.clear();
        if self.retries >= self.config.max_retries {
            self.push(CaptureEvent::Failed(field));
            self.wipe();
            self.state = CaptureState::Failed;
            return;
        }
        self.retries += 1;
        self.push(CaptureEvent::Invalid { field, reason, retries_left: self.config.max_retries - self.retries });
        self.field_started = at;
        self.last_key = at;
    }

    fn wipe(&mut self) {
        self.current.clear();
        self.pan.0.clear();
        self.expiry.0.clear();
        self.cvv.0.clear();
        self.brand = None;
        self.state = CaptureState::Idle;
    }

    fn push(&mut self, e: CaptureEvent) {
        if self.queued == EVENTS {
            // Full: the oldest goes.
            self.head = (self.head + 1) % EVENTS;
            self.queued -= 1;
            self.dropped += 1;
        }
        self.events[(self.head + self.queued) % EVENTS] = Some(e);
        self.queued += 1;
    }
}

/// Replaces `dst`'s digits with `src`'s (which fit: the field rules bound them).
#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u64 = 8000;

    fn capture() -> Capture {
        Capture::new(CaptureConfig::standard(RATE as u32, (2026, 11)))
    }

    /// Keys `s` 100 ms apart from `at`; returns the time after the last.
    fn keys(c: &mut Capture, s: &str, mut at: u64) -> u64 {
        for ch in s.chars() {
            c.key(Key::from_char(ch).unwrap(), at);
            at += RATE / 10;
        }
        at
    }

    fn events(c: &mut Capture) -> Vec<CaptureEvent> {
        std::iter::from_fn(|| c.poll()).collect()
    }

    fn valid(field: Field, digits: u8, brand: Option<Brand>, last4: Option<&[u8; 4]>) -> CaptureEvent {
        CaptureEvent::Valid { field, digits, brand, last4: last4.copied() }
    }

    #[test]
    fn a_visa_card_with_expiry_and_cvv_completes_with_brand_and_last_four() {
        let mut c = capture();
        c.begin(0);
        keys(&mut c, "4111111111111111#1229#123#", 0);
        let ev = events(&mut c);
        let summary: Vec<_> = ev.iter().filter(|e| !matches!(e, CaptureEvent::Digit { .. })).copied().collect();
        assert_eq!(
            summary,
            vec![
                CaptureEvent::FieldStarted(Field::Pan),
                valid(Field::Pan, 16, Some(Brand::Visa), Some(b"1111")),
                CaptureEvent::FieldStarted(Field::Expiry),
                valid(Field::Expiry, 4, None, None),
                CaptureEvent::FieldStarted(Field::Cvv),
                valid(Field::Cvv, 3, None, None),
                CaptureEvent::Complete,
            ]
        );
        assert_eq!(ev.iter().filter(|e| matches!(e, CaptureEvent::Digit { .. })).count(), 16 + 4 + 3);
        let card = c.take_card().unwrap();
        let pan = card.pan.unwrap();
        assert_eq!(pan.expose(), &[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(card.expiry.unwrap().expose(), &[1, 2, 2, 9]);
        assert_eq!(card.cvv.unwrap().expose(), &[1, 2, 3]);
        assert!(c.take_card().is_none(), "taken once");
        assert_eq!(c.state(), CaptureState::Idle);
    }

    #[test]
    fn every_brand_in_the_table_is_captured_with_its_brand_and_last_four() {
        let cards = [
            ("4111111111111111", Brand::Visa),
            ("4222222222222", Brand::Visa),
            ("5555555555554444", Brand::Mastercard),
            ("2223003122003222", Brand::Mastercard),
            ("378282246310005", Brand::Amex),
            ("6011111111111117", Brand::Discover),
            ("36227206271667", Brand::Diners),
            ("3530111333300000", Brand::Jcb),
            ("6200000000000005", Brand::UnionPay),
            ("6759649826438453", Brand::Maestro),
            ("5018000000000009", Brand::Maestro),
        ];
        for (pan, brand) in cards {
            let mut c = capture();
            c.begin(0);
            let cvv = if brand == Brand::Amex { "1234" } else { "123" };
            keys(&mut c, &format!("{pan}#1230#{cvv}#"), 0);
            let ev = events(&mut c);
            let tail: [u8; 4] = pan.as_bytes()[pan.len() - 4..].try_into().unwrap();
            assert!(ev.contains(&valid(Field::Pan, pan.len() as u8, Some(brand), Some(&tail))), "{brand:?}: {ev:?}");
            assert_eq!(ev.last(), Some(&CaptureEvent::Complete), "{brand:?}");
            let card = c.take_card().unwrap();
            let got: String = card.pan.unwrap().expose().iter().map(|d| (d + b'0') as char).collect();
            assert!(got == pan, "{brand:?}: wrong PAN captured");
        }
    }

    #[test]
    fn an_amex_pan_ends_at_15_digits_and_wants_a_4_digit_cvv() {
        let mut c = capture();
        c.begin(0);
        keys(&mut c, "378282246310005", 0);
        keys(&mut c, "1230", 10 * RATE);
        keys(&mut c, "123#", 20 * RATE);
        let ev = events(&mut c);
        assert!(ev.contains(&valid(Field::Pan, 15, Some(Brand::Amex), Some(b"0005"))));
        assert!(ev.contains(&CaptureEvent::Invalid { field: Field::Cvv, reason: Invalid::Length, retries_left: 2 }));
        keys(&mut c, "1234", 30 * RATE);
        assert_eq!(events(&mut c).last(), Some(&CaptureEvent::Complete));
    }

    #[test]
    fn refusals_star_and_retries() {
        let mut c = capture();
        c.begin(0);
        // Luhn failure, then unknown brand, then a clear and a good number.
        let at = keys(&mut c, "4111111111111112#", 0);
        let at = keys(&mut c, "9111#", at);
        let at = keys(&mut c, "41*5555555555554444", at);
        let ev = events(&mut c);
        assert!(ev.contains(&CaptureEvent::Invalid { field: Field::Pan, reason: Invalid::Luhn, retries_left: 2 }));
        assert!(ev.contains(&CaptureEvent::Invalid {
            field: Field::Pan,
            reason: Invalid::UnknownBrand,
            retries_left: 1
        }));
        assert!(ev.contains(&CaptureEvent::Cleared(Field::Pan)));
        assert!(ev.contains(&valid(Field::Pan, 16, Some(Brand::Mastercard), Some(b"4444"))));
        // An expired date four times: the capture fails and holds nothing.
        let mut at = at;
        for _ in 0..4 {
            at = keys(&mut c, "0120", at);
        }
        let ev = events(&mut c);
        assert!(ev.contains(&CaptureEvent::Invalid {
            field: Field::Expiry,
            reason: Invalid::Expired,
            retries_left: 0
        }));
        assert_eq!(ev.last(), Some(&CaptureEvent::Failed(Field::Expiry)));
        assert_eq!(c.state(), CaptureState::Failed);
        assert!(c.take_card().is_none());
        assert!(c.pan.is_empty());
    }

    #[test]
    fn timeouts_count_media_time() {
        let mut c = capture();
        c.begin(0);
        // Sixteen digits, then silence: the inter-digit timeout ends the field.
        let at = keys(&mut c, "4111111111111111", 0);
        c.tick(at + 4 * RATE);
        assert!(!events(&mut c).iter().any(|e| matches!(e, CaptureEvent::Valid { .. })));
        c.tick(at + 5 * RATE);
        assert!(events(&mut c).contains(&valid(Field::Pan, 16, Some(Brand::Visa), Some(b"1111"))));
        // Nothing keyed for a minute: the expiry field is refused.
        c.tick(at + 66 * RATE);
        assert_eq!(
            events(&mut c),
            vec![CaptureEvent::Invalid { field: Field::Expiry, reason: Invalid::Timeout, retries_left: 2 }]
        );
    }

    #[test]
    fn cancel_wipes_and_keys_are_ignored_until_begin() {
        let mut c = capture();
        keys(&mut c, "4111", 0);
        assert!(events(&mut c).is_empty(), "idle: keys ignored");
        c.begin(0);
        keys(&mut c, "4111111111111111#12", 0);
        c.cancel();
        assert_eq!(events(&mut c).last(), Some(&CaptureEvent::Cancelled));
        assert!(c.pan.is_empty() && c.current.is_empty());
        assert!(c.take_card().is_none());
    }

    #[test]
    fn the_ring_keeps_the_newest_events() {
        let mut c = capture();
        c.begin(0);
        let at = keys(&mut c, "4111111111111111#", 0);
        for i in 0..10 {
            keys(&mut c, "1*", at + i * RATE);
        }
        assert!(c.dropped_events() > 0);
        let ev = events(&mut c);
        assert_eq!(ev.len(), EVENTS);
        assert_eq!(ev.last(), Some(&CaptureEvent::Cleared(Field::Expiry)));
    }

    proptest::proptest! {
        #[test]
        fn any_key_sequence_is_safe(
            seq in proptest::collection::vec((0usize..16, 0u64..(8 * RATE), 0u8..8), 0..200),
            order in 0usize..6,
        ) {
            let orders = [
                [Some(Field::Pan), Some(Field::Expiry), Some(Field::Cvv)],
                [Some(Field::Pan), None, None],
                [Some(Field::Expiry), Some(Field::Cvv), None],
                [Some(Field::Cvv), Some(Field::Pan), None],
                [Some(Field::Pan), Some(Field::Cvv), Some(Field::Expiry)],
                [None, None, None],
            ];
            let config = CaptureConfig { fields: orders[order], ..CaptureConfig::standard(RATE as u32, (2026, 11)) };
            let mut c = Capture::new(config);
            let mut at = 0;
            let mut typed = String::new();
            for (k, gap, action) in seq {
                at += gap;
                match action {
                    0 => c.begin(at),
                    1 => c.cancel(),
                    2 => c.tick(at),
                    3 => {
                        let _ = c.take_card();
                    }
                    _ => {
                        c.key(Key::ALL[k], at);
                        typed.push(Key::ALL[k].as_char());
                    }
                }
                while let Some(e) = c.poll() {
                    // Only a valid PAN's last four digits leave, as ASCII.
                    if let CaptureEvent::Valid { last4: Some(l), field, .. } = e {
                        proptest::prop_assert_eq!(field, Field::Pan);
                        let ascii = l.iter().all(u8::is_ascii_digit);
                        proptest::prop_assert!(ascii);
                    }
                    if let CaptureEvent::Digit { count, .. } = e {
                        let in_range = (1..=19).contains(&count);
                        proptest::prop_assert!(in_range);
                    }
                }
                // Always a defined state, collecting only configured fields.
                let state = c.state();
                if let CaptureState::Collecting { index } = state {
                    let configured = config.fields[index].is_some();
                    proptest::prop_assert!(configured);
                }
                // The capture's Debug never shows what was keyed.
                let recent: String = typed.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
                if recent.len() == 8 && recent.chars().all(|ch| ch.is_ascii_digit()) {
                    let shown = format!("{c:?}");
                    let hidden = !shown.contains(&recent);
                    proptest::prop_assert!(hidden);
                }
            }
        }
    }
}
