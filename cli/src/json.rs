//! The one writer of the command's JSON lines: an object built field by
//! field, every string escaped as RFC 8259 says (quote, backslash and every
//! control character; U+2028/U+2029 too, for JavaScript readers), so a line
//! is valid JSON whatever an error message or a file name holds.

use std::fmt::Write;

/// One JSON object, written as one line.
#[derive(Debug, Clone)]
pub struct Obj(String);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(String::from("{"))
    }

    /// `{"event":NAME`, the start of most lines.
    pub fn event(name: &str) -> Obj {
        Obj::new().str("event", name)
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        escape_into(&mut self.0, key);
        self.0.push(':');
    }

    /// A string field.
    pub fn str(mut self, key: &str, value: &str) -> Obj {
        self.key(key);
        escape_into(&mut self.0, value);
        self
    }

    /// An integer field.
    pub fn int(mut self, key: &str, value: impl Into<i128>) -> Obj {
        self.key(key);
        let _ = write!(self.0, "{}", value.into());
        self
    }

    /// A count (usize) field.
    pub fn count(self, key: &str, value: usize) -> Obj {
        self.int(key, value as u64)
    }

    /// Milliseconds, to one decimal (a non-finite value, which cannot
    /// happen for positions, is written as `null`: JSON has no NaN).
    pub fn ms(mut self, key: &str, value: f64) -> Obj {
        self.key(key);
        let tenths = value * 10.0;
        let rounded = tenths.round_ties_even();
        // The product is exact (positions at 8 and 16 kHz are multiples of
        // 1/16 ms), or far from a tie: the nearest tenth, ties to even as the
        // standard formatter rounds, in integers (its exact path is slow: a
        // tenth of a 2-hour `detect` went there).
        let exact = value.mul_add(10.0, -tenths) == 0.0;
        if value.is_finite() && rounded.abs() < 1e15 && (exact || (tenths - rounded).abs() < 0.49) {
            let t = rounded as i64;
            let sign = if value.is_sign_negative() { "-" } else { "" };
            let _ = write!(self.0, "{sign}{}.{}", t.unsigned_abs() / 10, t.unsigned_abs() % 10);
        } else if value.is_finite() {
            let _ = write!(self.0, "{value:.1}");
        } else {
            self.0.push_str("null");
        }
        self
    }

    /// A boolean field.
    pub fn bool(mut self, key: &str, value: bool) -> Obj {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    /// A string field, if there is a value.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Obj {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// The line (without its newline).
    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

impl Default for Obj {
    fn default() -> Obj {
        Obj::new()
    }
}

/// Appends `s` as a JSON string, quotes included.
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_escaped_and_every_line_parses() {
        let nasty = "a\"b\\c\nd\re\tf\u{0}g\u{1b}h\u{7f}i\u{2028}j — ü";
        let line = Obj::event("x").str(nasty, nasty).int("n", -3i64).ms("t", 12.34).bool("b", true).finish();
        let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(v["event"], "x");
        assert_eq!(v[nasty], nasty);
        assert_eq!(v["n"], -3);
        assert_eq!(v["t"], 12.3);
        assert_eq!(v["b"], true);
        assert!(!line.contains('\n') && !line.contains('\u{1b}'));
        assert_eq!(Obj::new().finish(), "{}");
        let v: serde_json::Value = serde_json::from_str(&Obj::new().ms("x", f64::NAN).finish()).unwrap();
        assert!(v["x"].is_null());
        // Milliseconds read as the standard formatter writes them, ties and signs included.
        for x in [0.0, 0.04, 0.05, 0.25, 0.35, 0.125, 12.34, 1000.15, 2.0 / 3.0, -0.04, -0.05, -1.25, 7199999.875, 1e17]
        {
            let line = Obj::new().ms("t", x).finish();
            assert_eq!(line, format!("{{\"t\":{x:.1}}}"), "{x}");
        }
        for rate in [8000.0, 16000.0, 48000.0] {
            for k in 0..100_000u64 {
                let x = k as f64 * 1000.0 / rate;
                assert_eq!(Obj::new().ms("t", x).finish(), format!("{{\"t\":{x:.1}}}"), "{x}");
            }
        }
    }
}
