//! `cardveil_event`: what a call tells its host, and the conversion from
//! core's events (capture progress, masked spans, tokens) to it. Only
//! agent-safe facts cross: never a digit beyond a valid PAN's last four.

use std::ffi::c_char;

use cardveil_core::call::Direction;
use cardveil_core::capture::{Brand, CaptureEvent, Field, Invalid};
use cardveil_core::mask::MaskedSpan;

/// Which way audio flows.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_direction {
    /// Caller to agent: the keys captured come from here.
    CARDVEIL_CALLER_TO_AGENT = 0,
    /// Agent to caller.
    CARDVEIL_AGENT_TO_CALLER = 1,
}

/// Kinds of `cardveil_event`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_event_kind {
    /// A field is being collected (`field`).
    CARDVEIL_EVENT_FIELD_STARTED = 1,
    /// A digit was keyed: `digits` so far (never the digit).
    CARDVEIL_EVENT_DIGIT = 2,
    /// `*` cleared the field.
    CARDVEIL_EVENT_CLEARED = 3,
    /// The field is valid: `digits`; for the PAN also `brand` and `last4`.
    CARDVEIL_EVENT_VALID = 4,
    /// The field was refused (`reason`) and starts again (`retries_left`).
    CARDVEIL_EVENT_INVALID = 5,
    /// Every field is valid; the card went to the vault.
    CARDVEIL_EVENT_COMPLETE = 6,
    /// A field was refused too often (`field`); the capture ended.
    CARDVEIL_EVENT_FAILED = 7,
    /// The capture was cancelled.
    CARDVEIL_EVENT_CANCELLED = 8,
    /// The PAN's token is ready: `token` (also `cardveil_call_token`).
    CARDVEIL_EVENT_TOKEN = 9,
    /// Tokenization failed; the card was wiped.
    CARDVEIL_EVENT_TOKEN_FAILED = 10,
    /// A span of `direction` was masked: samples [`start`, `end`) of that direction's input.
    CARDVEIL_EVENT_MASKED = 11,
    /// Events were lost because nobody polled: `digits` holds how many (capped).
    CARDVEIL_EVENT_OVERFLOW = 12,
}

/// Card fields.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_field {
    /// No field (events that are not about one).
    CARDVEIL_FIELD_NONE = 0,
    /// The card number.
    CARDVEIL_FIELD_PAN = 1,
    /// The expiry date (MMYY).
    CARDVEIL_FIELD_EXPIRY = 2,
    /// The card verification value.
    CARDVEIL_FIELD_CVV = 3,
}

/// Why a field was refused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_invalid_reason {
    /// Not refused.
    CARDVEIL_REASON_NONE = 0,
    /// No brand starts like this.
    CARDVEIL_REASON_UNKNOWN_BRAND = 1,
    /// Not a length the brand allows.
    CARDVEIL_REASON_LENGTH = 2,
    /// Luhn check failed.
    CARDVEIL_REASON_LUHN = 3,
    /// Not a month, or a month already past.
    CARDVEIL_REASON_EXPIRED = 4,
    /// No key for too long.
    CARDVEIL_REASON_TIMEOUT = 5,
}

/// Card brands.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_brand {
    /// Unknown or not applicable.
    CARDVEIL_BRAND_NONE = 0,
    /// Visa.
    CARDVEIL_BRAND_VISA = 1,
    /// Mastercard.
    CARDVEIL_BRAND_MASTERCARD = 2,
    /// American Express.
    CARDVEIL_BRAND_AMEX = 3,
    /// Discover.
    CARDVEIL_BRAND_DISCOVER = 4,
    /// Diners Club.
    CARDVEIL_BRAND_DINERS = 5,
    /// JCB.
    CARDVEIL_BRAND_JCB = 6,
    /// UnionPay.
    CARDVEIL_BRAND_UNIONPAY = 7,
    /// Maestro.
    CARDVEIL_BRAND_MAESTRO = 8,
}

/// Longest token `cardveil_event` carries, with its NUL.
pub const CARDVEIL_TOKEN_MAX: usize = 64;

