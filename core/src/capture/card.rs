//! Card fields held in zeroizing buffers, the IIN brand table, Luhn and the
//! expiry rule.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Up to `N` decimal digits, wiped from memory when dropped. `Debug` shows
/// only how many there are; there is no `Display`.
#[derive(Clone)]
pub struct Digits<const N: usize> {
    digits: [u8; N],
    len: usize,
}

impl<const N: usize> Digits<N> {
    /// No digits.
    pub const fn new() -> Self {
        Digits { digits: [0; N], len: 0 }
    }

    /// Appends a digit 0–9; returns false (and changes nothing) when full.
    pub fn push(&mut self, d: u8) -> bool {
        debug_assert!(d <= 9);
        if self.len == N {
            return false;
        }
        self.digits[self.len] = d;
        self.len += 1;
        true
    }

    /// How many digits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digits, 0–9 each. Handle with care: this is card data.
    pub fn expose(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    /// Replaces these digits with a copy of `other`'s (as many as fit), in
    /// place: no temporary copy is made.
    pub fn copy_from<const M: usize>(&mut self, other: &Digits<M>) {
        self.clear();
        for &d in other.expose() {
            self.push(d);
        }
    }

    /// Forgets every digit (and wipes the storage).
    pub fn clear(&mut self) {
        self.zeroize();
    }
}

impl<const N: usize> Default for Digits<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Zeroize for Digits<N> {
    fn zeroize(&mut self) {
        self.digits.zeroize();
        self.len = 0;
    }
}

impl<const N: usize> Drop for Digits<N> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<const N: usize> ZeroizeOnDrop for Digits<N> {}

impl<const N: usize> std::fmt::Debug for Digits<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digits({} digits)", self.len)
    }
}

macro_rules! card_field {
    ($(#[$doc:meta])* $name:ident, $n:literal) => {
        $(#[$doc])*
        #[derive(Clone, Default)]
        pub struct $name(pub(crate) Digits<$n>);

        impl $name {
            /// The digits, 0–9 each. Handle with care: this is card data.
            pub fn expose(&self) -> &[u8] {
                self.0.expose()
            }

            /// The field from ASCII digits (`b"4111…"`), or `None` if a
            /// byte is not a digit or there are too many. The caller wipes
            /// its own copy.
            pub fn from_ascii(ascii: &[u8]) -> Option<Self> {
                let mut f = Self::default();
                for &b in ascii {
                    if !b.is_ascii_digit() || !f.0.push(b - b'0') {
                        return None;
                    }
                }
                Some(f)
            }

            /// How many digits.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether there are none.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl Zeroize for $name {
            fn zeroize(&mut self) {
                self.0.zeroize();
            }
        }

        impl ZeroizeOnDrop for $name {}

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({} digits)"), self.0.len())
            }
        }
    };
}

card_field!(
    /// A primary account number (12–19 digits).
    Pan,
    19
);
card_field!(
    /// An expiry date as keyed, MMYY.
    Expiry,
    4
);
card_field!(
    /// A card verification value (3 or 4 digits). Never stored.
    Cvv,
    4
);

/// Card brands, from the IIN (the PAN's first digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Brand {
    /// Visa: 4.
    Visa,
    /// Mastercard: 51–55, 2221–2720.
    Mastercard,
    /// American Express: 34, 37.
    Amex,
    /// Discover: 6011, 644–649, 65.
    Discover,
    /// Diners Club: 36, 300–305, 38–39.
    Diners,
    /// JCB: 3528–3589.
    Jcb,
    /// UnionPay: 62.
    UnionPay,
    /// Maestro: 50, 56–58, 6304, 6759, 676770, 676774.
    Maestro,
}

impl Brand {
    /// Every brand in the table.
    pub const ALL: [Brand; 8] = [
        Brand::Visa,
        Brand::Mastercard,
        Brand::Amex,
        Brand::Discover,
        Brand::Diners,
        Brand::Jcb,
        Brand::UnionPay,
        Brand::Maestro,
    ];

