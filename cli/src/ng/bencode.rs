//! Bencode, as rtpengine's ng protocol carries it: integers, byte strings,
//! lists and dictionaries. Decoding is bounded (nesting depth, element
//! count) and strict (no leading zeros, no `-0`, nothing after the value),
//! so a hostile datagram costs little and cannot be read two ways.

use std::fmt;

/// Deepest nesting accepted (ng messages nest two or three levels).
pub const MAX_DEPTH: usize = 16;

/// Most values (of any kind, nested ones included) in one document.
pub const MAX_VALUES: usize = 4096;

/// A bencoded value. Dictionaries keep the order they arrived in (rtpengine
/// does not sort its keys); [`Value::encode`] writes them sorted.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `i42e`.
    Int(i64),
    /// `4:spam` (bytes, usually UTF-8).
    Bytes(Vec<u8>),
    /// `l…e`.
    List(Vec<Value>),
    /// `d…e`.
    Dict(Vec<(Vec<u8>, Value)>),
}

impl fmt::Debug for Value {
    // A byte string is shown by its length only: an SDP body or a call-id
    // is nobody's business in a log, and nothing here parses card data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f.debug_map().entries(d.iter().map(|(k, v)| (String::from_utf8_lossy(k), v))).finish(),
        }
    }
}

/// Why a document does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("bencode: the input ends inside a value (at byte {0})")]
    Truncated(usize),
    /// A byte that cannot start or continue a value here.
    #[error("bencode: unexpected byte {byte:#04x} at byte {at}")]
    Unexpected {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// A malformed integer or length (leading zero, `-0`, overflow, empty).
    #[error("bencode: malformed number at byte {0}")]
    Number(usize),
    /// Nested deeper than [`MAX_DEPTH`] or more than [`MAX_VALUES`] values.
    #[error("bencode: nested deeper than {MAX_DEPTH} or more than {MAX_VALUES} values")]
    TooLarge,
    /// A dictionary key is not a byte string.
    #[error("bencode: a dictionary key at byte {0} is not a string")]
    Key(usize),
    /// Bytes after the document.
    #[error("bencode: {0} bytes after the document")]
    Trailing(usize),
}