/// An agent-safe event: never a digit beyond a valid PAN's last four.
/// Fields that do not apply to `kind` are zero.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cardveil_event {
    /// A `cardveil_event_kind`.
    pub kind: u32,
    /// A `cardveil_field`.
    pub field: u32,
    /// Digits keyed so far (DIGIT), or the field's length (VALID).
    pub digits: u32,
    /// A `cardveil_invalid_reason` (INVALID).
    pub reason: u32,
    /// Tries left after this refusal (INVALID).
    pub retries_left: u32,
    /// A `cardveil_brand` (VALID for the PAN, TOKEN).
    pub brand: u32,
    /// A `cardveil_direction` (MASKED).
    pub direction: u32,
    /// The PAN's last four digits, NUL-terminated (VALID for the PAN, TOKEN).
    pub last4: [c_char; 5],
    /// The token, NUL-terminated (TOKEN).
    pub token: [c_char; CARDVEIL_TOKEN_MAX],
    /// First masked sample (MASKED).
    pub start: u64,
    /// One past the last masked sample (MASKED).
    pub end: u64,
}

impl cardveil_event {
    pub(crate) fn empty(kind: cardveil_event_kind) -> cardveil_event {
        cardveil_event {
            kind: kind as u32,
            field: 0,
            digits: 0,
            reason: 0,
            retries_left: 0,
            brand: 0,
            direction: 0,
            last4: [0; 5],
            token: [0; CARDVEIL_TOKEN_MAX],
            start: 0,
            end: 0,
        }
    }
}

pub(crate) fn field_code(f: Field) -> u32 {
    match f {
        Field::Pan => cardveil_field::CARDVEIL_FIELD_PAN as u32,
        Field::Expiry => cardveil_field::CARDVEIL_FIELD_EXPIRY as u32,
        Field::Cvv => cardveil_field::CARDVEIL_FIELD_CVV as u32,
    }
}

/// The C value of a brand: written out for each, so reordering
/// [`Brand::ALL`] cannot renumber the ABI.
pub(crate) fn brand_code(b: Option<Brand>) -> u32 {
    use cardveil_brand::*;
    (match b {
        None => CARDVEIL_BRAND_NONE,
        Some(Brand::Visa) => CARDVEIL_BRAND_VISA,
        Some(Brand::Mastercard) => CARDVEIL_BRAND_MASTERCARD,
        Some(Brand::Amex) => CARDVEIL_BRAND_AMEX,
        Some(Brand::Discover) => CARDVEIL_BRAND_DISCOVER,
        Some(Brand::Diners) => CARDVEIL_BRAND_DINERS,
        Some(Brand::Jcb) => CARDVEIL_BRAND_JCB,
        Some(Brand::UnionPay) => CARDVEIL_BRAND_UNIONPAY,
        Some(Brand::Maestro) => CARDVEIL_BRAND_MAESTRO,
    }) as u32
}

pub(crate) fn reason_code(r: Invalid) -> u32 {
    use cardveil_invalid_reason::*;
    (match r {
        Invalid::UnknownBrand => CARDVEIL_REASON_UNKNOWN_BRAND,
        Invalid::Length => CARDVEIL_REASON_LENGTH,
        Invalid::Luhn => CARDVEIL_REASON_LUHN,
        Invalid::Expired => CARDVEIL_REASON_EXPIRED,
        Invalid::Timeout => CARDVEIL_REASON_TIMEOUT,
    }) as u32
}

pub(crate) fn set_last4(e: &mut cardveil_event, last4: [u8; 4]) {
    for (d, s) in e.last4.iter_mut().zip(last4) {
        *d = s as c_char;
    }
}