    /// Lowercase name, as in the events (`"visa"`).
    pub fn name(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Diners => "diners",
            Brand::Jcb => "jcb",
            Brand::UnionPay => "unionpay",
            Brand::Maestro => "maestro",
        }
    }

    /// Valid PAN lengths.
    pub fn pan_lengths(self) -> &'static [usize] {
        match self {
            Brand::Visa => &[13, 16, 19],
            Brand::Mastercard => &[16],
            Brand::Amex => &[15],
            Brand::Discover | Brand::Jcb | Brand::UnionPay => &[16, 17, 18, 19],
            Brand::Diners => &[14, 15, 16, 17, 18, 19],
            Brand::Maestro => &[12, 13, 14, 15, 16, 17, 18, 19],
        }
    }

    /// CVV length.
    pub fn cvv_length(self) -> usize {
        if self == Brand::Amex { 4 } else { 3 }
    }

    /// The brand of a PAN prefix, once enough digits are known (`None`: not
    /// yet decidable, or no brand in the table).
    pub fn of(prefix: &[u8]) -> Option<Brand> {
        let p = |n: usize| -> Option<u32> {
            (prefix.len() >= n).then(|| prefix[..n].iter().fold(0u32, |a, &d| a * 10 + d as u32))
        };
        let in_range = |n: usize, lo: u32, hi: u32| p(n).is_some_and(|v| (lo..=hi).contains(&v));
        let first = *prefix.first()?;
        match first {
            4 => Some(Brand::Visa),
            5 => {
                if in_range(2, 51, 55) {
                    Some(Brand::Mastercard)
                } else if in_range(2, 50, 50) || in_range(2, 56, 58) {
                    Some(Brand::Maestro)
                } else {
                    None
                }
            }
            2 => in_range(4, 2221, 2720).then_some(Brand::Mastercard),
            3 => {
                if in_range(2, 34, 34) || in_range(2, 37, 37) {
                    Some(Brand::Amex)
                } else if in_range(2, 36, 36) || in_range(2, 38, 39) || in_range(3, 300, 305) {
                    Some(Brand::Diners)
                } else if in_range(4, 3528, 3589) {
                    Some(Brand::Jcb)
                } else {
                    None
                }
            }
            6 => {
                if in_range(4, 6011, 6011) || in_range(3, 644, 649) || in_range(2, 65, 65) {
                    Some(Brand::Discover)
                } else if in_range(2, 62, 62) {
                    Some(Brand::UnionPay)
                } else if in_range(4, 6304, 6304)
                    || in_range(4, 6759, 6759)
                    || in_range(6, 676770, 676770)
                    || in_range(6, 676774, 676774)
                {
                    Some(Brand::Maestro)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// How many digits a PAN may have (ISO/IEC 7812-1: 12–19). Each brand
/// allows a subset ([`Brand::pan_lengths`]); the vault refuses anything
/// outside this range.
pub const PAN_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// The last four of `digits` (values 0–9) as ASCII, as events, token
/// metadata and receipts show them; `None` for fewer than four digits.
pub fn last_four(digits: &[u8]) -> Option<[u8; 4]> {
    let tail = digits.get(digits.len().checked_sub(4)?..)?;
    Some([tail[0] + b'0', tail[1] + b'0', tail[2] + b'0', tail[3] + b'0'])
}

/// Whether `digits` pass the Luhn check.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = d as u32;
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Whether an MMYY expiry is a real month not before `today` (year, month;
/// a card is valid through the end of its expiry month).
pub fn expiry_ok(mmyy: &[u8], today: (u16, u8)) -> bool {
    if mmyy.len() != 4 {
        return false;
    }
    let month = mmyy[0] * 10 + mmyy[1];
    let year = 2000 + (mmyy[2] * 10 + mmyy[3]) as u16;
    (1..=12).contains(&month) && (year, month) >= today
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn pan_lengths_and_last_four() {
        for b in Brand::ALL {
            assert!(b.pan_lengths().iter().all(|n| PAN_DIGITS.contains(n)), "{b:?}");
        }
        assert!(Pan::from_ascii(&[b'4'; 19]).is_some() && Pan::from_ascii(&[b'4'; 20]).is_none());
        assert_eq!(last_four(&digits("4111111111111234")), Some(*b"1234"));
        assert_eq!(last_four(&digits("1234")), Some(*b"1234"));
        assert_eq!(last_four(&digits("123")), None);
        assert_eq!(last_four(&[]), None);
    }

    #[test]
    fn luhn_accepts_test_cards_and_refuses_a_changed_digit() {
        for pan in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "4222222222222",
        ] {
            assert!(luhn(&digits(pan)), "{pan}");
            let mut d = digits(pan);
            d[3] = (d[3] + 1) % 10;
            assert!(!luhn(&d), "{pan} changed");
        }
        assert!(!luhn(&[]));
    }

    #[test]
    fn brands_follow_the_iin_table() {
        let cases = [
            ("4111", Some(Brand::Visa)),
            ("5105", Some(Brand::Mastercard)),
            ("2221", Some(Brand::Mastercard)),
            ("2720", Some(Brand::Mastercard)),
            ("2721", None),
            ("3782", Some(Brand::Amex)),
            ("3412", Some(Brand::Amex)),
            ("6011", Some(Brand::Discover)),
            ("6445", Some(Brand::Discover)),
            ("6500", Some(Brand::Discover)),
            ("3056", Some(Brand::Diners)),
            ("3612", Some(Brand::Diners)),
            ("3530", Some(Brand::Jcb)),
            ("6212", Some(Brand::UnionPay)),
            ("5018", Some(Brand::Maestro)),
            ("6759", Some(Brand::Maestro)),
            ("9999", None),
        ];
        for (p, b) in cases {
            assert_eq!(Brand::of(&digits(p)), b, "{p}");
        }
        assert_eq!(Brand::of(&digits("2")), None, "undecided yet");
        assert_eq!(Brand::Amex.cvv_length(), 4);
        assert_eq!(Brand::Visa.cvv_length(), 3);
    }

    #[test]
    fn expiry_is_a_real_month_not_in_the_past() {
        let today = (2026, 11);
        assert!(expiry_ok(&digits("1126"), today));
        assert!(expiry_ok(&digits("0130"), today));
        assert!(!expiry_ok(&digits("1026"), today));
        assert!(!expiry_ok(&digits("1326"), today));
        assert!(!expiry_ok(&digits("0027"), today));
        assert!(!expiry_ok(&digits("112"), today));
    }

    #[test]
    fn debug_shows_no_digit_and_drop_wipes() {
        let mut pan = Pan::default();
        for d in digits("4111111111111111") {
            pan.0.push(d);
        }
        let text = format!("{pan:?}");
        assert_eq!(text, "Pan(16 digits)");
        let mut copy = pan.clone();
        copy.zeroize();
        assert!(copy.is_empty() && copy.0.digits.iter().all(|&d| d == 0));
        assert_eq!(pan.expose().len(), 16);
    }
}