impl Value {
    /// A byte string from text.
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// Decodes one whole document.
    ///
    /// # Errors
    /// [`DecodeError`] says what is wrong and where.
    pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
        let mut d = Decoder { input, at: 0, values: 0 };
        let v = d.value(0)?;
        if d.at != input.len() {
            return Err(DecodeError::Trailing(input.len() - d.at));
        }
        Ok(v)
    }

    /// Appends the encoding (dictionary keys sorted, as bencode wants).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => bytes(b, out),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                let mut sorted: Vec<&(Vec<u8>, Value)> = d.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(b'd');
                for (k, v) in sorted {
                    bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// A dictionary's value for `key` (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as text, if it is a UTF-8 byte string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value as a list, if it is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

struct Decoder<'a> {
    input: &'a [u8],
    at: usize,
    values: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input.get(self.at).copied().ok_or(DecodeError::Truncated(self.at))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        self.values += 1;
        if depth > MAX_DEPTH || self.values > MAX_VALUES {
            return Err(DecodeError::TooLarge);
        }
        match self.peek()? {
            b'i' => {
                self.at += 1;
                let n = self.number(b'e', true)?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.string()?)),
            b'l' => {
                self.at += 1;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.at += 1;
                Ok(Value::List(list))
            }
            b'd' => {
                self.at += 1;
                let mut dict = Vec::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::Key(self.at));
                    }
                    let k = self.string()?;
                    let v = self.value(depth + 1)?;
                    dict.push((k, v));
                }
                self.at += 1;
                Ok(Value::Dict(dict))
            }
            byte => Err(DecodeError::Unexpected { byte, at: self.at }),
        }
    }

    /// Digits up to `end` (which is consumed): no leading zeros, no `-0`.
    fn number(&mut self, end: u8, signed: bool) -> Result<i64, DecodeError> {
        let start = self.at;
        let rest = &self.input[start..];
        let len = rest.iter().position(|&b| b == end).ok_or(DecodeError::Truncated(self.input.len()))?;
        let text = &rest[..len];
        let digits = match text.strip_prefix(b"-") {
            Some(d) if signed => d,
            _ => text,
        };
        let well_formed = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits.len() == 1 || digits[0] != b'0')
            && !(text.len() != digits.len() && digits == b"0");
        if !well_formed {
            return Err(DecodeError::Number(start));
        }
        let n: i64 = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).ok_or(DecodeError::Number(start))?;
        self.at = start + len + 1;
        Ok(n)
    }

    fn string(&mut self) -> Result<Vec<u8>, DecodeError> {
        let start = self.at;
        let len = self.number(b':', false)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Number(start))?;
        let end = self.at.checked_add(len).filter(|&e| e <= self.input.len()).ok_or(DecodeError::Truncated(self.at))?;
        let s = self.input[self.at..end].to_vec();
        self.at = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ng_examples_decode_and_encode() {
        let ping = Value::decode(b"d7:command4:pinge").unwrap();
        assert_eq!(ping.get("command").and_then(Value::as_str), Some("ping"));
        let pong = Value::Dict(vec![(b"result".to_vec(), Value::str("pong"))]);
        assert_eq!(pong.encode(), b"d6:result4:ponge");
        let nested = b"d4:listli-3e0:e1:ai0ee";
        let v = Value::decode(nested).unwrap();
        assert_eq!(v.get("list").and_then(Value::as_list).map(<[Value]>::len), Some(2));
        // Keys come out sorted whatever order they came in.
        assert_eq!(v.encode(), b"d1:ai0e4:listli-3e0:ee");
    }

    #[test]
    fn malformed_documents_are_refused_with_the_reason() {
        let cases: [(&[u8], DecodeError); 9] = [
            (b"", DecodeError::Truncated(0)),
            (b"i01e", DecodeError::Number(1)),
            (b"i-0e", DecodeError::Number(1)),
            (b"ie", DecodeError::Number(1)),
            (b"5:abc", DecodeError::Truncated(2)),
            (b"03:abc", DecodeError::Number(0)),
            (b"di1ei2ee", DecodeError::Key(1)),
            (b"d1:ai1e", DecodeError::Truncated(7)),
            (b"i1ei2e", DecodeError::Trailing(3)),
        ];
        for (input, want) in cases {
            assert_eq!(Value::decode(input), Err(want), "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(Value::decode(b"x"), Err(DecodeError::Unexpected { byte: b'x', at: 0 }));
        assert_eq!(Value::decode(b"i99999999999999999999e"), Err(DecodeError::Number(1)));
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let deep = [vec![b'l'; MAX_DEPTH + 2], vec![b'e'; MAX_DEPTH + 2]].concat();
        assert_eq!(Value::decode(&deep), Err(DecodeError::TooLarge));
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(Value::decode(&ok).is_ok());
        let many = [b"l".to_vec(), b"i1e".repeat(MAX_VALUES), b"e".to_vec()].concat();
        assert_eq!(Value::decode(&many), Err(DecodeError::TooLarge));
    }

    #[test]
    fn debug_shows_no_string_contents() {
        let v = Value::Dict(vec![(b"sdp".to_vec(), Value::str("v=0 secret"))]);
        let shown = format!("{v:?}");
        assert!(shown.contains("sdp") && shown.contains("10 bytes") && !shown.contains("secret"), "{shown}");
    }

    #[test]
    fn any_value_round_trips() {
        // A small deterministic generator instead of a proptest strategy:
        // every shape up to three levels, integers at the edges.
        let ints = [0, 1, -1, 42, i64::MAX, i64::MIN];
        let leaves: Vec<Value> = ints
            .iter()
            .map(|&i| Value::Int(i))
            .chain([Value::str(""), Value::str("a:b"), Value::Bytes(vec![0, 255])])
            .collect();
        let lists: Vec<Value> = (0..leaves.len()).map(|n| Value::List(leaves[..n].to_vec())).collect();
        let dicts: Vec<Value> = lists
            .iter()
            .enumerate()
            .map(|(i, l)| Value::Dict(vec![(format!("k{i}").into_bytes(), l.clone()), (b"a".to_vec(), Value::Int(1))]))
            .collect();
        for v in leaves.iter().chain(&lists).chain(&dicts) {
            let decoded = Value::decode(&v.encode()).unwrap();
            assert_eq!(decoded.encode(), v.encode());
        }
    }
}