pub(crate) fn capture_event(ev: CaptureEvent) -> cardveil_event {
    use cardveil_event_kind::*;
    match ev {
        CaptureEvent::FieldStarted(f) => {
            cardveil_event { field: field_code(f), ..cardveil_event::empty(CARDVEIL_EVENT_FIELD_STARTED) }
        }
        CaptureEvent::Digit { field, count } => cardveil_event {
            field: field_code(field),
            digits: count as u32,
            ..cardveil_event::empty(CARDVEIL_EVENT_DIGIT)
        },
        CaptureEvent::Cleared(f) => {
            cardveil_event { field: field_code(f), ..cardveil_event::empty(CARDVEIL_EVENT_CLEARED) }
        }
        CaptureEvent::Valid { field, digits, brand, last4 } => {
            let mut e = cardveil_event {
                field: field_code(field),
                digits: digits as u32,
                brand: brand_code(brand),
                ..cardveil_event::empty(CARDVEIL_EVENT_VALID)
            };
            if let Some(l) = last4 {
                set_last4(&mut e, l);
            }
            e
        }
        CaptureEvent::Invalid { field, reason, retries_left } => cardveil_event {
            field: field_code(field),
            reason: reason_code(reason),
            retries_left: retries_left as u32,
            ..cardveil_event::empty(CARDVEIL_EVENT_INVALID)
        },
        CaptureEvent::Complete => cardveil_event::empty(CARDVEIL_EVENT_COMPLETE),
        CaptureEvent::Failed(f) => {
            cardveil_event { field: field_code(f), ..cardveil_event::empty(CARDVEIL_EVENT_FAILED) }
        }
        CaptureEvent::Cancelled => cardveil_event::empty(CARDVEIL_EVENT_CANCELLED),
    }
}

pub(crate) fn masked_event(direction: Direction, s: MaskedSpan) -> cardveil_event {
    cardveil_event {
        direction: match direction {
            Direction::CallerToAgent => cardveil_direction::CARDVEIL_CALLER_TO_AGENT as u32,
            Direction::AgentToCaller => cardveil_direction::CARDVEIL_AGENT_TO_CALLER as u32,
        },
        start: s.start,
        end: s.end,
        ..cardveil_event::empty(cardveil_event_kind::CARDVEIL_EVENT_MASKED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_brand_has_its_documented_c_value() {
        use cardveil_brand::*;
        let expected = [
            (None, CARDVEIL_BRAND_NONE, 0),
            (Some(Brand::Visa), CARDVEIL_BRAND_VISA, 1),
            (Some(Brand::Mastercard), CARDVEIL_BRAND_MASTERCARD, 2),
            (Some(Brand::Amex), CARDVEIL_BRAND_AMEX, 3),
            (Some(Brand::Discover), CARDVEIL_BRAND_DISCOVER, 4),
            (Some(Brand::Diners), CARDVEIL_BRAND_DINERS, 5),
            (Some(Brand::Jcb), CARDVEIL_BRAND_JCB, 6),
            (Some(Brand::UnionPay), CARDVEIL_BRAND_UNIONPAY, 7),
            (Some(Brand::Maestro), CARDVEIL_BRAND_MAESTRO, 8),
        ];
        for (brand, c, value) in expected {
            assert_eq!(c as u32, value, "{c:?}");
            assert_eq!(brand_code(brand), value, "{brand:?}");
        }
        // Every brand in the table is mapped, each to its own value.
        let mut seen: Vec<u32> = Brand::ALL.iter().map(|&b| brand_code(Some(b))).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=Brand::ALL.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn events_carry_last_four_and_nothing_past_it() {
        let e = capture_event(CaptureEvent::Valid {
            field: Field::Pan,
            digits: 16,
            brand: Some(Brand::Visa),
            last4: Some(*b"1111"),
        });
        assert_eq!(e.kind, cardveil_event_kind::CARDVEIL_EVENT_VALID as u32);
        assert_eq!(e.brand, cardveil_brand::CARDVEIL_BRAND_VISA as u32);
        assert_eq!(e.last4.map(|c| c as u8), *b"1111\0");
        assert!(e.token.iter().all(|&c| c == 0));
        let m = masked_event(Direction::AgentToCaller, MaskedSpan { start: 160, end: 480 });
        assert_eq!(
            (m.kind, m.direction, m.start, m.end),
            (cardveil_event_kind::CARDVEIL_EVENT_MASKED as u32, 1, 160, 480)
        );
    }
}
