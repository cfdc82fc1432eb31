//! DTMF in SIP INFO bodies: `application/dtmf-relay` (`Signal=5` and
//! `Duration=160` lines) and `application/dtmf` (the key alone). Parsed
//! into the same keys as telephone-events, and rewritten so the forwarded
//! body no longer carries the key: every key becomes one fixed key, the
//! rest of the body (duration, other lines, line endings) is kept.

use crate::dtmf::Key;

/// A key found in a SIP INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoKey {
    /// The key.
    pub key: Key,
    /// `Duration=` in ms, if given.
    pub duration_ms: Option<u32>,
}

/// The two body types.
fn is_relay(content_type: &str) -> Option<bool> {
    let t = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match t.as_str() {
        "application/dtmf-relay" => Some(true),
        "application/dtmf" => Some(false),
        _ => None,
    }
}

/// A key from a `Signal` value: `0`–`9`, `*`, `#`, `A`–`D`, or the event
/// codes 10–15 some devices send for `*`, `#`, `A`–`D`.
fn signal_key(v: &str) -> Option<Key> {
    let v = v.trim();
    let c = match v {
        "10" => '*',
        "11" => '#',
        "12" => 'A',
        "13" => 'B',
        "14" => 'C',
        "15" => 'D',
        _ if v.chars().count() == 1 => v.chars().next()?,
        _ => return None,
    };
    Key::from_char(c)
}

/// The key of a SIP INFO body of `content_type`, if it carries one.
pub fn parse_info(content_type: &str, body: &str) -> Option<InfoKey> {
    if !is_relay(content_type)? {
        return Some(InfoKey { key: signal_key(body)?, duration_ms: None });
    }
    let mut key = None;
    let mut duration_ms = None;
    for line in body.lines() {
        let Some((name, value)) = line.split_once('=') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" => key = signal_key(value),
            "duration" => duration_ms = value.trim().parse().ok(),
            _ => {}
        }
    }
    Some(InfoKey { key: key?, duration_ms })
}

/// The body with its key replaced by `fixed` (say `'0'`, the same for every
/// key), or `None` if it carries no key (forward it unchanged). The length
/// may change (a `Signal=10` becomes one character): update Content-Length.
pub fn rewrite_info(content_type: &str, body: &str, fixed: Key) -> Option<String> {
    parse_info(content_type, body)?;
    let fixed = fixed.as_char();
    if !is_relay(content_type)? {
        let start = body.len() - body.trim_start().len();
        let end = body.trim_end().len();
        return Some(format!("{}{fixed}{}", &body[..start], &body[end..]));
    }
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        match line.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("signal") => {
                let ending = &value[value.trim_end().len()..];
                let lead = &value[..value.len() - value.trim_start().len()];
                out.push_str(name);
                out.push('=');
                out.push_str(lead);
                out.push(fixed);
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> Key {
        Key::from_char(c).unwrap()
    }

    #[test]
    fn dtmf_relay_and_dtmf_bodies() {
        let body = "Signal=5\r\nDuration=160\r\n";
        assert_eq!(parse_info("application/dtmf-relay", body), Some(InfoKey { key: key('5'), duration_ms: Some(160) }));
        assert_eq!(
            parse_info("Application/DTMF-Relay; charset=utf-8", "signal= #\nduration=250"),
            Some(InfoKey { key: key('#'), duration_ms: Some(250) })
        );
        assert_eq!(parse_info("application/dtmf-relay", "Signal=11\r\nDuration=100\r\n").unwrap().key, key('#'));
        assert_eq!(parse_info("application/dtmf", "7\r\n"), Some(InfoKey { key: key('7'), duration_ms: None }));
        assert_eq!(parse_info("application/dtmf", "*"), Some(InfoKey { key: key('*'), duration_ms: None }));
        assert_eq!(parse_info("application/sdp", "Signal=5"), None);
        assert_eq!(parse_info("application/dtmf-relay", "Duration=160\r\n"), None);
        assert_eq!(parse_info("application/dtmf-relay", "Signal=x\r\n"), None);
        assert_eq!(parse_info("application/dtmf", "55"), None);

        assert_eq!(rewrite_info("application/dtmf-relay", body, key('0')).unwrap(), "Signal=0\r\nDuration=160\r\n");
        assert_eq!(
            rewrite_info("application/dtmf-relay", "Signal= 11\nDuration=90", key('0')).unwrap(),
            "Signal= 0\nDuration=90"
        );
        assert_eq!(rewrite_info("application/dtmf", " 9\r\n", key('0')).unwrap(), " 0\r\n");
        assert_eq!(rewrite_info("application/sdp", "v=0", key('0')), None);
        // Every key gives the same body.
        for k in Key::ALL {
            let b = format!("Signal={}\r\nDuration=160\r\n", k.as_char());
            assert_eq!(rewrite_info("application/dtmf-relay", &b, key('0')).unwrap(), "Signal=0\r\nDuration=160\r\n");
        }
    }
}
