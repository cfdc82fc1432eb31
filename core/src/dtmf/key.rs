//! The sixteen DTMF keys and their frequency pairs.

/// Row (low group) frequencies in Hz.
pub const ROW_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies in Hz.
pub const COL_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// A DTMF key. The discriminant is `row * 4 + col`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Key {
    D1 = 0,
    D2 = 1,
    D3 = 2,
    A = 3,
    D4 = 4,
    D5 = 5,
    D6 = 6,
    B = 7,
    D7 = 8,
    D8 = 9,
    D9 = 10,
    C = 11,
    Star = 12,
    D0 = 13,
    Hash = 14,
    D = 15,
}

const LAYOUT: [Key; 16] = [
    Key::D1,
    Key::D2,
    Key::D3,
    Key::A,
    Key::D4,
    Key::D5,
    Key::D6,
    Key::B,
    Key::D7,
    Key::D8,
    Key::D9,
    Key::C,
    Key::Star,
    Key::D0,
    Key::Hash,
    Key::D,
];

const CHARS: [char; 16] = ['1', '2', '3', 'A', '4', '5', '6', 'B', '7', '8', '9', 'C', '*', '0', '#', 'D'];

impl Key {
    /// All sixteen keys, in keypad order (row by row).
    pub const ALL: [Key; 16] = LAYOUT;

    /// The key at keypad `row` (0..4, low group) and `col` (0..4, high group).
    ///
    /// # Panics
    /// If `row` or `col` is 4 or more.
    pub fn from_row_col(row: usize, col: usize) -> Key {
        assert!(row < 4 && col < 4, "keypad row/col out of range");
        LAYOUT[row * 4 + col]
    }

    /// Keypad row (index into [`ROW_HZ`]).
    pub fn row(self) -> usize {
        self as usize / 4
    }

    /// Keypad column (index into [`COL_HZ`]).
    pub fn col(self) -> usize {
        self as usize % 4
    }

    /// The (low, high) nominal frequencies in Hz.
    pub fn frequencies(self) -> (f64, f64) {
        (ROW_HZ[self.row()], COL_HZ[self.col()])
    }

    /// The key's character: `0`–`9`, `*`, `#`, `A`–`D`.
    pub fn as_char(self) -> char {
        CHARS[self as usize]
    }

    /// The key for a character (`a`–`d` accepted in either case).
    pub fn from_char(c: char) -> Option<Key> {
        let c = c.to_ascii_uppercase();
        CHARS.iter().position(|&k| k == c).map(|i| LAYOUT[i])
    }

    /// Whether this key is a decimal digit.
    pub fn is_digit(self) -> bool {
        self.as_char().is_ascii_digit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_standard_keypad() {
        assert_eq!(Key::from_char('5').unwrap().frequencies(), (770.0, 1336.0));
        assert_eq!(Key::from_char('*').unwrap().frequencies(), (941.0, 1209.0));
        assert_eq!(Key::from_char('#').unwrap().frequencies(), (941.0, 1477.0));
        assert_eq!(Key::from_char('d').unwrap().frequencies(), (941.0, 1633.0));
        assert_eq!(Key::from_char('0').unwrap().frequencies(), (941.0, 1336.0));
        assert_eq!(Key::from_char('x'), None);
        for k in Key::ALL {
            assert_eq!(Key::from_char(k.as_char()), Some(k));
            assert_eq!(Key::from_row_col(k.row(), k.col()), k);
        }
    }
}
